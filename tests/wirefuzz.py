"""Seeded random HTTP/2 wire input against a real server, with a legitimate client alongside.

What issue 14 asked for: a fuzz-like run of mixed bad input from outside, which must leave
legitimate clients answered every time, no traceback in the server log except from app code,
and memory that plateaus. This module owns the generator, the runner and the report; the
bounded pytest is ``tests/test_wire_fuzz.py``. Script mode::

    python tests/wirefuzz.py --seconds 90 --impl compiled [--seed 1] [--pool 500] [--workers 6]

starts the server (``tests/serverproc.py``, the ``tests.apps:wsgi_app`` app by default), fuzzes
it from ``--workers`` threads while a legitimate httpx HTTP/2 client sends ``GET /`` every
``--interval`` seconds on its own connection, samples the server's RSS, and prints connections
made, legitimate checks ok/failed with their latency percentiles, RSS (start, plateau, end) and
every ``Traceback``/``ERROR`` line of the server log. Exit status 0 when nothing was found.

Inputs (one *script* per connection, from ``random.Random(f"{seed}:{index}")``, so
``--pool N`` scripts are replayed in a cycle, exactly reproducible):

* mutated valid captures: what ``h2``'s client sends for a few requests (GET/POST with bodies,
  PING, PRIORITY, WINDOW_UPDATE, RST_STREAM), with frames dropped, duplicated, swapped, replaced
  or their header fields changed, then maybe bytes flipped, inserted or cut;
* hand-built conversations: a preface (now and then broken), SETTINGS with random and invalid
  values, then frames of every type (DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS,
  PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION, ALTSVC, ORIGIN, unknown) with random
  flags, stream ids, lengths (sometimes lying), padding and window increments; HEADERS carry
  valid request heads, hand-built HPACK (bad indices, table size updates, broken Huffman,
  truncated integers, forbidden fields) or mutated blocks, split over CONTINUATION frames.

Bounds: loopback only (refuses other hosts), at most ``MAX_SCRIPT_BYTES`` sent per connection,
each connection lives at most about a second (sent in random chunks, with short pauses, then
closed by FIN, by RST, or after reading until the server closes), 3% of them up to
``HOLD_SECONDS`` (a client that keeps a stalled upload or an unfinished header block open).
"""
from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import os
import random
import re
import select
import socket
import struct
import sys
import threading
import time

import h2.config
import h2.connection
import hpack

__all__ = ["Script", "make_script", "run_script", "FuzzReport", "run", "log_findings", "main"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_SCRIPT_BYTES = 256 * 1024
HOLD_SECONDS = 3.0      # the longest a connection stays open (3% of them: stalled uploads etc.)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION, ALTSVC = range(11)
ORIGIN = 0x0C
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

#: The app's routes (tests/apps.py: wsgi_app) and some it does not have; no slow route: a
#: fuzz input must not hold a worker for seconds by the app's own design.
PATHS = ["/", "/echo", "/sha256", "/lines", "/bytes/10", "/bytes/70000", "/stream?3",
         "/stream-fail", "/environ", "/raise", "/bad-headers", "/bad-status", "/write",
         "/no-read", "/empty", "/missing", "/bytes/xyz", "/%ff%00", "/a?b=c&d", "*", ""]
METHODS = ["GET", "POST", "PUT", "HEAD", "OPTIONS", "DELETE", "CONNECT", "get", "G ET", ""]
HEADER_NAMES = [b"user-agent", b"accept", b"content-type", b"content-length", b"cookie",
                b"x-custom", b"te", b"connection", b"Upper", b"host", b"transfer-encoding",
                b":extra", b"", b"x\x00y", b"expect", b"authorization"]
HEADER_VALUES = [b"", b"1", b"10", b"-1", b"99999999999999999999", b"trailers", b"close",
                 b"gzip", b"a\r\nb", b" padded ", b"\xff\xfe", b"x" * 200, b"100-continue",
                 b"text/plain; charset=utf-8", b"multipart/form-data; boundary=xyz"]


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"",
          length: int | None = None) -> bytes:
    """One frame as bytes, unvalidated (``length`` may lie)."""
    length = len(payload) if length is None else length
    return (struct.pack(">I", length & 0xFFFFFF)[1:] + bytes([ftype & 0xFF, flags & 0xFF])
            + struct.pack(">I", stream_id & 0xFFFFFFFF) + payload)


# ---- HPACK blocks ------------------------------------------------------------------------------
def _hpack_int(value: int, prefix_bits: int, first: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _hpack_string(rng: random.Random, data: bytes) -> bytes:
    roll = rng.random()
    if roll < 0.1:                                        # Huffman flag on raw (invalid) bytes
        return _hpack_int(len(data), 7, 0x80) + data
    if roll < 0.15:                                       # length beyond the block
        return _hpack_int(len(data) + rng.randint(1, 1000), 7, 0) + data
    return _hpack_int(len(data), 7, 0) + data


def hand_built_block(rng: random.Random) -> bytes:
    """A field block of random representations (RFC 7541 §6), valid or not."""
    out = bytearray()
    for _ in range(rng.randint(1, 12)):
        kind = rng.random()
        if kind < 0.3:                                    # indexed, often out of range
            out += _hpack_int(rng.choice([0, 1, 2, 4, 8, 61, 62, 63, 70, 5000, 2**31]), 7, 0x80)
        elif kind < 0.75:                                 # literal, any indexing mode
            first, bits = rng.choice([(0x40, 6), (0x00, 4), (0x10, 4)])
            if rng.random() < 0.5:
                out += _hpack_int(rng.choice([1, 2, 4, 5, 31, 58, 62, 64, 99]), bits, first)
            else:
                out += bytes([first]) + _hpack_string(rng, rng.choice(HEADER_NAMES))
            out += _hpack_string(rng, rng.choice(HEADER_VALUES))
        elif kind < 0.85:                                 # table size update, maybe too late
            out += _hpack_int(rng.choice([0, 1, 100, 4096, 4097, 65536, 2**30]), 5, 0x20)
        elif kind < 0.92:                                 # truncated or overlong integer
            out += rng.choice([b"\xff", b"\xff\x80\x80\x80\x80\x80\x80\x01", b"\x7f\xff"])
        else:                                             # garbage
            out += rng.randbytes(rng.randint(1, 16))
    return bytes(out)


def request_fields(rng: random.Random, body_length: int | None) -> list[tuple[bytes, bytes]]:
    """A request head: mostly valid, sometimes with the mistakes RFC 9113 §8.2/§8.3 forbid."""
    path = rng.choice(PATHS) if rng.random() < 0.95 else "/" + "p" * rng.randint(100, 3000)
    method = "POST" if body_length is not None and rng.random() < 0.8 else "GET"
    if rng.random() < 0.1:
        method = rng.choice(METHODS)
    fields = [(b":method", method.encode()), (b":scheme", rng.choice([b"http", b"https", b"ftp"])),
              (b":authority", b"localhost"), (b":path", path.encode("latin-1"))]
    if body_length is not None and rng.random() < 0.7:
        declared = body_length if rng.random() < 0.8 else rng.choice([0, body_length + 5, 1 << 40])
        fields.append((b"content-length", str(declared).encode()))
    for _ in range(rng.choice([0, 0, 1, 2, 5, 30])):
        fields.append((rng.choice(HEADER_NAMES), rng.choice(HEADER_VALUES)))
    if rng.random() < 0.1:
        rng.shuffle(fields)                               # pseudo-headers after regular ones
    if rng.random() < 0.05:
        missing = rng.choice([b":method", b":path", b":scheme"])
        fields = [f for f in fields if f[0] != missing]
    if rng.random() < 0.05:
        fields.append(fields[0])                          # duplicate pseudo-header
    return fields


def mutate(rng: random.Random, data: bytes, max_ops: int = 4) -> bytes:
    """Byte-level mutations: flip, set, insert, delete, duplicate, truncate."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, max_ops)):
        op = rng.random()
        at = rng.randrange(len(buf) + 1)
        if op < 0.3 and at < len(buf):
            buf[at] ^= 1 << rng.randrange(8)
        elif op < 0.5 and at < len(buf):
            buf[at] = rng.choice([0x00, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        elif op < 0.65:
            buf[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op < 0.8:
            del buf[at:at + rng.randint(1, 16)]
        elif op < 0.9:
            piece = buf[at:at + rng.randint(1, 32)]
            buf[at:at] = piece
        else:
            del buf[at:]
    return bytes(buf)


# ---- frames of every type ----------------------------------------------------------------------
class _Conversation:
    """Frames of one hand-built connection: its HPACK encoder and its stream ids."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.encoder = hpack.Encoder()
        self.next_sid = 1
        self.open: list[int] = []

    def stream_id(self) -> int:
        rng = self.rng
        roll = rng.random()
        if roll < 0.55 or not self.open:
            sid = self.next_sid
            self.next_sid += 2
            self.open.append(sid)
            return sid
        if roll < 0.8:
            return rng.choice(self.open)
        return rng.choice([0, 2, 4, self.next_sid + 100, 2**31 - 1, 2**31 + 1, 0xFFFFFFFF])

    def padding(self, payload: bytes) -> tuple[int, bytes]:
        """(flags, payload) maybe padded, sometimes with a pad length that does not fit."""
        rng = self.rng
        if rng.random() < 0.75:
            return 0, payload
        pad = rng.choice([0, 1, 10, 255])
        if rng.random() < 0.15:                       # pad length longer than the frame
            return PADDED, bytes([255]) + payload[:rng.randint(0, 5)]
        return PADDED, bytes([pad]) + payload + b"\x00" * pad

    def block(self, body_length: int | None) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.65:
            return self.encoder.encode(request_fields(rng, body_length))
        if roll < 0.85:
            return mutate(rng, self.encoder.encode(request_fields(rng, body_length)), 2)
        return hand_built_block(rng)

    def headers(self) -> bytes:
        """HEADERS (+ CONTINUATIONs, + DATA) for one request."""
        rng = self.rng
        sid = self.stream_id()
        body = None
        if rng.random() < 0.5:
            body = rng.randbytes(rng.choice([0, 1, 10, 100, 5000, 20000]))
        block = self.block(len(body) if body is not None else None)
        end_stream = END_STREAM if body is None and rng.random() < 0.9 else 0
        if rng.random() < 0.05:
            end_stream = END_STREAM ^ end_stream
        pieces = [block]
        if rng.random() < 0.2 and len(block) > 2:
            cuts = sorted(rng.sample(range(1, len(block)), min(len(block) - 1, rng.randint(1, 3))))
            pieces = [block[a:b] for a, b in zip([0] + cuts, cuts + [len(block)])]
        prio = b""
        flags = end_stream
        if rng.random() < 0.15:
            flags |= PRIORITY_FLAG
            depends_on = rng.choice([0, sid, sid + 2, 0x80000001]) & 0xFFFFFFFF
            prio = struct.pack(">IB", depends_on, rng.randrange(256))
        pad_flags, payload = self.padding(prio + pieces[0])
        flags |= pad_flags
        last = len(pieces) == 1
        out = frame(HEADERS, flags | (END_HEADERS if last else 0), sid, payload)
        for i, piece in enumerate(pieces[1:], 2):
            if rng.random() < 0.05:
                out += self.random_frame()            # interrupts the header block
            out += frame(CONTINUATION, END_HEADERS if i == len(pieces) else 0,
                         sid if rng.random() < 0.95 else sid + 2, piece)
        if body is not None:
            out += self.data(sid, body)
        return out

    def data(self, sid: int, body: bytes) -> bytes:
        rng = self.rng
        out = b""
        chunks = [body[i:i + 16384] for i in range(0, len(body), 16384)] or [b""]
        for i, chunk in enumerate(chunks):
            if rng.random() < 0.05:
                break                                 # the rest never comes
            last = i == len(chunks) - 1
            flags, payload = self.padding(chunk)
            if last and rng.random() < 0.9:
                flags |= END_STREAM
            out += frame(DATA, flags, sid, payload)
        return out

    def settings(self, ack: bool = False) -> bytes:
        rng = self.rng
        if ack:
            return frame(SETTINGS, ACK, 0, b"" if rng.random() < 0.95 else b"\x00" * 6)
        entries = b""
        for _ in range(rng.choice([0, 1, 2, 6])):
            ident = rng.choice([1, 2, 3, 4, 5, 6, 8, 9, 0, 0x10, 0xFFFF])
            value = rng.choice([0, 1, 100, 16384, 65535, 2**24 - 1, 2**24, 2**31 - 1, 2**31,
                                2**32 - 1])
            entries += struct.pack(">HI", ident, value)
        if rng.random() < 0.05:
            entries += b"\x00\x01\x02"                # not a multiple of 6
        return frame(SETTINGS, 0, 0 if rng.random() < 0.95 else 1, entries)

    def random_frame(self) -> bytes:
        """One frame of any type with random flags, ids and fields."""
        rng = self.rng
        kind = rng.random()
        sid = self.stream_id() if rng.random() < 0.9 else 0
        if kind < 0.12:
            return self.data(sid, rng.randbytes(rng.choice([0, 1, 100, 16384, 20000])))
        if kind < 0.35:
            return self.headers()
        if kind < 0.42:
            length = rng.choice([5, 5, 5, 4, 6])
            payload = struct.pack(">IB", rng.choice([0, sid, 1, 0x80000000 | sid]) & 0xFFFFFFFF,
                                  rng.randrange(256)) + b"\x00"
            return frame(PRIORITY, rng.randrange(256), sid, payload[:length])
        if kind < 0.5:
            code = rng.choice([0, 1, 2, 7, 8, 0xFF, 0xFFFFFFFF])
            return frame(RST_STREAM, rng.randrange(256), sid,
                         struct.pack(">I", code)[:rng.choice([4, 4, 4, 3])] + b"\x00" *
                         rng.choice([0, 0, 0, 1]))
        if kind < 0.57:
            return self.settings(ack=rng.random() < 0.3)
        if kind < 0.6:
            return frame(PUSH_PROMISE, rng.randrange(256), sid,
                         struct.pack(">I", rng.choice([0, 2, 3])) + self.block(None))
        if kind < 0.68:
            opaque = rng.randbytes(rng.choice([8, 8, 8, 0, 9]))
            return frame(PING, rng.choice([0, ACK, 0xFF]), rng.choice([0, 0, 0, 1]), opaque)
        if kind < 0.72:
            return frame(GOAWAY, rng.randrange(256), rng.choice([0, 0, 0, 1]),
                         struct.pack(">II", rng.randrange(2**32), rng.choice([0, 1, 2, 11]))
                         + rng.randbytes(rng.choice([0, 0, 8]))[:rng.choice([100, 3])])
        if kind < 0.85:
            increment = rng.choice([0, 1, 100, 65535, 2**20, 2**31 - 1, 2**31, 2**32 - 1])
            return frame(WINDOW_UPDATE, rng.randrange(256), rng.choice([0, sid]),
                         struct.pack(">I", increment)[:rng.choice([4, 4, 4, 2])])
        if kind < 0.89:
            return frame(CONTINUATION, rng.randrange(256), sid, self.block(None))
        if kind < 0.92:
            origin = b"https://example.com"
            return frame(ALTSVC, 0, rng.choice([0, sid]),
                         struct.pack(">H", rng.choice([len(origin), 500])) + origin + b'h2=":443"')
        if kind < 0.94:
            return frame(ORIGIN, 0, 0, b"\x00\x05a.com")
        if kind < 0.97:                               # unknown types are ignored (§4.1)
            return frame(rng.randrange(0x0D, 0x100), rng.randrange(256), sid,
                         rng.randbytes(rng.randint(0, 64)))
        # A header that lies about the length (the rest never comes) or exceeds the max size.
        return frame(rng.randrange(11), rng.randrange(256), sid, rng.randbytes(10),
                     length=rng.choice([16385, 2**24 - 1, 1000]))


# ---- whole connections -------------------------------------------------------------------------
@dataclasses.dataclass
class Script:
    """One connection's input: chunks to send (with a pause before each), then how it ends."""

    chunks: list[tuple[float, bytes]]
    ending: str                     # "fin", "rst", "drain" (read until the server closes, at
                                    # most 1 s) or "hold" (the same, at most HOLD_SECONDS)
    read_seconds: float             # reading after the last chunk (before a FIN/RST ending)

    @property
    def size(self) -> int:
        return sum(len(c) for _, c in self.chunks)


def _capture(rng: random.Random) -> list[bytes]:
    """The frames h2's own client sends for a few requests: a valid capture."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    for _ in range(rng.randint(1, 4)):
        sid = conn.get_next_available_stream_id()
        path = rng.choice(["/", "/echo", "/sha256", "/environ", "/bytes/100", "/missing"])
        body = rng.randbytes(rng.choice([0, 10, 3000, 40000])) if path in ("/echo", "/sha256") else None
        fields = [(":method", "POST" if body is not None else "GET"), (":scheme", "http"),
                  (":authority", "localhost"), (":path", path), ("user-agent", "wirefuzz/1")]
        if body is not None:
            fields.append(("content-length", str(len(body))))
        conn.send_headers(sid, fields, end_stream=body is None)
        if body is not None:
            body = body[:conn.local_flow_control_window(sid)]
            for at in range(0, len(body), 16384):
                conn.send_data(sid, body[at:at + 16384], end_stream=at + 16384 >= len(body))
            if not body:
                conn.end_stream(sid)
        if rng.random() < 0.3:
            conn.ping(rng.randbytes(8))
        if rng.random() < 0.2:
            conn.increment_flow_control_window(rng.randint(1, 1 << 20))
        if rng.random() < 0.1:
            conn.reset_stream(sid)
    wire = conn.data_to_send()
    frames = [wire[:len(PREFACE)]]
    pos = len(PREFACE)
    while pos < len(wire):
        length = int.from_bytes(wire[pos:pos + 3], "big")
        frames.append(wire[pos:pos + 9 + length])
        pos += 9 + length
    return frames


def _mutated_capture(rng: random.Random) -> bytes:
    frames = _capture(rng)
    for _ in range(rng.randint(0, 4)):
        op = rng.random()
        i = rng.randrange(1, len(frames)) if len(frames) > 1 else 0
        if op < 0.2:
            del frames[i]
        elif op < 0.4:
            frames.insert(i, frames[i])
        elif op < 0.55 and len(frames) > 2:
            j = rng.randrange(1, len(frames))
            frames[i], frames[j] = frames[j], frames[i]
        elif op < 0.75:
            frames[i] = _Conversation(rng).random_frame()
        elif len(frames[i]) >= 9:                      # change type, flags or stream id
            head = bytearray(frames[i][:9])
            field = rng.choice([3, 4, 5, 8])
            head[field] = rng.randrange(256)
            frames[i] = bytes(head) + frames[i][9:]
    data = b"".join(frames)
    return mutate(rng, data) if rng.random() < 0.4 else data


def _conversation(rng: random.Random) -> bytes:
    conv = _Conversation(rng)
    roll = rng.random()
    preface = PREFACE if roll < 0.93 else (mutate(rng, PREFACE, 1) if roll < 0.97 else b"")
    out = preface + conv.settings()
    if rng.random() < 0.8:
        out += conv.settings(ack=True)
    for _ in range(rng.randint(1, 25)):
        out += conv.headers() if rng.random() < 0.3 else conv.random_frame()
        if len(out) > MAX_SCRIPT_BYTES:
            break
    return out


def make_script(seed: int, index: int) -> Script:
    """The ``index``-th connection script of run ``seed`` (deterministic)."""
    rng = random.Random(f"{seed}:{index}")
    data = _mutated_capture(rng) if rng.random() < 0.35 else _conversation(rng)
    data = data[:MAX_SCRIPT_BYTES]
    chunks: list[tuple[float, bytes]] = []
    pos = 0
    while pos < len(data):
        size = rng.choice([1, 9, 100, 4096, 65536, len(data)])
        pause = rng.choice([0.0, 0.0, 0.0, 0.001, 0.01, 0.05]) if chunks else 0.0
        chunks.append((pause, data[pos:pos + size]))
        pos += size
    if rng.random() < 0.03 and len(chunks) > 1:        # a slow connection (bounded)
        chunks[-1] = (0.3, chunks[-1][1])
    ending = rng.choice(["fin", "fin", "rst", "drain"]) if rng.random() > 0.03 else "hold"
    return Script(chunks, ending, rng.choice([0.0, 0.02, 0.1, 0.3]))


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


def log_findings(lines: list[str], app_files=("tests/apps.py",)) -> dict:
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
        return latencies[min(int(q * len(latencies)), len(latencies) - 1)] * 1000 if latencies else 0.0

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
    parser.add_argument("--workers", type=int, default=6, help="fuzzing threads")
    parser.add_argument("--interval", type=float, default=0.02, help="legitimate GET / period")
    parser.add_argument("--warmup", type=float, default=None, help="default: max(5, seconds/6)")
    parser.add_argument("--app", default="tests.apps:wsgi_app")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="extra server CLI argument (repeatable)")
    parser.add_argument("--json", help="write the report (with the RSS samples) here")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from serverproc import ServerProcess

    server = ServerProcess(args.app, args.impl, args=args.server_arg)
    try:
        print(f"wirefuzz: {args.impl} server pid {server.pid} on {server.url}; seed {args.seed}, "
              f"{args.pool} scripts, {args.workers} workers, {args.seconds:.0f} s", flush=True)
        report = run(server, args.seconds, args.seed, args.pool, args.workers, args.interval,
                     warmup=args.warmup)
    finally:
        server.stop()
    print(report.summary())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dataclasses.asdict(report), f, indent=1)
    clean = (report.server_alive and report.checks_failed == 0
             and not report.findings["server_tracebacks"])
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
