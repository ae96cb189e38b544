"""The werkzeug objects of a Kyoukai-style request, made and read fast and exactly.

Two halves: :func:`request_factory` gives what builds the handler's ``Request`` from the
environ, and :func:`wsgi_parts` turns the ``Response`` it returns into status, header list and
body chunks.

**Requests.** werkzeug's ``Request(environ)`` computes eight fields at once (method, scheme,
server, root and path with a ``latin-1``/``utf-8`` round trip, query string, an
``EnvironHeaders``, remote address) through two ``__init__`` levels, most of which a handler
never reads. For a class whose construction is werkzeug's own (its ``__init__``, ``__new__``,
``__setattr__`` and ``__getattribute__`` are werkzeug's and none of the fields is an attribute
of the class), :func:`request_factory` returns a builder of a subclass of it (same name and
module) that stores only ``environ`` and ``shallow`` and computes each of the other fields,
exactly as werkzeug would, when it is first read (then it is an ordinary instance attribute,
and one the app sets wins). The subclass is proven on probe environs against the real
constructor when the class is first seen; a class that differs, or a werkzeug whose
constructor sets other fields, keeps its own constructor. One difference is by design: a
field reflects the environ as it is when first read, so an app that rewrites ``PATH_INFO``
in the environ after the request was built sees the new path.

**Responses.** Kyoukai-style handlers return werkzeug ``Response`` objects, and the server
used to run them as WSGI apps (``response(environ, start_response)``), which builds a
``Headers`` copy, scans it, wraps the body in a ``ClosingIterator`` and encodes it lazily:
several microseconds per request for what is, almost always, "this status, these headers,
this list of bytes".
:func:`wsgi_parts` gives exactly what ``Response.get_wsgi_response`` would (the same status
string, the same header list in the same order, the same body bytes) without that work, for
the cases where that is certain:

* the response's class does not override any method of the WSGI path (checked once per class);
* its body is a list or tuple of ``bytes`` (what ``Response(b"...")``/``set_data`` make), not
  passed through directly;
* its status is not 1xx, 204 or 304, and it has no ``Location`` or ``Content-Location`` field
  (werkzeug rewrites those).

Anything else returns None and goes through werkzeug itself. Where werkzeug keeps the status,
the header list and the close callbacks in the fields it has kept them in since 2.x (proven
once at import on a response made the public way), they are read there, without werkzeug's
properties and ``close()``. The response is closed (its
``call_on_close`` callbacks run) before :func:`wsgi_parts` returns, as werkzeug's
``ClosingIterator`` would once the body is consumed.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from werkzeug.datastructures import EnvironHeaders, Headers
from werkzeug.wrappers import Request as _Request
from werkzeug.wrappers import Response as _Response

__all__ = ["request_factory", "wsgi_parts"]

#: ``(SERVER_NAME, SERVER_PORT)`` -> werkzeug's ``Request.server`` tuple (a listener has few).
_servers: dict[tuple[Any, Any], tuple[str, int | None] | None] = {}
_factories: dict[type, Callable[[dict], Any]] = {}


def _server(name: Any, port: Any) -> tuple[str, int | None] | None:
    server = _servers.get((name, port), _servers)
    if server is _servers:
        if name is None:
            server = None
        else:
            try:
                server = (name, int(port))
            except (TypeError, ValueError):  # a unix socket
                server = (name, None)
        if len(_servers) < 64:
            _servers[(name, port)] = server
    return server  # type: ignore[return-value]


def _decoded(value: str) -> str:
    """werkzeug's "WSGI decoding dance" (latin-1 bytes read as UTF-8), skipped for ASCII."""
    return value if value.isascii() else value.encode("latin1").decode(errors="replace")


def _path(environ: dict) -> str:
    path = environ.get("PATH_INFO") or ""
    if path[:1] == "/" and path[1:2] != "/" and path.isascii():
        return path  # what werkzeug's "/" + decoded(path).lstrip("/") gives for it
    return "/" + _decoded(path).lstrip("/")


#: werkzeug's ``Request.__init__`` fields, each as computed from the environ, in its order.
_FIELDS: dict[str, Callable[[dict], Any]] = {
    "method": lambda environ: environ.get("REQUEST_METHOD", "GET").upper(),
    "scheme": lambda environ: environ.get("wsgi.url_scheme", "http"),
    "server": lambda environ: _server(environ.get("SERVER_NAME"), environ.get("SERVER_PORT")),
    "root_path": lambda environ: _decoded(environ.get("SCRIPT_NAME") or "").rstrip("/"),
    "path": _path,
    "query_string": lambda environ: environ.get("QUERY_STRING", "").encode("latin1"),
    "headers": EnvironHeaders,
    "remote_addr": lambda environ: environ.get("REMOTE_ADDR"),
}


class _OnFirstRead:
    """A request field computed from the request's environ when first read, then stored in
    the instance (a non-data descriptor: the stored value, or one the app sets, wins)."""

    __slots__ = ("name", "compute")

    def __init__(self, name: str, compute: Callable[[dict], Any]) -> None:
        self.name = name
        self.compute = compute

    def __get__(self, request: Any, owner: type | None = None) -> Any:
        if request is None:
            return self
        value = self.compute(request.__dict__["environ"])
        request.__dict__[self.name] = value
        return value


def _lazy_class(cls: type) -> type:
    """``cls`` with its constructor's fields computed on first read (same name and module)."""
    namespace: dict[str, Any] = {name: _OnFirstRead(name, compute)
                                 for name, compute in _FIELDS.items()}
    namespace.update(__module__=cls.__module__, __qualname__=cls.__qualname__,
                     __doc__=cls.__doc__)
    return type(cls.__name__, (cls,), namespace)


def _build_request(lazy: type, environ: dict) -> Any:
    """A request of ``lazy`` (see :func:`_lazy_class`) over ``environ``: what werkzeug's
    constructor does, its fields left to their first read."""
    request: Any = object.__new__(lazy)
    request.__dict__ = {"environ": environ, "shallow": False}
    environ["werkzeug.request"] = request
    return request


_PROBES: tuple[dict, ...] = (
    {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/a/b", "QUERY_STRING": "",
     "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "wsgi.url_scheme": "http",
     "REMOTE_ADDR": "127.0.0.1"},
    {"REQUEST_METHOD": "post", "SCRIPT_NAME": "/app/", "PATH_INFO": "//x/\xc3\xa9",
     "QUERY_STRING": "q=\xe9", "SERVER_NAME": "sock", "wsgi.url_scheme": "https"},
    {"SCRIPT_NAME": "/\xff", "PATH_INFO": ""},
)


def _same_request(cls: type, lazy: type, environ: dict) -> bool:
    """A ``lazy`` request and ``cls(environ)`` read the same from ``environ``."""
    real_environ, fast_environ = dict(environ), dict(environ)
    real, fast = cls(real_environ), _build_request(lazy, fast_environ)
    if real_environ.keys() != fast_environ.keys() or fast_environ["werkzeug.request"] is not fast:
        return False
    for name, value in vars(real).items():
        other = getattr(fast, name)
        if name == "headers":
            if type(value) is not type(other) or other.environ is not fast_environ:
                return False
        elif name != "environ" and (type(value) is not type(other) or value != other):
            return False
    return vars(real).keys() == vars(fast).keys()


def request_factory(cls: type) -> Callable[[dict], Any]:
    """What makes a ``cls`` request from an environ: ``cls`` itself, or, for a werkzeug
    ``Request`` class whose construction is werkzeug's own, a builder of a subclass that
    computes the constructor's fields on first read."""
    factory = _factories.get(cls)
    if factory is None:
        factory = cls
        try:
            if isinstance(cls, type) and issubclass(cls, _Request) and \
                    cls.__init__ is _Request.__init__ and cls.__new__ is object.__new__ and \
                    cls.__setattr__ is object.__setattr__ and \
                    cls.__getattribute__ is object.__getattribute__ and \
                    not any(hasattr(cls, name) for name in (*_FIELDS, "environ", "shallow")):
                lazy = _lazy_class(cls)
                if all(_same_request(cls, lazy, probe) for probe in _PROBES):
                    factory = functools.partial(_build_request, lazy)
        except Exception:  # a probe the class refuses: it keeps its own constructor
            factory = cls
        if len(_factories) < 256:
            _factories[cls] = factory
    return factory


#: The methods and properties whose werkzeug versions the fast path reproduces.
_WSGI_PATH = ("__call__", "get_wsgi_response", "get_wsgi_headers", "get_app_iter",
              "iter_encoded", "close", "is_sequence", "status", "status_code")
_eligible: dict[type, bool] = {}


def _class_ok(cls: type) -> bool:
    ok = _eligible.get(cls)
    if ok is None:
        ok = issubclass(cls, _Response) and all(
            getattr(cls, name) is getattr(_Response, name) for name in _WSGI_PATH) and \
            cls.automatically_set_content_length in (True, False)
        if len(_eligible) < 256:
            _eligible[cls] = ok
    return ok


def _layout_known() -> bool:
    """werkzeug keeps a response's status, callbacks and header list in the instance fields
    ``_status``, ``_status_code``, ``_on_close`` and ``Headers._list`` (werkzeug 2.x-3.x):
    proven here once, on a response made the public way, so the fast path may read them."""
    try:
        probe = _Response(b"ab", status=201, headers=[("X-A", "1")])
        probe.call_on_close(int)
        fields = vars(probe)
        return fields.get("_status") == probe.status == "201 CREATED" and \
            fields.get("_status_code") == probe.status_code == 201 and \
            fields.get("_on_close") == [int] and \
            vars(probe.headers).get("_list") == list(probe.headers) and \
            type(probe.headers._list) is list
    except Exception:  # another layout: the public path only
        return False


_LAYOUT_KNOWN = _layout_known()


def wsgi_parts(response: Any) -> tuple[str, list, list] | None:
    """``(status, headers, chunks)`` as werkzeug's WSGI path would produce them, or None."""
    cls = type(response)
    ok = _eligible.get(cls)
    if not (ok or ok is None and _class_ok(cls)):
        return None
    body = response.response
    if type(body) is not list and type(body) is not tuple or response.direct_passthrough:
        return None
    for chunk in body:
        if type(chunk) is not bytes:
            return None
    fields = response.__dict__ if _LAYOUT_KNOWN else None
    if fields is not None and "_on_close" in fields and "_status" in fields:
        status = fields["_status_code"]
        held = fields["headers"]
        headers = held._list[:] if type(held) is Headers else list(held)
    else:
        fields = None
        status = response.status_code
        headers = list(response.headers)
    if status < 200 or status == 204 or status == 304:
        return None
    has_length = False
    for key, _ in headers:
        lower = key.lower()
        if lower == "content-length":
            has_length = True
        elif lower == "location" or lower == "content-location":
            return None
    if not has_length and response.automatically_set_content_length:
        headers.append(("Content-Length", str(sum(len(chunk) for chunk in body))))
    if fields is not None:
        # werkzeug's close(): the body's close() (a list or tuple has none), then callbacks
        for callback in fields["_on_close"]:
            callback()
        return fields["_status"], headers, list(body)
    response.close()
    return response.status, headers, list(body)
