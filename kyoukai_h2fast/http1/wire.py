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

:func:`response_head` (``status``/``app_headers`` as given to ``start_response``;
``keep_alive``: the server wants to keep the connection, the app's ``connection: close`` turns it
off; ``body_size``: the total body size when the whole body is known, else None) returns the head
and its :class:`Framing`, and raises ValueError (or TypeError) for a status or field that cannot
be sent. It is compiled (``kyoukai_h2fast._http1_c``, with :func:`parse_head`, the one-pass
reader of common request heads, and :class:`Exchange`, one request/response) with a pure twin
(:mod:`kyoukai_h2fast.http1._http1_py`); :mod:`kyoukai_h2fast._switch` selects them
(``http1``).

The error responses the server sends by itself (400, 408, 413, 414, 417, 431, 500, 501, 505)
are made here too.
"""
from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING

from .._switch import select

_impl = select("http1")

# Type checkers see the compiled module's stub (``_http1_c.pyi``); the pure twin
# (:mod:`kyoukai_h2fast.http1._http1_py`) has the same names and signatures.
if TYPE_CHECKING:
    from .._http1_c import Exchange, Framing, parse_head, response_head
else:
    Exchange = _impl.Exchange
    Framing = _impl.Framing
    parse_head = _impl.parse_head
    response_head = _impl.response_head

__all__ = ["Exchange", "Framing", "parse_head", "response_head", "error_response", "CONTINUE"]

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_REASONS = {
    400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large", 414: "URI Too Long",
    417: "Expectation Failed", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 505: "HTTP Version Not Supported",
}


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
