"""HTTP/1.1 response heads and body framing (RFC 9112 §4, §6, §7): bytes only, no I/O.

Owns what goes on the wire for an HTTP/1.1 response: the status line, the header section
(the app's fields, validated, stripped of connection-specific ones and completed with
``date``/``server`` by the same :func:`kyoukai_h2fast.codec.headers.response_headers` as HTTP/2,
then the framing fields and ``connection``), and the framing of the body:

* no body for ``HEAD``, ``1xx``, ``204`` and ``304`` (RFC 9110 §6.4.1); the app's
  ``content-length`` is kept, as it describes the representation;
* the app's ``content-length`` when it gave one (the protocol then sends exactly that many
  bytes, see :class:`Framing`);
* else, when the whole body is known at once, a ``content-length`` computed here;
* else ``transfer-encoding: chunked`` for HTTP/1.1 clients, or a close-delimited body for
  HTTP/1.0 ones (RFC 9112 §6.3).

The error responses the server sends by itself (400, 408, 413, 414, 417, 431, 500, 501, 505)
are made here too.
"""
from __future__ import annotations

from http import HTTPStatus

from ..codec.headers import response_headers

__all__ = ["Framing", "response_head", "error_response", "CONTINUE"]

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_REASONS = {
    400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large", 414: "URI Too Long",
    417: "Expectation Failed", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 505: "HTTP Version Not Supported",
}
_NO_BODY_STATUS = frozenset({204, 304})

def error_response(status: int, detail: str = "") -> bytes:
    """A complete plain-text error response that closes the connection."""
    reason = _REASONS.get(status) or _phrase(status)
    body = f"{reason}{': ' + detail if detail else ''}\n".encode("latin-1", "replace")
    head, _ = response_head(f"{status} {reason}",
                            [("Content-Type", "text/plain; charset=utf-8"),
                             ("Content-Length", str(len(body)))],
                            http10=False, is_head=False, keep_alive=False, body_size=None)
    return head + body


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


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
    """The head (status line + fields + blank line) of a response, and its framing.

    ``status``/``app_headers`` are what the app gave ``start_response``; ``keep_alive`` is
    whether the server wants to keep the connection (the app's ``connection: close`` turns it
    off); ``body_size`` is the total body size when the whole body is already known, else
    None. Raises ValueError (or TypeError) for a status or field that cannot be sent.
    """
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
            parts.append(b"content-length: %d\r\n" % body_size)
        elif http10:
            keep_alive = False  # close-delimited body
        else:
            chunked = True
            parts.append(b"transfer-encoding: chunked\r\n")
    if not keep_alive:
        parts.append(b"connection: close\r\n\r\n")
    elif http10:
        parts.append(b"connection: keep-alive\r\n\r\n")
    else:
        parts.append(b"\r\n")
    return b"".join(parts), Framing(code, None if no_body else length, chunked, no_body,
                                    keep_alive)

