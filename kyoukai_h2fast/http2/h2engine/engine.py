"""The pure twin of the connection engine: the :class:`~kyoukai_h2fast.contracts.Engine`
contract on top of ``h2``'s state machine; the oracle of the compiled engine's differential tests.

Theory of operation. The protocol hands received bytes to :meth:`Engine.receive` and gets
back a list of :mod:`kyoukai_h2fast.http2.events`; it queues response headers and body bytes and
takes what to write from :meth:`Engine.data_to_send`. The engine does no I/O. ``h2`` keeps the
state of live streams, in :class:`~kyoukai_h2fast.http2.h2engine.connection.ServerConnection` with
our pieces plugged in (the frame buffer :mod:`kyoukai_h2fast.frames`, the HPACK coder
:mod:`kyoukai_h2fast.hpack`, request header validation :mod:`kyoukai_h2fast.codec.headers`, compiled
when built) and RFC 9113 where plain ``h2`` differs from it (listed in that module). Frames
are handled one at a time: each frame's ``h2`` events become ours at once, the flood budgets
(:mod:`kyoukai_h2fast.http2.h2engine.budgets`) are counted per frame, and ``receive`` may stop
after ``max_frames`` frames, keeping the rest. The send queues and their scheduler
(:mod:`kyoukai_h2fast.http2.h2engine.send`, RFC 9218 §10) are ours; responses are sent without
frame objects: the engine makes ``h2``'s state transitions and window accounting itself,
encodes with our HPACK encoder and writes frames with our serializer. RFC 9218 signals (the
request's ``priority`` field, PRIORITY_UPDATE frames, the response's ``priority`` field) are
read by :mod:`kyoukai_h2fast.http2.priority` and drive that scheduler.
"""
from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from h2.connection import ConnectionInputs
from h2.errors import ErrorCodes
from h2.events import DataReceived as H2DataReceived
from h2.events import PingAckReceived, RemoteSettingsChanged
from h2.events import StreamReset as H2StreamReset
from h2.events import WindowUpdated as H2WindowUpdated
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes
from h2.stream import StreamInputs, StreamState
from hyperframe.exceptions import InvalidPaddingError
from hyperframe.frame import DataFrame, ExtensionFrame, WindowUpdateFrame

from ...codec import frames as _frames
from ...config import ServerConfig
from ...constants import BUDGET_REASONS
from ...errors import ConnectionFailed
from .. import priority as _priority
from ..events import (
    ConnectionTerminated,
    DataReceived,
    ExtendedConnectReceived,
    PingAcknowledged,
    RequestReceived,
    StreamReset,
    TrailersReceived,
)
from .budgets import Budgets
from .connection import PriorityUpdated, ServerConnection
from .send import FRAME_NOW_LIMIT, Scheduler, SendQueue

if TYPE_CHECKING:
    from h2.stream import H2Stream

__all__ = ["Engine"]

log = logging.getLogger("kyoukai_h2fast.engine")

_PROTOCOL_ERROR = int(ErrorCodes.PROTOCOL_ERROR)
_NO_ERROR = int(ErrorCodes.NO_ERROR)
_ENHANCE_YOUR_CALM = int(ErrorCodes.ENHANCE_YOUR_CALM)
_FLOW_CONTROL_ERROR = int(ErrorCodes.FLOW_CONTROL_ERROR)
_MAX_WINDOW = 2**31 - 1
_INITIAL_WINDOW_SIZE = SettingCodes.INITIAL_WINDOW_SIZE
_SEND_HEADERS = ConnectionInputs.SEND_HEADERS
_STREAM_SEND_HEADERS = StreamInputs.SEND_HEADERS
_STREAM_SEND_END_STREAM = StreamInputs.SEND_END_STREAM
_headers_frames = _frames.headers_frames
_PRIORITIES = _priority.PRIORITIES
_UNSIGNALLED = _priority.UNSIGNALLED


class _BudgetExceeded(Exception):
    """A flood budget was crossed (the name of the budget in BUDGET_REASONS)."""


class Engine(Scheduler):
    """Server-side HTTP/2 connection state on ``h2``; see
    :class:`kyoukai_h2fast.contracts.Engine`."""

    __slots__ = ("_conn", "_config", "_budgets", "_closed", "_queues", "_rings", "_seqs",
                 "_waiting", "_framed_now", "_sent", "_queued_total", "_discard",
                 "_input_pending", "_bytes_received", "_bytes_sent", "__weakref__")

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._conn = ServerConnection(config)
        #: Flood budgets (counted per received frame).
        self._budgets = Budgets(config)
        #: Set after a connection error: every later call is ignored.
        self._closed = False
        #: Send queues of the streams whose response has started (headers queued).
        self._queues: dict[int, SendQueue] = {}
        #: The scheduler (RFC 9218 §10; send.py), per urgency (0 first): a ring of the
        #: incremental streams' ids and of 0, the marker of the non-incremental ones, whose ids
        #: are in the sequence, sorted.
        self._rings: list[deque] = [deque() for _ in range(8)]
        self._seqs: list[list] = [[] for _ in range(8)]
        #: Streams in the scheduler.
        self._waiting = 0
        #: DATA payload framed by queue_data since the last data_to_send.
        self._framed_now = 0
        #: Send-side events recorded since the last ``send_events()``.
        self._sent: list = []
        self._queued_total = 0
        #: Streams whose request body is no longer wanted: bytes still allowed before reset.
        self._discard: dict[int, int] = {}
        #: The last receive() stopped at max_frames.
        self._input_pending = False
        #: Bytes given to receive() and returned by data_to_send() (for the metrics).
        self._bytes_received = 0
        self._bytes_sent = 0

    # -- lifecycle ------------------------------------------------------------------------
    def initiate(self) -> None:
        conn = self._conn
        if conn.pending_acks or self._closed:
            return
        conn.initiate_connection()
        if conn.table_size != 4096:
            conn.send_table_size()
        extra = self._config.connection_window - 65_535
        if extra > 0:
            conn.increment_flow_control_window(extra)
        conn.control_frames = 0

    def receive(self, data: bytes, max_frames: int = -1) -> list:
        if self._closed:
            return []
        conn = self._conn
        buffer = conn.incoming_buffer
        budgets = self._budgets
        events: list = []
        self._input_pending = False
        conn.receiving = True
        try:
            if data:
                buffer.add_data(data)
                self._bytes_received += len(data)
            buffer.max_frame_size = conn.max_inbound_frame_size
            count = 0
            frame: Any  # (dispatched by class identity below, which type checkers do not follow)
            for frame in buffer:
                if not conn.settings_seen:
                    conn.first_frame(frame)
                cls = frame.__class__
                if cls is DataFrame:
                    name = budgets.frame(0, 1 if "END_STREAM" in frame.flags else 0,
                                         len(frame.data), 0)
                elif cls is WindowUpdateFrame:
                    name = budgets.frame(8, 0, 0, frame.window_increment)
                elif cls is ExtensionFrame:
                    name = budgets.frame(frame.type, 0, 0, 0)
                else:
                    name = budgets.frame(frame.type, 1 if "ACK" in frame.flags else 0, 0, 0)
                if name is not None:
                    raise _BudgetExceeded(name)
                conn.provoked_resets = 0
                h2_events = conn.receive_frame(frame)
                peer_resets = self._translate(h2_events, events) if h2_events else 0
                resets = peer_resets + conn.provoked_resets
                if resets and budgets.resets.add(resets):
                    raise _BudgetExceeded("resets")
                if conn.control_frames > budgets.max_control:
                    raise _BudgetExceeded("queued_control_frames")
                count += 1
                if count == max_frames:
                    self._input_pending = True
                    break
        except InvalidPaddingError as e:
            self._fail(_PROTOCOL_ERROR, f"Received frame with invalid padding: {e}")
        except ProtocolError as e:
            self._fail(int(e.error_code), str(e) or type(e).__name__)
        except _BudgetExceeded as e:
            message, debug = BUDGET_REASONS[e.args[0]]
            self._fail(_ENHANCE_YOUR_CALM, message, debug, e.args[0])
        finally:
            conn.receiving = False
        return _join_data(events) if len(events) > 1 else events

    @property
    def input_pending(self) -> bool:
        return self._input_pending and not self._closed

    def output_drained(self) -> None:
        self._conn.control_frames = 0

    def _fail(self, error_code: int, message: str, debug: bytes = b"",
              budget: str | None = None) -> None:
        """A connection error: GOAWAY, close, raise ConnectionFailed (``budget``: the flood
        budget crossed, if that is why)."""
        self._conn.terminate(error_code, debug)
        self._close()
        raise ConnectionFailed(error_code, message, budget)

    def _translate(self, h2_events: list, events: list) -> int:
        """h2's events of one frame -> ours (appended to ``events``); the peer's resets."""
        conn = self._conn
        peer_resets = 0
        for event in h2_events:
            cls = event.__class__
            if cls is H2DataReceived:
                sid = event.stream_id
                ended = event.stream_ended is not None
                if sid in self._discard:
                    self._discarded(sid, event.flow_controlled_length, ended)
                    continue
                if ended:
                    self._request_ended(sid)
                events.append(DataReceived(sid, event.data, event.flow_controlled_length, ended))
            elif cls is RequestReceived or cls is ExtendedConnectReceived:
                if event.end_stream:
                    self._request_ended(event.stream_id)
                events.append(event)
            elif cls is TrailersReceived:
                self._request_ended(event.stream_id)
                events.append(event)
            elif cls is H2StreamReset or cls is StreamReset:
                if cls is H2StreamReset:
                    code = int(event.error_code)
                    remote = bool(event.remote_reset)
                    event = StreamReset(event.stream_id, code, remote,
                                        "" if remote else _RESET_REASONS.get(code, f"0x{code:x}"))
                if event.remote:
                    peer_resets += 1
                self._drop_queue(event.stream_id)
                conn.forget(event.stream_id)
                if self._discard.pop(event.stream_id, None) is None:
                    events.append(event)  # (else the protocol is done with it already)
            elif cls is H2WindowUpdated:
                if event.stream_id:
                    self._wake(event.stream_id)
            elif cls is RemoteSettingsChanged:
                if _INITIAL_WINDOW_SIZE in event.changed_settings:
                    for sid in self._queues:
                        self._wake(sid)
            elif cls is ConnectionTerminated:
                events.append(event)
            elif cls is PriorityUpdated:
                self._reprioritize(event.stream_id, event.priority)
            elif cls is PingAckReceived:
                events.append(PingAcknowledged(bytes(event.ping_data)))
            # Not needed by the protocol: StreamEnded (folded into end_stream flags),
            # SettingsAcknowledged, PingReceived (h2 queued the ACK),
            # h2's PriorityUpdated (RFC 7540 priorities are ignored, RFC 9113 §5.3.2),
            # UnknownFrameReceived (§5.5), AlternativeServiceAvailable.
        return peer_resets

    def _close(self) -> None:
        self._closed = True
        self._queues.clear()
        for ring, seq in zip(self._rings, self._seqs, strict=False):
            ring.clear()
            seq.clear()
        self._waiting = 0
        self._queued_total = 0
        self._discard.clear()
        self._input_pending = False
        # Nothing is read any more: let go of the received bytes.
        self._conn.incoming_buffer = _frames.FrameBuffer(server=True)

    def _request_ended(self, stream_id: int) -> None:
        self._forget(stream_id)  # if our response is done too, the stream is closed

    def _forget(self, stream_id: int) -> None:
        """Free ``stream_id`` if it is closed (with what we kept for it)."""
        if self._conn.forget(stream_id):
            self._discard.pop(stream_id, None)

    def _discarded(self, stream_id: int, size: int, ended: bool) -> None:
        """DATA on a stream whose body nobody reads: credit it, reset past the allowance."""
        conn = self._conn
        if size:
            conn.acknowledge_received_data(size, stream_id)
        left = self._discard[stream_id] - size
        if ended:
            self._discard[stream_id] = 0      # (kept while the stream lives: still stopped)
            self._forget(stream_id)
            # Some clients (curl 7.88) that got the whole response before they finished the
            # upload wait for the server to send anything more before they notice the stream
            # is done: a PING is a harmless wake-up.
            conn._data_to_send += _LINGER_PING
        elif left < 0:
            del self._discard[stream_id]
            self.reset_stream(stream_id, _NO_ERROR)
        else:
            self._discard[stream_id] = left

    def data_to_send(self, max_data: int = -1) -> bytes | bytearray:
        conn = self._conn
        self._framed_now = 0
        if self._waiting and not self._closed:
            self._schedule(max_data)
        data = conn._data_to_send
        if not data:
            return b""
        conn._data_to_send = bytearray()
        self._bytes_sent += len(data)
        return data

    def send_events(self) -> list:
        sent = self._sent
        if not sent:
            return sent
        self._sent = []
        return sent

    def goaway(self, error_code: int = _NO_ERROR, debug: bytes = b"",
               last_stream_id: int | None = None) -> int:
        conn = self._conn
        earlier = conn.goaway_last_stream_id
        if self._closed:
            return earlier if earlier is not None else conn.highest_inbound_stream_id
        if last_stream_id is None:
            last_stream_id = conn.highest_inbound_stream_id
        else:
            last_stream_id = min(max(int(last_stream_id), 0), _MAX_WINDOW)
        if earlier is not None and last_stream_id > earlier:
            last_stream_id = earlier          # §6.8: never raised
        conn.goaway_last_stream_id = last_stream_id
        conn._data_to_send += _frames.goaway_frame(last_stream_id, error_code, debug)
        return last_stream_id

    # -- streams --------------------------------------------------------------------------
    def _sendable(self, stream_id: int) -> H2Stream | None:
        """h2's stream if it is open for sending, else None."""
        if self._closed:
            return None
        stream = self._conn.streams.get(stream_id)
        if stream is None or stream.state_machine.state not in _SENDABLE:
            return None
        return stream

    def send_headers(self, stream_id: int, headers: list, end_stream: bool) -> bool:
        """The same transitions as ``h2``'s ``send_headers`` (connection SEND_HEADERS, stream
        SEND_HEADERS and SEND_END_STREAM), with the block encoded by our HPACK encoder and
        framed (HEADERS + CONTINUATION) by our serializer, without frame objects."""
        stream = self._sendable(stream_id)
        if stream is None or stream_id in self._queues:
            return False
        conn = self._conn
        if headers[0][1][:1] == b"1":  # informational (1xx): h2's own path knows the rules
            if end_stream:             # never the end of the response (RFC 9110 §15.2)
                return False
            conn.send_headers(stream_id, headers, end_stream=False)
            return True
        conn.state_machine.process_input(_SEND_HEADERS)
        machine = stream.state_machine
        machine.process_input(_STREAM_SEND_HEADERS)
        if end_stream:
            machine.process_input(_STREAM_SEND_END_STREAM)
        conn._data_to_send += _headers_frames(stream_id, conn.encoder.encode(headers),
                                              end_stream, conn.max_outbound_frame_size)
        if end_stream:
            self._response_sent(stream_id, stream)
            return True
        priority = getattr(stream, "kh2_priority", _UNSIGNALLED)
        for name, _ in headers:
            if name == b"priority":             # the response's own priority (RFC 9218 §8)
                priority = _priority.response_priority(
                    [value for name, value in headers if name == b"priority"], priority)
                break
        self._queues[stream_id] = SendQueue(priority)
        return True

    def queue_data(self, stream_id: int, data: bytes | bytearray | memoryview,
                   end_stream: bool) -> bool:
        queue = self._queues.get(stream_id)
        if queue is None or queue.end or self._sendable(stream_id) is None:
            return False
        n = len(data)
        if n:
            queue.chunks.append(data)
            queue.size += n
            self._queued_total += n
        if end_stream:
            queue.end = True
        if not queue.ready and (n or end_stream):
            size = queue.size
            stream = self._conn.streams[stream_id]
            if not self._waiting and len(queue.chunks) <= 1 and \
                    size <= self._conn.max_outbound_frame_size and \
                    self._framed_now + size <= FRAME_NOW_LIMIT:
                # Nothing else waits: framing now is what the scheduler would do (one frame).
                if size <= stream.outbound_flow_control_window and \
                        size <= self._conn.outbound_flow_control_window:
                    self._send_now(stream, queue)
                    return True
            if size == 0 or stream.outbound_flow_control_window > 0:
                self._ring_add(stream_id, queue)
        return True

    def send_trailers(self, stream_id: int, headers: list) -> bool:
        """A trailer block with END_STREAM (h2's SEND_HEADERS and SEND_END_STREAM on an open
        stream), framed at once: only once the response's header block is out and its send
        queue is empty (the DATA went before)."""
        for field in headers:
            if (type(field) is not tuple or len(field) != 2 or type(field[0]) is not bytes
                    or type(field[1]) is not bytes):
                raise TypeError(f"trailer fields must be (bytes, bytes) tuples, not {field!r}")
        queue = self._queues.get(stream_id)
        stream = self._sendable(stream_id)
        if queue is None or stream is None or queue.end or queue.size:
            return False
        conn = self._conn
        conn.state_machine.process_input(_SEND_HEADERS)
        machine = stream.state_machine
        machine.process_input(_STREAM_SEND_HEADERS)
        machine.process_input(_STREAM_SEND_END_STREAM)
        conn._data_to_send += _headers_frames(stream_id, conn.encoder.encode(headers), True,
                                              conn.max_outbound_frame_size)
        self._drop_queue(stream_id)
        self._response_sent(stream_id, stream)
        return True

    def queued(self, stream_id: int) -> int:
        queue = self._queues.get(stream_id)
        return 0 if queue is None else queue.size

    @property
    def queued_total(self) -> int:
        return self._queued_total

    @property
    def bytes_received(self) -> int:
        return self._bytes_received

    @property
    def bytes_sent(self) -> int:
        return self._bytes_sent

    @property
    def priorities_remembered(self) -> int:
        """PRIORITY_UPDATEs kept for streams not yet open (RFC 9218 §7; bounded)."""
        return len(self._conn.idle_priorities)

    @property
    def highest_stream_id(self) -> int:
        """The highest stream id the peer opened (0: none yet); requests on the connection
        are about ``(highest_stream_id + 1) // 2``."""
        return int(self._conn.highest_inbound_stream_id)

    def set_priority(self, stream_id: int, urgency: int, incremental: bool) -> None:
        if self._closed or not 0 <= urgency <= 7:
            return
        self._reprioritize(stream_id, _PRIORITIES[2 * urgency + bool(incremental)])

    def acknowledge(self, stream_id: int, size: int) -> None:
        if size <= 0 or self._closed:
            return
        conn = self._conn
        if stream_id in conn.streams:
            conn.acknowledge_received_data(size, stream_id)
            return
        # A stream that is gone (or never was): only the connection window is owed.
        increment = conn._inbound_flow_control_window_manager.process_bytes(size)
        if increment:
            conn._prepare_for_sending([WindowUpdateFrame(0, window_increment=increment)])

    def stop_reading(self, stream_id: int, max_bytes: int) -> None:
        if self._closed:
            return
        stream = self._conn.streams.get(stream_id)
        if stream is not None and not stream.closed:
            self._discard[stream_id] = max(max_bytes, 0)

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        if self._closed:
            return
        conn = self._conn
        stream = conn.streams.get(stream_id)
        self._drop_queue(stream_id)
        self._discard.pop(stream_id, None)
        if stream is not None and not stream.closed:
            conn.reset_stream(stream_id, error_code)
        conn.forget(stream_id)

    def send_ping(self, opaque_data: bytes) -> None:
        if not isinstance(opaque_data, bytes) or len(opaque_data) != 8:
            raise ValueError(f"PING opaque data must be 8 bytes, got {opaque_data!r}")
        if not self._closed:
            self._conn._data_to_send += _frames.ping_frame(opaque_data)


def _join_data(events: list) -> list:
    """Consecutive DataReceived of one stream, with no other event between them, as one: the
    payloads joined, the flow-controlled lengths added, end_stream from the last (what the
    compiled engine reports for the DATA frames of one ``receive``)."""
    out: list = []
    run: list = []
    for event in events:
        if event.__class__ is DataReceived:
            if run and run[0].stream_id == event.stream_id:
                run.append(event)
                if event.end_stream:
                    out.append(_joined(run))
                    run = []
                continue
            if run:
                out.append(_joined(run))
                run = []
            if not event.end_stream:
                run = [event]
                continue
        elif run:
            out.append(_joined(run))
            run = []
        out.append(event)
    if run:
        out.append(_joined(run))
    return out


def _joined(run: list) -> DataReceived:
    if len(run) == 1:
        return run[0]
    return DataReceived(run[0].stream_id, b"".join([event.data for event in run]),
                        sum(event.flow_controlled_length for event in run), run[-1].end_stream)


#: PING sent when a client ends an upload after our early response (see ``_discarded``).
_LINGER_PING = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"\x00" * 8

#: Why h2 itself resets a stream, by error code (our own resets say why in full).
_RESET_REASONS = {
    _FLOW_CONTROL_ERROR: "its send window overflowed (FLOW_CONTROL_ERROR)",
    int(ErrorCodes.STREAM_CLOSED): "a frame arrived on a closed stream (STREAM_CLOSED)",
    _PROTOCOL_ERROR: "the request broke RFC 9113 (PROTOCOL_ERROR)",
}

#: Stream states in which the server may still send (RFC 9113 §5.1).
_SENDABLE = frozenset((StreamState.OPEN, StreamState.HALF_CLOSED_REMOTE))
