"""App adapters: how a request reaches a Kyoukai-style app or a WSGI app, and back.

Three kinds are detected (:func:`detect_kind`; ``--interface`` forces one):

* **Kyoukai-style**: an object with ``request_class`` and a coroutine method
  ``process_request(request, ctx)`` returning a werkzeug ``Response`` (``finalize()`` is
  called once at start when present). It runs as a task on the event loop.
* **ASGI 3**: an ``async def app(scope, receive, send)`` or an object whose ``__call__`` is one
  (three positional parameters): :mod:`kyoukai_h2fast.asgi.runner`.
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
iterator, pulled on demand. ``close()`` on the app iterable is always called, where the
iterable runs.

Where WSGI code runs. Each request gets its own ``contextvars.Context`` (a copy of the loop's,
taken at dispatch, as an asyncio task does), and the app call, every ``next()`` of its iterable
and its ``close()`` run in it, on one thread (thread-locals and per-thread database
connections stay valid), as other WSGI servers do:

* **thread pool**: one pool job owns the request to the end. It calls the app, posts the first
  chunks, and, if the response streams, parks (holding its thread but no pool slot) until the
  loop asks for the next chunk (:meth:`WSGIRunner.pull_in_thread`: the job goes on in its
  connection's turn) or gives the response up (the stream is done, reset or gone, or the
  server shuts down: the ``close`` it was handed wakes the job, which closes the iterable and
  returns). A response waiting for a slow client thus holds a thread, not a slot.
* **inline**: on the loop's thread; the iterable handed to the protocol runs each ``next()``
  and ``close()`` in the request's context.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from contextvars import Context, copy_context
from typing import TYPE_CHECKING, Any

from ..errors import BodyTimeoutError, ClientDisconnected, RateLimitedLog
from .iterables import safe_close as _safe_close
from .pool import Mailbox, Resumable, WorkerPool, blocking, start_eagerly
from .werkzeug_fast import request_factory, wsgi_parts

if TYPE_CHECKING:
    from ..contracts import Responder, Runner
    from ..wsgi.request_state import H2State

__all__ = ["INTERFACES", "detect_kind", "make_runner", "KyoukaiRunner", "WSGIRunner"]

log = logging.getLogger("kyoukai_h2fast")


#: The values of ``--interface`` (``auto``: :func:`detect_kind` decides).
INTERFACES = ("auto", "asgi", "wsgi", "kyoukai")


def detect_kind(app: object, interface: str = "auto") -> str:
    """``"kyoukai"``, ``"asgi"`` or ``"wsgi"``; TypeError for anything else. ``interface``
    other than ``"auto"`` forces the kind (the app must still be callable)."""
    if interface not in INTERFACES:
        raise TypeError(f"unknown interface {interface!r} (one of {', '.join(INTERFACES)})")
    process = getattr(app, "process_request", None)
    if interface == "kyoukai" or interface == "auto" and process is not None \
            and hasattr(app, "request_class"):
        if process is not None and inspect.iscoroutinefunction(process):
            return "kyoukai"
        raise TypeError("a Kyoukai-style app needs `async def process_request(request, ctx)`")
    if interface == "asgi":
        if not callable(app):
            raise TypeError(f"{type(app).__name__!r} is not an ASGI app (not callable)")
        return "asgi"
    if interface == "auto":
        from ..asgi import is_asgi_app
        if is_asgi_app(app):
            return "asgi"
    if callable(app):
        return "wsgi"
    raise TypeError(f"{type(app).__name__!r} is neither a WSGI callable nor a Kyoukai-style "
                    "app (request_class + async process_request) nor an ASGI app")


def make_runner(app: Any, wsgi_threads: int, per_connection: int = 0,
                interface: str = "auto", shutdown_timeout: float = 10.0) -> Runner:
    """The runner for ``app``'s kind (see :func:`detect_kind`): WSGI apps in a pool of
    ``wsgi_threads`` threads (0: inline on the loop), ``per_connection`` handlers of one
    connection at once at most (0: no limit); ASGI apps on the loop
    (:class:`~kyoukai_h2fast.asgi.runner.ASGIRunner`)."""
    kind = detect_kind(app, interface)
    if kind == "kyoukai":
        return KyoukaiRunner(app)
    if kind == "asgi":
        from ..asgi.runner import ASGIRunner
        return ASGIRunner(app, shutdown_timeout=shutdown_timeout)
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


#: "The client went away while the app read the body", briefly (no traceback) and at a bounded
#: rate: any client can cause one, so it must not be a route to flood the log.
_client_gone = RateLimitedLog("%d more requests ended early (client aborts or resets)")


class _InContext:
    """An app iterator pulled on the event loop whose every ``next()`` runs in its request's
    context (see the module docstring)."""

    __slots__ = ("_run", "_it")

    def __init__(self, context: Context, it: Iterator[bytes]) -> None:
        self._run = context.run
        self._it = it

    def __iter__(self) -> _InContext:
        return self

    def __next__(self) -> bytes:
        return self._run(next, self._it)


def _app_failed(responder: Responder, state: H2State, error: BaseException,
                post: Callable[..., None] | None = None) -> None:
    """An app raised: a client abort or a body timeout is logged briefly (the stream is gone
    or answered 408); anything else is the app's error, logged with its traceback (500)."""
    if isinstance(error, ClientDisconnected):
        _client_gone("request ended early on %s: %s", state.describe(), error)
        status = 0
    elif isinstance(error, BodyTimeoutError):
        _client_gone("request body timed out on %s: %s", state.describe(), error)
        status = 408
    else:
        log.error("app raised on %s", state.describe(),
                  exc_info=(type(error), error, error.__traceback__))
        status = 500
    if status:
        if post is None:
            responder.respond_error(state, status)
        else:
            post(responder.respond_error, state, status)


class OnLoopRunner:
    """What the runners of apps that run on the event loop (Kyoukai-style, ASGI) share: no
    thread pool to shut down or hand jobs to, nothing per connection to forget, a body the
    server produces itself (a static file's blocks) pulled on the loop, and an iterable the
    connection gives up closed on the loop."""

    multithread = False

    def shutdown(self) -> None:
        pass

    def hand_over(self) -> None:
        """Nothing to hand over: the handlers run on the loop."""

    def forget(self, responder: Responder) -> None:
        pass

    def close_in_thread(self, close: Callable[[], object] | None) -> None:
        """The app runs on the loop: ``close`` (the iterable's, or an ASGI cycle's
        ``given_up``) runs here."""
        _safe_close(close)

    def stream(self, responder: Responder, state: H2State, chunks: list[bytes],
               it: Iterator[bytes], close: Callable[[], object] | None) -> None:
        """A body the server produces itself (a static file's blocks): pulled on the loop."""
        responder.respond(state, chunks, body_iter=it, close=close)


class KyoukaiRunner(OnLoopRunner):
    """Runs a Kyoukai-style app as a task on the event loop."""

    kind = "kyoukai"
    #: Apps on the loop wait for the body (see the module docstring).
    dispatch_early = False

    def __init__(self, app: Any) -> None:
        self.app = app
        self.errors = sys.stderr
        #: The app's ``request_class`` and what builds it (an exact fast builder for werkzeug's
        #: own ``Request``, see :func:`~kyoukai_h2fast.apps.werkzeug_fast.request_factory`).
        self._request_class: Any = None
        self._make_request: Callable[[Any], Any] = self._new_request

    def _new_request(self, environ: Any) -> Any:
        """Build the app's request (its ``request_class`` looked up anew: it may change)."""
        cls = self.app.request_class
        if cls is not self._request_class:
            self._request_class = cls
            self._make_request = request_factory(cls) if isinstance(cls, type) else cls
        return self._make_request(environ)

    def start(self) -> None:
        finalize = getattr(self.app, "finalize", None)
        if callable(finalize):
            finalize()

    async def drain(self, deadline: float) -> None:
        pass

    def pull_in_thread(self, responder: Responder, state: H2State) -> None:
        """Never called: these apps' responses are pulled on the loop (not ``in_thread``)."""
        raise RuntimeError("a Kyoukai-style app's response is not pulled in a worker thread")

    def dispatch(self, responder: Responder, state: H2State) -> None:
        context = copy_context()
        state.task = start_eagerly(responder.loop, self._run(responder, state, context), context)

    async def _run(self, responder: Responder, state: H2State, context: Context) -> None:
        environ = state.environ
        try:
            app = self.app
            request = (self._make_request if app.request_class is self._request_class
                       else self._new_request)(environ)
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
                if rest is not None:
                    # The rest is pulled on the loop after the handler ended: every next()
                    # and close() in the Context the handler ran in (the same object).
                    rest = _InContext(context, rest)
                    if close is not None:
                        close = functools.partial(context.run, close)
        except asyncio.CancelledError:
            return
        except Exception as e:
            _app_failed(responder, state, e)
            return
        finally:
            state.task = None
        if rest is None:
            responder.respond(state, chunks)
        else:  # (pulled once the handler's step is over: its Context is still entered here)
            responder.loop.call_soon(functools.partial(
                responder.respond, state, chunks, body_iter=rest, close=close))


def _stream(job: Resumable, post: Callable[..., None], responder: Responder, state: H2State,
            it: Iterator[bytes], close: Callable[[], object] | None,
            first: bool = False) -> None:
    """The rest of a thread-pool job whose response streams: park; pull a chunk each time the
    loop resumes the job and post it; when the iterable ends or fails, or the loop stops the
    job, close the iterable (here: the request's thread and context) and return.

    With ``first`` (and ``job.prepull`` set before the response was posted) the first chunk
    is pulled at once, without parking: the loop asks for it as soon as the first ones are
    queued anyway (one chunk ahead of the window), and many iterables that are not lists end
    right there (a Flask response: its one chunk, then the end), so the response ends
    without a round trip to the loop and back. The loop takes its first ask as answered
    (:meth:`WSGIRunner.pull_in_thread`)."""
    pulled: Callable[..., None] = responder.pulled
    error: BaseException | None = None
    while first or job.park():
        if first:
            first = False
            pulled = functools.partial(_prepulled, job, responder)
        else:
            pulled = responder.pulled
        if job.stopped or state.finished:  # given up while it waited for its turn
            break
        try:
            chunk = next(it)
            while not chunk:
                chunk = next(it)
        except StopIteration:
            break
        except Exception as e:
            error = e
            break
        post(pulled, state, (chunk,), False)
    else:  # stopped while parked: the loop no longer wants it
        _safe_close(close)
        return
    _safe_close(close)
    post(pulled, state, (), True, error, True)


def _prepulled(job: Resumable, responder: Responder, state: H2State, chunks: tuple,
               done: bool, error: BaseException | None = None, closed: bool = False) -> None:
    """On the loop: what a job pulled before it was asked (see :func:`_stream`), given to the
    protocol if the response still streams (not cut, refused, or a HEAD's: then the job
    was stopped, and closes the iterable)."""
    job.prepull = False
    if state.body_iter is not None:
        responder.pulled(state, chunks, done, error, closed)


class WSGIRunner:
    """Runs a WSGI app in a thread pool (``threads`` > 0) or inline on the loop, each request
    in a context of its own (see the module docstring).

    Fairness lives in the pool (:class:`~kyoukai_h2fast.apps.pool.WorkerPool`): jobs of the
    connections take free threads in turn, a handler waiting for its client's body bytes or
    (streaming) for its client to take the last chunk does not hold a thread's slot, and
    ``per_connection`` (0: no limit) optionally caps the handlers one connection runs at
    once. A job whose stream is gone before its turn does not run.
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
            loop = asyncio.get_running_loop()
            self.mailbox = Mailbox(loop)
            self.executor = WorkerPool(self.threads, "kyoukai-h2fast-wsgi",
                                       per_owner=self.per_connection, loop=loop,
                                       mailbox=self.mailbox)

    async def drain(self, deadline: float) -> None:
        """Wait (until the loop time ``deadline``) for the pool's jobs, while their results
        still reach the loop (so responses that end meanwhile stop their jobs, which close
        their iterables)."""
        executor = self.executor
        loop = asyncio.get_running_loop()
        while executor is not None and executor.busy and loop.time() < deadline:
            await asyncio.sleep(0.02)

    def hand_over(self) -> None:
        """The loop is busy: let a worker thread start a job waiting for the GIL
        (:meth:`~kyoukai_h2fast.apps.pool.WorkerPool.hand_over`)."""
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
        executor = self.executor
        if executor is None:
            self._run_inline(responder, state)
            return
        state.enable_thread_reads(blocking)
        try:
            executor.submit(self._run_in_thread, responder, state,
                            copy_context(), owner=responder)
        except RuntimeError:  # shut down: nothing more runs (the stream goes with its
            pass              # connection)

    def _run_inline(self, responder: Responder, state: H2State) -> None:
        context = copy_context()
        try:
            app_iter = context.run(self.app, state.environ, state.start_response)
            rest: Iterator[bytes] | None
            close: Callable[[], object] | None
            chunks: Iterable[bytes]
            if type(app_iter) is list:  # the common case: the whole body at once
                chunks, rest, close = app_iter, None, None
            else:
                chunks, rest, close = context.run(_first_chunks, app_iter, _GREEDY_BYTES)
                if rest is not None:
                    rest = _InContext(context, rest)
                    if close is not None:
                        close = functools.partial(context.run, close)
        except Exception as e:
            _app_failed(responder, state, e)
            return
        responder.respond(state, chunks, body_iter=rest, close=close)

    def _run_in_thread(self, responder: Responder, state: H2State,
                       context: Context) -> None:
        """The pool job of a request: all of it, in the request's context."""
        context.run(self._serve, responder, state)

    def _serve(self, responder: Responder, state: H2State) -> None:
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
        if rest is None:  # (then it is closed already)
            post(functools.partial(responder.respond, state, chunks, in_thread=True))
            return
        # A streaming response: this job keeps the iterable and pulls it when the loop asks.
        executor = self.executor
        assert executor is not None  # (this runs in it)
        job = state.job = Resumable(executor, responder)
        job.prepull = True  # (the loop may clear it before _stream starts)
        post(functools.partial(responder.respond, state, chunks, body_iter=rest,
                               in_thread=True, close=job.stop))
        _stream(job, post, responder, state, rest, close, first=True)

    # -- streaming bodies -----------------------------------------------------------------------
    def pull_in_thread(self, responder: Responder, state: H2State) -> None:
        """Let the job that owns ``state``'s response pull its next chunk (in its connection's
        turn for a pool slot)."""
        job = state.job
        if job is not None:
            if job.prepull:  # the first ask: the job pulls that chunk already (see _stream)
                job.prepull = False
                return
            job.resume()

    def stream(self, responder: Responder, state: H2State, chunks: list[bytes],
               it: Iterator[bytes], close: Callable[[], object] | None) -> None:
        """A body the server produces itself (a static file's blocks), sent as an app's
        streamed response is: pulled by a pool job of its own (blocking reads stay off the
        loop), or on the loop when apps run inline."""
        executor = self.executor
        if executor is None:
            responder.respond(state, chunks, body_iter=it, close=close)
            return
        try:
            executor.submit(self._stream_job, responder, state, chunks, it, close,
                            owner=responder)
        except RuntimeError:  # shut down: nothing more runs
            _safe_close(close)

    def _stream_job(self, responder: Responder, state: H2State, chunks: list[bytes],
                    it: Iterator[bytes], close: Callable[[], object] | None) -> None:
        if state.finished:  # gone before a thread was free
            _safe_close(close)
            return
        mailbox, executor = self.mailbox, self.executor
        assert mailbox is not None and executor is not None  # (this runs in the pool)
        job = state.job = Resumable(executor, responder)
        mailbox.post(functools.partial(responder.respond, state, chunks, body_iter=it,
                                       in_thread=True, close=job.stop))
        _stream(job, mailbox.post, responder, state, it, close)

    def forget(self, responder: Responder) -> None:
        """The connection is gone: drop its jobs still waiting for a thread (their apps never
        ran; its streaming responses are stopped as its streams are dropped)."""
        if self.executor is not None:
            self.executor.forget(responder)

    def close_in_thread(self, close: Callable[[], object] | None) -> None:
        """The connection gives a streaming response up: ``close`` is the ``stop`` of the job
        that owns it (see :meth:`_serve`), which wakes the job to close the iterable on its
        thread, in its context. It never blocks."""
        if close is not None:
            _safe_close(close)
