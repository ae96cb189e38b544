"""The WebSocket opening handshake: HTTP/1.1 Upgrade (RFC 6455 §4.2) and HTTP/2 extended
CONNECT (RFC 8441 §4-§5), checked the same way and answered with the right header lists.

A transport calls, with the request's header list (``(name, value)`` bytes pairs, pseudo-header
fields first, as both HTTP layers produce them):

    outcome = validate_http1_request(headers, http_version)      # or validate_http2_request
    if isinstance(outcome, Rejection): answer outcome.status + outcome.headers (or, for a
        malformed HTTP/2 request, reset the stream with PROTOCOL_ERROR) and stop
    value, deflate = negotiate_extensions(outcome, policy)       # policy None: no extensions
    check_subprotocol(outcome, chosen)                           # the app's choice, if any
    status, fields = accept_response(outcome, chosen, value)     # 101 (HTTP/1.1) or 200 (HTTP/2)
    conn = WebSocketConnection(deflate=deflate)

Every bad request has one outcome (:class:`Rejection`), checked in this order:

HTTP/1.1 (``validate_http1_request``):
  * method not GET: 405, ``Allow: GET``;
  * HTTP/1.0: 400 (an upgrade needs HTTP/1.1, §4.1);
  * no Host: 400;
  * ``Upgrade`` without the ``websocket`` token: 426 with ``Upgrade: websocket``,
    ``Connection: Upgrade`` (RFC 9110 §15.5.22) and ``Sec-WebSocket-Version: 13``;
  * ``Connection`` without the ``upgrade`` token: 400;
  * ``Sec-WebSocket-Version`` absent, repeated or not ``13``: 426 with
    ``Sec-WebSocket-Version: 13`` (§4.4; an absent one is likely an older draft's client,
    which this tells what we speak);
  * ``Sec-WebSocket-Key`` absent, repeated, or not the base64 of 16 bytes: 400;
  * ``Sec-WebSocket-Protocol`` or ``Sec-WebSocket-Extensions`` not in their grammar: 400.

HTTP/2 (``validate_http2_request``):
  * ``:protocol`` on a method other than CONNECT, or ``:scheme``/``:path``/``:authority``
    missing or repeated: malformed (RFC 8441 §4, RFC 9113 §8.1.1): ``malformed=True``, a
    stream error PROTOCOL_ERROR, not a response;
  * ``:protocol`` other than ``websocket``: 501;
  * ``sec-websocket-version`` absent, repeated or not ``13``: 400 with
    ``sec-websocket-version: 13`` (not 426: it requires an ``Upgrade`` field, which HTTP/2
    forbids, RFC 9113 §8.2.2);
  * ``sec-websocket-protocol`` or ``sec-websocket-extensions`` not in their grammar: 400.
  ``sec-websocket-key`` is ignored and no ``sec-websocket-accept`` is sent (RFC 8441 §5: they
  are not used over HTTP/2).

Owns also :func:`accept_key` (§4.2.2), :func:`is_upgrade_request` (the transport's test for
handing an HTTP/1.1 request here), subprotocol selection and the extension negotiation entry
point (permessage-deflate is :mod:`.deflate`'s). Leaves to the transports the routing, the
``SETTINGS_ENABLE_CONNECT_PROTOCOL`` setting and everything after the response.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .deflate import DeflatePolicy, PerMessageDeflate, negotiate, parse_extensions

__all__ = ["WebSocketRequest", "Rejection", "accept_key", "is_upgrade_request",
           "validate_http1_request", "validate_http2_request", "negotiate_extensions",
           "select_subprotocol", "check_subprotocol", "accept_response", "GUID"]

#: The GUID of RFC 6455 §1.3, appended to the key before hashing.
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_Headers = Iterable[tuple[bytes, bytes]]
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_VERSION = b"13"
_VERSION_FIELD_1 = (b"Sec-WebSocket-Version", _VERSION)
_VERSION_FIELD_2 = (b"sec-websocket-version", _VERSION)


@dataclass(frozen=True, slots=True)
class WebSocketRequest:
    """A valid opening request: what the response and the app need from it."""

    #: The request target (``:path``).
    path: bytes
    #: ``Sec-WebSocket-Key`` (HTTP/1.1); None over HTTP/2.
    key: bytes | None
    #: The subprotocols the client offers, in its order.
    subprotocols: tuple[str, ...]
    #: The raw ``Sec-WebSocket-Extensions`` field values (syntax checked).
    extensions: tuple[bytes, ...]
    #: True for an HTTP/2 extended CONNECT.
    http2: bool


@dataclass(frozen=True, slots=True)
class Rejection:
    """A request that cannot open a WebSocket: the response to send instead."""

    #: The HTTP status.
    status: int
    #: Why (for the response body and logs).
    reason: str
    #: Header fields the response must carry (e.g. ``Sec-WebSocket-Version: 13``).
    headers: tuple[tuple[bytes, bytes], ...] = ()
    #: HTTP/2: the request is malformed (RFC 9113 §8.1.1): reset the stream with
    #: PROTOCOL_ERROR instead of answering ``status``.
    malformed: bool = False


def accept_key(key: bytes | str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2 item 5.4)."""
    raw = key.encode("ascii") if isinstance(key, str) else key
    return base64.b64encode(hashlib.sha1(raw + GUID).digest()).decode("ascii")


def _values(headers: _Headers, name: bytes) -> list[bytes]:
    return [v for n, v in headers if n.lower() == name]


def _tokens(values: list[bytes]) -> list[bytes]:
    """The comma-separated elements of a list field's values, lower-cased."""
    return [t.strip().lower() for v in values for t in v.split(b",") if t.strip()]


def is_upgrade_request(headers: _Headers) -> bool:
    """True when an HTTP/1.1 request asks to upgrade to WebSocket (``Upgrade`` carries the
    ``websocket`` token): the transport hands such a request to :func:`validate_http1_request`."""
    return b"websocket" in _tokens(_values(headers, b"upgrade"))


def _protocols(values: list[bytes]) -> tuple[str, ...] | None:
    """``Sec-WebSocket-Protocol``: a list of tokens (RFC 6455 §4.1, §11.3.4); None when not."""
    found = []
    for value in values:
        for item in value.split(b","):
            item = item.strip(b" \t")
            if not item:
                continue
            if not _TOKEN.match(item):
                return None
            found.append(item.decode("ascii"))
    return tuple(found)


def _common(headers: list[tuple[bytes, bytes]], path: bytes, key: bytes | None,
            http2: bool) -> WebSocketRequest | Rejection:
    """The subprotocol and extension fields, the same over both transports."""
    protocols = _protocols(_values(headers, b"sec-websocket-protocol"))
    if protocols is None:
        return Rejection(400, "malformed Sec-WebSocket-Protocol")
    extensions = _values(headers, b"sec-websocket-extensions")
    try:
        parse_extensions(extensions)
    except (ValueError, UnicodeDecodeError):
        return Rejection(400, "malformed Sec-WebSocket-Extensions")
    return WebSocketRequest(path, key, protocols, tuple(extensions), http2)


def validate_http1_request(headers: _Headers, http_version: str = "1.1",
                           ) -> WebSocketRequest | Rejection:
    """Check an HTTP/1.1 opening request (RFC 6455 §4.2.1); see the module docstring for
    each outcome. ``headers`` starts with ``:method`` and ``:path`` (the HTTP/1.1 reader's
    shape); names are compared case-insensitively."""
    fields = list(headers)
    method = _values(fields, b":method")
    if method != [b"GET"]:
        return Rejection(405, "a WebSocket handshake is a GET request", ((b"Allow", b"GET"),))
    if http_version in ("1.0", "0.9"):
        return Rejection(400, "a WebSocket handshake needs HTTP/1.1")
    if not _values(fields, b"host"):
        return Rejection(400, "missing Host")
    if b"websocket" not in _tokens(_values(fields, b"upgrade")):
        return Rejection(426, "missing Upgrade: websocket",
                         ((b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"),
                          _VERSION_FIELD_1))
    if b"upgrade" not in _tokens(_values(fields, b"connection")):
        return Rejection(400, "missing Connection: Upgrade")
    if _values(fields, b"sec-websocket-version") != [_VERSION]:
        return Rejection(426, "unsupported Sec-WebSocket-Version (13 is supported)",
                         ((b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"),
                          _VERSION_FIELD_1))
    keys = _values(fields, b"sec-websocket-key")
    if len(keys) != 1:
        return Rejection(400, "missing or repeated Sec-WebSocket-Key")
    key = keys[0].strip(b" \t")
    try:
        valid_key = len(key) == 24 and len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        valid_key = False
    if not valid_key:
        return Rejection(400, "Sec-WebSocket-Key is not 16 bytes in base64")
    paths = _values(fields, b":path")
    return _common(fields, paths[0] if paths else b"/", key, False)


def validate_http2_request(headers: _Headers) -> WebSocketRequest | Rejection:
    """Check an HTTP/2 extended CONNECT (RFC 8441 §4, §5); see the module docstring for each
    outcome. ``headers`` is the decoded header list, pseudo-header fields included."""
    fields = list(headers)
    pseudo = {}
    for name in (b":method", b":protocol", b":scheme", b":path", b":authority"):
        values = _values(fields, name)
        if len(values) > 1:
            return Rejection(400, f"repeated {name.decode()}", malformed=True)
        pseudo[name] = values[0] if values else None
    if pseudo[b":method"] != b"CONNECT":
        return Rejection(400, ":protocol on a request other than CONNECT", malformed=True)
    for name in (b":scheme", b":path", b":authority"):
        if not pseudo[name]:
            return Rejection(400, f"extended CONNECT without {name.decode()}", malformed=True)
    if pseudo[b":protocol"] != b"websocket":
        return Rejection(501, "unsupported :protocol (websocket is supported)")
    if _values(fields, b"sec-websocket-version") != [_VERSION]:
        return Rejection(400, "unsupported sec-websocket-version (13 is supported)",
                         (_VERSION_FIELD_2,))
    path = pseudo[b":path"]
    assert path is not None
    return _common(fields, path, None, True)


def negotiate_extensions(request: WebSocketRequest, policy: DeflatePolicy | None = None,
                         ) -> tuple[str | None, PerMessageDeflate | None]:
    """The ``Sec-WebSocket-Extensions`` response value and the connection's
    permessage-deflate (RFC 7692), or ``(None, None)``: none offered or acceptable, or
    ``policy`` None (extensions disabled)."""
    if policy is None or not request.extensions:
        return None, None
    return negotiate(request.extensions, policy)


def select_subprotocol(request: WebSocketRequest, supported: Sequence[str]) -> str | None:
    """The first of the server's ``supported`` subprotocols (its order of preference) that
    the client offered, or None."""
    for protocol in supported:
        if protocol in request.subprotocols:
            return protocol
    return None


def check_subprotocol(request: WebSocketRequest, chosen: str | None) -> None:
    """``ValueError`` unless ``chosen`` is None or one of the client's offers (RFC 6455
    §4.2.2: the server selects one the client listed)."""
    if chosen is not None and chosen not in request.subprotocols:
        raise ValueError(f"subprotocol {chosen!r} was not offered by the client")


def accept_response(request: WebSocketRequest, subprotocol: str | None = None,
                    extensions: str | None = None) -> tuple[int, list[tuple[bytes, bytes]]]:
    """The status and header fields that open the WebSocket: 101 with ``Upgrade``,
    ``Connection`` and ``Sec-WebSocket-Accept`` (HTTP/1.1, RFC 6455 §4.2.2), 200 (HTTP/2,
    RFC 8441 §5); plus ``Sec-WebSocket-Protocol`` and ``Sec-WebSocket-Extensions`` when given
    (lower-case names over HTTP/2)."""
    check_subprotocol(request, subprotocol)
    if request.http2:
        status, fields = 200, []
        protocol_name, extensions_name = b"sec-websocket-protocol", b"sec-websocket-extensions"
    else:
        assert request.key is not None
        status = 101
        fields = [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"),
                  (b"Sec-WebSocket-Accept", accept_key(request.key).encode("ascii"))]
        protocol_name, extensions_name = b"Sec-WebSocket-Protocol", b"Sec-WebSocket-Extensions"
    if subprotocol is not None:
        fields.append((protocol_name, subprotocol.encode("ascii")))
    if extensions is not None:
        fields.append((extensions_name, extensions.encode("latin-1")))
    return status, fields
