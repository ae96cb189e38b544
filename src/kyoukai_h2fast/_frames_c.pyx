# cython: language_level=3
"""Compiled HTTP/2 frame layer (RFC 9113 §4, §6): inbound frame buffer and outbound serializers.

Owns: cutting the inbound byte stream into validated frames (client preface, frame header,
per-type payload rules, CONTINUATION joining, frame and header-block size bounds) and turning
outbound frames into bytes. Python sees a drop-in for ``h2.frame_buffer.FrameBuffer`` that yields
real ``hyperframe`` frame objects equal to what hyperframe parses, ``serialize_frame`` (bytes equal
to hyperframe's ``serialize()``), direct serializers taking plain values, and ``scan_frames`` /
``count_frames`` over the C-level API declared in ``_frames_c.pxd`` (``FrameBuffer.next_frame``,
``WriteBuffer``), which the Cython connection core uses without a Python object per frame.

Buffers come from a pool of fixed size classes (``_frames_c_pool.pxi``) and go back to it as
soon as they are empty; a received ``bytes`` object is read in place but never kept past its
iteration (see :class:`_FrameIterator`): under varied bad input, buffers of odd sizes kept for a
connection's life left glibc's heap fragmented (issue 14).

The pure-Python twin is :mod:`kyoukai_h2fast.codec._frames_py`. Leaves to others: what frames mean
(stream states, flow control, SETTINGS semantics) and HPACK.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize
from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.dict cimport PyDict_CheckExact, PyDict_Next, PyDict_SetItem, PyDict_Size
from cpython.long cimport PyLong_Check
from cpython.object cimport PyObject, PyTypeObject
from cpython.set cimport PySet_Add, PySet_Contains
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memmove, memset

from h2.exceptions import (DenialOfServiceError, FrameDataMissingError, FrameTooLargeError,
                           ProtocolError)
from hyperframe.exceptions import InvalidFrameError
from hyperframe.flags import Flags
from hyperframe.frame import (AltSvcFrame, ContinuationFrame, DataFrame, ExtensionFrame,
                              GoAwayFrame, HeadersFrame, PingFrame, PriorityFrame,
                              PushPromiseFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

from kyoukai_h2fast.constants import CLIENT_PREFACE, DEFAULT_MAX_HEADER_BLOCK_SIZE
from kyoukai_h2fast.errors import FramePaddingError

__all__ = ["FrameBuffer", "WriteBuffer", "FramePaddingError", "serialize_frame",
           "headers_frames", "data_frames", "settings_frame", "window_update_frame",
           "ping_frame", "rst_stream_frame", "goaway_frame", "parse_frame_header",
           "scan_frames", "count_frames", "CLIENT_PREFACE", "DEFAULT_MAX_HEADER_BLOCK_SIZE"]

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX

cdef enum:
    _ASSOC_ANY = 0
    _ASSOC_STREAM = 1               # the stream id must be non-zero
    _ASSOC_CONNECTION = 2           # the stream id must be zero

# Per known type (0..10): stream association (RFC 9113 §6) and the defined flags (§4.1).
cdef uint8_t[11] _ASSOCIATION = [1, 1, 1, 1, 2, 1, 2, 2, 0, 1, 0]
cdef uint8_t[11] _DEFINED_FLAGS = [0x09, 0x2D, 0, 0, 0x01, 0x0C, 0x01, 0, 0, 0x04, 0]

cdef bytes _PREFACE = CLIENT_PREFACE
cdef tuple _EMPTY_TUPLE = ()
cdef tuple _FRAME_CLASSES = (DataFrame, HeadersFrame, PriorityFrame, RstStreamFrame,
                             SettingsFrame, PushPromiseFrame, PingFrame, GoAwayFrame,
                             WindowUpdateFrame, ContinuationFrame, AltSvcFrame)
# hyperframe's Flags keep ``_valid_flags`` (never mutated): one shared set per frame class.
cdef tuple _VALID_FLAGS = tuple({flag.name for flag in cls.defined_flags} for cls in _FRAME_CLASSES)
cdef set _NO_VALID_FLAGS = set()
cdef object _FlagsClass = Flags


include "_frames_c_pool.pxi"


cdef inline object _new_instance(object cls):
    """``cls.__new__(cls)`` without the attribute lookup (plain classes: object.__new__)."""
    return (<PyTypeObject*>cls).tp_new(<type>cls, <PyObject*>_EMPTY_TUPLE, NULL)


cdef inline uint32_t _read32(const unsigned char* p) noexcept nogil:
    return ((<uint32_t>p[0]) << 24) | ((<uint32_t>p[1]) << 16) | ((<uint32_t>p[2]) << 8) | p[3]


cdef int _raise_header_error(uint8_t ftype, uint32_t stream_id) except -1:
    cls = _FRAME_CLASSES[ftype]
    if stream_id:
        detail = f"Stream ID must be zero for {cls.__name__} with stream_id={stream_id}"
    else:
        detail = f"Stream ID must be non-zero for {cls.__name__}"
    raise ProtocolError(f"Received frame with invalid header: {detail}")


cdef int _missing(str what) except -1:
    raise FrameDataMissingError(f"Frame data missing or invalid: {what}")


cdef int _parse_padding(FrameView* v, const unsigned char* payload, Py_ssize_t length) except -1:
    """Pad Length field (RFC 9113 §6.1/§6.2/§6.6): returns its size (0 or 1)."""
    if not (v.flags & FLAG_PADDED):
        return 0
    if length < 1:
        _missing("no Pad Length field")
    v.pad_length = payload[0]
    return 1


cdef int _parse_body(FrameView* v, const unsigned char* payload, Py_ssize_t length) except -1:
    """Fill the type-specific fields of ``v`` and apply the payload rules of RFC 9113 §6 (those
    of hyperframe, but for the three cases listed in ``_frames_c.pxd``)."""
    cdef Py_ssize_t offset, end
    cdef uint8_t ftype = v.type
    v.data = payload
    v.data_length = length
    if ftype == FRAME_DATA:
        offset = _parse_padding(v, payload, length)
        if v.pad_length > length - offset:   # RFC 9113 §6.1: padding >= payload length
            raise FramePaddingError("Padding is too long.")
        v.data = payload + offset
        v.data_length = length - offset - v.pad_length
    elif ftype == FRAME_HEADERS:
        offset = _parse_padding(v, payload, length)
        end = offset
        if v.flags & FLAG_PRIORITY:
            if length - offset < 5:
                _missing("HEADERS priority fields")
            v.depends_on = _read32(payload + offset)
            v.exclusive = v.depends_on >> 31
            v.depends_on &= 0x7FFFFFFF
            v.weight = payload[offset + 4]
            end = offset + 5
        # RFC 9113 §6.2: padding must fit in what remains after the priority fields
        # (hyperframe compares it with the payload minus the Pad Length field only).
        if v.pad_length > length - end:
            raise FramePaddingError("Padding is too long.")
        v.data = payload + end
        v.data_length = length - v.pad_length - end
    elif ftype == FRAME_CONTINUATION:
        pass
    elif ftype == FRAME_SETTINGS:
        if (v.flags & FLAG_ACK) and length:   # RFC 9113 §6.5: FRAME_SIZE_ERROR (h2: PROTOCOL_ERROR)
            _missing("SETTINGS ACK with a payload")
        if length % 6:
            _missing(f"SETTINGS length {length} is not a multiple of 6")
    elif ftype == FRAME_WINDOW_UPDATE:
        if length != 4:
            _missing(f"WINDOW_UPDATE length {length}")
        v.window_increment = _read32(payload)
        if v.window_increment == 0 or v.window_increment > 0x7FFFFFFF:
            raise ProtocolError("Received frame with non-compliant data: "
                                "WINDOW_UPDATE increment must be between 1 to 2^31-1")
    elif ftype == FRAME_PING:
        if length != 8:
            _missing(f"PING length {length}")
    elif ftype == FRAME_RST_STREAM:
        if length != 4:
            _missing(f"RST_STREAM length {length}")
        v.error_code = _read32(payload)
    elif ftype == FRAME_PRIORITY:
        if length != 5:
            _missing(f"PRIORITY length {length}")
        v.depends_on = _read32(payload)
        v.exclusive = v.depends_on >> 31
        v.depends_on &= 0x7FFFFFFF
        v.weight = payload[4]
    elif ftype == FRAME_GOAWAY:
        if length < 8:
            _missing(f"GOAWAY length {length}")
        v.last_stream_id = _read32(payload)
        v.error_code = _read32(payload + 4)
        v.data = payload + 8
        v.data_length = length - 8
    elif ftype == FRAME_PUSH_PROMISE:
        offset = _parse_padding(v, payload, length)
        if length - offset < 4:
            _missing("PUSH_PROMISE promised stream id")
        v.promised_stream_id = _read32(payload + offset)
        if v.promised_stream_id == 0 or v.promised_stream_id % 2:
            raise ProtocolError("Received frame with non-compliant data: "
                                f"promised stream id {v.promised_stream_id}")
        if v.pad_length > length - offset - 4:   # RFC 9113 §6.6 (hyperframe: >= length)
            raise FramePaddingError("Padding is too long.")
        v.data = payload + offset + 4
        v.data_length = length - v.pad_length - offset - 4
    elif ftype == FRAME_ALTSVC:
        if length < 2:
            _missing("ALTSVC origin length")
        v.origin_length = (payload[0] << 8) | payload[1]
        if 2 + <Py_ssize_t>v.origin_length > length:
            _missing("ALTSVC origin")
        v.data = payload + 2
        v.data_length = v.origin_length
    return 0


cdef class FrameBuffer:
    """Drop-in for ``h2.frame_buffer.FrameBuffer``; see the module docstring of ``_frames_c.pxd``.

    ``add_data(data)`` then iterate: yields hyperframe frame objects, raises the h2 exceptions.
    """

    def __cinit__(self, bint server=False):
        self.max_frame_size = 0
        self.max_header_block_size = DEFAULT_MAX_HEADER_BLOCK_SIZE
        self._preamble_left = len(_PREFACE) if server else 0
        self._ext = None

    def __dealloc__(self):
        buffer_release(self._buf, self._cap)
        buffer_release(self._block, self._block_cap)

    cdef int _check_preamble(self, const unsigned char* data, Py_ssize_t n) except -1:
        """RFC 9113 §3.4: the client preface, checked as it arrives; returns the bytes it used."""
        cdef Py_ssize_t used = self._preamble_left if self._preamble_left < n else n
        cdef Py_ssize_t seen = len(_PREFACE) - self._preamble_left
        if memcmp(data, PyBytes_AS_STRING(_PREFACE) + seen, used):
            raise ProtocolError("Invalid HTTP/2 preamble.")
        self._preamble_left -= used
        return used

    cdef int _append(self, const unsigned char* data, Py_ssize_t n) except -1:
        """Copy ``data`` after the unread bytes; a larger buffer comes from the pool."""
        cdef Py_ssize_t unread = self._end - self._start
        cdef Py_ssize_t cap
        cdef unsigned char* grown
        if n <= 0:
            return 0
        if self._end + n > self._cap:
            if unread + n <= self._cap:
                memmove(self._buf, self._buf + self._start, unread)
            else:
                grown = buffer_acquire(unread + n, &cap)
                if unread:
                    memcpy(grown, self._buf + self._start, unread)
                buffer_release(self._buf, self._cap)
                self._buf = grown
                self._cap = cap
            self._start = 0
            self._end = unread
        memcpy(self._buf + self._end, data, n)
        self._end += n
        return 0

    cdef int _fill(self) except -1:
        """The read buffer starts with an incomplete frame: complete it (its 9-byte header, then
        its payload) from the zero-copy input, as far as that goes. Only what the frame needs is
        copied, so the read buffer never holds more than one frame (and one size class)."""
        cdef Py_ssize_t want, take, length
        cdef const unsigned char* p
        while self._ext is not None:
            if self._end - self._start < FRAME_HEADER_LENGTH:
                want = FRAME_HEADER_LENGTH - (self._end - self._start)
            else:
                p = self._buf + self._start
                length = (<Py_ssize_t>p[0] << 16) | (<Py_ssize_t>p[1] << 8) | p[2]
                if length > self.max_frame_size:
                    return 0                    # next_frame rejects it from its header
                want = FRAME_HEADER_LENGTH + length - (self._end - self._start)
                if want <= 0:
                    return 0
            take = self._ext_len - self._ext_pos
            if take > want:
                take = want
            self._append(self._ext_ptr + self._ext_pos, take)
            self._ext_pos += take
            if self._ext_pos == self._ext_len:
                self._ext = None
            if take < want or self._end - self._start > FRAME_HEADER_LENGTH:
                return 0                        # input exhausted, or the frame is complete
        return 0

    cdef int detach_input(self) except -1:
        """Stop referencing the object given to ``add_data``: its unread bytes are copied into
        the read buffer (views already returned stay valid until the next call)."""
        if self._ext is not None:
            self._append(self._ext_ptr + self._ext_pos, self._ext_len - self._ext_pos)
            self._ext = None
        return 0

    cdef int _park(self) except -1:
        """Move the unread rest of a zero-copy input (less than one frame: see next_frame) into
        the read buffer and drop the input; an emptied read buffer goes back to the pool."""
        if self._ext is not None:
            self._append(self._ext_ptr + self._ext_pos, self._ext_len - self._ext_pos)
            self._ext = None
        if self._start == self._end:
            self._start = self._end = 0
            if self._buf != NULL:
                buffer_release(self._buf, self._cap)
                self._buf = NULL
                self._cap = 0
        return 0

    cdef int add_bytes(self, const unsigned char* data, Py_ssize_t n) except -1:
        cdef Py_ssize_t used
        if self._preamble_left and n:
            used = self._check_preamble(data, n)
            data += used
            n -= used
        self._park()
        self._append(data, n)
        return 0

    def add_data(self, data):
        """Add received bytes (any contiguous buffer). ``bytes`` are read in place when possible
        (when a frame is incomplete in the read buffer, only its missing bytes are copied)."""
        cdef Py_buffer view
        cdef Py_ssize_t used = 0, n
        if PyBytes_CheckExact(data) and self._ext is None:
            n = PyBytes_GET_SIZE(data)
            if self._preamble_left and n:
                used = self._check_preamble(<const unsigned char*>PyBytes_AS_STRING(data), n)
            if used < n:
                self._ext = data
                self._ext_ptr = <const unsigned char*>PyBytes_AS_STRING(data)
                self._ext_pos = used
                self._ext_len = n
            return
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self.add_bytes(<const unsigned char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    cdef int _block_add(self, FrameView* v) except -1:
        """Append a header block fragment (RFC 9113 §4.3) within ``max_header_block_size``."""
        cdef Py_ssize_t need = self._block_len + v.data_length
        cdef Py_ssize_t cap
        cdef unsigned char* grown
        if need > self.max_header_block_size:
            self._in_block = 0
            self._block_len = 0
            self._release_block()
            raise DenialOfServiceError(
                f"Header block larger than {self.max_header_block_size} bytes")
        if need > self._block_cap:
            grown = buffer_acquire(need, &cap)
            if self._block_len:
                memcpy(grown, self._block, self._block_len)
            buffer_release(self._block, self._block_cap)
            self._block = grown
            self._block_cap = cap
        if v.data_length:
            memcpy(self._block + self._block_len, v.data, v.data_length)
        self._block_len = need
        return 0

    cdef int _release_block(self) except -1:
        """The joined header block is no longer needed: its buffer goes back to the pool."""
        buffer_release(self._block, self._block_cap)
        self._block = NULL
        self._block_cap = 0
        return 0

    cdef int next_frame(self, FrameView* out) except -1:
        cdef const unsigned char* p
        cdef Py_ssize_t avail, length
        cdef uint8_t ftype, association
        cdef uint32_t stream_id
        cdef bint from_buffer
        if self._block_delivered:
            self._block_delivered = 0
            self._block_len = 0
            self._release_block()
        while True:
            # Bytes parked in the read buffer come first (an incomplete frame, completed from
            # the zero-copy input by _fill); then the zero-copy input is read in place.
            from_buffer = self._start < self._end
            if from_buffer:
                if self._ext is not None:
                    self._fill()
                p = self._buf + self._start
                avail = self._end - self._start
            elif self._ext is not None:
                if self._buf != NULL:           # emptied: back to the pool
                    self._start = self._end = 0
                    buffer_release(self._buf, self._cap)
                    self._buf = NULL
                    self._cap = 0
                p = self._ext_ptr + self._ext_pos
                avail = self._ext_len - self._ext_pos
            else:
                p = NULL
                avail = 0
            if avail < FRAME_HEADER_LENGTH:
                self._park()
                return 0
            # RFC 9113 §4.1: Length (24) | Type (8) | Flags (8) | R (1) | Stream Identifier (31)
            length = (<Py_ssize_t>p[0] << 16) | (<Py_ssize_t>p[1] << 8) | p[2]
            ftype = p[3]
            stream_id = _read32(p + 5) & 0x7FFFFFFF
            if ftype <= FRAME_ALTSVC:
                association = _ASSOCIATION[ftype]
                if association == _ASSOC_STREAM and not stream_id:
                    _raise_header_error(ftype, stream_id)
                if association == _ASSOC_CONNECTION and stream_id:
                    _raise_header_error(ftype, stream_id)
            if length > self.max_frame_size:   # RFC 9113 §4.2, before the payload arrives
                raise FrameTooLargeError(
                    f"Received overlong frame: length {length}, max {self.max_frame_size}")
            if avail < FRAME_HEADER_LENGTH + length:
                self._park()
                return 0
            memset(out, 0, sizeof(FrameView))
            out.length = <uint32_t>length
            out.type = ftype
            out.flags = p[4] & _DEFINED_FLAGS[ftype] if ftype <= FRAME_ALTSVC else p[4]
            out.stream_id = stream_id
            out.payload = p + FRAME_HEADER_LENGTH
            _parse_body(out, out.payload, length)
            if from_buffer:
                self._start += FRAME_HEADER_LENGTH + length
            else:
                self._ext_pos += FRAME_HEADER_LENGTH + length
            # RFC 9113 §6.10: a header block is HEADERS/PUSH_PROMISE + CONTINUATIONs, uninterrupted.
            if self._in_block:
                if ftype != FRAME_CONTINUATION or stream_id != self._block_first.stream_id:
                    raise ProtocolError("Invalid frame during header block.")
                self._block_frames += 1
                if self._block_frames > MAX_HEADER_BLOCK_FRAMES:
                    raise ProtocolError("Too many continuation frames received.")
                self._block_add(out)
                if not (out.flags & FLAG_END_HEADERS):
                    continue
                out[0] = self._block_first
                out.flags |= FLAG_END_HEADERS
                out.payload = NULL
                out.data = self._block
                out.data_length = self._block_len
                out.reassembled = 1
                self._in_block = 0
                self._block_delivered = 1
                return 1
            if ftype == FRAME_HEADERS or ftype == FRAME_PUSH_PROMISE:
                if not (out.flags & FLAG_END_HEADERS):
                    self._block_len = 0
                    self._block_add(out)
                    self._block_first = out[0]
                    self._block_frames = 1
                    self._in_block = 1
                    continue
                if out.data_length > self.max_header_block_size:
                    raise DenialOfServiceError(
                        f"Header block larger than {self.max_header_block_size} bytes")
            return 1

    cdef object frame_object(self, FrameView* v):
        """The hyperframe object (attributes as ``parse_frame_header`` + ``parse_body`` set
        them)."""
        cdef uint8_t ftype = v.type
        cdef uint8_t flags = v.flags
        cdef Py_ssize_t _i
        cdef const unsigned char* entry
        if ftype > FRAME_ALTSVC:
            frame = _new_instance(ExtensionFrame)
            frame.stream_id = v.stream_id
            flag_set = _new_instance(_FlagsClass)
            flag_set._valid_flags = _NO_VALID_FLAGS
            flag_set._flags = set()
            frame.flags = flag_set
            frame.body_len = v.length
            frame.type = ftype
            frame.flag_byte = flags
            frame.body = PyBytes_FromStringAndSize(<char*>v.payload, v.length)
            return frame
        frame = _new_instance(_FRAME_CLASSES[ftype])
        frame.stream_id = v.stream_id
        flag_set = _new_instance(_FlagsClass)
        flag_set._valid_flags = _VALID_FLAGS[ftype]
        names = set()
        if flags:
            if flags & 0x01:
                PySet_Add(names, "ACK" if ftype == FRAME_SETTINGS or ftype == FRAME_PING
                          else "END_STREAM")
            if flags & FLAG_END_HEADERS:
                PySet_Add(names, "END_HEADERS")
            if flags & FLAG_PADDED:
                PySet_Add(names, "PADDED")
            if flags & FLAG_PRIORITY:
                PySet_Add(names, "PRIORITY")
        flag_set._flags = names
        frame.flags = flag_set
        if ftype == FRAME_HEADERS:
            frame.body_len = v.length - 1 if flags & FLAG_PADDED else v.length
            frame.depends_on = v.depends_on
            frame.stream_weight = v.weight
            frame.exclusive = <bint>v.exclusive
            frame.pad_length = v.pad_length
            frame.data = PyBytes_FromStringAndSize(<char*>v.data, v.data_length)
        elif ftype == FRAME_DATA:
            frame.body_len = v.length
            frame.pad_length = v.pad_length
            frame.data = PyBytes_FromStringAndSize(<char*>v.data, v.data_length)
        elif ftype == FRAME_WINDOW_UPDATE:
            frame.body_len = 4
            frame.window_increment = v.window_increment
        elif ftype == FRAME_SETTINGS:
            frame.body_len = v.length
            settings = {}
            entry = v.payload
            for _i in range(v.length // 6):
                PyDict_SetItem(settings, (entry[0] << 8) | entry[1], _read32(entry + 2))
                entry += 6
            frame.settings = settings
        elif ftype == FRAME_PING:
            frame.body_len = 8
            frame.opaque_data = PyBytes_FromStringAndSize(<char*>v.payload, 8)
        elif ftype == FRAME_RST_STREAM:
            frame.body_len = 4
            frame.error_code = v.error_code
        elif ftype == FRAME_CONTINUATION:
            frame.body_len = v.length
            frame.data = PyBytes_FromStringAndSize(<char*>v.data, v.data_length)
        elif ftype == FRAME_GOAWAY:
            frame.body_len = v.length
            frame.last_stream_id = v.last_stream_id
            frame.error_code = v.error_code
            frame.additional_data = PyBytes_FromStringAndSize(<char*>v.data, v.data_length)
        elif ftype == FRAME_PRIORITY:
            frame.body_len = 5
            frame.depends_on = v.depends_on
            frame.stream_weight = v.weight
            frame.exclusive = <bint>v.exclusive
        elif ftype == FRAME_PUSH_PROMISE:
            frame.body_len = v.length
            frame.pad_length = v.pad_length
            frame.promised_stream_id = v.promised_stream_id
            frame.data = PyBytes_FromStringAndSize(<char*>v.data, v.data_length)
        else:  # ALTSVC
            frame.body_len = v.length
            frame.origin = PyBytes_FromStringAndSize(<char*>v.data, v.origin_length)
            frame.field = PyBytes_FromStringAndSize(
                <char*>v.data + v.origin_length, v.length - 2 - v.origin_length)
        return frame

    @property
    def buffered(self):
        """Bytes received and not yet delivered (a header block being joined not counted)."""
        return (self._end - self._start) + (self._ext_len - self._ext_pos if self._ext is not None
                                            else 0)

    def __iter__(self):
        return _FrameIterator(self)

    def __next__(self):
        cdef FrameView view
        if self.next_frame(&view):
            frame = self.frame_object(&view)
            # A caller of next() may stop at any frame and never come back: the object given
            # to add_data must not stay referenced (see _FrameIterator), so its rest is copied.
            if self._ext is not None:
                self.detach_input()
            return frame
        raise StopIteration


cdef class _FrameIterator:
    """``iter(FrameBuffer)``: the buffer's frames as hyperframe objects, read in place.

    h2 stops iterating at the first frame it rejects (a connection error) and never iterates
    that buffer again, so the object given to ``add_data`` (a whole socket read) would stay
    referenced until the connection object is collected; received buffers kept past their read
    fragment the heap (issue 14). When the iterator is dropped (the ``for`` loop ended, by
    exhaustion or by an exception), the unread rest of that object is copied into the read
    buffer (nothing to copy after a complete iteration) and the reference is dropped.
    """

    cdef FrameBuffer _frames

    def __cinit__(self, FrameBuffer frames):
        self._frames = frames

    def __iter__(self):
        return self

    def __next__(self):
        cdef FrameView view
        if self._frames.next_frame(&view):
            return self._frames.frame_object(&view)
        raise StopIteration

    def __dealloc__(self):
        if self._frames is not None and self._frames._ext is not None:
            try:
                self._frames.detach_input()
            except MemoryError:
                pass                        # the input stays referenced: nothing is lost


def scan_frames(data, Py_ssize_t max_frame_size=16384, bint server=False,
                Py_ssize_t max_header_block_size=DEFAULT_MAX_HEADER_BLOCK_SIZE):
    """``(length, type, flags, stream_id)`` of each frame ``FrameBuffer.next_frame`` delivers.

    Same checks and errors as iterating a ``FrameBuffer``; no frame objects are built.
    """
    cdef FrameBuffer buf = FrameBuffer(server)
    cdef FrameView view
    buf.max_frame_size = max_frame_size
    buf.max_header_block_size = max_header_block_size
    buf.add_data(data)
    result = []
    while buf.next_frame(&view):
        result.append((view.length, view.type, view.flags, view.stream_id))
    return result


def count_frames(data, Py_ssize_t max_frame_size=16384, bint server=False,
                 Py_ssize_t max_header_block_size=DEFAULT_MAX_HEADER_BLOCK_SIZE):
    """How many frames ``scan_frames`` would return (the C-level loop alone, for benchmarks)."""
    cdef FrameBuffer buf = FrameBuffer(server)
    cdef FrameView view
    cdef Py_ssize_t count = 0
    buf.max_frame_size = max_frame_size
    buf.max_header_block_size = max_header_block_size
    buf.add_data(data)
    while buf.next_frame(&view):
        count += 1
    return count


def parse_frame_header(data):
    """``(length, type, flags, stream_id)`` from the first 9 bytes of ``data`` (RFC 9113 §4.1).

    Flags are the raw byte; the stream id's reserved bit is cleared. Fewer than 9 bytes raise
    hyperframe's ``InvalidFrameError``.
    """
    cdef Py_buffer view
    cdef const unsigned char* p
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        if view.len < FRAME_HEADER_LENGTH:
            raise InvalidFrameError("Invalid frame header")
        p = <const unsigned char*>view.buf
        return ((p[0] << 16) | (p[1] << 8) | p[2], p[3], p[4], _read32(p + 5) & 0x7FFFFFFF)
    finally:
        PyBuffer_Release(&view)


# ---- C-API exercisers (used by the tests; not part of the public API) --------------------
def _capi_scan_chunks(chunks, Py_ssize_t max_frame_size=16384, bint server=False,
                      bint copy=False):
    """Feed ``chunks`` one by one (``add_data``, or ``add_bytes`` with ``copy``) and drain each
    with ``next_frame`` (the C path, no frame objects). Returns ``(frames, largest read buffer
    capacity seen)``, frames as ``(length, type, flags, stream_id, data)``."""
    cdef FrameBuffer buf = FrameBuffer(server)
    cdef FrameView view
    cdef Py_ssize_t largest = 0
    buf.max_frame_size = max_frame_size
    frames = []
    for chunk in chunks:
        if copy:
            buf.add_bytes(<const unsigned char*>PyBytes_AS_STRING(chunk), PyBytes_GET_SIZE(chunk))
        else:
            buf.add_data(chunk)
        while True:
            if buf._cap > largest:
                largest = buf._cap
            if not buf.next_frame(&view):
                break
            if buf._cap > largest:
                largest = buf._cap
            frames.append((view.length, view.type, view.flags, view.stream_id,
                           PyBytes_FromStringAndSize(<char*>view.data, view.data_length)))
    return frames, largest


def _capi_capacities(obj):
    """Bytes of buffer memory an object holds: ``(read buffer, header block buffer)`` of a
    ``FrameBuffer``, ``(buffer,)`` of a ``WriteBuffer``."""
    if isinstance(obj, FrameBuffer):
        return ((<FrameBuffer>obj)._cap, (<FrameBuffer>obj)._block_cap)
    return ((<WriteBuffer?>obj)._cap,)


include "_frames_c_write.pxi"
