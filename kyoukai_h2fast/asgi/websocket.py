"""The ASGI ``websocket`` scope (ASGI 3.0, spec version 2.4) on a WebSocket session.

:func:`websocket_handler` turns an ASGI app into the server's WebSocket handler
(``component.websocket_app``: ``async handler(session)``, a
:class:`~kyoukai_h2fast.websocket.session.WebSocketSession` from either transport) and
:func:`run_websocket` runs the app for one session:

* the scope: ``type`` ``"websocket"``, ``asgi`` ``{"version": "3.0", "spec_version": "2.4"}``,
  ``http_version`` ``"1.1"`` or ``"2"``, ``scheme`` ``"ws"``/``"wss"``, ``path`` (decoded),
  ``raw_path``, ``query_string``, ``root_path`` (``--root-path``; ``path`` keeps it, as
  uvicorn's does), ``headers`` (lower-case names, no
  pseudo-header fields), ``client``, ``server``, ``subprotocols``, ``state`` (a copy of the
  lifespan state, when given), and the extension ``websocket.http.response``;
* ``receive()``: ``websocket.connect`` first, then ``websocket.receive`` (``text`` or
  ``bytes``) per message, then ``websocket.disconnect`` (``code``, ``reason``) for ever;
* ``send()``: ``websocket.accept`` (``subprotocol``, ``headers``), ``websocket.send``
  (``text`` or ``bytes``), ``websocket.close`` (``code``, ``reason``; before the accept: a
  403 denial), and the denial extension ``websocket.http.response.start`` (``status``,
  ``headers``) then ``websocket.http.response.body`` (``body``, ``more_body``; the response
  goes out whole when the last part arrives). A send after the WebSocket closed raises
  :class:`~kyoukai_h2fast.errors.ClientDisconnected` (an ``OSError``, spec 2.4); a message the
  state does not allow raises ``RuntimeError``.

What the app leaves undone is the session's (:meth:`WebSocketSession.run`): no answer: 403
(500 when it raised); still open when it returns: close 1000 (1011 when it raised).
"""
from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import ClientDisconnected
from ..websocket.session import ConnectionClosed, Disconnected, WebSocketSession

__all__ = ["websocket_handler", "run_websocket", "websocket_scope"]

Scope = dict[str, Any]
Message = dict[str, Any]


def websocket_scope(session: WebSocketSession, root_path: str = "",
                    state: dict | None = None) -> Scope:
    """The ASGI ``websocket`` scope of ``session`` (see the module docstring)."""
    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": session.http_version,
        "scheme": session.scheme,
        "path": session.path,
        "raw_path": session.raw_path,
        "query_string": session.query_string,
        "root_path": root_path or session.config.root_path,
        "headers": session.headers,
        "client": session.client,
        "server": session.server,
        "subprotocols": session.subprotocols,
        "extensions": {"websocket.http.response": {}},
    }
    if state is not None:
        scope["state"] = copy.copy(state)
    return scope


class _Channel:
    """``receive`` and ``send`` of one app call."""

    __slots__ = ("session", "connected", "status", "headers", "body")

    def __init__(self, session: WebSocketSession) -> None:
        self.session = session
        self.connected = False
        self.status: int | None = None            # a denial response started
        self.headers: list = []
        self.body: list[bytes] = []

    async def receive(self) -> Message:
        session = self.session
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        if session.state in ("open", "denied") or session.state == "closed" \
                and session._conn is None:
            # (an app that reads before it answered, or after a denial: it is over)
            if session.state == "open":
                await session.wait_closed()
            return {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        message = await session.receive()
        if isinstance(message, str):
            return {"type": "websocket.receive", "text": message}
        if isinstance(message, bytes):
            return {"type": "websocket.receive", "bytes": message}
        assert isinstance(message, Disconnected)
        return {"type": "websocket.disconnect", "code": message.code,
                "reason": message.reason}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        session = self.session
        if kind == "websocket.send":
            text = message.get("text")
            data = text if text is not None else message.get("bytes")
            if data is None:
                raise RuntimeError("websocket.send needs 'text' or 'bytes'")
            try:
                await session.send(data)
            except ConnectionClosed as e:
                raise ClientDisconnected(str(e)) from None
        elif kind == "websocket.accept":
            if session.state != "open":
                if session._gone:
                    raise ClientDisconnected("the client went away before the accept")
                raise RuntimeError(f"websocket.accept when the WebSocket is {session.state}")
            headers = [(bytes(n), bytes(v)) for n, v in message.get("headers") or ()]
            await session.accept(message.get("subprotocol"), headers)
        elif kind == "websocket.close":
            if session.state in ("denied",) or self.status is not None:
                raise RuntimeError("websocket.close after a denial response")
            reason = message.get("reason") or ""
            await session.close(int(message.get("code", 1000)), reason)
        elif kind == "websocket.http.response.start":
            if session.state != "open" or self.status is not None:
                raise RuntimeError("websocket.http.response.start after the handshake")
            self.status = int(message["status"])
            self.headers = [(bytes(n), bytes(v)) for n, v in message.get("headers") or ()]
        elif kind == "websocket.http.response.body":
            if self.status is None or session.state != "open":
                raise RuntimeError("websocket.http.response.body without its start")
            self.body.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                await session.deny(self.status, self.headers, b"".join(self.body))
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} in a websocket scope")


async def run_websocket(app: Callable[..., Awaitable[Any]], session: WebSocketSession,
                        root_path: str = "", state: dict | None = None) -> None:
    """Run the ASGI ``app`` for ``session`` (the session's handler)."""
    channel = _Channel(session)
    await app(websocket_scope(session, root_path, state), channel.receive, channel.send)


def websocket_handler(app: Callable[..., Awaitable[Any]], root_path: str = "",
                      state: dict | None = None, tasks: set | None = None,
                      ) -> Callable[[WebSocketSession], Awaitable[None]]:
    """``component.websocket_app`` for an ASGI app: ``handler(session)``. ``state``: the
    lifespan state (copied into each scope); ``tasks``: a set the running handlers' tasks are
    kept in while they run (the runner's drain waits for them)."""
    async def handler(session: WebSocketSession) -> None:
        task = asyncio.current_task() if tasks is not None else None
        if task is not None and tasks is not None:
            tasks.add(task)
        try:
            await run_websocket(app, session, root_path, state)
        finally:
            if task is not None and tasks is not None:
                tasks.discard(task)
    return handler
