# Included by _frames_c.pyx: the pool of byte buffers behind FrameBuffer (read buffer, joined
# header blocks) and WriteBuffer.
#
# Why: buffers sized to whatever arrived (4 KiB here, 37,211 bytes there, 250 KiB after a large
# read) and kept for a connection's lifetime left glibc's heap full of free chunks of odd sizes
# under varied input (issue 14: RSS crept ~0.75 KB per connection without a plateau). Buffers
# now come in a few fixed size classes, are handed back as soon as they are empty, and idle ones
# are kept here for the next connection, a bounded number per class; larger requests are
# allocated exactly and freed when released.
#
# Size classes: 2^k + 1024 bytes for k = 10..16 (2 KiB ... 65 KiB): the +1 KiB lets one frame
# of the default maximum size (16,384 + 9 bytes) and one header block of the default bound
# (64 KiB + 1 KiB) each fit their class. Every function needs the GIL (PyMem_*, and the pool is
# shared by all threads).
from cpython.mem cimport PyMem_Free, PyMem_Malloc

cdef enum:
    _POOL_CLASSES = 7
    _POOL_SMALLEST_SHIFT = 10
    _POOL_SLACK = 1024
    _POOL_CLASS_BYTES = 1 << 18          # idle bytes kept per class, at most
    _POOL_MAX_IDLE = 128                 # _POOL_CLASS_BYTES // the smallest class
    _LARGE_ROUNDING = 1 << 16            # beyond the classes: exact, in 64 KiB steps

cdef unsigned char* _pool_idle[_POOL_CLASSES][_POOL_MAX_IDLE]
cdef int _pool_count[_POOL_CLASSES]
cdef Py_ssize_t _pool_large_outstanding = 0      # buffers beyond the classes, not yet freed


cdef inline Py_ssize_t _class_size(int k) noexcept nogil:
    return (<Py_ssize_t>1 << (k + _POOL_SMALLEST_SHIFT)) + _POOL_SLACK


cdef inline int _class_max_idle(int k) noexcept nogil:
    cdef Py_ssize_t n = _POOL_CLASS_BYTES // _class_size(k)
    return <int>(n if n < _POOL_MAX_IDLE else _POOL_MAX_IDLE)


cdef unsigned char* buffer_acquire(Py_ssize_t need, Py_ssize_t* capacity) except NULL:
    """A buffer of at least ``need`` bytes; its capacity (a class size, or larger) in
    ``*capacity``. Give it back with buffer_release(buffer, capacity)."""
    global _pool_large_outstanding
    cdef int k
    cdef Py_ssize_t size
    cdef unsigned char* buf
    for k in range(_POOL_CLASSES):
        size = _class_size(k)
        if need <= size:
            capacity[0] = size
            if _pool_count[k]:
                _pool_count[k] -= 1
                return _pool_idle[k][_pool_count[k]]
            buf = <unsigned char*>PyMem_Malloc(size)
            if buf == NULL:
                raise MemoryError()
            return buf
    size = (need + _LARGE_ROUNDING - 1) & ~(<Py_ssize_t>_LARGE_ROUNDING - 1)
    buf = <unsigned char*>PyMem_Malloc(size)
    if buf == NULL:
        raise MemoryError()
    capacity[0] = size
    _pool_large_outstanding += 1
    return buf


cdef void buffer_release(unsigned char* buf, Py_ssize_t capacity) noexcept:
    """Give back a buffer from buffer_acquire (NULL is ignored): kept idle for reuse while its
    class has room, else freed."""
    global _pool_large_outstanding
    cdef int k
    if buf == NULL:
        return
    for k in range(_POOL_CLASSES):
        if capacity == _class_size(k):
            if _pool_count[k] < _class_max_idle(k):
                _pool_idle[k][_pool_count[k]] = buf
                _pool_count[k] += 1
                return
            break
        if capacity < _class_size(k):
            break
    if capacity > _class_size(_POOL_CLASSES - 1):
        _pool_large_outstanding -= 1
    PyMem_Free(buf)


def buffer_pool_stats():
    """``{class size: idle buffers}`` and ``"large"``: buffers beyond the classes not yet
    released (for tests and diagnostics)."""
    stats = {_class_size(k): _pool_count[k] for k in range(_POOL_CLASSES)}
    stats["large"] = _pool_large_outstanding
    return stats


def buffer_pool_limits():
    """``{class size: most idle buffers kept}`` (the pool's bound)."""
    return {_class_size(k): _class_max_idle(k) for k in range(_POOL_CLASSES)}
