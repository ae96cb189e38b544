"""Instructions per request of the real server, end to end, under callgrind.

The server (this checkout, or ``--tree`` another one built in place) runs under
``valgrind --tool=callgrind`` on loopback; h2load warms it up, callgrind's counters are zeroed,
h2load sends ``--requests`` more, and the counters are dumped: their total over the requests
is the server's user-space instructions per request (event loop, engine, protocol, app,
allocator; not the kernel). Unlike req/s it barely depends on what else the machine is doing,
so two builds can be compared to the percent on a noisy machine::

    python bench/instructions.py                                 # inline WSGI, m1
    python bench/instructions.py --app apps:kyoukai_app --threads default -m 10
    python bench/instructions.py --tree /path/to/other/checkout  # e.g. the commit before
    python bench/instructions.py --server-arg=--metrics-port --server-arg=0   # a feature on
    python bench/instructions.py --h1                            # HTTP/1.1 keep-alive (h2load --h1)
    python bench/instructions.py --h1 --keep /tmp/h1.out         # keep the callgrind dump

Logic that depends on time (the fairness turns, the thread pool's GIL hand-over) runs about
50 times slower under valgrind, so figures for the thread pool and for many streams per read
are less representative than inline m1 ones. Needs valgrind (``apt-get install valgrind``)
and h2load.
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

from measure import ServerProcess, free_port, run_h2load

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)


def _h2load(url: str, requests: int, streams: int, h1: bool = False) -> None:
    figures, _ = run_h2load([*(["--h1"] if h1 else []), "-c", "10", "-m", str(streams)], url,
                            requests, None,
                            timeout=600, stall=60)
    if figures.get("succeeded") != requests:
        sys.exit(f"instructions.py: h2load did not complete {requests} requests: "
                 f"{figures.get('error') or figures}")


def measure(tree: str, app: str, threads: str, requests: int, streams: int,
            extra: list[str] | None = None, h1: bool = False,
            keep: str | None = None) -> float:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    work = tempfile.mkdtemp(prefix="kh2-callgrind-")
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={work}/out.%p",
            sys.executable, "-m", "kyoukai_h2fast", app, "--port", str(port),
            "--log-level", "warning"]
    if threads != "default":
        argv += ["--wsgi-threads", threads]
    argv += extra or []
    server = ServerProcess(argv, {"PYTHONPATH": tree, "PYTHONHASHSEED": "0",
                                  "KYOUKAI_H2FAST_NO_EXTENSIONS": None},
                           BENCH, os.path.join(work, "server.log"))
    try:
        ready, why, _ = server.wait_ready(url, timeout=120, h1=h1)
        if not ready:
            sys.exit(f"instructions.py: the server under valgrind {why}")
        _h2load(url, 1000, streams, h1)  # warm-up
        subprocess.run(["callgrind_control", "-z", str(server.pid)], check=True,
                       capture_output=True)
        _h2load(url, requests, streams, h1)
        subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True,
                       capture_output=True)
        time.sleep(1)
        dumps = sorted(glob.glob(f"{work}/out.{server.pid}*"), key=os.path.getmtime)
        if keep:
            shutil.copyfile(dumps[-1], keep)
        with open(dumps[-1]) as f:
            total = next(int(line.split()[1]) for line in f
                         if line.startswith(("summary:", "totals:")))
        return total / requests
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tree", action="append",
                   help="a kyoukai_h2fast checkout built in place (repeatable; default: this one)")
    p.add_argument("--app", default="apps:wsgi_app", help="app in bench/apps.py")
    p.add_argument("--threads", default="0",
                   help="--wsgi-threads for WSGI apps (default 0: inline; 'default': the pool)")
    p.add_argument("-m", "--streams", type=int, default=1, help="streams per connection")
    p.add_argument("--requests", type=int, default=4000)
    p.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                   help="an argument added to the server's command line (repeatable; "
                        "e.g. --server-arg=--access-log)")
    p.add_argument("--h1", action="store_true",
                   help="HTTP/1.1 keep-alive connections (h2load --h1) instead of h2c")
    p.add_argument("--keep", metavar="FILE",
                   help="copy the callgrind dump there (for callgrind_annotate)")
    args = p.parse_args()
    for tool in ("valgrind", "callgrind_control", "h2load"):
        if shutil.which(tool) is None:
            print(f"instructions.py: {tool} is missing", file=sys.stderr)
            return 2
    threads = "default" if args.app.endswith("kyoukai_app") else args.threads
    for tree in args.tree or [ROOT]:
        per_request = measure(os.path.abspath(tree), args.app, threads, args.requests,
                              args.streams, args.server_arg, args.h1, args.keep)
        extra = f" ({' '.join(args.server_arg)})" if args.server_arg else ""
        proto = "h1 " if args.h1 else ""
        print(f"{tree}{extra}: {args.app} {proto}m{args.streams}: {per_request:,.0f} instructions "
              "per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
