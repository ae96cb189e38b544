"""Reading HTTP/1.x requests (RFC 9112 §2-§7) with httptools: bytes in, exchanges out.

:class:`RequestReader` owns the parser (llhttp in strict mode: conflicting ``content-length`` and
``transfer-encoding``, bad chunk sizes, obsolete line folding and the like are errors, so requests
cannot be smuggled past it) and what it must bound: the request target and header section
(``max_header_list_size``, counted as HTTP/2 counts a header list: name + value + 32 per field,
including what httptools buffers for a head that never ends) and the body (``max_body_size``). Each
request head becomes an :class:`Exchange` around an
:class:`~kyoukai_h2fast.wsgi.request_state.H2State` whose header list has the HTTP/2 shape the
environ builder expects (``:method``, ``:path``, ``:authority`` for an absolute-form target, then
the fields with lower-case names). The connection (:class:`RequestSink`, implemented by
:class:`~kyoukai_h2fast.http1.protocol.H1Protocol`) is told through three calls:
``request_received(ex)``, ``request_body(ex, data)``, ``request_complete(ex)``; bad input comes back
from :meth:`RequestReader.feed` as a status (400, 413, 414, 417, 431, 501, 505) with a detail for
the client.

``Upgrade`` requests: llhttp leaves everything after their head unparsed; a GET-like one is
served as HTTP/1.1 and parsing goes on after it, a ``content-length`` body is taken by count,
a chunked one is refused (400); a WebSocket upgrade the connection took over
(``handed_over``) gets the bytes after its head.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import httptools

from ..wsgi.access_record import AccessRecord
from ..wsgi.request_state import H2State

if TYPE_CHECKING:
    from ..config import ServerConfig
    from .wire import Framing

__all__ = ["RequestReader", "RequestSink", "Exchange"]

#: Request fields the reader itself interprets (noted as they are parsed).
_FRAMING_FIELDS = frozenset({b"host", b"content-length", b"transfer-encoding", b"expect"})


class Reject(Exception):
    """Raised in a parser callback: answer ``status`` and close (0: just stop parsing)."""

    def __init__(self, status: int, detail: str = "") -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail


class Exchange:
    """One request/response on the connection, around its :class:`H2State`."""

    __slots__ = ("state", "http10", "keep_alive", "expect_continue", "access", "body_done",
                 "framing", "sent", "reject", "detail", "target", "method")

    def __init__(self, state: H2State | None, http10: bool, keep_alive: bool,
                 access: AccessRecord | None) -> None:
        self.state = state
        self.http10 = http10
        #: The client allows the connection to stay open after this exchange.
        self.keep_alive = keep_alive
        #: ``Expect: 100-continue`` with a body to come.
        self.expect_continue = False
        #: What the access log will say (None while it is off, and once it is written).
        self.access = access
        self.body_done = False
        #: How the response body is delimited, once its head is written.
        self.framing: Framing | None = None
        #: Body bytes written so far.
        self.sent = 0
        #: A status to answer without running the app (then close), or 0.
        self.reject = 0
        self.detail = ""
        self.target = ""
        self.method = ""


class RequestSink(Protocol):
    """What :class:`RequestReader` tells its owner, the connection, in the order it reads."""

    @property
    def keeps_records(self) -> bool:
        """True when requests keep a record of their end (access log or metrics on)."""

    def request_received(self, ex: Exchange) -> None:
        """A request head was read (``ex.state`` holds it; ``ex.body_done`` when it has no
        body)."""

    def request_body(self, ex: Exchange, data: bytes) -> None:
        """Body bytes of ``ex``'s request."""

    def request_complete(self, ex: Exchange) -> None:
        """``ex``'s request body is complete."""


class RequestReader:
    """httptools callbacks turned into exchanges for ``owner`` (see the module docstring)."""

    def __init__(self, owner: RequestSink, config: ServerConfig) -> None:
        self.owner = owner
        self.config = config
        self.parser = httptools.HttpRequestParser(self)
        #: The exchange whose head or body is being read, or None between requests.
        self.parsing: Exchange | None = None
        #: True once nothing more is to be read from the connection.
        self.stopped = False
        #: True while a request head is incomplete.
        self.in_head = False
        #: Loop time of the bytes being fed (set by the owner).
        self.now = 0.0
        self.count = 0
        self.url = b""
        self._fields: list = []
        self._special: list = []
        self._head_size = 0
        self._head_fresh = False
        self._head_bytes = 0
        #: Body bytes of an Upgrade request still to take by count (llhttp skips them).
        self._raw_left = 0
        #: Set when the connection was handed over after an Upgrade request (a WebSocket,
        #: :mod:`kyoukai_h2fast.http1.websocket`): it takes the bytes after the request head.
        self.handed_over: Callable[[bytes], None] | None = None

    def feed(self, data: bytes) -> tuple[int, str] | None:
        """Parse ``data``; returns ``(status, detail)`` for bad input (then stop reading)."""
        while True:
            if self._raw_left:
                taken = data[:self._raw_left]
                data = data[len(taken):]
                self._raw_left -= len(taken)
                try:
                    self.on_body(taken)
                except Reject as e:
                    return e.status, e.detail
                if not self._raw_left:
                    self._complete()
                if not data or self.stopped:
                    return None
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade as e:
                # A GET-like request with Upgrade was complete; go on after it.
                offset = e.args[0] if e.args else len(data)
                data = data[offset:]
                if self.handed_over is not None:
                    if data:
                        self.handed_over(data)
                    return None
                if (data or self._raw_left) and not self.stopped:
                    continue
            except httptools.HttpParserCallbackError as e:
                cause = e.__context__
                if isinstance(cause, Reject):
                    return (cause.status, cause.detail) if cause.status else None
                raise
            except httptools.HttpParserError as e:
                # (bytes after a request that closes the connection are ignored)
                return None if self.stopped else (400, str(e))
            break
        if self.in_head:  # bound what the parser buffers for one unfinished head
            if self._head_fresh:
                self._head_fresh = False
            else:
                self._head_bytes += len(data)
                if self._head_bytes > self.config.max_header_list_size:
                    return 431, "header section too large"
        return None

    def method_name(self) -> str:
        """The method of the request line being read, or ``""``."""
        if not self.url:
            return ""
        try:
            return self.parser.get_method().decode("latin-1")
        except Exception:  # the parser may not know one
            return ""

    # -- parser callbacks (httptools) -----------------------------------------------------
    def on_message_begin(self) -> None:
        if self.stopped:  # the connection closes: parse no further request
            raise Reject(0)
        self.url = b""
        self._fields = []
        self._special = []
        self._head_size = 0
        self.in_head = True
        self._head_fresh = True
        self._head_bytes = 0

    def on_url(self, piece: bytes) -> None:
        self.url += piece
        if len(self.url) > self.config.max_header_list_size:
            raise Reject(414, "request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 32
        if self._head_size + len(self.url) > self.config.max_header_list_size:
            raise Reject(431, "header section too large")
        if self.in_head:
            name = name.lower()
            self._fields.append((name, value))
            if name in _FRAMING_FIELDS:
                self._special.append((name, value))
        elif self.parsing is not None:  # a trailer field of a chunked body
            state = self.parsing.state
            assert state is not None  # parsing: a request's exchange
            if state.trailers is None:
                state.trailers = []
            state.trailers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        parser = self.parser
        version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise Reject(505)
        method = parser.get_method()
        if method == b"CONNECT":
            raise Reject(501, "CONNECT is not supported")
        fields = self._fields
        hosts = 0
        length = expect = None
        has_body = False
        for name, value in self._special:
            if name == b"host":
                hosts += 1
            elif name == b"content-length":
                length = int(value)  # llhttp checked the syntax and agreement
                has_body = length > 0
            elif name == b"transfer-encoding":
                has_body = True
            else:
                expect = value
        if hosts > 1 or (not hosts and version == "1.1"):
            raise Reject(400, "an HTTP/1.1 request needs exactly one Host field")
        url = self.url
        head = [(b":method", method)]
        if url[:1] == b"/" or (url == b"*" and method == b"OPTIONS"):
            head.append((b":path", url))
        else:  # absolute-form (RFC 9112 §3.2.2): its authority replaces Host
            try:
                parsed = httptools.parse_url(url)
            except httptools.HttpParserInvalidURLError:
                raise Reject(400, "invalid request target") from None
            if not parsed.host:
                raise Reject(400, "invalid request target")
            authority = parsed.host + (b":%d" % parsed.port if parsed.port else b"")
            path = parsed.path or b"/"
            head.append((b":path", path + (b"?" + parsed.query if parsed.query else b"")))
            head.append((b":authority", authority))
            fields = [(n, authority if n == b"host" else v) for n, v in fields]
        upgrade_body = parser.should_upgrade() and has_body
        if upgrade_body and length is None:
            raise Reject(400, "an Upgrade request with a chunked body is not supported")
        self.count += 1
        state = H2State(head + fields, self.count, self.owner)
        ex = Exchange(state, version == "1.0", parser.should_keep_alive(),
                      AccessRecord() if self.owner.keeps_records else None)
        ex.method = method.decode("latin-1")
        ex.target = url.decode("latin-1")
        self.parsing = ex
        if length is not None and length > self.config.max_body_size:
            raise Reject(413, "body larger than the server accepts")
        if expect is not None:
            if expect.lower() != b"100-continue":
                raise Reject(417, "only 100-continue is supported")
            ex.expect_continue = has_body and not ex.http10
        if upgrade_body and length is not None:  # (None was rejected above)
            self._raw_left = length
        state.last_progress = self.now
        if not has_body:
            ex.body_done = True
            state._eof = True
        self.owner.request_received(ex)

    def on_body(self, data: bytes) -> None:
        ex = self.parsing
        if ex is None:
            return
        state = ex.state
        assert state is not None  # parsing: a request's exchange
        if state.finished:
            return  # the response went out already; the connection closes after it
        state.received += len(data)
        if state.received > self.config.max_body_size:
            raise Reject(413, "body larger than the server accepts")
        state.last_progress = self.now
        self.owner.request_body(ex, data)

    def on_message_complete(self) -> None:
        if not self._raw_left:  # else: when the counted body is complete
            self._complete()

    def _complete(self) -> None:
        ex = self.parsing
        self.parsing = None
        self.url = b""
        if ex is None:
            return
        if not ex.keep_alive:
            self.stopped = True  # nothing after a request that closes (RFC 9112 §9.6)
        self.owner.request_complete(ex)
