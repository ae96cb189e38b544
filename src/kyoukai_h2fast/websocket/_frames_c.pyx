# cython: language_level=3
"""Compiled WebSocket frame codec (RFC 6455 §5): the per-message hot path.

Owns, for both transports (HTTP/1.1 Upgrade, HTTP/2 extended CONNECT): cutting the inbound
byte stream into validated frames (``FrameReader``: framing rules checked as soon as a header
is there, unmasking 8 bytes at a time, incremental fail-fast UTF-8 validation of uncompressed
text with Hoehrmann's automaton and an ASCII fast path of 8 bytes at a time, a whole text
message decoded straight from the unmasked bytes), incremental UTF-8 validation for
decompressed text (``Utf8Validator``) and outbound frames (``build_frame``). The C-level API
is declared in ``_frames_c.pxd``.

The pure-Python twin is :mod:`kyoukai_h2fast.websocket._frames_py`: same names, signatures and
rules; the error reasons are :mod:`kyoukai_h2fast.websocket.errors`'s. Leaves to the
connection: reassembly, decompression, close frames' contents, budgets and the close handshake.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize
from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.unicode cimport PyUnicode_Check, PyUnicode_DecodeUTF8
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memmove

from kyoukai_h2fast.websocket._frames_py import compressed_wire_limit
from kyoukai_h2fast.websocket.constants import (DEFAULT_MAX_MESSAGE_SIZE, OP_BINARY, OP_CLOSE,
                                                OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT)
from kyoukai_h2fast.websocket.errors import (
    R_CONTROL_TOO_LONG, R_FRAGMENTED_CONTROL, R_INVALID_UTF8, R_LENGTH_MSB, R_MASKED,
    R_MESSAGE_IN_PROGRESS, R_NO_MESSAGE, R_NON_MINIMAL, R_RESERVED_BITS, R_RESERVED_OPCODE, R_RSV1,
    R_RSV1_CONTINUATION, R_RSV1_CONTROL, R_TOO_BIG, R_TRUNCATED_UTF8, R_UNMASKED, FrameError)

__all__ = ["FrameReader", "Utf8Validator", "FrameError", "build_frame", "apply_mask",
           "compressed_wire_limit", "OP_CONTINUATION", "OP_TEXT", "OP_BINARY", "OP_CLOSE",
           "OP_PING", "OP_PONG", "DEFAULT_MAX_MESSAGE_SIZE"]

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL

cdef enum:
    _STACK_TEXT = 1024          # a whole text message up to this size is unmasked on the stack
    _IDLE_BUFFER = 65536        # a read buffer larger than this is freed once empty
    _CHUNK = 4096               # partial text frames are unmasked and validated by this much

cdef uint64_t _HIGH_BITS = 0x8080808080808080ULL

# Hoehrmann's UTF-8 automaton ("Flexible and Economical UTF-8 Decoder", 2010): the first 256
# entries map a byte to its class, the rest map state + class to the next state (states are
# multiples of 12; 0 accepts, 12 rejects for good). It rejects at the first byte that cannot
# continue a valid sequence: overlong forms, surrogates and code points above U+10FFFF.
cdef uint8_t[364] _UTF8D = [
    # 00..7F
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    # 80..8F, 90..9F
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
    # A0..BF
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    # C0..DF
    8, 8, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    # E0..EF, F0..FF
    10, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 3, 3,
    11, 6, 6, 6, 5, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
    # transitions: one row of 12 classes per state
    0, 12, 24, 36, 60, 96, 84, 12, 12, 12, 48, 72,      # 0: accept
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,     # 12: reject
    12, 0, 12, 12, 12, 12, 12, 0, 12, 0, 12, 12,        # 24: one continuation byte to go
    12, 24, 12, 12, 12, 12, 12, 24, 12, 24, 12, 12,     # 36: two to go
    12, 12, 12, 12, 12, 12, 12, 24, 12, 12, 12, 12,     # 48: after E0 (A0..BF)
    12, 24, 12, 12, 12, 12, 12, 12, 12, 24, 12, 12,     # 60: after ED (80..9F)
    12, 12, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12,     # 72: after F0 (90..BF)
    12, 36, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12,     # 84: after F1..F3
    12, 36, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,     # 96: after F4 (80..8F)
]


cdef uint32_t utf8_feed(uint32_t state, const unsigned char* s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i = 0
    cdef uint64_t word
    while i < n:
        if state == UTF8_ACCEPT:
            while i + 8 <= n:                  # ASCII, 8 bytes at a time
                memcpy(&word, s + i, 8)
                if word & _HIGH_BITS:
                    break
                i += 8
            while i < n and s[i] < 0x80:
                i += 1
            if i == n:
                break
        state = _UTF8D[256 + state + _UTF8D[s[i]]]
        if state == UTF8_REJECT:
            return state
        i += 1
    return state


cdef void unmask_into(unsigned char* dst, const unsigned char* src, Py_ssize_t n,
                      const unsigned char* key, Py_ssize_t offset) noexcept nogil:
    cdef unsigned char k[8]
    cdef uint64_t k64, word
    cdef Py_ssize_t i
    for i in range(8):
        k[i] = key[(offset + i) & 3]
    memcpy(&k64, k, 8)
    i = 0
    while i + 8 <= n:
        memcpy(&word, src + i, 8)
        word ^= k64
        memcpy(dst + i, &word, 8)
        i += 8
    while i < n:
        dst[i] = src[i] ^ k[i & 7]
        i += 1


cdef bytes build_frame_bytes(int opcode, const unsigned char* data, Py_ssize_t n, bint fin,
                             bint rsv1, const unsigned char* mask):
    cdef Py_ssize_t header = 2 if n < 126 else (4 if n < 65536 else 10)
    cdef Py_ssize_t i
    cdef unsigned char mask_bit = 0x80 if mask != NULL else 0
    cdef bytes out = PyBytes_FromStringAndSize(NULL, header + (4 if mask != NULL else 0) + n)
    cdef unsigned char* p = <unsigned char*>PyBytes_AS_STRING(out)
    p[0] = <unsigned char>((0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode)
    if header == 2:
        p[1] = mask_bit | <unsigned char>n
    elif header == 4:
        p[1] = mask_bit | 126
        p[2] = <unsigned char>(n >> 8)
        p[3] = <unsigned char>n
    else:
        p[1] = mask_bit | 127
        for i in range(8):
            p[2 + i] = <unsigned char>((<uint64_t>n) >> (56 - 8 * i))
    p += header
    if mask == NULL:
        if n:
            memcpy(p, data, n)
    else:
        memcpy(p, mask, 4)
        unmask_into(p + 4, data, n, mask, 0)
    return out


def build_frame(opcode, payload, fin=True, rsv1=False, mask=None):
    """One frame (RFC 6455 §5.2): a ``str`` payload is encoded as UTF-8; ``mask`` (4 bytes)
    masks it (a client's frames). Values are not checked against the protocol (tests build bad
    frames with it) beyond ``0 <= opcode <= 15`` and the mask's length."""
    cdef int op = opcode
    cdef Py_buffer view, key_view
    cdef const unsigned char* key = NULL
    cdef Py_ssize_t n
    cdef const char* utf8
    if not 0 <= op <= 15:
        raise ValueError(f"opcode {opcode} is not 0-15")
    if mask is not None:
        PyObject_GetBuffer(mask, &key_view, PyBUF_SIMPLE)
        if key_view.len != 4:
            PyBuffer_Release(&key_view)
            raise ValueError("a masking key has 4 bytes")
        key = <const unsigned char*>key_view.buf
    try:
        if PyUnicode_Check(payload):
            utf8 = PyUnicode_AsUTF8AndSize(payload, &n)
            return build_frame_bytes(op, <const unsigned char*>utf8, n, fin, rsv1, key)
        if PyBytes_CheckExact(payload):
            return build_frame_bytes(op, <const unsigned char*>PyBytes_AS_STRING(payload),
                                     PyBytes_GET_SIZE(payload), fin, rsv1, key)
        PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
        try:
            return build_frame_bytes(op, <const unsigned char*>view.buf, view.len, fin, rsv1,
                                     key)
        finally:
            PyBuffer_Release(&view)
    finally:
        if mask is not None:
            PyBuffer_Release(&key_view)


def apply_mask(data, mask):
    """``data`` XOR the 4-byte ``mask`` repeated (RFC 6455 §5.3): masks and unmasks."""
    cdef Py_buffer view, key_view
    cdef bytes out
    PyObject_GetBuffer(mask, &key_view, PyBUF_SIMPLE)
    try:
        if key_view.len != 4:
            raise ValueError("a masking key has 4 bytes")
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            out = PyBytes_FromStringAndSize(NULL, view.len)
            unmask_into(<unsigned char*>PyBytes_AS_STRING(out),
                        <const unsigned char*>view.buf, view.len,
                        <const unsigned char*>key_view.buf, 0)
            return out
        finally:
            PyBuffer_Release(&view)
    finally:
        PyBuffer_Release(&key_view)


cdef class Utf8Validator:
    """Incremental UTF-8 validation (RFC 3629): :meth:`feed` is False as soon as the bytes so
    far cannot start valid UTF-8 (fail fast, as Autobahn's strict cases expect); ``complete``
    says they end on a character boundary."""

    # (a new validator's state is 0: UTF8_ACCEPT)

    def reset(self):
        """Start a new text."""
        self._state = UTF8_ACCEPT

    def feed(self, data):
        """Validate the next bytes; False (for good) once the text cannot be valid."""
        cdef Py_buffer view
        if self._state == UTF8_REJECT:
            return False
        if PyBytes_CheckExact(data):
            self._state = utf8_feed(self._state,
                                    <const unsigned char*>PyBytes_AS_STRING(data),
                                    PyBytes_GET_SIZE(data))
        else:
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
            try:
                self._state = utf8_feed(self._state, <const unsigned char*>view.buf, view.len)
            finally:
                PyBuffer_Release(&view)
        return self._state != UTF8_REJECT

    @property
    def complete(self):
        """True when everything fed is valid and ends on a character boundary."""
        return self._state == UTF8_ACCEPT


cdef object _decode_text(const unsigned char* data, Py_ssize_t n):
    """A whole text message's payload as ``str``; FrameError 1007 when it is not UTF-8."""
    try:
        return PyUnicode_DecodeUTF8(<char*>data, n, NULL)
    except UnicodeDecodeError:
        raise FrameError(1007, R_INVALID_UTF8) from None


cdef class FrameReader:
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

    def __cinit__(self, max_message_size=16777216, client=False, rsv1=False):
        # (16777216: DEFAULT_MAX_MESSAGE_SIZE, written out for the embedded signature)
        if max_message_size < 0:
            raise ValueError("max_message_size must be >= 0")
        self.max_message_size = max_message_size
        self._client = client
        self._rsv1_allowed = rsv1
        self._buf = NULL

    def __dealloc__(self):
        PyMem_Free(self._buf)

    def feed(self, data):
        """Append received bytes (any split of the stream gives the same frames)."""
        cdef Py_buffer view
        if self._ext is not None:
            self._detach()
        if self._start == self._end and PyBytes_CheckExact(data):
            self._ext = data                    # read in place until a frame is incomplete
            self._ext_ptr = <const unsigned char*>PyBytes_AS_STRING(data)
            self._ext_pos = 0
            self._ext_len = PyBytes_GET_SIZE(data)
            return
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self.feed_bytes(<const unsigned char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    cdef int feed_bytes(self, const unsigned char* data, Py_ssize_t n) except -1:
        if self._ext is not None:
            self._detach()
        if n:
            self._reserve(n)
            memcpy(self._buf + self._end, data, n)
            self._end += n
        return 0

    @property
    def buffered(self):
        """Bytes received and not yet returned as frames."""
        return self._end - self._start + (self._ext_len - self._ext_pos
                                          if self._ext is not None else 0)

    @property
    def in_message(self):
        """True while a fragmented message is in progress (its first frame was returned)."""
        return self._message_opcode != 0

    def __iter__(self):
        return self

    def __next__(self):
        frame = self.next_frame()
        if frame is None:
            raise StopIteration
        return frame

    cpdef object next_frame(self):
        """The next frame, or None when more bytes are needed."""
        cdef Py_ssize_t used = 0
        cdef object frame
        if self._error is not None:
            raise self._error
        try:
            if self._ext is not None:
                frame = self._parse(self._ext_ptr + self._ext_pos,
                                    self._ext_len - self._ext_pos, &used)
                if frame is None:
                    self._detach()
                    return None
                self._ext_pos += used
                if self._ext_pos == self._ext_len:
                    self._ext = None
                return frame
            frame = self._parse(self._buf + self._start, self._end - self._start, &used)
        except FrameError as e:
            self._error = e
            raise
        if frame is not None:
            self._start += used
            if self._start == self._end:
                self._start = self._end = 0
                if self._cap > _IDLE_BUFFER:
                    PyMem_Free(self._buf)
                    self._buf = NULL
                    self._cap = 0
        return frame

    cdef object _parse(self, const unsigned char* p, Py_ssize_t avail, Py_ssize_t* used):
        cdef uint8_t b0, b1
        cdef int opcode
        cdef bint fin, rsv1, masked, compressed = False, text
        cdef uint64_t length
        cdef Py_ssize_t header, limit, validated, i
        cdef const unsigned char* key = NULL
        cdef const unsigned char* src
        cdef unsigned char stack[_STACK_TEXT]
        cdef unsigned char* tmp
        cdef object payload
        if avail < 2:
            return None
        b0 = p[0]
        b1 = p[1]
        opcode = b0 & 0x0F
        fin = b0 & 0x80
        rsv1 = b0 & 0x40
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
        elif opcode == OPCODE_CONTINUATION:
            if not self._message_opcode:
                raise FrameError(1002, R_NO_MESSAGE)
            if rsv1:
                raise FrameError(1002, R_RSV1_CONTINUATION)
        elif self._message_opcode:
            raise FrameError(1002, R_MESSAGE_IN_PROGRESS)
        masked = (b1 & 0x80) != 0
        if masked == self._client:
            raise FrameError(1002, R_MASKED if self._client else R_UNMASKED)
        header = 2
        if length == 126:
            if avail < 4:
                return None
            length = (<uint64_t>p[2] << 8) | p[3]
            if length < 126:
                raise FrameError(1002, R_NON_MINIMAL)
            header = 4
        elif length == 127:
            if avail < 10:
                return None
            length = 0
            for i in range(8):
                length = (length << 8) | p[2 + i]
            if length >> 63:
                raise FrameError(1002, R_LENGTH_MSB)
            if length < 65536:
                raise FrameError(1002, R_NON_MINIMAL)
            header = 10
        if opcode < 8:
            compressed = rsv1 if opcode else self._message_compressed
            limit = self.max_message_size
            if compressed:
                limit = compressed_wire_limit(limit)
            if length > <uint64_t>(limit - (self._message_size
                                            if opcode == OPCODE_CONTINUATION else 0)):
                raise FrameError(1009, R_TOO_BIG)
        if masked:
            key = p + header
            header += 4
        if avail < header:
            return None
        text = not compressed and (opcode == OPCODE_TEXT or (
            opcode == OPCODE_CONTINUATION and self._message_opcode == OPCODE_TEXT))
        if <uint64_t>(avail - header) < length:
            if text:
                self._validate_partial(p + header, avail - header, key, opcode == OPCODE_TEXT)
            return None
        src = p + header
        validated = self._partial_validated
        self._partial_validated = 0
        if opcode == OPCODE_TEXT and fin and not rsv1:     # a whole text message: decode it
            if not masked:
                payload = _decode_text(src, <Py_ssize_t>length)
            elif length <= _STACK_TEXT:
                unmask_into(stack, src, <Py_ssize_t>length, key, 0)
                payload = _decode_text(stack, <Py_ssize_t>length)
            else:
                tmp = <unsigned char*>PyMem_Malloc(<size_t>length)
                if tmp == NULL:
                    raise MemoryError()
                try:
                    unmask_into(tmp, src, <Py_ssize_t>length, key, 0)
                    payload = _decode_text(tmp, <Py_ssize_t>length)
                finally:
                    PyMem_Free(tmp)
            used[0] = header + <Py_ssize_t>length
            return (opcode, True, False, payload)
        payload = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>length)
        tmp = <unsigned char*>PyBytes_AS_STRING(payload)
        if masked:
            unmask_into(tmp, src, <Py_ssize_t>length, key, 0)
        elif length:
            memcpy(tmp, src, <size_t>length)
        if opcode >= 8 or (opcode != OPCODE_CONTINUATION and fin):
            used[0] = header + <Py_ssize_t>length
            return (opcode, True, rsv1, payload)
        if opcode != OPCODE_CONTINUATION:
            self._message_opcode = opcode
            self._message_compressed = rsv1
            self._message_size = 0
            if text and not validated:
                self._utf8_state = UTF8_ACCEPT
        self._message_size += length
        if text:
            self._utf8_state = utf8_feed(self._utf8_state, tmp + validated,
                                         <Py_ssize_t>length - validated)
            if self._utf8_state == UTF8_REJECT:
                raise FrameError(1007, R_INVALID_UTF8)
            if fin and self._utf8_state != UTF8_ACCEPT:
                raise FrameError(1007, R_TRUNCATED_UTF8)
        if fin:
            self._message_opcode = 0
            self._message_size = 0
        used[0] = header + <Py_ssize_t>length
        return (opcode, fin, rsv1, payload)

    cdef int _validate_partial(self, const unsigned char* payload, Py_ssize_t arrived,
                               const unsigned char* key, bint first) except -1:
        """Validate the arrived part of an incomplete text frame's payload (fail fast)."""
        cdef Py_ssize_t done = self._partial_validated
        cdef Py_ssize_t n
        cdef unsigned char chunk[_CHUNK]
        if done >= arrived:
            return 0
        if first and not done:
            self._utf8_state = UTF8_ACCEPT
        while done < arrived:
            n = min(arrived - done, <Py_ssize_t>_CHUNK)
            if key != NULL:
                unmask_into(chunk, payload + done, n, key, done)
                self._utf8_state = utf8_feed(self._utf8_state, chunk, n)
            else:
                self._utf8_state = utf8_feed(self._utf8_state, payload + done, n)
            done += n
            if self._utf8_state == UTF8_REJECT:
                self._partial_validated = done
                raise FrameError(1007, R_INVALID_UTF8)
        self._partial_validated = done
        return 0

    cdef int _reserve(self, Py_ssize_t n) except -1:
        """Room for ``n`` more bytes at the end of the read buffer."""
        cdef Py_ssize_t unread = self._end - self._start
        cdef Py_ssize_t cap
        cdef unsigned char* grown
        if self._start and self._end + n > self._cap:
            memmove(self._buf, self._buf + self._start, unread)
            self._start = 0
            self._end = unread
        if self._end + n <= self._cap:
            return 0
        cap = max(self._cap * 2, self._end + n, 4096)
        grown = <unsigned char*>PyMem_Realloc(self._buf, cap)
        if grown == NULL:
            raise MemoryError()
        self._buf = grown
        self._cap = cap
        return 0

    cdef int _detach(self) except -1:
        """Copy the unread rest of the ``bytes`` read in place into the buffer; drop it."""
        cdef object ext = self._ext
        cdef const unsigned char* rest = self._ext_ptr + self._ext_pos
        cdef Py_ssize_t n = self._ext_len - self._ext_pos
        self._ext = None
        self._ext_pos = self._ext_len = 0
        if n:
            self._reserve(n)
            memcpy(self._buf + self._end, rest, n)
            self._end += n
        del ext
        return 0
