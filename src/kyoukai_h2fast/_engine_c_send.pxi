# Included by _engine_c.pyx: the send side (header blocks, send queues, the DATA scheduler).
#
# Theory of operation. ``send_headers`` encodes a block with our HPACK encoder and frames it
# (HEADERS + CONTINUATION at the peer's SETTINGS_MAX_FRAME_SIZE) into the control buffer at
# once, in call order with every other control frame. ``queue_data`` appends a reference to the
# chunk to the stream's queue. ``data_to_send`` hands out the control buffer, then DATA chosen
# by the scheduler:
#
# * streams that can send (queued bytes and send window > 0, or an empty queue with END_STREAM
#   pending, which needs no window) are in the scheduler, by RFC 9218 priority (§10): per
#   urgency (0 first, 7 last), a *ring* of the incremental streams and a *sequence* of the
#   non-incremental ones in stream id order, which takes its turns in the ring as one member
#   (its *group marker*, linked in when its first stream comes, at the tail, and out with its
#   last);
# * urgencies are served in order, each until its ring is empty; within one, round-robin: the
#   member at the head of the ring (an incremental stream, or for the marker the first stream
#   of the sequence) sends one frame of at most min(what is left of its first chunk, its
#   window, the connection window, the peer's SETTINGS_MAX_FRAME_SIZE, what is left of
#   ``max_data``), then the turn passes to the next member (a frame never joins chunks). So
#   non-incremental responses of one urgency go one at a time, lowest stream id first, and
#   incremental ones share; when both kinds wait at one urgency, neither starves the other
#   (§10: "avoid such starvation"). Requests without any signal are urgency 3, incremental
#   (``kyoukai_h2fast.http2.priority``): without priorities, everything is shared fairly;
# * a stream whose own window is used up leaves the scheduler, until a WINDOW_UPDATE or a
#   SETTINGS change reopens it; a stream whose queue is empty leaves it too (``StreamDrained``
#   unless its response ended); the first time the connection window or ``max_data`` stops a
#   stream with bytes to send, the round ends (a stream whose turn it is with only END_STREAM
#   left needs no window and goes before that point);
# * a new priority (``set_priority``, a PRIORITY_UPDATE, the response's ``priority`` field)
#   moves a waiting stream to the tail of its new ring, or into its new sequence.
#
# ``queue_data`` frames a chunk at once, bypassing the queue, when nothing else waits and it
# fits in one frame and the windows (what the scheduler would do). At most FRAME_NOW_LIMIT
# bytes are framed so between two ``data_to_send`` calls: beyond that (the transport is slow
# and the protocol is not taking output) chunks wait in their queues, where the scheduler,
# not the order of arrival, decides what goes first.
#
# The bytes are produced in two passes: a plan (stream, length, END_STREAM) per frame, then one
# ``bytes`` object of the exact size, written once (chunk bytes are copied exactly once).
# Writing the frame with END_STREAM records ``ResponseSent`` and makes the stream's transition;
# a stream closed in both directions is freed at once.

cdef int _send_headers(Engine self, uint32_t sid, list headers, bint end_stream) except -1:
    cdef _Stream stream = self._get(sid)
    cdef Py_ssize_t i, count = PyList_GET_SIZE(headers)
    cdef PyObject* item
    cdef PyObject* name
    cdef PyObject* value
    cdef bint informational
    cdef Transition t
    cdef ByteBuffer* block = &self._block
    cdef PrioritySignal signal
    for i in range(count):      # check everything first: encoding changes the HPACK state
        item = PyList_GET_ITEM(headers, i)
        if (not PyTuple_Check(<object>item) or PyTuple_GET_SIZE(<object>item) != 2
                or not PyBytes_Check(<object>PyTuple_GET_ITEM(<object>item, 0))
                or not PyBytes_Check(<object>PyTuple_GET_ITEM(<object>item, 1))):
            raise TypeError(f"response header fields must be (bytes, bytes) tuples, "
                            f"not {<object>item!r}")
    if count == 0:
        raise ValueError("a response header block starts with :status")
    if stream is None or self._phase == P_CLOSED or stream.headers_sent:
        return False
    value = PyTuple_GET_ITEM(<object>PyList_GET_ITEM(headers, 0), 1)
    informational = (PyBytes_GET_SIZE(<object>value) > 0
                     and PyBytes_AS_STRING(<object>value)[0] == b"1")
    if informational and end_stream:
        return False
    t = STREAM_TABLE[stream.state][I_SEND_HEADERS_END if end_stream else I_SEND_HEADERS]
    if t.outcome != O_OK:
        return False
    block.length = 0
    self._encoder.encode_block_start(block)
    _signal_init(&signal, informational)
    for i in range(count):
        item = PyList_GET_ITEM(headers, i)
        name = PyTuple_GET_ITEM(<object>item, 0)
        value = PyTuple_GET_ITEM(<object>item, 1)
        if PyBytes_GET_SIZE(<object>name) == 8 and memcmp(PyBytes_AS_STRING(<object>name),
                                                          b"priority", 8) == 0:
            _signal_line(&signal, <const unsigned char*>PyBytes_AS_STRING(<object>value),
                         PyBytes_GET_SIZE(<object>value))
        self._encoder._encode_field(PyBytes_AS_STRING(<object>name), PyBytes_GET_SIZE(<object>name),
                                    PyBytes_AS_STRING(<object>value),
                                    PyBytes_GET_SIZE(<object>value), name, value, HPACK_HUFFMAN,
                                    block)
    self._ctrl.append_headers_frames(sid, block.data, block.length, end_stream,
                                     self._peer_max_frame_size)
    if block.capacity > BLOCK_KEEP:
        byte_buffer_free(block)
    if not informational:
        stream.headers_sent = True
        self._started += 1
        stream.started = self._started
        if signal.lines:                # the response's own priority (RFC 9218 §8)
            _response_signal(self, stream, &signal)
    if end_stream:
        stream.end_queued = True
        _response_ended(self, stream, t.next_state)
    return True


cdef int _send_trailers(Engine self, uint32_t sid, list headers) except -1:
    """A trailer block with END_STREAM (RFC 9113 §8.1), framed at once: only once the
    response's header block is out and its send queue is empty (the DATA went before)."""
    cdef _Stream stream = self._get(sid)
    cdef Py_ssize_t i, count = PyList_GET_SIZE(headers)
    cdef PyObject* item
    cdef PyObject* name
    cdef PyObject* value
    cdef Transition t
    cdef ByteBuffer* block = &self._block
    for i in range(count):
        item = PyList_GET_ITEM(headers, i)
        if (not PyTuple_Check(<object>item) or PyTuple_GET_SIZE(<object>item) != 2
                or not PyBytes_Check(<object>PyTuple_GET_ITEM(<object>item, 0))
                or not PyBytes_Check(<object>PyTuple_GET_ITEM(<object>item, 1))):
            raise TypeError(f"trailer fields must be (bytes, bytes) tuples, "
                            f"not {<object>item!r}")
    if (stream is None or self._phase == P_CLOSED or not stream.headers_sent
            or stream.end_queued or stream.queued):
        return False
    t = STREAM_TABLE[stream.state][I_SEND_HEADERS_END]
    if t.outcome != O_OK:
        return False
    if stream.in_rotation:
        self._ring_remove(stream)
    block.length = 0
    self._encoder.encode_block_start(block)
    for i in range(count):
        item = PyList_GET_ITEM(headers, i)
        name = PyTuple_GET_ITEM(<object>item, 0)
        value = PyTuple_GET_ITEM(<object>item, 1)
        self._encoder._encode_field(PyBytes_AS_STRING(<object>name), PyBytes_GET_SIZE(<object>name),
                                    PyBytes_AS_STRING(<object>value),
                                    PyBytes_GET_SIZE(<object>value), name, value, HPACK_HUFFMAN,
                                    block)
    self._ctrl.append_headers_frames(sid, block.data, block.length, True,
                                     self._peer_max_frame_size)
    if block.capacity > BLOCK_KEEP:
        byte_buffer_free(block)
    stream.end_queued = True
    _response_ended(self, stream, t.next_state)
    return True


cdef int _response_ended(Engine self, _Stream stream, uint8_t next_state) except -1:
    """The frame with END_STREAM of the response is in the output: ResponseSent, then
    half-closed (local), or closed and freed."""
    self._send_events.append(_event(&_L_SENT, _ResponseSent, stream.stream_id,
                                    next_state == S_CLOSED))
    if next_state == S_CLOSED:
        self._free(stream, S_CLOSED)
    else:
        stream.state = next_state
    return 0


cdef int _queue_data(Engine self, uint32_t sid, object data, bint end_stream) except -1:
    cdef _Stream stream = self._get(sid)
    cdef Py_ssize_t n = _chunk_length(data)
    cdef Transition t
    if stream is None or self._phase == P_CLOSED or not stream.headers_sent or stream.end_queued:
        return False
    t = STREAM_TABLE[stream.state][I_SEND_DATA_END if end_stream else I_SEND_DATA]
    if t.outcome != O_OK:
        return False
    if n == 0 and not end_stream:
        return True
    if (self._rotating == 0 and stream.queued == 0 and n <= self._peer_max_frame_size
            and n <= stream.send_window and n <= self._conn_send
            and self._framed_now + n <= FRAME_NOW_LIMIT):
        # Nothing waits: the scheduler would send this chunk as one frame now; frame it at once.
        _frame_now(self, stream, data, n, end_stream)
        return True
    if n:
        if stream.queued == 0:
            if stream.chunks is None:
                stream.chunks = []
            stream.plan_head = PyList_GET_SIZE(stream.chunks)
            stream.plan_left = n
        stream.chunks.append(data)
        stream.queued += n
        self._queued_total += n
    if end_stream:
        stream.end_queued = True
    if not stream.in_rotation and self._sendable(stream):
        self._ring_add(stream)
    return True


cdef int _frame_now(Engine self, _Stream stream, object data, Py_ssize_t n,
                    bint end_stream) except -1:
    cdef Py_buffer view
    if PyBytes_CheckExact(data):
        self._ctrl.append_data_frames(stream.stream_id,
                                      <const unsigned char*>PyBytes_AS_STRING(data), n,
                                      end_stream, self._peer_max_frame_size)
    else:
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self._ctrl.append_data_frames(stream.stream_id, <const unsigned char*>view.buf,
                                          n, end_stream, self._peer_max_frame_size)
        finally:
            PyBuffer_Release(&view)
    stream.send_window -= n
    self._conn_send -= n
    self._framed_now += n
    if end_stream:
        stream.end_queued = True
        _response_ended(self, stream, STREAM_TABLE[stream.state][I_SEND_DATA_END].next_state)
    else:
        self._send_events.append(_event(&_L_DRAINED, _StreamDrained, stream.stream_id))
    return 0


# ---- the scheduler -------------------------------------------------------------------------------
cdef inline void _ring_link(PyObject** ring, _Stream node) noexcept:
    """Append ``node`` at the tail of ``ring`` (just before its head)."""
    cdef PyObject* head = ring[0]
    cdef PyObject* tail
    if head == NULL:
        node.rot_next = node.rot_prev = <PyObject*>node
        ring[0] = <PyObject*>node
    else:
        tail = (<_Stream>head).rot_prev
        node.rot_prev = tail
        node.rot_next = head
        (<_Stream>tail).rot_next = <PyObject*>node
        (<_Stream>head).rot_prev = <PyObject*>node


cdef inline void _ring_unlink(PyObject** ring, _Stream node) noexcept:
    """Take ``node`` out of ``ring``; when it was the head, the next member is."""
    if node.rot_next == <PyObject*>node:
        ring[0] = NULL
    else:
        (<_Stream>node.rot_prev).rot_next = node.rot_next
        (<_Stream>node.rot_next).rot_prev = node.rot_prev
        if ring[0] == <PyObject*>node:
            ring[0] = node.rot_next
    node.rot_next = node.rot_prev = NULL


cdef inline void _seq_insert(Engine self, uint8_t u, _Stream stream) noexcept:
    """Insert ``stream`` in the sequence of urgency ``u`` by stream id (from the tail: new
    streams have the highest ids)."""
    cdef PyObject* p = self._seq_tail[u]
    while p != NULL and (<_Stream>p).stream_id > stream.stream_id:
        p = (<_Stream>p).rot_prev
    stream.rot_prev = p
    if p == NULL:
        stream.rot_next = self._seq[u]
        self._seq[u] = <PyObject*>stream
    else:
        stream.rot_next = (<_Stream>p).rot_next
        (<_Stream>p).rot_next = <PyObject*>stream
    if stream.rot_next == NULL:
        self._seq_tail[u] = <PyObject*>stream
    else:
        (<_Stream>stream.rot_next).rot_prev = <PyObject*>stream


cdef inline void _seq_unlink(Engine self, uint8_t u, _Stream stream) noexcept:
    if stream.rot_prev == NULL:
        self._seq[u] = stream.rot_next
    else:
        (<_Stream>stream.rot_prev).rot_next = stream.rot_next
    if stream.rot_next == NULL:
        self._seq_tail[u] = stream.rot_prev
    else:
        (<_Stream>stream.rot_next).rot_prev = stream.rot_prev
    stream.rot_next = stream.rot_prev = NULL


cdef bint _any_can_send(Engine self, PyObject* p, bint only=False) noexcept:
    """A stream from ``p`` on in a sequence (``only``: ``p`` alone) can send now."""
    while p != NULL:
        if (<_Stream>p).queued == 0 or (self._conn_send > 0 and (<_Stream>p).send_window > 0):
            return True
        if only:
            return False
        p = (<_Stream>p).rot_next
    return False


cdef int _plan_add(Engine self, _Stream stream, Py_ssize_t length, bint end,
                   Py_ssize_t* count) except -1:
    cdef PlanEntry* grown
    cdef Py_ssize_t cap
    if count[0] == self._plan_cap:
        cap = self._plan_cap * 2 if self._plan_cap else 16
        grown = <PlanEntry*>PyMem_Realloc(self._plan, cap * sizeof(PlanEntry))
        if grown == NULL:
            raise MemoryError()
        self._plan = grown
        self._plan_cap = cap
    self._plan[count[0]].stream = <PyObject*>stream
    self._plan[count[0]].length = length
    self._plan[count[0]].end_stream = end
    count[0] += 1
    return 0


cdef Py_ssize_t _schedule(Engine self, int64_t budget, Py_ssize_t* payload) except -1:
    """Plan the DATA frames of this ``data_to_send``; returns how many (see the top)."""
    cdef Py_ssize_t count = 0
    cdef Py_ssize_t u
    cdef int64_t n
    cdef _Stream stream
    cdef PyObject* member
    payload[0] = 0
    for u in range(N_URGENCIES):
        while self._rings[u] != NULL:
            member = self._rings[u]             # whose turn it is
            if member == self._groups[u]:
                stream = <_Stream>self._seq[u]  # the sequence's first stream
            else:
                stream = <_Stream>member
            if stream.queued == 0:              # END_STREAM alone (no window needed)
                self._ring_remove(stream)
                if stream.end_queued:
                    _plan_add(self, stream, 0, True, &count)
                continue
            if stream.send_window <= 0:         # blocked on its own window
                self._ring_remove(stream)
                continue
            if self._conn_send <= 0 or budget <= 0:
                return count                    # the connection window or max_data: done
            n = stream.plan_left                # a frame carries bytes of one chunk
            if n > stream.send_window:
                n = stream.send_window
            if n > self._conn_send:
                n = self._conn_send
            if n > self._peer_max_frame_size:
                n = self._peer_max_frame_size
            if n > budget:
                n = budget
            stream.queued -= n
            stream.send_window -= n
            self._conn_send -= n
            self._queued_total -= n
            budget -= n
            payload[0] += <Py_ssize_t>n
            _plan_add(self, stream, <Py_ssize_t>n, stream.end_queued and stream.queued == 0,
                      &count)
            _advance_plan(stream, <Py_ssize_t>n)
            if stream.queued == 0:
                self._ring_remove(stream)       # (the marker too, with a sequence's last)
            if (<_Stream>member).in_rotation:
                self._rings[u] = (<_Stream>member).rot_next     # round-robin: the next turn
    return count


cdef inline Py_ssize_t _chunk_length(object chunk) except -1:
    cdef Py_buffer view
    if PyBytes_CheckExact(chunk):
        return PyBytes_GET_SIZE(chunk)
    PyObject_GetBuffer(chunk, &view, PyBUF_SIMPLE)
    PyBuffer_Release(&view)
    return view.len


cdef int _advance_plan(_Stream stream, Py_ssize_t n) except -1:
    """Planning took ``n`` bytes of the chunk at ``plan_head``: on to the next when done."""
    stream.plan_left -= n
    if stream.plan_left == 0 and stream.queued > 0:
        stream.plan_head += 1
        stream.plan_left = _chunk_length(<object>PyList_GET_ITEM(stream.chunks, stream.plan_head))
    return 0


cdef int _copy_queue(_Stream stream, unsigned char* out, Py_ssize_t n) except -1:
    """Move ``n`` planned bytes from the head of the stream's queue to ``out``; consumed chunks
    are released at once."""
    cdef Py_buffer view
    cdef object chunk
    cdef Py_ssize_t length, take
    cdef list chunks = stream.chunks
    while n > 0:
        if chunks is None or stream.head >= PyList_GET_SIZE(chunks):
            memset(out, 0, n)        # a chunk shrank under us (the caller broke the contract)
            return 0
        chunk = <object>PyList_GET_ITEM(chunks, stream.head)
        if PyBytes_CheckExact(chunk):
            length = PyBytes_GET_SIZE(chunk)
            take = length - stream.offset
            if take > n:
                take = n
            if take > 0:
                memcpy(out, PyBytes_AS_STRING(chunk) + stream.offset, take)
        else:
            PyObject_GetBuffer(chunk, &view, PyBUF_SIMPLE)
            length = view.len
            take = length - stream.offset
            if take > n:
                take = n
            if take > 0:
                memcpy(out, <const unsigned char*>view.buf + stream.offset, take)
            PyBuffer_Release(&view)
            if take < 0:
                take = 0
        out += take
        n -= take
        stream.offset += take
        if stream.offset >= length:
            chunks[stream.head] = None
            stream.head += 1
            stream.offset = 0
    if stream.head == PyList_GET_SIZE(chunks):
        del chunks[:]
        stream.plan_head -= stream.head
        stream.head = 0
    elif stream.head >= 64 and stream.head * 2 >= PyList_GET_SIZE(chunks):
        del chunks[:stream.head]
        stream.plan_head -= stream.head
        stream.head = 0
    return 0


cdef bytes _take_output(Engine self, Py_ssize_t max_data):
    cdef Py_ssize_t count = 0, payload = 0, i, ctrl_length, total
    cdef PlanEntry* entry
    cdef _Stream stream
    cdef unsigned char* out
    cdef bytes result
    cdef WriteBuffer ctrl = self._ctrl
    self._framed_now = 0
    if self._phase != P_CLOSED and self._rotating:
        count = _schedule(self, max_data if max_data >= 0 else INT64_MAX, &payload)
    ctrl_length = ctrl._len
    total = ctrl_length + payload + count * FRAME_HEADER_LENGTH
    if total == 0:
        return b""
    if count == 0:
        result = ctrl.take()
        _shrink(self)
        return result
    result = PyBytes_FromStringAndSize(NULL, total)
    out = <unsigned char*>PyBytes_AS_STRING(result)
    if ctrl_length:
        memcpy(out, ctrl._buf, ctrl_length)
        ctrl._emptied()                          # (a big buffer goes back to the frame pool)
        out += ctrl_length
    for i in range(count):
        entry = &self._plan[i]
        stream = <_Stream>entry.stream           # a reference: the stream may be freed below
        write_frame_header(out, entry.length, FRAME_DATA,
                           FLAG_END_STREAM if entry.end_stream else 0, stream.stream_id)
        out += FRAME_HEADER_LENGTH
        if entry.length:
            _copy_queue(stream, out, entry.length)
            out += entry.length
        if entry.end_stream:
            _response_ended(self, stream, STREAM_TABLE[stream.state][I_SEND_DATA_END].next_state)
        elif (stream.queued == 0 and not stream.end_queued
              and PyList_GET_SIZE(stream.chunks) == 0):
            self._send_events.append(_event(&_L_DRAINED, _StreamDrained, stream.stream_id))
    _shrink(self)
    return result


cdef inline int _shrink(Engine self) except -1:
    """Memory taken by a burst is given back: a large DATA plan is dropped once written (the
    control buffer gives its own back when emptied, see ``WriteBuffer._emptied``)."""
    if self._plan_cap > PLAN_KEEP:
        PyMem_Free(self._plan)
        self._plan = NULL
        self._plan_cap = 0
    return 0
