"""Pure-Python twin of the HTTP/2 frame layer (RFC 9113 §4, §6); compiled: ``_frames_c``.

Owns the same public names and behaviour as the compiled module: ``FrameBuffer`` (a drop-in for
``h2.frame_buffer.FrameBuffer`` that rejects an oversized frame as soon as its 9-byte header is
there and bounds one header block by ``max_header_block_size``), ``serialize_frame``, the direct
serializers, ``parse_frame_header``, ``scan_frames`` / ``count_frames`` and ``WriteBuffer``. It
parses with hyperframe itself. The constants and the padding error it shares with the compiled
module come from :mod:`kyoukai_h2fast.constants` and :mod:`kyoukai_h2fast.errors`, so both give
the very same objects.
"""
from __future__ import annotations

import struct
from collections.abc import Iterator

from h2.exceptions import (
    DenialOfServiceError,
    FrameDataMissingError,
    FrameTooLargeError,
    ProtocolError,
)
from hyperframe.exceptions import InvalidDataError, InvalidFrameError, InvalidPaddingError
from hyperframe.frame import (
    ContinuationFrame,
    ExtensionFrame,
    Frame,
    HeadersFrame,
    Padding,
    PushPromiseFrame,
    SettingsFrame,
)

from ..constants import CLIENT_PREFACE, DEFAULT_MAX_HEADER_BLOCK_SIZE
from ..errors import FramePaddingError

__all__ = ["FrameBuffer", "WriteBuffer", "FramePaddingError", "serialize_frame",
           "headers_frames", "data_frames", "settings_frame", "window_update_frame",
           "ping_frame", "rst_stream_frame", "goaway_frame", "parse_frame_header",
           "scan_frames", "count_frames", "CLIENT_PREFACE", "DEFAULT_MAX_HEADER_BLOCK_SIZE"]

#: h2's CONTINUATION_BACKLOG: frames (HEADERS + CONTINUATIONs) allowed in one header block.
MAX_HEADER_BLOCK_FRAMES = 64
_MAX_FRAME_SIZE_LIMIT = 2 ** 24 - 1
_Data = bytes | bytearray | memoryview    # what the functions take as bytes
_HEADER = struct.Struct(">HBBBL")   # length split 16 + 8 bits, type, flags, stream id
_U32 = struct.Struct(">L")


class FrameBuffer:
    """``add_data(data)``, set ``max_frame_size``, then iterate: hyperframe frame objects.

    Same results and errors as ``h2.frame_buffer.FrameBuffer``, plus: ``FrameTooLargeError``
    as soon as an oversized frame's header is there, ``DenialOfServiceError`` for a header
    block larger than ``max_header_block_size``, and RFC 9113 where h2 differs from it:
    SETTINGS ACK with a payload is ``FrameDataMissingError`` (FRAME_SIZE_ERROR, §6.5), and
    padding is checked against what remains after the priority fields / promised id
    (§6.2, §6.6).
    """

    def __init__(self, server: bool = False) -> None:
        self._data = bytearray()
        self.max_frame_size = 0
        self.max_header_block_size = DEFAULT_MAX_HEADER_BLOCK_SIZE
        self._preamble = CLIENT_PREFACE if server else b""
        # HEADERS/PUSH_PROMISE + CONTINUATIONs being joined
        self._block: list[HeadersFrame | PushPromiseFrame | ContinuationFrame] = []
        self._block_size = 0
        self._block_length = 0            # length field of the block's first frame

    def add_data(self, data: _Data) -> None:
        view = memoryview(data)
        if self._preamble:  # RFC 9113 §3.4, checked as it arrives
            used = min(len(self._preamble), len(view))
            if self._preamble[:used] != view[:used]:
                raise ProtocolError("Invalid HTTP/2 preamble.")
            view = view[used:]
            self._preamble = self._preamble[used:]
        self._data += view

    @property
    def buffered(self) -> int:
        """Bytes received and not yet delivered (a header block being joined not counted)."""
        return len(self._data)

    def __iter__(self) -> FrameBuffer:
        return self

    def __next__(self) -> Frame:
        item = self._next_frame()
        if item is None:
            raise StopIteration
        return item[0]

    def _next_frame(self) -> tuple[Frame, int] | None:
        """``(frame, length field)`` of the next frame to deliver, or None for more data."""
        data = self._data
        while len(data) >= 9:
            try:
                frame, length = Frame.parse_frame_header(memoryview(bytes(data[:9])))
            except (InvalidDataError, InvalidFrameError) as err:
                raise ProtocolError(f"Received frame with invalid header: {err}") from err
            if length > self.max_frame_size:  # RFC 9113 §4.2, before the payload arrives
                raise FrameTooLargeError(
                    f"Received overlong frame: length {length}, max {self.max_frame_size}")
            if len(data) < 9 + length:
                return None
            if type(frame) is SettingsFrame and "ACK" in frame.flags and length:
                raise FrameDataMissingError("SETTINGS ACK with a payload")   # RFC 9113 §6.5
            try:
                frame.parse_body(memoryview(data[9:9 + length]))
            except InvalidPaddingError:
                pass   # decided below, by RFC 9113 (the frame's fields are all set by now)
            except InvalidDataError as err:
                raise ProtocolError(f"Received frame with non-compliant data: {err}") from err
            except InvalidFrameError as err:
                raise FrameDataMissingError(f"Frame data missing or invalid: {err}") from err
            if "PADDED" in frame.flags and isinstance(frame, Padding) \
                    and frame.pad_length > length - _padding_room(frame):
                raise FramePaddingError("Padding is too long.")
            del data[:9 + length]  # amortised O(1): CPython's bytearray moves its start
            if self._block or isinstance(frame, (HeadersFrame, PushPromiseFrame)):
                joined = self._join(frame, length)
                if joined is None:
                    continue
                return joined
            return frame, length
        return None

    def _join(self, frame: Frame, length: int) -> tuple[Frame, int] | None:
        """RFC 9113 §6.10: hold HEADERS/PUSH_PROMISE until END_HEADERS, join CONTINUATIONs."""
        if self._block:
            first = self._block[0]
            if not isinstance(frame, ContinuationFrame) or frame.stream_id != first.stream_id:
                raise ProtocolError("Invalid frame during header block.")
            self._block.append(frame)
            if len(self._block) > MAX_HEADER_BLOCK_FRAMES:
                raise ProtocolError("Too many continuation frames received.")
            self._add_fragment(frame.data)
            if "END_HEADERS" not in frame.flags:
                return None
            first.flags.add("END_HEADERS")
            first.data = b"".join(f.data for f in self._block)
            self._block = []
            return first, self._block_length
        # (the caller hands over a HEADERS or PUSH_PROMISE frame when no block is open)
        assert isinstance(frame, (HeadersFrame, PushPromiseFrame))
        if "END_HEADERS" in frame.flags:
            if len(frame.data) > self.max_header_block_size:
                raise DenialOfServiceError(
                    f"Header block larger than {self.max_header_block_size} bytes")
            return frame, length
        self._block_size = 0
        self._add_fragment(frame.data)
        self._block = [frame]
        self._block_length = length
        return None

    def _add_fragment(self, fragment: bytes) -> None:
        self._block_size += len(fragment)
        if self._block_size > self.max_header_block_size:
            self._block = []
            raise DenialOfServiceError(
                f"Header block larger than {self.max_header_block_size} bytes")


def _padding_room(frame: Frame) -> int:
    """Payload bytes that padding may not use: Pad Length, priority fields, promised id.

    RFC 9113 §6.1, §6.2, §6.6: padding longer than what remains is a PROTOCOL_ERROR.
    hyperframe measures HEADERS padding without the priority fields and PUSH_PROMISE padding
    against the whole payload; we follow the RFC.
    """
    if type(frame) is HeadersFrame and "PRIORITY" in frame.flags:
        return 6
    if type(frame) is PushPromiseFrame:
        return 5
    return 1


def _flag_byte(frame: Frame) -> int:
    if isinstance(frame, ExtensionFrame):
        return frame.flag_byte
    return sum(bit for name, bit in frame.defined_flags if name in frame.flags)


def _scan(data: _Data, max_frame_size: int, server: bool,
          max_header_block_size: int) -> Iterator[tuple[int, int, int, int]]:
    buf = FrameBuffer(server)
    buf.max_frame_size = max_frame_size
    buf.max_header_block_size = max_header_block_size
    buf.add_data(data)
    while (item := buf._next_frame()) is not None:
        frame, length = item
        ftype = frame.type
        assert ftype is not None  # every parsed frame has its type
        yield length, ftype, _flag_byte(frame), frame.stream_id


def scan_frames(
    data: _Data, max_frame_size: int = 16384, server: bool = False,
    max_header_block_size: int = DEFAULT_MAX_HEADER_BLOCK_SIZE,
) -> list[tuple[int, int, int, int]]:
    """``(length, type, flags, stream_id)`` of each frame a ``FrameBuffer`` delivers.

    ``flags`` has only the flags defined for the type (raw byte for unknown types); a joined
    header block shows its first frame's length and END_HEADERS.
    """
    return list(_scan(data, max_frame_size, server, max_header_block_size))


def count_frames(data: _Data, max_frame_size: int = 16384, server: bool = False,
                 max_header_block_size: int = DEFAULT_MAX_HEADER_BLOCK_SIZE) -> int:
    """How many frames ``scan_frames`` would return."""
    return sum(1 for _ in _scan(data, max_frame_size, server, max_header_block_size))


def parse_frame_header(data: _Data) -> tuple[int, int, int, int]:
    """``(length, type, flags, stream_id)`` from the first 9 bytes (RFC 9113 §4.1)."""
    view = memoryview(data).cast("B")
    if len(view) < 9:
        raise InvalidFrameError("Invalid frame header")
    high, low, ftype, flags, stream_id = _HEADER.unpack(view[:9])
    return (high << 8) | low, ftype, flags, stream_id & 0x7FFFFFFF


def serialize_frame(frame: Frame) -> bytes:
    """Bytes of hyperframe's ``frame.serialize()``."""
    return frame.serialize()


def _arg(value: object, low: int, high: int, name: str) -> int:
    if not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value!r}")
    return value


def _frame(ftype: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    length = len(payload)
    return _HEADER.pack(length >> 8, length & 0xFF, ftype, flags, stream_id) + payload


def _split(stream_id: int, payload: _Data, end_stream: bool, max_frame_size: int,
           headers: bool) -> bytes:
    stream_id = _arg(stream_id, 0, 0x7FFFFFFF, "stream_id")
    limit = _arg(max_frame_size, 1, _MAX_FRAME_SIZE_LIMIT, "max_frame_size")
    octets = bytes(memoryview(payload))
    if headers:  # RFC 9113 §6.2, §6.10
        ftype, flags, next_type, last_flags = 0x1, 0x1 if end_stream else 0, 0x9, 0x4
    else:        # RFC 9113 §6.1
        ftype, flags, next_type, last_flags = 0x0, 0, 0x0, 0x1 if end_stream else 0
    out = []
    position = 0
    while True:
        chunk = octets[position:position + limit]
        position += len(chunk)
        last = position >= len(octets)
        out.append(_frame(ftype, flags | (last_flags if last else 0), stream_id, chunk))
        if last:
            return b"".join(out)
        ftype, flags = next_type, 0


def headers_frames(stream_id: int, block: _Data, end_stream: bool,
                   max_frame_size: int = 16384) -> bytes:
    """HEADERS (+ CONTINUATION) frames: END_STREAM on HEADERS, END_HEADERS on the last."""
    return _split(stream_id, block, end_stream, max_frame_size, True)


def data_frames(stream_id: int, data: _Data, end_stream: bool,
                max_frame_size: int = 16384) -> bytes:
    """DATA frames of at most ``max_frame_size`` bytes, END_STREAM on the last one."""
    return _split(stream_id, data, end_stream, max_frame_size, False)


def settings_frame(settings: dict[int, int], ack: bool = False) -> bytes:
    """A SETTINGS frame with ``settings`` ({identifier: value}) or an empty ACK (§6.5)."""
    if not isinstance(settings, dict):
        raise TypeError("settings must be a dict")
    if ack and settings:
        raise ValueError("a SETTINGS ACK frame has no settings")
    payload = b"".join(
        struct.pack(">HL", _arg(ident, 0, 0xFFFF, "setting identifier"),
                    _arg(value, 0, 0xFFFFFFFF, "setting value"))
        for ident, value in settings.items())
    return _frame(0x4, 0x1 if ack else 0, 0, payload)


def window_update_frame(stream_id: int, increment: int) -> bytes:
    """A WINDOW_UPDATE frame (§6.9); increment 1..2^31-1."""
    stream_id = _arg(stream_id, 0, 0x7FFFFFFF, "stream_id")
    return _frame(0x8, 0, stream_id, _U32.pack(_arg(increment, 1, 0x7FFFFFFF, "increment")))


def rst_stream_frame(stream_id: int, error_code: int) -> bytes:
    """A RST_STREAM frame (§6.4)."""
    stream_id = _arg(stream_id, 0, 0x7FFFFFFF, "stream_id")
    return _frame(0x3, 0, stream_id, _U32.pack(_arg(error_code, 0, 0xFFFFFFFF, "error_code")))


def ping_frame(opaque_data: _Data, ack: bool = False) -> bytes:
    """A PING frame (§6.7); ``opaque_data`` of at most 8 bytes is zero-padded to 8."""
    opaque = bytes(memoryview(opaque_data))
    if len(opaque) > 8:
        raise ValueError(f"PING opaque data has {len(opaque)} bytes, at most 8 allowed")
    return _frame(0x6, 0x1 if ack else 0, 0, opaque.ljust(8, b"\0"))


def goaway_frame(last_stream_id: int, error_code: int, additional_data: _Data = b"") -> bytes:
    """A GOAWAY frame (§6.8) with optional debug data."""
    last = _arg(last_stream_id, 0, 0x7FFFFFFF, "last_stream_id")
    code = _arg(error_code, 0, 0xFFFFFFFF, "error_code")
    return _frame(0x7, 0, 0, struct.pack(">LL", last, code) + bytes(memoryview(additional_data)))


class WriteBuffer:
    """Growable output buffer with the ``add_*`` methods of the compiled ``WriteBuffer``."""

    def __init__(self) -> None:
        self._data = bytearray()

    def __len__(self) -> int:
        return len(self._data)

    def take(self) -> bytes:
        out = bytes(self._data)
        self._data.clear()
        return out

    def getvalue(self) -> bytes:
        return bytes(self._data)

    def clear(self) -> None:
        self._data.clear()

    def write(self, data: _Data) -> None:
        self._data += memoryview(data)

    def add_frame(self, frame: Frame) -> None:
        self._data += serialize_frame(frame)

    def add_headers_frames(self, stream_id: int, block: _Data, end_stream: bool,
                           max_frame_size: int = 16384) -> None:
        self._data += headers_frames(stream_id, block, end_stream, max_frame_size)

    def add_data_frames(self, stream_id: int, data: _Data, end_stream: bool,
                        max_frame_size: int = 16384) -> None:
        self._data += data_frames(stream_id, data, end_stream, max_frame_size)

    def add_settings(self, settings: dict[int, int], ack: bool = False) -> None:
        self._data += settings_frame(settings, ack)

    def add_window_update(self, stream_id: int, increment: int) -> None:
        self._data += window_update_frame(stream_id, increment)

    def add_ping(self, opaque_data: _Data, ack: bool = False) -> None:
        self._data += ping_frame(opaque_data, ack)

    def add_rst_stream(self, stream_id: int, error_code: int) -> None:
        self._data += rst_stream_frame(stream_id, error_code)

    def add_goaway(self, last_stream_id: int, error_code: int,
                   additional_data: _Data = b"") -> None:
        self._data += goaway_frame(last_stream_id, error_code, additional_data)
