"""Apps for the response-field tests (``date``/``server``, RFC 9110 §6.6.1, §10.2.4).

Served by the real server as ``tests.served_apps.fields:<name>``: a WSGI app and a Kyoukai-style app
that either leave ``date``/``server`` to the server or set their own (in odd letter cases).
"""
from __future__ import annotations

from werkzeug.wrappers import Request, Response

#: What the apps put in their own ``Date``/``Server`` fields.
OWN_DATE = "Sun, 06 Nov 1994 08:49:37 GMT"
OWN_SERVER = "my-app/1.0"


def wsgi_app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/own":  # the app's fields win, whatever their letter case
        start_response("200 OK", [("Content-Type", "text/plain"), ("DATE", OWN_DATE),
                                  ("sErVeR", OWN_SERVER)])
        return [b"own fields"]
    if path == "/own-date":
        start_response("200 OK", [("Date", OWN_DATE)])
        return [b"own date"]
    if path == "/not-modified":
        start_response("304 Not Modified", [])
        return []
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"plain"]


class KyoukaiStyleApp:
    request_class = Request

    async def process_request(self, request: Request, ctx) -> Response:
        if request.path == "/own":
            return Response(b"own fields", headers={"Date": OWN_DATE, "Server": OWN_SERVER})
        return Response(b"plain", content_type="text/plain")


kyoukai_app = KyoukaiStyleApp()
