"""An in-process server with a WebSocket ASGI app, on a loop in a thread (for tests/websocket).

:func:`serve_in_thread` starts :func:`kyoukai_h2fast.server.component.start_server` on a fresh
event loop in a daemon thread, gives the component an ASGI WebSocket handler
(:func:`kyoukai_h2fast.asgi.websocket.websocket_handler`) and returns it with a stop function.
The build (compiled or pure) is the one this process imported.

:func:`ws_app` is the ASGI app: by path, ``/echo`` echoes (text as text, bytes as bytes) and
records how each socket ended in ``ENDED``, ``/info`` sends the scope's fields as JSON then
echoes, ``/deny`` answers 403 with a body through ``websocket.http.response``, ``/reject``
closes before accepting, ``/close4001`` accepts then closes with 4001, ``/flood`` sends 64 KiB
messages (counted in ``FLOOD["sent"]``) to a client that does not read: its send must wait;
``/sleepy`` accepts and reads nothing until ``SLEEPY_GO`` is set.
"""
from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from kyoukai_h2fast.asgi.websocket import websocket_handler
from kyoukai_h2fast.server.component import start_server

__all__ = ["serve_in_thread", "ws_app", "ENDED", "FLOOD", "VERSIONS", "RESULTS", "PAGE",
           "SLEEPY_GO"]

#: How sockets served by /echo ended: (path, code) per socket.
ENDED: list = []
#: /flood: messages sent so far.
FLOOD: dict = {}
#: /sleepy starts reading once this is set.
SLEEPY_GO = threading.Event()
#: (path, http_version) of every WebSocket the app saw.
VERSIONS: list = []
#: What pages reported to /result (query strings), for the browser test.
RESULTS: list = []

#: The browser test's page: a WebSocket to /info on the same origin, its first message posted
#: back to /result.
PAGE = b"""<!doctype html><title>ws</title><script>
const ws = new WebSocket("wss://" + location.host + "/info?from=page", ["chat"]);
ws.onmessage = (e) => { ws.send("echo me");
  ws.onmessage = (f) => fetch("/result?" + encodeURIComponent(e.data + "|" + f.data));
};
ws.onerror = () => fetch("/result?error");
</script>"""


async def ws_app(scope: dict, receive: Any, send: Any) -> None:
    assert scope["type"] == "websocket"
    path = scope["path"]
    VERSIONS.append((path, scope["http_version"]))
    assert (await receive())["type"] == "websocket.connect"
    if path == "/deny":
        await send({"type": "websocket.http.response.start", "status": 403,
                    "headers": [(b"x-why", b"test")]})
        await send({"type": "websocket.http.response.body", "body": b"no ",
                    "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"entry"})
        return
    if path == "/reject":
        await send({"type": "websocket.close"})
        return
    offered = scope["subprotocols"]
    await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None,
                "headers": [(b"x-served-by", b"kyoukai")]})
    if path == "/close4001":
        await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
        message = await receive()
        ENDED.append((path, message.get("code")))
        return
    if path == "/flood":
        FLOOD["sent"] = 0
        while FLOOD["sent"] < 2000:
            await send({"type": "websocket.send", "bytes": b"f" * 65536})
            FLOOD["sent"] += 1
        return
    if path == "/sleepy":                     # reads nothing until told, then drains
        while not SLEEPY_GO.is_set():
            await asyncio.sleep(0.05)
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    if path.endswith("/info"):
        info = {k: scope[k] for k in ("http_version", "scheme", "path", "subprotocols",
                                      "root_path")}
        info["raw_path"] = scope["raw_path"].decode()
        info["query_string"] = scope["query_string"].decode()
        info["headers"] = {k.decode(): v.decode() for k, v in scope["headers"]}
        info["extensions"] = sorted(scope["extensions"])
        await send({"type": "websocket.send", "text": json.dumps(info)})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            ENDED.append((path, message["code"]))
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def _wsgi_app(environ: dict, start_response: Any) -> Any:   # pragma: no cover
    raise AssertionError("not used")


def _plain(environ: dict, start_response: Any) -> list:
    if environ["PATH_INFO"] == "/page":
        start_response("200 OK", [("Content-Type", "text/html")])
        return [PAGE]
    if environ["PATH_INFO"] == "/result":
        RESULTS.append(environ["QUERY_STRING"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"plain " + environ["PATH_INFO"].encode()]


def serve_in_thread(**settings: Any) -> tuple[Any, Any]:
    """``(component, stop)``: the server listening on a free port (see the module docstring);
    ordinary HTTP requests get a small WSGI app's answer."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: list = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            component = loop.run_until_complete(
                start_server(_plain, port=0, wsgi_threads=0, **settings))
            component.websocket_app = websocket_handler(ws_app)
            holder.append(component)
        except BaseException as e:  # (reported by the caller)
            holder.append(e)
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(30)
    component = holder[0]
    if isinstance(component, BaseException):
        raise component

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(component.shutdown(0.5), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    return component, stop
