"""A WSGI app answering every request with the pid of the process that served it (tests of
worker processes: load spread, recycling, socket sources)."""
from __future__ import annotations

import os


def app(environ, start_response):
    body = str(os.getpid()).encode()
    start_response("200 OK", [("content-type", "text/plain"),
                              ("content-length", str(len(body)))])
    return [body]
