# cython: language_level=3
"""Compiled connection engine: a sans-IO server-side HTTP/2 connection (RFC 9113).

Owns one connection's protocol state: stream states (§5.1) and the bounded memory of closed
streams, connection phases, flow control both ways (§5.2, §6.9), SETTINGS and their ACK,
PING, GOAWAY both ways (§6.8), header blocks (decoded and validated as they are decoded,
§8.2/§8.3), content-length, trailers, limits, and the response send queues with their
scheduler. Bytes in (:meth:`Engine.receive`), events out (:mod:`kyoukai_h2fast.http2.events`),
bytes to send (:meth:`Engine.data_to_send`); no I/O. The interface is the ``Engine`` contract of
:mod:`kyoukai_h2fast.contracts`; the pure twin (on ``h2``) is
``kyoukai_h2fast.http2.h2engine.engine``.

Layout: the class and the C types are declared in ``_engine_c.pxd``; the state tables are in
``_engine_c_tables.pxi``, the stream id map and closed-stream memory in ``_engine_c_map.pxi``,
event construction in ``_engine_c_events.pxi``, RFC 9218 priority signals (the ``priority``
field, PRIORITY_UPDATE) in ``_engine_c_priority.pxi``, the frame handlers in
``_engine_c_recv.pxi``, the flood budgets in ``_engine_c_budgets.pxi`` and the send queues and
scheduler in ``_engine_c_send.pxi``. Live streams and remembered closed streams are found
through a C hash map keyed by stream id (about 3 ns a lookup, against about 40 ns for a dict,
which needs an int object per lookup). The hot path makes no Python object per frame or per
header field but the request's header list (``(bytes, bytes)`` tuples, sharing the decoder's
``bytes`` objects when it has them), DATA payloads and the event objects themselves: frames come
from ``FrameBuffer.next_frame`` (``_frames_c``), field blocks go through
``Decoder.decode_block`` into a C sink that validates each field with ``FieldBlockCheck``
(``_headers_c``), responses are encoded with ``Encoder``'s C API (``_hpack_c``) and framed into
a ``WriteBuffer``.

Deliberate choices, where h2 (the twin's base) and RFC 9113 allow or mandate something else
(each one is named in the tables or the handlers):

* Frames on closed streams are decided by how the stream ended (table in
  ``_engine_c_tables.pxi``): after our RST_STREAM every frame is ignored (DATA is credited to
  the connection window), after the peer's RST_STREAM a field block or DATA is a stream error
  STREAM_CLOSED (also when our response had completed: a RST_STREAM on a stream closed
  normally is remembered), after END_STREAM both ways a field block is a connection error
  STREAM_CLOSED and DATA a stream error STREAM_CLOSED.
* The send window of a stream closed normally is remembered: a WINDOW_UPDATE overflowing it
  is a stream error FLOW_CONTROL_ERROR whether or not the request had ended yet (§6.9.1).
* RST_STREAM, DATA and WINDOW_UPDATE on an idle stream are connection errors (§5.1, §6.4);
  PRIORITY naming its own stream is a stream error PROTOCOL_ERROR (§5.3.1; a connection
  error for an idle stream, which cannot be reset); a naked CONTINUATION is always a
  connection error PROTOCOL_ERROR (§6.10).
* The first frame after the client preface must be SETTINGS (§3.4); SETTINGS values are
  validated and applied in order (§6.5.3), SETTINGS_NO_RFC7540_PRIORITIES included
  (RFC 9218 §2.1: 0 or 1).
* A new stream over SETTINGS_MAX_CONCURRENT_STREAMS, or above our GOAWAY, is refused
  (RST_STREAM REFUSED_STREAM) before anything else is checked; its block is still decoded.
* Our SETTINGS_INITIAL_WINDOW_SIZE applies to the receive windows once acknowledged when it
  is below the default (a peer may send 65,535 bytes per stream until then); a larger one
  applies at once.
* Our GOAWAY never raises the last stream id of an earlier one (§6.8).

Shared with the twin (not decided by the RFC): ``DataReceived.flow_controlled_length`` counts
padding (the protocol hands it all back); after ``stop_reading`` DATA is credited at once and
not reported, nor is a reset of the stream, while trailers still are; a response chunk that
fits one frame and both windows while no other stream waits is framed at once, and a DATA
frame never joins two chunks (see ``_engine_c_send.pxi``).
"""
cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_CheckExact
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.stdint cimport INT64_MAX, int64_t, intptr_t, uint8_t, uint16_t, uint32_t
from libc.string cimport memcpy, memset

from kyoukai_h2fast._frames_c cimport (FLAG_ACK, FLAG_END_STREAM, FLAG_PRIORITY, FRAME_ALTSVC,
                                       FRAME_CONTINUATION, FRAME_DATA, FRAME_GOAWAY,
                                       FRAME_HEADER_LENGTH, FRAME_HEADERS, FRAME_PING,
                                       FRAME_PRIORITY, FRAME_PUSH_PROMISE, FRAME_RST_STREAM,
                                       FRAME_SETTINGS, FRAME_WINDOW_UPDATE, FrameBuffer,
                                       FrameView, WriteBuffer, write_frame_header)
from kyoukai_h2fast._headers_c cimport (PSEUDO_PROTOCOL, FieldBlockCheck,
                                        field_block_check_field, field_block_check_finish,
                                        field_block_check_init)
from kyoukai_h2fast._hpack_c cimport (HPACK_HUFFMAN, ByteBuffer, Decoder, Encoder, HeaderField,
                                      HeaderSink, byte_buffer_free, byte_buffer_reserve)

import time

from h2.exceptions import ProtocolError
from hpack.exceptions import HPACKError, OversizedHeaderListError

from kyoukai_h2fast.errors import ConnectionFailed, MalformedRequestError
from kyoukai_h2fast.http2.events import (ConnectionTerminated, DataReceived,
                                         ExtendedConnectReceived, PingAcknowledged,
                                         RequestReceived, ResponseSent, StreamDrained,
                                         StreamReset, TrailersReceived)

__all__ = ["Engine", "stream_transitions", "connection_transitions", "STREAM_STATES",
           "STREAM_INPUTS", "OUTCOMES", "CONNECTION_PHASES", "CONNECTION_INPUTS",
           "MAX_CLOSED_STREAMS"]

cdef enum:
    # RFC 9113 §7 error codes
    E_NO_ERROR = 0x0
    E_PROTOCOL_ERROR = 0x1
    E_FLOW_CONTROL_ERROR = 0x3
    E_STREAM_CLOSED = 0x5
    E_REFUSED_STREAM = 0x7
    E_COMPRESSION_ERROR = 0x9
    E_ENHANCE_YOUR_CALM = 0xB
    BLOCK_KEEP = 65536                # an encoded-block scratch larger than this is freed
    PLAN_KEEP = 1024                  # ... the DATA plan (entries), once written

# The event classes, looked up once.
cdef object _RequestReceived = RequestReceived
cdef object _ExtendedConnectReceived = ExtendedConnectReceived
cdef object _DataReceived = DataReceived
cdef object _TrailersReceived = TrailersReceived
cdef object _StreamReset = StreamReset
cdef object _ConnectionTerminated = ConnectionTerminated
cdef object _StreamDrained = StreamDrained
cdef object _ResponseSent = ResponseSent
cdef object _PingAcknowledged = PingAcknowledged
cdef object _ConnectionFailed = ConnectionFailed
cdef object _MalformedRequestError = MalformedRequestError

MAX_CLOSED_STREAMS = CLOSED_MEMORY

include "_engine_c_tables.pxi"
include "_engine_c_map.pxi"
include "_engine_c_events.pxi"


@cython.freelist(64)
@cython.final
cdef class _Stream:
    """One live stream (layout in ``_engine_c.pxd``)."""
    pass


cdef inline int64_t _rw_consume(RecvWindow* w, int64_t size) noexcept:
    """h2's ``window_consumed``; returns the window left (negative: a flow-control error)."""
    w.current -= size
    return w.current


cdef inline int64_t _rw_process(RecvWindow* w, int64_t size) noexcept:
    """h2's ``WindowManager.process_bytes`` + ``_maybe_update_window``: the WINDOW_UPDATE
    increment to send now for ``size`` more consumed bytes, or 0 (batched)."""
    cdef int64_t increment = 0, max_increment, quarter
    w.processed += size
    if w.processed == 0:
        return 0
    max_increment = w.max_size - w.current
    quarter = w.max_size // 4
    if ((w.current == 0 and w.processed > (1024 if 1024 < quarter else quarter))
            or w.processed >= w.max_size // 2):
        increment = w.processed if w.processed < max_increment else max_increment
        w.processed = 0
    w.current += increment
    return increment


cdef inline Py_ssize_t _buffer_length(object data) except -1:
    cdef Py_buffer view
    if PyBytes_CheckExact(data):
        return PyBytes_GET_SIZE(data)
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    PyBuffer_Release(&view)
    return view.len


@cython.final
cdef class Engine:
    """Server-side HTTP/2 connection state: bytes in, events out, bytes to send. No I/O.

    The ``Engine`` contract of :mod:`kyoukai_h2fast.contracts`, compiled. Built from a
    :class:`~kyoukai_h2fast.config.ServerConfig`.
    """

    def __cinit__(self):
        self._send_events = []
        self._ctrl = WriteBuffer()
        self._encoder = Encoder()
        self._decoder = Decoder()
        self._frames = FrameBuffer(True)
        self._phase = P_PREFACE
        self._conn_recv.max_size = DEFAULT_WINDOW
        self._conn_recv.current = DEFAULT_WINDOW
        self._conn_send = DEFAULT_WINDOW
        self._peer_initial_window = DEFAULT_WINDOW
        self._peer_max_frame_size = DEFAULT_MAX_FRAME_SIZE

    def __init__(self, config):
        self._config = config
        self._max_streams = config.max_concurrent_streams
        self._local_initial_window = config.stream_window
        self._connection_window = config.connection_window
        _rate_init(&self._rate_resets, config.max_resets_per_10s)
        _rate_init(&self._rate_pings, config.max_pings_per_10s)
        _rate_init(&self._rate_settings, config.max_settings_per_10s)
        _rate_init(&self._rate_empty, config.max_empty_frames_per_10s)
        self._max_ctrl = config.max_queued_control_frames
        self._header_table_size = config.header_table_size
        # RFC 8441 §3: extended CONNECT only when advertised (in force at once: 0 -> 1 only).
        self._connect_protocol = bool(config.ws_http2)
        # A peer may use the default window until it acknowledged ours (RFC 9113 §6.9.2).
        self._recv_initial = (self._local_initial_window
                              if self._local_initial_window > DEFAULT_WINDOW else DEFAULT_WINDOW)
        self._frames.max_frame_size = config.max_frame_size
        # One field block may not exceed what it could decode to (+ a few prefix bytes).
        self._frames.max_header_block_size = config.max_header_list_size + 1024
        self._decoder.max_header_list_size = config.max_header_list_size

    def __dealloc__(self):
        cdef Py_ssize_t u
        _drop_streams(self)
        idmap_free(&self._live)
        idmap_free(&self._closed_index)
        PyMem_Free(self._closed)
        PyMem_Free(self._idle)
        for u in range(N_URGENCIES):
            if self._groups[u] != NULL:
                Py_DECREF(<object>self._groups[u])
                self._groups[u] = NULL
        PyMem_Free(self._plan)
        byte_buffer_free(&self._block)
        byte_buffer_free(&self._pend_buf)

    # == lifecycle =================================================================================
    def initiate(self):
        """Queue the server preface: our SETTINGS, then a connection WINDOW_UPDATE when the
        configured connection window is larger than 65,535."""
        cdef int64_t extra
        if self._initiated or self._phase == P_CLOSED:
            return
        self._initiated = True
        config = self._config
        # h2's initial SETTINGS frame: every setting it knows, in its order, then
        # SETTINGS_NO_RFC7540_PRIORITIES = 1 (RFC 9218 §2.1: we schedule by RFC 9218 signals).
        self._ctrl.append_settings({0x1: 4096, 0x2: 0, 0x4: config.stream_window,
                                    0x5: config.max_frame_size,
                                    0x8: 1 if self._connect_protocol else 0,
                                    0x3: config.max_concurrent_streams,
                                    0x6: config.max_header_list_size, 0x9: 1}, False)
        self._pending_acks = 1
        if self._header_table_size != 4096:
            self._ctrl.append_settings({0x1: self._header_table_size}, False)
            self._pending_acks = 2
            self._table_size_ack = 2
        extra = self._connection_window - DEFAULT_WINDOW
        if extra > 0:
            self._ctrl.append_window_update(0, <uint32_t>extra)
            self._conn_recv.current += extra
            if self._conn_recv.current > self._conn_recv.max_size:
                self._conn_recv.max_size = self._conn_recv.current
        self._ctrl_queued = 0

    def receive(self, data, Py_ssize_t max_frames=-1):
        """Feed bytes from the peer (the client preface included); return the events of at
        most ``max_frames`` frames (negative: all; the rest stays buffered, see
        :attr:`input_pending`).

        Raises :class:`~kyoukai_h2fast.errors.ConnectionFailed` on a connection error, after
        queueing GOAWAY; the engine ignores every call from then on.
        """
        cdef FrameView view
        cdef list events = []
        cdef Py_ssize_t count = 0
        cdef Py_ssize_t size
        if self._phase == P_CLOSED:
            return events
        self._input_pending = False
        self._pend_event = None
        try:
            size = len(data)
            if size:
                self._frames.add_data(data)
                self._bytes_received += size
            while self._frames.next_frame(&view):
                _frame_dispatch(self, &view, events)
                if self._frame_resets or self._ctrl_queued > self._max_ctrl:
                    _after_frame(self)
                count += 1
                if count == max_frames:
                    self._input_pending = True
                    break
        except ProtocolError as e:     # the frame layer's errors (h2.exceptions)
            self._pend_event = None
            self._fail(int(e.error_code), str(e) or type(e).__name__)
        except BaseException:
            self._pend_event = None
            raise
        if self._pend_event is not None:
            _pend_close(self)
        return events

    @property
    def input_pending(self):
        """True when the last :meth:`receive` stopped at ``max_frames``."""
        return self._input_pending and self._phase != P_CLOSED

    def output_drained(self):
        """Everything handed out by :meth:`data_to_send` was written: the control frames
        queued so far no longer count against ``max_queued_control_frames``."""
        self._ctrl_queued = 0

    def data_to_send(self, Py_ssize_t max_data=-1):
        """Take the bytes to write: every queued control frame and header block, then DATA
        from the send queues, at most ``max_data`` payload bytes (negative: no bound but the
        windows). Records send events (see :meth:`send_events`)."""
        out = _take_output(self, max_data)
        self._bytes_sent += len(out)
        return out

    def send_events(self):
        """Take the send-side events recorded since the last call (``StreamDrained``,
        ``ResponseSent``), in the order they happened."""
        events = self._send_events
        if not events:
            return []
        self._send_events = []
        return events

    @property
    def wants_write(self):
        """True when :meth:`data_to_send` would return bytes now."""
        cdef Py_ssize_t u
        cdef PyObject* first
        cdef PyObject* p
        if self._ctrl._len:
            return True
        if self._phase == P_CLOSED or self._rotating == 0:
            return False
        for u in range(N_URGENCIES):
            first = self._rings[u]
            p = first
            while p != NULL:
                if p == self._groups[u]:
                    if _any_can_send(self, self._seq[u]):
                        return True
                elif _any_can_send(self, p, True):
                    return True
                p = (<_Stream>p).rot_next
                if p == first:
                    break
        return False

    def goaway(self, error_code=E_NO_ERROR, debug=b"", last_stream_id=None):
        """Queue GOAWAY (default last stream id: the highest the peer opened) and refuse
        streams above it with REFUSED_STREAM; streams up to it may finish (§6.8). Returns
        the last stream id sent (never more than an earlier GOAWAY's)."""
        cdef uint32_t last
        cdef Py_buffer view
        if self._phase == P_CLOSED:
            return self._goaway_last if self._goaway_sent else self._highest
        if last_stream_id is None:
            last = self._highest
        else:
            last = <uint32_t>min(max(int(last_stream_id), 0), MAX_WINDOW)
        if self._goaway_sent and last > self._goaway_last:
            last = self._goaway_last
        PyObject_GetBuffer(debug, &view, PyBUF_SIMPLE)
        try:
            self._ctrl.append_goaway(last, <uint32_t>error_code,
                                     <const unsigned char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)
        self._goaway_sent = True
        self._goaway_last = last
        return last

    def send_ping(self, opaque_data):
        """Queue a PING (§6.7) carrying ``opaque_data`` (exactly 8 bytes, else ValueError); the
        peer's ACK of any PING is reported as ``PingAcknowledged``. Ignored after a connection
        error."""
        if not PyBytes_Check(opaque_data) or PyBytes_GET_SIZE(opaque_data) != 8:
            raise ValueError(f"PING opaque data must be 8 bytes, got {opaque_data!r}")
        if self._phase != P_CLOSED:
            self._ctrl.append_ping(<const unsigned char*>PyBytes_AS_STRING(opaque_data), False)

    # == streams ===================================================================================
    def send_headers(self, uint32_t stream_id, list headers, bint end_stream):
        """Queue a response header block (``:status`` first), framed at once. A ``1xx`` block
        may precede the final one (never with ``end_stream``). Returns False when the stream
        is not open for sending (then nothing is queued)."""
        return _send_headers(self, stream_id, headers, end_stream) == 1

    def queue_data(self, uint32_t stream_id, data, bint end_stream):
        """Append ``data`` (may be empty; kept by reference) to the stream's send queue;
        ``end_stream``: it is the last of the response. Returns False when the stream is not
        open for sending."""
        return _queue_data(self, stream_id, data, end_stream) == 1

    def send_trailers(self, uint32_t stream_id, list headers):
        """Queue a trailer block with END_STREAM after the response's DATA (RFC 9113 §8.1):
        only when the stream's send queue is empty (wait for ``StreamDrained``) and the
        response has not ended. Returns False when nothing was queued."""
        return _send_trailers(self, stream_id, headers) == 1

    def queued(self, uint32_t stream_id):
        """Bytes in the stream's send queue not yet written (0 for unknown streams)."""
        cdef _Stream stream = self._get(stream_id)
        return stream.queued if stream is not None else 0

    @property
    def queued_total(self):
        """Bytes in all send queues of the connection, not yet written."""
        return self._queued_total

    @property
    def bytes_received(self):
        """Bytes given to :meth:`receive` so far."""
        return self._bytes_received

    @property
    def bytes_sent(self):
        """Bytes returned by :meth:`data_to_send` so far."""
        return self._bytes_sent

    def acknowledge(self, uint32_t stream_id, Py_ssize_t size):
        """The app consumed ``size`` body bytes of ``stream_id``: reopen the windows for them
        (the connection window also for a stream that is gone). Batched like h2."""
        if size <= 0 or self._phase == P_CLOSED:
            return
        self._credit(self._get(stream_id), size)

    def stop_reading(self, uint32_t stream_id, Py_ssize_t max_bytes):
        """Further request body of ``stream_id`` is credited at once and not reported; past
        ``max_bytes`` more (flow-controlled) bytes the stream is reset with NO_ERROR (RFC 9113
        §8.1). The protocol is done with the stream: no StreamReset is reported for it. When
        the peer ends the request, a PING (opaque data all zero) wakes clients that wait for
        the server before they see the exchange is over."""
        cdef _Stream stream = self._get(stream_id)
        if stream is None or self._phase == P_CLOSED:
            return
        stream.stop_reading = True
        stream.discard_left = max_bytes if max_bytes > 0 else 0

    def reset_stream(self, uint32_t stream_id, uint32_t error_code):
        """Queue RST_STREAM, drop the stream's send queue and forget it (no event). Ignored
        for a stream that is not live."""
        cdef _Stream stream = self._get(stream_id)
        cdef Transition t
        if stream is None or self._phase == P_CLOSED:
            return
        t = STREAM_TABLE[stream.state][I_SEND_RST_STREAM]
        if t.outcome != O_OK:
            return
        self._queue_rst(stream_id, error_code, False)
        self._free(stream, t.next_state)

    def set_priority(self, uint32_t stream_id, int urgency, bint incremental):
        """RFC 9218: the scheduling parameters of ``stream_id``'s response from now on
        (urgency 0..7, lower first; other values are ignored)."""
        cdef _Stream stream = self._get(stream_id)
        if stream is None or self._phase == P_CLOSED or not 0 <= urgency < N_URGENCIES:
            return
        self._reprioritize(stream, 2 * urgency + incremental)

    # == introspection (tests, debugging) ==========================================================
    @property
    def open_streams(self):
        """Live streams (counted against SETTINGS_MAX_CONCURRENT_STREAMS)."""
        return self._open_streams

    @property
    def closed_streams_remembered(self):
        """Closed streams whose ending is remembered (at most ``MAX_CLOSED_STREAMS``)."""
        return self._closed_count

    @property
    def priorities_remembered(self):
        """PRIORITY_UPDATEs kept for streams not yet open (RFC 9218 §7; bounded)."""
        return self._idle_count

    @property
    def highest_stream_id(self):
        """The highest stream id the peer opened (0: none yet); requests on the connection
        are about ``(highest_stream_id + 1) // 2``."""
        return self._highest

    def stream_state(self, uint32_t stream_id):
        """The state name of ``stream_id`` as the tables see it (``STREAM_STATES``)."""
        cdef _Stream stream = self._get(stream_id)
        cdef ClosedStream* memory
        if stream is not None:
            return _STATE_NAMES[stream.state]
        return _STATE_NAMES[self._state_of(stream_id, &memory)]

    @property
    def phase(self):
        """The connection phase name (``CONNECTION_PHASES``)."""
        return _PHASE_NAMES[self._phase]

    # == shared helpers ============================================================================
    cdef _Stream _get(self, uint32_t stream_id):
        cdef intptr_t p = idmap_get(&self._live, stream_id)
        if p == 0:
            return None
        return <_Stream><PyObject*>p

    cdef uint8_t _state_of(self, uint32_t stream_id, ClosedStream** memory) noexcept:
        """State of a stream that is not live; ``memory`` gets its record (or NULL)."""
        memory[0] = NULL
        if stream_id & 1 == 0 or stream_id > self._highest:
            return S_IDLE       # even ids are ours to open, and we never do
        memory[0] = _closed_find(self, stream_id)
        if memory[0] != NULL:
            return memory[0].state
        return S_CLOSED_UNKNOWN

    cdef int _remember(self, uint32_t stream_id, uint8_t state, int64_t window) except -1:
        return _closed_add(self, stream_id, state, window)

    cdef int _free(self, _Stream stream, uint8_t final_state) except -1:
        """Forget a live stream (now in ``final_state``): drop its queue, remember how it
        ended. The caller holds a reference."""
        cdef PyObject* owned
        if stream.in_rotation:
            self._ring_remove(stream)
        self._queued_total -= stream.queued
        stream.queued = 0
        stream.chunks = None
        stream.state = final_state
        owned = <PyObject*>idmap_pop(&self._live, stream.stream_id)
        self._open_streams -= 1
        self._remember(stream.stream_id, final_state, stream.send_window)
        if owned != NULL:
            Py_DECREF(<object>owned)
        return 0

    cdef int _credit(self, _Stream stream, int64_t size) except -1:
        """Bytes consumed (by the app, or discarded by the engine): batched WINDOW_UPDATEs
        for the connection, then for ``stream`` if it is live (h2's order)."""
        cdef int64_t increment = _rw_process(&self._conn_recv, size)
        if increment:
            self._ctrl.append_window_update(0, <uint32_t>increment)
            self._ctrl_queued += 1
        if stream is not None:
            increment = _rw_process(&stream.recv, size)
            if increment:
                self._ctrl.append_window_update(stream.stream_id, <uint32_t>increment)
                self._ctrl_queued += 1
        return 0

    cdef int _queue_rst(self, uint32_t stream_id, uint32_t error_code, bint provoked) except -1:
        """RST_STREAM into the output; ``provoked``: a frame of the peer's caused it (it counts
        with the peer's own resets, see _engine_c_budgets.pxi)."""
        self._ctrl.append_rst_stream(stream_id, error_code)
        self._ctrl_queued += 1
        if provoked:
            self._frame_resets += 1
        return 0

    cdef int _stream_error(self, _Stream stream, uint32_t stream_id, uint32_t error_code,
                           bint notify, list events, str reason=None) except -1:
        """RST_STREAM (RFC 9113 §5.4.2); the stream ends in RESET_LOCAL. ``notify``: the
        protocol knows the stream (it is live) and gets a StreamReset (saying ``reason``)."""
        self._queue_rst(stream_id, error_code, True)
        if stream is not None:
            self._free(stream, S_RESET_LOCAL)
            if notify and not stream.stop_reading:
                events.append(_stream_reset(stream_id, error_code, False, reason))
        else:
            self._remember(stream_id, S_RESET_LOCAL, 0)
        return 0

    cdef int _ring_add(self, _Stream stream) except -1:
        """Put ``stream`` in the scheduler (see ``_engine_c_send.pxi``): an incremental one at
        the tail of its urgency's ring; another in its urgency's sequence by stream id, with
        the sequence's group marker at the tail of the ring if it was not in it."""
        cdef uint8_t u = stream.urgency
        cdef _Stream group
        if stream.incremental:
            _ring_link(&self._rings[u], stream)
        else:
            _seq_insert(self, u, stream)
            if self._groups[u] == NULL:
                group = _Stream.__new__(_Stream)
                Py_INCREF(group)
                self._groups[u] = <PyObject*>group
            group = <_Stream>self._groups[u]
            if not group.in_rotation:
                _ring_link(&self._rings[u], group)
                group.in_rotation = True
        stream.in_rotation = True
        self._rotating += 1
        return 0

    cdef int _ring_remove(self, _Stream stream) noexcept:
        """Take ``stream`` out of the scheduler (its group marker too, with the last stream
        of its sequence)."""
        cdef uint8_t u = stream.urgency
        cdef _Stream group
        if not stream.in_rotation:
            return 0
        if stream.incremental:
            _ring_unlink(&self._rings[u], stream)
        else:
            _seq_unlink(self, u, stream)
            if self._seq[u] == NULL:
                group = <_Stream>self._groups[u]
                _ring_unlink(&self._rings[u], group)
                group.in_rotation = False
        stream.in_rotation = False
        self._rotating -= 1
        return 0

    cdef int _reprioritize(self, _Stream stream, int priority) except -1:
        """New scheduling parameters for ``stream`` (``2 * urgency + incremental``): it moves
        to its new place when it is in the scheduler (and keeps its place when they are the
        same)."""
        cdef uint8_t urgency = <uint8_t>(priority >> 1)
        cdef bint incremental = priority & 1
        if stream.urgency == urgency and stream.incremental == incremental:
            return 0
        if stream.in_rotation:
            self._ring_remove(stream)
            stream.urgency = urgency
            stream.incremental = incremental
            self._ring_add(stream)
        else:
            stream.urgency = urgency
            stream.incremental = incremental
        return 0

    cdef bint _sendable(self, _Stream stream) noexcept:
        """Belongs in a ring: bytes and its own window, or END_STREAM alone pending."""
        if stream.queued == 0:
            return stream.end_queued
        return stream.send_window > 0

    cdef int _fail(self, uint32_t error_code, str message, bytes debug=b"",
                   str budget=None) except -1:
        """A connection error (RFC 9113 §5.4.1): queue GOAWAY, close, raise ConnectionFailed
        (``budget``: the flood budget crossed, if that is why)."""
        cdef uint32_t last = self._highest
        if self._goaway_sent and last > self._goaway_last:
            last = self._goaway_last
        self._ctrl.append_goaway(last, error_code, <const unsigned char*>PyBytes_AS_STRING(debug),
                                 PyBytes_GET_SIZE(debug))
        self._goaway_sent = True
        self._goaway_last = last
        self._phase = CONN_TABLE[self._phase][CI_CONNECTION_ERROR].next_state
        _drop_streams(self)
        # Nothing is read any more: let go of the received bytes (FrameBuffer keeps the object
        # given to add_data until it has been read to the end).
        self._frames = FrameBuffer(True)
        raise _ConnectionFailed(error_code, message, budget)


cdef int _drop_streams(Engine self) except -1:
    """Release every live stream (connection closed or engine freed): no events."""
    cdef Py_ssize_t i
    cdef PyObject* p
    cdef IdMap* live = &self._live
    for i in range(N_URGENCIES):
        self._rings[i] = self._seq[i] = self._seq_tail[i] = NULL
        if self._groups[i] != NULL:
            (<_Stream>self._groups[i]).in_rotation = False
            (<_Stream>self._groups[i]).rot_next = (<_Stream>self._groups[i]).rot_prev = NULL
    self._rotating = 0
    self._queued_total = 0
    for i in range(live.capacity):
        if live.keys[i]:
            p = <PyObject*>live.values[i]
            live.keys[i] = 0
            (<_Stream>p).in_rotation = False
            (<_Stream>p).chunks = None
            Py_DECREF(<object>p)
    live.count = 0
    self._open_streams = 0
    return 0


include "_engine_c_budgets.pxi"
include "_engine_c_priority.pxi"
include "_engine_c_recv.pxi"
include "_engine_c_send.pxi"
