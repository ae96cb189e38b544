"""The benchmark apps: one hello-world app per interface, all sending the same bytes.

Every app answers the same three routes with the same status, body and content-type:

* ``GET /`` (any path not below): ``200``, ``content-type: text/plain``, body ``Hello, world!``
* ``POST /echo``: ``200``, ``content-type: application/octet-stream``, the request body back
* ``GET /download``: ``200``, ``content-type: application/octet-stream``, 4 MiB of bytes

Interfaces:

* :func:`wsgi_app` - PEP 3333 callable (kyoukai_h2fast WSGI, hypercorn, gunicorn, granian)
* :data:`kyoukai_app` - Kyoukai-style object (``request_class`` + ``async process_request``)
* :func:`asgi_app` - ASGI 3 callable (uvicorn)
* :data:`flask_app` - a Flask app, as a user would write it (kyoukai_h2fast with its defaults,
  granian, gunicorn): ``GET /`` answers the hello bytes, ``GET /json`` a ``jsonify``-ed
  ``{"message": "Hello, world!"}``
* :func:`write_static_site` - the same responses as files, for nghttpd (the C ceiling)

The module imports werkzeug and Flask lazily (only the Kyoukai-style and Flask apps need them), so
peers' virtual
environments can import :func:`wsgi_app` and :func:`asgi_app` with the standard library alone.
"""
from __future__ import annotations

import os

# kyoukai_app is defined by the module __getattr__ below (PEP 562), on first use
__all__ = ["HELLO", "DOWNLOAD_SIZE", "DOWNLOAD_BODY", "wsgi_app", "asgi_app", "accept_lifespan",
           "kyoukai_app",  # noqa: F822  made by __getattr__ on first use (werkzeug stays optional)
           "flask_app",  # noqa: F822  likewise (Flask stays optional)
           "write_static_site"]

HELLO = b"Hello, world!"
DOWNLOAD_SIZE = 4 * 1024 * 1024
DOWNLOAD_BODY = bytes(range(256)) * (DOWNLOAD_SIZE // 256)

_TEXT = "text/plain"
_BINARY = "application/octet-stream"
_HELLO_HEADERS = [("content-type", _TEXT), ("content-length", str(len(HELLO)))]
_DOWNLOAD_HEADERS = [("content-type", _BINARY), ("content-length", str(DOWNLOAD_SIZE))]


# --- WSGI -------------------------------------------------------------------------------

def wsgi_app(environ, start_response):
    """PEP 3333 app: hello, echo, download."""
    path = environ.get("PATH_INFO", "/")
    if path == "/echo" and environ["REQUEST_METHOD"] == "POST":
        length = environ.get("CONTENT_LENGTH") or ""
        stream = environ["wsgi.input"]
        body = stream.read(int(length)) if length.isdigit() else stream.read()
        start_response("200 OK", [("content-type", _BINARY), ("content-length", str(len(body)))])
        return [body]
    if path == "/download":
        start_response("200 OK", list(_DOWNLOAD_HEADERS))
        return [DOWNLOAD_BODY]
    start_response("200 OK", list(_HELLO_HEADERS))
    return [HELLO]


# --- ASGI (uvicorn) -----------------------------------------------------------------------

_ASGI_HELLO = [(b"content-type", _TEXT.encode()), (b"content-length", str(len(HELLO)).encode())]
_ASGI_DOWNLOAD = [(b"content-type", _BINARY.encode()),
                  (b"content-length", str(DOWNLOAD_SIZE).encode())]


async def accept_lifespan(receive, send) -> None:
    """The ASGI lifespan protocol, answered and otherwise ignored (the bench apps' own)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def asgi_app(scope, receive, send):
    """ASGI 3 app: hello, echo, download (lifespan accepted and ignored)."""
    if scope["type"] == "lifespan":
        await accept_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/echo" and scope["method"] == "POST":
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = [(b"content-type", _BINARY.encode()),
                   (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    if path == "/download":
        await send({"type": "http.response.start", "status": 200, "headers": _ASGI_DOWNLOAD})
        await send({"type": "http.response.body", "body": DOWNLOAD_BODY})
        return
    await send({"type": "http.response.start", "status": 200, "headers": _ASGI_HELLO})
    await send({"type": "http.response.body", "body": HELLO})


# --- Kyoukai-style (kyoukai_h2fast) -------------------------------------------------------

class KyoukaiBenchApp:
    """Kyoukai-style app: ``request_class`` + ``async process_request`` -> werkzeug Response."""

    def __init__(self) -> None:
        from werkzeug.wrappers import Request, Response
        self.request_class = Request
        self._response = Response

    async def process_request(self, request, ctx):
        Response = self._response
        path = request.path
        if path == "/echo" and request.method == "POST":
            body = await request.environ["wsgi.input"].read_async()
            return Response(body, content_type=_BINARY)
        if path == "/download":
            return Response(DOWNLOAD_BODY, content_type=_BINARY)
        return Response(HELLO, content_type=_TEXT)


def make_flask_app():
    """The Flask app: ``GET /`` (the hello bytes, text/plain) and ``GET /json`` (jsonify)."""
    from flask import Flask, Response, jsonify

    app = Flask("bench")

    @app.get("/")
    def hello():
        return Response(HELLO, mimetype=_TEXT)

    @app.get("/json")
    def json():
        return jsonify(message="Hello, world!")

    return app


def __getattr__(name):  # kyoukai_app / flask_app are built on first use: werkzeug and Flask
    if name == "kyoukai_app":  # stay optional
        app = KyoukaiBenchApp()
    elif name == "flask_app":
        app = make_flask_app()
    else:
        raise AttributeError(name)
    globals()[name] = app
    return app


# --- static files (nghttpd) -------------------------------------------------------------

def write_static_site(directory: str) -> dict[str, str]:
    """Write the hello and download responses as files, plus a mime.types mapping them.

    nghttpd maps ``/`` to ``index.html``; the mime.types file maps ``html`` to ``text/plain`` so
    the hello headers match the other servers (``/download`` has no extension, so nghttpd
    sends it without a content-type).
    Returns ``{"htdocs": ..., "mime_types": ...}``.
    """
    htdocs = os.path.join(directory, "htdocs")
    os.makedirs(htdocs, exist_ok=True)
    with open(os.path.join(htdocs, "index.html"), "wb") as f:
        f.write(HELLO)
    with open(os.path.join(htdocs, "download"), "wb") as f:
        f.write(DOWNLOAD_BODY)
    mime_types = os.path.join(directory, "mime.types")
    with open(mime_types, "w") as f:
        f.write(f"{_TEXT}\thtml\n")
    return {"htdocs": htdocs, "mime_types": mime_types}
