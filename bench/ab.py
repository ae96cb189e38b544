"""Paired A/B of two kyoukai_h2fast checkouts: req/s of one workload, both servers alive at once.

Both servers (checkout A and checkout B, each built in place) run side by side pinned to core 0,
h2load pinned to core 1; each round measures A then B, or B then A (alternating, ABBA), so a
burst of load from elsewhere on a shared machine hits both about equally. The result is the
median and geometric mean of the per-round ratios B/A, and in how many rounds B was faster::

    python bench/ab.py /path/to/before .                        # inline WSGI, get c10 m1
    python bench/ab.py /path/to/before . -m 10 --requests 80000
    python bench/ab.py /path/to/before . --app apps:kyoukai_app
    python bench/ab.py /path/to/before . --threads default      # the WSGI thread pool
    python bench/ab.py /path/to/before . --tls                  # TLS 1.3 + ALPN h2
    python bench/ab.py /path/to/before . --h1                   # HTTP/1.1 keep-alive (--h1)
    python bench/ab.py granian . --h1                           # against granian (WSGI)

``granian`` as a checkout runs granian (``--interface wsgi --http 1`` with ``--h1``, else
``--http 2``, one worker) from the peers' venv (``bench/.venv-peers``, made by run.py) on the
same app: the ratio to a peer, measured the same paired way.

(bench/run.py --quick with KYOUKAI_BENCH_BASELINE runs a checkout among all the peers, but
server after server: on a noisy machine that resolves differences of 20%, this one of a few.)
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile

from measure import ServerProcess, free_port, run_h2load

BENCH = os.path.dirname(os.path.abspath(__file__))


def _start(tree: str, app: str, threads: str, tls: tuple[str, str] | None,
           logs: str, h1: bool = False) -> tuple[ServerProcess, str]:
    """The server of checkout ``tree`` (or granian) on core 0, answering; (process, url)."""
    port = free_port()
    if tree == "granian":
        argv = [os.path.join(BENCH, ".venv-peers", "bin", "granian"), "--interface", "wsgi",
                "--http", "1" if h1 else "2", "--workers", "1", "--host", "127.0.0.1",
                "--port", str(port), "--log-level", "warning"]
        if tls:
            argv += ["--ssl-certificate", tls[0], "--ssl-keyfile", tls[1]]
        argv.append(app)
    else:
        argv = [sys.executable, "-m", "kyoukai_h2fast", app, "--port", str(port),
                "--log-level", "warning"]
        if threads != "default":
            argv += ["--wsgi-threads", threads]
        if tls:
            argv += ["--certfile", tls[0], "--keyfile", tls[1]]
    server = ServerProcess(argv, {"PYTHONPATH": os.path.abspath(tree),
                                  "KYOUKAI_H2FAST_NO_EXTENSIONS": None},
                           BENCH, os.path.join(logs, f"server-{port}.log"))
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/"
    ready, why, _ = server.wait_ready(url, h1=h1)
    if not ready:
        server.stop()
        sys.exit(f"ab.py: the server of {tree} {why}: {server.log_tail()}")
    return server, url


def _rate(url: str, requests: int, streams: int, h1: bool = False) -> float:
    figures, _ = run_h2load([*(["--h1"] if h1 else []), "-c", "10", "-m", str(streams)], url,
                            requests, None, timeout=300)
    if figures.get("succeeded") != requests:
        raise RuntimeError(f"h2load did not complete {requests} requests: "
                           f"{figures.get('error') or figures}")
    return figures["h2load_rps"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", help="checkout A (the reference), built in place")
    p.add_argument("b", help="checkout B, built in place")
    p.add_argument("--app", default="apps:wsgi_app", help="app in bench/apps.py")
    p.add_argument("--threads", default="0",
                   help="--wsgi-threads for WSGI apps (default 0: inline; 'default': the pool)")
    p.add_argument("-m", "--streams", type=int, default=1, help="streams per connection")
    p.add_argument("--requests", type=int, default=30000, help="per measurement")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--tls", action="store_true", help="TLS 1.3 + ALPN h2 (self-signed)")
    p.add_argument("--h1", action="store_true",
                   help="HTTP/1.1 keep-alive connections (h2load --h1; -m: pipelined requests)")
    args = p.parse_args()
    if shutil.which("h2load") is None:
        print("ab.py: h2load is missing (apt-get install nghttp2-client)", file=sys.stderr)
        return 2
    threads = "default" if args.app.endswith("kyoukai_app") else args.threads
    work = tempfile.mkdtemp(prefix="kh2-ab-")
    tls = None
    if args.tls:
        from run import make_certificate
        files = make_certificate(work)
        tls = (files.certfile, files.keyfile)
    servers = [_start(args.a, args.app, threads, tls, work, args.h1),
               _start(args.b, args.app, threads, tls, work, args.h1)]
    try:
        for _, url in servers:  # warm-up
            _rate(url, max(args.requests // 3, 1000), args.streams, args.h1)
        pairs = []
        for i in range(args.rounds):
            order = (0, 1) if i % 2 == 0 else (1, 0)
            rates = {k: _rate(servers[k][1], args.requests, args.streams, args.h1)
                     for k in order}
            pairs.append((rates[0], rates[1]))
    except RuntimeError as e:
        print(f"ab.py: {e}", file=sys.stderr)
        return 1
    finally:
        for server, _ in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    ratios = [b / a for a, b in pairs]
    print(f"{args.app} threads={threads} {'h1 ' if args.h1 else ''}m{args.streams}"
          f"{' TLS' if tls else ''}, "
          f"{len(pairs)} rounds: "
          f"A median {statistics.median(a for a, _ in pairs):,.0f} req/s, "
          f"B median {statistics.median(b for _, b in pairs):,.0f} req/s; B/A per round: "
          f"median {statistics.median(ratios):.3f}, geometric mean "
          f"{statistics.geometric_mean(ratios):.3f}, B faster in "
          f"{sum(r > 1 for r in ratios)}/{len(ratios)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
