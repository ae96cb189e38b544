"""Each worker's share of the CPU under ``--workers 2``: one listening socket per worker with
``SO_REUSEPORT`` (the default on Linux) against one socket shared by both
(``--no-reuse-port``, the behaviour before).

For each mode it starts ``kyoukai-h2fast APP --workers 2`` (inline WSGI: ``--wsgi-threads
0``), runs one h2load burst (``-c`` connections opened at once, ``-n`` requests), and reads
every worker's CPU ticks (utime + stime, ``/proc/<pid>/stat``) before and after::

    python bench/workers_share.py                      # 20 connections, 200000 requests
    python bench/workers_share.py -c 20 -n 1000000 -m 10

Output: per mode, the ticks of each worker, its share of the total, and the req/s h2load saw.
With one shared socket the worker that wakes first accepts the whole burst; with a socket
each the kernel hashes every connection to one of them.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from measure import free_port, parse_h2load, process_tree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rfind(b")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def run_mode(reuse_port: bool, args: argparse.Namespace) -> dict:
    port = free_port()
    cmd = [sys.executable, "-m", "kyoukai_h2fast", args.app, "--port", str(port),
           "--workers", "2", "--wsgi-threads", "0", "--log-level", "warning",
           "--reuse-port" if reuse_port else "--no-reuse-port"]
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:  # both workers up: the supervisor plus two children
            workers = [p for p in process_tree(server.pid) if p != server.pid]
            if len(workers) == 2 and _answers(port):
                break
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"server did not start: {cmd}")
            time.sleep(0.1)
        time.sleep(0.5)  # (both finished starting)
        before = {pid: ticks(pid) for pid in workers}
        h2load = ["h2load", "-t", "1", "-c", str(args.connections), "-m", str(args.streams),
                  "-n", str(args.requests), f"http://127.0.0.1:{port}/"]
        done = subprocess.run(h2load, capture_output=True, text=True, timeout=600)
        used = {pid: ticks(pid) - before[pid] for pid in workers}
    finally:
        server.terminate()
        server.wait(30)
    total = sum(used.values()) or 1
    figures = parse_h2load(done.stdout)
    return {"mode": "SO_REUSEPORT socket per worker" if reuse_port else "one shared socket",
            "ticks": sorted(used.values(), reverse=True),
            "shares": [round(100 * t / total) for t in sorted(used.values(), reverse=True)],
            "rps": figures.get("h2load_rps") or 0.0, "command": " ".join(h2load)}


def _answers(port: int) -> bool:
    done = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                           f"http://127.0.0.1:{port}/"], capture_output=True, text=True)
    return done.stdout == "200"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--app", default="apps:wsgi_app", help="default: bench/apps.py wsgi_app")
    p.add_argument("-c", "--connections", type=int, default=20)
    p.add_argument("-m", "--streams", type=int, default=10, help="streams per connection")
    p.add_argument("-n", "--requests", type=int, default=200_000)
    args = p.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.abspath(__file__)), ROOT, os.environ.get("PYTHONPATH", "")])
    for reuse_port in (False, True):
        result = run_mode(reuse_port, args)
        print(f"{result['mode']:32} worker CPU ticks {result['ticks']} -> shares "
              f"{'/'.join(f'{s}%' for s in result['shares'])}, {result['rps']:.0f} req/s")
    print(f"(h2load: {result['command']})")


if __name__ == "__main__":
    main()
