"""The pure twin's send side: send queues and the DATA scheduler (RFC 9218 §10).

The same rules, in the same order, as the compiled engine's ``_engine_c_send.pxi`` (its theory
of operation is the reference; the differential tests hold the two to it): per urgency, a ring
of the incremental streams and of the marker ``0`` of the non-incremental ones, whose ids wait
in a sorted sequence; urgencies in order, one frame per turn, the marker giving its turn to the
lowest stream id of its sequence. :class:`Scheduler` is mixed into
:class:`kyoukai_h2fast.http2.h2engine.engine.Engine`, whose state it uses (``_conn``, ``_queues``,
``_rings``, ``_seqs``, ``_waiting``, ``_sent``, ``_queued_total``, ``_framed_now``).
"""
from __future__ import annotations

import bisect
from collections import deque
from typing import TYPE_CHECKING

from h2.connection import ConnectionInputs
from h2.stream import StreamInputs

from ...codec import frames as _frames
from ..events import ResponseSent, StreamDrained

if TYPE_CHECKING:
    from h2.stream import H2Stream

    from .connection import ServerConnection

__all__ = ["SendQueue", "Scheduler", "FRAME_NOW_LIMIT"]

#: DATA payload bytes ``queue_data`` may frame at once between two ``data_to_send`` calls.
FRAME_NOW_LIMIT = 65536
_MAX_WINDOW = 2**31 - 1
_SEND_DATA = ConnectionInputs.SEND_DATA
_STREAM_SEND_DATA = StreamInputs.SEND_DATA
_STREAM_SEND_END_STREAM = StreamInputs.SEND_END_STREAM
_data_frames = _frames.data_frames


class SendQueue:
    """A stream's response body waiting to be framed: chunks in order, and its scheduling."""

    __slots__ = ("chunks", "size", "end", "urgency", "incremental", "ready")

    def __init__(self, priority: tuple) -> None:
        #: Body chunks (bytes-like), the first possibly partly sent already (then a memoryview
        #: of its rest).
        self.chunks: deque = deque()
        #: Bytes in ``chunks``.
        self.size = 0
        #: The last chunk of the response is queued.
        self.end = False
        #: RFC 9218 priority (from the stream's ``kh2_priority`` when the response started).
        self.urgency, self.incremental = priority
        #: In the scheduler (has data, or an END_STREAM to send, and window).
        self.ready = False


if TYPE_CHECKING:
    class _EngineState:
        """The ``Engine``'s state the scheduler uses (its slots), for type checkers."""

        _conn: ServerConnection
        _closed: bool
        _queues: dict[int, SendQueue]
        _rings: list[deque]
        _seqs: list[list]
        _waiting: int
        _sent: list
        _queued_total: int
        _framed_now: int

        def _forget(self, stream_id: int) -> None: ...
else:
    _EngineState = object


class Scheduler(_EngineState):
    """The send queues' scheduling, for the twin's ``Engine``."""

    __slots__ = ()

    @property
    def wants_write(self) -> bool:
        if self._conn._data_to_send:
            return True
        if self._closed or not self._waiting:
            return False
        conn = self._conn
        for ring, seq in zip(self._rings, self._seqs, strict=False):
            for member in ring:
                for sid in (seq if member == 0 else (member,)):
                    if self._queues[sid].size == 0 or (
                            conn.outbound_flow_control_window > 0
                            and conn.streams[sid].outbound_flow_control_window > 0):
                        return True
        return False

    def _send_now(self, stream: H2Stream, queue: SendQueue) -> None:
        """Frame a stream's whole (single-frame) queue at once."""
        n = queue.size
        piece = queue.chunks.popleft() if n else b""
        queue.size = 0
        self._queued_total -= n
        self._framed_now += n
        stream.outbound_flow_control_window -= n
        self._conn.outbound_flow_control_window -= n
        self._send_frame(stream, queue, piece, queue.end, self._conn._data_to_send)

    def _reprioritize(self, stream_id: int, priority: tuple) -> None:
        """New scheduling parameters for a live stream: a waiting one moves to its new place
        (and keeps its place when they are the same)."""
        stream = self._conn.streams.get(stream_id)
        if stream is None or stream.closed:
            return
        queue = self._queues.get(stream_id)
        if queue is None:                       # the response has not started
            stream.kh2_priority = priority  # type: ignore[attr-defined]  # ours, on h2's stream
            return
        if (queue.urgency, queue.incremental) == priority:
            return
        if queue.ready:
            self._ring_remove(stream_id, queue)
            queue.urgency, queue.incremental = priority
            self._ring_add(stream_id, queue)
        else:
            queue.urgency, queue.incremental = priority

    def _ring_add(self, stream_id: int, queue: SendQueue) -> None:
        """Into the scheduler: an incremental stream at the tail of its urgency's ring, another
        into its urgency's sequence (by id), the sequence's marker 0 at the tail of the ring
        with its first stream."""
        if queue.incremental:
            self._rings[queue.urgency].append(stream_id)
        else:
            seq = self._seqs[queue.urgency]
            if not seq:
                self._rings[queue.urgency].append(0)
            bisect.insort(seq, stream_id)
        queue.ready = True
        self._waiting += 1

    def _ring_remove(self, stream_id: int, queue: SendQueue) -> None:
        if queue.incremental:
            self._rings[queue.urgency].remove(stream_id)
        else:
            seq = self._seqs[queue.urgency]
            seq.remove(stream_id)
            if not seq:
                self._rings[queue.urgency].remove(0)
        queue.ready = False
        self._waiting -= 1

    def _drop_queue(self, stream_id: int) -> None:
        queue = self._queues.pop(stream_id, None)
        if queue is not None:
            self._queued_total -= queue.size
            if queue.ready:
                self._ring_remove(stream_id, queue)

    def _wake(self, stream_id: int) -> None:
        """A send window opened: put a waiting stream back in the scheduler."""
        queue = self._queues.get(stream_id)
        if queue is None or queue.ready or not (queue.size or queue.end):
            return
        if queue.size == 0 or self._conn.streams[stream_id].outbound_flow_control_window > 0:
            self._ring_add(stream_id, queue)

    def _schedule(self, max_data: int) -> None:
        """Frame queued DATA while the connection window and ``max_data`` allow: urgencies in
        order; within one, round-robin over its ring, one frame per turn, the marker 0 giving
        its turn to the first stream of the sequence (non-incremental streams one at a time by
        stream id, incremental ones sharing)."""
        conn = self._conn
        streams = conn.streams
        queues = self._queues
        budget = max_data if max_data >= 0 else _MAX_WINDOW * 2
        frame_size = conn.max_outbound_frame_size
        out = conn._data_to_send
        for ring, seq in zip(self._rings, self._seqs, strict=False):
            if not self._waiting:
                return
            while ring:
                member = ring[0]                 # whose turn it is
                sid = seq[0] if member == 0 else member
                queue = queues[sid]
                stream = streams[sid]
                if queue.size == 0:  # only END_STREAM left: no window needed
                    self._send_frame(stream, queue, b"", True, out)
                    continue
                if stream.outbound_flow_control_window <= 0:
                    self._ring_remove(sid, queue)  # waits for its own WINDOW_UPDATE
                    continue
                window = min(stream.outbound_flow_control_window,
                             conn.outbound_flow_control_window, budget)
                if window <= 0:
                    return  # connection window or budget spent
                chunk = queue.chunks[0]
                n = len(chunk)
                if n > frame_size or n > window:
                    n = min(frame_size, window)
                    piece = memoryview(chunk)[:n]
                    queue.chunks[0] = memoryview(chunk)[n:]
                else:
                    piece = chunk
                    queue.chunks.popleft()
                queue.size -= n
                self._queued_total -= n
                budget -= n
                stream.outbound_flow_control_window -= n
                conn.outbound_flow_control_window -= n
                self._send_frame(stream, queue, piece, queue.end and queue.size == 0, out)
                if ring and ring[0] == member:
                    ring.rotate(-1)  # round-robin: the next member's turn

    def _send_frame(self, stream: H2Stream, queue: SendQueue, piece: bytes | memoryview,
                    last: bool, out: bytearray) -> None:
        conn = self._conn
        sid = stream.stream_id
        conn.state_machine.process_input(_SEND_DATA)
        machine = stream.state_machine
        machine.process_input(_STREAM_SEND_DATA)
        if last:
            machine.process_input(_STREAM_SEND_END_STREAM)
        out += _data_frames(sid, piece, last, conn.max_outbound_frame_size)
        if last:
            self._drop_queue(sid)
            self._response_sent(sid, stream)
        elif queue.size == 0 and not queue.end:
            if queue.ready:
                self._ring_remove(sid, queue)
            self._sent.append(StreamDrained(sid))

    def _response_sent(self, stream_id: int, stream: H2Stream) -> None:
        complete = stream.closed
        self._sent.append(ResponseSent(stream_id, complete))
        if complete:
            self._forget(stream_id)
