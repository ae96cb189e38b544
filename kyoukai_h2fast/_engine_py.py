"""The pure twin of the connection engine: the :class:`~kyoukai_h2fast.contracts.Engine`
contract on top of ``h2``'s state machine; the oracle of the compiled engine's differential tests.

Theory of operation. The protocol hands received bytes to :meth:`Engine.receive` and gets
back a list of :mod:`kyoukai_h2fast.events`; it queues response headers and body bytes and
takes what to write from :meth:`Engine.data_to_send`. The engine does no I/O. ``h2`` keeps the
connection and stream state, with our pieces plugged in (the frame buffer
:mod:`kyoukai_h2fast.frames`, the HPACK coder :mod:`kyoukai_h2fast.hpack` and request header
validation :mod:`kyoukai_h2fast.headers`, compiled when built); the send queues and their
scheduler (:mod:`kyoukai_h2fast._engine_py_send`) are ours.

Where we differ from plain ``h2`` (each in :class:`_ServerConnection`):

* malformed requests and content-length mismatches are *stream* errors (RFC 9113 §8.1.1), not
  connection errors, and HPACK failures are COMPRESSION_ERROR (§4.3);
* streams above SETTINGS_MAX_CONCURRENT_STREAMS, or opened after our GOAWAY, are refused with
  RST_STREAM(REFUSED_STREAM) after their field block is decoded (keeping HPACK in sync),
  instead of failing the connection;
* GOAWAY (sent or received) does not freeze the connection: in-flight streams may finish
  (§6.8), which ``h2``'s connection state machine does not allow;
* DATA on a stream we reset is ignored after crediting the connection window (§5.1);
* closed streams are forgotten at once and received frames are not ``repr()``-ed on the hot
  path;
* late frames have one outcome whatever our side did meanwhile: a WINDOW_UPDATE overflowing
  the send window of a stream that already closed normally still gets
  RST_STREAM(FLOW_CONTROL_ERROR) (§6.9.1; ``h2`` ignores it once the stream is gone), using a
  bounded memory of closed streams' last send windows;
* responses are sent without frame objects: the engine makes ``h2``'s state transitions and
  window accounting itself, encodes with our HPACK encoder and writes frames with our
  serializer;
* RFC 9218: SETTINGS_NO_RFC7540_PRIORITIES = 1 is advertised and the peer's value validated
  (0 or 1), requests' ``priority`` fields and PRIORITY_UPDATE frames are read
  (:mod:`kyoukai_h2fast.priority`) and drive the DATA scheduler.
"""
from __future__ import annotations

import logging
import time
from collections import deque

from h2.config import H2Configuration
from h2.connection import AllowedStreamIDs, ConnectionInputs, H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    DataReceived as H2DataReceived,
    RemoteSettingsChanged,
    StreamReset as H2StreamReset,
    WindowUpdated as H2WindowUpdated,
)
from h2.exceptions import (
    DenialOfServiceError,
    FrameDataMissingError,
    InvalidBodyLengthError,
    NoSuchStreamError,
    ProtocolError,
    StreamClosedError,
    StreamIDTooLowError,
)
from h2.settings import SettingCodes, Settings
from h2.stream import StreamClosedBy, StreamInputs, StreamState
from h2.utilities import SizeLimitDict
from hpack.exceptions import HPACKError, OversizedHeaderListError
from hyperframe.frame import RstStreamFrame, WindowUpdateFrame

from . import frames as _frames
from . import headers as _headers
from . import hpack as _hpack
from . import priority as _priority
from ._engine_py_send import FRAME_NOW_LIMIT, Scheduler, SendQueue
from .config import ServerConfig
from .errors import CompressionError, ConnectionFailed, MalformedRequestError
from .events import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    StreamReset,
    TrailersReceived,
)

__all__ = ["Engine"]

log = logging.getLogger("kyoukai_h2fast.engine")

_PROTOCOL_ERROR = int(ErrorCodes.PROTOCOL_ERROR)
_REFUSED_STREAM = int(ErrorCodes.REFUSED_STREAM)
_NO_ERROR = int(ErrorCodes.NO_ERROR)
_ENHANCE_YOUR_CALM = int(ErrorCodes.ENHANCE_YOUR_CALM)
_INTERNAL_ERROR = int(ErrorCodes.INTERNAL_ERROR)
_FLOW_CONTROL_ERROR = int(ErrorCodes.FLOW_CONTROL_ERROR)
_MAX_WINDOW = 2**31 - 1
_INITIAL_WINDOW_SIZE = SettingCodes.INITIAL_WINDOW_SIZE
_SEND_HEADERS = ConnectionInputs.SEND_HEADERS
_STREAM_SEND_HEADERS = StreamInputs.SEND_HEADERS
_STREAM_SEND_END_STREAM = StreamInputs.SEND_END_STREAM
_headers_frames = _frames.headers_frames
_NO_RFC7540_PRIORITIES = 0x9
_PRIORITY_UPDATE = 0x10
#: PRIORITY_UPDATEs remembered for streams not yet open, at most (RFC 9218 §7).
IDLE_PRIORITY_MEMORY = 256
_PRIORITIES = _priority.PRIORITIES
_UNSIGNALLED = _priority.UNSIGNALLED


class _PriorityUpdated:
    """Internal: a PRIORITY_UPDATE changed the priority of a live stream."""

    __slots__ = ("stream_id", "priority")

    def __init__(self, stream_id: int, priority: tuple) -> None:
        self.stream_id = stream_id
        self.priority = priority


class _ServerConnection(H2Connection):
    """``h2``'s connection with our compiled frame/HPACK path and server-side fixes."""

    # Remember how this many recently closed streams ended (RST vs END_STREAM), which decides
    # between stream and connection errors for late frames; bounded memory.
    MAX_CLOSED_STREAMS = 4096

    def __init__(self, config: ServerConfig) -> None:
        super().__init__(H2Configuration(
            client_side=False,
            header_encoding=None,
            # Our compiled path validates request headers (kyoukai_h2fast.headers) and builds
            # response headers correctly by construction (kyoukai_h2fast.headers.response_headers).
            validate_inbound_headers=False,
            normalize_inbound_headers=False,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        ))
        self.local_settings = Settings(client=False, initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: config.max_concurrent_streams,
            SettingCodes.INITIAL_WINDOW_SIZE: config.stream_window,
            SettingCodes.MAX_FRAME_SIZE: config.max_frame_size,
            SettingCodes.MAX_HEADER_LIST_SIZE: config.max_header_list_size,
            SettingCodes.ENABLE_PUSH: 0,
            _NO_RFC7540_PRIORITIES: 1,      # RFC 9218 §2.1: we schedule by RFC 9218 signals
        })
        self.max_inbound_frame_size = config.max_frame_size
        self.incoming_buffer = _frames.FrameBuffer(server=True)
        # One header block (HEADERS + CONTINUATIONs) may not exceed what it could decode to:
        # a field costs at least as much decoded (+32 B) as encoded (+ a few prefix bytes).
        self.incoming_buffer.max_header_block_size = config.max_header_list_size + 1024
        self.encoder = _hpack.Encoder()
        self.decoder = _hpack.Decoder()
        self.decoder.max_header_list_size = config.max_header_list_size
        self._serialize = _frames.serialize_frame
        self._max_streams = config.max_concurrent_streams
        #: Set once we sent GOAWAY: streams above it are refused.
        self.goaway_last_stream_id: int | None = None
        #: Last send window of streams that closed normally (bounded like _closed_streams).
        self._closed_windows = SizeLimitDict(size_limit=self.MAX_CLOSED_STREAMS)
        #: RFC 9218 §7: PRIORITY_UPDATEs for streams not yet open, by stream id (bounded).
        self.idle_priorities: dict[int, tuple] = {}

    # -- outbound -------------------------------------------------------------------------
    def _prepare_for_sending(self, frames: list) -> None:
        if frames:
            serialize = self._serialize
            out = self._data_to_send
            for frame in frames:
                out += serialize(frame)

    # -- inbound dispatch -----------------------------------------------------------------
    def _receive_frame(self, frame):
        # Same outcomes as h2's version, without its repr(frame) per frame for a trace log.
        try:
            frames, events = self._frame_dispatch_table[frame.__class__](frame)
        except StreamClosedError as e:
            # A frame on a stream closed by RST_STREAM is a stream error; otherwise the
            # error propagates as a connection error (RFC 9113 §5.1, "closed").
            if not self._stream_is_closed_by_reset(e.stream_id):
                raise
            frames = [RstStreamFrame(e.stream_id, error_code=e.error_code)]
            events = e._events
        except StreamIDTooLowError as e:
            if self._stream_is_closed_by_reset(e.stream_id):
                frames = [RstStreamFrame(e.stream_id, error_code=ErrorCodes.STREAM_CLOSED)]
                events = []
            elif self._stream_is_closed_by_end(e.stream_id):
                raise StreamClosedError(e.stream_id) from e
            else:
                raise
        self._prepare_for_sending(frames)
        return events

    def _decode_field_block(self, data: bytes) -> list:
        try:
            return self.decoder.decode(data, raw=True)
        except OversizedHeaderListError as e:
            raise DenialOfServiceError(f"header list over the limit: {e}") from e
        except (HPACKError, IndexError, TypeError, UnicodeDecodeError) as e:
            raise CompressionError(f"cannot decode field block: {e}") from e

    def _receive_headers_frame(self, frame):
        stream_id = frame.stream_id
        end_stream = "END_STREAM" in frame.flags
        is_new = stream_id not in self.streams
        refuse = False
        if is_new:
            refuse = ((self.goaway_last_stream_id is not None
                       and stream_id > self.goaway_last_stream_id)
                      or self.open_inbound_streams >= self._max_streams)
        # Decode first, always: skipping a block would desynchronise the HPACK table.
        headers = self._decode_field_block(frame.data)
        conn_events = self.state_machine.process_input(ConnectionInputs.RECV_HEADERS)
        remembered = None
        if self.idle_priorities and stream_id > self.highest_inbound_stream_id and stream_id & 1:
            remembered = self._idle_take(stream_id)
        stream = self._get_or_create_stream(stream_id, AllowedStreamIDs.ODD)
        if "PRIORITY" in frame.flags:
            self._receive_priority_frame(frame)  # validates; priority itself is ignored
        try:
            frames, h2_events = stream.receive_headers(headers, end_stream, None)
        except NoSuchStreamError:
            raise
        except ProtocolError as e:  # content-length syntax, trailers without END_STREAM
            return self._stream_error(stream, _PROTOCOL_ERROR, str(e), notify=not is_new)
        if refuse:
            return self._stream_error(stream, _REFUSED_STREAM, "over the stream limit or "
                                      "after GOAWAY", notify=False)
        try:
            if is_new:
                content_length = _headers.validate_request_headers(headers)
                if end_stream and content_length > 0:
                    # §8.1.1: content-length must equal the DATA received (none here).
                    raise MalformedRequestError(
                        f"content-length {content_length} but the request has no body")
                priority = remembered
                if priority is None:
                    for name, _ in headers:
                        if name == b"priority":
                            priority = _priority.request_priority(
                                [value for name, value in headers if name == b"priority"])
                            break
                    else:
                        priority = _UNSIGNALLED
                if priority is not _UNSIGNALLED:
                    # (only then: a new attribute unshares the stream's __dict__, which
                    # costs every request that carries no signal)
                    stream.kh2_priority = priority
                event = RequestReceived(stream_id, headers, end_stream, content_length, priority)
            else:
                _headers.validate_trailers(headers)
                expected = stream._expected_content_length
                if expected is not None and expected != stream._actual_content_length:
                    raise MalformedRequestError(
                        f"content-length {expected} but {stream._actual_content_length} "
                        "bytes of body before the trailers")
                event = TrailersReceived(stream_id, headers)
        except MalformedRequestError as e:
            return self._stream_error(stream, _PROTOCOL_ERROR, str(e), notify=not is_new)
        del h2_events  # RequestReceived/TrailersReceived/StreamEnded, replaced by ours
        return frames, conn_events + [event]

    def _stream_error(self, stream, error_code: int, reason: str, notify: bool):
        """RST_STREAM ``stream`` (RFC 9113 §5.4.2); ``notify``: the protocol knows the stream
        and gets a StreamReset event."""
        log.debug("stream %d reset with error 0x%x: %s", stream.stream_id, error_code, reason)
        try:
            frames = stream.reset_stream(error_code)
        except ProtocolError:  # the stream's state machine already closed it
            frames = [RstStreamFrame(stream.stream_id, error_code=error_code)]
            stream.state_machine.state = StreamState.CLOSED
            stream.state_machine.stream_closed_by = StreamClosedBy.SEND_RST_STREAM
        self._forget(stream.stream_id)
        events = [StreamReset(stream.stream_id, error_code, False, reason)] if notify else []
        return frames, events

    def _receive_data_frame(self, frame):
        try:
            return super()._receive_data_frame(frame)
        except InvalidBodyLengthError as e:  # RFC 9113 §8.1.1: malformed, a stream error
            stream = self.streams[frame.stream_id]
            frames, events = self._stream_error(stream, _PROTOCOL_ERROR,
                                                f"content-length mismatch ({e})", notify=True)
            increment = self._inbound_flow_control_window_manager.process_bytes(
                frame.flow_controlled_length)
            if increment:
                frames.extend(self._window_update(0, increment))
            return frames, events

    def _window_update(self, stream_id: int, increment: int) -> list:
        return [WindowUpdateFrame(stream_id, window_increment=increment)]

    def _receive_window_update_frame(self, frame):
        stream_id = frame.stream_id
        if stream_id and stream_id not in self.streams:
            window = self._closed_windows.get(stream_id)
            if window is not None:
                # Closed normally (END_STREAM both ways): the window is still checked, so the
                # outcome does not depend on whether our response already finished (§6.9.1).
                window += frame.window_increment
                if window > _MAX_WINDOW:
                    del self._closed_windows[stream_id]
                    return [RstStreamFrame(stream_id, error_code=_FLOW_CONTROL_ERROR)], []
                self._closed_windows[stream_id] = window
                return [], []
        return super()._receive_window_update_frame(frame)

    def _handle_data_on_closed_stream(self, events, exc, frame):
        if exc._events or (self._stream_closed_by(frame.stream_id)
                           is not StreamClosedBy.SEND_RST_STREAM):
            # h2 resets the stream now (DATA on half-closed(remote): STREAM_CLOSED, §5.1), or
            # the stream ended normally: h2's answer (RST_STREAM, window credit) is right.
            frames, events = super()._handle_data_on_closed_stream(events, exc, frame)
            self._forget(frame.stream_id)
            return frames, events
        # We reset it; RFC 9113 §5.1: ignore, but the bytes still count on the connection.
        increment = self._inbound_flow_control_window_manager.process_bytes(
            frame.flow_controlled_length)
        frames = self._window_update(0, increment) if increment else []
        return frames, events

    def _receive_settings_frame(self, frame):
        if "ACK" not in frame.flags and \
                frame.settings.get(_NO_RFC7540_PRIORITIES, 0) not in (0, 1):   # RFC 9218 §2.1
            raise ProtocolError("SETTINGS_NO_RFC7540_PRIORITIES "
                                f"{frame.settings[_NO_RFC7540_PRIORITIES]}")
        return super()._receive_settings_frame(frame)

    def _receive_unknown_frame(self, frame):
        if frame.type != _PRIORITY_UPDATE:
            return [], []                   # RFC 9113 §5.5: ignored
        # RFC 9218 §7.1 (the compiled engine's _recv_priority_update).
        if frame.stream_id:
            raise ProtocolError(f"PRIORITY_UPDATE on stream {frame.stream_id}")
        body = frame.body
        if len(body) < 4:
            raise FrameDataMissingError(f"PRIORITY_UPDATE of {len(body)} bytes")
        sid = int.from_bytes(body[:4], "big") & 0x7FFF_FFFF
        if sid == 0:
            raise ProtocolError("PRIORITY_UPDATE for stream 0")
        if sid & 1 == 0:                    # we never push: an idle push stream
            raise ProtocolError(f"PRIORITY_UPDATE for push stream {sid}")
        stream = self.streams.get(sid)
        idle = sid > self.highest_inbound_stream_id
        if (stream is None or stream.closed) and not idle:
            return [], []                   # closed: nothing to send any more
        priority = _priority.update_priority(bytes(body[4:]))
        if priority is None:
            return [], []                   # not a Dictionary: ignored, never an error
        if not idle:
            return [], [_PriorityUpdated(sid, priority)]
        remembered = self.idle_priorities
        if sid not in remembered:
            if len(remembered) + 1 + self.open_inbound_streams > self._max_streams:
                raise ProtocolError(f"PRIORITY_UPDATE for stream {sid}: more streams "
                                    "prioritized while idle and open than "
                                    "SETTINGS_MAX_CONCURRENT_STREAMS")
            if len(remembered) >= IDLE_PRIORITY_MEMORY:
                return [], []
        remembered[sid] = priority          # the most recent one counts
        return [], []

    def _idle_take(self, stream_id: int):
        """Stream ``stream_id`` opens: its remembered priority (or None); the entries up to it
        are dropped (those below can no longer open, RFC 9113 §5.1.1)."""
        remembered = self.idle_priorities
        priority = remembered.pop(stream_id, None)
        for sid in [sid for sid in remembered if sid < stream_id]:
            del remembered[sid]
        return priority

    def _receive_goaway_frame(self, frame):
        # Unlike h2, keep the connection usable so in-flight streams can finish (§6.8): no
        # transition to CLOSED and no dropping of queued output. The protocol decides.
        event = ConnectionTerminated(int(frame.error_code), frame.last_stream_id,
                                     frame.additional_data or None)
        return [], [event]

    # -- bookkeeping ----------------------------------------------------------------------
    def _forget(self, stream_id: int) -> bool:
        """Free a closed stream (remember how it ended, bounded); False if it is not closed."""
        stream = self.streams.get(stream_id)
        if stream is None:
            return True
        if not stream.closed:
            return False
        del self.streams[stream_id]
        closed_by = stream.closed_by
        self._closed_streams[stream_id] = closed_by
        if closed_by is StreamClosedBy.SEND_END_STREAM or closed_by is StreamClosedBy.RECV_END_STREAM:
            self._closed_windows[stream_id] = stream.outbound_flow_control_window
        return True




class Engine(Scheduler):
    """Server-side HTTP/2 connection state on ``h2``; see :class:`kyoukai_h2fast.contracts.Engine`."""

    __slots__ = ("_conn", "_config", "_resets", "_closed", "_queues", "_rings", "_seqs",
                 "_waiting", "_framed_now", "_sent", "_queued_total", "_discard", "__weakref__")

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._conn = _ServerConnection(config)
        #: Timestamps of recent peer resets, for the rapid-reset guard.
        self._resets: list[float] = []
        #: Set after a connection error: every later call is ignored.
        self._closed = False
        #: Send queues of the streams whose response has started (headers queued).
        self._queues: dict[int, SendQueue] = {}
        #: The scheduler (RFC 9218 §10; _engine_py_send), per urgency (0 first): a ring of the
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

    # -- lifecycle ------------------------------------------------------------------------
    def initiate(self) -> None:
        conn = self._conn
        conn.initiate_connection()
        if self._config.header_table_size != 4096:
            conn.update_settings({SettingCodes.HEADER_TABLE_SIZE: self._config.header_table_size})
        extra = self._config.connection_window - 65_535
        if extra > 0:
            conn.increment_flow_control_window(extra)

    def receive(self, data: bytes) -> list:
        if self._closed:
            return []
        conn = self._conn
        try:
            h2_events = conn.receive_data(data)
        except ProtocolError as e:  # h2 queued GOAWAY already
            self._close()
            raise ConnectionFailed(int(e.error_code), str(e) or type(e).__name__) from e
        events = []
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
            elif cls is RequestReceived:
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
                self._drop_queue(event.stream_id)
                conn._forget(event.stream_id)
                if event.remote and self._reset_flood():
                    self.goaway(_ENHANCE_YOUR_CALM, b"too many stream resets")
                    self._close()
                    raise ConnectionFailed(_ENHANCE_YOUR_CALM, "rapid reset flood")
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
            elif cls is _PriorityUpdated:
                self._reprioritize(event.stream_id, event.priority)
            # Not needed by the protocol: StreamEnded (folded into end_stream flags),
            # SettingsAcknowledged, PingReceived (h2 queued the ACK), PingAckReceived,
            # PriorityUpdated (RFC 7540 priorities are ignored, RFC 9113 §5.3.2),
            # AlternativeServiceAvailable.
        return events

    def _close(self) -> None:
        self._closed = True
        self._queues.clear()
        for ring, seq in zip(self._rings, self._seqs):
            ring.clear()
            seq.clear()
        self._waiting = 0
        self._queued_total = 0
        self._discard.clear()

    def _reset_flood(self) -> bool:
        now = time.monotonic()
        resets = self._resets
        resets.append(now)
        if len(resets) > self._config.max_resets_per_10s:
            if now - resets[0] < 10.0:
                return True
            del resets[: len(resets) // 2]
        return False

    def _request_ended(self, stream_id: int) -> None:
        self._conn._forget(stream_id)  # if our response is done too, the stream is closed

    def _discarded(self, stream_id: int, size: int, ended: bool) -> None:
        """DATA on a stream whose body nobody reads: credit it, reset past the allowance."""
        conn = self._conn
        if size:
            conn.acknowledge_received_data(size, stream_id)
        left = self._discard[stream_id] - size
        if ended:
            del self._discard[stream_id]
            conn._forget(stream_id)
            # Some clients (curl 7.88) that got the whole response before they finished the
            # upload wait for the server to send anything more before they notice the stream
            # is done: a PING is a harmless wake-up.
            conn._data_to_send += _LINGER_PING
        elif left < 0:
            del self._discard[stream_id]
            self.reset_stream(stream_id, _NO_ERROR)
        else:
            self._discard[stream_id] = left

    def data_to_send(self, max_data: int = -1) -> bytes:
        conn = self._conn
        self._framed_now = 0
        if self._waiting and not self._closed:
            self._schedule(max_data)
        data = conn._data_to_send
        if not data:
            return b""
        conn._data_to_send = bytearray()
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
        if last_stream_id is None:
            last_stream_id = conn.highest_inbound_stream_id
        if self._closed:
            return last_stream_id
        conn.goaway_last_stream_id = last_stream_id
        conn._data_to_send += _frames.goaway_frame(last_stream_id, error_code, debug)
        return last_stream_id

    # -- streams --------------------------------------------------------------------------
    def _sendable(self, stream_id: int):
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

    def queue_data(self, stream_id: int, data, end_stream: bool) -> bool:
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

    def queued(self, stream_id: int) -> int:
        queue = self._queues.get(stream_id)
        return 0 if queue is None else queue.size

    @property
    def queued_total(self) -> int:
        return self._queued_total

    @property
    def priorities_remembered(self) -> int:
        """PRIORITY_UPDATEs kept for streams not yet open (RFC 9218 §7; bounded)."""
        return len(self._conn.idle_priorities)

    def set_priority(self, stream_id: int, urgency: int, incremental: bool) -> None:
        if self._closed or not 0 <= urgency <= 7:
            return
        self._reprioritize(stream_id, _PRIORITIES[2 * urgency + bool(incremental)])

    def acknowledge(self, stream_id: int, size: int) -> None:
        if size and not self._closed:
            self._conn.acknowledge_received_data(size, stream_id)

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
        conn._forget(stream_id)

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
