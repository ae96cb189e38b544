"""WebSocket echo round trips per second and memory per idle WebSocket, side by side.

Owns the WebSocket benchmark: kyoukai_h2fast, uvicorn (``--ws websockets --http httptools
--loop uvloop``) and granian (``--interface asgi --http 1 --loop uvloop``) serve the same ASGI
echo app (``bench/ws_apps.py``) over HTTP/1.1 Upgrade, each in one process pinned to core 0
(``taskset -c 0``); this process is the client, pinned to core 1. All servers run at the same
time and every case is measured on each of them in turn, so a burst of load on the shared
machine hits them alike.

Cases: 1 and 100 connections x 16 B and 16 KiB binary messages, one message in flight per
connection, for ``--duration`` seconds per server after a short warm-up, cut into ``--rounds``
slices that the servers take in turn; then round trips per second. The
client is the same for every server: a raw asyncio protocol (uvloop) that sends a pre-masked
frame and counts the bytes of the echo without copying them (the first echo of every connection
is checked byte for byte), so it costs the same per round trip whatever the server. The client
offers no permessage-deflate. Idle memory: a fresh server gets 1000 idle WebSockets (open,
nothing sent); the RSS of its process tree after, minus before, over 1000.

Writes ``bench/scratch/ws-<timestamp>.md`` (git-ignored) and prints it; exit 1 when any cell
failed, 2 on bad arguments, 3 when a peer is missing from ``bench/.venv-peers``.

    python bench/ws_echo.py [--quick] [--duration S] [--warmup S] [--rounds N]
                            [--servers kyoukai,uvicorn,granian]
                            [--idle N] [--uvicorn-ws IMPL] [--venv DIR] [--out DIR]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import datetime
import hashlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
DEFAULT_VENV = os.path.join(BENCH_DIR, ".venv-peers")
if not os.path.isdir(DEFAULT_VENV):
    # a worktree without its own peers' venv: the main checkout's (git worktree's common dir)
    try:
        common = subprocess.run(["git", "-C", ROOT, "rev-parse", "--git-common-dir"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        main_venv = os.path.join(os.path.dirname(os.path.abspath(os.path.join(ROOT, common))),
                                 "bench", ".venv-peers")
        if common and os.path.isdir(main_venv):
            DEFAULT_VENV = main_venv
    except (OSError, subprocess.SubprocessError):
        pass
SERVER_CORE, CLIENT_CORE = 0, 1
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SERVER_IDS = ("kyoukai", "uvicorn", "granian")
LABELS = {"kyoukai": "kyoukai_h2fast", "uvicorn": "uvicorn", "granian": "granian"}
CASES = [(1, 16), (1, 16384), (100, 16), (100, 16384)]


def _size_label(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


# ----------------------------------------------------------------------------- servers

def server_argv(server: str, port: int, venv: str, uvicorn_ws: str = "websockets") -> list[str]:
    app = "ws_apps:app"
    host = ["--host", "127.0.0.1", "--port", str(port)]
    if server == "kyoukai":
        return [sys.executable, "-m", "kyoukai_h2fast", app, *host, "--interface", "asgi",
                "--loop", "uvloop", "--log-level", "warning", "--shutdown-timeout", "2"]
    if server == "uvicorn":
        return [os.path.join(venv, "bin", "uvicorn"), "--ws", uvicorn_ws, "--http",
                "httptools", "--loop", "uvloop", *host, "--log-level", "warning",
                "--no-access-log", app]
    if server == "granian":
        return [os.path.join(venv, "bin", "granian"), "--interface", "asgi", "--http", "1",
                "--workers", "1", "--loop", "uvloop", *host, "--log-level", "warning", app]
    raise ValueError(server)


def peer_missing(server: str, venv: str, uvicorn_ws: str = "websockets") -> str:
    """Why a server cannot run here ('' when it can)."""
    if server == "kyoukai":
        return ""
    exe = os.path.join(venv, "bin", server)
    if not os.path.exists(exe):
        return f"{exe} not found (python bench/run.py --quick creates {venv})"
    if server == "uvicorn":
        py = os.path.join(venv, "bin", "python")
        ws = "wsproto" if uvicorn_ws == "wsproto" else "websockets"
        probe = subprocess.run([py, "-c", f"import {ws}, httptools, uvloop"],
                               capture_output=True, timeout=30)
        if probe.returncode:
            return (f"uvicorn's --ws {uvicorn_ws} needs {ws}, httptools and uvloop in {venv}"
                    f" ({py} -m pip install {ws} httptools uvloop)")
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo += _children(p)
    return pids


def tree_rss_kib(pid: int) -> int:
    """VmRSS of a process and its descendants (granian serves from a worker process)."""
    total = 0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def tree_cpu_seconds(pid: int) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])     # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


@dataclasses.dataclass
class Server:
    id: str
    argv: list
    port: int
    proc: subprocess.Popen | None = None
    log: str = ""

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [BENCH_DIR, ROOT] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env.pop("KYOUKAI_H2FAST_NO_EXTENSIONS", None)
        self.log = os.path.join(OUT_LOGS, f"{self.id}.log")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["taskset", "-c", str(SERVER_CORE), *self.argv], cwd=ROOT, env=env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"exited with {self.proc.returncode} (log: {self.log})"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return ""
            except OSError:
                time.sleep(0.1)
        return f"not listening after {timeout:.0f} s (log: {self.log})"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait(5)

    def restart(self) -> str:
        self.stop()
        self.start()
        return self.wait_ready()


OUT_LOGS = ""

# ----------------------------------------------------------------------------- client


class CellError(Exception):
    pass


def client_frame(payload: bytes, opcode: int = 2) -> bytes:
    """One masked client frame (FIN set)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")
              ).to_bytes(n, "big") if n else b""
    return head + mask + masked


class EchoClient(asyncio.Protocol):
    """One WebSocket connection: handshake, then one frame in flight while ``running``."""

    def __init__(self, host: str, port: int, frame: bytes, payload: bytes):
        self.host, self.port = host, port
        self.frame, self.payload, self.expect = frame, payload, len(payload)
        self.key = base64.b64encode(os.urandom(16))
        self.transport = None
        self.handshake = asyncio.get_running_loop().create_future()
        self.head = b""
        self.tail = b""
        self.remaining = 0          # payload bytes of the current frame still to come
        self.fin = False
        self.msg_len = 0
        self.collect: bytearray | None = None
        self.echoed: asyncio.Future | None = None
        self.count = 0
        self.running = False
        self.in_flight = False
        self.idle_waiter: asyncio.Future | None = None
        self.error = ""

    # -- asyncio.Protocol
    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.write(b"GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                        b"Sec-WebSocket-Version: 13\r\n\r\n"
                        % (self.host.encode(), self.port, self.key))

    def connection_lost(self, exc):
        if not self.error and (self.running or self.in_flight or not self.handshake.done()):
            self._fail(f"connection lost: {exc or 'closed by the server'}")
        self._fail_waiters("connection lost")

    def data_received(self, data):
        if not self.handshake.done():
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > 65536:
                    self._fail("handshake response too long")
                return
            head, data = self.head[:end], self.head[end + 4:]
            self.head = b""
            status = head.split(b"\r\n", 1)[0]
            accept = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest())
            if b" 101" not in status:
                return self._fail(f"handshake: {status.decode('latin-1')}")
            if accept.lower() not in head.lower():
                return self._fail("handshake: wrong Sec-WebSocket-Accept")
            self.handshake.set_result(None)
            if not data:
                return
        if self.tail:
            data = self.tail + data
            self.tail = b""
        n, i = len(data), 0
        while i < n:
            if self.remaining:
                take = min(self.remaining, n - i)
                if self.collect is not None:
                    self.collect += data[i:i + take]
                i += take
                self.remaining -= take
                if not self.remaining and self.fin:
                    self._message_done()
                continue
            if n - i < 2:
                self.tail = data[i:]
                return
            b0, b1 = data[i], data[i + 1]
            length, hl = b1 & 0x7F, 2
            if length == 126:
                hl = 4
            elif length == 127:
                hl = 10
            if n - i < hl:
                self.tail = data[i:]
                return
            if hl > 2:
                length = int.from_bytes(data[i + 2:i + hl], "big")
            if b1 & 0x80:
                return self._fail("masked frame from the server")
            opcode = b0 & 0x0F
            if opcode >= 8:
                if n - i < hl + length:
                    self.tail = data[i:]
                    return
                self._control(opcode, data[i + hl:i + hl + length])
                i += hl + length
                continue
            self.fin = bool(b0 & 0x80)
            self.msg_len += length
            self.remaining = length
            i += hl
            if not length and self.fin:
                self._message_done()

    # -- frames
    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == 9:                                   # ping -> pong
            self.transport.write(client_frame(payload, 0xA))
        elif opcode == 8:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            self._fail(f"close frame from the server (code {code}, "
                       f"{payload[2:].decode('utf-8', 'replace')!r})")

    def _message_done(self) -> None:
        got, self.msg_len = self.msg_len, 0
        self.in_flight = False
        if got != self.expect:
            return self._fail(f"echo of {got} bytes, sent {self.expect}")
        if self.collect is not None:
            ok, self.collect = bytes(self.collect) == self.payload, None
            if not ok:
                return self._fail("echo differs from the message sent")
        if self.echoed is not None and not self.echoed.done():
            self.echoed.set_result(None)
            return
        self.count += 1
        if self.running:
            self.in_flight = True
            self.transport.write(self.frame)
        elif self.idle_waiter is not None and not self.idle_waiter.done():
            self.idle_waiter.set_result(None)

    def _fail(self, why: str) -> None:
        if not self.error:
            self.error = why
        self.running = False
        if not self.handshake.done():
            self.handshake.set_exception(CellError(why))
        self._fail_waiters(why)
        if self.transport is not None:
            self.transport.close()

    def _fail_waiters(self, why: str) -> None:
        for fut in (self.echoed, self.idle_waiter):
            if fut is not None and not fut.done():
                fut.set_exception(CellError(self.error or why))

    # -- driving
    async def echo_once(self, timeout: float) -> None:
        """One checked round trip (the echo compared byte for byte)."""
        self.echoed = asyncio.get_running_loop().create_future()
        self.collect = bytearray()
        self.in_flight = True
        self.transport.write(self.frame)
        try:
            await asyncio.wait_for(self.echoed, timeout)
        finally:
            self.echoed = None

    def start(self) -> None:
        self.running = True
        self.in_flight = True
        self.transport.write(self.frame)

    async def stop(self, timeout: float) -> None:
        self.running = False
        if self.in_flight and not self.error:
            self.idle_waiter = asyncio.get_running_loop().create_future()
            await asyncio.wait_for(self.idle_waiter, timeout)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(b"\x03\xe8", 8))
            self.transport.close()


async def open_clients(port: int, n: int, payload: bytes, timeout: float) -> list[EchoClient]:
    loop = asyncio.get_running_loop()
    frame = client_frame(payload)
    clients: list[EchoClient] = []

    async def one() -> EchoClient:
        _, proto = await loop.create_connection(
            lambda: EchoClient("127.0.0.1", port, frame, payload), "127.0.0.1", port)
        clients.append(proto)
        await asyncio.wait_for(proto.handshake, timeout)
        return proto

    try:
        for start in range(0, n, 100):                     # batches: stay under the backlog
            await asyncio.gather(*(one() for _ in range(start, min(n, start + 100))))
    except BaseException:
        for c in clients:
            c.close()
        raise
    return clients


def close_all(clients) -> None:
    for c in clients:
        c.close()


@dataclasses.dataclass
class Cell:
    value: float | None = None           # round trips/s, or KiB per idle socket
    error: str = ""
    client_cpu: float | None = None      # % of one core over the measured window
    server_cpu: float | None = None


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


async def measure_case(servers: dict, conns: int, size: int, duration: float, warmup: float,
                       rounds: int) -> dict:
    """One case on every server: their connections all open (each checked with one echo),
    then ``rounds`` slices of ``duration / rounds`` seconds, server after server in turn, so a
    burst of other load on the machine is spread over all of them. Returns sid -> Cell."""
    payload = os.urandom(size)
    clients: dict[str, list] = {}
    cells: dict[str, Cell] = {}
    totals = {sid: [0, 0.0, 0.0, 0.0] for sid in servers}    # round trips, s, client, server
    try:
        for sid, srv in servers.items():
            if not srv.alive():
                why = srv.restart()
                if why:
                    cells[sid] = Cell(error=f"server down: {why}")
                    continue
            try:
                clients[sid] = await open_clients(srv.port, conns, payload, timeout=10)
                for c in clients[sid]:
                    await c.echo_once(timeout=10)          # each connection checked once
            except (CellError, OSError, asyncio.TimeoutError) as exc:
                cells[sid] = Cell(error=_err(exc))
        for r in range(rounds):
            for sid, srv in servers.items():
                if sid in cells:
                    continue
                group = clients[sid]
                for c in group:
                    c.start()
                await asyncio.sleep(warmup if r == 0 else min(warmup, 0.1))
                n0, t0 = sum(c.count for c in group), time.perf_counter()
                cpu0, s0 = time.process_time(), tree_cpu_seconds(srv.proc.pid)
                await asyncio.sleep(duration / rounds)
                n1, t1 = sum(c.count for c in group), time.perf_counter()
                cpu1, s1 = time.process_time(), tree_cpu_seconds(srv.proc.pid)
                await asyncio.gather(*(c.stop(10) for c in group), return_exceptions=True)
                errors = [c.error for c in group if c.error]
                if errors:
                    cells[sid] = Cell(error=f"{len(errors)} connection(s) failed: {errors[0]}")
                    continue
                tot = totals[sid]
                tot[0] += n1 - n0
                tot[1] += t1 - t0
                tot[2] += cpu1 - cpu0
                tot[3] += s1 - s0
        for sid, (n, elapsed, ccpu, scpu) in totals.items():
            if sid in cells:
                continue
            if not n:
                cells[sid] = Cell(error="no round trip completed")
                continue
            cells[sid] = Cell(value=n / elapsed, client_cpu=100 * ccpu / elapsed,
                              server_cpu=100 * scpu / elapsed)
        return cells
    finally:
        for group in clients.values():
            close_all(group)


async def measure_idle(server: Server, n: int, settle: float) -> Cell:
    payload = b"x" * 16
    warm = await open_clients(server.port, 10, payload, timeout=10)
    for c in warm:
        await c.echo_once(timeout=10)
    close_all(warm)
    await asyncio.sleep(settle)
    before = tree_rss_kib(server.proc.pid)
    clients = await open_clients(server.port, n, payload, timeout=20)
    try:
        await asyncio.sleep(settle)
        after = tree_rss_kib(server.proc.pid)
        errors = [c.error for c in clients if c.error]
        if errors:
            raise CellError(f"{len(errors)} idle connection(s) failed: {errors[0]}")
        # still answering: one checked echo on the last socket opened
        await clients[-1].echo_once(timeout=10)
        return Cell(value=(after - before) / n)
    finally:
        close_all(clients)


# ----------------------------------------------------------------------------- report

def _fmt_rate(cell: Cell) -> str:
    if cell.error:
        return "failed"
    return f"{cell.value:,.0f}"


def _ratio(ours: Cell | None, peer: Cell | None, lower_is_better: bool = False) -> str:
    if ours is None or peer is None or ours.error or peer.error or not peer.value:
        return "–"
    if lower_is_better:
        return f"{peer.value / ours.value:.2f}×" if ours.value > 0 else "–"
    return f"{ours.value / peer.value:.2f}×"


def _per_cpu(cell: Cell) -> Cell:
    if cell.error or not cell.server_cpu:
        return Cell(error=cell.error or "no server CPU measured")
    return Cell(value=cell.value / (cell.server_cpu / 100))


def _shown(arg: str) -> str:
    return os.path.relpath(arg, ROOT) if arg.startswith(ROOT + os.sep) else arg


def render(servers: list[str], results: dict, idle: dict, args, versions: dict,
           started: str) -> str:
    peers = [s for s in servers if s != "kyoukai"]
    ours = "kyoukai" in servers
    lines = ["# WebSocket echo: round trips per second", "",
             f"{started} UTC, {platform.node()}, Python {platform.python_version()}, "
             f"{os.cpu_count()} cores (shared machine: figures are noisy; compare ratios "
             "within one run).", "",
             f"Servers pinned to core {SERVER_CORE}, client to core {CLIENT_CORE}; "
             f"{args.duration:g} s per case and server, in {args.rounds} slice(s) taken by the "
             f"servers in turn (first after {args.warmup:g} s warm-up); one binary message "
             "in flight per connection; no permessage-deflate; all servers up at once.", ""]
    head = ["case", *(LABELS[s] for s in servers)]
    if ours:
        head += [f"ours / {LABELS[p]}" for p in peers]
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for conns, size in CASES:
        row = [f"{conns} conn{'s' if conns > 1 else ''}, {_size_label(size)}"]
        row += [_fmt_rate(results[(s, conns, size)]) for s in servers]
        if ours:
            row += [_ratio(results[("kyoukai", conns, size)], results[(p, conns, size)])
                    for p in peers]
        lines.append("| " + " | ".join(row) + " |")
    row = [f"KiB per idle WebSocket ({args.idle} open)"]
    row += ["failed" if idle[s].error else f"{idle[s].value:.1f}" for s in servers]
    if ours:
        row += [_ratio(idle["kyoukai"], idle[p], lower_is_better=True) for p in peers]
    lines += ["| " + " | ".join(row) + " |", ""]
    if ours and peers:
        lines += ["Ratios: round trips ours / peer (above 1: kyoukai_h2fast faster); idle "
                  "memory peer / ours (above 1: kyoukai_h2fast smaller).", ""]
    lines += ["CPU over the measured window, % of one core (server process tree / this "
              "client): a client near 100 % would mean the client, not the server, set the "
              "pace.", "", "| case | " + " | ".join(LABELS[s] for s in servers) + " |",
              "|" + " --- |" * (len(servers) + 1)]
    for conns, size in CASES:
        cells = []
        for s in servers:
            c = results[(s, conns, size)]
            cells.append("–" if c.error else f"{c.server_cpu:.0f} / {c.client_cpu:.0f}")
        lines.append(f"| {conns} conn{'s' if conns > 1 else ''}, {_size_label(size)} | "
                     + " | ".join(cells) + " |")
    lines += ["", "Round trips per second of server CPU (round trips/s over the server's CPU "
              "share above): less sensitive to other load on the machine than the first table, "
              "as long as the client was not the pace setter.", "",
              "| case | " + " | ".join(LABELS[s] for s in servers)
              + "".join(f" | ours / {LABELS[p]}" for p in peers if ours) + " |",
              "|" + " --- |" * (len(servers) + 1 + (len(peers) if ours else 0))]
    for conns, size in CASES:
        per_cpu = {s: _per_cpu(results[(s, conns, size)]) for s in servers}
        row = [f"{conns} conn{'s' if conns > 1 else ''}, {_size_label(size)}"]
        row += ["–" if per_cpu[s].error else f"{per_cpu[s].value:,.0f}" for s in servers]
        if ours:
            row += [_ratio(per_cpu["kyoukai"], per_cpu[p]) for p in peers]
        lines.append("| " + " | ".join(row) + " |")
    failures = [(k, c.error) for k, c in list(results.items()) + list(idle.items()) if c.error]
    if failures:
        lines += ["", "## Failed cells", ""]
        for key, err in failures:
            if isinstance(key, tuple):
                sid, conns, size = key
                where = f"{LABELS[sid]}, {conns} conn{'s' if conns > 1 else ''}, " \
                        f"{_size_label(size)}"
            else:
                where = f"{LABELS[key]}, idle memory"
            lines.append(f"* {where}: {err}")
    lines += ["", "## Servers", ""]
    for s in servers:
        lines.append(f"* {LABELS[s]} ({versions.get(s, '?')}): `{' '.join(args.argv_of[s])}`")
    lines += ["", f"Command: `{' '.join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])}`",
              ""]
    return "\n".join(lines)


def _versions(venv: str, servers: list[str]) -> dict:
    out = {}
    for s in servers:
        if s == "kyoukai":
            cmd = [sys.executable, "-m", "kyoukai_h2fast", "--version"]
        else:
            cmd = [os.path.join(venv, "bin", s), "--version"]
        try:
            env = dict(os.environ, PYTHONPATH=ROOT)
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=ROOT,
                                 env=env)
            out[s] = (res.stdout or res.stderr).strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            out[s] = "version unknown"
    return out


# ----------------------------------------------------------------------------- main

async def run(args, servers: dict[str, Server]) -> tuple[dict, dict]:
    results: dict = {}
    idle: dict = {}
    order = list(servers)
    for sid in order:                   # idle memory first, on a fresh server
        srv = servers[sid]
        try:
            idle[sid] = await measure_idle(srv, args.idle, settle=args.settle)
        except (CellError, OSError, asyncio.TimeoutError) as exc:
            idle[sid] = Cell(error=_err(exc))
        print(f"idle       {LABELS[sid]:15} {idle[sid].error or f'{idle[sid].value:.1f} KiB'}",
              flush=True)
        await asyncio.sleep(args.settle)
    for conns, size in CASES:
        cells = await measure_case(servers, conns, size, args.duration, args.warmup,
                                   args.rounds)
        for sid in order:
            cell = results[(sid, conns, size)] = cells[sid]
            label = f"{conns}x{_size_label(size)}"
            print(f"{label:10} {LABELS[sid]:15} "
                  f"{cell.error or f'{cell.value:,.0f} round trips/s'}", flush=True)
        await asyncio.sleep(0.3)
    return results, idle


def main(argv=None) -> int:
    global OUT_LOGS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="1 s per case, 200 idle sockets")
    p.add_argument("--duration", type=float, help="seconds per case (default 3; --quick 1)")
    p.add_argument("--warmup", type=float, help="seconds before each case (default 0.5)")
    p.add_argument("--rounds", type=int,
                   help="slices per case, servers taking turns (default 3; --quick 1)")
    p.add_argument("--idle", type=int, help="idle WebSockets opened (default 1000; --quick 200)")
    p.add_argument("--servers", default=",".join(SERVER_IDS),
                   help="comma-separated subset of " + ",".join(SERVER_IDS))
    p.add_argument("--uvicorn-ws", default="websockets",
                   choices=["websockets", "websockets-sansio", "wsproto"],
                   help="uvicorn's --ws implementation (default websockets)")
    p.add_argument("--venv", default=DEFAULT_VENV, help="the peers' venv (bench/.venv-peers)")
    p.add_argument("--out", default=os.path.join(BENCH_DIR, "scratch"))
    args = p.parse_args(argv)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    bad = [s for s in servers if s not in SERVER_IDS]
    if bad or not servers or len(set(servers)) != len(servers):
        p.error(f"--servers: choose from {','.join(SERVER_IDS)} (got {args.servers!r})")
    args.duration = args.duration if args.duration is not None else (1.0 if args.quick else 3.0)
    args.warmup = args.warmup if args.warmup is not None else 0.5
    args.idle = args.idle if args.idle is not None else (200 if args.quick else 1000)
    args.rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    args.settle = 0.5 if args.quick else 1.0
    if args.duration <= 0 or args.warmup < 0 or args.idle < 1 or args.rounds < 1:
        p.error("--duration must be > 0, --warmup >= 0, --idle >= 1, --rounds >= 1")
    if shutil.which("taskset") is None:
        print("ws_echo: taskset not found (util-linux)", file=sys.stderr)
        return 3
    missing = {s: peer_missing(s, args.venv, args.uvicorn_ws) for s in servers}
    if any(missing.values()):
        for s, why in missing.items():
            if why:
                print(f"ws_echo: {s}: {why}", file=sys.stderr)
        return 3
    try:
        import uvloop
    except ImportError:
        print("ws_echo: uvloop missing in this interpreter (the client and kyoukai_h2fast use "
              "it)", file=sys.stderr)
        return 3
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.idle + 500
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        except (ValueError, OSError):
            pass
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    stamp = started.replace("-", "").replace(":", "").replace(" ", "-")
    os.makedirs(args.out, exist_ok=True)
    OUT_LOGS = os.path.join(args.out, f"ws-{stamp}-logs")
    os.makedirs(OUT_LOGS, exist_ok=True)
    args.argv_of = {}
    running: dict[str, Server] = {}
    versions = _versions(args.venv, servers)
    try:
        for sid in servers:
            port = _free_port()
            srv = Server(sid, server_argv(sid, port, args.venv, args.uvicorn_ws), port)
            args.argv_of[sid] = ["taskset", "-c", str(SERVER_CORE)] + [
                _shown(a) for a in srv.argv]
            srv.start()
            running[sid] = srv
        for sid, srv in running.items():
            why = srv.wait_ready()
            if why:
                print(f"ws_echo: {sid} {why}", file=sys.stderr)
        os.sched_setaffinity(0, {CLIENT_CORE})
        results, idle = uvloop.run(run(args, running))
    finally:
        for srv in running.values():
            srv.stop()
    report = render(servers, results, idle, args, versions, started)
    path = os.path.join(args.out, f"ws-{stamp}.md")
    with open(path, "w") as f:
        f.write(report)
    print()
    print(report)
    print(f"written to {os.path.relpath(path)} (server logs in {os.path.relpath(OUT_LOGS)})")
    failed = any(c.error for c in list(results.values()) + list(idle.values()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
