"""The ASGI ``lifespan`` protocol: the app's startup before the server accepts, its shutdown
after the drain.

:class:`Lifespan` runs ``app({"type": "lifespan", ...}, receive, send)`` as one task for the
life of the server. :meth:`Lifespan.startup` sends ``lifespan.startup`` and waits for the
answer; ``lifespan.startup.failed`` raises :class:`LifespanFailed` (the CLI prints its message
on one line and exits with :data:`EXIT_STARTUP_FAILED`). An app that does not speak the
protocol (it raises on the scope, or returns before answering) is served all the same, with
one log line saying so. :meth:`Lifespan.shutdown` sends ``lifespan.shutdown`` once the
connections are drained and waits for the answer (at most ``timeout``).

``scope["state"]`` is a dict the app fills at startup; each request scope gets a shallow copy
of it (ASGI lifespan state).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .scope import ASGI_INFO

__all__ = ["Lifespan", "LifespanFailed", "EXIT_STARTUP_FAILED"]

log = logging.getLogger("kyoukai_h2fast")

#: The exit code of the CLI when the app's lifespan startup failed.
EXIT_STARTUP_FAILED = 3


class LifespanFailed(Exception):
    """The app answered ``lifespan.startup.failed`` (or raised after starting to)."""


class Lifespan:
    """Drives an ASGI app's lifespan (see the module docstring)."""

    def __init__(self, app: Callable[..., Any], state: dict[str, Any]) -> None:
        self.app = app
        self.state = state
        #: False once the app showed it does not speak the protocol.
        self.supported = True
        self._task: asyncio.Task | None = None
        self._inbox: asyncio.Queue | None = None
        self._answer: asyncio.Future | None = None
        self._started = False

    async def _main(self) -> None:
        scope = {"type": "lifespan", "asgi": ASGI_INFO, "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except Exception as e:
            if not self._started:
                self.supported = False
                log.info("the ASGI app does not support lifespan (%s: %s); serving without it",
                         type(e).__name__, e)
            else:
                log.error("ASGI lifespan task raised", exc_info=(type(e), e, e.__traceback__))
            self._settle(None)
            return
        if not self._started:
            self.supported = False
            log.info("the ASGI app returned from its lifespan scope; serving without it")
        self._settle(None)

    def _settle(self, message: dict | None) -> None:
        answer = self._answer
        if answer is not None and not answer.done():
            answer.set_result(message)

    async def _receive(self) -> dict[str, Any]:
        assert self._inbox is not None  # made before the task starts
        return await self._inbox.get()

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind in ("lifespan.startup.complete", "lifespan.startup.failed"):
            self._started = True
        elif kind not in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            raise RuntimeError(f"ASGI: unexpected message {kind!r} on the lifespan scope")
        self._settle(message)

    async def startup(self) -> None:
        """Run the app's startup; raises :class:`LifespanFailed` when it fails."""
        loop = asyncio.get_running_loop()
        self._inbox = asyncio.Queue()
        self._answer = loop.create_future()
        self._inbox.put_nowait({"type": "lifespan.startup"})
        self._task = loop.create_task(self._main())
        answer = await self._answer
        if answer is None:  # the app does not speak the protocol
            return
        if answer["type"] == "lifespan.startup.failed":
            raise LifespanFailed(answer.get("message") or "lifespan startup failed")

    async def shutdown(self, timeout: float) -> None:
        """Run the app's shutdown (when it supports lifespan), waiting ``timeout`` at most."""
        task = self._task
        if task is None or task.done() or not self.supported or self._inbox is None:
            return
        self._answer = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait({"type": "lifespan.shutdown"})
        try:
            answer = await asyncio.wait_for(asyncio.shield(self._answer), max(timeout, 0.1))
        except asyncio.TimeoutError:
            log.warning("the ASGI app's lifespan shutdown did not finish within %.3g s",
                        timeout)
            task.cancel()
            return
        if answer is not None and answer["type"] == "lifespan.shutdown.failed":
            log.error("ASGI lifespan shutdown failed: %s", answer.get("message") or "")
        try:
            await asyncio.wait_for(task, 1.0)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pass
        except Exception:  # (logged by _main)
            pass
