# cython: language_level=3
"""C-level API of the compiled HPACK coder (``kyoukai_h2fast._hpack_c``, RFC 7541).

For the Cython connection core, which decodes and encodes field blocks without one Python object
per field. The Python API (``Decoder.decode`` / ``Encoder.encode``, drop-in for ``hpack``) is
built on these same entry points.

Decoding::

    cdef int on_field(void* ctx, HeaderField* field) except -1:
        ...                         # field.name[:field.name_len], field.value[:field.value_len]
        return 0

    cdef HeaderSink sink
    sink.on_header = on_field
    sink.ctx = <void*>my_state
    decoder.decode_block(data, length, &sink)   # raises the hpack.exceptions class hpack raises

``decode_block`` calls ``sink.on_header`` once per field, in order, after the field has been
counted against ``max_header_list_size`` (so the sink never sees the field that overflows it).
Lifetime: every pointer and borrowed object in a :c:type:`HeaderField` stays valid until the
next ``decode_block`` call on the same decoder (or ``release_fields()``), provided the caller
keeps ``data`` alive: the decoder parks the dynamic table entries it evicts and keeps its
Huffman output buffer until then. So a sink may keep the slices of a whole block, and look at
them after ``decode_block`` returned. A sink that raises stops the decoding and the exception
propagates (the decoder's state is then unusable, as after any decoding error).

``HeaderField.name_obj`` / ``value_obj`` are borrowed ``bytes`` when the decoder already has one
(static table entries, which are shared and never reallocated, dynamic table entries, the
strings of a literal with incremental indexing, and a literal name equal to a static table name);
NULL for other literal strings that were not indexed.
``HeaderField.name_index`` is the lowest static table index (RFC 7541 Appendix A) whose name
equals the field's name, or 0: a cheap dispatch key (2 ``:method``, 4 ``:path``, 6 ``:scheme``,
1 ``:authority``, 8 ``:status``, 58 ``user-agent``, ...).

Encoding::

    cdef ByteBuffer out              # caller-owned; zero it, free it with byte_buffer_free
    encoder.encode_block_start(&out)    # pending dynamic table size updates (RFC 7541 §6.3)
    encoder.encode_field(name, nlen, value, vlen, HPACK_HUFFMAN, &out)   # once per field
    ... out.data[:out.length] is the field block ...

``encode_field`` appends to ``out`` and applies the same policy as ``Encoder.encode``: indexed
when the table has the exact field, literal with incremental indexing otherwise (name indexed
when possible), never-indexed literal for ``HPACK_NEVER_INDEXED`` and automatically for
``authorization``, ``proxy-authorization`` and ``cookie`` values under 20 bytes, Huffman only
when it is shorter (with ``HPACK_HUFFMAN``).
"""
from cpython.object cimport PyObject
from libc.stdlib cimport free, realloc
from libc.stdint cimport uint64_t

cdef enum:
    # HeaderField.flags (decoding) and encode_field flags.
    HPACK_NEVER_INDEXED = 1    # never-indexed literal (RFC 7541 §6.2.3)
    HPACK_HUFFMAN = 2          # encode_field: Huffman-code strings when that makes them shorter


cdef struct HeaderField:
    const char* name
    Py_ssize_t name_len
    const char* value
    Py_ssize_t value_len
    PyObject* name_obj       # borrowed bytes, or NULL (see the module docstring)
    PyObject* value_obj      # borrowed bytes, or NULL
    int flags                # HPACK_NEVER_INDEXED
    int name_index           # lowest static table index with this name, or 0


ctypedef int (*HeaderCallback)(void* ctx, HeaderField* field) except -1


cdef struct HeaderSink:
    HeaderCallback on_header
    void* ctx


cdef struct ByteBuffer:
    unsigned char* data
    Py_ssize_t length
    Py_ssize_t capacity


cdef struct TableEntry:
    PyObject* name           # owned bytes
    PyObject* value          # owned bytes
    Py_ssize_t size          # len(name) + len(value) + 32 (RFC 7541 §4.1)
    int name_index           # as HeaderField.name_index
    # The entry's strings as ``str`` (UTF-8), owned, or NULL until ``Decoder.decode`` (str
    # output) first needs them: a dynamic entry is decoded to text once, not once per use.
    PyObject* name_str
    PyObject* value_str


cdef struct DynamicTable:
    # Ring buffer, newest entry at ``entries[head]``, entry i (0 = newest) at
    # ``entries[(head + i) & (capacity - 1)]``. ``capacity`` is 0 or a power of two.
    TableEntry* entries
    Py_ssize_t capacity
    Py_ssize_t head
    Py_ssize_t count
    Py_ssize_t used          # sum of the entry sizes
    long long max_size       # RFC 7541 §4.2 maximum table size
    # While ``defer`` is set (always, for a Decoder) evicted objects are parked here and released
    # by table_release_deferred (next decode_block), so the pointers handed out stay valid.
    bint defer
    PyObject** deferred
    Py_ssize_t deferred_len
    Py_ssize_t deferred_capacity


cdef class Decoder:
    cdef DynamicTable _table
    cdef ByteBuffer _scratch               # Huffman output of the current block
    cdef long long _max_list_size          # clamped copy of max_header_list_size
    cdef long long _max_allowed            # clamped copy of max_allowed_table_size
    cdef object _max_header_list_size_obj
    cdef object _max_allowed_table_size_obj
    cdef object _table_size_obj

    cdef int decode_block(self, const unsigned char* data, Py_ssize_t n,
                          HeaderSink* sink) except -1
    cdef int release_fields(self) except -1
    cdef int _lookup(self, uint64_t index, HeaderField* field) except -1
    cdef Py_ssize_t _read_string(self, const unsigned char* data, Py_ssize_t n, Py_ssize_t pos,
                                 const char** out, Py_ssize_t* out_len) except -1
    # decode_block's loop; with ``text`` not None the fields are appended to it as str
    # HeaderTuples (Decoder.decode, raw=False) instead of going to ``sink``.
    cdef int _decode(self, const unsigned char* data, Py_ssize_t n, HeaderSink* sink,
                     list text) except -1


cdef class Encoder:
    cdef DynamicTable _table
    cdef ByteBuffer _out                   # reused by encode()
    cdef bint _pending_resize
    cdef long long _pending_min
    cdef long long _pending_last
    cdef object _table_size_obj

    cdef int encode_block_start(self, ByteBuffer* out) except -1
    cdef int encode_field(self, const char* name, Py_ssize_t name_len, const char* value,
                          Py_ssize_t value_len, int flags, ByteBuffer* out) except -1
    cdef int _encode_field(self, const char* name, Py_ssize_t name_len, const char* value,
                           Py_ssize_t value_len, PyObject* name_obj, PyObject* value_obj,
                           int flags, ByteBuffer* out) except -1


cdef inline int byte_buffer_reserve(ByteBuffer* buf, Py_ssize_t extra) except -1:
    """Make room for ``extra`` more bytes after ``buf.length`` (may move ``buf.data``).

    Capacities are powers of two (at least 256): buffers of a few standard sizes are what the
    allocator reuses best when many connections come and go."""
    cdef Py_ssize_t need = buf.length + extra
    cdef Py_ssize_t capacity
    cdef unsigned char* data
    if need <= buf.capacity:
        return 0
    capacity = buf.capacity * 2 if buf.capacity >= 256 else 256
    while capacity < need:
        capacity *= 2
    data = <unsigned char*>realloc(buf.data, <size_t>capacity)
    if data == NULL:
        raise MemoryError()
    buf.data = data
    buf.capacity = capacity
    return 0


cdef inline void byte_buffer_free(ByteBuffer* buf) noexcept:
    free(buf.data)
    buf.data = NULL
    buf.length = 0
    buf.capacity = 0
