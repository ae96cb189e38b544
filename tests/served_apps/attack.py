"""An app for the backpressure tests: streaming responses whose chunks are counted.

Served as ``tests.served_apps.attack:app``: ``GET /chunks/<n>`` streams ``n`` chunks of 1 KiB from a
generator, ``GET /pulled`` says how many such chunks were pulled so far, ``GET /`` greets.
"""
from __future__ import annotations

import threading

_lock = threading.Lock()
_pulled = [0]
_CHUNK = b"c" * 1024


def _chunks(n: int):
    for _ in range(n):
        with _lock:
            _pulled[0] += 1
        yield _CHUNK


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/chunks/"):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _chunks(int(path.rsplit("/", 1)[1]))
    if path == "/pulled":
        start_response("200 OK", [("Content-Type", "text/plain")])
        with _lock:
            return [str(_pulled[0]).encode()]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]
