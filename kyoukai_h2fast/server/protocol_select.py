"""Protocol selection on a shared port: HTTP/2 or HTTP/1.1, decided once per connection.

:class:`ProtocolSniffer` is the protocol a new connection starts with when HTTP/1.1 is on.
It decides, then hands the transport over (``transport.set_protocol`` + ``connection_made`` +
the bytes it buffered) and is out of the way: the chosen protocol receives every later byte
directly, so the HTTP/2 hot path costs nothing more than before.

* TLS: ALPN decides at once (``h2`` or ``http/1.1``, RFC 7301); a TLS client that negotiated
  nothing is told apart by its first bytes like a cleartext one.
* Cleartext: the first bytes. The HTTP/2 client preface starts ``PRI * HTTP/2.0\r\n``
  (RFC 9113 §3.4). HTTP/1.1 is chosen only for an HTTP/1.x request line (RFC 9112 §3,
  optionally after empty lines, §2.2): ``method SP request-target SP HTTP/1.<digit>``, decided
  when that version is complete (with or without the CRLF that ends the line). Any other
  version in a request line (``HTTP/2.0``, ``HTTP/0.9``, ``HTTP/3.1``), a line that is not a
  request line (``INVALID CONNECTION PREFACE``: h2spec §3.5) and bytes that are neither are an
  invalid HTTP/2 preface: they go to the HTTP/2 protocol, which answers with
  GOAWAY(PROTOCOL_ERROR) and closes (RFC 9113 §3.4: the port speaks HTTP/1.x, whose major
  version is 1, and HTTP/2 with prior knowledge, whose only start is the preface). A minor
  version other than 0 or 1 (``HTTP/1.2``) is still HTTP/1.x (RFC 9112 §2.3): the HTTP/1.1
  protocol answers it (llhttp knows only 1.0 and 1.1: ``400``).

  Undecided bytes wait: leading empty lines and the method (at most ``_MAX_SNIFF`` bytes
  together), then the request target, up to ``max_header_list_size`` bytes (the HTTP/1.1
  side's bound for a target), then the version. A target still without its end past that
  bound is an HTTP/1.x request line too long to serve: it goes to HTTP/1.1, which answers
  ``414``. The wait is bounded in time by the idle timeout too. Each read costs time in
  proportion to its own length only (a target arriving byte by byte is not scanned again
  and again).

When HTTP/1.1 is off (``--no-http1``) an HTTP/1.x request gets a plain ``505`` explaining
that the server speaks HTTP/2 only, and the connection is closed: this module is the one place
that tells the two protocols apart (the HTTP/2 engine checks the preface itself).

A connection that sends too little to decide within ``idle_timeout`` is closed. While it
waits it is in the server's connection set, so shutdown reaches it too: one that sent nothing
yet is closed after a short grace (its request may be on the way), one that sent part of its
first bytes is still handed over when they decide, and the chosen protocol is told to shut
down at once (GOAWAY after the requests that came with the preface; HTTP/1.1 closes after the
response to a request that came whole).
"""
from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any, cast

from ..config import FIRST_REQUEST_GRACE

__all__ = ["ProtocolSniffer", "classify"]

_PREFACE_LINE = b"PRI * HTTP/2.0\r\n"
#: Leading empty lines and a method (RFC 9110 §5.6.2 token), then what follows it.
_METHOD = re.compile(rb"(?:\r?\n)*[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: The request target: anything up to the space before the version (what it may hold is for
#: the HTTP/1.1 parser to judge; a line with any other version is not HTTP/1.x at all).
_TARGET = re.compile(rb"[^ \r\n]+")
#: What ends a request target, in a read that may move past it.
_TARGET_END = re.compile(rb"[ \r\n]")
#: A complete HTTP/1.x version, then the end of the data, a CR at its end, or the line's end.
_HTTP1_VERSION = re.compile(rb"HTTP/1\.[0-9](?:\r?\n|\r?\Z)")
_VERSION_PREFIX = b"HTTP/1."
#: Bytes of leading empty lines and method after which an undecided connection is HTTP/2
#: (no method is that long).
_MAX_SNIFF = 64
#: Default bound on the request target while undecided (``max_header_list_size``).
_MAX_TARGET = 64 * 1024

H2 = "h2"
HTTP11 = "http/1.1"

_HTTP1_BODY = b"This server speaks HTTP/2 only: use TLS with ALPN h2, or h2c prior knowledge.\n"
#: The answer to an HTTP/1.x request when HTTP/1.1 is off.
HTTP1_REFUSAL = (
    b"HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Type: text/plain\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_HTTP1_BODY), _HTTP1_BODY)
)


def classify(data: bytes, max_target: int = _MAX_TARGET) -> str | None:
    """``"h2"``, ``"http/1.1"``, or None when ``data`` is too short to tell (see the module
    docstring for the rules; ``max_target`` bounds the wait for a request target's end)."""
    return _scan(data, max_target)[0]


def _scan(data: bytes, max_target: int) -> tuple[str | None, bool]:
    """:func:`classify`'s answer, and whether an undecided ``data`` ends inside the request
    target (then more target bytes cannot change the answer before the bound)."""
    n = min(len(data), len(_PREFACE_LINE))
    if data[:n] == _PREFACE_LINE[:n]:
        return (H2 if n == len(_PREFACE_LINE) else None), False
    m = _METHOD.match(data)
    if m is None:  # empty lines so far (perhaps half a CRLF), or no method at all
        waiting = not data.lstrip(b"\r\n") and len(data) < _MAX_SNIFF
        return (None if waiting else H2), False
    at = m.end()
    if at == len(data):
        return (None if at < _MAX_SNIFF else H2), False
    if data[at] != 0x20:  # SP
        return H2, False
    t = _TARGET.match(data, at + 1)
    if t is None:  # the data ends after the SP, or the target is empty
        return (None if at + 1 == len(data) else H2), False
    at = t.end()
    if at == len(data):
        if at - t.start() > max_target:  # HTTP/1.1 answers 414
            return HTTP11, False
        return None, True
    if data[at] != 0x20:
        return H2, False
    if _HTTP1_VERSION.match(data, at + 1):
        return HTTP11, False
    if len(data) - at - 1 <= len(_VERSION_PREFIX) and _VERSION_PREFIX.startswith(data[at + 1:]):
        return None, False  # the version is still arriving
    return H2, False


class ProtocolSniffer(asyncio.Protocol):
    """The first protocol of a connection: chooses HTTP/2 or HTTP/1.1, then steps aside."""

    def __init__(self, component: Any, make_h2: Callable[[], asyncio.Protocol],
                 make_h1: Callable[[], asyncio.Protocol] | None = None) -> None:
        self._component = component
        self._make_h2 = make_h2
        self._make_h1 = make_h1
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        #: The buffer ends inside a request target: reads without SP, CR or LF decide nothing.
        self._in_target = False
        self._max_target: int = component.config.max_header_list_size
        self._timer: asyncio.TimerHandle | None = None
        self._shutting_down = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # a stream transport
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            alpn = ssl_object.selected_alpn_protocol()
            if alpn == H2:
                self._hand_over(self._make_h2())
                return
            if alpn == HTTP11 and self._make_h1 is not None:  # (offered only with HTTP/1.1 on)
                self._hand_over(self._make_h1())
                return
        self._component.connections.add(self)
        timeout = self._component.config.idle_timeout
        if timeout:
            self._timer = asyncio.get_event_loop().call_later(timeout, self.abort)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if self._in_target and len(buffer) <= self._max_target \
                and _TARGET_END.search(data) is None:
            return  # more of the request target: nothing new to decide
        kind, self._in_target = _scan(bytes(buffer), self._max_target)
        if kind is None:
            return
        if kind == H2:
            self._hand_over(self._make_h2())
        elif self._make_h1 is not None:
            self._hand_over(self._make_h1())
        else:  # HTTP/1.1 is off
            self._stop()
            transport = self._transport
            assert transport is not None  # set by connection_made
            transport.write(HTTP1_REFUSAL)
            transport.close()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()

    def _stop(self) -> None:
        self._component.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _hand_over(self, protocol: asyncio.Protocol) -> None:
        self._stop()
        transport = self._transport
        assert transport is not None  # set by connection_made
        data = bytes(self._buffer)
        self._buffer.clear()
        receiver, sender = protocol, transport
        metrics = getattr(self._component, "metrics", None)
        if metrics is not None:  # HTTP/1.1: bytes counted both ways (server/metrics.py)
            receiver, sender = metrics.meter(protocol, transport)
        transport.set_protocol(receiver)
        protocol.connection_made(sender)
        if data and not transport.is_closing():
            receiver.data_received(data)
        if self._shutting_down:
            shutdown = getattr(protocol, "shutdown", None)
            if shutdown is not None and not transport.is_closing():
                shutdown()

    # -- what the server calls on every connection --------------------------------------------
    def shutdown(self) -> None:
        """Graceful: a connection that sent nothing gets a short grace for its first bytes;
        once they decide, the chosen protocol shuts down at once (see the module docstring)."""
        if self._shutting_down:
            return
        self._shutting_down = True
        if not self._buffer:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = asyncio.get_event_loop().call_later(FIRST_REQUEST_GRACE, self.abort)

    def abort(self) -> None:
        self._timer = None
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
