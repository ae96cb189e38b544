"""Protocol selection on a shared port: HTTP/2 or HTTP/1.1, decided once per connection.

:class:`ProtocolSniffer` is the protocol a new connection starts with when HTTP/1.1 is on.
It decides, then hands the transport over (``transport.set_protocol`` + ``connection_made`` +
the bytes it buffered) and is out of the way: the chosen protocol receives every later byte
directly, so the HTTP/2 hot path costs nothing more than before.

* TLS: ALPN decides at once (``h2`` or ``http/1.1``, RFC 7301); a TLS client that negotiated
  nothing is told apart by its first bytes like a cleartext one.
* Cleartext: the first bytes. The HTTP/2 client preface starts ``PRI * HTTP/2.0\\r\\n``
  (RFC 9113 §3.4): that, or bytes that are neither it nor an HTTP/1.x request line, go to the
  HTTP/2 protocol (which answers what is not a preface with GOAWAY, as before). A request line
  (``token SP ...``, RFC 9112 §3, optionally after empty lines) goes to HTTP/1.1.

When HTTP/1.1 is off (``--no-http1``) an HTTP/1.x request gets a plain ``505`` explaining
that the server speaks HTTP/2 only, and the connection is closed: this module is the one place
that tells the two protocols apart (the HTTP/2 engine checks the preface itself).

A connection that sends too little to decide within ``idle_timeout`` is closed. While it
waits it is in the server's connection set, so shutdown closes it too.
"""
from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any, cast

__all__ = ["ProtocolSniffer", "classify"]

_PREFACE_LINE = b"PRI * HTTP/2.0\r\n"
_REQUEST_LINE = re.compile(rb"(?:\r?\n)*[!#$%&'*+.^_`|~0-9A-Za-z-]+( )?")
#: Bytes after which an undecided connection is handed to HTTP/2 (a method is never longer).
_MAX_SNIFF = 64

H2 = "h2"
HTTP11 = "http/1.1"

_HTTP1_BODY = b"This server speaks HTTP/2 only: use TLS with ALPN h2, or h2c prior knowledge.\n"
#: The answer to an HTTP/1.x request when HTTP/1.1 is off.
HTTP1_REFUSAL = (
    b"HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Type: text/plain\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_HTTP1_BODY), _HTTP1_BODY)
)


def classify(data: bytes) -> str | None:
    """``"h2"``, ``"http/1.1"``, or None when ``data`` is too short to tell."""
    n = min(len(data), len(_PREFACE_LINE))
    if data[:n] == _PREFACE_LINE[:n]:
        return H2 if n == len(_PREFACE_LINE) else None
    m = _REQUEST_LINE.match(data)
    if m is not None:
        if m.group(1) is not None:
            return HTTP11
        if m.end() == len(data) and len(data) < _MAX_SNIFF:
            return None  # a method (or empty lines) so far
    return H2


class ProtocolSniffer(asyncio.Protocol):
    """The first protocol of a connection: chooses HTTP/2 or HTTP/1.1, then steps aside."""

    def __init__(self, component: Any, make_h2: Callable[[], asyncio.Protocol],
                 make_h1: Callable[[], asyncio.Protocol] | None = None) -> None:
        self._component = component
        self._make_h2 = make_h2
        self._make_h1 = make_h1
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._timer: asyncio.TimerHandle | None = None

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
        self._buffer += data
        kind = classify(self._buffer)
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
        data, self._buffer = self._buffer, b""
        receiver, sender = protocol, transport
        metrics = getattr(self._component, "metrics", None)
        if metrics is not None:  # HTTP/1.1: bytes counted both ways (kyoukai_h2fast.server.metrics)
            receiver, sender = metrics.meter(protocol, transport)
        transport.set_protocol(receiver)
        protocol.connection_made(sender)
        if data and not transport.is_closing():
            receiver.data_received(data)

    # -- what the server calls on every connection --------------------------------------------
    def shutdown(self) -> None:
        """Nothing is in flight before the protocol is known: close."""
        self.abort()

    def abort(self) -> None:
        self._timer = None
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
