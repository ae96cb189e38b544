"""Pure-Python twin of the WebSocket frame codec (RFC 6455 §5); compiled: ``_frames_c``.

Owns the same public names and behaviour as the compiled module (``tests/websocket`` runs both
and compares them on random frames):

* :class:`FrameReader`: inbound bytes -> validated, unmasked frames, one rule set for both
  transports (HTTP/1.1 Upgrade and HTTP/2 extended CONNECT). Per frame it enforces the framing
  rules (reserved opcodes and bits, masking, control frame size and fragmentation, minimal
  length encoding, the continuation sequence, the message size limit) as soon as the header is
  there, and validates the UTF-8 of uncompressed text messages incrementally, across fragments
  and even across the chops of one frame that has not fully arrived (fail fast).
* :class:`Utf8Validator`: incremental UTF-8 validation (for decompressed text).
* :func:`build_frame`, :func:`apply_mask`: outbound frames and the masking transform.

Decisions where RFC 6455 leaves room:

* A length not in the minimal number of bytes (126 encoded in 8 bytes, 100 in 2, ...) is a
  protocol error (1002): §5.2 says "the minimal number of bytes MUST be used", and accepting
  other encodings gains nothing (no client sends them). The ``websockets`` library accepts
  them; this is the one frame both parse differently.
* The message size limit is checked on the frame header, against the message's bytes so far,
  before the payload is buffered (1009); a compressed message's wire bytes get deflate's
  worst-case slack (:func:`compressed_wire_limit`), its decompressed size is the
  connection's to bound.

Leaves to the connection (:mod:`~kyoukai_h2fast.websocket.connection`): message reassembly,
decompression, close frames' contents, budgets and the close handshake.
"""
from __future__ import annotations

import codecs
import struct

from . import constants
from .constants import OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT
from .errors import (
    R_CONTROL_TOO_LONG,
    R_FRAGMENTED_CONTROL,
    R_INVALID_UTF8,
    R_LENGTH_MSB,
    R_MASKED,
    R_MESSAGE_IN_PROGRESS,
    R_NO_MESSAGE,
    R_NON_MINIMAL,
    R_RESERVED_BITS,
    R_RESERVED_OPCODE,
    R_RSV1,
    R_RSV1_CONTINUATION,
    R_RSV1_CONTROL,
    R_TOO_BIG,
    R_TRUNCATED_UTF8,
    R_UNMASKED,
    FrameError,
)

__all__ = ["FrameReader", "Utf8Validator", "FrameError", "build_frame", "apply_mask",
           "compressed_wire_limit", "OP_CONTINUATION", "OP_TEXT", "OP_BINARY", "OP_CLOSE",
           "OP_PING", "OP_PONG", "DEFAULT_MAX_MESSAGE_SIZE"]

#: (re-exported: the codec's default, as the compiled module has it)
DEFAULT_MAX_MESSAGE_SIZE = constants.DEFAULT_MAX_MESSAGE_SIZE

_Data = bytes | bytearray | memoryview
_LENGTH16 = struct.Struct("!BBH")
_LENGTH64 = struct.Struct("!BBQ")


_Utf8Decoder = codecs.getincrementaldecoder("utf-8")


def compressed_wire_limit(max_message_size: int) -> int:
    """Wire bytes a compressed message may take: ``max_message_size`` plus 1/1024 of it plus
    1 KiB (deflate's worst-case expansion of incompressible data, 5 bytes per 64 KiB stored
    block, is far below that). Its decompressed size is bounded by ``max_message_size``."""
    return max_message_size + (max_message_size >> 10) + 1024


def apply_mask(data: _Data, mask: _Data) -> bytes:
    """``data`` XOR the 4-byte ``mask`` repeated (RFC 6455 §5.3): masks and unmasks."""
    if len(mask) != 4:
        raise ValueError("a masking key has 4 bytes")
    return _unmask(data, bytes(mask), 0)


def _unmask(data: _Data, key: bytes, offset: int) -> bytes:
    """``data`` XOR ``key``, as if ``data`` started ``offset`` bytes into the payload."""
    n = len(data)
    if not n:
        return b""
    shift = offset & 3
    if shift:
        key = key[shift:] + key[:shift]
    stream = (key * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(
        n, "little")


def build_frame(opcode: int, payload: _Data | str, fin: bool = True, rsv1: bool = False,
                mask: _Data | None = None) -> bytes:
    """One frame (RFC 6455 §5.2): a ``str`` payload is encoded as UTF-8; ``mask`` (4 bytes)
    masks it (a client's frames). Values are not checked against the protocol (tests build bad
    frames with it) beyond ``0 <= opcode <= 15`` and the mask's length."""
    if not 0 <= opcode <= 15:
        raise ValueError(f"opcode {opcode} is not 0-15")
    data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    n = len(data)
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    mask_bit = 0x80 if mask is not None else 0
    if n < 126:
        header = bytes((b0, mask_bit | n))
    elif n < 65536:
        header = _LENGTH16.pack(b0, mask_bit | 126, n)
    else:
        header = _LENGTH64.pack(b0, mask_bit | 127, n)
    if mask is None:
        return header + data
    if len(mask) != 4:
        raise ValueError("a masking key has 4 bytes")
    key = bytes(mask)
    return header + key + _unmask(data, key, 0)


class Utf8Validator:
    """Incremental UTF-8 validation (RFC 3629): :meth:`feed` is False as soon as the bytes so
    far cannot start valid UTF-8 (fail fast, as Autobahn's strict cases expect); ``complete``
    says they end on a character boundary."""

    __slots__ = ("_decoder", "_valid")

    def __init__(self) -> None:
        self._decoder = _Utf8Decoder("strict")
        self._valid = True

    def reset(self) -> None:
        """Start a new text."""
        self._decoder.reset()
        self._valid = True

    def feed(self, data: _Data) -> bool:
        """Validate the next bytes; False (for good) once the text cannot be valid."""
        if not self._valid:
            return False
        try:
            self._decoder.decode(data, False)
        except UnicodeDecodeError:
            self._valid = False
            return False
        pending = self._decoder.getstate()[0]
        # CPython's incremental decoder waits on ED A0..ED BF (a surrogate's first two bytes)
        # instead of rejecting them; every other impossible prefix it rejects at once.
        if len(pending) > 1 and pending[0] == 0xED and pending[1] >= 0xA0:
            self._valid = False
        return self._valid

    @property
    def complete(self) -> bool:
        """True when everything fed is valid and ends on a character boundary."""
        return self._valid and not self._decoder.getstate()[0]


class FrameReader:
    """Inbound bytes (:meth:`feed`) -> frames (iterate): ``(opcode, fin, rsv1, payload)``.

    ``payload`` is unmasked ``bytes``, except an unfragmented, uncompressed text frame (a whole
    text message): its payload comes validated and decoded, as ``str``. Fragments of an
    uncompressed text message are validated as they come (``FrameError`` 1007 as soon as the
    bytes cannot be UTF-8, even inside a frame that has not fully arrived); the last one must
    end on a character boundary. Compressed (RSV1) messages are the caller's to validate after
    decompression.

    ``client=False``: we are the server, every frame must be masked; ``client=True``: no frame
    may be. ``rsv1=True``: permessage-deflate was negotiated (RSV1 allowed on the first frame of
    a data message). ``max_message_size`` bounds a message's payload (the sum of its frames;
    :func:`compressed_wire_limit` of it for a compressed message), checked from the frame
    header before the payload is buffered.

    Errors raise :class:`FrameError` with the close code (1002, 1007, 1009); the reader stays
    failed (iterating again raises the same error).
    """

    __slots__ = ("max_message_size", "_client", "_rsv1_allowed", "_buf", "_pos",
                 "_message_opcode", "_message_compressed", "_message_size", "_utf8",
                 "_partial_validated", "_error")

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, client: bool = False,
                 rsv1: bool = False) -> None:
        if max_message_size < 0:
            raise ValueError("max_message_size must be >= 0")
        self.max_message_size = max_message_size
        self._client = client
        self._rsv1_allowed = rsv1
        self._buf = bytearray()
        self._pos = 0
        self._message_opcode = 0          # opcode of the fragmented message in progress, or 0
        self._message_compressed = False
        self._message_size = 0            # payload bytes of that message so far
        self._utf8 = Utf8Validator()
        self._partial_validated = 0       # payload bytes validated of an incomplete text frame
        self._error: FrameError | None = None

    def feed(self, data: _Data) -> None:
        """Append received bytes (any split of the stream gives the same frames)."""
        if self._pos:
            del self._buf[:self._pos]
            self._pos = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as frames."""
        return len(self._buf) - self._pos

    @property
    def in_message(self) -> bool:
        """True while a fragmented message is in progress (its first frame was returned)."""
        return self._message_opcode != 0

    def __iter__(self) -> FrameReader:
        return self

    def __next__(self) -> tuple[int, bool, bool, bytes | str]:
        frame = self.next_frame()
        if frame is None:
            raise StopIteration
        return frame

    def next_frame(self) -> tuple[int, bool, bool, bytes | str] | None:
        """The next frame, or None when more bytes are needed."""
        if self._error is not None:
            raise self._error
        try:
            return self._next_frame()
        except FrameError as e:
            self._error = e
            raise

    def _next_frame(self) -> tuple[int, bool, bool, bytes | str] | None:
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if avail < 2:
            return None
        b0 = buf[pos]
        b1 = buf[pos + 1]
        opcode = b0 & 0x0F
        fin = bool(b0 & 0x80)
        rsv1 = bool(b0 & 0x40)
        if 2 < opcode < 8 or opcode > 10:
            raise FrameError(1002, f"{R_RESERVED_OPCODE} {opcode:#x}")
        if b0 & 0x30:
            raise FrameError(1002, R_RESERVED_BITS)
        if rsv1 and not self._rsv1_allowed:
            raise FrameError(1002, R_RSV1)
        length = b1 & 0x7F
        if opcode >= 8:
            if rsv1:
                raise FrameError(1002, R_RSV1_CONTROL)
            if not fin:
                raise FrameError(1002, R_FRAGMENTED_CONTROL)
            if length > 125:
                raise FrameError(1002, R_CONTROL_TOO_LONG)
        elif opcode == OP_CONTINUATION:
            if not self._message_opcode:
                raise FrameError(1002, R_NO_MESSAGE)
            if rsv1:
                raise FrameError(1002, R_RSV1_CONTINUATION)
        elif self._message_opcode:
            raise FrameError(1002, R_MESSAGE_IN_PROGRESS)
        masked = bool(b1 & 0x80)
        if masked == self._client:
            raise FrameError(1002, R_MASKED if self._client else R_UNMASKED)
        header = 2
        if length == 126:
            if avail < 4:
                return None
            length = (buf[pos + 2] << 8) | buf[pos + 3]
            if length < 126:
                raise FrameError(1002, R_NON_MINIMAL)
            header = 4
        elif length == 127:
            if avail < 10:
                return None
            length = int.from_bytes(buf[pos + 2:pos + 10], "big")
            if length >> 63:
                raise FrameError(1002, R_LENGTH_MSB)
            if length < 65536:
                raise FrameError(1002, R_NON_MINIMAL)
            header = 10
        compressed = False
        if opcode < 8:
            compressed = rsv1 if opcode else self._message_compressed
            limit = self.max_message_size
            if compressed:
                limit = compressed_wire_limit(limit)
            if length > limit - (self._message_size if opcode == OP_CONTINUATION else 0):
                raise FrameError(1009, R_TOO_BIG)
        start = pos + header + (4 if masked else 0)
        if avail < start - pos:
            return None
        key = bytes(buf[start - 4:start]) if masked else b""
        text = not compressed and (opcode == OP_TEXT or (
            opcode == OP_CONTINUATION and self._message_opcode == OP_TEXT))
        if avail < start - pos + length:
            if text:
                self._validate_partial(buf, start, min(len(buf), start + length), key,
                                       opcode == OP_TEXT)
            return None
        end = start + length
        payload = _unmask(buf[start:end], key, 0) if masked else bytes(buf[start:end])
        self._pos = end
        validated = self._partial_validated
        self._partial_validated = 0
        if opcode >= 8:
            return opcode, True, False, payload
        if opcode != OP_CONTINUATION:
            if fin:
                if opcode == OP_TEXT and not rsv1:
                    try:
                        return opcode, True, False, payload.decode("utf-8")
                    except UnicodeDecodeError:
                        raise FrameError(1007, R_INVALID_UTF8) from None
                return opcode, True, rsv1, payload
            self._message_opcode = opcode
            self._message_compressed = rsv1
            self._message_size = 0
            if text and not validated:
                self._utf8.reset()
        self._message_size += length
        if text:
            if not self._utf8.feed(payload[validated:]):
                raise FrameError(1007, R_INVALID_UTF8)
            if fin and not self._utf8.complete:
                raise FrameError(1007, R_TRUNCATED_UTF8)
        if fin:
            self._message_opcode = 0
            self._message_size = 0
        return opcode, fin, rsv1, payload

    def _validate_partial(self, buf: bytearray, start: int, end: int, key: bytes,
                          first: bool) -> None:
        """Validate the arrived part of an incomplete text frame's payload (fail fast)."""
        done = self._partial_validated
        if start + done >= end:
            return
        if first and not done:
            self._utf8.reset()
        chunk = buf[start + done:end]
        data = _unmask(chunk, key, done) if key else bytes(chunk)
        self._partial_validated = end - start
        if not self._utf8.feed(data):
            raise FrameError(1007, R_INVALID_UTF8)
