"""HTTP/1.1 hot path, pure Python: the twin of the compiled ``kyoukai_h2fast._http1_c``.

Same names, same results (the differential tests in ``tests/http1/test_http1_fast_path.py``
compare them): :func:`parse_head` reads the common request head in one pass, or returns None
and leaves the request to the full parser (httptools); :func:`response_head` and
:class:`Framing` write the response head. The rules are in the compiled module's docstring and
in :mod:`kyoukai_h2fast.http1.wire`.
"""
from __future__ import annotations

import re
from typing import Any

from ..codec.headers import response_headers

__all__ = ["parse_head", "response_head", "Framing", "Exchange"]

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rb"(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH) (/[\x21-\x22\x24-\x7e]*)"
                           rb" HTTP/1\.([01])\r\n")
# A field line: token name, ":", optional whitespace, a non-empty value of visible characters
# (obs-text too, as llhttp) and inner whitespace that does not end in whitespace.
_FIELD = re.compile(rb"(" + _TOKEN + rb"):[ \t]*([\x21-\x7e\x80-\xff]"
                    rb"(?:[\x20-\x7e\t\x80-\xff]*[\x21-\x7e\x80-\xff])?)\r\n")
#: Fields the full parser interprets itself (the fast path leaves such requests to it).
_FULL_PARSER_FIELDS = frozenset({b"content-length", b"transfer-encoding", b"expect", b"upgrade",
                                 b"proxy-connection"})
_CONNECTION = {b"close": 1, b"keep-alive": 2}


def parse_head(data: bytes, limit: int) -> tuple[list, str, str, bool, bool] | None:
    """``(headers, method, target, http10, keep_alive)`` for a common request head that is
    all of ``data``, else None (see ``kyoukai_h2fast._http1_c``)."""
    if type(data) is not bytes or len(data) < 18 or data[-4:] != b"\r\n\r\n":
        return None
    line = _REQUEST_LINE.match(data)
    if line is None:
        return None
    method, target, minor = line.groups()
    size = len(target)
    if size > limit:
        return None
    headers = [(b":method", method), (b":path", target)]
    pos = line.end()
    end = len(data) - 2
    hosts = connection = 0
    match = _FIELD.match
    while pos < end:
        field = match(data, pos)
        if field is None:
            return None
        pos = field.end()
        name, value = field.groups()
        size += len(name) + len(value) + 32
        if size > limit:
            return None
        name = name.lower()
        if name == b"host":
            hosts += 1
        elif name == b"connection":
            kind = _CONNECTION.get(value.lower(), 0)
            if connection or not kind:
                return None
            connection = kind
        elif name in _FULL_PARSER_FIELDS:
            return None
        headers.append((name, value))
    http10 = minor == b"0"
    if pos != end or hosts > 1 or (hosts == 0 and not http10):
        return None
    keep_alive = connection == 2 if http10 else connection != 1
    return (headers, method.decode("ascii"), target.decode("latin-1"), http10, keep_alive)


class Exchange:
    """One request/response on the connection, around its request state
    (:class:`~kyoukai_h2fast.wsgi.request_state.H2State`)."""

    __slots__ = ("state", "http10", "keep_alive", "expect_continue", "access", "body_done",
                 "framing", "sent", "reject", "detail", "target", "method")

    def __init__(self, state: Any, http10: bool, keep_alive: bool, access: Any) -> None:
        #: The request's state (None for a rejected request, answered without the app).
        self.state = state
        self.http10 = http10
        #: The client allows the connection to stay open after this exchange.
        self.keep_alive = keep_alive
        #: ``Expect: 100-continue`` with a body to come.
        self.expect_continue = False
        #: What the access log will say (None while it is off, and once it is written).
        self.access = access
        self.body_done = False
        #: How the response body is delimited (a :class:`Framing`), once its head is written.
        self.framing: Any = None
        #: Body bytes written so far.
        self.sent = 0
        #: A status to answer without running the app (then close), or 0.
        self.reject = 0
        self.detail = ""
        self.target = ""
        self.method = ""


_NO_BODY_STATUS = frozenset({204, 304})


class Framing:
    """How a response body is delimited; what :func:`response_head` decided."""

    __slots__ = ("status", "length", "chunked", "no_body", "keep_alive")

    def __init__(self, status: int, length: int | None, chunked: bool, no_body: bool,
                 keep_alive: bool) -> None:
        #: The status code sent.
        self.status = status
        #: Body bytes to send (``content-length``), or None (chunked or close-delimited).
        self.length = length
        #: ``transfer-encoding: chunked``.
        self.chunked = chunked
        #: No body at all (HEAD, 1xx, 204, 304).
        self.no_body = no_body
        #: The connection stays open after this response.
        self.keep_alive = keep_alive


def response_head(status: str, app_headers: list, *, http10: bool, is_head: bool,
                  keep_alive: bool, body_size: int | None) -> tuple[bytes, Framing]:
    """The head (status line + fields + blank line) of a response, and its :class:`Framing`
    (see :func:`kyoukai_h2fast.http1.wire.response_head`)."""
    fields = response_headers(status, app_headers)
    reason = status[4:]
    if "\r" in reason or "\n" in reason:
        raise ValueError(f"invalid WSGI status {status!r}: CR or LF in the reason phrase")
    code = int(fields[0][1])
    for name, value in app_headers:
        if name.lower() == "connection" and "close" in value.lower():
            keep_alive = False
    parts = [b"HTTP/1.1 %d %s\r\n" % (code, reason.encode("latin-1"))]
    append = parts.append
    length = None
    for name, value in fields[1:]:
        if name == b"content-length":
            if not value.isdigit():
                raise ValueError(f"invalid content-length {value!r}")
            if length is not None and int(value) != length:
                raise ValueError("conflicting content-length fields")
            if length is not None:
                continue
            length = int(value)
        append(name)
        append(b": ")
        append(value)
        append(b"\r\n")
    no_body = is_head or code < 200 or code in _NO_BODY_STATUS
    chunked = False
    if no_body:
        if code in _NO_BODY_STATUS:
            length = None
    elif length is None:
        if body_size is not None:
            length = body_size
            append(b"content-length: %d\r\n" % body_size)
        elif http10:
            keep_alive = False  # close-delimited body
        else:
            chunked = True
            append(b"transfer-encoding: chunked\r\n")
    if not keep_alive:
        append(b"connection: close\r\n\r\n")
    elif http10:
        append(b"connection: keep-alive\r\n\r\n")
    else:
        append(b"\r\n")
    return b"".join(parts), Framing(code, None if no_body else length, chunked, no_body,
                                    keep_alive)
