"""Where app code runs: the worker thread pool, the mailbox back to the event loop, and the
eager start of coroutine handlers.

* :class:`WorkerPool` runs WSGI handlers (and the pulling and closing of their response
  iterables) in daemon threads, up to a fixed number at once; a burst of N jobs runs on N
  threads as soon as they exist.
* :class:`Mailbox` carries results from worker threads to the loop with one wake-up per batch.
* :func:`start_eagerly` runs a Kyoukai-style handler until it first suspends, without a Task
  when it never does.

What runs and when (per connection fairness, timeouts) is decided by the runners in
:mod:`kyoukai_h2fast.apps`; this module only executes.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import queue
import threading
import time
from collections import deque

__all__ = ["WorkerPool", "Mailbox", "start_eagerly"]

log = logging.getLogger("kyoukai_h2fast")


class WorkerPool:
    """A bounded pool of daemon threads running ``fn(*args)`` jobs in order.

    Lighter than ``concurrent.futures`` (no Future per job: results travel back through a
    :class:`Mailbox`), and its threads are daemons, so a handler stuck past the shutdown
    timeout cannot keep the process alive. Threads start on demand: whenever more jobs are
    queued than threads are idle, and fewer than ``size`` exist.

    Jobs have a ``kind`` (``"app"`` for app code that may take long, ``"close"`` for an
    iterable's ``close()``), so shutdown can say truthfully what it abandons.
    """

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._idle = 0
        #: Jobs queued and not yet taken by a thread.
        self._pending = 0
        #: Running jobs by kind.
        self._running: dict[str, int] = {}
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    def submit(self, fn, *args, kind: str = "app") -> None:
        if self._closed:
            raise RuntimeError("the worker pool is shut down")
        thread = None
        with self._lock:
            self._pending += 1
            if self._pending > self._idle and len(self._threads) < self._size:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"{self._name}-{len(self._threads)}")
                self._threads.append(thread)
        self._jobs.put((fn, args, kind))
        if thread is not None:
            thread.start()

    def _work(self) -> None:
        jobs = self._jobs
        lock = self._lock
        running = self._running
        while True:
            with lock:
                self._idle += 1
            job = jobs.get()
            with lock:
                self._idle -= 1
                if job is None:
                    return
                self._pending -= 1
                kind = job[2]
                running[kind] = running.get(kind, 0) + 1
            try:
                job[0](*job[1])
            except BaseException:  # jobs handle their errors; this is the last resort
                log.exception("unhandled error in a WSGI worker thread")
            finally:
                with lock:
                    running[kind] -= 1
                    if not self._pending and not any(running.values()):
                        self._drained.notify_all()

    @property
    def busy(self) -> int:
        """Jobs running now."""
        with self._lock:
            return sum(self._running.values())

    def running(self, kind: str = "app") -> int:
        """Jobs of ``kind`` running now."""
        with self._lock:
            return self._running.get(kind, 0)

    def shutdown(self, timeout: float = 0.0) -> int:
        """Let queued and running jobs finish for up to ``timeout`` seconds, then stop the
        idle threads; returns how many ``"app"`` jobs are still running (abandoned: the
        threads are daemons). Queued jobs not started by then are dropped."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending or any(self._running.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._drained.wait(left)
            self._closed = True
            abandoned = self._running.get("app", 0)
        try:
            while True:
                self._jobs.get_nowait()
        except queue.Empty:
            pass
        for _ in self._threads:
            self._jobs.put(None)
        return abandoned


class Mailbox:
    """Results from worker threads to the event loop, with one wake-up per batch.

    ``loop.call_soon_threadsafe`` writes to the loop's self-pipe on every call; under load
    many handlers finish within one loop iteration, so posts are queued and only the first
    of a batch wakes the loop. (A post racing with a drain at worst schedules one extra,
    empty drain; none is lost, because ``_drain`` clears the flag before it drains.)
    """

    def __init__(self, loop) -> None:
        self._loop = loop
        self._items: deque = deque()
        self._scheduled = False

    def post(self, callback, *args) -> None:
        self._items.append((callback, args))
        if not self._scheduled:
            self._scheduled = True
            try:
                self._loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop closed during shutdown: drop it
                pass

    def _drain(self) -> None:
        self._scheduled = False
        items = self._items
        while items:
            callback, args = items.popleft()
            try:
                callback(*args)
            except Exception:
                log.exception("error handing a worker result to the connection")


def start_eagerly(loop, coro):
    """Run ``coro`` now until it first suspends; returns None if it finished, else the Task
    that completes it (what Python 3.12 calls an eager task). Most handlers never suspend:
    this saves a Task and a loop iteration per request. Each call gets its own context copy.
    """
    context = contextvars.copy_context()
    try:
        yielded = context.run(coro.send, None)
    except StopIteration:
        return None
    if getattr(yielded, "_asyncio_future_blocking", None):
        yielded._asyncio_future_blocking = False  # taken at once, as a Task does
    return context.run(loop.create_task, _resume(coro, yielded))


async def _resume(coro, yielded):
    """Drive a started coroutine to its end the way a Task would."""
    while True:
        error = None
        try:
            if yielded is None:  # a bare yield (asyncio.sleep(0)): give the loop a turn
                await asyncio.sleep(0)
            elif getattr(yielded, "_asyncio_future_blocking", None) is not None:
                try:
                    await yielded  # wait for it; the coroutine reads its outcome itself
                except asyncio.CancelledError:
                    if not yielded.cancelled():
                        raise
                except BaseException:
                    pass
            else:
                error = RuntimeError(f"bad yield from a coroutine: {yielded!r}")
        except asyncio.CancelledError as cancel:  # we were cancelled: cancel the coroutine
            error = cancel
        try:
            yielded = coro.send(None) if error is None else coro.throw(error)
        except StopIteration:
            return
        if getattr(yielded, "_asyncio_future_blocking", None):
            yielded._asyncio_future_blocking = False
