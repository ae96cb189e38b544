"""Apps the "real apps, real clients" tests serve (``tests.served_apps.real:<name>``).

The same upload routes as a Flask app (thread pool by default) and as a Kyoukai-style app
(on the event loop), reading the body the standard werkzeug ways:

* ``POST /data``: ``request.get_data()`` -> ``"<size> <sha256>"``
* ``POST /form``: ``request.form`` and ``request.files`` -> JSON of the fields and, per file,
  ``[filename, size, sha256]``

and a plain WSGI app with routes whose concurrency or lifetime the tests observe:

* ``/barrier?N&KEY``: waits until N requests with the same KEY are running at once (or fails
  with 500 after 10 s), then answers the worker thread's name
* ``/generator?N``: N chunks of 64 KiB from a generator (0.02 s apart) whose ``close()``
  prints ``GENERATOR-CLOSED`` to the server's log
* ``/form-slow``: parses a form in a worker (slowly: the body is read in small pieces)
* ``/too-large``: answers 413 at once without reading the body; ``/method``: answers 405
"""
from __future__ import annotations

import hashlib
import json
import sys
import threading
import time

from werkzeug.wrappers import Request, Response

_lock = threading.Lock()
_barriers: dict[str, threading.Barrier] = {}


def _digest(data: bytes) -> str:
    return f"{len(data)} {hashlib.sha256(data).hexdigest()}"


def _form_summary(request: Request) -> bytes:
    files = {}
    for name, storage in request.files.items():
        data = storage.read()
        files[name] = [storage.filename, len(data), hashlib.sha256(data).hexdigest()]
    return json.dumps({"form": request.form.to_dict(), "files": files}, sort_keys=True).encode()


# -- Flask ---------------------------------------------------------------------------------
def _make_flask():
    import os

    from flask import Flask, request

    app = Flask("tests_real", root_path=os.path.dirname(os.path.abspath(__file__)))

    @app.route("/data", methods=["POST"])
    def data():
        return _digest(request.get_data())

    @app.route("/form", methods=["POST"])
    def form():
        return _form_summary(request), 200, {"content-type": "application/json"}

    return app


flask_app = _make_flask()


# -- Kyoukai-style ---------------------------------------------------------------------------
class KyoukaiUploads:
    request_class = Request

    async def process_request(self, request: Request, ctx) -> Response:
        if request.path == "/data":
            return Response(_digest(request.get_data()))
        if request.path == "/form":
            return Response(_form_summary(request), content_type="application/json")
        return Response(b"not found", status=404)


kyoukai_app = KyoukaiUploads()


# -- plain WSGI ------------------------------------------------------------------------------
class _Generator:
    def __init__(self, count: int) -> None:
        self._count = count

    def __iter__(self):
        block = b"g" * 65536
        for _ in range(self._count):
            time.sleep(0.02)
            yield block

    def close(self) -> None:
        print("GENERATOR-CLOSED", file=sys.stderr, flush=True)


def wsgi_app(environ, start_response):
    path = environ["PATH_INFO"]
    query = environ.get("QUERY_STRING", "")
    if path == "/barrier":
        parties, key = query.split("&")
        with _lock:
            barrier = _barriers.setdefault(key, threading.Barrier(int(parties), timeout=10))
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"not enough requests ran at once"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [threading.current_thread().name.encode()]
    if path == "/generator":
        count = int(query or "8")
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(count * 65536))])
        return _Generator(count)
    if path == "/form-slow":
        print("FORM-SLOW-READING", file=sys.stderr, flush=True)
        stream = environ["wsgi.input"]
        size = 0
        while True:
            piece = stream.read(100)
            if not piece:
                break
            size += len(piece)
            time.sleep(0.001)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(size).encode()]
    if path == "/too-large":
        start_response("413 Request Entity Too Large", [("Content-Type", "text/plain")])
        return [b"too large for this route\n"]
    if path == "/method":
        start_response("405 Method Not Allowed", [("Content-Type", "text/plain"),
                                                  ("Allow", "GET")])
        return [b"use GET\n"]
    if path == "/":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"Hello, world!"]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]
