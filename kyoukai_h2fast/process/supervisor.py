"""Multi-process serving: a supervisor and N worker processes.

``kyoukai-h2fast APP --workers N`` (0 or ``auto``: one per CPU) runs :class:`Supervisor`:

* it binds the listening sockets itself (so ``--port 0`` and privileged ports work, and a
  restarted worker finds its socket open), imports the app once, then forks N workers; each
  worker serves its sockets with its own event loop, and tells the supervisor over a pipe
  once it serves;
* load spread: on Linux every worker *number* (a slot) has listening sockets of its own,
  bound with ``SO_REUSEPORT`` on the same port: the kernel hashes each new connection to one
  of them, so a burst is spread over all workers (one shared socket lets whichever worker
  wakes first accept the whole burst). The supervisor holds every slot's sockets for the
  life of the server, so a worker that replaces another (reload, recycling, crash) takes over
  the same socket, and connections queued on it are never lost. Before binding, a plain probe
  bind checks that no other process listens on the port (``SO_REUSEPORT`` would otherwise let
  a second server join silently). Where ``SO_REUSEPORT`` does not balance (not Linux), with
  ``--no-reuse-port``, and for sockets that exist once (``--uds``, ``--fd``, systemd), the
  workers share one set of sockets;
* recycling (``--max-requests`` with ``--max-requests-jitter``, ``--workers-lifetime``,
  ``--workers-max-rss``): a worker checks its limits a few times a second (sooner as the
  request limit nears: :mod:`kyoukai_h2fast.process.recycling`) and, past one, asks the
  supervisor over its pipe for a replacement and goes on serving; the supervisor
  starts the replacement on the same slot and, once it serves, sends the old worker SIGTERM:
  it drains as on a stop (GOAWAY, in-flight streams and HTTP/1.1 requests finish). No
  request is lost; with ``--workers 1`` the same happens with one worker;
* a worker that dies (crash, OOM kill, SIGKILL) is replaced at once, or after a pause of a
  second when it died within a second of its start (so a crashing app cannot spin);
* SIGTERM or SIGINT is forwarded as SIGTERM: every worker drains (GOAWAY, in-flight streams
  and responses finish within ``--shutdown-timeout``) and exits; the supervisor waits for
  them (SIGKILL for any still alive ``_KILL_GRACE`` seconds past the timeout) and exits 0. A
  second SIGTERM/SIGINT kills the workers at once;
* SIGHUP reloads without a gap: the supervisor imports the app afresh and checks the
  certificate files (``fresh_app``; a failure is one error line and the workers serving go
  on), forks N new workers (a new *generation*: they load the certificates anew), waits until
  every one of them serves, and only then sends SIGTERM to the previous generation, which
  drains as on a stop. A new worker that exits before it serves (or none serving within
  ``_READY_TIMEOUT``) fails the reload: its generation is stopped and the previous one goes
  on. A SIGHUP during a reload runs another once it is done;
* a worker whose supervisor disappears shuts itself down.

POSIX only (it forks). Each worker runs exactly what a single process runs
(:func:`kyoukai_h2fast.server.component.run` with a
:class:`~kyoukai_h2fast.server.component.H2KyoukaiComponent`); it ignores SIGHUP (a terminal's
hangup reaches the whole process group: the supervisor reloads).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from ..config import ServerConfig, resolve_workers
from ..server.listener import bind_sockets, reuse_port_available

__all__ = ["Supervisor", "bind_sockets"]  # (bind_sockets: kyoukai_h2fast.server.listener)

log = logging.getLogger("kyoukai_h2fast.supervisor")

#: A worker that exits within this many seconds of its start is restarted after a pause.
_FAST_DEATH = 1.0
#: Extra seconds past the shutdown timeout before the workers are killed (a worker exits
#: within the timeout plus a fraction of a second: this is for one that is stuck).
_KILL_GRACE = 2.0
#: Exit code of a worker that could not start serving (the supervisor gives up, unless the
#: worker was started by a reload: then the reload fails).
BOOT_FAILED = 3
#: Exit code of a worker whose ASGI app answered ``lifespan.startup.failed``: the supervisor
#: gives up too, and exits with the CLI's code for it (asgi.lifespan.EXIT_STARTUP_FAILED).
LIFESPAN_FAILED = 4
#: Seconds a reload waits for its new workers to serve before it gives up.
_READY_TIMEOUT = 60.0
#: Seconds between two looks of a worker at its recycling limits.
_LIMITS_CHECK = 0.25
#: What a worker writes on its pipe: it serves; it reached a recycling limit.
_READY, _REPLACE_ME = b"1", b"R"


@dataclasses.dataclass
class _Worker:
    number: int
    generation: int
    started: float
    #: Read end of the pipe the worker writes to once it serves and when it asks to be
    #: replaced (-1 once closed: the worker exited).
    ready_fd: int
    ready: bool = False
    #: Recycling: it asked for a replacement (which is starting), or it was told to stop.
    retiring: bool = False
    #: The pid of the worker this one replaces (recycling) until it serves; 0: none.
    replaces: int = 0
    #: Recycling: asks for a replacement are not heard before this time (one failed).
    quiet_until: float = 0.0


class Supervisor:
    """Runs and watches the worker processes (see the module docstring)."""

    def __init__(self, app: Any, config: ServerConfig, loop_kind: str = "auto",
                 fresh_app: Callable[[], Any] | None = None,
                 factory: Callable[[Any], Any] | None = None,
                 sockets: list[socket.socket] | None = None) -> None:
        self.app = app
        #: ``--factory`` with workers: ``app`` is the factory, and each worker makes its app
        #: with ``factory(app)`` (an error: the worker could not start). None: ``app`` serves.
        self.factory = factory
        self.config = config
        self.loop_kind = loop_kind
        self.count = resolve_workers(config.workers)
        #: SIGHUP: the app imported afresh (raises to keep the old one); None: the same app.
        self.fresh_app = fresh_app
        self.workers: dict[int, _Worker] = {}
        #: The generation serving, and the one starting during a reload (else None).
        self.generation = 0
        self._candidate: int | None = None
        self._candidate_deadline = 0.0
        self._stopping = False
        self._kill_now = False
        self._reload = False
        self._wake_r = self._wake_w = -1
        #: Metrics shared by the workers (kyoukai_h2fast.server.metrics.SharedMetrics), or None.
        self.metrics: Any = None
        self._metrics_slot: int | None = None
        #: Listening sockets given (a socket source: --uds, --fd, systemd), shared by all
        #: workers; None: the supervisor binds host/port.
        self.given_sockets = sockets
        #: Per worker number, the listening sockets it serves (the same list for all when
        #: shared); set by run().
        self.slots: list[list[socket.socket]] = []
        self._config = config

    # -- the supervisor ---------------------------------------------------------------------
    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the exit code (0 after a clean shutdown)."""
        if not hasattr(os, "fork"):
            log.error("--workers needs fork(); run one process per core instead")
            return 2
        self.slots = slots = self._open_slots()
        sockets = _unique(slots)
        if self.config.metrics_port is not None:
            from ..server.metrics import SharedMetrics
            try:
                self.metrics = SharedMetrics(self.config, self.count)
            except OSError:
                for sock in sockets:
                    sock.close()
                raise
        name = sockets[0].getsockname()
        port = name[1] if isinstance(name, tuple) else self.config.port
        config = self.config.replace(port=port, workers=self.count)  # (wsgi.multiprocess)
        self._config = config
        where = (f"{config.host}:{port}" if self.given_sockets is None
                 else _describe(sockets[0]))
        shared = "" if len(slots) < 2 or slots[0] is not slots[1] else "; one shared socket"
        if len(slots) > 1 and not shared:
            shared = "; a SO_REUSEPORT socket each"
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)}
        old_wakeup = signal.set_wakeup_fd(self._wake_w)
        log.info("supervisor (pid %d) starting %d workers on %s%s", os.getpid(), self.count,
                 where, shared)
        try:
            for number in range(self.count):
                self._spawn(number, self.generation, config, sockets)
            return self._watch(config, sockets)
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            given = self.given_sockets or []
            for sock in sockets:  # (a socket source's are closed by its maker)
                if all(sock is not mine for mine in given):
                    sock.close()
            if self.metrics is not None:
                self.metrics.close()
            for worker in self.workers.values():
                self._close_ready(worker)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _open_slots(self) -> list[list[socket.socket]]:
        """The listening sockets of each worker number (see the module docstring)."""
        if self.given_sockets is not None:
            return self._given_slots(self.given_sockets)
        host, port = self.config.host, self.config.port
        if not (self.config.reuse_port and reuse_port_available() and self.count > 1):
            return [bind_sockets(host, port)] * self.count
        # A plain bind (no SO_REUSEPORT; not listening) fails if anything listens on the
        # port, as a bind without SO_REUSEPORT would; it also picks the port for port 0.
        probe = bind_sockets(host, port, listen=False)
        port = probe[0].getsockname()[1]
        for sock in probe:
            sock.close()
        slots: list[list[socket.socket]] = []
        try:
            for _ in range(self.count):
                slots.append(bind_sockets(host, port, reuse_port=True))
        except OSError:
            for sock in _unique(slots):
                sock.close()
            raise
        return slots

    def _given_slots(self, given: list[socket.socket]) -> list[list[socket.socket]]:
        """Slots for sockets given (--fd, systemd): shared by all workers, except a TCP
        socket that already has ``SO_REUSEPORT`` (systemd's ``ReusePort=true``): then each
        further worker gets a socket of its own bound beside it (if this process may bind
        that port; else they share it, with a warning)."""
        if not (self.config.reuse_port and reuse_port_available() and self.count > 1):
            return [given] * self.count
        if not any(_reuse_port_twin(sock, check_only=True) for sock in given):
            return [given] * self.count
        slots: list[list[socket.socket]] = [list(given)]
        try:
            for _ in range(1, self.count):
                slot = []
                for sock in given:
                    twin = _reuse_port_twin(sock)
                    slot.append(twin if twin is not None else sock)
                slots.append(slot)
        except OSError as e:
            log.warning("supervisor: cannot bind a SO_REUSEPORT socket per worker beside the "
                        "given one (%s); the workers share it", e.strerror or e)
            for sock in _unique(slots):
                if all(sock is not mine for mine in given):
                    sock.close()
            return [given] * self.count
        return slots

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
                self._retire_replaced()
                if self._candidate is not None:
                    self._check_candidate(now)
                elif self._reload:
                    self._reload = False
                    self._start_reload(config, sockets)
                for item in [p for p in pending if p[0] <= now]:
                    pending.remove(item)
                    self._spawn(item[1], self.generation, config, sockets)
                if self._gave_up:
                    self._stopping = True
                    status = self._gave_up_status
                    continue
            timeout = 0.5 if not pending else max(0.01, min(p[0] for p in pending) - now)
            self._sleep(timeout)

    _gave_up = False
    _gave_up_status = 1  # (EXIT_STARTUP_FAILED when an ASGI app's lifespan startup failed)

    # -- reload (SIGHUP) ----------------------------------------------------------------------
    def _start_reload(self, config: ServerConfig, sockets: list) -> None:
        log.info("supervisor: SIGHUP, reloading: importing the app afresh, then starting %d "
                 "new workers before the %d serving stop", self.count, len(self.workers))
        if self.fresh_app is not None:
            try:
                self.app = self.fresh_app()
            except Exception as e:
                from .reload import describe_failure
                log.error("supervisor: reload failed, the workers serving go on: %s",
                          describe_failure(e))
                return
        self._candidate = self.generation + 1
        self._candidate_deadline = time.monotonic() + _READY_TIMEOUT
        for number in range(self.count):
            self._spawn(number, self._candidate, config, sockets)

    def _check_candidate(self, now: float) -> None:
        """A reload under way: retire the serving generation once every new worker serves;
        give the reload up if one of them exited, or on the timeout."""
        candidate = self._candidate
        assert candidate is not None  # called during a reload
        new = [w for w in self.workers.values() if w.generation == candidate]
        if len(new) == self.count and all(w.ready for w in new):
            old = [pid for pid, w in self.workers.items() if w.generation != candidate]
            self.generation, self._candidate = candidate, None
            log.info("supervisor: reload: %d new workers serve; stopping the %d previous ones "
                     "(graceful, up to %g s)", len(new), len(old), self.config.shutdown_timeout)
            self._signal(old, signal.SIGTERM)
        elif len(new) < self.count or now > self._candidate_deadline:
            why = ("a new worker exited before serving" if len(new) < self.count
                   else f"the new workers did not all serve within {_READY_TIMEOUT:g} s")
            log.error("supervisor: reload failed (%s); the workers serving go on", why)
            self._signal([pid for pid, w in self.workers.items()
                          if w.generation == candidate], signal.SIGTERM)
            self._candidate = None

    # -- recycling ----------------------------------------------------------------------------
    def _replace(self, worker: _Worker, pid: int) -> None:
        """``worker`` reached a recycling limit: start its successor (same number, same
        generation); :meth:`_retire_replaced` stops it once the successor serves."""
        if (self._stopping or self._candidate is not None or worker.retiring
                or worker.generation != self.generation
                or time.monotonic() < worker.quiet_until):
            return  # (stopping or reloading anyway; or its successor is on the way)
        worker.retiring = True
        log.info("supervisor: worker %d (pid %d) reached its recycling limit; starting its "
                 "replacement", worker.number, pid)
        self._spawn(worker.number, self.generation, self._config, _unique(self.slots),
                    replaces=pid)

    def _retire_replaced(self) -> None:
        """Successors that serve: the workers they replace drain and stop (SIGTERM)."""
        for pid, worker in list(self.workers.items()):
            if worker.replaces and worker.ready:
                old, worker.replaces = worker.replaces, 0
                if old in self.workers:
                    log.info("supervisor: worker %d (pid %d) serves; the worker it replaces "
                             "(pid %d) drains and stops (graceful, up to %g s)", worker.number,
                             pid, old, self.config.shutdown_timeout)
                    self._signal([old], signal.SIGTERM)

    # -- workers ------------------------------------------------------------------------------
    def _reap(self, pending: list) -> None:
        while self.workers:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.workers.clear()
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            if self.metrics is not None:  # its counters stay in the totals
                self.metrics.reaped(pid)
            self._close_ready(worker)
            number = worker.number
            code = os.waitstatus_to_exitcode(wait_status)
            old = self.workers.get(worker.replaces) if worker.replaces else None
            if old is not None and not self._stopping:  # a successor that did not serve
                old.retiring = False  # it goes on, and may ask again in a while
                old.quiet_until = time.monotonic() + _FAST_DEATH
                log.warning("supervisor: worker %d (pid %d), a replacement, exited with %d "
                            "before it served; the worker it was to replace goes on",
                            number, pid, code)
                continue
            # (a successor whose predecessor is gone too: replaced like any worker below)
            if worker.retiring and worker.generation == self.generation:
                log.info("supervisor: worker %d (pid %d) retired (recycled) and exited with "
                         "%d", number, pid, code)
                continue
            if self._stopping or worker.generation != self.generation:
                # stopping, a previous generation retired, or a failed reload's worker
                log.info("supervisor: worker %d (pid %d) exited with %d", number, pid, code)
                if not self._stopping and worker.generation < self.generation and not any(
                        w.generation < self.generation for w in self.workers.values()):
                    log.info("supervisor: reload done: the previous workers stopped")
                continue
            if code in (BOOT_FAILED, LIFESPAN_FAILED):
                log.error("supervisor: worker %d (pid %d) could not start; giving up",
                          number, pid)
                self._gave_up = True
                if code == LIFESPAN_FAILED:
                    from ..asgi.lifespan import EXIT_STARTUP_FAILED
                    self._gave_up_status = EXIT_STARTUP_FAILED
                continue
            lived = time.monotonic() - worker.started
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            log.warning("supervisor: worker %d (pid %d) died (%s) after %.1f s; restarting",
                        number, pid, how, lived)
            pending.append((time.monotonic() + (1.0 if lived < _FAST_DEATH else 0.0), number))

    def _sleep(self, timeout: float) -> None:
        """Wait for a signal (SIGCHLD, SIGTERM, SIGHUP...) or a worker's readiness."""
        waiting = {w.ready_fd: w for w in self.workers.values() if w.ready_fd >= 0}
        try:
            ready, _, _ = select.select([self._wake_r, *waiting], [], [], timeout)
        except InterruptedError:
            return
        for fd in ready:
            try:
                data = os.read(fd, 4096)
            except (BlockingIOError, InterruptedError):
                continue
            worker = waiting.get(fd)
            if worker is None:
                continue
            if not data:  # it exited (reaped soon)
                self._close_ready(worker)
                continue
            worker.ready = worker.ready or _READY in data
            if _REPLACE_ME in data:
                pid = next(p for p, w in self.workers.items() if w is worker)
                self._replace(worker, pid)

    @staticmethod
    def _close_ready(worker: _Worker) -> None:
        if worker.ready_fd >= 0:
            os.close(worker.ready_fd)
            worker.ready_fd = -1

    def _signal_all(self, sig: int) -> None:
        self._signal(list(self.workers), sig)

    @staticmethod
    def _signal(pids: list[int], sig: int) -> None:
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def _spawn(self, number: int, generation: int, config: ServerConfig,
               sockets: list, replaces: int = 0) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        ready_r, ready_w = os.pipe()
        if self.metrics is not None:
            pid, self._metrics_slot = self.metrics.fork()
        else:
            pid = os.fork()
        if pid == 0:  # the worker: never returns
            code = 1
            try:
                os.close(ready_r)
                for worker in self.workers.values():  # (the other workers' pipes)
                    self._close_ready(worker)
                own = self.slots[number] if self.slots else sockets
                for sock in sockets:  # the other slots' sockets: theirs alone
                    if all(sock is not mine for mine in own):
                        sock.close()
                code = self._worker(config, own, ready_w)
            except BaseException:
                log.exception("worker %d (pid %d) failed", number, os.getpid())
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(ready_w)
        os.set_blocking(ready_r, False)
        self.workers[pid] = _Worker(number, generation, time.monotonic(), ready_r,
                                    replaces=replaces)
        log.info("supervisor: worker %d started (pid %d)", number, pid)

    # -- a worker ---------------------------------------------------------------------------
    def _worker(self, config: ServerConfig, sockets: list, ready_fd: int) -> int:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the supervisor reloads
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._wake_r = self._wake_w = -1
        from ..server.component import H2KyoukaiComponent, run

        parent = os.getppid()
        app = self.app
        if self.factory is not None:
            try:
                app = self.factory(app)
            except Exception as e:
                from .reload import describe_failure
                log.error("worker (pid %d) cannot make the app: %s", os.getpid(),
                          describe_failure(e))
                return BOOT_FAILED
        component = H2KyoukaiComponent(app, config.keyfile, config.certfile,
                                       ip=config.host, port=config.port, config=config)
        component.sockets = sockets
        if self.metrics is not None:
            self.metrics.give(component, self._metrics_slot)

        async def start() -> None:
            import asyncio
            try:
                await component.start()
            except Exception as e:
                if type(e).__name__ == "LifespanFailed":  # (the app said why: one line)
                    log.error("worker (pid %d): the app's lifespan startup failed: %s",
                              os.getpid(), e)
                    raise _BootFailed(LIFESPAN_FAILED) from None
                log.exception("worker (pid %d) cannot start serving", os.getpid())
                raise _BootFailed(BOOT_FAILED) from None
            os.write(ready_fd, _READY)  # it serves: the supervisor may retire previous ones
            os.set_blocking(ready_fd, False)  # (later writes: asks for a replacement)
            loop = asyncio.get_running_loop()
            if config.recycles:
                from .recycling import Limits
                Limits(config, component, lambda: _ask(ready_fd)).start(loop, _LIMITS_CHECK)

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
        except _BootFailed as e:
            return e.code
        return 0


class _BootFailed(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _ask(fd: int) -> None:
    """A worker asks for its replacement (the supervisor ignores repeated asks)."""
    try:
        os.write(fd, _REPLACE_ME)
    except OSError:  # (the supervisor is gone: the orphan check stops this worker)
        pass


def _reuse_port_twin(sock: socket.socket, check_only: bool = False) -> Any:
    """A listening socket bound like ``sock`` with ``SO_REUSEPORT`` (inheritable), when
    ``sock`` is a TCP socket with ``SO_REUSEPORT`` set; None otherwise (``check_only``:
    whether it would make one). Raises OSError when the bind fails (e.g. a privileged
    port)."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not sock.getsockopt(
            socket.SOL_SOCKET, socket.SO_REUSEPORT):
        return None
    if check_only:
        return True
    twin = socket.socket(sock.family, socket.SOCK_STREAM)
    try:
        twin.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        twin.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if sock.family == socket.AF_INET6:
            twin.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY,
                            sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
        twin.bind(sock.getsockname())
        twin.listen(1024)
    except OSError:
        twin.close()
        raise
    twin.set_inheritable(True)
    return twin


def _unique(slots: list[list[socket.socket]]) -> list[socket.socket]:
    """Every socket of ``slots`` once (shared sockets appear in every slot)."""
    seen: dict[int, socket.socket] = {}
    for slot in slots:
        for sock in slot:
            seen.setdefault(id(sock), sock)
    return list(seen.values())


def _describe(sock: socket.socket) -> str:
    """Where a given socket listens: ``unix:PATH`` or ``host:port``."""
    name = sock.getsockname()
    if isinstance(name, tuple):
        return f"{name[0]}:{name[1]}"
    return f"unix:{name.decode('latin-1') if isinstance(name, bytes) else name}"
