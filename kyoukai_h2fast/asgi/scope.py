"""The ASGI connection scope of one request (ASGI 3.0, HTTP spec version 2.4).

It owns turning a request as both protocols hold it (an
:class:`~kyoukai_h2fast.wsgi.request_state.H2State` whose environ is built: method, scheme and
client after trusted proxy headers, decoded path) into the ``scope`` dict an ASGI app gets:

* ``type`` ``"http"`` (``"websocket"`` for an upgrade request: :func:`is_websocket`);
  ``asgi`` ``{"version": "3.0", "spec_version": "2.4"}``; ``http_version`` ``"2"``,
  ``"1.1"`` or ``"1.0"``;
* ``method``, ``scheme`` (``http``/``https``), ``path`` (percent-decoded, UTF-8),
  ``raw_path`` and ``query_string`` (bytes as received), ``root_path`` (``--root-path``, else
  ``""``; ``path`` includes it, as uvicorn and Starlette have it);
* ``headers``: the request's fields as ``(bytes, bytes)`` pairs, names lower-case (both
  protocols deliver them so), pseudo-header fields left out; over HTTP/2 a ``host`` field is
  added from ``:authority`` when the request has none (frameworks build URLs from it);
* ``client`` ``(host, port)`` (after trusted proxy headers), ``server`` the listening socket's
  ``(host, port)``; ``state``: a shallow copy of the lifespan state;
* ``extensions``: ``http.response.pathsend`` always, ``http.response.trailers`` over HTTP/2.

Nothing here does I/O; the request/response cycle is :mod:`kyoukai_h2fast.asgi.http`.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

__all__ = ["ASGI_INFO", "build_scope", "build_scope_direct", "server_address", "is_websocket"]

#: ``scope["asgi"]`` (one dict shared by every scope: apps read it).
ASGI_INFO = {"version": "3.0", "spec_version": "2.4"}
_HTTP_VERSIONS = {"HTTP/2": "2", "HTTP/1.1": "1.1", "HTTP/1.0": "1.0"}
_EXTENSIONS_H2: dict[str, Any] = {"http.response.pathsend": {}, "http.response.trailers": {}}
_EXTENSIONS_H1: dict[str, Any] = {"http.response.pathsend": {}}


def _address(host: Any, port: Any) -> tuple[str, int] | None:
    if not host:
        return None
    try:
        return host, int(port)
    except (TypeError, ValueError):
        return host, 0


def server_address(base_environ: dict[str, Any]) -> tuple[str, int] | None:
    """``scope["server"]``: the listening socket's address, from a connection's base environ
    (a request's own ``SERVER_NAME`` comes from its ``:authority``)."""
    return _address(base_environ.get("SERVER_NAME"), base_environ.get("SERVER_PORT"))


def _scan_fields(headers: list[tuple[bytes, bytes]]) -> tuple[list, bytes, bytes]:
    """``(fields, target, method)`` of a received field list (pseudo-header fields first):
    the regular fields, with ``host`` from ``:authority`` in front when the request has none
    (frameworks build URLs from it), and the ``:path`` and ``:method`` values (HTTP/1.1
    requests deliver theirs as the same pseudo-header fields)."""
    fields = []
    target = b""
    method = b"GET"
    authority = None
    has_host = False
    for field in headers:
        name = field[0]
        if name[0] == 58:  # b":"
            if name == b":path":
                target = field[1]
            elif name == b":method":
                method = field[1]
            elif name == b":authority":
                authority = field[1]
            continue
        if name == b"host":
            has_host = True
        fields.append(field)
    if authority is not None and not has_host:
        fields.insert(0, (b"host", authority))
    return fields, target, method


def build_scope(environ: dict[str, Any], headers: list[tuple[bytes, bytes]],
                lifespan_state: dict[str, Any] | None,
                server: tuple[str, int] | None) -> dict[str, Any]:
    """The ``http`` scope of a request whose environ is ``environ`` and whose received field
    list (pseudo-header fields first) is ``headers``; ``server`` is the socket's address."""
    fields, target, _ = _scan_fields(headers)
    raw_path, _, query = target.partition(b"?")
    # Under --root-path the environ has it as SCRIPT_NAME, the rest as PATH_INFO; an ASGI
    # path is the whole path, root_path its mount point (as uvicorn and Starlette have it).
    root = environ["SCRIPT_NAME"]
    path = root + environ["PATH_INFO"] if root else environ["PATH_INFO"]
    if not path.isascii():  # (the environ holds the decoded bytes as latin-1)
        path = path.encode("latin-1").decode("utf-8", "replace")
        root = root.encode("latin-1").decode("utf-8", "replace")
    version = _HTTP_VERSIONS.get(environ["SERVER_PROTOCOL"], "1.1")
    client = _address(environ["REMOTE_ADDR"], environ["REMOTE_PORT"])
    return {
        "type": "http",
        "asgi": ASGI_INFO,
        "http_version": version,
        "method": environ["REQUEST_METHOD"],
        "scheme": environ["wsgi.url_scheme"],
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "root_path": root,
        "headers": fields,
        "client": client,
        "server": server,
        "state": lifespan_state.copy() if lifespan_state else {},
        "extensions": _EXTENSIONS_H2 if version == "2" else _EXTENSIONS_H1,
    }


#: The key under which a connection's base environ keeps its scope constants (see
#: :func:`_connection_parts`); no WSGI environ is copied from the base of a connection whose
#: scopes are built directly.
_CONN_KEY = "kyoukai_h2fast.asgi_connection"


def _connection_parts(base: dict[str, Any]) -> tuple:
    """``(http_version, scheme, client, server, extensions)`` of a connection (per base
    environ: over HTTP/1.1 the connection has one for HTTP/1.0 and one for HTTP/1.1),
    computed once and kept in the base environ."""
    version = _HTTP_VERSIONS.get(base["SERVER_PROTOCOL"], "1.1")
    parts = (version, base["wsgi.url_scheme"],
             _address(base["REMOTE_ADDR"], base["REMOTE_PORT"]), server_address(base),
             _EXTENSIONS_H2 if version == "2" else _EXTENSIONS_H1)
    base[_CONN_KEY] = parts
    return parts


def build_scope_direct(headers: list[tuple[bytes, bytes]], base: dict[str, Any],
                       lifespan_state: dict[str, Any] | None) -> dict[str, Any]:
    """The ``http`` scope straight from the received field list, without a WSGI environ:
    for connections with no trusted proxy headers and no root path (the scope is then what
    :func:`build_scope` makes of the environ :func:`~kyoukai_h2fast.wsgi.environ.build_environ`
    would build from ``base``, the connection's base environ)."""
    parts = base.get(_CONN_KEY)
    if parts is None:
        parts = _connection_parts(base)
    fields, target, method = _scan_fields(headers)
    raw_path, _, query = target.partition(b"?")
    if b"%" in raw_path:
        path = unquote_to_bytes(raw_path).decode("utf-8", "replace")
    else:
        path = raw_path.decode("utf-8", "replace")
    return {
        "type": "http",
        "asgi": ASGI_INFO,
        "http_version": parts[0],
        "method": method.decode("latin-1"),
        "scheme": parts[1],
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": fields,
        "client": parts[2],
        "server": parts[3],
        "state": lifespan_state.copy() if lifespan_state else {},
        "extensions": parts[4],
    }


def is_websocket(headers: list[tuple[bytes, bytes]]) -> bool:
    """True for a WebSocket opening request: RFC 8441 extended CONNECT (``:protocol
    websocket``) or an RFC 6455 ``Upgrade: websocket`` request."""
    for name, value in headers:
        if name == b":protocol":
            return value.lower() == b"websocket"
        if name == b"upgrade":
            return b"websocket" in value.lower()
    return False
