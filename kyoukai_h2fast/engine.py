"""The connection engine: server-side HTTP/2 state (RFC 9113) behind a small, stable interface.

Theory of operation. The protocol hands received bytes to :meth:`H2Engine.receive` and gets
back a list of :mod:`kyoukai_h2fast.events`; it asks the engine to send headers, data, resets
and GOAWAY, and writes out :meth:`H2Engine.data_to_send`. The engine does no I/O. Today it is
``h2``'s state machine with our compiled pieces plugged in: the frame buffer
(:mod:`kyoukai_h2fast.frames`), the HPACK coder (:mod:`kyoukai_h2fast.hpack`) and request header
validation (:mod:`kyoukai_h2fast.headers`). A compiled connection core can later replace ``h2``
behind the same methods; ``h2`` then stays the fallback and the oracle.

Where we differ from plain ``h2`` (each in :class:`_ServerConnection`):

* malformed requests and content-length mismatches are *stream* errors (RFC 9113 §8.1.1), not
  connection errors, and HPACK failures are COMPRESSION_ERROR (§4.3);
* streams above SETTINGS_MAX_CONCURRENT_STREAMS, or opened after our GOAWAY, are refused with
  RST_STREAM(REFUSED_STREAM) after their field block is decoded (keeping HPACK in sync),
  instead of failing the connection;
* GOAWAY (sent or received) does not freeze the connection: in-flight streams may finish
  (§6.8), which ``h2``'s connection state machine does not allow;
* DATA on a stream we reset is ignored after crediting the connection window (§5.1);
* closed streams are forgotten at once (:meth:`H2Engine.forget`) and received frames are not
  ``repr()``-ed on the hot path;
* responses are sent without frame objects: the engine makes ``h2``'s state transitions and
  window accounting itself, encodes with our HPACK encoder and writes frames with our
  serializer (:meth:`H2Engine.send_headers`, :meth:`H2Engine.send_data`).
"""
from __future__ import annotations

import logging
import time

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
    SettingsChanged,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)

__all__ = ["H2Engine"]

log = logging.getLogger("kyoukai_h2fast.engine")

_PROTOCOL_ERROR = int(ErrorCodes.PROTOCOL_ERROR)
_REFUSED_STREAM = int(ErrorCodes.REFUSED_STREAM)
_NO_ERROR = int(ErrorCodes.NO_ERROR)
_ENHANCE_YOUR_CALM = int(ErrorCodes.ENHANCE_YOUR_CALM)
_INTERNAL_ERROR = int(ErrorCodes.INTERNAL_ERROR)
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
        events = [StreamReset(stream.stream_id, error_code, False)] if notify else []
        return frames, events

    def _receive_data_frame(self, frame):
        try:
            return super()._receive_data_frame(frame)
        except InvalidBodyLengthError as e:  # RFC 9113 §8.1.1: malformed, a stream error
            stream = self.streams[frame.stream_id]
            frames, events = self._stream_error(stream, _PROTOCOL_ERROR, str(e), notify=True)
            increment = self._inbound_flow_control_window_manager.process_bytes(
                frame.flow_controlled_length)
            if increment:
                frames.extend(self._window_update(0, increment))
            return frames, events

    def _window_update(self, stream_id: int, increment: int) -> list:
        return [WindowUpdateFrame(stream_id, window_increment=increment)]

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
    def _forget(self, stream_id: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None and stream.closed:
            del self.streams[stream_id]
            self._closed_streams[stream_id] = stream.closed_by


def _convert_data(event):
    return DataReceived(event.stream_id, event.data, event.flow_controlled_length,
                        event.stream_ended is not None)


def _convert_reset(event):
    return StreamReset(event.stream_id, int(event.error_code), bool(event.remote_reset))


def _convert_window(event):
    return WindowUpdated(event.stream_id, event.delta)


def _convert_settings(event):
    return SettingsChanged(_INITIAL_WINDOW_SIZE in event.changed_settings)


def _passthrough(event):
    return event


#: How each ``h2`` event becomes ours. Events not listed need nothing from the protocol:
#: StreamEnded (folded into the ``end_stream`` flag of the event that carried END_STREAM),
#: SettingsAcknowledged (h2 applied our settings), PingReceived (h2 queued the PING ACK,
#: flushed after every receive), PingAckReceived (we send no PINGs), PriorityUpdated
#: (priority signals are ignored, RFC 9113 §5.3.2), UnknownFrameReceived (must be ignored,
#: §5.5), AlternativeServiceAvailable (a client-side frame).
_CONVERTERS = {
    H2DataReceived: _convert_data,
    H2StreamReset: _convert_reset,
    H2WindowUpdated: _convert_window,
    RemoteSettingsChanged: _convert_settings,
    RequestReceived: _passthrough,
    TrailersReceived: _passthrough,
    StreamReset: _passthrough,
    ConnectionTerminated: _passthrough,
}


class H2Engine:
    """Server-side HTTP/2 connection state; bytes in, events out, bytes to send."""

    __slots__ = ("_conn", "_config", "_resets", "_converters")

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._conn = _ServerConnection(config)
        self._converters = _CONVERTERS
        #: Timestamps of recent peer resets, for the rapid-reset guard.
        self._resets: list[float] = []

    # -- lifecycle ------------------------------------------------------------------------
    def initiate(self) -> None:
        """Queue the server preface: SETTINGS, then a connection WINDOW_UPDATE if larger."""
        conn = self._conn
        conn.initiate_connection()
        if self._config.header_table_size != 4096:
            conn.update_settings({SettingCodes.HEADER_TABLE_SIZE: self._config.header_table_size})
        extra = self._config.connection_window - 65_535
        if extra > 0:
            conn.increment_flow_control_window(extra)

    def receive(self, data: bytes) -> list:
        """Feed received bytes; return our events. Raises ConnectionFailed on a connection error."""
        conn = self._conn
        try:
            h2_events = conn.receive_data(data)
        except ProtocolError as e:  # h2 queued GOAWAY already
            raise ConnectionFailed(int(e.error_code), str(e) or type(e).__name__) from e
        converters = self._converters
        events = []
        for event in h2_events:
            convert = converters.get(event.__class__)
            if convert is not None:
                event = convert(event)
                if event.__class__ is StreamReset and event.remote and self._reset_flood():
                    self.goaway(_ENHANCE_YOUR_CALM, b"too many stream resets")
                    raise ConnectionFailed(_ENHANCE_YOUR_CALM, "rapid reset flood")
                events.append(event)
        return events

    def _reset_flood(self) -> bool:
        now = time.monotonic()
        resets = self._resets
        resets.append(now)
        if len(resets) > self._config.max_resets_per_10s:
            if now - resets[0] < 10.0:
                return True
            del resets[: len(resets) // 2]
        return False

    def data_to_send(self) -> bytes:
        """Bytes queued for the peer (and clear the queue)."""
        conn = self._conn
        data = conn._data_to_send
        if not data:
            return b""
        conn._data_to_send = bytearray()
        return data

    def goaway(self, error_code: int = _NO_ERROR, debug: bytes = b"",
               last_stream_id: int | None = None) -> int:
        """Queue GOAWAY without closing the engine: streams up to the last id may finish."""
        conn = self._conn
        if last_stream_id is None:
            last_stream_id = conn.highest_inbound_stream_id
        conn.goaway_last_stream_id = last_stream_id
        conn._data_to_send += _frames.goaway_frame(last_stream_id, error_code, debug)
        return last_stream_id

    # -- streams --------------------------------------------------------------------------
    def send_headers(self, stream_id: int, headers: list, end_stream: bool) -> None:
        """Send a response header block (``(bytes, bytes)`` pairs, ``:status`` first).

        The same transitions as ``h2``'s ``send_headers`` (connection SEND_HEADERS, stream
        SEND_HEADERS and SEND_END_STREAM), with the block encoded by our HPACK encoder and
        framed (HEADERS + CONTINUATION) by our serializer, without frame objects.
        """
        conn = self._conn
        if headers[0][1][:1] == b"1":  # informational (1xx): h2's own path knows the rules
            conn.send_headers(stream_id, headers, end_stream=end_stream)
            return
        stream = conn._get_stream_by_id(stream_id)
        conn.state_machine.process_input(_SEND_HEADERS)
        machine = stream.state_machine
        machine.process_input(_STREAM_SEND_HEADERS)
        if end_stream:
            machine.process_input(_STREAM_SEND_END_STREAM)
        conn._data_to_send += _headers_frames(stream_id, conn.encoder.encode(headers),
                                              end_stream, conn.max_outbound_frame_size)

    def send_data(self, stream_id: int, data, end_stream: bool) -> int:
        """Send as much of ``data`` as the windows allow; returns the number of bytes sent.

        END_STREAM is set only if everything was sent. Empty data with ``end_stream`` ends
        the stream. Windows and stream states change exactly as with ``h2``'s ``send_data``.
        """
        conn = self._conn
        stream = conn._get_stream_by_id(stream_id)
        total = len(data)
        window = min(conn.outbound_flow_control_window, stream.outbound_flow_control_window)
        n = total if total <= window else max(window, 0)
        if n == 0 and not (end_stream and total == 0):
            return 0
        last = end_stream and n == total
        conn.state_machine.process_input(_SEND_DATA)
        machine = stream.state_machine
        machine.process_input(_STREAM_SEND_DATA)
        if last:
            machine.process_input(_STREAM_SEND_END_STREAM)
        stream.outbound_flow_control_window -= n
        conn.outbound_flow_control_window -= n
        chunk = data if n == total else memoryview(data)[:n]
        conn._data_to_send += _data_frames(stream_id, chunk, last, conn.max_outbound_frame_size)
        return n

    def acknowledge(self, stream_id: int, size: int) -> None:
        """The app consumed ``size`` flow-controlled bytes of ``stream_id``: reopen windows."""
        if size:
            self._conn.acknowledge_received_data(size, stream_id)

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        """RST_STREAM ``stream_id`` and forget it (no-op if it is already closed)."""
        conn = self._conn
        stream = conn.streams.get(stream_id)
        if stream is not None and not stream.closed:
            conn.reset_stream(stream_id, error_code)
        conn._forget(stream_id)

    def forget(self, stream_id: int) -> None:
        """Free a closed stream's state now (h2 would keep it until the next HEADERS)."""
        self._conn._forget(stream_id)
