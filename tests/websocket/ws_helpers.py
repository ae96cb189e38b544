"""Helpers of the WebSocket core tests: a frame factory and an output parser written
independently of the codec under test (struct and plain loops), an echo harness over a
server :class:`~kyoukai_h2fast.websocket.connection.WebSocketConnection`, and a reference for
"these bytes can still start valid UTF-8"."""
from __future__ import annotations

import struct

from kyoukai_h2fast.websocket.connection import WebSocketConnection
from kyoukai_h2fast.websocket.errors import InvalidStateError
from kyoukai_h2fast.websocket.events import BytesMessage, TextMessage

MASK = b"\x37\xfa\x21\x3d"

TEXT, BINARY, CLOSE, PING, PONG, CONT = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


def frame(opcode: int, payload: bytes | str = b"", fin: bool = True, rsv: int = 0,
          mask: bytes | None = MASK, length_bytes: int | None = None,
          length: int | None = None) -> bytes:
    """A raw frame as a client sends it (masked with ``mask``; None: unmasked). ``rsv``: the
    RSV bits as 1 (RSV1), 2 (RSV2), 4 (RSV3); ``length_bytes`` 0/2/8 forces the length's
    encoding (non-minimal ones included); ``length`` overrides the announced length."""
    data = payload.encode() if isinstance(payload, str) else bytes(payload)
    n = len(data) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 1) << 6) | ((rsv & 2) << 4) | ((rsv & 4) << 2) | opcode
    m = 0x80 if mask is not None else 0
    if length_bytes is None:
        length_bytes = 0 if n < 126 else (2 if n < 65536 else 8)
    if length_bytes == 0:
        head = bytes((b0, m | n))
    elif length_bytes == 2:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if mask is None:
        return head + data
    return head + mask + xor(data, mask)


def xor(data: bytes, key: bytes) -> bytes:
    """``data`` XOR ``key`` repeated (as one big integer: fast for large payloads)."""
    if not data:
        return b""
    stream = (key * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(
        len(data), "big")


def close_payload(code: int | None = None, reason: bytes | str = b"") -> bytes:
    if code is None:
        return b""
    return struct.pack("!H", code) + (reason.encode() if isinstance(reason, str) else reason)


def parse_frames(data: bytes, masked: bool = False) -> list[tuple[int, bytes]]:
    """``(opcode, payload)`` of every frame in ``data`` (a server's output: unmasked, FIN set,
    no RSV bits unless compressed: those come back as opcode | 0x40)."""
    frames = []
    pos = 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        assert b0 & 0x80, "a server sends whole messages"
        assert bool(b1 & 0x80) == masked
        n = b1 & 0x7F
        pos += 2
        if n == 126:
            (n,) = struct.unpack_from("!H", data, pos)
            pos += 2
        elif n == 127:
            (n,) = struct.unpack_from("!Q", data, pos)
            pos += 8
        key = b""
        if masked:
            key = data[pos:pos + 4]
            pos += 4
        payload = data[pos:pos + n]
        assert len(payload) == n, "truncated frame"
        if masked:
            payload = xor(payload, key)
        frames.append((b0 & 0x4F, payload))
        pos += n
    return frames


def close_code(payload: bytes) -> int:
    return 1005 if not payload else struct.unpack("!H", payload[:2])[0]


def echo(server: WebSocketConnection, chunks: list[bytes]) -> tuple[list, bytes]:
    """Feed ``chunks`` to ``server`` as an echo app would: every message is sent back as
    soon as the chunk that completed it was read (not after a close: the app's send fails
    then); returns (all events, all bytes the server wrote, in order)."""
    events = []
    out = []
    for chunk in chunks:
        got = server.receive(chunk)
        events += got
        out.append(server.data_to_send())
        for event in got:
            try:
                if isinstance(event, TextMessage):
                    out.append(server.send_text(event.data))
                elif isinstance(event, BytesMessage):
                    out.append(server.send_bytes(event.data))
            except InvalidStateError:
                pass
        server.output_drained()
    return events, b"".join(out)


def chops(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)] or [b""]


# Completions that cover every range boundary of a continuation byte (80-8F, 90-9F, A0-BF).
_CONTINUATIONS = (0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF)


def can_start_utf8(data: bytes) -> bool:
    """Reference for fail-fast validation: some continuation makes ``data`` valid UTF-8.
    Tries every completion of up to 3 bytes from :data:`_CONTINUATIONS` with CPython's
    (whole-input) decoder, unless that decoder finds an error other than running out of
    data (which no completion can mend)."""
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError as e:
        if e.reason != "unexpected end of data":
            return False
    for extra in range(1, 4):
        for n in range(6 ** extra):
            tail = bytes(_CONTINUATIONS[(n // 6 ** i) % 6] for i in range(extra))
            try:
                (data + tail).decode("utf-8")
                return True
            except UnicodeDecodeError:
                pass
    return False
