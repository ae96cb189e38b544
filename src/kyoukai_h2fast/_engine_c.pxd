# cython: language_level=3
"""Layout and C-level API of the compiled connection engine (``kyoukai_h2fast._engine_c``).

A sans-IO server-side HTTP/2 connection (RFC 9113): bytes in, events out, bytes to send. The
Python API is the ``Engine`` contract of :mod:`kyoukai_h2fast.contracts`; this file declares
what sits under it:

* the stream states of RFC 9113 §5.1 as the engine sees them (a server that never pushes, so
  no "reserved" states), with "closed" split by *how* the stream ended, which decides what a
  late frame means;
* the stream inputs (frames received, sending actions) and the outcomes of a transition;
* ``Transition``: one cell of the (state x input) table, ``STREAM_TABLE`` in
  ``_engine_c_tables.pxi`` (exported read-only to Python by ``stream_transitions()``);
* the connection phases and their table (``connection_transitions()``);
* ``IdMap``: a uint32 -> pointer hash map (live streams, closed-stream memory), and
  ``ClosedStream``: one remembered closed stream;
* ``RecvWindow``: a receive window with h2's WINDOW_UPDATE batching;
* ``RateWindow``: a flood budget (events in the last 10 s against a limit);
* ``_Stream`` (one per live stream) and ``Engine``.

Everything that affects the state machines lives in the tables; the handlers in
``_engine_c_recv.pxi`` and ``_engine_c_send.pxi`` look a transition up and act on its outcome.
"""
from libc.stdint cimport int64_t, intptr_t, uint8_t, uint32_t
from cpython.object cimport PyObject

from kyoukai_h2fast._frames_c cimport FrameBuffer, FrameView, WriteBuffer
from kyoukai_h2fast._headers_c cimport FieldBlockCheck
from kyoukai_h2fast._hpack_c cimport ByteBuffer, Decoder, Encoder, HeaderField


# ---- stream states (RFC 9113 §5.1) ------------------------------------------------------------
cdef enum:  # StreamState
    S_IDLE = 0                # never opened; ids above the highest the peer opened
    S_OPEN = 1                # request headers received, both directions open
    S_HALF_CLOSED_REMOTE = 2  # the peer ended the request; the response goes on
    S_HALF_CLOSED_LOCAL = 3   # our response ended; the request body goes on
    S_CLOSED = 4              # END_STREAM both ways (remembered, with its last send window)
    S_RESET_LOCAL = 5         # closed by our RST_STREAM (stream error, refusal, reset_stream)
    S_RESET_REMOTE = 6        # closed by the peer's RST_STREAM
    # at or below the highest id opened, not remembered (implicitly closed, RFC 9113 §5.1.1,
    # or forgotten: memory is bounded)
    S_CLOSED_UNKNOWN = 7
    N_STREAM_STATES = 8

# ---- stream inputs --------------------------------------------------------------------------
cdef enum:  # StreamInput
    I_RECV_HEADERS = 0        # a field block without END_STREAM (request headers, or trailers)
    I_RECV_HEADERS_END = 1    # a field block with END_STREAM
    I_RECV_DATA = 2
    I_RECV_DATA_END = 3
    I_RECV_WINDOW_UPDATE = 4
    I_RECV_RST_STREAM = 5
    I_RECV_PRIORITY = 6       # PRIORITY, or HEADERS with priority fields (§5.3.2: ignored)
    I_RECV_PRIORITY_SELF = 7  # ... naming the stream itself as its dependency (§5.3.1)
    I_SEND_HEADERS = 8        # a response header block (1xx or final) without END_STREAM
    I_SEND_HEADERS_END = 9
    I_SEND_DATA = 10
    I_SEND_DATA_END = 11      # the DATA frame carrying END_STREAM goes into the output
    I_SEND_RST_STREAM = 12
    N_STREAM_INPUTS = 13

# ---- outcomes of a transition -----------------------------------------------------------------
cdef enum:  # Outcome
    O_OK = 0                  # the input is valid here: process it
    O_IGNORE = 1              # drop it (DATA: its bytes still count on the connection window)
    O_STREAM_CLOSED = 2       # stream error STREAM_CLOSED (RFC 9113 §5.4.2)
    O_STREAM_PROTOCOL = 3     # stream error PROTOCOL_ERROR
    O_CONN_STREAM_CLOSED = 4  # connection error STREAM_CLOSED (§5.4.1)
    O_CONN_PROTOCOL = 5       # connection error PROTOCOL_ERROR
    O_REJECT = 6              # a send call on a stream not open for it: ignored (returns False)
    N_OUTCOMES = 7

cdef struct Transition:
    uint8_t next_state
    uint8_t outcome

# ---- connection phases --------------------------------------------------------------------------
cdef enum:  # ConnPhase
    P_PREFACE = 0             # until the client preface and its SETTINGS frame arrived (§3.4)
    P_OPEN = 1
    P_CLOSED = 2              # after a connection error: every call is ignored
    N_CONN_PHASES = 3

cdef enum:  # ConnInput
    CI_RECV_SETTINGS = 0      # a SETTINGS frame (not an ACK)
    CI_RECV_FRAME = 1         # any other frame
    CI_SEND_GOAWAY = 2
    CI_RECV_GOAWAY = 3
    CI_CONNECTION_ERROR = 4
    N_CONN_INPUTS = 5

# ---- sizes and limits ---------------------------------------------------------------------------
cdef enum:
    MAX_WINDOW = 0x7FFFFFFF           # 2^31 - 1 (RFC 9113 §6.9.1)
    DEFAULT_WINDOW = 65535
    DEFAULT_MAX_FRAME_SIZE = 16384
    CLOSED_MEMORY = 4096              # closed streams remembered (how they ended)
    N_URGENCIES = 8                   # RFC 9218 urgency 0..7
    DEFAULT_URGENCY = 3
    RATE_BUCKETS = 20                 # flood budgets: 20 buckets of 0.5 s = 10 s
    TINY_WINDOW_UPDATE = 1024         # a WINDOW_UPDATE below this carries no progress
    IDLE_PRIORITY_MEMORY = 256        # PRIORITY_UPDATEs remembered for streams not yet open
    FRAME_NOW_LIMIT = 65536           # DATA framed outside the scheduler between two takes


# ---- uint32 -> pointer-sized value hash map (open addressing, linear probing) -------------------
cdef struct IdMap:
    uint32_t* keys            # 0: empty slot (stream id 0 is never a key)
    intptr_t* values
    Py_ssize_t capacity       # 0 or a power of two
    Py_ssize_t count

# ---- one remembered closed stream ---------------------------------------------------------------
cdef struct ClosedStream:
    uint32_t stream_id
    uint8_t state             # S_CLOSED, S_RESET_LOCAL or S_RESET_REMOTE
    int64_t window            # S_CLOSED: its send window when it closed (WINDOW_UPDATEs add)

# ---- a flood budget: events in the last 10 s against a limit (_engine_c_budgets.pxi) -------------
cdef struct RateWindow:
    double epoch              # time.monotonic() - 1 at the first event (0: none yet)
    long long bucket          # the current 0.5 s bucket, counted from ``epoch``
    long long total           # events in the 20 buckets
    long long limit
    int counts[20]

# ---- a PRIORITY_UPDATE for a stream not yet open (RFC 9218 §7), kept until it opens -------------
cdef struct IdlePriority:
    uint32_t stream_id
    uint8_t priority          # 2 * urgency + incremental

# ---- a receive window with h2's WindowManager batching -------------------------------------------
cdef struct RecvWindow:
    int64_t max_size          # h2's max_window_size
    int64_t current           # bytes the peer may still send
    int64_t processed         # bytes consumed by the app, not yet given back


cdef class _Stream:
    cdef uint32_t stream_id
    cdef uint8_t state                # StreamState (a live state: OPEN, HALF_CLOSED_*)
    cdef uint8_t urgency              # RFC 9218 urgency, 0 (first) .. 7
    cdef bint incremental
    cdef bint headers_sent            # the final (non-1xx) response header block went out
    cdef bint end_queued              # END_STREAM of the response is queued or sent
    cdef bint stop_reading            # request body no longer reported (stop_reading)
    # in the scheduler: its urgency's ring (incremental) or sequence (not incremental); a group
    # marker: in its ring
    cdef bint in_rotation
    cdef int64_t send_window          # may go negative (SETTINGS_INITIAL_WINDOW_SIZE, §6.9.2)
    cdef RecvWindow recv
    cdef int64_t content_length       # declared, or -1
    cdef int64_t received             # body bytes received (DATA payload, no padding)
    cdef int64_t discard_left         # after stop_reading: bytes still accepted
    # send queue: chunks[head:] not yet written, the first from byte ``offset`` on; the
    # scheduler plans ahead of the writing: chunks[plan_head] has plan_left bytes unplanned
    cdef list chunks
    cdef Py_ssize_t head
    cdef Py_ssize_t offset
    cdef Py_ssize_t plan_head
    cdef Py_ssize_t plan_left
    cdef int64_t queued               # bytes queued and not yet planned
    cdef unsigned long long started   # order in which responses started (final headers)
    # scheduler links, ring or sequence (borrowed: a stream is unlinked before it is freed)
    cdef PyObject* rot_next
    cdef PyObject* rot_prev


cdef struct PlanEntry:
    PyObject* stream          # borrowed
    Py_ssize_t length         # DATA payload bytes of this frame
    bint end_stream


cdef class Engine:
    # configuration
    cdef object _config
    cdef Py_ssize_t _max_streams          # SETTINGS_MAX_CONCURRENT_STREAMS we advertise
    cdef int64_t _local_initial_window    # SETTINGS_INITIAL_WINDOW_SIZE we advertise
    cdef int64_t _connection_window       # configured connection receive window
    cdef long long _header_table_size     # our SETTINGS_HEADER_TABLE_SIZE
    # connection state
    cdef uint8_t _phase                   # ConnPhase
    cdef bint _initiated
    cdef bint _goaway_sent
    cdef bint _connect_protocol           # SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 advertised
    cdef bint _goaway_received
    cdef uint32_t _goaway_last            # last stream id of our GOAWAY
    cdef uint32_t _highest                # highest stream id the peer opened
    cdef Py_ssize_t _open_streams         # live streams (count against our limit)
    cdef int _pending_acks                # our SETTINGS frames not acknowledged yet
    cdef int _table_size_ack              # the ack number that applies our table size, or 0
    cdef int _acks_seen
    # flow control
    cdef RecvWindow _conn_recv
    cdef int64_t _recv_initial            # receive window of a new stream
    cdef int64_t _conn_send
    cdef int64_t _peer_initial_window     # the peer's SETTINGS_INITIAL_WINDOW_SIZE
    cdef Py_ssize_t _peer_max_frame_size
    # streams
    cdef IdMap _live                      # stream id -> owned _Stream
    cdef IdMap _closed_index              # stream id -> index into _closed
    cdef ClosedStream* _closed            # ring of remembered closed streams
    cdef Py_ssize_t _closed_cap           # slots allocated (doubles up to CLOSED_MEMORY)
    cdef Py_ssize_t _closed_head          # slot of the next insertion
    cdef Py_ssize_t _closed_count
    # scheduler (RFC 9218 §10), per urgency: a ring of the incremental streams and of the group
    # marker of the non-incremental ones (borrowed; the one to serve next first), and the
    # sequence of the non-incremental streams by stream id (borrowed, head and tail)
    cdef PyObject* _rings[8]
    cdef PyObject* _seq[8]
    cdef PyObject* _seq_tail[8]
    cdef PyObject* _groups[8]             # owned group markers (``_Stream`` with id 0), or NULL
    cdef Py_ssize_t _rotating             # streams in the scheduler (markers not counted)
    cdef int64_t _framed_now              # DATA payload framed by queue_data since the last take
    cdef int64_t _queued_total
    cdef int64_t _bytes_received          # every byte given to receive() (for the metrics)
    cdef int64_t _bytes_sent              # every byte returned by data_to_send()
    cdef unsigned long long _started
    cdef PlanEntry* _plan
    cdef Py_ssize_t _plan_cap
    # PRIORITY_UPDATEs for streams not yet open, by stream id (RFC 9218 §7; bounded)
    cdef IdlePriority* _idle
    cdef Py_ssize_t _idle_count
    cdef Py_ssize_t _idle_cap
    # codecs and buffers
    cdef FrameBuffer _frames
    cdef Decoder _decoder
    cdef Encoder _encoder
    cdef WriteBuffer _ctrl                # control frames and header blocks, in order
    cdef ByteBuffer _block                # scratch for encoded header blocks
    # consecutive DATA of one stream within one receive(): one DataReceived (_engine_c_recv.pxi)
    cdef object _pend_event               # the last event of this receive() if it is open
    cdef Py_ssize_t _pend_index           # its index in the events list
    cdef uint32_t _pend_sid
    cdef int64_t _pend_flow
    cdef bint _pend_joined                # _pend_buf holds its payload (more than one frame)
    cdef ByteBuffer _pend_buf
    cdef list _send_events
    cdef object _malformed                # why the last field block was malformed (a str)
    # flood budgets (_engine_c_budgets.pxi) and fairness
    cdef RateWindow _rate_resets          # streams reset by the peer or on its provocation
    cdef RateWindow _rate_pings
    cdef RateWindow _rate_settings
    cdef RateWindow _rate_empty           # frames without progress
    cdef int _frame_resets                # resets of the frame being handled
    cdef long long _ctrl_queued           # control frames queued since the output drained
    cdef long long _max_ctrl              # config.max_queued_control_frames
    cdef bint _input_pending              # receive() stopped at max_frames

    # shared helpers (_engine_c.pyx); the frame handlers and the scheduler are module-level
    # functions in _engine_c_recv.pxi and _engine_c_send.pxi
    cdef _Stream _get(self, uint32_t stream_id)
    cdef uint8_t _state_of(self, uint32_t stream_id, ClosedStream** memory) noexcept
    cdef int _remember(self, uint32_t stream_id, uint8_t state, int64_t window) except -1
    cdef int _free(self, _Stream stream, uint8_t final_state) except -1
    cdef int _credit(self, _Stream stream, int64_t size) except -1
    cdef int _stream_error(self, _Stream stream, uint32_t stream_id, uint32_t error_code,
                           bint notify, list events, str reason=*) except -1
    cdef int _fail(self, uint32_t error_code, str message, bytes debug=*,
                   str budget=*) except -1
    cdef int _queue_rst(self, uint32_t stream_id, uint32_t error_code, bint provoked) except -1
    cdef int _ring_add(self, _Stream stream) except -1
    cdef int _ring_remove(self, _Stream stream) noexcept
    cdef int _reprioritize(self, _Stream stream, int priority) except -1
    cdef bint _sendable(self, _Stream stream) noexcept
