"""Multi-process serving: a supervisor and N worker processes on one listening socket.

``kyoukai-h2fast APP --workers N`` (0 or ``auto``: one per CPU) runs :class:`Supervisor`:

* it binds the listening socket(s) itself (so ``--port 0`` and privileged ports work, and a
  restarted worker finds the socket open), imports the app once, then forks N workers; each
  worker serves the inherited socket with its own event loop (the kernel spreads accepted
  connections over the processes waiting on it);
* a worker that dies (crash, OOM kill, SIGKILL) is replaced at once, or after a pause of a
  second when it died within a second of its start (so a crashing app cannot spin);
* SIGTERM or SIGINT is forwarded as SIGTERM: every worker drains (GOAWAY, in-flight streams
  and responses finish within ``--shutdown-timeout``) and exits; the supervisor waits for
  them (SIGKILL for any still alive a few seconds past the timeout) and exits 0. A second
  SIGTERM/SIGINT kills the workers at once;
* SIGHUP replaces every worker (each drains gracefully while its successor starts);
* a worker whose supervisor disappears shuts itself down.

POSIX only (it forks). Each worker runs exactly what a single process runs
(:func:`kyoukai_h2fast.server.run` with a :class:`~kyoukai_h2fast.server.H2KyoukaiComponent`).
"""
from __future__ import annotations

import logging
import os
import select
import signal
import socket
import sys
import time
from types import FrameType
from typing import Any

from .config import ServerConfig, resolve_workers

__all__ = ["Supervisor", "bind_sockets"]

log = logging.getLogger("kyoukai_h2fast.supervisor")

#: A worker that exits within this many seconds of its start is restarted after a pause.
_FAST_DEATH = 1.0
#: Extra seconds past the shutdown timeout before the workers are killed (a worker exits
#: within the timeout plus a fraction of a second: this is for one that is stuck).
_KILL_GRACE = 2.0
#: Exit code of a worker that could not start serving (the supervisor gives up).
BOOT_FAILED = 3


def bind_sockets(host: str, port: int, backlog: int = 1024) -> list[socket.socket]:
    """Listening sockets on every address ``host`` resolves to (IPv6 ones v6-only); with
    ``port`` 0, the port the first one got is used for the others."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    seen = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            if port == 0 and sockets:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Supervisor:
    """Runs and watches the worker processes (see the module docstring)."""

    def __init__(self, app: Any, config: ServerConfig, loop_kind: str = "auto") -> None:
        self.app = app
        self.config = config
        self.loop_kind = loop_kind
        self.count = resolve_workers(config.workers)
        #: pid -> (worker number, start time)
        self.workers: dict[int, tuple[int, float]] = {}
        self._stopping = False
        self._kill_now = False
        self._reload = False
        self._wake_r = self._wake_w = -1

    # -- the supervisor ---------------------------------------------------------------------
    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the exit code (0 after a clean shutdown)."""
        if not hasattr(os, "fork"):
            log.error("--workers needs fork(); run one process per core instead")
            return 2
        sockets = bind_sockets(self.config.host, self.config.port)
        port = sockets[0].getsockname()[1]
        config = self.config.replace(port=port, workers=self.count)  # (wsgi.multiprocess)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)}
        old_wakeup = signal.set_wakeup_fd(self._wake_w)
        log.info("supervisor (pid %d) starting %d workers on %s:%d", os.getpid(), self.count,
                 config.host, port)
        try:
            for number in range(self.count):
                self._spawn(number, config, sockets)
            return self._watch(config, sockets)
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for sock in sockets:
                sock.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            if self._stopping:
                self._kill_now = True
            self._stopping = True
        elif signum == signal.SIGHUP:
            self._reload = True

    def _watch(self, config: ServerConfig, sockets: list) -> int:
        deadline = None
        pending: list[tuple[float, int]] = []  # (when, worker number) to respawn
        status = 0
        while True:
            self._reap(pending)
            now = time.monotonic()
            if self._stopping:
                if deadline is None:
                    log.info("supervisor: stopping %d workers (graceful, up to %g s)",
                             len(self.workers), config.shutdown_timeout)
                    self._signal_all(signal.SIGTERM)
                    deadline = time.monotonic() + config.shutdown_timeout + _KILL_GRACE
                    pending.clear()
                    for sock in sockets:  # new connections are refused, not left waiting
                        sock.close()
                if not self.workers:
                    log.info("supervisor: all workers stopped")
                    return status
                if self._kill_now or time.monotonic() > deadline:
                    log.warning("supervisor: killing %d workers still running",
                                len(self.workers))
                    self._signal_all(signal.SIGKILL)
                    self._kill_now = False
                    deadline = float("inf")
            else:
                if self._reload:
                    self._reload = False
                    log.info("supervisor: SIGHUP, replacing %d workers", len(self.workers))
                    self._signal_all(signal.SIGTERM)
                for item in [p for p in pending if p[0] <= now]:
                    pending.remove(item)
                    self._spawn(item[1], config, sockets)
                if self._gave_up:
                    self._stopping = True
                    status = 1
                    continue
            self._sleep(0.5 if not pending else max(0.01, min(p[0] for p in pending) - now))

    _gave_up = False

    def _reap(self, pending: list) -> None:
        while self.workers:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.workers.clear()
                return
            if pid == 0:
                return
            number, started = self.workers.pop(pid, (None, 0.0))
            if number is None:
                continue
            code = os.waitstatus_to_exitcode(wait_status)
            if self._stopping:
                log.info("supervisor: worker %d (pid %d) exited with %d", number, pid, code)
                continue
            if code == BOOT_FAILED:
                log.error("supervisor: worker %d (pid %d) could not start; giving up",
                          number, pid)
                self._gave_up = True
                continue
            lived = time.monotonic() - started
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            log.warning("supervisor: worker %d (pid %d) died (%s) after %.1f s; restarting",
                        number, pid, how, lived)
            pending.append((time.monotonic() + (1.0 if lived < _FAST_DEATH else 0.0), number))

    def _sleep(self, timeout: float) -> None:
        try:
            ready, _, _ = select.select([self._wake_r], [], [], timeout)
        except InterruptedError:
            return
        if ready:
            try:
                os.read(self._wake_r, 4096)
            except (BlockingIOError, InterruptedError):
                pass

    def _signal_all(self, sig: int) -> None:
        for pid in list(self.workers):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def _spawn(self, number: int, config: ServerConfig, sockets: list) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker: never returns
            code = 1
            try:
                code = self._worker(config, sockets)
            except BaseException:
                log.exception("worker %d (pid %d) failed", number, os.getpid())
            finally:
                logging.shutdown()
                os._exit(code)
        self.workers[pid] = (number, time.monotonic())
        log.info("supervisor: worker %d started (pid %d)", number, pid)

    # -- a worker ---------------------------------------------------------------------------
    def _worker(self, config: ServerConfig, sockets: list) -> int:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._wake_r = self._wake_w = -1
        from .server import H2KyoukaiComponent, run

        parent = os.getppid()
        component = H2KyoukaiComponent(self.app, config.keyfile, config.certfile,
                                       ip=config.host, port=config.port, config=config)
        component.sockets = sockets

        async def start() -> None:
            import asyncio
            try:
                await component.start()
            except Exception:
                log.exception("worker (pid %d) cannot start serving", os.getpid())
                raise _BootFailed() from None
            loop = asyncio.get_running_loop()

            def orphan_check() -> None:
                if os.getppid() != parent:
                    log.warning("worker (pid %d): the supervisor is gone; stopping",
                                os.getpid())
                    os.kill(os.getpid(), signal.SIGTERM)
                else:
                    loop.call_later(1.0, orphan_check)
            loop.call_later(1.0, orphan_check)

        try:
            run(start, component.shutdown, self.loop_kind)
        except _BootFailed:
            return BOOT_FAILED
        return 0


class _BootFailed(Exception):
    pass
