"""The runner of ASGI 3 apps (the :class:`~kyoukai_h2fast.contracts.Runner` contract).

:class:`ASGIRunner` runs each request's ``app(scope, receive, send)`` on the event loop, in a
``contextvars.Context`` of its own, as a Task (started eagerly until its first suspension on
Python 3.12+; a bare coroutine run outside a Task, as Kyoukai-style handlers are, would break
anyio, and so Starlette: ``current_task()`` must be right). Request bodies stream
(``dispatch_early``): the app starts with the headers and reads the body as it arrives
(:mod:`kyoukai_h2fast.asgi.http`). Streamed responses use the connection's ``in_thread``
path, the cycle standing for the worker thread: :meth:`ASGIRunner.pull_in_thread` tells the
cycle the connection wants the next chunk.

Lifespan (:mod:`kyoukai_h2fast.asgi.lifespan`): :meth:`ASGIRunner.startup` runs before the
listener accepts; :meth:`ASGIRunner.drain` waits for running handlers, then runs the app's
shutdown.

WebSockets: :attr:`ASGIRunner.websocket_app` is the server's WebSocket handler (the
``websocket`` scope, :mod:`kyoukai_h2fast.asgi.websocket`): the connections take WebSocket
opening requests before dispatch (HTTP/1.1 Upgrade, RFC 8441 extended CONNECT) and run it on
a :class:`~kyoukai_h2fast.websocket.session.WebSocketSession`; its tasks count among the
handlers :meth:`ASGIRunner.drain` waits for (the lifespan shutdown comes after them).
"""
from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from contextvars import Context
from typing import TYPE_CHECKING, Any

from ..apps.runners import OnLoopRunner
from .http import HTTPCycle
from .lifespan import Lifespan
from .scope import build_scope, build_scope_direct, server_address
from .websocket import websocket_handler

if TYPE_CHECKING:
    from ..contracts import Responder
    from ..wsgi.request_state import H2State

__all__ = ["ASGIRunner"]


def _new_task(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None],
              context: Context | None = None) -> asyncio.Task:
    """A Task for a handler, in a copy of the current context: started eagerly where asyncio
    can (Python 3.12+: it runs until its first suspension now, as a Task, so
    ``current_task()`` - which anyio, and so Starlette, need - is right), else scheduled."""
    if _EAGER:
        return asyncio.Task(coro, loop=loop, context=context, eager_start=True)  # type: ignore[call-arg]
    return loop.create_task(coro)


_EAGER = sys.version_info >= (3, 12)


class ASGIRunner(OnLoopRunner):
    """Runs an ASGI 3 app on the event loop (see the module docstring)."""

    kind = "asgi"
    #: The protocols may call :meth:`dispatch_direct` (no WSGI environ) when they apply no
    #: trusted proxy headers. Read on the class (``type(runner)``): a wrapping runner (root
    #: path, static files) that needs the environ does not have it.
    builds_scope = True
    #: The app reads the body as it arrives.
    dispatch_early = True

    def __init__(self, app: Any, lifespan: bool = True, shutdown_timeout: float = 10.0) -> None:
        self.app = app
        self.errors = sys.stderr
        #: The lifespan state: filled by the app at startup, copied into each request scope.
        self.state: dict[str, Any] = {}
        self.lifespan = Lifespan(app, self.state) if lifespan else None
        self.shutdown_timeout = shutdown_timeout
        #: Handlers that suspended (eager ones that finished at once are never here).
        self.tasks: set[asyncio.Task] = set()
        #: ``async handler(session)`` for WebSockets (read by the server's component).
        self.websocket_app = websocket_handler(app, state=self.state, tasks=self.tasks)

    # == the server's calls ===================================================================
    def start(self) -> None:
        pass

    async def startup(self) -> None:
        """The app's lifespan startup (before the listener accepts)."""
        if self.lifespan is not None:
            await self.lifespan.startup()

    async def drain(self, deadline: float) -> None:
        """Wait (until the loop time ``deadline``) for running handlers, then run the app's
        lifespan shutdown."""
        loop = asyncio.get_running_loop()
        tasks = self.tasks
        if tasks:
            await asyncio.wait(list(tasks), timeout=max(deadline - loop.time(), 0.0))
        if self.lifespan is not None:
            await self.lifespan.shutdown(self.shutdown_timeout)

    # == requests =============================================================================
    def dispatch(self, responder: Responder, state: H2State) -> None:
        environ = state.environ
        assert environ is not None  # built before dispatch
        server = server_address(responder.base_environ)  # type: ignore[attr-defined]
        scope = build_scope(environ, state.headers, self.state, server)
        self._run(responder, state, scope)

    def dispatch_direct(self, responder: Responder, state: H2State,
                        base: dict[str, Any]) -> None:
        """:meth:`dispatch` without a WSGI environ: the scope is built from the request's
        fields and ``base``, the connection's base environ (no trusted proxy headers)."""
        scope = build_scope_direct(state.headers, base, self.state)
        state.is_head = scope["method"] == "HEAD"
        self._run(responder, state, scope)

    def _run(self, responder: Responder, state: H2State, scope: dict[str, Any]) -> None:
        cycle = HTTPCycle(responder, state, scope)
        task = _new_task(responder.loop, cycle.run(self.app, self.tasks))
        if not task.done():
            cycle.task = task
            self.tasks.add(task)  # (run discards it at the end: no done callback)

    def pull_in_thread(self, responder: Responder, state: H2State) -> None:
        """The connection wants the next chunk of a streamed response: tell its cycle."""
        cycle = state.body_iter
        if isinstance(cycle, HTTPCycle):
            cycle.want()

