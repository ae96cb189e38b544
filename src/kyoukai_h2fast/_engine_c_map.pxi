# Included by _engine_c.pyx: the stream id hash map (``IdMap``) and the bounded memory of
# closed streams.
#
# IdMap: open addressing with linear probing and backward-shift deletion (no tombstones), keys
# uint32 (0 marks an empty slot: stream 0 is never a key), values pointer-sized and never 0.
# Load factor at most 1/2. Live streams: value = an owned reference to the ``_Stream``. Closed
# memory: value = ring index + 1.
#
# Closed memory: a ring of ``ClosedStream`` records in closing order, at most
# CLOSED_MEMORY; the oldest is forgotten when a new one comes (its id then reads as
# CLOSED_UNKNOWN). The ring starts small and doubles, so a connection that served few streams
# holds little.

cdef inline Py_ssize_t _idmap_slot(uint32_t key, Py_ssize_t mask) noexcept nogil:
    cdef uint32_t h = key * <uint32_t>0x9E3779B1u
    return <Py_ssize_t>((h ^ (h >> 15)) & <uint32_t>mask)


cdef void idmap_free(IdMap* m) noexcept:
    PyMem_Free(m.keys)
    PyMem_Free(m.values)
    m.keys = NULL
    m.values = NULL
    m.capacity = 0
    m.count = 0


cdef intptr_t idmap_get(IdMap* m, uint32_t key) noexcept nogil:
    """The value of ``key``, or 0."""
    cdef Py_ssize_t mask, i
    if m.count == 0:
        return 0
    mask = m.capacity - 1
    i = _idmap_slot(key, mask)
    while m.keys[i]:
        if m.keys[i] == key:
            return m.values[i]
        i = (i + 1) & mask
    return 0


cdef int _idmap_insert(IdMap* m, uint32_t key, intptr_t value) noexcept nogil:
    """Insert or replace; the table has room."""
    cdef Py_ssize_t mask = m.capacity - 1
    cdef Py_ssize_t i = _idmap_slot(key, mask)
    while m.keys[i]:
        if m.keys[i] == key:
            m.values[i] = value
            return 0
        i = (i + 1) & mask
    m.keys[i] = key
    m.values[i] = value
    m.count += 1
    return 0


cdef int idmap_put(IdMap* m, uint32_t key, intptr_t value) except -1:
    cdef Py_ssize_t capacity, i
    cdef uint32_t* old_keys
    cdef intptr_t* old_values
    cdef Py_ssize_t old_capacity = m.capacity
    if (m.count + 1) * 2 > m.capacity:
        capacity = m.capacity * 2 if m.capacity else 16
        old_keys = m.keys
        old_values = m.values
        m.keys = <uint32_t*>PyMem_Calloc(capacity, sizeof(uint32_t))
        m.values = <intptr_t*>PyMem_Malloc(capacity * sizeof(intptr_t))
        if m.keys == NULL or m.values == NULL:
            PyMem_Free(m.keys)
            PyMem_Free(m.values)
            m.keys = old_keys
            m.values = old_values
            raise MemoryError()
        m.capacity = capacity
        m.count = 0
        for i in range(old_capacity):
            if old_keys[i]:
                _idmap_insert(m, old_keys[i], old_values[i])
        PyMem_Free(old_keys)
        PyMem_Free(old_values)
    _idmap_insert(m, key, value)
    return 0


cdef intptr_t idmap_pop(IdMap* m, uint32_t key) noexcept nogil:
    """Remove ``key``; return its value, or 0 when absent."""
    cdef Py_ssize_t mask, i, j, home
    cdef intptr_t value
    if m.count == 0:
        return 0
    mask = m.capacity - 1
    i = _idmap_slot(key, mask)
    while True:
        if m.keys[i] == 0:
            return 0
        if m.keys[i] == key:
            break
        i = (i + 1) & mask
    value = m.values[i]
    # Backward-shift: move later entries of the probe run into the hole when their home slot
    # does not lie (cyclically) in (hole, j].
    j = i
    while True:
        j = (j + 1) & mask
        if m.keys[j] == 0:
            break
        home = _idmap_slot(m.keys[j], mask)
        if (j > i and (home <= i or home > j)) or (j < i and (home <= i and home > j)):
            m.keys[i] = m.keys[j]
            m.values[i] = m.values[j]
            i = j
    m.keys[i] = 0
    m.count -= 1
    return value


# ---- closed-stream memory ------------------------------------------------------------------------

cdef int _closed_grow(Engine self) except -1:
    """Double the ring (linearised oldest first) and re-index it."""
    cdef Py_ssize_t old_cap = self._closed_cap, cap, i, start
    cdef ClosedStream* ring
    cap = old_cap * 2 if old_cap else 16
    if cap > CLOSED_MEMORY:
        cap = CLOSED_MEMORY
    ring = <ClosedStream*>PyMem_Malloc(cap * sizeof(ClosedStream))
    if ring == NULL:
        raise MemoryError()
    start = (self._closed_head - self._closed_count) % old_cap if old_cap else 0
    if start < 0:
        start += old_cap
    for i in range(self._closed_count):
        ring[i] = self._closed[(start + i) % old_cap]
        idmap_put(&self._closed_index, ring[i].stream_id, i + 1)
    PyMem_Free(self._closed)
    self._closed = ring
    self._closed_cap = cap
    self._closed_head = self._closed_count % cap
    return 0


cdef int _closed_add(Engine self, uint32_t stream_id, uint8_t state, int64_t window) except -1:
    cdef ClosedStream* slot
    cdef intptr_t known = idmap_get(&self._closed_index, stream_id)
    if known:
        slot = &self._closed[known - 1]
        slot.state = state
        slot.window = window
        return 0
    if self._closed_count == self._closed_cap and self._closed_cap < CLOSED_MEMORY:
        _closed_grow(self)
    slot = &self._closed[self._closed_head]
    if self._closed_count == self._closed_cap:     # full: forget the oldest
        idmap_pop(&self._closed_index, slot.stream_id)
    else:
        self._closed_count += 1
    slot.stream_id = stream_id
    slot.state = state
    slot.window = window
    idmap_put(&self._closed_index, stream_id, self._closed_head + 1)
    self._closed_head = (self._closed_head + 1) % self._closed_cap
    return 0


cdef inline ClosedStream* _closed_find(Engine self, uint32_t stream_id) noexcept:
    cdef intptr_t known = idmap_get(&self._closed_index, stream_id)
    return &self._closed[known - 1] if known else NULL
