"""One ASGI ``http`` request/response cycle: the ``receive`` and ``send`` an app is given.

:class:`HTTPCycle` owns the per-request state machine of the ASGI HTTP spec (2.4) and maps it
onto the connection's :class:`~kyoukai_h2fast.contracts.Responder`, the same calls WSGI and
Kyoukai-style runners make, so HTTP/2 and HTTP/1.1 are served alike.

Theory of operation.

* ``receive()``: ``http.request`` events with the body as it arrives (the state's buffer:
  bounded by the stream window; every byte taken reopens the flow-control windows), the last
  with ``more_body: False``; after that it waits, and returns ``http.disconnect`` once the
  response is complete or the client is gone (stream reset, connection closed), at once from
  then on.
* ``send()``: ``http.response.start`` is kept until the first ``http.response.body``, which
  starts the response (a body in one message goes out with END_STREAM on it). A streamed
  response is handed to the connection as an ``in_thread`` body whose "thread" is this cycle:
  the connection asks for each next chunk (:meth:`want`, through
  :meth:`~kyoukai_h2fast.asgi.runner.ASGIRunner.pull_in_thread`) as the flow-control windows and
  its output allowance let it; a ``send`` of a chunk waits until the previous one was asked for,
  so at most one chunk waits beyond what the connection takes (no unbounded buffering).
  The connection gives the response up with the ``close`` this cycle passed
  (:meth:`given_up`): afterwards a ``send`` raises :class:`ClientGone` (an ``OSError``, spec
  2.4) if the client went away, and is ignored if the response was merely complete early
  (``HEAD``, a ``content-length`` reached).
* ``http.response.trailers`` (HTTP/2, announced with ``trailers: True``): the last body chunk
  leaves the stream open; the trailer block goes after the DATA with END_STREAM
  (``respond_trailers``). Over HTTP/1.1 the extension is not offered, and a trailer message
  is ignored.
* ``http.response.pathsend``: the file goes out as the static files do
  (:mod:`kyoukai_h2fast.apps.static_files`): by ``sendfile`` on cleartext HTTP/1.1, else read
  at once when small, else in blocks pulled as the client takes them.

Errors: an app that raises before its response started gets a plain 500 (logged with its
traceback, nothing of it sent); after that the response is cut (HTTP/2: RST_STREAM
INTERNAL_ERROR; HTTP/1.1: the connection closes). An app that returns without completing its
response is treated the same way.
"""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from ..errors import BodyTimeoutError, ClientDisconnected, RateLimitedLog

if TYPE_CHECKING:
    from ..contracts import Responder
    from ..wsgi.request_state import H2State

__all__ = ["HTTPCycle", "ClientGone"]

log = logging.getLogger("kyoukai_h2fast")

_STATUS_LINES = {int(s): f"{int(s)} {s.phrase}" for s in HTTPStatus}
_client_gone = RateLimitedLog("%d more ASGI requests ended early (client aborts or resets)")


class ClientGone(ConnectionResetError):
    """``send`` after the client went away (ASGI spec 2.4: an ``OSError`` subclass)."""


def _status_line(status: Any) -> str:
    line = _STATUS_LINES.get(status)
    if line is None:
        if type(status) is not int or not 100 <= status <= 999:
            raise ValueError(f"invalid ASGI response status {status!r}")
        line = str(status)
    return line


class HTTPCycle:
    """The ``receive``/``send`` pair of one request (see the module docstring)."""

    __slots__ = ("responder", "state", "scope", "loop", "started", "responded", "complete",
                 "gone", "disconnected", "wanted", "trailers", "body_done", "_waiter",
                 "_recv_waiter", "_trailer_fields", "task")

    def __init__(self, responder: Responder, state: H2State, scope: dict[str, Any]) -> None:
        self.responder = responder
        self.state = state
        self.scope = scope
        self.loop = responder.loop
        #: ``http.response.start`` was sent by the app / the response went to the connection.
        self.started = False
        self.responded = False
        #: The app sent the end of its response.
        self.complete = False
        #: The connection gave the response up; ``disconnected``: because the client left.
        self.gone = False
        self.disconnected = False
        #: The connection asked for the next chunk.
        self.wanted = False
        self.trailers = False
        #: ``receive`` returned the last of the body.
        self.body_done = False
        #: Futures a ``send`` and a ``receive`` wait on (both are woken on any change).
        self._waiter: asyncio.Future | None = None
        self._recv_waiter: asyncio.Future | None = None
        self._trailer_fields: list | None = None
        #: The Task running :meth:`run` once it suspended (it leaves the runner's set).
        self.task: asyncio.Task | None = None

    # The connection holds the cycle as the body iterator of a streamed response, pulled
    # "in a thread" (Runner.pull_in_thread -> want); it never calls next() itself.
    def __iter__(self) -> HTTPCycle:
        return self

    def __next__(self) -> bytes:
        raise RuntimeError("an ASGI response is pushed by the app, not pulled")

    # == driving the app ====================================================================
    async def run(self, app: Callable[..., Any], tasks: set) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except Exception as e:
            self._raised(e)
        else:
            self._returned()
        finally:
            if self.task is not None:  # (the runner's running handlers: no done callback)
                tasks.discard(self.task)

    def _raised(self, e: Exception) -> None:
        state = self.state
        if self.disconnected or isinstance(e, (ClientDisconnected, BodyTimeoutError)):
            _client_gone("ASGI request ended early on %s: %r", state.describe(), e)
            return
        log.error("ASGI app raised on %s", state.describe(),
                  exc_info=(type(e), e, e.__traceback__))
        self._fail()

    def _returned(self) -> None:
        if not self.complete and not self.gone:
            log.error("ASGI app returned without %s the response on %s",
                      "completing" if self.started else "starting", self.state.describe())
            self._fail()

    def _fail(self) -> None:
        """500 before the response started; after: the response is cut."""
        if self.gone:
            return
        self.complete = True
        self._wake()
        self.responder.respond_error(self.state, 500)

    # == the connection's side ==============================================================
    def want(self) -> None:
        """The connection asks for the next chunk (``Runner.pull_in_thread``)."""
        self.wanted = True
        self._wake()

    def given_up(self) -> None:
        """The connection no longer takes the response (the ``close`` of ``respond``)."""
        if self.gone:
            return
        self.gone = True
        self.disconnected = not self.complete and self.state.finished
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        waiter = self._waiter = self.loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    # == receive ==============================================================================
    async def receive(self) -> dict[str, Any]:
        state = self.state
        if not self.body_done:
            if state.body_complete and not state.buffered:
                self.body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            try:
                data = await state.read_async(False)
            except (ClientDisconnected, BodyTimeoutError):
                self.body_done = True
                return {"type": "http.disconnect"}
            more = not state.body_complete or state.buffered > 0
            if not more:
                self.body_done = True
            return {"type": "http.request", "body": data, "more_body": more}
        # The body is all read: wait for the end of the response or of the client.
        while not (self.complete or self.gone or state.finished):
            waiter = self._recv_waiter = state._waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                self._recv_waiter = None
                if state._waiter is waiter:
                    state._waiter = None
        return {"type": "http.disconnect"}

    # == send =================================================================================
    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            if self.responded or not self.started or self.complete or self.gone:
                await self._body(message.get("body", b""), message.get("more_body", False))
            else:  # the first body message: the response starts (nothing to wait for)
                self._respond(message.get("body", b""), message.get("more_body", False))
        elif kind == "http.response.start":
            if self.started:
                raise RuntimeError("ASGI: http.response.start sent twice")
            if self.gone:
                self._check_gone()
                return
            state = self.state
            state._emit_status = _status_line(message["status"])
            state._emit_headers = message.get("headers") or []
            self.trailers = bool(message.get("trailers")) and \
                self.scope["http_version"] == "2"
            self.started = True
        elif kind == "http.response.trailers":
            await self._send_trailers(message)
        elif kind == "http.response.pathsend":
            self._pathsend(message["path"])
        else:
            raise RuntimeError(f"ASGI: unexpected message {kind!r} on an http scope")

    def _check_gone(self) -> None:
        if self.disconnected:
            raise ClientGone("the client went away")

    async def _body(self, body: bytes, more: bool) -> None:
        if not self.started:
            raise RuntimeError("ASGI: http.response.body before http.response.start")
        if self.complete:
            if self.gone:
                return
            raise RuntimeError("ASGI: http.response.body after the response ended")
        if self.gone:
            self._check_gone()
            return
        if not self.responded:
            self._respond(body, more)
            return
        end = not more and not self.trailers
        if not more:
            self.complete = True
        if not body and not end:
            if not more:
                self._wake()
            return
        while not self.wanted:  # the connection takes the previous chunk first
            if self.gone:
                self._check_gone()
                return
            await self._wait()
        self.wanted = False
        self.responder.pulled(self.state, (body,) if body else (), end)
        if not more:
            self._wake()

    def _respond(self, body: bytes, more: bool) -> None:
        """The first body message: the response (head and this body) goes to the connection
        in one call."""
        self.responded = True
        if more:
            self.responder.respond(self.state, [body] if body else [], body_iter=self,
                                   in_thread=True, close=self.given_up)
            return
        self.complete = True
        if self.trailers:
            self.responder.respond(self.state, [body] if body else [], body_iter=self,
                                   in_thread=True, close=self.given_up)
        else:
            self.responder.respond(self.state, [body] if body else [])
        self._wake()  # a receive() waiting for the end returns http.disconnect

    async def _send_trailers(self, message: dict[str, Any]) -> None:
        if not self.trailers or self.gone:
            self._check_gone()
            return
        if not self.complete:
            raise RuntimeError("ASGI: http.response.trailers before the last body message")
        fields = self._trailer_fields
        if fields is None:
            fields = self._trailer_fields = []
        for name, value in message.get("headers") or ():
            fields.append((bytes(name).lower(), bytes(value)))
        if message.get("more_trailers", False):
            return
        self.trailers = False
        respond_trailers = getattr(self.responder, "respond_trailers", None)
        if respond_trailers is not None:
            respond_trailers(self.state, fields)

    def _pathsend(self, path: str) -> None:
        """``http.response.pathsend``: the file at ``path`` is the whole body."""
        from ..apps.static_files import respond_with_file
        if not self.started or self.responded:
            raise RuntimeError("ASGI: http.response.pathsend needs http.response.start "
                               "and no body message before it")
        if self.gone:
            self._check_gone()
            return
        file = open(path, "rb")  # noqa: SIM115  (closed with the response)
        try:
            size = os.fstat(file.fileno()).st_size
        except BaseException:
            file.close()
            raise
        self.complete = self.responded = True
        self.trailers = False
        self._wake()
        responder, state = self.responder, self.state
        if state.is_head or size == 0:
            file.close()
            responder.respond(state, [])
            return
        respond_with_file(responder, state, file, 0, size)
