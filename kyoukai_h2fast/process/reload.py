"""Graceful reload of a single serving process (SIGHUP): new app code and certificates, the
same listening sockets, the same process, no request lost.

:class:`ReloadingServer` serves with one
:class:`~kyoukai_h2fast.server.component.H2KyoukaiComponent` at a time. On
:meth:`~ReloadingServer.reload` it

1. imports the app afresh and checks the certificate files (``fresh_app``, given by the
   command line: :class:`~kyoukai_h2fast.process.app_modules.AppModules` and the TLS
   check); if that fails it logs one error (with the app's traceback below it) and the old
   app goes on;
2. makes a new component for the new app, which takes over the listening sockets, still
   open, from the old one
   (:meth:`~kyoukai_h2fast.server.component.H2KyoukaiComponent.release_sockets`)
   and loads the certificates into a new TLS context: from then on new connections reach
   the new app; if it cannot start, the old component takes its sockets back and goes on;
3. retires the old component in the background, as on SIGTERM but without closing the
   sockets: GOAWAY on HTTP/2 (streams already received finish), idle HTTP/1.1 keep-alive
   connections closed and busy ones after their response, TLS handshakes under way finished
   and served, in-flight requests given ``--shutdown-timeout``.

The import runs on the event loop: serving pauses while it runs. One reload at a time; a
SIGHUP during one starts another once it is done. The old app's objects are collected once
its last connection is gone (they were frozen out of the garbage collector's way while they
served: :func:`kyoukai_h2fast.server.component.run`).
"""
from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..server.component import H2KyoukaiComponent

__all__ = ["ReloadingServer", "describe_failure"]

log = logging.getLogger("kyoukai_h2fast")


def describe_failure(error: BaseException) -> str:
    """One line for a failed reload step (a command-line error says it all; anything else is
    its type and message), then the app's traceback when there is one."""
    detail = getattr(error, "detail", "")
    line = str(error) if hasattr(error, "detail") else f"{type(error).__name__}: {error}"
    return f"{line}\n{detail}" if detail else line


class ReloadingServer:
    """One process serving ``app``; :meth:`reload` replaces its app and certificates."""

    def __init__(self, make: Callable[[Any], H2KyoukaiComponent], app: Any,
                 fresh_app: Callable[[], Any]) -> None:
        self._make = make
        self._fresh_app = fresh_app
        #: The component serving new connections.
        self.component = make(app)
        self._retiring: set[asyncio.Task] = set()
        self._lock: asyncio.Lock | None = None
        self._stopping = False

    async def start(self) -> None:
        await self.component.start()

    async def reload(self) -> None:
        """Replace the app and the TLS context (see the module docstring); never raises."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self._stopping:
                await self._swap()

    async def _swap(self) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        old = self.component
        log.info("reload (SIGHUP): importing the app and loading the certificates afresh")
        try:
            new = self._make(self._fresh_app())
        except Exception as e:
            log.error("reload failed, still serving the previous app: %s", describe_failure(e))
            return
        sockets = new.sockets = old.release_sockets()
        try:
            await new.start()
        except Exception as e:
            if new.server is not None:
                new.server.detach()
            if old.server is not None:
                old.server.adopt(sockets)
            new.runner.shutdown()
            log.error("reload failed, still serving the previous app: %s", describe_failure(e))
            return
        self.component = new
        log.info("reload: the new app serves (%.2f s); the previous one finishes its %d "
                 "connection(s) within %g s", loop.time() - began, len(old.connections),
                 old.config.shutdown_timeout)
        task = loop.create_task(self._retire(old))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retire(self, old: H2KyoukaiComponent) -> None:
        gc.unfreeze()  # the old app's objects may be collected once it stops
        began = asyncio.get_running_loop().time()
        try:
            await old.shutdown()
        finally:
            del old
            log.info("reload done: the previous app stopped (%.2f s)",
                     asyncio.get_running_loop().time() - began)
            if len(self._retiring) <= 1:  # the last one: collect, keep the rest frozen again
                gc.collect()
                gc.freeze()

    async def shutdown(self) -> None:
        """Stop serving (SIGTERM): the current component and any still retiring."""
        self._stopping = True
        if self._lock is not None:
            async with self._lock:  # a reload under way completes first
                pass
        await asyncio.gather(self.component.shutdown(), *list(self._retiring))
