"""The test WSGI app (``tests.served_apps.basic:wsgi_app``) plus ``GET /pid``, the serving
process's id: for the metrics and static-file tests, which need to know which worker answered.

Served by the real server as ``tests.served_apps.metrics:app``.
"""
from __future__ import annotations

import os

from tests.served_apps.basic import wsgi_app


def app(environ, start_response):
    if environ["PATH_INFO"] == "/pid":
        body = str(os.getpid()).encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    return wsgi_app(environ, start_response)
