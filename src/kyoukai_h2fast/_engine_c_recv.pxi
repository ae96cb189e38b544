# Included by _engine_c.pyx: the receive side, one handler per frame type (RFC 9113 §6).
#
# Each handler finds the stream's state (live stream, remembered closed stream, or derived from
# the id: idle above the highest id opened, CLOSED_UNKNOWN below it), looks the transition up
# in STREAM_TABLE and acts on its outcome; the arithmetic (windows, content-length, limits)
# is done here. Field blocks are always decoded, whatever happens to the stream, so that the
# HPACK state stays in sync with the peer's (RFC 9113 §4.3); blocks of requests the
# protocol will see are validated field by field while they are decoded, and turned into the
# request's header list at the same time.

cdef const unsigned char* _ZERO_PING = b"\0\0\0\0\0\0\0\0"


cdef struct _BlockCtx:
    PyObject* engine              # borrowed: where the reason of a malformation goes
    PyObject* headers             # the list to fill, or NULL (block only decoded)
    bint check_fields             # validate with ``check``
    bint malformed                # a field broke RFC 9113 §8.2/§8.3 (then nothing is built)
    FieldBlockCheck check
    PrioritySignal priority       # the request's ``priority`` field (_engine_c_priority.pxi)


cdef int _on_field(void* raw, HeaderField* f) except -1:
    """HeaderSink: validate one decoded field, append ``(name, value)`` to the list."""
    cdef _BlockCtx* ctx = <_BlockCtx*>raw
    if ctx.malformed:
        return 0
    if ctx.check_fields:
        try:
            field_block_check_field(&ctx.check, <const unsigned char*>f.name, f.name_len,
                                    <const unsigned char*>f.value, f.value_len)
        except MalformedRequestError as e:
            ctx.malformed = True   # keep decoding (HPACK state), stop building
            (<Engine>ctx.engine)._malformed = str(e)
            return 0
    if ctx.headers != NULL:
        if f.name_len == 8 and memcmp(f.name, b"priority", 8) == 0:
            _signal_line(&ctx.priority, <const unsigned char*>f.value, f.value_len)
        name = (<object>f.name_obj if f.name_obj != NULL
                else PyBytes_FromStringAndSize(f.name, f.name_len))
        value = (<object>f.value_obj if f.value_obj != NULL
                 else PyBytes_FromStringAndSize(f.value, f.value_len))
        (<list>ctx.headers).append((name, value))
    return 0


cdef Py_ssize_t _finish_block(_BlockCtx* ctx) except -2:
    """Whole-block rules; the declared content length (or -1), or -1 with ``malformed``."""
    if ctx.malformed or not ctx.check_fields:
        return -1
    try:
        return field_block_check_finish(&ctx.check)
    except MalformedRequestError as e:
        ctx.malformed = True
        (<Engine>ctx.engine)._malformed = str(e)
        return -1


cdef int _decode(Engine self, FrameView* v, _BlockCtx* ctx) except -1:
    """Decode the field block of ``v`` through ``ctx``. HPACK errors are connection errors:
    COMPRESSION_ERROR (§4.3), or ENHANCE_YOUR_CALM for a list over our limit (§10.5.1)."""
    cdef HeaderSink sink
    sink.on_header = _on_field
    sink.ctx = <void*>ctx
    try:
        self._decoder.decode_block(v.data, v.data_length, &sink)
    except OversizedHeaderListError as e:
        self._fail(E_ENHANCE_YOUR_CALM, f"header list over the limit: {e}")
    except (HPACKError, IndexError, TypeError, ValueError, UnicodeDecodeError) as e:
        self._fail(E_COMPRESSION_ERROR, f"cannot decode field block: {e}")
    return 0


cdef inline void _block_ctx(_BlockCtx* ctx, Engine engine, object headers, bint check,
                            bint trailers) noexcept:
    ctx.engine = <PyObject*>engine
    ctx.headers = <PyObject*>headers if headers is not None else NULL
    ctx.check_fields = check
    ctx.malformed = False
    _signal_init(&ctx.priority, trailers)
    if check:
        field_block_check_init(&ctx.check, trailers)


cdef int _outcome_not_live(Engine self, uint32_t sid, Transition t, uint32_t stream_error,
                           str what) except -1:
    """Act on the outcome of a frame on a stream that is not live."""
    cdef uint8_t outcome = t.outcome
    if outcome == O_CONN_PROTOCOL:
        return self._fail(E_PROTOCOL_ERROR,
                          f"{what} on stream {sid} ({_STATE_NAMES[t.next_state]})")
    if outcome == O_CONN_STREAM_CLOSED:
        return self._fail(E_STREAM_CLOSED, f"{what} on closed stream {sid}")
    if outcome == O_STREAM_CLOSED or outcome == O_STREAM_PROTOCOL:
        self._queue_rst(sid, E_STREAM_CLOSED if outcome == O_STREAM_CLOSED else stream_error,
                        True)
        self._remember(sid, t.next_state, 0)
    return 0


cdef int _end_remote(Engine self, _Stream stream, uint8_t next_state) except -1:
    """The peer ended the request (END_STREAM): half-closed (remote), or closed and freed."""
    if next_state == S_CLOSED:
        self._free(stream, S_CLOSED)
    else:
        stream.state = next_state
    return 0


# ---- HEADERS (§6.2, §8.1) ------------------------------------------------------------------------
cdef int _recv_headers(Engine self, FrameView* v, list events) except -1:
    cdef uint32_t sid = v.stream_id
    cdef bint end = v.flags & FLAG_END_STREAM
    cdef uint8_t input = I_RECV_HEADERS_END if end else I_RECV_HEADERS
    cdef bint self_dependent = (v.flags & FLAG_PRIORITY) and v.depends_on == sid
    cdef _Stream stream = self._get(sid)
    cdef _BlockCtx ctx
    cdef Transition t
    cdef ClosedStream* memory
    cdef Py_ssize_t content_length
    cdef bint refuse
    cdef object headers = None
    cdef int remembered = -1
    if stream is not None:                                   # trailers (§8.1)
        t = STREAM_TABLE[stream.state][input]
        if t.outcome == O_OK:
            headers = []
        _block_ctx(&ctx, self, headers, t.outcome == O_OK, True)
        _decode(self, v, &ctx)
        if t.outcome == O_STREAM_CLOSED:
            return self._stream_error(stream, sid, E_STREAM_CLOSED, True, events)
        if t.outcome != O_OK:
            return self._stream_error(stream, sid, E_PROTOCOL_ERROR, True, events,
                                      "trailers without END_STREAM (PROTOCOL_ERROR)")
        if self_dependent:
            return self._stream_error(stream, sid, E_PROTOCOL_ERROR, True, events,
                                      "the stream depends on itself (PROTOCOL_ERROR)")
        _finish_block(&ctx)
        if ctx.malformed:
            return self._stream_error(stream, sid, E_PROTOCOL_ERROR, True, events,
                                      f"malformed trailers: {self._malformed}")
        if stream.content_length >= 0 and stream.content_length != stream.received:
            return self._stream_error(
                stream, sid, E_PROTOCOL_ERROR, True, events,
                f"content-length mismatch ({stream.content_length} declared, "
                f"{stream.received} received before the trailers)")
        if headers is not None:
            events.append(_event(&_L_TRAILERS, _TrailersReceived, sid, headers))
        return _end_remote(self, stream, t.next_state)
    t = STREAM_TABLE[self._state_of(sid, &memory)][input]
    if sid > self._highest and sid & 1:                      # a new stream
        refuse = ((self._goaway_sent and sid > self._goaway_last)
                  or self._open_streams >= self._max_streams)
        if not refuse and not self_dependent:
            headers = []
        _block_ctx(&ctx, self, headers, headers is not None, False)
        _decode(self, v, &ctx)
        self._highest = sid
        if self._idle_count:
            remembered = _idle_take(self, sid)
        if refuse:
            return self._stream_error(None, sid, E_REFUSED_STREAM, False, events)
        if self_dependent:
            return self._stream_error(None, sid, E_PROTOCOL_ERROR, False, events)
        content_length = _finish_block(&ctx)
        if ctx.malformed or (end and content_length > 0):    # §8.1.1: malformed
            return self._stream_error(None, sid, E_PROTOCOL_ERROR, False, events)
        if ctx.check.pseudo_seen & PSEUDO_PROTOCOL:           # extended CONNECT (RFC 8441)
            if not self._connect_protocol:                   # §3: malformed without it
                self._malformed = (":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL "
                                   "(RFC 8441 §3)")
                return self._stream_error(None, sid, E_PROTOCOL_ERROR, False, events)
            stream = _new_stream(self, sid, t.next_state, content_length)
            _open_priority(self, stream, &ctx.priority, remembered)   # (scheduled as any)
            events.append(_ExtendedConnectReceived(sid, headers, end, _protocol_of(headers)))
            return 0
        stream = _new_stream(self, sid, t.next_state, content_length)
        events.append(_event(&_L_REQUEST, _RequestReceived, sid, headers, end, content_length,
                             _open_priority(self, stream, &ctx.priority, remembered)))
        return 0
    _block_ctx(&ctx, self, None, False, False)
    _decode(self, v, &ctx)
    if sid & 1 == 0:
        return self._fail(E_PROTOCOL_ERROR, f"HEADERS on stream {sid}: not a client stream id")
    return _outcome_not_live(self, sid, t, E_PROTOCOL_ERROR, "HEADERS")


cdef object _protocol_of(list headers):
    """The ``:protocol`` value of a validated request block (pseudo-headers come first)."""
    for name, value in headers:
        if name == b":protocol":
            return value
    return None


cdef _Stream _new_stream(Engine self, uint32_t sid, uint8_t state, Py_ssize_t content_length):
    cdef _Stream stream = _Stream.__new__(_Stream)
    stream.stream_id = sid
    stream.state = state
    stream.urgency = DEFAULT_URGENCY
    stream.send_window = self._peer_initial_window
    stream.recv.max_size = self._recv_initial
    stream.recv.current = self._recv_initial
    stream.content_length = content_length
    Py_INCREF(stream)
    try:
        idmap_put(&self._live, sid, <intptr_t><PyObject*>stream)
    except MemoryError:
        Py_DECREF(stream)
        raise
    self._open_streams += 1
    return stream


# ---- DATA (§6.1) ---------------------------------------------------------------------------------
cdef int _recv_data(Engine self, FrameView* v, list events) except -1:
    cdef uint32_t sid = v.stream_id
    cdef bint end = v.flags & FLAG_END_STREAM
    cdef int64_t flow = v.length          # payload + Pad Length field + padding (§6.9.1)
    cdef Py_ssize_t n = v.data_length
    cdef _Stream stream
    cdef Transition t
    cdef ClosedStream* memory
    # The connection window counts every DATA frame first, whatever its stream (§6.9).
    if _rw_consume(&self._conn_recv, flow) < 0:
        return self._fail(E_FLOW_CONTROL_ERROR, "DATA beyond the connection window")
    stream = self._get(sid)
    if stream is None:
        t = STREAM_TABLE[self._state_of(sid, &memory)][I_RECV_DATA_END if end else I_RECV_DATA]
        if t.outcome == O_CONN_PROTOCOL:
            return _outcome_not_live(self, sid, t, 0, "DATA")
        self._credit(None, flow)           # nobody will read it (§5.1, §6.9)
        return _outcome_not_live(self, sid, t, 0, "DATA")
    t = STREAM_TABLE[stream.state][I_RECV_DATA_END if end else I_RECV_DATA]
    if t.outcome != O_OK:                  # half-closed (remote): STREAM_CLOSED (§5.1)
        self._credit(None, flow)
        return self._stream_error(stream, sid, E_STREAM_CLOSED, True, events)
    if _rw_consume(&stream.recv, flow) < 0:
        return self._fail(E_FLOW_CONTROL_ERROR, f"DATA beyond the window of stream {sid}")
    stream.received += n
    if stream.content_length >= 0 and (
            stream.received > stream.content_length
            or (end and stream.received != stream.content_length)):   # §8.1.1
        self._stream_error(stream, sid, E_PROTOCOL_ERROR, True, events,
                           f"content-length mismatch ({stream.content_length} declared, "
                           f"{stream.received} received)")
        self._credit(None, flow)
        return 0
    if end:
        _end_remote(self, stream, t.next_state)
    if stream.stop_reading:                # nobody reads it: credited now, not reported
        self._credit(stream if stream.state != S_CLOSED else None, flow)
        stream.discard_left -= flow
        if end:
            # Some clients (curl 7.88) that had the whole response before they finished the
            # upload wait for anything from the server before they see the exchange is over.
            self._ctrl.append_ping(_ZERO_PING, False)
        elif stream.discard_left < 0:      # enough: end the request (§8.1)
            self._queue_rst(sid, E_NO_ERROR, True)
            self._free(stream, S_RESET_LOCAL)
        return 0
    # The protocol hands ``flow`` back with acknowledge() (padding included).
    if self._pend_event is not None:
        if self._pend_sid == sid and self._pend_index == len(events) - 1:
            _pend_add(self, v.data, n, flow, end)    # one more frame of the same run
            return 0
        _pend_close(self)
    event = _event(&_L_DATA, _DataReceived, sid,
                   PyBytes_FromStringAndSize(<const char*>v.data, n), flow, end)
    events.append(event)
    if not end:                # more DATA of this stream may follow in this receive()
        self._pend_event = event
        self._pend_index = len(events) - 1
        self._pend_sid = sid
        self._pend_flow = flow
    return 0


# Consecutive DATA frames of one stream handled by one receive(), with no other event between
# them, are reported as one DataReceived: the payloads joined, the flow-controlled lengths
# added, end_stream from the last one (the twin does the same). A 1 MiB upload read 256 KiB at
# a time is then 4 events instead of 64; the payload is copied once more (into _pend_buf),
# which costs less than the Python work of the events saved.
cdef int _pend_add(Engine self, const unsigned char* data, Py_ssize_t n, int64_t flow,
                   bint end) except -1:
    cdef ByteBuffer* buf = &self._pend_buf
    cdef bytes first
    if not self._pend_joined:
        first = self._pend_event.data
        buf.length = 0
        byte_buffer_reserve(buf, PyBytes_GET_SIZE(first) + n)
        memcpy(buf.data, PyBytes_AS_STRING(first), PyBytes_GET_SIZE(first))
        buf.length = PyBytes_GET_SIZE(first)
        self._pend_joined = True
    byte_buffer_reserve(buf, n)
    memcpy(buf.data + buf.length, data, n)
    buf.length += n
    self._pend_flow += flow
    if end:
        self._pend_event.end_stream = True
        _pend_close(self)
    return 0


cdef int _pend_close(Engine self) except -1:
    """The open DataReceived is complete: its joined payload and flow-controlled length."""
    cdef ByteBuffer* buf = &self._pend_buf
    event = self._pend_event
    self._pend_event = None
    if self._pend_joined:
        self._pend_joined = False
        event.data = PyBytes_FromStringAndSize(<const char*>buf.data, buf.length)
        event.flow_controlled_length = self._pend_flow
        buf.length = 0
        if buf.capacity > 1 << 20:             # a large run: give the memory back
            byte_buffer_free(buf)
    return 0


# ---- WINDOW_UPDATE (§6.9) ------------------------------------------------------------------------
cdef int _recv_window_update(Engine self, FrameView* v, list events) except -1:
    cdef uint32_t sid = v.stream_id
    cdef int64_t increment = v.window_increment
    cdef _Stream stream
    cdef Transition t
    cdef ClosedStream* memory
    if sid == 0:
        if self._conn_send + increment > MAX_WINDOW:
            return self._fail(E_FLOW_CONTROL_ERROR, "WINDOW_UPDATE overflows the connection window")
        self._conn_send += increment
        return 0
    stream = self._get(sid)
    if stream is not None:
        if stream.send_window + increment > MAX_WINDOW:        # §6.9.1: a stream error
            return self._stream_error(stream, sid, E_FLOW_CONTROL_ERROR, True, events)
        stream.send_window += increment
        if not stream.in_rotation and self._sendable(stream):
            self._ring_add(stream)
        return 0
    t = STREAM_TABLE[self._state_of(sid, &memory)][I_RECV_WINDOW_UPDATE]
    if t.outcome == O_OK and memory != NULL:    # closed by END_STREAM: the window still counts
        if memory.window + increment > MAX_WINDOW:
            self._queue_rst(sid, E_FLOW_CONTROL_ERROR, True)
            memory.state = S_RESET_LOCAL
        else:
            memory.window += increment
        return 0
    return _outcome_not_live(self, sid, t, 0, "WINDOW_UPDATE")


# ---- RST_STREAM (§6.4) ---------------------------------------------------------------------------
cdef int _recv_rst_stream(Engine self, FrameView* v, list events) except -1:
    cdef uint32_t sid = v.stream_id
    cdef _Stream stream = self._get(sid)
    cdef Transition t
    cdef ClosedStream* memory
    if stream is not None:
        t = STREAM_TABLE[stream.state][I_RECV_RST_STREAM]
        self._free(stream, t.next_state)
        if not stream.stop_reading:
            events.append(_stream_reset(sid, v.error_code, True))
        self._frame_resets += 1            # (counted by _after_frame: rapid reset)
        return 0
    t = STREAM_TABLE[self._state_of(sid, &memory)][I_RECV_RST_STREAM]
    if t.outcome == O_OK and memory != NULL:
        memory.state = t.next_state        # closed normally, then reset by the peer
        return 0
    return _outcome_not_live(self, sid, t, 0, "RST_STREAM")


# ---- PRIORITY (§6.3, §5.3.2: ignored, but a stream may not depend on itself) ---------------------
cdef int _recv_priority(Engine self, FrameView* v, list events) except -1:
    cdef uint32_t sid = v.stream_id
    cdef _Stream stream
    cdef Transition t
    cdef ClosedStream* memory
    if v.depends_on != sid:
        return 0
    stream = self._get(sid)
    if stream is not None:
        return self._stream_error(stream, sid, E_PROTOCOL_ERROR, True, events,
                                  "the stream depends on itself (PROTOCOL_ERROR)")
    t = STREAM_TABLE[self._state_of(sid, &memory)][I_RECV_PRIORITY_SELF]
    return _outcome_not_live(self, sid, t, E_PROTOCOL_ERROR, "PRIORITY depending on itself")


# ---- SETTINGS (§6.5) -----------------------------------------------------------------------------
cdef int _recv_settings(Engine self, FrameView* v, list events) except -1:
    cdef const unsigned char* p = v.payload
    cdef Py_ssize_t i, count = v.length // 6
    cdef uint16_t ident
    cdef uint32_t value
    cdef int64_t delta
    if v.flags & FLAG_ACK:
        return _settings_acked(self)
    for i in range(count):
        ident = (p[0] << 8) | p[1]
        value = (<uint32_t>p[2] << 24) | (<uint32_t>p[3] << 16) | (<uint32_t>p[4] << 8) | p[5]
        p += 6
        if ident == 0x1:                   # HEADER_TABLE_SIZE: our encoder's table
            self._encoder.header_table_size = value
        elif ident == 0x2 or ident == 0x8 or ident == 0x9:
            # ENABLE_PUSH, ENABLE_CONNECT_PROTOCOL (RFC 8441), NO_RFC7540_PRIORITIES (RFC 9218)
            if value > 1:
                return self._fail(E_PROTOCOL_ERROR, f"setting 0x{ident:x} = {value}")
        elif ident == 0x4:                 # INITIAL_WINDOW_SIZE (§6.9.2)
            if value > MAX_WINDOW:
                return self._fail(E_FLOW_CONTROL_ERROR, f"SETTINGS_INITIAL_WINDOW_SIZE {value}")
            delta = <int64_t>value - self._peer_initial_window
            self._peer_initial_window = value
            if delta:
                _send_windows_changed(self, delta)
        elif ident == 0x5:                 # MAX_FRAME_SIZE: our outbound frames
            if not DEFAULT_MAX_FRAME_SIZE <= value <= 16777215:
                return self._fail(E_PROTOCOL_ERROR, f"SETTINGS_MAX_FRAME_SIZE {value}")
            self._peer_max_frame_size = value
    self._ctrl.append_frame(FRAME_SETTINGS, FLAG_ACK, 0, NULL, 0)
    self._ctrl_queued += 1
    return 0


cdef int _send_windows_changed(Engine self, int64_t delta) except -1:
    """SETTINGS_INITIAL_WINDOW_SIZE moved every live stream's send window by ``delta``; a
    window above 2^31-1 is a connection error FLOW_CONTROL_ERROR (§6.9.2)."""
    cdef Py_ssize_t i
    cdef _Stream stream
    cdef IdMap* live = &self._live
    cdef list reopened = None
    for i in range(live.capacity):
        if live.keys[i]:
            stream = <_Stream><PyObject*>live.values[i]
            stream.send_window += delta
            if stream.send_window > MAX_WINDOW:
                return self._fail(E_FLOW_CONTROL_ERROR,
                                  "SETTINGS_INITIAL_WINDOW_SIZE overflows stream "
                                  f"{stream.stream_id}")
            if delta > 0 and not stream.in_rotation and self._sendable(stream):
                if reopened is None:
                    reopened = []
                reopened.append((stream.started, stream))
    if reopened is not None:       # back into their rings in the order their responses began
        reopened.sort(key=_first)
        for _, stream in reopened:
            self._ring_add(stream)
    return 0


def _first(pair):
    return pair[0]


cdef int _settings_acked(Engine self) except -1:
    """The peer acknowledged one of our SETTINGS frames: apply what it carried."""
    cdef Py_ssize_t i
    cdef int64_t delta
    cdef _Stream stream
    cdef IdMap* live = &self._live
    if self._pending_acks == 0:
        return 0                           # unsolicited: nothing to apply
    self._pending_acks -= 1
    self._acks_seen += 1
    if self._acks_seen == 1 and self._recv_initial != self._local_initial_window:
        # Our SETTINGS_INITIAL_WINDOW_SIZE, below the default, now applies (h2's rule for a
        # change of it: both the window and its target move by the difference).
        delta = self._local_initial_window - self._recv_initial
        self._recv_initial = self._local_initial_window
        for i in range(live.capacity):
            if live.keys[i]:
                stream = <_Stream><PyObject*>live.values[i]
                stream.recv.current += delta
                stream.recv.max_size += delta
    if self._acks_seen == self._table_size_ack:
        self._decoder.max_allowed_table_size = self._header_table_size
    return 0


# ---- GOAWAY (§6.8), PING (§6.7) ------------------------------------------------------------------
cdef int _recv_goaway(Engine self, FrameView* v, list events) except -1:
    self._goaway_received = True
    debug = PyBytes_FromStringAndSize(<const char*>v.data, v.data_length) if v.data_length else None
    events.append(_event(&_L_TERMINATED, _ConnectionTerminated, v.error_code, v.last_stream_id,
                         debug))
    return 0


cdef int _frame_dispatch(Engine self, FrameView* v, list events) except -1:
    cdef uint8_t ftype = v.type
    cdef Transition t
    cdef uint8_t conn_input
    if self._phase != P_OPEN:
        if ftype == FRAME_SETTINGS and not (v.flags & FLAG_ACK):
            conn_input = CI_RECV_SETTINGS
        elif ftype == FRAME_GOAWAY:
            conn_input = CI_RECV_GOAWAY
        else:
            conn_input = CI_RECV_FRAME
        t = CONN_TABLE[self._phase][conn_input]
        if t.outcome == O_IGNORE:
            return 0
        if t.outcome != O_OK:
            return self._fail(E_PROTOCOL_ERROR,
                              "the client preface must be followed by a SETTINGS frame")
        self._phase = t.next_state
    if ftype != FRAME_HEADERS:
        _count_frame(self, v)              # flood budgets (_engine_c_budgets.pxi)
    if ftype == FRAME_HEADERS:
        return _recv_headers(self, v, events)
    if ftype == FRAME_DATA:
        return _recv_data(self, v, events)
    if ftype == FRAME_WINDOW_UPDATE:
        return _recv_window_update(self, v, events)
    if ftype == FRAME_SETTINGS:
        return _recv_settings(self, v, events)
    if ftype == FRAME_RST_STREAM:
        return _recv_rst_stream(self, v, events)
    if ftype == FRAME_PING:
        if not (v.flags & FLAG_ACK):
            self._ctrl.append_ping(v.data, True)
            self._ctrl_queued += 1
        else:                              # the ACK of a PING (ours: send_ping, keep-alive)
            events.append(_PingAcknowledged(PyBytes_FromStringAndSize(<const char*>v.data, 8)))
        return 0
    if ftype == FRAME_PRIORITY:
        return _recv_priority(self, v, events)
    if ftype == FRAME_GOAWAY:
        return _recv_goaway(self, v, events)
    if ftype == FRAME_PUSH_PROMISE:        # §8.4: a client cannot push (ENABLE_PUSH is 0)
        return self._fail(E_PROTOCOL_ERROR, "PUSH_PROMISE from a client")
    if ftype == FRAME_CONTINUATION:        # outside a field block (§6.10)
        return self._fail(E_PROTOCOL_ERROR, "CONTINUATION without a field block")
    if ftype == FRAME_PRIORITY_UPDATE:     # RFC 9218 §7.1 (_engine_c_priority.pxi)
        return _recv_priority_update(self, v, events)
    return 0                               # ALTSVC, unknown types (§5.5)
