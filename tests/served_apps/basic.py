"""Apps the tests serve: WSGI callables and Kyoukai-style apps exercising every path.

Served by the real server in a subprocess as ``tests.served_apps.basic:<name>``. Counters that
tests read back (e.g. how many app iterables were closed) are exposed over HTTP by the apps
themselves.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time

from werkzeug.wrappers import Request, Response

_lock = threading.Lock()
_counters = {"closed": 0, "started": 0, "finalized": 0}


def _count(name: str) -> None:
    with _lock:
        _counters[name] += 1


class _Tracked:
    """An app iterable that counts its close() calls."""

    def __init__(self, chunks, fail_at: int = -1, delay: float = 0.0) -> None:
        self._chunks = list(chunks)
        self._fail_at = fail_at
        self._delay = delay

    def __iter__(self):
        for i, chunk in enumerate(self._chunks):
            if i == self._fail_at:
                raise RuntimeError("iterator failure (test)")
            if self._delay:
                time.sleep(self._delay)
            yield chunk

    def close(self) -> None:
        _count("closed")


def body_digest(stream) -> bytes:
    """``b"<size> <sha256 hex>"`` of a request body read in 64 KiB pieces."""
    h = hashlib.sha256()
    size = 0
    while True:
        piece = stream.read(65536)
        if not piece:
            break
        h.update(piece)
        size += len(piece)
    return f"{size} {h.hexdigest()}".encode()


def _environ_json(environ: dict) -> bytes:
    safe = {k: v for k, v in environ.items() if isinstance(v, (str, int, bool, tuple))}
    return json.dumps(safe, sort_keys=True).encode()


def wsgi_app(environ, start_response):
    """A WSGI app with one route per behaviour under test."""
    path = environ["PATH_INFO"]
    method = environ["REQUEST_METHOD"]
    if path == "/":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
        return [b"Hello, world!"]
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/sha256":  # digest of the body, read in small pieces
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body_digest(environ["wsgi.input"])]
    if path == "/lines":
        lines = list(environ["wsgi.input"])
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps([line.decode("latin-1") for line in lines]).encode()]
    if path.startswith("/bytes/"):
        n = int(path.rsplit("/", 1)[1])
        block = bytes(range(256)) * 256
        def gen():
            left = n
            while left > 0:
                piece = block[: min(left, len(block))]
                left -= len(piece)
                yield piece
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(n))])
        return gen()
    if path == "/stream":
        count = int(environ.get("QUERY_STRING") or "5")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _Tracked([b"chunk %d\n" % i for i in range(count)], delay=0.01)
    if path == "/stream-slow":  # chunks 0.5 s apart: a pull is under way most of the time
        count = int(environ.get("QUERY_STRING") or "3")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _Tracked([b"chunk %d\n" % i for i in range(count)], delay=0.5)
    if path == "/stream-fail":
        start_response("200 OK", [("Content-Type", "text/plain")])
        # The first chunk is larger than what the server pulls ahead on the loop (64 KiB), so
        # the failure comes after the headers went out in every mode.
        return _Tracked([b"f" * 70_000, b"second\n", b"third\n"], fail_at=2)
    if path == "/closed":
        start_response("200 OK", [("Content-Type", "application/json")])
        with _lock:
            return [json.dumps(_counters).encode()]
    if path == "/environ":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [_environ_json(environ)]
    if path == "/raise":
        raise RuntimeError("app failure (test): SECRET-TRACEBACK-MARKER")
    if path == "/slow":
        time.sleep(float(environ.get("QUERY_STRING") or "1"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slow done"]
    if path == "/bad-headers":
        start_response("200 OK", [("Connection", "close"), ("Transfer-Encoding", "chunked"),
                                  ("X-Ok", "yes")])
        return [b"ok"]
    if path == "/bad-status":
        start_response("OK", [])
        return [b"never sent"]
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"returned"]
    if path == "/no-read":  # answers without reading the request body
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"not reading"]
    if path == "/empty":
        start_response("204 No Content", [])
        return []
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found: " + method.encode() + b" " + path.encode("latin-1")]


class KyoukaiStyleApp:
    """A Kyoukai-style app: request_class + async process_request(request, ctx)."""

    request_class = Request

    def finalize(self) -> None:
        _count("finalized")

    async def process_request(self, request: Request, ctx) -> Response:
        path = request.path
        if path == "/":
            return Response(b"Hello, world!", content_type="text/plain")
        if path == "/get-data":
            return Response(request.get_data(), content_type="application/octet-stream")
        if path == "/read-async":
            body = await request.environ["wsgi.input"].read_async()
            return Response(hashlib.sha256(body).hexdigest() + f" {len(body)}")
        if path == "/chunks":
            stream = request.environ["wsgi.input"]
            sizes = []
            while True:
                chunk = await stream.read_async(to_end=False)
                if not chunk:
                    break
                sizes.append(len(chunk))
            return Response(json.dumps({"total": sum(sizes), "chunks": len(sizes)}))
        if path == "/sleep":
            await asyncio.sleep(float(request.args.get("s", "1")))
            return Response(b"slept")
        if path == "/raise":
            raise RuntimeError("app failure (test): SECRET-TRACEBACK-MARKER")
        if path == "/counters":
            with _lock:
                return Response(json.dumps(_counters), content_type="application/json")
        if path == "/ctx":
            return Response(repr(type(ctx).__name__))
        return Response(b"not found", status=404)


kyoukai_app = KyoukaiStyleApp()


def _make_flask():
    import os

    from flask import Flask, request

    app = Flask("tests", root_path=os.path.dirname(os.path.abspath(__file__)))

    @app.route("/")
    def index():
        return "Hello from Flask"

    @app.route("/echo", methods=["POST"])
    def echo():
        return request.get_data()

    @app.route("/json", methods=["POST"])
    def json_echo():
        return {"got": request.get_json()}

    return app


flask_app = _make_flask()
