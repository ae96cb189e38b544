# HPACK tables (RFC 7541 §2.3), included by _hpack_c.pyx (same module namespace): the static
# table (Appendix A) as shared ``bytes`` objects with a by-length name index, and the dynamic
# table (§2.3.2, §4): a ring buffer of ``bytes`` pairs with size accounting, eviction, and the
# deferred release that keeps decoded slices valid (see the lifetime rule in _hpack_c.pxd).

# ---- static table (RFC 7541 Appendix A) ----------------------------------------------------
_STATIC_TABLE = (
    (b":authority", b""), (b":method", b"GET"), (b":method", b"POST"), (b":path", b"/"),
    (b":path", b"/index.html"), (b":scheme", b"http"), (b":scheme", b"https"),
    (b":status", b"200"), (b":status", b"204"), (b":status", b"206"), (b":status", b"304"),
    (b":status", b"400"), (b":status", b"404"), (b":status", b"500"), (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"), (b"accept-language", b""), (b"accept-ranges", b""),
    (b"accept", b""), (b"access-control-allow-origin", b""), (b"age", b""), (b"allow", b""),
    (b"authorization", b""), (b"cache-control", b""), (b"content-disposition", b""),
    (b"content-encoding", b""), (b"content-language", b""), (b"content-length", b""),
    (b"content-location", b""), (b"content-range", b""), (b"content-type", b""),
    (b"cookie", b""), (b"date", b""), (b"etag", b""), (b"expect", b""), (b"expires", b""),
    (b"from", b""), (b"host", b""), (b"if-match", b""), (b"if-modified-since", b""),
    (b"if-none-match", b""), (b"if-range", b""), (b"if-unmodified-since", b""),
    (b"last-modified", b""), (b"link", b""), (b"location", b""), (b"max-forwards", b""),
    (b"proxy-authenticate", b""), (b"proxy-authorization", b""), (b"range", b""),
    (b"referer", b""), (b"refresh", b""), (b"retry-after", b""), (b"server", b""),
    (b"set-cookie", b""), (b"strict-transport-security", b""), (b"transfer-encoding", b""),
    (b"user-agent", b""), (b"vary", b""), (b"via", b""), (b"www-authenticate", b""),
)

cdef enum:
    STATIC_COUNT = 61
    MAX_STATIC_NAME = 27           # len(b"access-control-allow-origin")
    MAX_NAMES_PER_LENGTH = 8
    INDEX_AUTHORIZATION = 23
    INDEX_COOKIE = 32
    INDEX_PROXY_AUTHORIZATION = 49

# Index 1..61; entries of one name are consecutive, from STATIC_FIRST[i] for STATIC_SAME[i].
cdef PyObject* STATIC_NAME[STATIC_COUNT + 1]
cdef PyObject* STATIC_VALUE[STATIC_COUNT + 1]
# The same strings as ``str`` (for Decoder.decode's text output), shared like the bytes.
cdef PyObject* STATIC_NAME_STR[STATIC_COUNT + 1]
cdef PyObject* STATIC_VALUE_STR[STATIC_COUNT + 1]
cdef int STATIC_FIRST[STATIC_COUNT + 1]
cdef int STATIC_SAME[STATIC_COUNT + 1]
# Distinct static names by length: STATIC_BY_LEN[len][k] is the first index of a name.
cdef int STATIC_BY_LEN[MAX_STATIC_NAME + 1][MAX_NAMES_PER_LENGTH]
cdef int STATIC_BY_LEN_COUNT[MAX_STATIC_NAME + 1]


cdef int _init_static_table() except -1:
    cdef int i, first, length
    names = {}
    for i in range(1, STATIC_COUNT + 1):
        name, value = _STATIC_TABLE[i - 1]
        name = names.setdefault(name, name)          # one object per distinct name
        STATIC_NAME[i] = <PyObject*>name
        STATIC_VALUE[i] = <PyObject*>value
        name_str, value_str = _STATIC_TABLE_STR[i - 1]
        name_str = names.setdefault(name_str, name_str)
        STATIC_NAME_STR[i] = <PyObject*>name_str
        STATIC_VALUE_STR[i] = <PyObject*>value_str
        first = STATIC_FIRST[i - 1] if i > 1 and _STATIC_TABLE[i - 2][0] == name else i
        STATIC_FIRST[i] = first
        STATIC_SAME[first] = i - first + 1
        if first == i:
            length = len(name)
            if length > MAX_STATIC_NAME or STATIC_BY_LEN_COUNT[length] >= MAX_NAMES_PER_LENGTH:
                raise AssertionError("static table layout")
            STATIC_BY_LEN[length][STATIC_BY_LEN_COUNT[length]] = i
            STATIC_BY_LEN_COUNT[length] += 1
    for i in range(1, STATIC_COUNT + 1):
        STATIC_SAME[i] = STATIC_SAME[STATIC_FIRST[i]]
    return 0

_STATIC_TABLE_STR = tuple((name.decode(), value.decode()) for name, value in _STATIC_TABLE)
_init_static_table()            # _STATIC_TABLE(_STR) (module globals) keep the objects alive


cdef inline bint _bytes_equal(PyObject* obj, const char* data, Py_ssize_t n) noexcept:
    return (PyBytes_GET_SIZE(<object>obj) == n
            and memcmp(PyBytes_AS_STRING(<object>obj), data, n) == 0)


cdef int _static_name_index(const char* name, Py_ssize_t n) noexcept:
    """Lowest static table index whose name is ``name``, or 0."""
    cdef int k, index
    if n > MAX_STATIC_NAME:
        return 0
    for k in range(STATIC_BY_LEN_COUNT[n]):
        index = STATIC_BY_LEN[n][k]
        if memcmp(PyBytes_AS_STRING(<object>STATIC_NAME[index]), name, n) == 0:
            return index
    return 0


# ---- dynamic table (RFC 7541 §2.3.2, §4) --------------------------------------------------
cdef inline TableEntry* _entry(DynamicTable* t, Py_ssize_t i) noexcept:
    return &t.entries[(t.head + i) & (t.capacity - 1)]


cdef int _reserve_deferred(DynamicTable* t, Py_ssize_t extra) except -1:
    cdef Py_ssize_t need = t.deferred_len + extra, capacity
    cdef PyObject** grown
    if not t.defer or need <= t.deferred_capacity:
        return 0
    capacity = max(2 * t.deferred_capacity, 64)
    while capacity < need:                 # powers of two: standard sizes for the allocator
        capacity *= 2
    grown = <PyObject**>malloc(capacity * sizeof(PyObject*))
    if grown == NULL:
        raise MemoryError()
    if t.deferred_len:
        memcpy(grown, t.deferred, t.deferred_len * sizeof(PyObject*))
    free(t.deferred)
    t.deferred = grown
    t.deferred_capacity = capacity
    return 0


cdef inline void _discard(DynamicTable* t, PyObject* obj) noexcept:
    """Drop the table's reference (parked while deferring; room reserved beforehand)."""
    if t.defer:
        t.deferred[t.deferred_len] = obj
        t.deferred_len += 1
    else:
        Py_DECREF(<object>obj)


cdef void _table_release_deferred(DynamicTable* t) noexcept:
    cdef Py_ssize_t i, n = t.deferred_len
    t.deferred_len = 0
    for i in range(n):
        Py_DECREF(<object>t.deferred[i])


cdef void _evict_oldest(DynamicTable* t) noexcept:
    cdef TableEntry* e = _entry(t, t.count - 1)
    t.used -= e.size
    t.count -= 1
    _discard(t, e.name)
    _discard(t, e.value)
    # The str forms are never handed out as borrowed pointers: released at once.
    Py_XDECREF(e.name_str)
    Py_XDECREF(e.value_str)


cdef int _table_shrink(DynamicTable* t) except -1:
    if t.used > t.max_size:
        _reserve_deferred(t, 2 * t.count)
        while t.count and t.used > t.max_size:
            _evict_oldest(t)
    return 0


cdef int _table_set_max(DynamicTable* t, long long max_size) except -1:
    t.max_size = max_size
    return _table_shrink(t)         # a size <= 0 empties the table, as in hpack


cdef int _table_add(DynamicTable* t, PyObject* name, PyObject* value,
                    int name_index) except -1:
    """Insert (name, value) as entry 0, stealing both references; evict as needed (§4.4)."""
    cdef Py_ssize_t size = PyBytes_GET_SIZE(<object>name) + PyBytes_GET_SIZE(<object>value) + 32
    cdef Py_ssize_t capacity, i
    cdef TableEntry* grown
    cdef TableEntry* e
    try:
        _reserve_deferred(t, 2 * t.count + 2)
        if size > t.max_size:       # larger than the table: it empties the table (§4.4)
            while t.count:
                _evict_oldest(t)
            _discard(t, name)
            _discard(t, value)
            return 0
        if t.count == t.capacity:
            capacity = t.capacity * 2 if t.capacity else 16
            grown = <TableEntry*>malloc(capacity * sizeof(TableEntry))
            if grown == NULL:
                raise MemoryError()
            for i in range(t.count):
                grown[i] = _entry(t, i)[0]
            free(t.entries)
            t.entries = grown
            t.capacity = capacity
            t.head = 0
    except BaseException:
        Py_DECREF(<object>name)
        Py_DECREF(<object>value)
        raise
    t.head = (t.head - 1) & (t.capacity - 1)
    e = &t.entries[t.head]
    e.name = name
    e.value = value
    e.size = size
    e.name_index = name_index
    e.name_str = NULL
    e.value_str = NULL
    t.count += 1
    t.used += size
    return _table_shrink(t)


cdef void _table_free(DynamicTable* t) noexcept:
    t.defer = False
    _table_release_deferred(t)
    while t.count:
        _evict_oldest(t)
    free(t.entries)
    free(t.deferred)
    t.entries = NULL
    t.deferred = NULL
    t.capacity = t.deferred_capacity = 0


cdef list _table_entries(DynamicTable* t):
    return [(<object>_entry(t, i).name, <object>_entry(t, i).value) for i in range(t.count)]
