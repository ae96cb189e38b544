"""``h2``'s server connection as the pure engine twin needs it: our frame and HPACK path, and
RFC 9113 where plain ``h2`` says otherwise (used by the twin, :mod:`.engine`, only).

``h2`` keeps the state of live streams (open and half-closed); this class decides everything
else the way the compiled engine's tables do (``_engine_c_tables.pxi``), written independently:

* the first frame after the client preface must be a SETTINGS frame (§3.4); SETTINGS values
  are validated in order, SETTINGS_NO_RFC7540_PRIORITIES included (RFC 9218 §2.1);
* frames on streams that are not live are decided by how the stream ended, remembered in
  bounded memory (h2's ``_closed_streams``): after our RST_STREAM everything is ignored (DATA
  is credited to the connection window), after the peer's RST_STREAM a field block or DATA is
  a stream error STREAM_CLOSED (also when the stream had closed normally before the reset),
  after END_STREAM both ways a field block is a connection error STREAM_CLOSED and DATA a
  stream error STREAM_CLOSED, and a WINDOW_UPDATE still counts on the closed stream's last send
  window (overflow: RST_STREAM FLOW_CONTROL_ERROR, §6.9.1); DATA, WINDOW_UPDATE and RST_STREAM
  on an idle stream are connection errors PROTOCOL_ERROR (§5.1, §6.4);
* malformed requests, content-length mismatches (trailers or not) and a stream depending on
  itself (§5.3.1) are *stream* errors; HPACK failures are COMPRESSION_ERROR (§4.3), a header
  list over our limit ENHANCE_YOUR_CALM; a CONTINUATION outside a field block is always a
  connection error PROTOCOL_ERROR (§6.10);
* streams above SETTINGS_MAX_CONCURRENT_STREAMS, or opened after our GOAWAY, are refused
  with RST_STREAM(REFUSED_STREAM) after their field block is decoded (HPACK stays in sync);
* GOAWAY received does not freeze the connection (§6.8: in-flight streams finish), and our
  GOAWAYs never raise the last stream id (§6.8);
* our SETTINGS_INITIAL_WINDOW_SIZE, when below the default, applies from the peer's ACK on
  (§6.9.2; h2 takes its initial settings as in force at once), and a changed header table
  size from the ACK of the SETTINGS frame that carried it;
* RFC 9218: SETTINGS_NO_RFC7540_PRIORITIES = 1 is advertised (§2.1), a request's
  ``priority`` field is read as its block is decoded (``RequestReceived.priority``), and
  PRIORITY_UPDATE frames (§7.1) reprioritize live streams (:class:`PriorityUpdated`) or are
  remembered, bounded, for streams not yet open; other unknown frames are ignored (§5.5).

It also counts, for the twin's budgets, the control frames it queues and the RST_STREAM
frames that the peer's frames provoked.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NoReturn

from h2.config import H2Configuration
from h2.connection import AllowedStreamIDs, ConnectionInputs, H2Connection
from h2.exceptions import (
    DenialOfServiceError,
    FlowControlError,
    FrameDataMissingError,
    InvalidBodyLengthError,
    NoSuchStreamError,
    ProtocolError,
    StreamClosedError,
)
from h2.settings import SettingCodes, Settings
from h2.stream import StreamClosedBy, StreamState
from h2.utilities import SizeLimitDict
from hpack.exceptions import HPACKError, OversizedHeaderListError
from hyperframe.frame import (
    DataFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from ...codec import frames as _frames
from ...codec import headers as _headers
from ...codec import hpack as _hpack
from ...config import ServerConfig
from ...constants import DEFAULT_WINDOW, MAX_WINDOW, ErrorCode
from ...errors import CompressionError, MalformedRequestError
from .. import priority as _priority
from ..events import (
    ConnectionTerminated,
    ExtendedConnectReceived,
    RequestReceived,
    StreamReset,
    TrailersReceived,
)

if TYPE_CHECKING:
    from h2.stream import H2Stream
    from hyperframe.frame import ContinuationFrame, ExtensionFrame, Frame, GoAwayFrame

    from ..events import Event

    # What h2's frame handlers return: frames to send, events (h2's, and ours).
    _Result = tuple[list[Frame], list[Any]]

__all__ = ["ServerConnection", "PriorityUpdated", "IDLE_PRIORITY_MEMORY"]

log = logging.getLogger("kyoukai_h2fast.engine")

_PROTOCOL_ERROR = ErrorCode.PROTOCOL_ERROR
_STREAM_CLOSED = ErrorCode.STREAM_CLOSED
_FLOW_CONTROL_ERROR = ErrorCode.FLOW_CONTROL_ERROR
_REFUSED_STREAM = ErrorCode.REFUSED_STREAM

# How a stream that is not live stands (the compiled engine's names).
IDLE, CLOSED, RESET_LOCAL, RESET_REMOTE, CLOSED_UNKNOWN = (
    "IDLE", "CLOSED", "RESET_LOCAL", "RESET_REMOTE", "CLOSED_UNKNOWN")
_BY_CLOSER: dict[StreamClosedBy | None, str] = {StreamClosedBy.SEND_RST_STREAM: RESET_LOCAL,
              StreamClosedBy.RECV_RST_STREAM: RESET_REMOTE,
              StreamClosedBy.SEND_END_STREAM: CLOSED,
              StreamClosedBy.RECV_END_STREAM: CLOSED}
#: Frame classes addressed to one stream whose fate depends on the stream's state.
_STREAM_FRAMES = frozenset((HeadersFrame, DataFrame, WindowUpdateFrame, RstStreamFrame,
                            PriorityFrame))
#: Control frames we queue (RFC 9113 §6): counted against ``max_queued_control_frames``.
_CONTROL = frozenset((RstStreamFrame, WindowUpdateFrame, PingFrame, SettingsFrame))
_NO_RFC7540_PRIORITIES = 0x9
_PRIORITY_UPDATE = 0x10
#: PRIORITY_UPDATEs remembered for streams not yet open, at most (RFC 9218 §7).
IDLE_PRIORITY_MEMORY = 256
_UNSIGNALLED = _priority.UNSIGNALLED


def _protocol_of(headers: list) -> bytes | None:
    """The ``:protocol`` value of a validated request block (pseudo-headers come first)."""
    for name, value in headers:
        if name[:1] != b":":
            return None
        if name == b":protocol":
            return value
    return None


class PriorityUpdated:
    """A PRIORITY_UPDATE changed the priority of a live stream (for the engine's scheduler)."""

    __slots__ = ("stream_id", "priority")

    def __init__(self, stream_id: int, priority: tuple) -> None:
        self.stream_id = stream_id
        self.priority = priority


class ServerConnection(H2Connection):
    """``h2``'s connection with our frame/HPACK path and the fixes in the module docstring."""

    # Remember how this many recently closed streams ended; bounded memory.
    MAX_CLOSED_STREAMS = 4096

    # Our drop-ins for h2's frame buffer and HPACK coders: the same interface, not subclasses.
    incoming_buffer: _frames.FrameBuffer  # type: ignore[assignment]
    encoder: _hpack.Encoder  # type: ignore[assignment]
    decoder: _hpack.Decoder  # type: ignore[assignment]

    def __init__(self, config: ServerConfig) -> None:
        super().__init__(H2Configuration(
            client_side=False,
            header_encoding=None,
            # Our compiled path validates request headers (kyoukai_h2fast.codec.headers) and
            # builds response headers correctly by construction (its response_headers).
            validate_inbound_headers=False,
            normalize_inbound_headers=False,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        ))
        self._stream_window = config.stream_window
        self.local_settings = Settings(client=False, initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: config.max_concurrent_streams,
            # Below the default, ours applies once acknowledged (see _local_settings_acked).
            SettingCodes.INITIAL_WINDOW_SIZE: max(config.stream_window, DEFAULT_WINDOW),
            SettingCodes.MAX_FRAME_SIZE: config.max_frame_size,
            SettingCodes.MAX_HEADER_LIST_SIZE: config.max_header_list_size,
            SettingCodes.ENABLE_PUSH: 0,
            SettingCodes.ENABLE_CONNECT_PROTOCOL: int(bool(config.ws_http2)),   # RFC 8441 §3
            # RFC 9218 §2.1: we schedule by RFC 9218 signals (h2 takes any setting id, and
            # names only those of RFC 9113)
            _NO_RFC7540_PRIORITIES: 1,  # type: ignore[dict-item]
        })
        # RFC 8441 §3: extended CONNECT is taken only when advertised (then in force at once:
        # the setting may only go from 0 to 1, so no acknowledgement needs waiting for).
        self.connect_protocol = bool(config.ws_http2)
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
        #: Set once we sent GOAWAY: streams above it are refused, later GOAWAYs never go higher.
        self.goaway_last_stream_id: int | None = None
        #: Last send window of streams that closed normally (bounded like _closed_streams).
        self._closed_windows = SizeLimitDict(size_limit=self.MAX_CLOSED_STREAMS)
        #: The first frame after the preface (a SETTINGS frame) arrived.
        self.settings_seen = False
        #: Our SETTINGS frames not acknowledged yet, acknowledgements seen, and the number of
        #: the acknowledgement that applies our header table size (0: none pending).
        self.pending_acks = 0
        self._acks_seen = 0
        self.table_size_ack = 0
        self.table_size = config.header_table_size
        #: Control frames queued since the output last drained (the Engine resets it).
        self.control_frames = 0
        #: RST_STREAM frames queued while ``receiving`` (provoked by the peer's frames).
        self.provoked_resets = 0
        self.receiving = False
        #: RFC 9218 §7: PRIORITY_UPDATEs for streams not yet open, by stream id (bounded).
        self.idle_priorities: dict[int, tuple] = {}

    # -- outbound -------------------------------------------------------------------------
    def _prepare_for_sending(self, frames: list) -> None:
        if frames:
            serialize = self._serialize
            out = self._data_to_send
            for frame in frames:
                cls = frame.__class__
                if cls in _CONTROL:
                    if cls is RstStreamFrame:
                        if self.receiving:
                            self.provoked_resets += 1
                        self.control_frames += 1
                    elif cls is WindowUpdateFrame or "ACK" in frame.flags:
                        self.control_frames += 1
                out += serialize(frame)

    def initiate_connection(self) -> None:
        """Our SETTINGS with the configured stream window, whatever applies until its ACK."""
        self.state_machine.process_input(ConnectionInputs.SEND_SETTINGS)
        settings = dict(self.local_settings.items())
        settings[SettingCodes.INITIAL_WINDOW_SIZE] = self._stream_window
        self._data_to_send += _frames.settings_frame(settings)
        self.pending_acks = 1

    def send_table_size(self) -> None:
        """A second SETTINGS frame with our header table size (applies at its ACK)."""
        self._data_to_send += _frames.settings_frame({SettingCodes.HEADER_TABLE_SIZE:
                                                      self.table_size})
        self.pending_acks += 1
        self.table_size_ack = self.pending_acks

    def _local_settings_acked(self) -> dict:
        if not self.pending_acks:
            return {}                      # unsolicited: nothing to apply
        self.pending_acks -= 1
        self._acks_seen += 1
        current = self.local_settings.initial_window_size
        if self._acks_seen == 1 and current != self._stream_window:
            # Our smaller SETTINGS_INITIAL_WINDOW_SIZE now applies (h2's rule for a change of
            # it: every stream's window and its target move by the difference).
            self.local_settings[SettingCodes.INITIAL_WINDOW_SIZE] = self._stream_window
            self.local_settings.acknowledge()
            self._inbound_flow_control_change_from_settings(current, self._stream_window)
        if self._acks_seen == self.table_size_ack:
            self.decoder.max_allowed_table_size = self.table_size
        return {}

    def terminate(self, error_code: int, debug: bytes = b"") -> None:
        """Queue the GOAWAY of a connection error (never above an earlier GOAWAY's id)."""
        last = self.highest_inbound_stream_id
        if self.goaway_last_stream_id is not None and last > self.goaway_last_stream_id:
            last = self.goaway_last_stream_id
        self.goaway_last_stream_id = last
        self._data_to_send += _frames.goaway_frame(last, int(error_code), debug)

    # -- inbound dispatch -----------------------------------------------------------------
    def first_frame(self, frame: Frame) -> None:
        """The first frame after the client preface must be SETTINGS (§3.4)."""
        if frame.__class__ is not SettingsFrame or "ACK" in frame.flags:
            raise ProtocolError("the client preface must be followed by a SETTINGS frame")
        self.settings_seen = True

    def receive_frame(self, frame: Frame) -> list:
        """Process one frame; h2's events (and ours). ProtocolError: a connection error."""
        cls = frame.__class__
        sid = frame.stream_id
        if sid and cls in _STREAM_FRAMES:
            stream = self.streams.get(sid)
            if (stream is None or stream.closed) and not (
                    cls is HeadersFrame and (sid > self.highest_inbound_stream_id or not sid & 1)):
                frames, events = self._not_live(frame, sid)
                self._prepare_for_sending(frames)
                return events
        try:
            frames, events = self._frame_dispatch_table[cls](frame)
        except StreamClosedError as e:
            # A frame on a live stream that h2's state machine closes with a reset (e.g. DATA
            # on a half-closed (remote) stream): h2 made the transition, we send the reset.
            if not self._stream_is_closed_by_reset(e.stream_id):
                raise
            frames = [RstStreamFrame(e.stream_id, error_code=e.error_code)]
            events = e._events
        self._prepare_for_sending(frames)
        return events

    def state_of(self, stream_id: int) -> str:
        """How a stream that is not live stands (IDLE, CLOSED, RESET_*, CLOSED_UNKNOWN)."""
        if not stream_id & 1 or stream_id > self.highest_inbound_stream_id:
            return IDLE                    # even ids are ours to open, and we never do
        stream = self.streams.get(stream_id)
        closed_by = stream.closed_by if stream is not None else \
            self._closed_streams.get(stream_id)
        return _BY_CLOSER.get(closed_by, CLOSED_UNKNOWN)

    def _remember(self, stream_id: int, state: str) -> None:
        closer = StreamClosedBy.SEND_RST_STREAM if state == RESET_LOCAL else \
            StreamClosedBy.RECV_RST_STREAM
        self.streams.pop(stream_id, None)
        self._closed_streams[stream_id] = closer
        self._closed_windows.pop(stream_id, None)

    def _not_live(self, frame: Any, sid: int) -> _Result:  # (dispatched by class below)
        """A frame on a stream that is not live: decided by how the stream ended (§5.1)."""
        state = self.state_of(sid)
        cls = frame.__class__
        if cls is HeadersFrame:
            self._decode_field_block(frame.data)      # HPACK stays in sync whatever happens
            if state == CLOSED:
                raise StreamClosedError(sid)          # connection error STREAM_CLOSED
            if state == CLOSED_UNKNOWN:
                raise ProtocolError(f"HEADERS on closed stream {sid}")
            if state == RESET_REMOTE:
                return self._late_reset(sid, _STREAM_CLOSED)
            return [], []                             # RESET_LOCAL: ignored
        if cls is DataFrame:
            flow = frame.flow_controlled_length
            manager = self._inbound_flow_control_window_manager
            manager.window_consumed(flow)             # the connection window counts it first
            if state == IDLE:
                raise ProtocolError(f"DATA on idle stream {sid}")
            increment = manager.process_bytes(flow)   # nobody will read it (§5.1, §6.9)
            frames: list[Frame] = \
                [WindowUpdateFrame(0, window_increment=increment)] if increment else []
            if state == RESET_LOCAL:
                return frames, []
            more, events = self._late_reset(sid, _STREAM_CLOSED)
            return frames + more, events
        if cls is WindowUpdateFrame:
            if state == IDLE:
                raise ProtocolError(f"WINDOW_UPDATE on idle stream {sid}")
            if state == CLOSED:       # closed normally: the window still counts (§6.9.1)
                window = self._closed_windows.get(sid, 0) + frame.window_increment
                if window > MAX_WINDOW:
                    return self._late_reset(sid, _FLOW_CONTROL_ERROR)
                self._closed_windows[sid] = window
            return [], []
        if cls is RstStreamFrame:
            if state == IDLE:
                raise ProtocolError(f"RST_STREAM on idle stream {sid}")  # §6.4
            if state == CLOSED:       # closed normally, then reset by the peer
                self._remember(sid, RESET_REMOTE)
            return [], []
        # PRIORITY: ignored (§5.3.2), but a stream may not depend on itself (§5.3.1).
        if frame.depends_on != sid or state == RESET_LOCAL:
            return [], []
        if state == IDLE:
            raise ProtocolError(f"stream {sid} depends on itself (idle)")
        return self._late_reset(sid, _PROTOCOL_ERROR)

    def _late_reset(self, sid: int, error_code: int) -> _Result:
        """RST_STREAM on a stream that is not live; it is remembered as reset by us."""
        self._remember(sid, RESET_LOCAL)
        return [RstStreamFrame(sid, error_code=error_code)], []

    def _receive_naked_continuation(self, frame: ContinuationFrame) -> NoReturn:
        raise ProtocolError("CONTINUATION without a field block")     # §6.10, in any state

    def _receive_priority_frame(self, frame: HeadersFrame | PriorityFrame) -> _Result:
        """PRIORITY on a live stream: ignored (§5.3.2) unless it depends on itself."""
        if frame.depends_on == frame.stream_id:
            return self._stream_error(self.streams[frame.stream_id], _PROTOCOL_ERROR,
                                      "the stream depends on itself (PROTOCOL_ERROR)", True)
        return [], []

    def _receive_settings_frame(self, frame: SettingsFrame) -> _Result:
        if "ACK" not in frame.flags:   # validated in order before h2 applies them (§6.5.3)
            for ident, value in frame.settings.items():
                if ident in (0x2, 0x8, 0x9):
                    # ENABLE_PUSH, ENABLE_CONNECT_PROTOCOL (RFC 8441), NO_RFC7540_PRIORITIES
                    if value > 1:
                        raise ProtocolError(f"setting 0x{ident:x} = {value}")
                elif ident == 0x4 and value > MAX_WINDOW:
                    raise FlowControlError(f"SETTINGS_INITIAL_WINDOW_SIZE {value}")
                elif ident == 0x5 and not 16_384 <= value <= 16_777_215:
                    raise ProtocolError(f"SETTINGS_MAX_FRAME_SIZE {value}")
        return super()._receive_settings_frame(frame)

    def _receive_unknown_frame(self, frame: ExtensionFrame) -> _Result:
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
            return [], [PriorityUpdated(sid, priority)]
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

    def _idle_take(self, stream_id: int) -> tuple | None:
        """Stream ``stream_id`` opens: its remembered priority (or None); the entries up to it
        are dropped (those below can no longer open, RFC 9113 §5.1.1)."""
        remembered = self.idle_priorities
        priority = remembered.pop(stream_id, None)
        for sid in [sid for sid in remembered if sid < stream_id]:
            del remembered[sid]
        return priority

    def _decode_field_block(self, data: bytes) -> list:
        try:
            return self.decoder.decode(data, raw=True)
        except OversizedHeaderListError as e:
            raise DenialOfServiceError(f"header list over the limit: {e}") from e
        except (HPACKError, IndexError, TypeError, UnicodeDecodeError) as e:
            raise CompressionError(f"cannot decode field block: {e}") from e

    def _receive_headers_frame(self, frame: HeadersFrame) -> _Result:
        stream_id = frame.stream_id
        end_stream = "END_STREAM" in frame.flags
        is_new = stream_id not in self.streams
        self_dependent = "PRIORITY" in frame.flags and frame.depends_on == stream_id
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
        # §8.1.1: content-length against the body so far (h2 re-reads it from trailers).
        expected = stream._expected_content_length
        received = stream._actual_content_length
        try:
            frames, h2_events = stream.receive_headers(headers, end_stream, None)
        except NoSuchStreamError:
            raise
        except ProtocolError as e:  # content-length syntax, trailers without END_STREAM
            return self._stream_error(stream, _PROTOCOL_ERROR, str(e), notify=not is_new)
        del h2_events  # RequestReceived/TrailersReceived/StreamEnded, replaced by ours
        if refuse:
            return self._stream_error(stream, _REFUSED_STREAM, "over the stream limit or "
                                      "after GOAWAY", notify=False)
        if self_dependent:
            return self._stream_error(stream, _PROTOCOL_ERROR,
                                      "the stream depends on itself (PROTOCOL_ERROR)",
                                      notify=not is_new)
        event: Event
        try:
            if is_new:
                content_length = _headers.validate_request_headers(headers)
                if end_stream and content_length > 0:
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
                    stream.kh2_priority = priority  # type: ignore[attr-defined]  # ours
                protocol = _protocol_of(headers)
                if protocol is None:
                    event = RequestReceived(stream_id, headers, end_stream, content_length,
                                            priority)
                elif not self.connect_protocol:   # RFC 8441 §3: malformed without it
                    raise MalformedRequestError(
                        ":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3)")
                else:
                    event = ExtendedConnectReceived(stream_id, headers, end_stream, protocol)
            else:
                _headers.validate_trailers(headers)
                if expected is not None and expected != received:
                    raise MalformedRequestError(
                        f"content-length mismatch ({expected} declared, {received} received "
                        "before the trailers)")
                event = TrailersReceived(stream_id, headers)
        except MalformedRequestError as e:
            return self._stream_error(stream, _PROTOCOL_ERROR, str(e), notify=not is_new)
        return frames, conn_events + [event]

    def _stream_error(self, stream: H2Stream, error_code: int, reason: str,
                      notify: bool) -> _Result:
        """RST_STREAM ``stream`` (RFC 9113 §5.4.2); ``notify``: the protocol knows the stream
        and gets a StreamReset event."""
        log.debug("stream %d reset with error 0x%x: %s", stream.stream_id, error_code, reason)
        try:
            frames = stream.reset_stream(error_code)
        except ProtocolError:  # the stream's state machine already closed it
            frames = [RstStreamFrame(stream.stream_id, error_code=error_code)]
            stream.state_machine.state = StreamState.CLOSED
            stream.state_machine.stream_closed_by = StreamClosedBy.SEND_RST_STREAM
        self.forget(stream.stream_id)
        events: list[Event] = [StreamReset(stream.stream_id, error_code, False, reason)] \
            if notify else []
        return frames, events

    def _receive_data_frame(self, frame: DataFrame) -> _Result:
        try:
            return super()._receive_data_frame(frame)
        except InvalidBodyLengthError as e:  # RFC 9113 §8.1.1: malformed, a stream error
            stream = self.streams[frame.stream_id]
            frames, events = self._stream_error(stream, _PROTOCOL_ERROR,
                                                f"content-length mismatch ({e})", notify=True)
            increment = self._inbound_flow_control_window_manager.process_bytes(
                frame.flow_controlled_length)
            if increment:
                frames.append(WindowUpdateFrame(0, window_increment=increment))
            return frames, events

    def _receive_window_update_frame(self, frame: WindowUpdateFrame) -> _Result:
        if frame.stream_id:            # a live stream (others are decided in _not_live)
            stream = self.streams[frame.stream_id]
            if stream.outbound_flow_control_window + frame.window_increment > MAX_WINDOW:
                return self._stream_error(stream, _FLOW_CONTROL_ERROR,
                                          "its send window overflowed (FLOW_CONTROL_ERROR)",
                                          notify=True)
        return super()._receive_window_update_frame(frame)

    def _handle_data_on_closed_stream(self, events: list[Any], exc: StreamClosedError,
                                      frame: DataFrame) -> _Result:
        # DATA on a live stream h2 resets now (half-closed (remote): STREAM_CLOSED, §5.1):
        # h2's answer (window credit, RST_STREAM) is right; the stream is closed, forget it.
        frames, events = super()._handle_data_on_closed_stream(events, exc, frame)
        self.forget(frame.stream_id)
        return frames, events

    def _receive_goaway_frame(self, frame: GoAwayFrame) -> _Result:
        # Unlike h2, keep the connection usable so in-flight streams can finish (§6.8): no
        # transition to CLOSED and no dropping of queued output. The protocol decides.
        event = ConnectionTerminated(int(frame.error_code), frame.last_stream_id,
                                     frame.additional_data or None)
        return [], [event]

    # -- bookkeeping ----------------------------------------------------------------------
    def forget(self, stream_id: int) -> bool:
        """Free a closed stream (remember how it ended, bounded); False if it is not closed."""
        stream = self.streams.get(stream_id)
        if stream is None:
            return True
        if not stream.closed:
            return False
        del self.streams[stream_id]
        closed_by = stream.closed_by
        self._closed_streams[stream_id] = closed_by
        if (closed_by is StreamClosedBy.SEND_END_STREAM
                or closed_by is StreamClosedBy.RECV_END_STREAM):
            self._closed_windows[stream_id] = stream.outbound_flow_control_window
        return True
