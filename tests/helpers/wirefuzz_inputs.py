"""The inputs of ``tests/helpers/wirefuzz.py``: seeded random HTTP/2 connection scripts.

One *script* per connection, from ``random.Random(f"{seed}:{index}")`` (:func:`make_script`),
so a pool of scripts replays exactly:

* mutated valid captures: what ``h2``'s client sends for a few requests (GET/POST with bodies,
  PING, WINDOW_UPDATE, RST_STREAM), with frames dropped, duplicated, swapped, replaced or their
  header fields changed, then maybe bytes flipped, inserted or cut;
* hand-built conversations: a preface (now and then broken), SETTINGS with random and invalid
  values, then frames of every type (DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS,
  PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION, ALTSVC, ORIGIN, unknown) with random
  flags, stream ids, lengths (sometimes lying), padding and window increments; HEADERS carry
  valid request heads, hand-built HPACK (bad indices, table size updates, broken Huffman,
  truncated integers, forbidden fields) or mutated blocks, split over CONTINUATION frames.

Bounds: at most ``MAX_SCRIPT_BYTES`` per script, sent in random chunks with short pauses; the script
also says how the connection ends (FIN, RST, reading until the server closes, or, for 3% of them,
holding it open up to ``HOLD_SECONDS``). Owns no I/O: ``tests/helpers/wirefuzz.py`` plays them.
"""
from __future__ import annotations

import dataclasses
import random
import struct

import h2.config
import h2.connection
import hpack

__all__ = ["Script", "make_script", "frame", "hand_built_block", "mutate", "PREFACE",
           "MAX_SCRIPT_BYTES", "HOLD_SECONDS", "ORIGIN"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_SCRIPT_BYTES = 256 * 1024
HOLD_SECONDS = 3.0      # the longest a connection stays open (3% of them: stalled uploads etc.)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION, ALTSVC = range(11)
ORIGIN = 0x0C
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

#: The app's routes (tests/served_apps/basic.py: wsgi_app) and some it does not have; no slow route:
#: a fuzz input must not hold a worker for seconds by the app's own design.
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
            pieces = [block[a:b] for a, b in zip([0] + cuts, cuts + [len(block)], strict=True)]
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
        body = (rng.randbytes(rng.choice([0, 10, 3000, 40000]))
                if path in ("/echo", "/sha256") else None)
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
