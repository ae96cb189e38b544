"""The ASGI app of the WebSocket echo benchmark (``bench/ws_echo.py``).

Owns ``app``: one ASGI 3 app that every server under test (kyoukai_h2fast, uvicorn, granian)
imports as ``ws_apps:app`` (``bench/`` on ``PYTHONPATH``). A WebSocket is accepted and every
message is sent back as it came (bytes as bytes, text as text) until the client disconnects;
the lifespan protocol is answered; any HTTP request gets ``404``.
"""
from __future__ import annotations

from apps import accept_lifespan  # (bench/apps.py: bench/ is on the path)

__all__ = ["app"]


async def _websocket(receive, send) -> None:
    await receive()                                   # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":    # websocket.disconnect
            return
        data = message.get("bytes")
        if data is not None:
            await send({"type": "websocket.send", "bytes": data})
        else:
            await send({"type": "websocket.send", "text": message.get("text") or ""})


async def app(scope, receive, send) -> None:
    kind = scope["type"]
    if kind == "websocket":
        await _websocket(receive, send)
    elif kind == "lifespan":
        await accept_lifespan(receive, send)
    else:
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"not found\n"})
