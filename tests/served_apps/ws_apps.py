"""A FastAPI app with an HTTP endpoint, a WebSocket endpoint and lifespan state, served by the
real CLI (``tests.served_apps.ws_apps:fastapi_ws_app``) for tests/websocket/test_ws_served.py."""
from __future__ import annotations

import contextlib

from fastapi import FastAPI, WebSocket, WebSocketDisconnect


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI):
    yield {"greeting": "hello from lifespan"}


def _fastapi_ws_app() -> FastAPI:
    app = FastAPI(lifespan=_lifespan)

    @app.get("/items/{item}")
    async def item(item: int) -> dict:
        return {"item": item}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol="chat" if "chat" in websocket.scope[
            "subprotocols"] else None)
        await websocket.send_json({"greeting": websocket.state.greeting,
                                   "http_version": websocket.scope["http_version"]})
        try:
            while True:
                text = await websocket.receive_text()
                await websocket.send_text(text.upper())
        except WebSocketDisconnect:
            pass

    @app.websocket("/private")
    async def private(websocket: WebSocket) -> None:
        await websocket.close(code=4403)

    return app


fastapi_ws_app = _fastapi_ws_app()
