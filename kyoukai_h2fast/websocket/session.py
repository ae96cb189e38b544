"""One WebSocket as an app sees it: :class:`WebSocketSession`, over either transport.

A connection that took an opening handshake (HTTP/1.1 Upgrade, :mod:`kyoukai_h2fast.http1.
websocket`; HTTP/2 extended CONNECT, :mod:`kyoukai_h2fast.http2.websocket`) makes a session with
a :class:`Transport` (its side of the contract below) and runs the app's handler on it with
:meth:`WebSocketSession.run`. The app calls:

    await session.accept(subprotocol=None, headers=())   # 101 / 200; or
    await session.deny(403, headers, body)                # an HTTP response instead
    message = await session.receive()     # str, bytes, or Disconnected(code, reason)
    await session.send("text" or b"bytes")                # waits while the output is full
    await session.close(1000, "reason")                   # the close handshake

Owns what lies between the sans-IO core (:class:`~.connection.WebSocketConnection`) and the
app: the handshake answer, permessage-deflate negotiated by ``ws_per_message_deflate``, the
queue of received messages (``ws_max_queue``: beyond it the transport stops reading, so a slow
app holds back the client, not memory), backpressure on sends (``ws_write_limit``: ``send``
waits until the transport takes more), keep-alive pings (``ws_ping_interval``; no pong within
``ws_ping_timeout``: close 1011 and drop the connection), the close handshake (the server
closes the transport once both close frames went by, or ``CLOSE_TIMEOUT`` after its own), and
failures (the core's close codes 1002/1007/1008/1009 go out, the app sees
:class:`Disconnected` with that code). A transport lost without a close frame is 1006.

Leaves to the transports the bytes on the wire (HTTP/1.1 response head and TCP; HTTP/2
HEADERS/DATA frames and flow control) and to the app adapters (:mod:`kyoukai_h2fast.asgi.
websocket`) the app's own conventions.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

from .connection import WebSocketConnection
from .deflate import DeflatePolicy
from .errors import InvalidStateError
from .events import BytesMessage, CloseReceived, ConnectionFailed, Pong, TextMessage
from .handshake import accept_response, check_subprotocol, negotiate_extensions

if TYPE_CHECKING:
    from ..config import ServerConfig
    from .handshake import WebSocketRequest

__all__ = ["WebSocketSession", "Transport", "Disconnected", "ConnectionClosed", "CLOSE_TIMEOUT"]

log = logging.getLogger("kyoukai_h2fast")

#: Seconds the server waits for the peer's close frame after sending its own.
CLOSE_TIMEOUT = 5.0
#: Bytes received before the handshake is answered that are kept (a client sends none).
_EARLY_LIMIT = 64 * 1024

Headers = list[tuple[bytes, bytes]]


class Transport(Protocol):
    """What a session needs from its connection (one HTTP/1.1 connection or one HTTP/2
    stream). Every method is a no-op once the transport is gone."""

    #: "1.1" or "2".
    http_version: str

    def respond(self, status: int, headers: Headers, end: bool) -> None:
        """Send a response head (101 or 200 to open; another status for a denial)."""

    def write(self, data: bytes, end: bool = False) -> None:
        """Send bytes (WebSocket frames, or a denial's body); ``end``: nothing follows."""

    def writable(self) -> bool:
        """False while the unsent output is above the write limit (``send`` waits)."""

    def idle(self) -> bool:
        """True when nothing written is still waiting to go out (the peer reads)."""

    def set_reading(self, on: bool) -> None:
        """Stop (False) or restart (True) taking the peer's bytes (the app is behind)."""

    def finish(self) -> None:
        """The exchange is over in good order: close the connection (HTTP/1.1) or end the
        stream (HTTP/2) once what was written went out."""

    def abort(self) -> None:
        """Drop it now (HTTP/1.1: abort the TCP connection; HTTP/2: RST_STREAM CANCEL)."""


class Disconnected:
    """What :meth:`WebSocketSession.receive` returns once the WebSocket is closed: the peer's
    close code (1005: its close frame had none), the code we failed it with (1002, 1007,
    1008, 1009, 1011), or 1006 (the transport was lost without a close frame)."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str = "") -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"Disconnected({self.code!r}, {self.reason!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Disconnected) and (self.code, self.reason) == (
            other.code, other.reason)

    __hash__ = None  # type: ignore[assignment]


class WebSocketSession:
    """One WebSocket, from the opening request to the end (see the module docstring)."""

    def __init__(self, transport: Transport, request: WebSocketRequest, headers: Headers,
                 config: ServerConfig, *, scheme: str, client: tuple | None,
                 server: tuple | None) -> None:
        self.transport = transport
        self.request = request
        self.config = config
        #: "1.1" or "2".
        self.http_version = transport.http_version
        #: "ws" or "wss".
        self.scheme = scheme
        #: ``(host, port)`` of the peer and of the server socket (None when unknown).
        self.client = client
        self.server = server
        raw = request.path
        raw_path, _, query = raw.partition(b"?")
        #: The request target's path as sent, and percent-decoded (UTF-8).
        self.raw_path = raw_path
        self.path = unquote(raw_path.decode("latin-1"), encoding="utf-8", errors="replace")
        #: The query string as sent (without ``?``).
        self.query_string = query
        #: The request's fields, lower-case names, pseudo-header fields left out.
        self.headers = [(n.lower(), v) for n, v in headers if n[:1] != b":"]
        #: The subprotocols the client offers, in its order.
        self.subprotocols = list(request.subprotocols)
        #: The subprotocol accepted (None: none).
        self.subprotocol: str | None = None
        #: "open" (handshake pending), "accepted", "denied", "closed".
        self.state = "open"
        self.loop = asyncio.get_event_loop()
        self._conn: WebSocketConnection | None = None
        self._early: list[bytes] = []
        self._early_size = 0
        self._messages: deque[str | bytes] = deque()
        self._end: Disconnected | None = None          # once closed: what receive() ends with
        self._reader: asyncio.Future | None = None
        self._writable: asyncio.Future | None = None
        self._reading = True
        self._close_timer: asyncio.TimerHandle | None = None
        self._pinger: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None
        self._gone = False
        self._gone_waiter: asyncio.Future | None = None

    # -- the app's side --------------------------------------------------------------------
    async def accept(self, subprotocol: str | None = None,
                     headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
        """Open the WebSocket: 101 (HTTP/1.1) or 200 (HTTP/2), with ``subprotocol`` (one the
        client offered; ValueError otherwise) and extra response ``headers``."""
        if self.state != "open":
            raise InvalidStateError(f"accept() when the WebSocket is {self.state}")
        if self._gone:
            self.state = "closed"
            return
        check_subprotocol(self.request, subprotocol)
        policy = DeflatePolicy() if self.config.ws_per_message_deflate else None
        value, deflate = negotiate_extensions(self.request, policy)
        status, fields = accept_response(self.request, subprotocol, value)
        h2 = self.request.http2
        for name, field in _checked(headers):
            lower = name.lower()
            if lower in _HANDSHAKE_FIELDS:
                continue       # ours to set
            fields.append((lower if h2 else name, field))
        self._conn = WebSocketConnection(
            deflate=deflate, max_message_size=self.config.ws_max_message_size)
        self.subprotocol = subprotocol
        self.state = "accepted"
        self.transport.respond(status, fields, False)
        if self.config.ws_ping_interval:
            self._pinger = self.loop.call_later(self.config.ws_ping_interval, self._ping)
        if self._early:
            early = b"".join(self._early)
            self._early = []
            self.feed(early)

    async def deny(self, status: int = 403, headers: Iterable[tuple[bytes, bytes]] = (),
                   body: bytes = b"") -> None:
        """Answer the opening request with an HTTP response instead (no WebSocket)."""
        if self.state != "open":
            raise InvalidStateError(f"deny() when the WebSocket is {self.state}")
        if not 200 <= status <= 599 or status == 101:
            raise ValueError(f"a denial's status must be 200-599, got {status}")
        fields = [(n.lower(), v) for n, v in _checked(headers)
                  if n.lower() not in (b"content-length", b"transfer-encoding",
                                       b"connection", b"upgrade")]
        self.state = "denied"
        if self._gone:
            return
        fields.append((b"content-length", b"%d" % len(body)))
        self.transport.respond(status, fields, not body)
        if body:
            self.transport.write(body, True)
        self.transport.finish()
        self._end = Disconnected(1006, "denied")

    async def receive(self) -> str | bytes | Disconnected:
        """The next message (str: text, bytes: binary), or :class:`Disconnected` once the
        WebSocket is closed (then again on every call)."""
        if self.state == "open":
            raise InvalidStateError("receive() before accept()")
        while not self._messages:
            if self._end is not None:
                return self._end
            self._reader = self.loop.create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        message = self._messages.popleft()
        if not self._reading and len(self._messages) < self.config.ws_max_queue:
            self._reading = True
            self.transport.set_reading(True)
        return message

    async def send(self, data: str | bytes) -> None:
        """Send one message (str: text, bytes-like: binary); waits while the transport's
        output is above ``ws_write_limit``. After the close: :class:`ConnectionClosed`."""
        conn = self._conn
        if conn is None:
            raise InvalidStateError("send() before accept()")
        while not self.transport.writable() and not self._gone:
            self._writable = self.loop.create_future()
            try:
                await self._writable
            finally:
                self._writable = None
        if self._gone or conn.state.value != "OPEN":
            raise ConnectionClosed(self._end.code if self._end is not None else 1006)
        if isinstance(data, str):
            frame = conn.send_text(data)
        else:
            frame = conn.send_bytes(bytes(data))
        self.transport.write(frame)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the close handshake (or deny with 403 before ``accept``). The transport
        closes when the peer's close frame arrives, or ``CLOSE_TIMEOUT`` seconds later."""
        if self.state == "open":
            await self.deny(403)
            return
        conn = self._conn
        if conn is None or self._gone:
            return
        frame = conn.send_close(code, reason)
        if frame:
            self.transport.write(frame)
        if conn.closed:
            self._finish()
        elif self._close_timer is None:
            self._close_timer = self.loop.call_later(CLOSE_TIMEOUT, self._abort,
                                                     "no close frame from the peer")
        if self._end is None:
            self._end = Disconnected(code, reason)
            self._wake_reader()

    async def wait_closed(self) -> None:
        """Return once the transport is gone (or finished)."""
        if not self._gone:
            if self._gone_waiter is None:
                self._gone_waiter = self.loop.create_future()
            await asyncio.shield(self._gone_waiter)

    async def run(self, handler: Callable[[WebSocketSession], Awaitable[Any]]) -> None:
        """Run the app's ``handler(session)``; what it leaves undone is done after it: no
        answer yet: 403 (500 when it raised); still open: close 1000 (1011 when it raised)."""
        prefix = self.config.root_path
        if prefix and not (self.path.startswith(prefix) and (
                len(self.path) == len(prefix) or self.path[len(prefix)] == "/")):
            # outside the app's mount point (--root-path): as for HTTP requests, a 404
            await self.deny(404, [(b"content-type", b"text/plain; charset=utf-8")],
                            b"Not Found\n")
            return
        failed = False
        try:
            await handler(self)
        except Exception:
            failed = True
            log.exception("WebSocket app failed on %s", self.path)
        except asyncio.CancelledError:
            self._abort("the server dropped the connection")
            raise
        try:
            if self.state == "open":
                await self.deny(500 if failed else 403)
            elif self.state == "accepted" and self._conn is not None \
                    and self._conn.state.value == "OPEN":
                await self.close(1011 if failed else 1000)
        except Exception:                                  # a transport gone meanwhile
            log.debug("WebSocket end on %s failed", self.path, exc_info=True)

    # -- the transport's side --------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Bytes from the peer."""
        conn = self._conn
        if conn is None:
            if self.state == "open" and self._early_size + len(data) <= _EARLY_LIMIT:
                self._early.append(data)
                self._early_size += len(data)
            return
        if self.transport.idle():
            conn.output_drained()        # the pongs queued so far went out: the peer reads
        events = conn.receive(data)
        out = conn.data_to_send()
        if out:
            self.transport.write(out)
        for event in events:
            cls = event.__class__
            if cls is TextMessage or cls is BytesMessage:
                self._messages.append(event.data)  # type: ignore[attr-defined]
            elif cls is Pong:
                if self._ping_payload is not None and event.payload == self._ping_payload:  # type: ignore[attr-defined]
                    self._ping_payload = None
            elif cls is CloseReceived or cls is ConnectionFailed:
                if cls is ConnectionFailed:
                    log.info("WebSocket %s failed: %s %s", self.path, event.code,  # type: ignore[attr-defined]
                             event.reason)  # type: ignore[attr-defined]
                if self._end is None or cls is CloseReceived:
                    self._end = Disconnected(event.code, event.reason)  # type: ignore[attr-defined]
        if self._messages or self._end is not None:
            self._wake_reader()
        if conn.closed:
            self._finish()
        elif self._reading and len(self._messages) >= self.config.ws_max_queue:
            self._reading = False
            self.transport.set_reading(False)

    def output_drained(self) -> None:
        """The transport's output went below the limit (and its buffer may be empty)."""
        if self._conn is not None:
            self._conn.output_drained()
        waiter = self._writable
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def connection_lost(self) -> None:
        """The transport is gone (connection closed, stream reset)."""
        if self._gone:
            return
        self._gone = True
        self._cancel_timers()
        if self._end is None:
            self._end = Disconnected(1006, "the connection was lost")
        if self.state == "open":
            self.state = "closed"
        self._wake_reader()
        self.output_drained()
        if self._gone_waiter is not None and not self._gone_waiter.done():
            self._gone_waiter.set_result(None)

    # -- inside ----------------------------------------------------------------------------
    def _wake_reader(self) -> None:
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)

    def _finish(self) -> None:
        """Both close frames went by (or the connection failed): end the transport."""
        self._cancel_timers()
        if not self._gone:
            self.state = "closed"
            self.transport.finish()

    def _abort(self, why: str) -> None:
        log.debug("WebSocket %s dropped: %s", self.path, why)
        self._cancel_timers()
        if not self._gone:
            self.transport.abort()
            self.connection_lost()

    def _cancel_timers(self) -> None:
        for timer in (self._close_timer, self._pinger):
            if timer is not None:
                timer.cancel()
        self._close_timer = self._pinger = None

    def _ping(self) -> None:
        """Keep-alive: a ping now; the pong must be back within ``ws_ping_timeout``."""
        conn = self._conn
        self._pinger = None
        if conn is None or self._gone or conn.state.value != "OPEN":
            return
        if self._ping_payload is not None:                  # the last one was not answered
            self._timed_out()
            return
        self._ping_payload = os.urandom(4)
        self.transport.write(conn.send_ping(self._ping_payload))
        timeout = self.config.ws_ping_timeout
        interval = self.config.ws_ping_interval
        self._pinger = self.loop.call_later(timeout if timeout else interval,
                                            self._ping_check if timeout else self._ping)

    def _ping_check(self) -> None:
        self._pinger = None
        if self._ping_payload is not None:
            self._timed_out()
            return
        left = self.config.ws_ping_interval - self.config.ws_ping_timeout
        self._pinger = self.loop.call_later(max(left, 0.0), self._ping)

    def _timed_out(self) -> None:
        conn = self._conn
        assert conn is not None
        frame = conn.send_close(1011, "keepalive ping timeout")
        if frame:
            self.transport.write(frame)
        if self._end is None:
            self._end = Disconnected(1011, "keepalive ping timeout")
        self._abort("keepalive ping timeout")


class ConnectionClosed(Exception):
    """``send`` on a WebSocket that is closed (``code``: why, as in :class:`Disconnected`)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the WebSocket is closed ({code})")
        self.code = code


_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(rb"[\x00\r\n]|\A[ \t]|[ \t]\Z")


def _checked(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """An app's response fields as bytes pairs; ValueError for a name that is not a token
    or a value with NUL, CR, LF or surrounding blanks (RFC 9110 §5.1, §5.5)."""
    fields = []
    for name, value in headers:
        name, value = bytes(name), bytes(value)
        if not _TOKEN.match(name) or _BAD_VALUE.search(value):
            raise ValueError(f"invalid response field {name!r}: {value!r}")
        fields.append((name, value))
    return fields


#: Response fields the handshake sets itself (an app's own are dropped).
_HANDSHAKE_FIELDS = frozenset((b"upgrade", b"connection", b"sec-websocket-accept",
                               b"sec-websocket-protocol", b"sec-websocket-extensions",
                               b"content-length", b"transfer-encoding"))
