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

(bench/run.py --quick with KYOUKAI_BENCH_BASELINE runs a checkout among all the peers, but
server after server: on a noisy machine that resolves differences of 20%, this one of a few.)
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))


def _pin(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") else []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(tree: str, app: str, threads: str,
           tls: tuple[str, str] | None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [*_pin(0), sys.executable, "-m", "kyoukai_h2fast", app, "--port", str(port),
           "--log-level", "warning"]
    if threads != "default":
        cmd += ["--wsgi-threads", threads]
    if tls:
        cmd += ["--certfile", tls[0], "--keyfile", tls[1]]
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
    env.pop("KYOUKAI_H2FAST_NO_EXTENSIONS", None)
    proc = subprocess.Popen(cmd, cwd=BENCH, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"{'https' if tls else 'http'}://127.0.0.1:{port}/"
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                sys.exit(f"ab.py: the server of {tree} did not start")
            time.sleep(0.1)


def _rate(url: str, requests: int, streams: int) -> float:
    out = subprocess.run([*_pin(1), "h2load", "-n", str(requests), "-c", "10", "-m",
                          str(streams), url], capture_output=True, text=True,
                         timeout=300).stdout
    done = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out)
    rate = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
    if not done or int(done.group(1)) != requests or not rate:
        raise RuntimeError(f"h2load did not complete {requests} requests:\n{out}")
    return float(rate.group(1))


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
    args = p.parse_args()
    if shutil.which("h2load") is None:
        print("ab.py: h2load is missing (apt-get install nghttp2-client)", file=sys.stderr)
        return 2
    threads = "default" if args.app.endswith("kyoukai_app") else args.threads
    tls = None
    if args.tls:
        sys.path.insert(0, BENCH)
        from run import make_certificate
        files = make_certificate(tempfile.mkdtemp(prefix="kh2-ab-"))
        tls = (files.certfile, files.keyfile)
    servers = [_start(args.a, args.app, threads, tls), _start(args.b, args.app, threads, tls)]
    try:
        for _, url in servers:  # warm-up
            _rate(url, max(args.requests // 3, 1000), args.streams)
        pairs = []
        for i in range(args.rounds):
            order = (0, 1) if i % 2 == 0 else (1, 0)
            rates = {k: _rate(servers[k][1], args.requests, args.streams) for k in order}
            pairs.append((rates[0], rates[1]))
    except RuntimeError as e:
        print(f"ab.py: {e}", file=sys.stderr)
        return 1
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait()
    ratios = [b / a for a, b in pairs]
    print(f"{args.app} threads={threads} m{args.streams}{' TLS' if tls else ''}, "
          f"{len(pairs)} rounds: "
          f"A median {statistics.median(a for a, _ in pairs):,.0f} req/s, "
          f"B median {statistics.median(b for _, b in pairs):,.0f} req/s; B/A per round: "
          f"median {statistics.median(ratios):.3f}, geometric mean "
          f"{statistics.geometric_mean(ratios):.3f}, B faster in "
          f"{sum(r > 1 for r in ratios)}/{len(ratios)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
