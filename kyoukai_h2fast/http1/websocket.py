"""WebSockets over HTTP/1.1 (RFC 6455 §4): the Upgrade handshake and the connection after it.

:func:`upgrade` is what :class:`~kyoukai_h2fast.http1.protocol.H1Protocol` calls for a request
that asks to upgrade to WebSocket, when the server's app serves WebSockets
(``component.websocket_app``) and no other request is in progress on the connection. It checks
the request (:func:`~kyoukai_h2fast.websocket.handshake.validate_http1_request`: a bad one gets
its status, e.g. 400 or 426, and the connection closes), then hands the connection over: the
protocol stops parsing HTTP and gives every byte it reads (also those that followed the request
head in the same read) to a :class:`~kyoukai_h2fast.websocket.session.WebSocketSession`, whose
handler (the app) runs as a task. :class:`H1Transport` is the session's side of the socket:
the ``101`` head or a denial response (``connection: close``), frames written to the TCP
transport, ``send`` waiting while the transport is paused (its high-water mark is
``ws_write_limit``), reading paused while the app is ``ws_max_queue`` messages behind, and the
TCP connection closed by the server at the end of the close handshake (RFC 6455 §7.1.1).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..codec.headers import response_headers
from ..websocket.handshake import Rejection, validate_http1_request
from ..websocket.session import WebSocketSession
from .wire import _phrase

if TYPE_CHECKING:
    from .parser import Exchange
    from .protocol import H1Protocol

__all__ = ["upgrade", "H1Transport"]


class H1Transport:
    """The session's side of an upgraded HTTP/1.1 connection (see the module docstring)."""

    http_version = "1.1"

    def __init__(self, protocol: H1Protocol, ex: Exchange) -> None:
        self.protocol = protocol
        self.transport = protocol.transport
        self._ex: Exchange | None = ex

    def respond(self, status: int, headers: list[tuple[bytes, bytes]], end: bool) -> None:
        if self.transport.is_closing():
            return
        if status == 101:
            parts = [b"HTTP/1.1 101 Switching Protocols\r\n"]
            fields = headers
        else:
            fields = response_headers(f"{status} X", [(n.decode("latin-1"), v.decode("latin-1"))
                                                      for n, v in headers])[1:]
            fields += [(n, v) for n, v in headers if n.lower() == b"upgrade"]   # 426
            fields.append((b"connection", b"close"))
            parts = [b"HTTP/1.1 %d %s\r\n" % (status, _phrase(status).encode("latin-1"))]
        for name, value in fields:
            parts.append(b"%s: %s\r\n" % (name, value))
        parts.append(b"\r\n")
        self.transport.write(b"".join(parts))
        ex = self._ex
        if ex is not None:                       # the access log line: the handshake's answer
            self._ex = None
            self.protocol._ended(ex, status)
        if end and status != 101:
            self.finish()

    def write(self, data: bytes, end: bool = False) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)

    def writable(self) -> bool:
        return not self.protocol._write_paused

    def idle(self) -> bool:
        return self.transport.get_write_buffer_size() == 0

    def set_reading(self, on: bool) -> None:
        if self.transport.is_closing():
            return
        if on:
            self.transport.resume_reading()
        else:
            self.transport.pause_reading()

    def finish(self) -> None:
        self.transport.close()            # (after what is buffered goes out)

    def abort(self) -> None:
        self.transport.abort()


def upgrade(protocol: H1Protocol, ex: Exchange) -> bool:
    """Take the WebSocket opening request ``ex`` (see the module docstring). Returns False
    when it is not for us after all (the protocol then serves it as an ordinary request)."""
    app = getattr(protocol.component, "websocket_app", None)
    state = ex.state
    if app is None or state is None:
        return False
    config = protocol.config
    transport = H1Transport(protocol, ex)
    reader = protocol._reader
    reader.stopped = True                 # no more HTTP on this connection
    outcome = validate_http1_request(state.headers, "1.0" if ex.http10 else "1.1")
    if isinstance(outcome, Rejection):
        body = outcome.reason.encode("latin-1", "replace") + b"\n"
        transport.respond(outcome.status, [*outcome.headers,
                                           (b"content-type", b"text/plain; charset=utf-8"),
                                           (b"content-length", b"%d" % len(body))], False)
        transport.write(body)
        transport.finish()
        return True
    sock = protocol.transport
    tls = sock.get_extra_info("ssl_object") is not None
    peer = sock.get_extra_info("peername")
    local = sock.get_extra_info("sockname")
    session = WebSocketSession(
        transport, outcome, state.headers, config, scheme="wss" if tls else "ws",
        client=tuple(peer[:2]) if isinstance(peer, tuple) else None,
        server=tuple(local[:2]) if isinstance(local, tuple) else None)
    sock.set_write_buffer_limits(high=config.ws_write_limit)
    protocol._websocket = session
    reader.handed_over = session.feed
    session_task = protocol.loop.create_task(session.run(app))
    protocol._websocket_task = session_task
    return True
