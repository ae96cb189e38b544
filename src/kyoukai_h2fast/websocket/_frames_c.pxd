# cython: language_level=3
"""C-level API of the compiled WebSocket frame codec (``kyoukai_h2fast.websocket._frames_c``),
RFC 6455 §5.

For Cython code that cimports it (a compiled connection or transport):

    cdef FrameReader reader = FrameReader(16777216, False, False)
    reader.feed(data)
    frame = reader.next_frame()          # (opcode, fin, rsv1, payload) or None; FrameError
    state = utf8_feed(UTF8_ACCEPT, ptr, n)   # UTF8_REJECT as soon as ptr[:n] cannot be UTF-8
    unmask_into(dst, src, n, key, 0)     # dst may be src
    frame_bytes = build_frame_bytes(OP_TEXT, ptr, n, True, False, NULL)

The Python-level API (``FrameReader`` iteration, ``Utf8Validator``, ``build_frame``,
``apply_mask``) and the rules are those of the pure twin
:mod:`kyoukai_h2fast.websocket._frames_py`.
"""
from libc.stdint cimport uint32_t

cdef enum:
    OPCODE_CONTINUATION = 0x0
    OPCODE_TEXT = 0x1
    OPCODE_BINARY = 0x2
    OPCODE_CLOSE = 0x8
    OPCODE_PING = 0x9
    OPCODE_PONG = 0xA
    #: States of the UTF-8 automaton (Hoehrmann's DFA): at a character boundary / invalid.
    UTF8_ACCEPT = 0
    UTF8_REJECT = 12


# The UTF-8 automaton from ``state`` over ``n`` bytes; the new state (UTF8_REJECT is final).
cdef uint32_t utf8_feed(uint32_t state, const unsigned char* s, Py_ssize_t n) noexcept nogil
# dst[i] = src[i] ^ key[(offset + i) % 4], 8 bytes at a time.
cdef void unmask_into(unsigned char* dst, const unsigned char* src, Py_ssize_t n,
                      const unsigned char* key, Py_ssize_t offset) noexcept nogil
# One frame as bytes; ``mask`` NULL: unmasked (a server's frame), else the 4-byte key.
cdef bytes build_frame_bytes(int opcode, const unsigned char* data, Py_ssize_t n, bint fin,
                             bint rsv1, const unsigned char* mask)


cdef class Utf8Validator:
    cdef uint32_t _state


cdef class FrameReader:
    cdef public Py_ssize_t max_message_size
    cdef bint _client
    cdef bint _rsv1_allowed
    # read buffer: bytes [_start, _end) of _buf are unread
    cdef unsigned char* _buf
    cdef Py_ssize_t _start
    cdef Py_ssize_t _end
    cdef Py_ssize_t _cap
    # zero-copy input: a bytes object read in place while the read buffer is empty
    cdef object _ext
    cdef const unsigned char* _ext_ptr
    cdef Py_ssize_t _ext_pos
    cdef Py_ssize_t _ext_len
    # the fragmented message in progress
    cdef int _message_opcode
    cdef bint _message_compressed
    cdef Py_ssize_t _message_size
    cdef uint32_t _utf8_state
    cdef Py_ssize_t _partial_validated
    cdef object _error

    cdef int feed_bytes(self, const unsigned char* data, Py_ssize_t n) except -1
    # the next frame as (opcode, fin, rsv1, payload), or None when more bytes are needed
    cpdef object next_frame(self)
    cdef object _parse(self, const unsigned char* p, Py_ssize_t avail, Py_ssize_t* used)
    cdef int _validate_partial(self, const unsigned char* payload, Py_ssize_t arrived,
                               const unsigned char* key, bint first) except -1
    cdef int _reserve(self, Py_ssize_t n) except -1
    cdef int _detach(self) except -1
