"""App adapters: how a request reaches a Kyoukai-style app or a WSGI app, and back.

Two kinds are detected (:func:`detect_kind`):

* **Kyoukai-style**: an object with ``request_class`` and a coroutine method
  ``process_request(request, ctx)`` returning a werkzeug ``Response`` (``finalize()`` is
  called once at start when present). It runs as a task on the event loop.
* **WSGI** (PEP 3333): any other callable. By default it runs in a thread pool, so a blocking
  app stalls no other stream; with ``wsgi_threads=0`` it runs inline on the loop.

When the app starts. Thread-pool apps start as soon as the request headers arrive and may read
the body as it streams in (reads block in the worker, at most the body timeout). Apps on the
loop cannot block, so they start when the body is complete (the protocol spools it); apps that
opt in to streaming (``stream_request_bodies``) start when half the stream window is buffered
and read with ``await wsgi_input.read_async()``.

When an app raises, a client that went away (:class:`~kyoukai_h2fast.errors.ClientDisconnected`)
or stopped sending its body (:class:`~kyoukai_h2fast.errors.BodyTimeoutError`) is logged in one
short, rate-limited line; any other exception is the app's own and is logged with its traceback
(the client gets a plain 500).

Responses go to :meth:`H2KyoukaiProtocol.respond` as first chunks plus the rest of the app
iterator, pulled on demand (in the worker thread for thread-pool apps). ``close()`` on the app
iterable is always called, where the iterable runs.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .errors import BodyTimeoutError, ClientDisconnected
from .execution import Mailbox, WorkerPool, start_eagerly
from .wzresponse import wsgi_parts

if TYPE_CHECKING:
    from .contracts import Responder
    from .stream import H2State

__all__ = ["detect_kind", "make_runner", "KyoukaiRunner", "WSGIRunner"]

log = logging.getLogger("kyoukai_h2fast")


def detect_kind(app: object) -> str:
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


def make_runner(app: Any, wsgi_threads: int,
                per_connection: int = 0) -> KyoukaiRunner | WSGIRunner:
    kind = detect_kind(app)
    if kind == "kyoukai":
        return KyoukaiRunner(app)
    return WSGIRunner(app, wsgi_threads, per_connection)


def _first_chunks(
    app_iter: Iterable[bytes], greedy: int = 0,
) -> tuple[Iterable[bytes], Iterator[bytes] | None, Callable[[], object] | None]:
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
    chunks: list[bytes] = []
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


def _safe_close(close: Callable[[], object] | None) -> None:
    if close is not None:
        try:
            close()
        except Exception:
            log.exception("app iterable close() failed")


class _ClientGoneLog:
    """Logs "the client went away while the app read the body" briefly (no traceback), at
    most ``per_second`` lines a second, then one line saying how many were left out: any
    client can cause one, so it must not be a route to flood the log."""

    def __init__(self, per_second: int = 10) -> None:
        self._per_second = per_second
        self._window = 0
        self._count = 0
        self._suppressed = 0

    def __call__(self, error: BaseException) -> None:
        now = int(time.monotonic())
        if now != self._window:
            if self._suppressed:
                log.info("%d more requests ended early (client aborts or resets)",
                         self._suppressed)
            self._window, self._count, self._suppressed = now, 0, 0
        self._count += 1
        if self._count <= self._per_second:
            log.info("request ended early: %s", error)
        else:
            self._suppressed += 1


_client_gone = _ClientGoneLog()


def _app_failed(responder: Responder, state: H2State, error: BaseException,
                post: Callable[..., None] | None = None) -> None:
    """An app raised: a client abort or a body timeout is logged briefly (the stream is gone
    or answered 408); anything else is the app's error, logged with its traceback (500)."""
    if isinstance(error, ClientDisconnected):
        _client_gone(error)
        status = 0
    elif isinstance(error, BodyTimeoutError):
        _client_gone(error)
        status = 408
    else:
        log.error("app raised while handling stream %d", state.stream_id,
                  exc_info=(type(error), error, error.__traceback__))
        status = 500
    if status:
        if post is None:
            responder.respond_error(state, status)
        else:
            post(responder.respond_error, state, status)


class KyoukaiRunner:
    """Runs a Kyoukai-style app as a task on the event loop."""

    kind = "kyoukai"
    multithread = False
    #: Apps on the loop wait for the body (see the module docstring).
    dispatch_early = False

    def __init__(self, app: Any) -> None:
        self.app = app
        self.errors = sys.stderr

    def start(self) -> None:
        finalize = getattr(self.app, "finalize", None)
        if callable(finalize):
            finalize()

    async def drain(self, deadline: float) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def hand_over(self) -> None:
        """Nothing to hand over: the handlers run on the loop."""

    def forget(self, responder: Responder) -> None:
        pass

    def dispatch(self, responder: Responder, state: H2State) -> None:
        state.task = start_eagerly(responder.loop, self._run(responder, state))

    async def _run(self, responder: Responder, state: H2State) -> None:
        environ = state.environ
        try:
            request = self.app.request_class(environ)
            response = await self.app.process_request(request, responder.parent_context)
            parts = wsgi_parts(response)
            rest: Iterator[bytes] | None
            close: Callable[[], object] | None
            chunks: Iterable[bytes]
            if parts is not None:  # what werkzeug's WSGI path gives, without running it
                state._emit_status, state._emit_headers, chunks = parts
                rest = close = None
            else:
                app_iter = response(environ, state.start_response)
                chunks, rest, close = _first_chunks(app_iter, _GREEDY_BYTES)
        except asyncio.CancelledError:
            return
        except Exception as e:
            _app_failed(responder, state, e)
            return
        finally:
            state.task = None
        responder.respond(state, chunks, body_iter=rest, close=close)


class WSGIRunner:
    """Runs a WSGI app in a thread pool (``threads`` > 0) or inline on the loop.

    Fairness lives in the pool (:class:`~kyoukai_h2fast.execution.WorkerPool`): jobs of the
    connections take free threads in turn, a handler waiting for its client's body bytes
    does not hold a thread's slot, and ``per_connection`` (0: no limit) optionally caps the
    handlers one connection runs at once. A job whose stream is gone before its turn does not
    run.
    """

    kind = "wsgi"

    def __init__(self, app: Any, threads: int, per_connection: int = 0) -> None:
        self.app = app
        self.errors = sys.stderr
        self.threads = threads
        self.multithread = threads > 0
        self.dispatch_early = threads > 0
        self.per_connection = per_connection
        self.executor: WorkerPool | None = None
        self.mailbox: Mailbox | None = None

    def start(self) -> None:
        """Create the pool (called on the running loop that will serve)."""
        if not self.threads:
            # one call less per request: the instance attribute shadows the method
            self.dispatch = self._run_inline  # type: ignore[method-assign]
        if self.threads and self.executor is None:
            self.executor = WorkerPool(self.threads, "kyoukai-h2fast-wsgi",
                                       per_owner=self.per_connection)
            self.mailbox = Mailbox(asyncio.get_running_loop())

    async def drain(self, deadline: float) -> None:
        """Wait (until the loop time ``deadline``) for the pool's jobs, while their results
        still reach the loop (so iterables pulled in threads get closed)."""
        executor = self.executor
        loop = asyncio.get_running_loop()
        while executor is not None and executor.busy and loop.time() < deadline:
            await asyncio.sleep(0.02)

    def hand_over(self) -> None:
        """The loop is busy: let a worker thread start a job waiting for the GIL
        (:meth:`~kyoukai_h2fast.execution.WorkerPool.hand_over`)."""
        executor = self.executor
        if executor is not None:
            executor.hand_over()

    def shutdown(self) -> None:
        if self.executor is not None:
            # (the server's shutdown drained them up to its deadline already)
            abandoned = self.executor.shutdown(timeout=0.0)
            if abandoned:
                log.warning("abandoning %d WSGI handler(s) still running after the shutdown "
                            "timeout", abandoned)
            self.executor = None

    # -- dispatch ---------------------------------------------------------------------------
    def dispatch(self, responder: Responder, state: H2State) -> None:
        if self.executor is None:
            self._run_inline(responder, state)
            return
        state.enable_thread_reads()
        self._submit(responder, self._run_in_thread, responder, state)

    def _submit(self, responder: Responder, fn: Callable[..., None], *args: Any) -> None:
        executor = self.executor
        try:
            if executor is None:
                raise RuntimeError("the worker pool is shut down")
            executor.submit(fn, *args, owner=responder)
        except RuntimeError:  # shut down: nothing more runs; an iterable is still closed
            if fn == self._pull:
                _safe_close(args[3])
                args[1].iter_close = None

    def _run_inline(self, responder: Responder, state: H2State) -> None:
        try:
            app_iter = self.app(state.environ, state.start_response)
            rest: Iterator[bytes] | None
            close: Callable[[], object] | None
            chunks: Iterable[bytes]
            if type(app_iter) is list:  # the common case: the whole body at once
                chunks, rest, close = app_iter, None, None
            else:
                chunks, rest, close = _first_chunks(app_iter, _GREEDY_BYTES)
        except Exception as e:
            _app_failed(responder, state, e)
            return
        responder.respond(state, chunks, body_iter=rest, close=close)

    def _run_in_thread(self, responder: Responder, state: H2State) -> None:
        environ = state.environ  # (read first: the loop drops it once the stream is gone)
        if environ is None or state.finished:  # gone before a thread was free
            return
        mailbox = self.mailbox
        assert mailbox is not None  # made with the pool this runs in
        post = mailbox.post
        try:
            chunks, rest, close = _first_chunks(self.app(environ, state.start_response))
        except Exception as e:
            _app_failed(responder, state, e, post)
            return
        post(functools.partial(responder.respond, state, chunks, body_iter=rest,
                               in_thread=True, close=close))

    # -- streaming bodies -----------------------------------------------------------------------
    def pull_in_thread(self, responder: Responder, state: H2State) -> None:
        self._submit(responder, self._pull, responder, state, state.body_iter, state.iter_close)

    def _pull(self, responder: Responder, state: H2State, it: Iterator[bytes],
              close: Callable[[], object] | None) -> None:
        mailbox = self.mailbox
        assert mailbox is not None  # made with the pool this runs in
        post = mailbox.post
        if state.finished:  # the stream went away before a thread was free
            _safe_close(close)
            post(responder.pulled, state, (), True, None, True)
            return
        try:
            for chunk in it:
                if chunk:
                    post(responder.pulled, state, (chunk,), False)
                    return
        except Exception as e:
            _safe_close(close)
            post(responder.pulled, state, (), True, e, True)
            return
        _safe_close(close)
        post(responder.pulled, state, (), True, None, True)

    def forget(self, responder: Responder) -> None:
        """The connection is gone: drop its jobs still waiting for a thread (closing the
        iterables they would have pulled)."""
        if self.executor is None:
            return
        for fn, args, _, _ in self.executor.forget(responder):
            if fn == self._pull:
                self.close_in_thread(args[3])
                args[1].iter_close = None

    def close_in_thread(self, close: Callable[[], object] | None) -> None:
        if close is None:
            return
        executor = self.executor
        if executor is None:
            _safe_close(close)
        else:
            try:
                executor.submit(_safe_close, close, kind="close")
            except RuntimeError:  # shutting down: close it here
                _safe_close(close)
