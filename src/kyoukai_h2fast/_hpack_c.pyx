# cython: language_level=3
"""Compiled HPACK (RFC 7541): ``Decoder`` and ``Encoder``, drop-in for ``hpack``'s as h2 uses them.

Owns: the decoding of field blocks (§6, with ``max_header_list_size`` enforced field by field),
the encoder's indexing policy (see :class:`Encoder`), and, in the included files, the wire
primitives (``_hpack_wire.pxi``: integers §5.1, string literals and Huffman §5.2 with the
generated ``_huffman_table.pxi``) and the tables (``_hpack_tables.pxi``: the static table of
Appendix A as shared ``bytes`` objects, the dynamic table of §2.3.2/§4 as a ring buffer).
The C-level API is documented in ``_hpack_c.pxd``; the pure twin is
:mod:`kyoukai_h2fast.codec._hpack_py`.

Errors are the ``hpack.exceptions`` classes ``hpack`` raises for the same input; results are
lists of ``hpack.struct.HeaderTuple`` / ``NeverIndexedHeaderTuple``, like ``hpack``'s. Text
output (``decode(block)``, the default) is built in the decoding loop from the C buffers, with
the ``str`` of static and dynamic table entries made once per entry; a field that is not UTF-8
fails the block after the whole block is decoded, as in hpack.
Leaves to others: frame (de)fragmentation, header validation, what to do with errors (h2).
"""
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_DECREF, Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8String, PyUnicode_DecodeUTF8
from libc.limits cimport LLONG_MAX, LLONG_MIN
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memcpy

from hpack.exceptions import (
    HPACKDecodingError,
    InvalidTableIndex,
    InvalidTableSizeError,
    OversizedHeaderListError,
)
from hpack.struct import HeaderTuple, NeverIndexedHeaderTuple

include "_huffman_table.pxi"

__all__ = ["Decoder", "Encoder"]

cdef extern from *:
    """
    /* A HeaderTuple / NeverIndexedHeaderTuple of two items without calling the class: its
       tp_alloc (measured: ~2x faster than tuple.__new__(cls, (name, value)), ~6x faster than
       HeaderTuple(name, value)). Python >= 3.14 keeps a hash cache in tuples, which tp_alloc
       leaves zeroed: there, go through tuple.__new__ (tp_new), which sets it up. */
    static PyObject* kh2_header_pair(PyTypeObject* tp, PyObject* name, PyObject* value) {
    #if PY_VERSION_HEX >= 0x030E0000 || defined(KH2_HEADER_PAIR_VIA_TP_NEW)
        PyObject* items = PyTuple_Pack(2, name, value);
        PyObject* args;
        PyObject* pair;
        if (items == NULL) return NULL;
        args = PyTuple_Pack(1, items);
        Py_DECREF(items);
        if (args == NULL) return NULL;
        pair = PyTuple_Type.tp_new(tp, args, NULL);
        Py_DECREF(args);
        return pair;
    #else
        PyObject* pair = tp->tp_alloc(tp, 2);
        if (pair == NULL) return NULL;
        Py_INCREF(name);
        PyTuple_SET_ITEM(pair, 0, name);
        Py_INCREF(value);
        PyTuple_SET_ITEM(pair, 1, value);
        return pair;
    #endif
    }

    /* True when s[:n] is ASCII (so it is UTF-8 and its str has 1-byte characters). */
    static int kh2_is_ascii(const char* s, Py_ssize_t n) {
        const unsigned char* p = (const unsigned char*)s;
        uint64_t acc = 0, word;
        Py_ssize_t i = 0;
        for (; i + 8 <= n; i += 8) {
            memcpy(&word, p + i, 8);
            acc |= word;
        }
        for (; i < n; i++) acc |= p[i];
        return (acc & 0x8080808080808080ULL) == 0;
    }

    /* The str of an ASCII s[:n], built directly (as CPython's own _PyUnicode_FromASCII). */
    static PyObject* kh2_ascii_str(const char* s, Py_ssize_t n) {
        PyObject* text = PyUnicode_New(n, 127);
        if (text != NULL && n) memcpy(PyUnicode_1BYTE_DATA(text), s, (size_t)n);
        return text;
    }
    """
    object kh2_header_pair(PyTypeObject* tp, object name, object value)
    bint kh2_is_ascii(const char* s, Py_ssize_t n) noexcept
    object kh2_ascii_str(const char* s, Py_ssize_t n)
    bint PyBytes_CheckExact(object)
    PyTypeObject* Py_TYPE(object)

cdef PyTypeObject* HEADER_TUPLE = <PyTypeObject*>HeaderTuple
cdef PyTypeObject* NEVER_INDEXED_TUPLE = <PyTypeObject*>NeverIndexedHeaderTuple
cdef PyTypeObject* PLAIN_TUPLE = <PyTypeObject*>tuple

cdef enum:
    SCRATCH_KEEP = 65536           # buffers larger than this are freed between blocks
    SCRATCH_IDLE = 4096            # decode() keeps at most this much scratch once it returned

include "_hpack_tables.pxi"
include "_hpack_wire.pxi"


cdef long long _clamp(object value) except? -1:
    value = int(value)
    if value > LLONG_MAX:
        return LLONG_MAX
    if value < LLONG_MIN:
        return LLONG_MIN
    return value


# ---- decoder -------------------------------------------------------------------------------
cdef object _text(const char* s, Py_ssize_t n):
    """``s[:n].decode("utf-8")`` as hpack does it, or None when it is not UTF-8."""
    if kh2_is_ascii(s, n):
        return kh2_ascii_str(s, n)
    try:
        return PyUnicode_DecodeUTF8(s, n, NULL)
    except UnicodeDecodeError:
        return None


cdef object _table_text(DynamicTable* t, uint64_t index, bint value):
    """The str of table entry ``index`` (valid), decoded at most once per entry; or None."""
    cdef TableEntry* e
    cdef PyObject** slot
    cdef PyObject* raw
    if index <= STATIC_COUNT:
        return <object>(STATIC_VALUE_STR[index] if value else STATIC_NAME_STR[index])
    e = _entry(t, <Py_ssize_t>(index - STATIC_COUNT - 1))
    slot = &e.value_str if value else &e.name_str
    if slot[0] == NULL:
        raw = e.value if value else e.name
        result = _text(PyBytes_AS_STRING(<object>raw), PyBytes_GET_SIZE(<object>raw))
        if result is None:
            return None
        Py_INCREF(result)
        slot[0] = <PyObject*>result
    return <object>slot[0]


cdef int _raise_not_utf8(const char* s, Py_ssize_t n) except -1:
    """hpack's error for a field that is not UTF-8 (chained to the UnicodeDecodeError)."""
    try:
        PyUnicode_DecodeUTF8(s, n, NULL)
    except UnicodeDecodeError as err:
        raise HPACKDecodingError("Unable to decode headers as UTF-8") from err
    raise SystemError("HPACK: text expected not to be UTF-8")


cdef int _append_header_tuple(void* ctx, HeaderField* f) except -1:
    """HeaderSink of Decoder.decode: one HeaderTuple / NeverIndexedHeaderTuple per field."""
    name = (<object>f.name_obj if f.name_obj != NULL
            else PyBytes_FromStringAndSize(f.name, f.name_len))
    value = (<object>f.value_obj if f.value_obj != NULL
             else PyBytes_FromStringAndSize(f.value, f.value_len))
    (<list>ctx).append(kh2_header_pair(
        NEVER_INDEXED_TUPLE if f.flags & HPACK_NEVER_INDEXED else HEADER_TUPLE, name, value))
    return 0


cdef class Decoder:
    """HPACK decoder, drop-in for ``hpack.Decoder`` (same attributes, results and errors).

    ``max_header_list_size`` (default 64 KiB) is checked after every decoded field, so a block
    that expands past it (an "HPACK bomb") fails as soon as it crosses the limit.
    """

    def __cinit__(self):
        self._table.max_size = 4096
        self._table.defer = True
        self._table_size_obj = 4096
        self._max_allowed = 4096
        self._max_allowed_table_size_obj = 4096
        self._max_list_size = 2 ** 16
        self._max_header_list_size_obj = 2 ** 16

    def __init__(self, max_header_list_size=2 ** 16):
        self.max_header_list_size = max_header_list_size

    def __dealloc__(self):
        _table_free(&self._table)
        byte_buffer_free(&self._scratch)

    @property
    def max_header_list_size(self):
        return self._max_header_list_size_obj

    @max_header_list_size.setter
    def max_header_list_size(self, value):
        self._max_list_size = _clamp(value)
        self._max_header_list_size_obj = value

    @property
    def max_allowed_table_size(self):
        """Largest dynamic table size the peer may choose (our acknowledged SETTINGS value)."""
        return self._max_allowed_table_size_obj

    @max_allowed_table_size.setter
    def max_allowed_table_size(self, value):
        self._max_allowed = _clamp(value)
        self._max_allowed_table_size_obj = value

    @property
    def header_table_size(self):
        """Current maximum size of the dynamic table (set by the peer's size updates)."""
        return self._table_size_obj

    @header_table_size.setter
    def header_table_size(self, value):
        value = int(value)
        _table_set_max(&self._table, _clamp(value))
        self._table_size_obj = value

    @property
    def table_entries(self):
        """The dynamic table as ``(name, value)`` bytes pairs, newest (index 62) first."""
        return _table_entries(&self._table)

    @property
    def table_used_size(self):
        """Sum of the dynamic table's entry sizes (RFC 7541 §4.1)."""
        return self._table.used

    def decode(self, data, raw=False):
        """Decode one complete field block into a list of ``HeaderTuple`` (as ``hpack``)."""
        cdef list headers = []
        cdef list text = None if raw else headers
        cdef HeaderSink sink
        cdef Py_buffer view
        sink.on_header = _append_header_tuple
        sink.ctx = <void*>headers
        try:
            if PyBytes_CheckExact(data):
                self._decode(<const unsigned char*>PyBytes_AS_STRING(data),
                             PyBytes_GET_SIZE(data), &sink, text)
            else:
                PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
                try:
                    self._decode(<const unsigned char*>view.buf, view.len, &sink, text)
                finally:
                    PyBuffer_Release(&view)
        finally:
            # The results own their objects: evicted entries and Huffman scratch can go now
            # (a connection that sent one large block does not keep its scratch).
            self.release_fields()
            if self._scratch.capacity > SCRATCH_IDLE:
                byte_buffer_free(&self._scratch)
        return headers

    cdef int release_fields(self) except -1:
        _table_release_deferred(&self._table)
        self._scratch.length = 0
        if self._scratch.capacity > SCRATCH_KEEP:
            byte_buffer_free(&self._scratch)
        return 0

    cdef int _lookup(self, uint64_t index, HeaderField* f) except -1:
        """Fill name, value and name_index of ``f`` from table entry ``index`` (§2.3.3)."""
        cdef TableEntry* e
        if 1 <= index <= STATIC_COUNT:
            f.name_obj = STATIC_NAME[index]
            f.value_obj = STATIC_VALUE[index]
            f.name_index = STATIC_FIRST[index]
        elif STATIC_COUNT < index <= <uint64_t>(STATIC_COUNT + self._table.count):
            e = _entry(&self._table, <Py_ssize_t>(index - STATIC_COUNT - 1))
            f.name_obj = e.name
            f.value_obj = e.value
            f.name_index = e.name_index
        else:
            raise InvalidTableIndex("Invalid table index %d" % index)
        f.name = PyBytes_AS_STRING(<object>f.name_obj)
        f.name_len = PyBytes_GET_SIZE(<object>f.name_obj)
        f.value = PyBytes_AS_STRING(<object>f.value_obj)
        f.value_len = PyBytes_GET_SIZE(<object>f.value_obj)
        return 0

    cdef Py_ssize_t _read_string(self, const unsigned char* data, Py_ssize_t n, Py_ssize_t pos,
                                 const char** out, Py_ssize_t* out_len) except -1:
        """String literal at ``data[pos]`` (§5.2); return the position after it."""
        cdef uint64_t length = 0
        cdef bint huffman
        cdef ByteBuffer* scratch = &self._scratch
        if pos >= n:
            raise HPACKDecodingError("Unable to decode HPACK integer representation")
        huffman = data[pos] & 0x80
        pos = _read_int(data, n, pos, 7, &length)
        if length > <uint64_t>(n - pos):
            raise HPACKDecodingError("Truncated header block")
        if not huffman or length == 0:
            out[0] = <const char*>data + pos
            out_len[0] = <Py_ssize_t>length
            return pos + <Py_ssize_t>length
        if scratch.length == 0:
            # Room for every Huffman string left in the block (at most 2 octets out per octet
            # in), reserved once so that the scratch buffer never moves during a block.
            byte_buffer_reserve(scratch, 2 * (n - pos) + 8)
        if scratch.capacity - scratch.length < 2 * <Py_ssize_t>length + 1:
            raise SystemError("HPACK scratch buffer reservation")  # unreachable, see above
        out[0] = <const char*>scratch.data + scratch.length
        out_len[0] = _huffman_decode(data + pos, <Py_ssize_t>length,
                                     scratch.data + scratch.length)
        scratch.length += out_len[0]
        return pos + <Py_ssize_t>length

    cdef int decode_block(self, const unsigned char* data, Py_ssize_t n,
                          HeaderSink* sink) except -1:
        return self._decode(data, n, sink, None)

    cdef int _decode(self, const unsigned char* data, Py_ssize_t n, HeaderSink* sink,
                     list text) except -1:
        cdef Py_ssize_t pos = 0
        cdef long long inflated = 0
        cdef bint seen_field = False
        cdef bint text_mode = text is not None
        cdef const char* bad_text = NULL        # first string that is not UTF-8 (text mode)
        cdef Py_ssize_t bad_len = 0
        cdef unsigned char first
        cdef uint64_t index = 0
        cdef int prefix_bits
        cdef HeaderField f
        cdef DynamicTable* t = &self._table
        cdef TableEntry* e
        cdef PyObject* name_obj
        cdef PyObject* value_obj
        name_text = value_text = None
        self.release_fields()
        while pos < n:
            first = data[pos]
            if first & 0x80:                                # indexed field (§6.1)
                pos = _read_int(data, n, pos, 7, &index)
                self._lookup(index, &f)
                f.flags = 0
                if text_mode and bad_text == NULL:
                    name_text = _table_text(t, index, False)
                    value_text = _table_text(t, index, True)
            elif first & 0x40 or not (first & 0x20):        # literal field (§6.2)
                if first & 0x40:
                    prefix_bits = 6
                    f.flags = 0
                else:
                    prefix_bits = 4
                    f.flags = HPACK_NEVER_INDEXED if first & 0x10 else 0
                if first & ((1 << prefix_bits) - 1):        # indexed name
                    pos = _read_int(data, n, pos, prefix_bits, &index)
                    self._lookup(index, &f)
                    if text_mode and bad_text == NULL:      # before _table_add moves entries
                        name_text = _table_text(t, index, False)
                else:                                       # literal name
                    pos = self._read_string(data, n, pos + 1, &f.name, &f.name_len)
                    f.name_index = _static_name_index(f.name, f.name_len)
                    # A static name is shared (bytes and str) instead of copied.
                    f.name_obj = STATIC_NAME[f.name_index] if f.name_index else NULL
                    if text_mode and bad_text == NULL:
                        name_text = (<object>STATIC_NAME_STR[f.name_index] if f.name_index
                                     else _text(f.name, f.name_len))
                pos = self._read_string(data, n, pos, &f.value, &f.value_len)
                f.value_obj = NULL
                if text_mode and bad_text == NULL:
                    value_text = _text(f.value, f.value_len)
                if first & 0x40:                            # incremental indexing (§6.2.1)
                    name = (<object>f.name_obj if f.name_obj != NULL
                            else PyBytes_FromStringAndSize(f.name, f.name_len))
                    value = PyBytes_FromStringAndSize(f.value, f.value_len)
                    name_obj = <PyObject*>name
                    value_obj = <PyObject*>value
                    # _table_add steals these two references; while the decoder defers
                    # releases the objects stay alive even if this insertion evicts them.
                    Py_INCREF(name)
                    Py_INCREF(value)
                    _table_add(t, name_obj, value_obj, f.name_index)
                    f.name_obj = name_obj
                    f.value_obj = value_obj
                    f.name = PyBytes_AS_STRING(<object>name_obj)
                    f.value = PyBytes_AS_STRING(<object>value_obj)
                    if text_mode and bad_text == NULL and t.count:   # this field's text
                        e = _entry(t, 0)
                        if e.value == value_obj:            # inserted (not too large)
                            if name_text is not None:
                                Py_INCREF(name_text)
                                e.name_str = <PyObject*>name_text
                            if value_text is not None:
                                Py_INCREF(value_text)
                                e.value_str = <PyObject*>value_text
            else:                                           # dynamic table size update (§6.3)
                if seen_field:
                    raise HPACKDecodingError("Table size update not at the start of the block")
                pos = _read_int(data, n, pos, 5, &index)
                if <long long>index > self._max_allowed:
                    raise InvalidTableSizeError("Encoder exceeded max allowable table size")
                _table_set_max(t, <long long>index)
                self._table_size_obj = <long long>index
                continue
            seen_field = True
            inflated += f.name_len + f.value_len + 32
            if inflated > self._max_list_size:
                raise OversizedHeaderListError(
                    f"A header list larger than {self._max_header_list_size_obj} has been received")
            if not text_mode:
                sink.on_header(sink.ctx, &f)
            elif bad_text == NULL:
                # As hpack, a field that is not UTF-8 fails the block only once the whole block
                # is decoded (the table keeps every update; table and size errors come first).
                if name_text is None:
                    bad_text, bad_len = f.name, f.name_len
                elif value_text is None:
                    bad_text, bad_len = f.value, f.value_len
                else:
                    text.append(kh2_header_pair(
                        NEVER_INDEXED_TUPLE if f.flags & HPACK_NEVER_INDEXED else HEADER_TUPLE,
                        name_text, value_text))
        if self._table.max_size > self._max_allowed:
            raise InvalidTableSizeError("Encoder did not shrink table size to within the max")
        if bad_text != NULL:
            _raise_not_utf8(bad_text, bad_len)
        return 0


# ---- encoder -------------------------------------------------------------------------------
cdef inline object _to_bytes(object value):
    """As hpack: bytes as they are, str as UTF-8, anything else as UTF-8 of its str()."""
    if type(value) is bytes:
        return value
    if type(value) is not str:
        value = str(value)
    return PyUnicode_AsUTF8String(value)


@cython.boundscheck(True)
cdef tuple _unpack_field(object header, int flags):
    """(name, value, flags) of any field hpack accepts: HeaderTuple, 2-/3-sequence."""
    if isinstance(header, HeaderTuple):
        if not header.indexable:
            flags |= HPACK_NEVER_INDEXED
    elif len(header) > 2 and header[2]:
        flags |= HPACK_NEVER_INDEXED
    return header[0], header[1], flags


def _pseudo_headers_first(dict headers):
    """A dict's items with the pseudo-header fields first (as hpack orders dicts)."""
    return sorted(headers.items(), key=lambda item: not _to_bytes(item[0]).startswith(b":"))


cdef class Encoder:
    """HPACK encoder, drop-in for ``hpack.Encoder``; its output decodes with ``hpack.Decoder``.

    Policy: a field in the static or dynamic table is sent indexed; otherwise as a literal with
    incremental indexing, with an indexed name when the table has the name (the same choice of
    index as hpack). Sensitive fields are sent as never-indexed literals and never enter the
    table: 3-tuples ``(name, value, True)``, ``NeverIndexedHeaderTuple``, and automatically
    ``authorization``, ``proxy-authorization`` and ``cookie`` values shorter than 20 octets
    (h2's rule, RFC 7541 §7.1.3). Strings are Huffman-coded only when that is shorter. A change
    of ``header_table_size`` is announced at the start of the next block (§4.2, §6.3): the
    smallest size set since the last block when it is below the final one, then the final one.
    """

    def __cinit__(self):
        self._table.max_size = 4096
        self._table_size_obj = 4096

    def __dealloc__(self):
        _table_free(&self._table)
        byte_buffer_free(&self._out)

    @property
    def header_table_size(self):
        """Maximum size of the dynamic table (set from the peer's SETTINGS_HEADER_TABLE_SIZE)."""
        return self._table_size_obj

    @header_table_size.setter
    def header_table_size(self, value):
        cdef long long size
        value = int(value)
        if value < 0:
            raise ValueError(f"header table size must not be negative, got {value}")
        size = _clamp(value)
        if self._pending_resize:
            self._pending_min = min(self._pending_min, size)
            self._pending_last = size
        elif size != self._table.max_size:
            self._pending_resize = True
            self._pending_min = self._pending_last = size
        _table_set_max(&self._table, size)
        self._table_size_obj = value

    @property
    def table_entries(self):
        """The dynamic table as ``(name, value)`` bytes pairs, newest (index 62) first."""
        return _table_entries(&self._table)

    @property
    def table_used_size(self):
        """Sum of the dynamic table's entry sizes (RFC 7541 §4.1)."""
        return self._table.used

    def encode(self, headers, huffman=True):
        """Encode a field block; ``headers`` as for ``hpack.Encoder.encode``."""
        cdef ByteBuffer* out = &self._out
        cdef int flags = HPACK_HUFFMAN if huffman else 0
        cdef int field_flags
        cdef PyTypeObject* tp
        out.length = 0
        self.encode_block_start(out)
        if isinstance(headers, dict):
            headers = _pseudo_headers_first(headers)
        for header in headers:
            tp = Py_TYPE(header)
            if (tp == HEADER_TUPLE or tp == PLAIN_TUPLE) and PyTuple_GET_SIZE(header) == 2:
                name = (<tuple>header)[0]
                value = (<tuple>header)[1]
                field_flags = flags
            elif tp == NEVER_INDEXED_TUPLE and PyTuple_GET_SIZE(header) == 2:
                name = (<tuple>header)[0]
                value = (<tuple>header)[1]
                field_flags = flags | HPACK_NEVER_INDEXED
            else:
                name, value, field_flags = _unpack_field(header, flags)
            name = _to_bytes(name)
            value = _to_bytes(value)
            self._encode_field(PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name),
                               PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value),
                               <PyObject*>name, <PyObject*>value, field_flags, out)
        encoded = PyBytes_FromStringAndSize(<char*>out.data, out.length)
        if out.capacity > SCRATCH_KEEP:
            byte_buffer_free(out)
        return encoded

    cdef int encode_block_start(self, ByteBuffer* out) except -1:
        cdef unsigned char* p
        if not self._pending_resize:
            return 0
        byte_buffer_reserve(out, 24)
        p = out.data + out.length
        if self._pending_min < self._pending_last:
            p = _put_int(p, <uint64_t>self._pending_min, 5, 0x20)
        p = _put_int(p, <uint64_t>self._pending_last, 5, 0x20)
        out.length = p - out.data
        self._pending_resize = False
        return 0

    cdef int encode_field(self, const char* name, Py_ssize_t name_len, const char* value,
                          Py_ssize_t value_len, int flags, ByteBuffer* out) except -1:
        return self._encode_field(name, name_len, value, value_len, NULL, NULL, flags, out)

    cdef int _encode_field(self, const char* name, Py_ssize_t name_len, const char* value,
                           Py_ssize_t value_len, PyObject* name_obj, PyObject* value_obj,
                           int flags, ByteBuffer* out) except -1:
        """Append one field; ``name_obj``/``value_obj`` (or NULL) are reused by the table."""
        cdef DynamicTable* t = &self._table
        cdef int static_index = _static_name_index(name, name_len)
        cdef uint64_t index = 0
        cdef bint exact = False
        cdef bint sensitive = flags & HPACK_NEVER_INDEXED
        cdef bint huffman = flags & HPACK_HUFFMAN
        cdef Py_ssize_t i
        cdef int k
        cdef TableEntry* e
        cdef unsigned char* p
        if static_index and not sensitive:
            sensitive = (static_index == INDEX_AUTHORIZATION
                         or static_index == INDEX_PROXY_AUTHORIZATION
                         or (static_index == INDEX_COOKIE and value_len < 20))
        # Search as hpack does: a static exact match, else a dynamic exact match (newest
        # first), else the static name, else the newest dynamic entry with the name.
        if static_index:
            index = static_index
            for k in range(static_index, static_index + STATIC_SAME[static_index]):
                if _bytes_equal(STATIC_VALUE[k], value, value_len):
                    index = k
                    exact = True
                    break
        if not exact:
            for i in range(t.count):
                e = _entry(t, i)
                if _bytes_equal(e.name, name, name_len):
                    if _bytes_equal(e.value, value, value_len):
                        index = STATIC_COUNT + 1 + i
                        exact = True
                        break
                    if index == 0:
                        index = STATIC_COUNT + 1 + i
        byte_buffer_reserve(out, name_len + value_len + 40)
        p = out.data + out.length
        if exact and not sensitive:
            p = _put_int(p, index, 7, 0x80)                     # indexed field (§6.1)
            out.length = p - out.data
            return 0
        if sensitive:                                           # never indexed (§6.2.3)
            if index:
                p = _put_int(p, index, 4, 0x10)
            else:
                p[0] = 0x10
                p = _put_string(p + 1, name, name_len, huffman)
        elif index:                                             # incremental indexing (§6.2.1)
            p = _put_int(p, index, 6, 0x40)
        else:
            p[0] = 0x40
            p = _put_string(p + 1, name, name_len, huffman)
        p = _put_string(p, value, value_len, huffman)
        out.length = p - out.data
        if not sensitive:
            if name_obj == NULL:
                name_ref = PyBytes_FromStringAndSize(name, name_len)
            else:
                name_ref = <object>name_obj
            if value_obj == NULL:
                value_ref = PyBytes_FromStringAndSize(value, value_len)
            else:
                value_ref = <object>value_obj
            Py_INCREF(name_ref)
            Py_INCREF(value_ref)
            _table_add(t, <PyObject*>name_ref, <PyObject*>value_ref, static_index)
        return 0


# ---- C-API exercisers (used by the tests; not part of the public API) --------------------
cdef struct _FieldArray:
    HeaderField* fields
    Py_ssize_t count
    Py_ssize_t capacity


cdef int _collect_field(void* ctx, HeaderField* f) except -1:
    cdef _FieldArray* array = <_FieldArray*>ctx
    cdef HeaderField* grown
    if array.count == array.capacity:
        array.capacity = array.capacity * 2 if array.capacity else 16
        grown = <HeaderField*>malloc(array.capacity * sizeof(HeaderField))
        if grown == NULL:
            raise MemoryError()
        if array.count:
            memcpy(grown, array.fields, array.count * sizeof(HeaderField))
        free(array.fields)
        array.fields = grown
    array.fields[array.count] = f[0]
    array.count += 1
    return 0


def _capi_decode(Decoder decoder, bytes data):
    """Decode through ``decode_block`` into a flat C array of slices, read *after* it returned.

    Returns ``[(name, value, flags, name_index), ...]``: proves the lifetime contract of the
    .pxd (slices stay valid until the next block) and that the C path agrees with ``decode``.
    """
    cdef _FieldArray array
    cdef HeaderSink sink
    array.fields = NULL
    array.count = array.capacity = 0
    sink.on_header = _collect_field
    sink.ctx = &array
    try:
        decoder.decode_block(<const unsigned char*>PyBytes_AS_STRING(data),
                             PyBytes_GET_SIZE(data), &sink)
        # Churn the allocator so that memory released too early would be overwritten.
        churn = [b"\xaa" * size for size in range(1, 1024)]
        del churn
        return [(PyBytes_FromStringAndSize(array.fields[i].name, array.fields[i].name_len),
                 PyBytes_FromStringAndSize(array.fields[i].value, array.fields[i].value_len),
                 array.fields[i].flags, array.fields[i].name_index)
                for i in range(array.count)]
    finally:
        free(array.fields)


def _capi_encode(Encoder encoder, list fields, bint huffman=True):
    """Encode ``[(name, value, never_indexed), ...]`` (bytes) through the C-level entry points
    into a caller-owned ByteBuffer."""
    cdef ByteBuffer out
    out.data = NULL
    out.length = out.capacity = 0
    try:
        encoder.encode_block_start(&out)
        for name, value, never_indexed in fields:
            encoder.encode_field(PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name),
                                 PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value),
                                 (HPACK_HUFFMAN if huffman else 0)
                                 | (HPACK_NEVER_INDEXED if never_indexed else 0), &out)
        return PyBytes_FromStringAndSize(<char*>out.data, out.length)
    finally:
        byte_buffer_free(&out)
