"""Apps for the protocol-level tests (``tests.served_apps.protocol:<name>``).

``wsgi_app`` adds routes whose timing the test controls, on top of
``tests.served_apps.basic:wsgi_app``:

* ``/hold?KEY``: does not touch the request body until ``/release?KEY`` is requested (on any
  connection), then reads it all and answers ``"<size> <sha256>"``. While it holds, the server
  must not reopen the flow-control window for the unread bytes (RFC 9113 §5.2).
* ``/release?KEY``: releases the holder of KEY (answers ``released``).
* ``/held``: how many requests are holding right now (a JSON number).
* ``/big-headers?N``: a response with an ``x-big`` header of N bytes (a field block larger
  than one frame).
"""
from __future__ import annotations

import json
import threading

from tests.served_apps.basic import body_digest
from tests.served_apps.basic import wsgi_app as _base_app

_lock = threading.Lock()
_events: dict[str, threading.Event] = {}
_holding = 0


def _event(key: str) -> threading.Event:
    with _lock:
        return _events.setdefault(key, threading.Event())


def wsgi_app(environ, start_response):
    global _holding
    path = environ["PATH_INFO"]
    key = environ.get("QUERY_STRING", "")
    if path == "/hold":
        with _lock:
            _holding += 1
        try:
            released = _event(key).wait(60)
        finally:
            with _lock:
                _holding -= 1
        if not released:
            start_response("504 Gateway Timeout", [("Content-Type", "text/plain")])
            return [b"never released"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body_digest(environ["wsgi.input"])]
    if path == "/release":
        _event(key).set()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"released"]
    if path == "/held":
        with _lock:
            count = _holding
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(count).encode()]
    if path == "/big-headers":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Big", "h" * int(key)),
                                  ("X-After", "after")])
        return [b"big headers"]
    return _base_app(environ, start_response)
