# Included by _frames_c.pyx: the outbound side of the frame layer (RFC 9113 §4.1, §6).
#
# ``serialize_frame(frame)`` gives the bytes of hyperframe's ``frame.serialize()`` (and sets
# ``frame.body_len`` as it does); anything unusual (non-bytes payloads, out-of-range values,
# other classes) is handed to ``frame.serialize()`` itself so bytes and errors stay identical.
# The direct functions take plain values and build each result with one allocation; the
# ``WriteBuffer`` methods append the same bytes to a growable buffer (C API in the .pxd).
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize
from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.long cimport PyLong_Check
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

cdef extern from "Python.h":
    unsigned long long _long_as_ull "PyLong_AsUnsignedLongLong"(object)
    unsigned long long _long_as_ull_mask "PyLong_AsUnsignedLongLongMask"(object)
    PyObject* PyErr_Occurred()
    void PyErr_Clear()

cdef enum:
    _MAX_FRAME_SIZE_LIMIT = 16777215      # RFC 9113 §4.2: 2^24 - 1
    _WRITE_BUFFER_KEEP = 5 * 1024         # an emptied WriteBuffer keeps at most this much

# (flag name, bit) per class, in hyperframe's defined_flags order.
cdef tuple _BITS_DATA = (("END_STREAM", 0x01), ("PADDED", 0x08))
cdef tuple _BITS_HEADERS = (("END_STREAM", 0x01), ("END_HEADERS", 0x04), ("PADDED", 0x08),
                            ("PRIORITY", 0x20))
cdef tuple _BITS_ACK = (("ACK", 0x01),)
cdef tuple _BITS_PUSH_PROMISE = (("END_HEADERS", 0x04), ("PADDED", 0x08))
cdef tuple _BITS_CONTINUATION = (("END_HEADERS", 0x04),)
cdef tuple _BITS_NONE = ()


cdef inline void _write32(unsigned char* out, uint32_t value) noexcept nogil:
    out[0] = <unsigned char>(value >> 24)
    out[1] = <unsigned char>(value >> 16)
    out[2] = <unsigned char>(value >> 8)
    out[3] = <unsigned char>value


cdef int _int_in(object value, uint64_t high, uint64_t* out) except -1:
    """1 and ``*out`` when ``value`` is an int in 0..high, else 0 (the caller falls back)."""
    cdef unsigned long long x
    if not PyLong_Check(value):
        return 0
    x = _long_as_ull(value)
    if x == <unsigned long long>-1 and PyErr_Occurred() != NULL:
        PyErr_Clear()
        return 0
    if x > high:
        return 0
    out[0] = x
    return 1


cdef int _masked(object value, uint64_t mask, uint64_t* out) except -1:
    """1 and ``value & mask`` (any int, as Python computes it) else 0."""
    if not PyLong_Check(value):
        return 0
    out[0] = _long_as_ull_mask(value) & mask
    return 1


cdef int _flag_bits(object frame, tuple bits, uint8_t* out) except -1:
    """hyperframe's flag byte: bits of the defined flags present in ``frame.flags``."""
    cdef uint8_t byte = 0
    flags = frame.flags
    if type(flags) is not _FlagsClass:
        return 0
    names = flags._flags
    if type(names) is not set:
        return 0
    if names:
        for name, bit in bits:
            if PySet_Contains(names, name):
                byte |= <uint8_t>bit
    out[0] = byte
    return 1


cdef bytes _new_frame(Py_ssize_t body_length, uint8_t ftype, uint8_t flags, uint32_t stream_id):
    """A bytes object holding the frame header, with room for the body after it."""
    cdef bytes out = PyBytes_FromStringAndSize(NULL, FRAME_HEADER_LENGTH + body_length)
    write_frame_header(<unsigned char*>PyBytes_AS_STRING(out), body_length, ftype, flags,
                       stream_id)
    return out


cdef object _serialize_padded(object frame, tuple bits, uint8_t ftype, bint headers):
    """DATA, HEADERS, PUSH_PROMISE: [Pad Length] [priority | promised id] data [padding]."""
    cdef uint8_t flags
    cdef uint64_t stream_id, pad_length, depends_on, weight, promised
    cdef Py_ssize_t prefix = 0, body_length
    cdef unsigned char* out
    if not _flag_bits(frame, bits, &flags) or not _masked(frame.stream_id, 0x7FFFFFFF, &stream_id):
        return None
    if not _int_in(frame.pad_length, 255, &pad_length):
        return None
    data = frame.data
    if not PyBytes_CheckExact(data):
        return None
    if flags & FLAG_PADDED:
        prefix = 1
    if ftype == FRAME_HEADERS and flags & FLAG_PRIORITY:
        if not _int_in(frame.depends_on, 0xFFFFFFFF, &depends_on):
            return None
        if not _int_in(frame.stream_weight, 255, &weight):
            return None
        if frame.exclusive:
            depends_on += 0x80000000
            if depends_on > 0xFFFFFFFF:
                return None
        prefix += 5
    elif ftype == FRAME_PUSH_PROMISE:
        if not _int_in(frame.promised_stream_id, 0xFFFFFFFF, &promised):
            return None
        prefix += 4
    body_length = prefix + PyBytes_GET_SIZE(data) + <Py_ssize_t>pad_length
    result = _new_frame(body_length, ftype, flags, <uint32_t>stream_id)
    out = <unsigned char*>PyBytes_AS_STRING(result) + FRAME_HEADER_LENGTH
    if flags & FLAG_PADDED:
        out[0] = <unsigned char>pad_length
        out += 1
    if ftype == FRAME_HEADERS and flags & FLAG_PRIORITY:
        _write32(out, <uint32_t>depends_on)
        out[4] = <unsigned char>weight
        out += 5
    elif ftype == FRAME_PUSH_PROMISE:
        _write32(out, <uint32_t>promised)
        out += 4
    memcpy(out, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
    memset(out + PyBytes_GET_SIZE(data), 0, <size_t>pad_length)
    frame.body_len = body_length
    return result


cdef object _serialize_fast(object frame):
    """The serialized frame, or None when ``frame.serialize()`` must do it."""
    cdef uint8_t flags
    cdef uint64_t stream_id, a, b
    cdef Py_ssize_t n, pos
    cdef PyObject* key
    cdef PyObject* value
    cdef unsigned char* out
    cls = type(frame)
    if cls is DataFrame:
        return _serialize_padded(frame, _BITS_DATA, FRAME_DATA, False)
    if cls is HeadersFrame:
        return _serialize_padded(frame, _BITS_HEADERS, FRAME_HEADERS, True)
    if cls is PushPromiseFrame:
        return _serialize_padded(frame, _BITS_PUSH_PROMISE, FRAME_PUSH_PROMISE, True)
    if cls is WindowUpdateFrame:
        if (not _flag_bits(frame, _BITS_NONE, &flags)
                or not _masked(frame.stream_id, 0x7FFFFFFF, &stream_id)):
            return None
        if not _masked(frame.window_increment, 0x7FFFFFFF, &a):
            return None
        result = _new_frame(4, FRAME_WINDOW_UPDATE, flags, <uint32_t>stream_id)
        _write32(<unsigned char*>PyBytes_AS_STRING(result) + 9, <uint32_t>a)
        frame.body_len = 4
        return result
    if cls is ContinuationFrame:
        if (not _flag_bits(frame, _BITS_CONTINUATION, &flags)
                or not _masked(frame.stream_id, 0x7FFFFFFF, &stream_id)):
            return None
        data = frame.data
        if not PyBytes_CheckExact(data):
            return None
        n = PyBytes_GET_SIZE(data)
        result = _new_frame(n, FRAME_CONTINUATION, flags, <uint32_t>stream_id)
        memcpy(PyBytes_AS_STRING(result) + 9, PyBytes_AS_STRING(data), n)
        frame.body_len = n
        return result
    if cls is SettingsFrame:
        if (not _flag_bits(frame, _BITS_ACK, &flags)
                or not _masked(frame.stream_id, 0x7FFFFFFF, &stream_id)):
            return None
        settings = frame.settings
        if not PyDict_CheckExact(settings):
            return None
        n = PyDict_Size(settings) * 6
        result = _new_frame(n, FRAME_SETTINGS, flags, <uint32_t>stream_id)
        out = <unsigned char*>PyBytes_AS_STRING(result) + 9
        pos = 0
        while PyDict_Next(settings, &pos, &key, &value):
            if not _masked(<object>key, 0xFF, &a) or not _int_in(<object>value, 0xFFFFFFFF, &b):
                return None
            out[0] = 0
            out[1] = <unsigned char>a
            _write32(out + 2, <uint32_t>b)
            out += 6
        frame.body_len = n
        return result
    if cls is PingFrame:
        if (not _flag_bits(frame, _BITS_ACK, &flags)
                or not _masked(frame.stream_id, 0x7FFFFFFF, &stream_id)):
            return None
        data = frame.opaque_data
        if not PyBytes_CheckExact(data) or PyBytes_GET_SIZE(data) > 8:
            return None
        result = _new_frame(8, FRAME_PING, flags, <uint32_t>stream_id)
        out = <unsigned char*>PyBytes_AS_STRING(result) + 9
        memset(out, 0, 8)
        memcpy(out, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
        frame.body_len = 8
        return result
    if cls is RstStreamFrame:
        if (not _flag_bits(frame, _BITS_NONE, &flags)
                or not _masked(frame.stream_id, 0x7FFFFFFF, &stream_id)):
            return None
        if not _int_in(frame.error_code, 0xFFFFFFFF, &a):
            return None
        result = _new_frame(4, FRAME_RST_STREAM, flags, <uint32_t>stream_id)
        _write32(<unsigned char*>PyBytes_AS_STRING(result) + 9, <uint32_t>a)
        frame.body_len = 4
        return result
    if cls is GoAwayFrame:
        if (not _flag_bits(frame, _BITS_NONE, &flags)
                or not _masked(frame.stream_id, 0x7FFFFFFF, &stream_id)):
            return None
        if (not _masked(frame.last_stream_id, 0x7FFFFFFF, &a)
                or not _int_in(frame.error_code, 0xFFFFFFFF, &b)):
            return None
        data = frame.additional_data
        if not PyBytes_CheckExact(data):
            return None
        n = 8 + PyBytes_GET_SIZE(data)
        result = _new_frame(n, FRAME_GOAWAY, flags, <uint32_t>stream_id)
        out = <unsigned char*>PyBytes_AS_STRING(result) + 9
        _write32(out, <uint32_t>a)
        _write32(out + 4, <uint32_t>b)
        memcpy(out + 8, PyBytes_AS_STRING(data), n - 8)
        frame.body_len = n
        return result
    if cls is PriorityFrame:
        if (not _flag_bits(frame, _BITS_NONE, &flags)
                or not _masked(frame.stream_id, 0x7FFFFFFF, &stream_id)):
            return None
        if (not _int_in(frame.depends_on, 0xFFFFFFFF, &a)
                or not _int_in(frame.stream_weight, 255, &b)):
            return None
        if frame.exclusive:
            a += 0x80000000
            if a > 0xFFFFFFFF:
                return None
        result = _new_frame(5, FRAME_PRIORITY, flags, <uint32_t>stream_id)
        out = <unsigned char*>PyBytes_AS_STRING(result) + 9
        _write32(out, <uint32_t>a)
        out[4] = <unsigned char>b
        frame.body_len = 5
        return result
    if cls is AltSvcFrame:
        if (not _flag_bits(frame, _BITS_NONE, &flags)
                or not _masked(frame.stream_id, 0x7FFFFFFF, &stream_id)):
            return None
        origin = frame.origin
        field = frame.field
        if not PyBytes_CheckExact(origin) or not PyBytes_CheckExact(field):
            return None
        if PyBytes_GET_SIZE(origin) > 0xFFFF:
            return None
        n = 2 + PyBytes_GET_SIZE(origin) + PyBytes_GET_SIZE(field)
        result = _new_frame(n, FRAME_ALTSVC, flags, <uint32_t>stream_id)
        out = <unsigned char*>PyBytes_AS_STRING(result) + 9
        out[0] = <unsigned char>(PyBytes_GET_SIZE(origin) >> 8)
        out[1] = <unsigned char>PyBytes_GET_SIZE(origin)
        memcpy(out + 2, PyBytes_AS_STRING(origin), PyBytes_GET_SIZE(origin))
        memcpy(out + 2 + PyBytes_GET_SIZE(origin), PyBytes_AS_STRING(field),
               PyBytes_GET_SIZE(field))
        frame.body_len = n
        return result
    return None


def serialize_frame(frame):
    """Bytes equal to ``frame.serialize()`` for a hyperframe frame (RFC 9113 §4.1)."""
    result = _serialize_fast(frame)
    if result is None:
        return frame.serialize()
    return result


# ---- direct serializers (plain values) -------------------------------------------------------

cdef uint32_t _arg(object value, uint32_t low, uint32_t high, str name) except? 0xFFFFFFFF:
    cdef uint64_t x
    if not PyLong_Check(value):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not _int_in(value, high, &x) or x < low:
        raise ValueError(f"{name} must be in {low}..{high}, got {value!r}")
    return <uint32_t>x


cdef Py_ssize_t _split_length(Py_ssize_t n, Py_ssize_t max_frame_size) noexcept nogil:
    """Bytes of the frames carrying n payload bytes in frames of at most max_frame_size."""
    cdef Py_ssize_t frames = 1 if n == 0 else (n + max_frame_size - 1) // max_frame_size
    return n + frames * FRAME_HEADER_LENGTH


cdef void _write_split(unsigned char* out, uint32_t stream_id, const unsigned char* src,
                       Py_ssize_t n, Py_ssize_t max_frame_size, uint8_t first_type,
                       uint8_t first_flags, uint8_t next_type, uint8_t last_flags) noexcept nogil:
    """First frame of ``first_type`` + ``first_flags``, the rest ``next_type``, ``last_flags``
    on the last one (RFC 9113 §6.1 DATA splitting, §6.10 HEADERS + CONTINUATION)."""
    cdef Py_ssize_t chunk
    cdef uint8_t ftype = first_type, flags = first_flags
    while True:
        chunk = n if n < max_frame_size else max_frame_size
        n -= chunk
        if n == 0:
            flags |= last_flags
        write_frame_header(out, chunk, ftype, flags, stream_id)
        memcpy(out + FRAME_HEADER_LENGTH, src, chunk)
        out += FRAME_HEADER_LENGTH + chunk
        src += chunk
        if n == 0:
            return
        ftype = next_type
        flags = 0


cdef Py_ssize_t _frame_size_arg(object max_frame_size) except -1:
    return _arg(max_frame_size, 1, _MAX_FRAME_SIZE_LIMIT, "max_frame_size")


cdef bytes _split_frames(object stream_id, object payload, bint end_stream,
                         object max_frame_size, bint headers):
    cdef uint32_t sid = _arg(stream_id, 0, 0x7FFFFFFF, "stream_id")
    cdef Py_ssize_t limit = _frame_size_arg(max_frame_size)
    cdef Py_buffer view
    cdef bytes result
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        result = PyBytes_FromStringAndSize(NULL, _split_length(view.len, limit))
        if headers:
            _write_split(<unsigned char*>PyBytes_AS_STRING(result), sid,
                         <const unsigned char*>view.buf, view.len, limit, FRAME_HEADERS,
                         FLAG_END_STREAM if end_stream else 0, FRAME_CONTINUATION,
                         FLAG_END_HEADERS)
        else:
            _write_split(<unsigned char*>PyBytes_AS_STRING(result), sid,
                         <const unsigned char*>view.buf, view.len, limit, FRAME_DATA, 0,
                         FRAME_DATA, FLAG_END_STREAM if end_stream else 0)
    finally:
        PyBuffer_Release(&view)
    return result


def headers_frames(stream_id, block, bint end_stream, max_frame_size=16384):
    """HEADERS (+ CONTINUATION) frames carrying the encoded field block ``block``.

    END_STREAM (if asked) on the HEADERS frame, END_HEADERS on the last frame (RFC 9113 §6.2,
    §6.10); every frame carries at most ``max_frame_size`` bytes.
    """
    return _split_frames(stream_id, block, end_stream, max_frame_size, True)


def data_frames(stream_id, data, bint end_stream, max_frame_size=16384):
    """DATA frames carrying ``data`` in pieces of at most ``max_frame_size`` bytes, END_STREAM
    (if asked) on the last one; empty ``data`` gives one empty DATA frame (RFC 9113 §6.1)."""
    return _split_frames(stream_id, data, end_stream, max_frame_size, False)


cdef Py_ssize_t _settings_payload(dict settings, bint ack, unsigned char* out) except -1:
    """Validate (and write, if ``out``) a SETTINGS payload; returns its length (RFC 9113 §6.5)."""
    cdef Py_ssize_t pos = 0
    cdef PyObject* key
    cdef PyObject* value
    cdef uint32_t ident, number
    if ack and settings:
        raise ValueError("a SETTINGS ACK frame has no settings")
    while PyDict_Next(settings, &pos, &key, &value):
        ident = _arg(<object>key, 0, 0xFFFF, "setting identifier")
        number = _arg(<object>value, 0, 0xFFFFFFFF, "setting value")
        if out != NULL:
            out[0] = <unsigned char>(ident >> 8)
            out[1] = <unsigned char>ident
            _write32(out + 2, number)
            out += 6
    return PyDict_Size(settings) * 6


def settings_frame(dict settings not None, bint ack=False):
    """A SETTINGS frame with ``settings`` ({identifier: value}) or an empty ACK."""
    cdef Py_ssize_t n = _settings_payload(settings, ack, NULL)
    cdef bytes result = _new_frame(n, FRAME_SETTINGS, FLAG_ACK if ack else 0, 0)
    _settings_payload(settings, ack, <unsigned char*>PyBytes_AS_STRING(result) + 9)
    return result


def window_update_frame(stream_id, increment):
    """A WINDOW_UPDATE frame (RFC 9113 §6.9); increment 1..2^31-1."""
    cdef uint32_t sid = _arg(stream_id, 0, 0x7FFFFFFF, "stream_id")
    cdef uint32_t inc = _arg(increment, 1, 0x7FFFFFFF, "increment")
    cdef bytes result = _new_frame(4, FRAME_WINDOW_UPDATE, 0, sid)
    _write32(<unsigned char*>PyBytes_AS_STRING(result) + 9, inc)
    return result


def rst_stream_frame(stream_id, error_code):
    """A RST_STREAM frame (RFC 9113 §6.4)."""
    cdef uint32_t sid = _arg(stream_id, 0, 0x7FFFFFFF, "stream_id")
    cdef uint32_t code = _arg(error_code, 0, 0xFFFFFFFF, "error_code")
    cdef bytes result = _new_frame(4, FRAME_RST_STREAM, 0, sid)
    _write32(<unsigned char*>PyBytes_AS_STRING(result) + 9, code)
    return result


def ping_frame(opaque_data, bint ack=False):
    """A PING frame (RFC 9113 §6.7); ``opaque_data`` of at most 8 bytes is zero-padded to 8."""
    cdef Py_buffer view
    cdef bytes result = _new_frame(8, FRAME_PING, FLAG_ACK if ack else 0, 0)
    cdef unsigned char* out = <unsigned char*>PyBytes_AS_STRING(result) + 9
    PyObject_GetBuffer(opaque_data, &view, PyBUF_SIMPLE)
    try:
        if view.len > 8:
            raise ValueError(f"PING opaque data has {view.len} bytes, at most 8 allowed")
        memset(out, 0, 8)
        memcpy(out, view.buf, view.len)
    finally:
        PyBuffer_Release(&view)
    return result


def goaway_frame(last_stream_id, error_code, additional_data=b""):
    """A GOAWAY frame (RFC 9113 §6.8) with optional debug data."""
    cdef uint32_t last = _arg(last_stream_id, 0, 0x7FFFFFFF, "last_stream_id")
    cdef uint32_t code = _arg(error_code, 0, 0xFFFFFFFF, "error_code")
    cdef Py_buffer view
    cdef bytes result
    cdef unsigned char* out
    PyObject_GetBuffer(additional_data, &view, PyBUF_SIMPLE)
    try:
        result = _new_frame(8 + view.len, FRAME_GOAWAY, 0, 0)
        out = <unsigned char*>PyBytes_AS_STRING(result) + 9
        _write32(out, last)
        _write32(out + 4, code)
        memcpy(out + 8, view.buf, view.len)
    finally:
        PyBuffer_Release(&view)
    return result


cdef class WriteBuffer:
    """Growable output buffer; C ``append_*`` methods and their Python ``add_*`` twins."""

    def __dealloc__(self):
        buffer_release(self._buf, self._cap)

    cdef unsigned char* reserve(self, Py_ssize_t n) except NULL:
        cdef Py_ssize_t cap
        cdef unsigned char* grown
        cdef unsigned char* out
        if self._len + n > self._cap:
            # Memory comes from the frame layer's buffer pool (fixed size classes).
            cap = self._cap * 2
            if cap < self._len + n:
                cap = self._len + n
            grown = buffer_acquire(cap, &cap)
            if self._len:
                memcpy(grown, self._buf, self._len)
            buffer_release(self._buf, self._cap)
            self._buf = grown
            self._cap = cap
        out = self._buf + self._len
        self._len += n
        return out

    cdef int _emptied(self) except -1:
        """The buffer was emptied: keep a buffer of a standard size, give back a bigger one."""
        self._len = 0
        if self._cap > _WRITE_BUFFER_KEEP:
            buffer_release(self._buf, self._cap)
            self._buf = NULL
            self._cap = 0
        return 0

    cdef int append(self, const unsigned char* data, Py_ssize_t n) except -1:
        memcpy(self.reserve(n), data, n)
        return 0

    cdef int append_frame_header(self, Py_ssize_t length, uint8_t type, uint8_t flags,
                                 uint32_t stream_id) except -1:
        write_frame_header(self.reserve(FRAME_HEADER_LENGTH), length, type, flags, stream_id)
        return 0

    cdef int append_frame(self, uint8_t type, uint8_t flags, uint32_t stream_id,
                          const unsigned char* payload, Py_ssize_t length) except -1:
        self.append_frame_header(length, type, flags, stream_id)
        self.append(payload, length)
        return 0

    cdef int append_headers_frames(self, uint32_t stream_id, const unsigned char* block,
                                   Py_ssize_t n, bint end_stream,
                                   Py_ssize_t max_frame_size) except -1:
        _write_split(self.reserve(_split_length(n, max_frame_size)), stream_id, block, n,
                     max_frame_size, FRAME_HEADERS, FLAG_END_STREAM if end_stream else 0,
                     FRAME_CONTINUATION, FLAG_END_HEADERS)
        return 0

    cdef int append_data_frames(self, uint32_t stream_id, const unsigned char* data,
                                Py_ssize_t n, bint end_stream, Py_ssize_t max_frame_size) except -1:
        _write_split(self.reserve(_split_length(n, max_frame_size)), stream_id, data, n,
                     max_frame_size, FRAME_DATA, 0, FRAME_DATA,
                     FLAG_END_STREAM if end_stream else 0)
        return 0

    cdef int append_settings(self, dict settings, bint ack) except -1:
        if settings is None:
            raise TypeError("settings must be a dict")
        cdef Py_ssize_t n = _settings_payload(settings, ack, NULL)
        cdef unsigned char* out = self.reserve(FRAME_HEADER_LENGTH + n)
        write_frame_header(out, n, FRAME_SETTINGS, FLAG_ACK if ack else 0, 0)
        _settings_payload(settings, ack, out + FRAME_HEADER_LENGTH)
        return 0

    cdef int append_window_update(self, uint32_t stream_id, uint32_t increment) except -1:
        cdef unsigned char* out = self.reserve(FRAME_HEADER_LENGTH + 4)
        write_frame_header(out, 4, FRAME_WINDOW_UPDATE, 0, stream_id)
        _write32(out + FRAME_HEADER_LENGTH, increment & 0x7FFFFFFF)
        return 0

    cdef int append_ping(self, const unsigned char* opaque_data8, bint ack) except -1:
        self.append_frame(FRAME_PING, FLAG_ACK if ack else 0, 0, opaque_data8, 8)
        return 0

    cdef int append_rst_stream(self, uint32_t stream_id, uint32_t error_code) except -1:
        cdef unsigned char* out = self.reserve(FRAME_HEADER_LENGTH + 4)
        write_frame_header(out, 4, FRAME_RST_STREAM, 0, stream_id)
        _write32(out + FRAME_HEADER_LENGTH, error_code)
        return 0

    cdef int append_goaway(self, uint32_t last_stream_id, uint32_t error_code,
                           const unsigned char* debug, Py_ssize_t n) except -1:
        cdef unsigned char* out = self.reserve(FRAME_HEADER_LENGTH + 8 + n)
        write_frame_header(out, 8 + n, FRAME_GOAWAY, 0, 0)
        _write32(out + FRAME_HEADER_LENGTH, last_stream_id & 0x7FFFFFFF)
        _write32(out + FRAME_HEADER_LENGTH + 4, error_code)
        if n:
            memcpy(out + FRAME_HEADER_LENGTH + 8, debug, n)
        return 0

    cpdef bytes take(self):
        """The buffered bytes; the buffer is emptied (memory of a standard size is kept for
        reuse, a larger buffer is given back)."""
        cdef bytes out = PyBytes_FromStringAndSize(<char*>self._buf, self._len)
        self._emptied()
        return out

    def getvalue(self):
        """The buffered bytes (the buffer is left as it is)."""
        return PyBytes_FromStringAndSize(<char*>self._buf, self._len)

    def clear(self):
        self._emptied()

    def __len__(self):
        return self._len

    def write(self, data):
        """Append raw bytes (any contiguous buffer)."""
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self.append(<const unsigned char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    def add_frame(self, frame):
        """Append ``serialize_frame(frame)``."""
        self.write(serialize_frame(frame))

    def add_headers_frames(self, stream_id, block, bint end_stream, max_frame_size=16384):
        """Append ``headers_frames(...)``."""
        _add_split(self, stream_id, block, end_stream, max_frame_size, True)

    def add_data_frames(self, stream_id, data, bint end_stream, max_frame_size=16384):
        """Append ``data_frames(...)``."""
        _add_split(self, stream_id, data, end_stream, max_frame_size, False)

    def add_settings(self, dict settings not None, bint ack=False):
        """Append ``settings_frame(settings, ack)``."""
        self.append_settings(settings, ack)

    def add_window_update(self, stream_id, increment):
        """Append ``window_update_frame(stream_id, increment)``."""
        self.append_window_update(_arg(stream_id, 0, 0x7FFFFFFF, "stream_id"),
                                  _arg(increment, 1, 0x7FFFFFFF, "increment"))

    def add_ping(self, opaque_data, bint ack=False):
        """Append ``ping_frame(opaque_data, ack)``."""
        cdef unsigned char padded[8]
        cdef Py_buffer view
        PyObject_GetBuffer(opaque_data, &view, PyBUF_SIMPLE)
        try:
            if view.len > 8:
                raise ValueError(f"PING opaque data has {view.len} bytes, at most 8 allowed")
            memset(padded, 0, 8)
            memcpy(padded, view.buf, view.len)
        finally:
            PyBuffer_Release(&view)
        self.append_ping(padded, ack)

    def add_rst_stream(self, stream_id, error_code):
        """Append ``rst_stream_frame(stream_id, error_code)``."""
        self.append_rst_stream(_arg(stream_id, 0, 0x7FFFFFFF, "stream_id"),
                               _arg(error_code, 0, 0xFFFFFFFF, "error_code"))

    def add_goaway(self, last_stream_id, error_code, additional_data=b""):
        """Append ``goaway_frame(last_stream_id, error_code, additional_data)``."""
        cdef uint32_t last = _arg(last_stream_id, 0, 0x7FFFFFFF, "last_stream_id")
        cdef uint32_t code = _arg(error_code, 0, 0xFFFFFFFF, "error_code")
        cdef Py_buffer view
        PyObject_GetBuffer(additional_data, &view, PyBUF_SIMPLE)
        try:
            self.append_goaway(last, code, <const unsigned char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)


cdef int _add_split(WriteBuffer buffer, stream_id, payload, bint end_stream, max_frame_size,
                    bint headers) except -1:
    cdef uint32_t sid = _arg(stream_id, 0, 0x7FFFFFFF, "stream_id")
    cdef Py_ssize_t limit = _frame_size_arg(max_frame_size)
    cdef Py_buffer view
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        if headers:
            buffer.append_headers_frames(sid, <const unsigned char*>view.buf, view.len,
                                         end_stream, limit)
        else:
            buffer.append_data_frames(sid, <const unsigned char*>view.buf, view.len,
                                      end_stream, limit)
    finally:
        PyBuffer_Release(&view)
    return 0
