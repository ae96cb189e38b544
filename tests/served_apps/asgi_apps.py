"""ASGI apps served in tests/asgi: a bare ASGI 3 app, a Starlette app and a FastAPI app.

(No ``from __future__ import annotations``: FastAPI reads the annotations of the handlers,
which are local names here.)
"""
import asyncio
import atexit
import contextlib
import hashlib
import json
import os
import tempfile

#: What the bare app saw of disconnects: path -> count of ``http.disconnect`` received.
DISCONNECTS: dict[str, int] = {}
#: A file for ``http.response.pathsend`` (200 KiB: larger than the read-at-once size).
FILE_DATA = bytes(range(256)) * 800
_fd, FILE_PATH = tempfile.mkstemp(prefix="kyoukai-asgi-pathsend-")
with os.fdopen(_fd, "wb") as _f:
    _f.write(FILE_DATA)
atexit.register(os.unlink, FILE_PATH)


async def _read_body(receive) -> tuple[bytes, int]:
    parts, events = [], 0
    while True:
        message = await receive()
        events += 1
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client gone")
        parts.append(message["body"])
        if not message.get("more_body", False):
            return b"".join(parts), events


async def _plain(send, status: int, body: bytes, headers=()) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), *headers]})
    await send({"type": "http.response.body", "body": body})


async def bare_app(scope, receive, send):
    """A bare ASGI 3 app; it does not speak lifespan (raises on that scope)."""
    assert scope["type"] == "http", "lifespan is not supported by this app"
    path = scope["path"]
    if path == "/":
        await _plain(send, 200, b"Hello, ASGI!")
    elif path.startswith("/scope"):
        shown = {key: value for key, value in scope.items() if key not in ("state",)}
        shown["headers"] = [[n.decode(), v.decode()] for n, v in scope["headers"]]
        shown["raw_path"] = scope["raw_path"].decode("latin-1")
        shown["query_string"] = scope["query_string"].decode("latin-1")
        shown["extensions"] = sorted(scope.get("extensions", {}))
        await _plain(send, 200, json.dumps(shown).encode(),
                     [(b"content-type", b"application/json")])
    elif path == "/echo":
        body, events = await _read_body(receive)
        digest = hashlib.sha256(body).hexdigest()
        await _plain(send, 200, f"{len(body)} {digest} {events}".encode())
    elif path == "/stream":
        count = int(scope["query_string"].decode() or "10")
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        for i in range(count):
            await send({"type": "http.response.body", "body": bytes([i % 256]) * 65536,
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/trailers":
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"content-type", b"text/plain"), (b"trailer", b"x-digest")]})
        body = b"x" * 100_000
        await send({"type": "http.response.body", "body": body[:50_000], "more_body": True})
        await send({"type": "http.response.body", "body": body[50_000:]})
        await send({"type": "http.response.trailers",
                    "headers": [(b"x-digest", hashlib.sha256(body).hexdigest().encode())]})
    elif path == "/pathsend":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream"),
                                (b"content-length", str(len(FILE_DATA)).encode())]})
        await send({"type": "http.response.pathsend", "path": FILE_PATH})
    elif path == "/raise":
        raise RuntimeError("secret detail of the app")
    elif path == "/raise-after-start":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("failed mid-response")
    elif path == "/no-response":
        return
    elif path == "/wait-disconnect":
        # Reads the body, then waits for the client to go (a raw client resets the stream).
        key = scope["query_string"].decode()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                DISCONNECTS[key] = DISCONNECTS.get(key, 0) + 1
                return
    elif path == "/stream-until-gone":
        key = scope["query_string"].decode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"z" * 16384,
                            "more_body": True})
        except OSError:
            DISCONNECTS[key] = DISCONNECTS.get(key, 0) + 1
    elif path == "/stream-count":
        # Streams 16 KiB chunks until the client goes, counting what send() accepted.
        key = scope["query_string"].decode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"c" * 16384,
                            "more_body": True})
                DISCONNECTS["sent-" + key] = DISCONNECTS.get("sent-" + key, 0) + 1
        except OSError:
            return
    elif path == "/disconnects":
        key = scope["query_string"].decode()
        await _plain(send, 200, str(DISCONNECTS.get(key, 0)).encode())
    else:
        await _plain(send, 404, b"not found")


class CallableApp:
    """An object whose ``__call__`` is an ASGI app."""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        await _plain(send, 200, b"callable object")


callable_app = CallableApp()


async def failing_lifespan_app(scope, receive, send):
    if scope["type"] == "lifespan":
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
        return
    await _plain(send, 200, b"never")


# -- Starlette and FastAPI ------------------------------------------------------------------------
def _starlette_app():
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    done: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield {"db": "connected", "started": 1}
        print("starlette lifespan shutdown ran", flush=True)

    async def hello(request):
        return JSONResponse({"hello": "starlette", "db": request.state.db})

    async def upload(request):
        size = 0
        digest = hashlib.sha256()
        async for chunk in request.stream():
            size += len(chunk)
            digest.update(chunk)
        return JSONResponse({"size": size, "sha256": digest.hexdigest()})

    async def stream(request):
        async def gen():
            for i in range(20):
                yield f"line {i}\n".encode()
                await asyncio.sleep(0)
        return StreamingResponse(gen(), media_type="text/plain")

    async def background(request):
        key = request.query_params["key"]
        return PlainTextResponse("scheduled", background=BackgroundTask(done.append, key))

    async def background_done(request):
        return JSONResponse(done)

    async def boom(request):
        raise ValueError("starlette secret")

    return Starlette(routes=[
        Route("/", hello), Route("/upload", upload, methods=["POST"]), Route("/stream", stream),
        Route("/background", background), Route("/background-done", background_done),
        Route("/boom", boom),
    ], lifespan=lifespan)


def _fastapi_app():
    from fastapi import BackgroundTasks, FastAPI, Request
    from fastapi.responses import StreamingResponse

    done: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield {"model": "loaded"}

    api = FastAPI(lifespan=lifespan)

    @api.get("/items/{item_id}")
    async def item(item_id: int, q: str | None = None, request: Request = None):
        return {"item_id": item_id, "q": q, "model": request.state.model}

    @api.post("/upload")
    async def upload(request: Request):
        body = await request.body()
        return {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}

    @api.get("/stream")
    async def stream():
        async def gen():
            for i in range(5):
                yield f"{i},".encode()
        return StreamingResponse(gen(), media_type="text/csv")

    @api.get("/background")
    async def background(key: str, tasks: BackgroundTasks):
        tasks.add_task(done.append, key)
        return {"scheduled": key}

    @api.get("/background-done")
    async def background_done():
        return done

    @api.get("/boom")
    async def boom():
        raise ValueError("fastapi secret")

    return api


starlette_app = _starlette_app()
fastapi_app = _fastapi_app()
