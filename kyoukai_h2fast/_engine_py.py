"""The pure twin of the connection engine: the :class:`~kyoukai_h2fast.contracts.Engine`
contract on top of ``h2``'s state machine; the oracle of the compiled engine's differential tests.

Theory of operation. The protocol hands received bytes to :meth:`Engine.receive` and gets
back a list of :mod:`kyoukai_h2fast.events`; it queues response headers and body bytes and
takes what to write from :meth:`Engine.data_to_send`. The engine does no I/O. ``h2`` keeps the
connection and stream state, with our pieces plugged in (the frame buffer
:mod:`kyoukai_h2fast.frames`, the HPACK coder :mod:`kyoukai_h2fast.hpack` and request header
validation :mod:`kyoukai_h2fast.headers`, compiled when built); the send queues and their
scheduler (:class:`_SendQueue`, :meth:`Engine.data_to_send`) are ours.

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
  serializer.
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
from .config import ServerConfig
from .errors import CompressionError, ConnectionFailed, MalformedRequestError
from .events import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    ResponseSent,
    StreamDrained,
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
_SEND_DATA = ConnectionInputs.SEND_DATA
_STREAM_SEND_HEADERS = StreamInputs.SEND_HEADERS
_STREAM_SEND_DATA = StreamInputs.SEND_DATA
_STREAM_SEND_END_STREAM = StreamInputs.SEND_END_STREAM
_headers_frames = _frames.headers_frames
_data_frames = _frames.data_frames


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
                event = RequestReceived(stream_id, headers, end_stream, content_length)
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




class _SendQueue:
    """A stream's response body waiting to be framed: chunks in order, and its scheduling."""

    __slots__ = ("chunks", "size", "end", "urgency", "incremental", "ready")

    def __init__(self) -> None:
        #: Body chunks (bytes-like), the first possibly partly sent already (then a memoryview
        #: of its rest).
        self.chunks: deque = deque()
        #: Bytes in ``chunks``.
        self.size = 0
        #: The last chunk of the response is queued.
        self.end = False
        self.urgency = 3
        self.incremental = False
        #: In the scheduler's rotation (has data, or an END_STREAM to send, and window).
        self.ready = False


class Engine:
    """Server-side HTTP/2 connection state on ``h2``; see :class:`kyoukai_h2fast.contracts.Engine`."""

    __slots__ = ("_conn", "_config", "_resets", "_closed", "_queues", "_ready", "_waiting",
                 "_sent", "_queued_total", "_discard", "__weakref__")

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._conn = _ServerConnection(config)
        #: Timestamps of recent peer resets, for the rapid-reset guard.
        self._resets: list[float] = []
        #: Set after a connection error: every later call is ignored.
        self._closed = False
        #: Send queues of the streams whose response has started (headers queued).
        self._queues: dict[int, _SendQueue] = {}
        #: Stream ids in the scheduler's rotation, one deque per urgency (RFC 9218: 0 first).
        self._ready: list[deque] = [deque() for _ in range(8)]
        #: Stream ids in all of ``_ready``.
        self._waiting = 0
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
            # Not needed by the protocol: StreamEnded (folded into end_stream flags),
            # SettingsAcknowledged, PingReceived (h2 queued the ACK), PingAckReceived,
            # PriorityUpdated (RFC 7540 priorities are ignored, RFC 9113 §5.3.2),
            # UnknownFrameReceived (§5.5), AlternativeServiceAvailable.
        return events

    def _close(self) -> None:
        self._closed = True
        self._queues.clear()
        for ready in self._ready:
            ready.clear()
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
        elif left < 0:
            del self._discard[stream_id]
            self.reset_stream(stream_id, _NO_ERROR)
        else:
            self._discard[stream_id] = left

    def data_to_send(self, max_data: int = -1) -> bytes:
        conn = self._conn
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

    @property
    def wants_write(self) -> bool:
        if self._conn._data_to_send:
            return True
        if self._closed or not self._waiting:
            return False
        if self._conn.outbound_flow_control_window > 0:
            return True
        queues = self._queues  # only a bare END_STREAM can go out without window
        return any(queues[sid].size == 0 for ready in self._ready for sid in ready)

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
        else:
            self._queues[stream_id] = _SendQueue()
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
            if not self._waiting and len(queue.chunks) <= 1 and \
                    size <= self._conn.max_outbound_frame_size:
                # Nothing else waits: framing now is what the scheduler would do (one frame).
                stream = self._conn.streams[stream_id]
                if size <= stream.outbound_flow_control_window and \
                        size <= self._conn.outbound_flow_control_window:
                    self._send_now(stream, queue)
                    return True
            queue.ready = True
            self._waiting += 1
            self._ready[queue.urgency].append(stream_id)
        return True

    def _send_now(self, stream, queue: _SendQueue) -> None:
        """Frame a stream's whole (single-frame) queue at once."""
        n = queue.size
        piece = queue.chunks.popleft() if n else b""
        queue.size = 0
        self._queued_total -= n
        stream.outbound_flow_control_window -= n
        self._conn.outbound_flow_control_window -= n
        self._send_frame(stream, queue, piece, queue.end, self._conn._data_to_send)

    def queued(self, stream_id: int) -> int:
        queue = self._queues.get(stream_id)
        return 0 if queue is None else queue.size

    @property
    def queued_total(self) -> int:
        return self._queued_total

    def set_priority(self, stream_id: int, urgency: int, incremental: bool) -> None:
        queue = self._queues.get(stream_id)
        if queue is None or not 0 <= urgency <= 7:
            return
        if queue.ready and urgency != queue.urgency:
            self._ready[queue.urgency].remove(stream_id)
            self._ready[urgency].append(stream_id)  # (same count)
        queue.urgency = urgency
        queue.incremental = bool(incremental)

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

    # -- the scheduler --------------------------------------------------------------------
    def _drop_queue(self, stream_id: int) -> None:
        queue = self._queues.pop(stream_id, None)
        if queue is not None:
            self._queued_total -= queue.size
            if queue.ready:
                self._ready[queue.urgency].remove(stream_id)
                self._waiting -= 1

    def _wake(self, stream_id: int) -> None:
        """A send window opened: put a waiting stream back in the rotation."""
        queue = self._queues.get(stream_id)
        if queue is not None and not queue.ready and (queue.size or queue.end):
            queue.ready = True
            self._waiting += 1
            self._ready[queue.urgency].append(stream_id)

    def _schedule(self, max_data: int) -> None:
        """Frame queued DATA: lowest urgency first, round-robin within one urgency in slices
        of at most one frame, while the connection window and ``max_data`` allow."""
        conn = self._conn
        streams = conn.streams
        queues = self._queues
        budget = max_data if max_data >= 0 else _MAX_WINDOW * 2
        frame_size = conn.max_outbound_frame_size
        out = conn._data_to_send
        for ready in self._ready:
            if not self._waiting:
                return
            while ready:
                sid = ready[0]
                queue = queues[sid]
                stream = streams[sid]
                if queue.size == 0:  # only END_STREAM left: no window needed
                    self._send_frame(stream, queue, b"", True, out)
                    continue
                window = min(stream.outbound_flow_control_window,
                             conn.outbound_flow_control_window, budget)
                if window <= 0:
                    if stream.outbound_flow_control_window <= 0:
                        ready.popleft()  # waits for its own WINDOW_UPDATE
                        self._waiting -= 1
                        queue.ready = False
                        continue
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
                if queue.ready and len(ready) > 1 and ready[0] == sid:
                    ready.rotate(-1)  # round-robin: the next stream's turn

    def _send_frame(self, stream, queue: _SendQueue, piece, last: bool, out) -> None:
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
                self._ready[queue.urgency].remove(sid)
                self._waiting -= 1
                queue.ready = False
            self._sent.append(StreamDrained(sid))

    def _response_sent(self, stream_id: int, stream) -> None:
        complete = stream.closed
        self._sent.append(ResponseSent(stream_id, complete))
        if complete:
            self._conn._forget(stream_id)


#: Why h2 itself resets a stream, by error code (our own resets say why in full).
_RESET_REASONS = {
    _FLOW_CONTROL_ERROR: "its send window overflowed (FLOW_CONTROL_ERROR)",
    int(ErrorCodes.STREAM_CLOSED): "a frame arrived on a closed stream (STREAM_CLOSED)",
    _PROTOCOL_ERROR: "the request broke RFC 9113 (PROTOCOL_ERROR)",
}

#: Stream states in which the server may still send (RFC 9113 §5.1).
_SENDABLE = frozenset((StreamState.OPEN, StreamState.HALF_CLOSED_REMOTE))
