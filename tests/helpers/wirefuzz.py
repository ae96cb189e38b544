"""Seeded random HTTP/2 wire input against a real server, with a legitimate client alongside.

What issue 14 asked for: a fuzz-like run of mixed bad input from outside, which must leave
legitimate clients answered every time, no traceback in the server log except from app code,
and memory that plateaus. The inputs are ``tests/helpers/wirefuzz_inputs.py``'s scripts; this
module plays them (:func:`run_script`), runs the whole thing (:func:`run`) and reads the server's
log (:func:`log_findings`). The bounded pytest is ``tests/http2/test_wire_fuzz.py``. Script
mode::

    python -m tests.helpers.wirefuzz --seconds 90 --impl compiled [--seed 1] [--pool 500]
        [--workers 10] [--server-arg=--loop --server-arg=asyncio] [--json F] [--log F]

starts the server (``tests/helpers/serverproc.py``, the ``tests.served_apps.basic:wsgi_app`` app
by default), fuzzes it from ``--workers`` threads (each plays the ``--pool`` scripts in a cycle)
while a legitimate httpx HTTP/2 client sends ``GET /`` every ``--interval`` seconds on its own
connection, samples the server's RSS every 0.5 s, and prints connections made, legitimate
checks ok/failed with their latency percentiles, RSS (start, plateau = end of the warm-up, end,
max, every 10 s) and the server log's ``ERROR`` lines and tracebacks (grouped, with counts;
every one of them in ``--json``, the whole log in ``--log``). Exit status 0 when nothing was
found.

Loopback only (other hosts are refused); every connection is bounded in bytes and time.
"""
from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import os
import re
import select
import socket
import struct
import threading
import time

from tests.helpers.wirefuzz_inputs import (  # noqa: E402
    HOLD_SECONDS,
    MAX_SCRIPT_BYTES,
    ORIGIN,
    PREFACE,
    Script,
    make_script,
)

__all__ = ["Script", "make_script", "run_script", "FuzzReport", "run", "log_findings", "main",
           "PREFACE", "ORIGIN", "MAX_SCRIPT_BYTES"]


def _check_loopback(host: str) -> None:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as e:
        raise SystemExit(f"wirefuzz: cannot resolve {host!r}: {e}") from None
    if not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise SystemExit(f"wirefuzz: refusing to fuzz {host} (loopback only)")


def run_script(host: str, port: int, script: Script) -> int:
    """Play ``script`` on a new connection; returns the bytes received from the server."""
    received = 0
    deadline = time.monotonic() + (HOLD_SECONDS if script.ending == "hold" else 1.0)
    sock = socket.create_connection((host, port), timeout=2.0)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)

        def drain(seconds: float) -> bool:
            nonlocal received
            until = min(time.monotonic() + seconds, deadline)
            while True:
                left = until - time.monotonic()
                readable, _, _ = select.select([sock], [], [], max(left, 0))
                if not readable:
                    return True
                try:
                    data = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    return False
                if not data:
                    return False
                received += len(data)

        for pause, chunk in script.chunks:
            if pause and not drain(pause):
                return received
            view = memoryview(chunk)
            while view:
                if time.monotonic() > deadline:
                    return received
                try:
                    sent = sock.send(view)
                except (BlockingIOError, InterruptedError):
                    if not drain(0.01):
                        return received
                    continue
                except OSError:
                    return received
                view = view[sent:]
        if script.ending in ("drain", "hold"):
            drain(deadline - time.monotonic())
        elif drain(script.read_seconds) and script.ending == "rst":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return received
    finally:
        sock.close()


# ---- the server's log --------------------------------------------------------------------------
_FILE = re.compile(r'^\s+File "([^"]+)", line \d+')


def log_findings(lines: list[str], app_files=("tests/served_apps/basic.py",)) -> dict:
    """Tracebacks (split into the app's own and the server's) and ERROR lines of a server log.

    A traceback is the app's when one of its frames is in ``app_files`` and its innermost frame
    is not in the server package (an exception the app raised for its own reasons, possibly in
    a library it called); any other traceback is the server's.
    """
    errors = [line.rstrip() for line in lines if " ERROR " in line or " CRITICAL " in line]
    app, server = [], []
    i = 0
    while i < len(lines):
        if not lines[i].startswith("Traceback (most recent call last):"):
            i += 1
            continue
        header = next((lines[j].rstrip() for j in range(i - 1, -1, -1)
                       if re.match(r"^\d{4}-\d\d-\d\d ", lines[j])), "")
        block = [lines[i].rstrip()]
        i += 1
        while i < len(lines) and (lines[i].startswith((" ", "\t")) or not lines[i].strip()):
            block.append(lines[i].rstrip())
            i += 1
        if i < len(lines):
            block.append(lines[i].rstrip())           # the exception line
            i += 1
        files = [m.group(1) for m in map(_FILE.match, block) if m]
        in_app = any(f.replace(os.sep, "/").endswith(app_files) for f in files)
        innermost_ours = bool(files) and "/kyoukai_h2fast/" in files[-1].replace(os.sep, "/")
        entry = {"log": header, "exception": block[-1], "innermost": files[-1] if files else "",
                 "text": "\n".join(block)}
        (app if in_app and not innermost_ours else server).append(entry)
    return {"error_lines": errors, "app_tracebacks": app, "server_tracebacks": server}


# ---- the run -----------------------------------------------------------------------------------
class _Legit(threading.Thread):
    """A legitimate client: GET / every ``interval`` s on its own HTTP/2 connection (httpx)."""

    def __init__(self, url: str, interval: float, timeout: float) -> None:
        super().__init__(daemon=True, name="wirefuzz-legit")
        self.url, self.interval, self.timeout = url, interval, timeout
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        import httpx

        client = httpx.Client(http1=False, http2=True, timeout=self.timeout)
        try:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    response = client.get(self.url + "/")
                    if response.status_code != 200 or response.content != b"Hello, world!":
                        raise ValueError(f"{response.status_code} {response.content[:60]!r}")
                    self.latencies.append(time.monotonic() - started)
                except Exception as e:  # noqa: BLE001 - every failure is a finding
                    self.failures.append(f"{time.strftime('%H:%M:%S')} {type(e).__name__}: {e}")
                    client.close()
                    client = httpx.Client(http1=False, http2=True, timeout=self.timeout)
                self.stop.wait(max(self.interval - (time.monotonic() - started), 0.001))
        finally:
            client.close()


def _rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclasses.dataclass
class FuzzReport:
    seconds: float
    connections: int
    bytes_sent: int
    bytes_received: int
    connect_errors: int
    checks_ok: int
    checks_failed: int
    failures: list[str]
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    rss_samples: list[tuple[float, int]]          # (seconds since start, KiB)
    rss_start_kib: int
    rss_plateau_kib: int                          # at the end of the warm-up
    rss_end_kib: int
    rss_max_kib: int
    server_alive: bool
    findings: dict

    @property
    def rss_growth_after_plateau_kib(self) -> int:
        return self.rss_end_kib - self.rss_plateau_kib

    def summary(self) -> str:
        f = self.findings
        lines = [
            f"connections: {self.connections} in {self.seconds:.0f} s "
            f"({self.connections / max(self.seconds, 1e-9):.0f}/s), {self.bytes_sent / 1e6:.1f} MB "
            f"sent, {self.bytes_received / 1e6:.1f} MB received, connect errors: "
            f"{self.connect_errors}",
            f"legitimate GET /: {self.checks_ok} ok, {self.checks_failed} failed; latency p50 "
            f"{self.latency_p50_ms:.1f} ms, p99 {self.latency_p99_ms:.1f} ms, max "
            f"{self.latency_max_ms:.1f} ms",
            f"server RSS (MiB): start {self.rss_start_kib / 1024:.1f}, plateau (end of warm-up) "
            f"{self.rss_plateau_kib / 1024:.1f}, end {self.rss_end_kib / 1024:.1f}, max "
            f"{self.rss_max_kib / 1024:.1f}; growth after the plateau "
            f"{self.rss_growth_after_plateau_kib / 1024:+.1f}",
            "RSS every 10 s (MiB): " + ", ".join(
                f"{t:.0f}s {kib / 1024:.1f}" for t, kib in self.rss_samples[::20]),
            f"server alive: {self.server_alive}; log: {len(f['error_lines'])} ERROR lines, "
            f"{len(f['server_tracebacks'])} server tracebacks, {len(f['app_tracebacks'])} "
            "tracebacks from app code",
        ]
        lines += [f"  legit failure: {x}" for x in self.failures[:20]]
        lines += [f"  {n:5d} x ERROR line: {text}   (first: {first})"
                  for text, (n, first) in _grouped(f["error_lines"], _error_kind)]
        lines += [f"  {n:5d} x server traceback: {text}   (first: {first})"
                  for text, (n, first) in _grouped(f["server_tracebacks"], _traceback_kind)]
        lines += [f"  {n:5d} x app traceback: {text}"
                  for text, (n, first) in _grouped(f["app_tracebacks"], _traceback_kind)]
        return "\n".join(lines)


def _error_kind(line: str) -> str:
    """An ERROR line without its time stamp and numbers (to group repeats)."""
    return re.sub(r"\b\d+\b", "N", line.split(" ", 2)[-1])


def _traceback_kind(entry: dict) -> str:
    exception = re.sub(r"\b\d+\b", "N", entry["exception"])
    return f"{_error_kind(entry['log'])} | {exception} | raised in {entry['innermost']}"


def _grouped(items: list, kind) -> list:
    groups: dict[str, list] = {}
    for item in items:
        key = kind(item)
        if key not in groups:
            groups[key] = [0, item if isinstance(item, str) else item["log"]]
        groups[key][0] += 1
    return sorted(groups.items(), key=lambda kv: -kv[1][0])


def run(server, seconds: float, seed: int = 1, pool: int = 500, workers: int = 6,
        interval: float = 0.02, check_timeout: float = 2.0,
        warmup: float | None = None) -> FuzzReport:
    """Fuzz a running ``serverproc.ServerProcess`` for ``seconds``; see the module docstring."""
    host, port = "127.0.0.1", server.port
    _check_loopback(host)
    warmup = max(5.0, seconds / 6) if warmup is None else warmup
    scripts = [make_script(seed, i) for i in range(pool)]
    counter = iter(range(1 << 62))
    lock = threading.Lock()
    totals = {"connections": 0, "sent": 0, "received": 0, "connect_errors": 0}
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            with lock:
                script = scripts[next(counter) % pool]
            try:
                received = run_script(host, port, script)
            except OSError:
                with lock:
                    totals["connect_errors"] += 1
                stop.wait(0.05)
                continue
            with lock:
                totals["connections"] += 1
                totals["sent"] += script.size
                totals["received"] += received

    start_rss = _rss_kib(server.pid) or 0
    legit = _Legit(f"http://{host}:{port}", interval, check_timeout)
    legit.start()
    threads = [threading.Thread(target=worker, daemon=True, name=f"wirefuzz-{i}")
               for i in range(workers)]
    started = time.monotonic()
    for t in threads:
        t.start()
    samples: list[tuple[float, int]] = []
    plateau = None
    while True:
        elapsed = time.monotonic() - started
        rss = _rss_kib(server.pid)
        if rss is not None:
            samples.append((elapsed, rss))
            if plateau is None and elapsed >= warmup:
                plateau = rss
        if elapsed >= seconds or not server.alive():
            break
        time.sleep(min(0.5, max(seconds - elapsed, 0.01)))
    stop.set()
    legit.stop.set()
    for t in threads:
        t.join(5)
    legit.join(check_timeout + 5)
    time.sleep(0.5)                                   # let the log catch up
    latencies = sorted(legit.latencies)

    def pct(q: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(int(q * len(latencies)), len(latencies) - 1)] * 1000

    rss_values = [kib for _, kib in samples] or [0]
    return FuzzReport(
        seconds=time.monotonic() - started, connections=totals["connections"],
        bytes_sent=totals["sent"], bytes_received=totals["received"],
        connect_errors=totals["connect_errors"], checks_ok=len(latencies),
        checks_failed=len(legit.failures), failures=legit.failures,
        latency_p50_ms=pct(0.5), latency_p99_ms=pct(0.99), latency_max_ms=pct(1.0),
        rss_samples=samples, rss_start_kib=start_rss,
        rss_plateau_kib=plateau if plateau is not None else rss_values[-1],
        rss_end_kib=rss_values[-1], rss_max_kib=max(rss_values), server_alive=server.alive(),
        findings=log_findings(server.log.splitlines(keepends=True)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--impl", choices=["compiled", "pure"], default="compiled")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pool", type=int, default=500, help="scripts replayed in a cycle")
    parser.add_argument("--workers", type=int, default=10, help="fuzzing threads")
    parser.add_argument("--interval", type=float, default=0.02, help="legitimate GET / period")
    parser.add_argument("--warmup", type=float, default=None, help="default: max(5, seconds/6)")
    parser.add_argument("--app", default="tests.served_apps.basic:wsgi_app")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="extra server CLI argument (repeatable)")
    parser.add_argument("--json", help="write the report (RSS samples, every ERROR line and "
                                       "traceback) here")
    parser.add_argument("--log", help="write the server's whole log here")
    args = parser.parse_args(argv)
    from tests.helpers.serverproc import ServerProcess

    server = ServerProcess(args.app, args.impl, args=args.server_arg)
    try:
        print(f"wirefuzz: {args.impl} server pid {server.pid} on {server.url}; seed {args.seed}, "
              f"{args.pool} scripts, {args.workers} workers, {args.seconds:.0f} s", flush=True)
        report = run(server, args.seconds, args.seed, args.pool, args.workers, args.interval,
                     warmup=args.warmup)
    finally:
        server.stop()
        if args.log:
            with open(args.log, "w") as f:
                f.write(server.log)
    print(report.summary())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dataclasses.asdict(report), f, indent=1)
    clean = (report.server_alive and report.checks_failed == 0
             and not report.findings["server_tracebacks"])
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
