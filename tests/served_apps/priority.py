"""Apps for the RFC 9218 end-to-end tests (tests/http2/test_priorities.py), served by the real
server as ``tests.served_apps.priority:<name>``.

* ``/download?mib=N``: N MiB of ``d`` in 256 KiB chunks from a generator (pulled as the
  windows allow; the same chunk object each time, so the app holds almost nothing).
* ``/small?size=N``: N bytes of ``u`` in one piece.
* ``/urgent-by-server?size=N``: the same with the response field ``priority: u=0`` (§8).
* ``/priority``: ``environ['kyoukai_h2fast.priority']`` as ``"<urgency> <incremental>"``.
"""
from __future__ import annotations

from urllib.parse import parse_qs

from werkzeug.wrappers import Request, Response

_CHUNK = b"d" * (256 * 1024)


def _arg(environ, name: str, default: int) -> int:
    return int(parse_qs(environ.get("QUERY_STRING", "")).get(name, [default])[0])


def _download(mib: int):
    for _ in range(mib * 4):
        yield _CHUNK


def wsgi_app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/download":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _download(_arg(environ, "mib", 64))
    if path in ("/small", "/urgent-by-server"):
        headers = [("Content-Type", "application/octet-stream")]
        if path == "/urgent-by-server":
            headers.append(("Priority", "u=0"))
        start_response("200 OK", headers)
        return [b"u" * _arg(environ, "size", 100_000)]
    if path == "/priority":
        urgency, incremental = environ["kyoukai_h2fast.priority"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{urgency} {incremental}".encode()]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


class KyoukaiPriorityApp:
    """The same paths as a Kyoukai-style app."""

    request_class = Request

    async def process_request(self, request: Request, ctx) -> Response:
        environ = request.environ
        if request.path == "/download":
            return Response(_download(_arg(environ, "mib", 64)),
                            content_type="application/octet-stream")
        if request.path in ("/small", "/urgent-by-server"):
            response = Response(b"u" * _arg(environ, "size", 100_000),
                                content_type="application/octet-stream")
            if request.path == "/urgent-by-server":
                response.headers["Priority"] = "u=0"
            return response
        if request.path == "/priority":
            urgency, incremental = environ["kyoukai_h2fast.priority"]
            return Response(f"{urgency} {incremental}", content_type="text/plain")
        return Response(b"not found", status=404)


kyoukai_app = KyoukaiPriorityApp()
