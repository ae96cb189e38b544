"""The built-in demo app, served when the CLI is given no APP.

A Kyoukai-style app (``request_class`` + ``async process_request``) built on werkzeug only, so
it shows the async path without Kyoukai installed:

* ``GET /`` - a greeting and this route list
* ``POST /echo`` - the request body back (read with ``await wsgi_input.read_async()``)
* ``GET /bytes/<n>`` - ``n`` bytes (at most 64 MiB), streamed in 64 KiB chunks
* ``GET /headers`` - the request headers as JSON
* ``GET /sleep?seconds=s`` - answers after ``s`` seconds (at most 10) without blocking others
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

from werkzeug.wrappers import Request, Response

__all__ = ["DemoApp", "app"]

_INDEX = b"""Hello from kyoukai_h2fast over %s!

GET  /              this page
POST /echo          echoes the request body
GET  /bytes/<n>     n bytes (max 64 MiB)
GET  /headers       request headers as JSON
GET  /sleep?seconds=s  waits s seconds (max 10) without blocking other streams
"""
_CHUNK = bytes(range(256)) * 256  # 64 KiB


def _stream_bytes(n: int) -> Iterator[bytes]:
    while n > 0:
        piece = _CHUNK[: min(n, len(_CHUNK))]
        n -= len(piece)
        yield piece


class DemoApp:
    """A tiny Kyoukai-style application."""

    request_class = Request

    async def process_request(self, request: Request, ctx: Any) -> Response:
        path = request.path
        if path == "/":
            protocol = request.environ.get("SERVER_PROTOCOL", "HTTP/2")   # HTTP/1.1 too
            return Response(_INDEX % protocol.encode("latin-1"),
                            content_type="text/plain; charset=utf-8")
        if path == "/echo" and request.method == "POST":
            body = await request.environ["wsgi.input"].read_async()
            return Response(body, content_type=request.content_type or "application/octet-stream")
        if path.startswith("/bytes/"):
            try:
                n = int(path[len("/bytes/"):])
            except ValueError:
                return Response(b"bad size\n", status=400)
            if not 0 <= n <= 64 * 1024 * 1024:
                return Response(b"size out of range\n", status=400)
            return Response(_stream_bytes(n), content_type="application/octet-stream",
                            headers={"content-length": str(n)}, direct_passthrough=True)
        if path == "/headers":
            return Response(json.dumps(dict(request.headers)), content_type="application/json")
        if path == "/sleep":
            seconds = min(max(request.args.get("seconds", 0.0, type=float), 0.0), 10.0)
            await asyncio.sleep(seconds)
            return Response(f"slept {seconds}\n".encode())
        return Response(b"not found\n", status=404, content_type="text/plain")


app = DemoApp()
