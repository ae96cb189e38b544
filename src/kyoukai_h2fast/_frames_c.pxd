# cython: language_level=3
"""C-level API of the compiled HTTP/2 frame layer (``kyoukai_h2fast._frames_c``), RFC 9113 §4, §6.

For the Cython connection core, which reads frames without a Python object per frame:

    cdef FrameBuffer buf = FrameBuffer(True)        # True: a server, expects the client preface
    buf.max_frame_size = 16384                      # SETTINGS_MAX_FRAME_SIZE we advertised
    buf.add_bytes(ptr, n)                           # or buf.add_data(obj) (bytes: zero copy)
    cdef FrameView view
    while buf.next_frame(&view):                    # 1: a frame, 0: need more data; raises
        if view.type == FRAME_DATA: use view.data[:view.data_length] ...

Errors (the ``h2.exceptions`` classes ``h2``'s own ``FrameBuffer`` raises, so ``h2`` reacts the
same): ``ProtocolError`` (bad preface, stream id not allowed for the type, WINDOW_UPDATE
increment 0 or > 2^31-1, PUSH_PROMISE promised id 0 or odd, a frame other than CONTINUATION on
the same stream inside a header block, more than 64 frames in one header block),
``FramePaddingError`` (padding longer than what remains, RFC 9113 §6.1/§6.2/§6.6; subclass of
both ``ProtocolError`` and hyperframe's ``InvalidPaddingError``, which ``h2`` catches first),
``FrameDataMissingError`` (FRAME_SIZE_ERROR: payload too short / wrong fixed length, and a
SETTINGS ACK with a payload, §6.5), ``FrameTooLargeError`` (length > max_frame_size, raised as
soon as the 9-byte header is there) and ``DenialOfServiceError`` (header block larger than
``max_header_block_size``).

Where RFC 9113 and h2/hyperframe disagree, the RFC wins (three cases): SETTINGS ACK with a
payload is FRAME_SIZE_ERROR (§6.5; h2: PROTOCOL_ERROR); HEADERS padding is measured after the
priority fields (§6.2: hyperframe accepts padding overlapping them and rejects a padded HEADERS
whose fragment is empty); PUSH_PROMISE padding is measured after the promised stream id (§6.6).

What ``next_frame`` delivers, per RFC 9113 §6 (all checks of hyperframe + h2 done):

* ``flags`` keeps only the flags defined for the type (§4.1: unused flags are ignored); for an
  unknown type it is the raw flag byte. ``stream_id`` has the reserved bit cleared.
* DATA / HEADERS / PUSH_PROMISE / CONTINUATION: ``data``/``data_length`` is the fragment without
  pad length, priority fields, promised id and padding; ``pad_length`` is set when PADDED.
* HEADERS and PUSH_PROMISE without END_HEADERS are held and the CONTINUATION frames joined (§6.10):
  one view is delivered with the first frame's fields, ``FLAG_END_HEADERS`` added,
  ``reassembled`` = 1, ``payload`` = NULL and ``data`` = the whole header block. CONTINUATION is
  only delivered outside a header block (the connection reports that error itself).
* PRIORITY and HEADERS+PRIORITY: ``depends_on`` (31 bits), ``exclusive``, ``weight`` (raw byte).
* RST_STREAM: ``error_code``. GOAWAY: ``last_stream_id`` (as sent, 32 bits), ``error_code``,
  ``data`` = debug data. WINDOW_UPDATE: ``window_increment``. PUSH_PROMISE: ``promised_stream_id``.
* SETTINGS: ``data`` = ``payload``, ``length // 6`` entries of (uint16 id, uint32 value).
* PING: ``data`` = the 8 opaque bytes. ALTSVC: ``data`` = origin (``origin_length`` bytes), the
  field value follows it up to ``payload + length``. Unknown types: ``data`` = ``payload``.

Output, into a caller-owned ``WriteBuffer`` (one growable block; ``take()`` gives the bytes):

    cdef WriteBuffer out = WriteBuffer()
    out.append_headers_frames(stream_id, block_ptr, block_len, end_stream, max_frame_size)
    out.append_data_frames(stream_id, data_ptr, data_len, end_stream, max_frame_size)
    out.append_window_update(0, increment)
    transport.write(out.take())

The ``append_*`` methods do not validate values (the caller's job); the Python-level functions
and ``WriteBuffer.add_*`` methods do.

Lifetime: ``payload`` and ``data`` point into the buffer (or into the ``bytes`` object given to
``add_data``) and stay valid until the next call of ``next_frame``/``add_data``/``add_bytes``.
A ``bytes`` object given to ``add_data`` is read in place and referenced until ``next_frame``
returns 0; a caller that stops earlier for good (a connection error) calls ``detach_input()``
so that the read is not kept alive (Python iteration does this itself).

Memory: the read buffer holds at most the one incomplete frame (plus what ``add_bytes`` copied);
it, the joined header block and ``WriteBuffer``'s storage come from a pool of fixed size classes
(``_frames_c_pool.pxi``: 2^k + 1 KiB, 2 KiB to 65 KiB, a bounded number kept idle; larger ones
exact and freed) and go back to it as soon as they are empty (a ``WriteBuffer`` keeps 5 KiB).
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t

cdef enum:
    FRAME_HEADER_LENGTH = 9
    FRAME_DATA = 0x0
    FRAME_HEADERS = 0x1
    FRAME_PRIORITY = 0x2
    FRAME_RST_STREAM = 0x3
    FRAME_SETTINGS = 0x4
    FRAME_PUSH_PROMISE = 0x5
    FRAME_PING = 0x6
    FRAME_GOAWAY = 0x7
    FRAME_WINDOW_UPDATE = 0x8
    FRAME_CONTINUATION = 0x9
    FRAME_ALTSVC = 0xA
    FLAG_END_STREAM = 0x01
    FLAG_ACK = 0x01
    FLAG_END_HEADERS = 0x04
    FLAG_PADDED = 0x08
    FLAG_PRIORITY = 0x20
    #: h2's CONTINUATION_BACKLOG: frames (HEADERS + CONTINUATIONs) allowed in one header block.
    MAX_HEADER_BLOCK_FRAMES = 64


cdef struct FrameView:
    uint32_t length                 # payload length from the header (first frame if reassembled)
    uint8_t type
    uint8_t flags                   # defined flags only (raw byte for unknown types)
    uint32_t stream_id              # reserved bit cleared
    const unsigned char* payload    # the raw payload, ``length`` bytes; NULL if reassembled
    const unsigned char* data       # the content (see the module docstring)
    Py_ssize_t data_length
    uint8_t pad_length
    bint reassembled                # a header block joined from several frames
    bint exclusive
    uint8_t weight
    uint32_t depends_on
    uint32_t promised_stream_id
    uint32_t error_code
    uint32_t last_stream_id
    uint32_t window_increment
    uint16_t origin_length


cdef class FrameBuffer:
    """Inbound byte stream -> validated frames (``next_frame``) or hyperframe objects
    (iteration)."""
    cdef public Py_ssize_t max_frame_size         # h2 sets it before every iteration
    cdef public Py_ssize_t max_header_block_size  # bound of one joined header block (bytes)
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
    cdef Py_ssize_t _preamble_left                # bytes of the client preface still expected
    # header block being joined (RFC 9113 §6.10)
    cdef bint _in_block
    cdef bint _block_delivered                    # the last view pointed into _block
    cdef int _block_frames
    cdef FrameView _block_first
    cdef unsigned char* _block
    cdef Py_ssize_t _block_len
    cdef Py_ssize_t _block_cap

    cdef int add_bytes(self, const unsigned char* data, Py_ssize_t n) except -1
    cdef int next_frame(self, FrameView* out) except -1
    cdef object frame_object(self, FrameView* view)   # the hyperframe object h2 would get
    # internal
    cdef int _check_preamble(self, const unsigned char* data, Py_ssize_t n) except -1
    cdef int _append(self, const unsigned char* data, Py_ssize_t n) except -1
    cdef int _park(self) except -1
    cdef int _block_add(self, FrameView* v) except -1
    cdef int _fill(self) except -1
    cdef int _release_block(self) except -1
    # Copy the unread rest of the object given to add_data into the read buffer and drop the
    # reference (for a caller that stops before next_frame returned 0; see Lifetime above).
    cdef int detach_input(self) except -1


cdef class WriteBuffer:
    """A growable output buffer; the ``append_*`` methods serialize frames into it
    (RFC 9113 §4.1)."""
    cdef unsigned char* _buf
    cdef Py_ssize_t _len
    cdef Py_ssize_t _cap

    # claims n more bytes at the end and returns them; the caller must fill all n
    cdef unsigned char* reserve(self, Py_ssize_t n) except NULL
    cdef int append(self, const unsigned char* data, Py_ssize_t n) except -1
    cdef int append_frame_header(self, Py_ssize_t length, uint8_t type, uint8_t flags,
                                 uint32_t stream_id) except -1
    cdef int append_frame(self, uint8_t type, uint8_t flags, uint32_t stream_id,
                          const unsigned char* payload, Py_ssize_t length) except -1
    # HEADERS (+ CONTINUATIONs): END_STREAM on the HEADERS frame, END_HEADERS on the last one.
    cdef int append_headers_frames(self, uint32_t stream_id, const unsigned char* block,
                                   Py_ssize_t n, bint end_stream,
                                   Py_ssize_t max_frame_size) except -1
    # DATA frames of at most max_frame_size bytes, END_STREAM on the last (one frame if n == 0).
    cdef int append_data_frames(self, uint32_t stream_id, const unsigned char* data,
                                Py_ssize_t n, bint end_stream, Py_ssize_t max_frame_size) except -1
    cdef int append_settings(self, dict settings, bint ack) except -1
    cdef int append_window_update(self, uint32_t stream_id, uint32_t increment) except -1
    cdef int append_ping(self, const unsigned char* opaque_data8, bint ack) except -1
    cdef int append_rst_stream(self, uint32_t stream_id, uint32_t error_code) except -1
    cdef int append_goaway(self, uint32_t last_stream_id, uint32_t error_code,
                           const unsigned char* debug, Py_ssize_t n) except -1
    cpdef bytes take(self)     # the contents as bytes; the buffer is emptied
    cdef int _emptied(self) except -1


cdef inline void write_frame_header(unsigned char* out, Py_ssize_t length, uint8_t type,
                                    uint8_t flags, uint32_t stream_id) noexcept nogil:
    """The 9-byte frame header (RFC 9113 §4.1) at ``out``; length is taken modulo 2^24."""
    out[0] = <unsigned char>((length >> 16) & 0xFF)
    out[1] = <unsigned char>((length >> 8) & 0xFF)
    out[2] = <unsigned char>(length & 0xFF)
    out[3] = type
    out[4] = flags
    out[5] = <unsigned char>((stream_id >> 24) & 0x7F)
    out[6] = <unsigned char>((stream_id >> 16) & 0xFF)
    out[7] = <unsigned char>((stream_id >> 8) & 0xFF)
    out[8] = <unsigned char>(stream_id & 0xFF)
