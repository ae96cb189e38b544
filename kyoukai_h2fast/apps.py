"""App adapters: how a request reaches a Kyoukai-style app or a WSGI app, and back.

Two kinds are detected (:func:`detect_kind`):

* **Kyoukai-style**: an object with ``request_class`` and a coroutine method
  ``process_request(request, ctx)`` returning a werkzeug ``Response`` (``finalize()`` is
  called once at start when present). It runs as a task on the event loop.
* **WSGI** (PEP 3333): any other callable. By default it runs in a thread pool, so a blocking
  app stalls no other stream; with ``wsgi_threads=0`` it runs inline on the loop.

When the app starts. Thread-pool apps start as soon as the request headers arrive and may read
the body as it streams in (reads block in the worker). Apps on the loop cannot block, so they
start when the body is complete, or earlier when the body fills half the stream window (then a
``read()`` beyond what has arrived raises ``BodyNotReadyError`` and ``await
wsgi_input.read_async()`` must be used); that keeps both the memory per stream and the
flow-control windows bounded.

Responses go to :meth:`H2KyoukaiProtocol.respond` as first chunks plus the rest of the app
iterator, pulled on demand (in the worker thread for thread-pool apps). ``close()`` on the app
iterable is always called, where the iterable runs.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import queue
import sys
import threading
from collections import deque

__all__ = ["detect_kind", "make_runner", "KyoukaiRunner", "WSGIRunner", "WorkerPool"]

log = logging.getLogger("kyoukai_h2fast")


def detect_kind(app) -> str:
    """``"kyoukai"`` or ``"wsgi"``; TypeError for anything else."""
    process = getattr(app, "process_request", None)
    if process is not None and hasattr(app, "request_class"):
        if inspect.iscoroutinefunction(process):
            return "kyoukai"
        raise TypeError("a Kyoukai-style app needs `async def process_request(request, ctx)`")
    if callable(app):
        return "wsgi"
    raise TypeError(f"{type(app).__name__!r} is neither a WSGI callable nor a Kyoukai-style "
                    "app (request_class + async process_request)")


def make_runner(app, wsgi_threads: int):
    kind = detect_kind(app)
    return KyoukaiRunner(app) if kind == "kyoukai" else WSGIRunner(app, wsgi_threads)


def _first_chunks(app_iter, greedy: int = 0):
    """Pull until the first non-empty chunk (PEP 3333: headers go out with it), and on, up to
    ``greedy`` bytes, for iterables that run on the event loop anyway (so that a short body
    goes out in one pass, with END_STREAM on its last DATA frame).

    Returns ``(chunks, rest_iterator_or_None, close_or_None)``; when the iterable is
    exhausted here its ``close()`` has been called already.
    """
    close = getattr(app_iter, "close", None)
    if type(app_iter) is list or type(app_iter) is tuple:
        return app_iter, None, close
    it = iter(app_iter)
    chunks = []
    size = 0
    try:
        for chunk in it:
            if chunk:
                chunks.append(chunk)
                size += len(chunk)
                if size > greedy:
                    return chunks, it, close
    except BaseException:
        _safe_close(close)
        raise
    _safe_close(close)
    return chunks, None, None


#: Bytes an app iterable running on the loop is pulled for before the first send.
_GREEDY_BYTES = 64 * 1024


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


def _safe_close(close) -> None:
    if close is not None:
        try:
            close()
        except Exception:
            log.exception("app iterable close() failed")


class WorkerPool:
    """A fixed-size pool of daemon threads running ``fn(*args)`` jobs in order.

    Lighter than ``concurrent.futures`` (no Future per job: results travel back with
    ``loop.call_soon_threadsafe``), and its threads are daemons, so a handler stuck past the
    shutdown timeout cannot keep the process alive. Threads start on demand.
    """

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._idle = 0
        self._busy = 0
        self._closed = False

    def submit(self, fn, *args) -> None:
        if self._closed:
            raise RuntimeError("the worker pool is shut down")
        self._jobs.put((fn, args))
        with self._lock:
            spawn = self._idle == 0 and len(self._threads) < self._size
        if spawn:
            thread = threading.Thread(target=self._work, daemon=True,
                                      name=f"{self._name}-{len(self._threads)}")
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        jobs = self._jobs
        lock = self._lock
        while True:
            with lock:
                self._idle += 1
            job = jobs.get()
            with lock:
                self._idle -= 1
                self._busy += 1
            try:
                if job is None:
                    return
                job[0](*job[1])
            except BaseException:  # jobs handle their errors; this is the last resort
                log.exception("unhandled error in a WSGI worker thread")
            finally:
                with lock:
                    self._busy -= 1

    @property
    def busy(self) -> int:
        """Jobs running now."""
        return self._busy

    def shutdown(self) -> None:
        """Drop queued jobs, let idle threads exit; running jobs are not waited for."""
        self._closed = True
        try:
            while True:
                self._jobs.get_nowait()
        except queue.Empty:
            pass
        for _ in self._threads:
            self._jobs.put(None)


class KyoukaiRunner:
    """Runs a Kyoukai-style app as a task on the event loop."""

    kind = "kyoukai"
    multithread = False
    #: Apps on the loop wait for the body (see the module docstring).
    dispatch_early = False

    def __init__(self, app) -> None:
        self.app = app
        self.errors = sys.stderr

    def start(self) -> None:
        finalize = getattr(self.app, "finalize", None)
        if callable(finalize):
            finalize()

    def shutdown(self) -> None:
        pass

    def dispatch(self, protocol, state) -> None:
        state.task = start_eagerly(protocol.loop, self._run(protocol, state))

    async def _run(self, protocol, state) -> None:
        environ = state.environ
        try:
            request = self.app.request_class(environ)
            response = await self.app.process_request(request, protocol.parent_context)
            app_iter = response(environ, state.start_response)
            chunks, rest, close = _first_chunks(app_iter, _GREEDY_BYTES)
        except asyncio.CancelledError:
            return
        except Exception:
            log.exception("app raised while handling stream %d", state.stream_id)
            protocol.respond_error(state)
            return
        finally:
            state.task = None
        protocol.respond(state, chunks, body_iter=rest, close=close)


class WSGIRunner:
    """Runs a WSGI app in a thread pool (``threads`` > 0) or inline on the loop."""

    kind = "wsgi"

    def __init__(self, app, threads: int) -> None:
        self.app = app
        self.errors = sys.stderr
        self.threads = threads
        self.multithread = threads > 0
        self.dispatch_early = threads > 0
        self.executor: WorkerPool | None = None
        self.mailbox: Mailbox | None = None

    def start(self) -> None:
        """Create the pool (called on the running loop that will serve)."""
        if self.threads and self.executor is None:
            self.executor = WorkerPool(self.threads, "kyoukai-h2fast-wsgi")
            self.mailbox = Mailbox(asyncio.get_running_loop())

    def shutdown(self) -> None:
        if self.executor is not None:
            busy = self.executor.busy
            if busy:
                log.warning("abandoning %d WSGI handler(s) still running after the shutdown "
                            "timeout", busy)
            self.executor.shutdown()
            self.executor = None

    # -- dispatch ---------------------------------------------------------------------------
    def dispatch(self, protocol, state) -> None:
        if self.executor is None:
            self._run_inline(protocol, state)
            return
        state.enable_thread_reads()
        self.executor.submit(self._run_in_thread, protocol, state)

    def _run_inline(self, protocol, state) -> None:
        try:
            chunks, rest, close = _first_chunks(self.app(state.environ, state.start_response),
                                                _GREEDY_BYTES)
        except Exception:
            log.exception("app raised while handling stream %d", state.stream_id)
            protocol.respond_error(state)
            return
        protocol.respond(state, chunks, body_iter=rest, close=close)

    def _run_in_thread(self, protocol, state) -> None:
        try:
            chunks, rest, close = _first_chunks(self.app(state.environ, state.start_response))
        except Exception:
            log.exception("app raised while handling stream %d", state.stream_id)
            self.mailbox.post(protocol.respond_error, state)
            return
        self.mailbox.post(functools.partial(protocol.respond, state, chunks, body_iter=rest,
                                            in_thread=True, close=close))

    # -- streaming bodies -----------------------------------------------------------------------
    def pull_in_thread(self, protocol, state) -> None:
        self.executor.submit(self._pull, protocol, state, state.body_iter, state.iter_close)

    def _pull(self, protocol, state, it, close) -> None:
        post = self.mailbox.post
        try:
            for chunk in it:
                if chunk:
                    post(protocol.pulled, state, (chunk,), False)
                    return
        except Exception as e:
            _safe_close(close)
            post(protocol.pulled, state, (), True, e, True)
            return
        _safe_close(close)
        post(protocol.pulled, state, (), True, None, True)

    def close_in_thread(self, close) -> None:
        executor = self.executor
        if executor is None:
            _safe_close(close)
        else:
            try:
                executor.submit(_safe_close, close)
            except RuntimeError:  # shutting down: close it here
                _safe_close(close)
