"""WebSockets over HTTP/2 (RFC 8441): one extended CONNECT stream per WebSocket.

The engine advertises SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 when the app serves WebSockets
(``component.websocket_app``, and ``ws_http2`` on) and reports an extended CONNECT as
:class:`~kyoukai_h2fast.http2.events.ExtendedConnectReceived`; the protocol hands it to
:func:`open_stream`, which checks it (:func:`~kyoukai_h2fast.websocket.handshake.
validate_http2_request`: a bad one gets its status, e.g. 400 or 501, or RST_STREAM
PROTOCOL_ERROR when malformed) and starts a :class:`~kyoukai_h2fast.websocket.session.
WebSocketSession` on an :class:`H2Transport`: ``200`` opens it, WebSocket frames travel in DATA
frames both ways beside the connection's other streams, and the stream ends with END_STREAM
both ways after the close handshake (RST_STREAM CANCEL when dropped).

Flow control is the backpressure: received bytes are acknowledged (the stream window reopened)
as they arrive while the app keeps up, and held back while it is ``ws_max_queue`` messages
behind; ``send`` waits while more than ``ws_write_limit`` bytes of the stream wait in the
engine's send queue (the peer's windows or a slow socket hold them there).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..codec.headers import response_headers
from ..constants import ErrorCode
from ..websocket.handshake import Rejection, validate_http2_request
from ..websocket.session import WebSocketSession

if TYPE_CHECKING:
    from .events import DataReceived, ExtendedConnectReceived
    from .protocol import H2KyoukaiProtocol

__all__ = ["H2Transport", "open_stream"]

_CANCEL = ErrorCode.CANCEL
_PROTOCOL_ERROR = ErrorCode.PROTOCOL_ERROR


class H2Transport:
    """The session's side of one extended CONNECT stream (see the module docstring)."""

    http_version = "2"

    def __init__(self, protocol: H2KyoukaiProtocol, stream_id: int) -> None:
        self.protocol = protocol
        self.stream_id = stream_id
        self.session: WebSocketSession | None = None
        self.reading = True
        #: Flow-controlled bytes received and not acknowledged (reading is off).
        self.unacked = 0
        self.gone = False
        self._limit = protocol.config.ws_write_limit

    def respond(self, status: int, headers: list[tuple[bytes, bytes]], end: bool) -> None:
        if self.gone:
            return
        fields = response_headers(f"{status} X", [(n.decode("latin-1"), v.decode("latin-1"))
                                                  for n, v in headers])
        self.protocol.engine.send_headers(self.stream_id, fields, end)
        self.protocol._schedule_flush()

    def write(self, data: bytes, end: bool = False) -> None:
        if not self.gone:
            self.protocol.engine.queue_data(self.stream_id, data, end)
            self.protocol._schedule_flush()

    def writable(self) -> bool:
        return self.gone or self.protocol.engine.queued(self.stream_id) < self._limit

    def idle(self) -> bool:
        return self.gone or self.protocol.engine.queued(self.stream_id) == 0

    def set_reading(self, on: bool) -> None:
        self.reading = on
        if on and self.unacked and not self.gone:
            self.protocol.engine.acknowledge(self.stream_id, self.unacked)
            self.unacked = 0
            self.protocol._schedule_flush()

    def finish(self) -> None:
        self.write(b"", True)

    def abort(self) -> None:
        if not self.gone:
            self.protocol.engine.reset_stream(self.stream_id, _CANCEL)
            self.protocol._schedule_flush()
            self.closed()

    # -- what the protocol reports -------------------------------------------------------
    def data(self, event: DataReceived) -> None:
        """DATA on the stream: WebSocket bytes for the session."""
        flow = event.flow_controlled_length
        engine = self.protocol.engine
        if self.reading:
            engine.acknowledge(self.stream_id, flow)
        else:
            engine.acknowledge(self.stream_id, flow - len(event.data))   # padding
            self.unacked += len(event.data)
        session = self.session
        if session is not None:
            if event.data:
                session.feed(event.data)
            if event.end_stream:            # the peer's side is over: no close frame will come
                session.connection_lost()
                self.finish()

    def closed(self) -> None:
        """The stream is gone (reset, ended both ways, or the connection lost)."""
        if not self.gone:
            self.gone = True
            self.protocol._websockets.pop(self.stream_id, None)
            if self.session is not None:
                self.session.connection_lost()


def open_stream(protocol: H2KyoukaiProtocol, event: ExtendedConnectReceived) -> None:
    """An extended CONNECT arrived (see the module docstring)."""
    sid = event.stream_id
    engine = protocol.engine
    transport = H2Transport(protocol, sid)
    app = getattr(protocol.component, "websocket_app", None)
    outcome: WebSocketRequest | Rejection
    if app is None:
        outcome = Rejection(501, "this server's app does not serve WebSockets")
    elif event.end_stream:              # a tunnel the client closed at once carries nothing
        outcome = Rejection(400, "extended CONNECT with END_STREAM")
    else:
        outcome = validate_http2_request(event.headers)
    if isinstance(outcome, Rejection):
        if outcome.malformed:
            engine.reset_stream(sid, _PROTOCOL_ERROR)
        else:
            body = outcome.reason.encode("latin-1", "replace") + b"\n"
            transport.respond(outcome.status, [*outcome.headers,
                                               (b"content-type", b"text/plain; charset=utf-8"),
                                               (b"content-length", b"%d" % len(body))], False)
            transport.write(body, True)
            protocol._websockets[sid] = transport      # until the stream ends
        protocol._schedule_flush()
        return
    tls = protocol.transport.get_extra_info("ssl_object") is not None
    scheme = b"https"
    for name, value in event.headers:
        if name == b":scheme":
            scheme = value
            break
    peer = protocol.transport.get_extra_info("peername")
    local = protocol.transport.get_extra_info("sockname")
    session = WebSocketSession(
        transport, outcome, event.headers, protocol.config,
        scheme="wss" if scheme == b"https" or tls else "ws",
        client=tuple(peer[:2]) if isinstance(peer, tuple) else None,
        server=tuple(local[:2]) if isinstance(local, tuple) else None)
    transport.session = session
    assert app is not None                      # (else a Rejection above)
    protocol._websockets[sid] = transport
    protocol.websocket_streams += 1
    protocol.loop.create_task(session.run(app))


if TYPE_CHECKING:
    from ..websocket.handshake import WebSocketRequest
