"""HTTP/1.1 connections (RFC 9112): the same apps, runners and environ rules as HTTP/2.

:class:`H1Protocol` is an asyncio protocol for one HTTP/1.x connection. Requests are read by
:class:`~kyoukai_h2fast.http1.parser.RequestReader` (httptools), each as an
:class:`~kyoukai_h2fast.wsgi.request_state.H2State` (its body is ``wsgi.input``, its
``start_response`` collects the response) that goes to the server's runner exactly like an HTTP/2
stream: the protocol implements the :class:`~kyoukai_h2fast.contracts.Responder` contract
(``respond``, ``respond_error``, ``pulled``, ``body_consumed``, ``loop``, ``parent_context``) and
what ``H2State`` reads from its connection (``loop_thread``, ``body_timeout``). Response heads and
body framing are :mod:`kyoukai_h2fast.http1.wire`; this module owns the connection: requests in
turn, responses, flow of reading, timeouts and shutdown.

Theory of operation. One request is *current*: its app runs and its response is written.
Requests that arrive behind it (pipelining) wait in ``_pipeline`` with their bodies buffered,
and reading stops until the current response is done, so memory stays bounded by one read
plus the body window. Each response ends in order; the next request then becomes current.

* Keep-alive by default for HTTP/1.1, on ``connection: keep-alive`` for HTTP/1.0; the
  connection closes after a response when the client or the app asked for it, when the
  request body was not read to its end, on shutdown, and after every error response.
* Request bodies: ``content-length`` or chunked, held as over HTTP/2: *streamed* to apps that
  start at once (thread-pool WSGI; loop apps that opted in with ``stream_request_bodies``,
  which start when half of ``stream_window`` is buffered), counting against ``stream_window``
  until the app consumes them (past it reading pauses: HTTP/1.1's flow control is TCP's); or
  *spooled* for apps on the loop (memory up to ``body_spool_threshold``, then a temporary
  file), which start once the body is complete.
* ``Expect: 100-continue``: ``100 Continue`` as soon as the request is current and passed
  the limits (a body over ``max_body_size`` gets ``413`` instead); other expectations 417.
* Limits: request line + fields over ``max_header_list_size`` (counted as HTTP/2 counts a
  header list: name + value + 32 per field) get 431 (414 for the target alone); a body over
  ``max_body_size`` 413; a malformed request 400; CONNECT 501; a version other than 1.0/1.1
  505. Every one is a complete response followed by a close, never a traceback.
* ``Upgrade`` is ignored (RFC 9110 §7.8: no h2c upgrade, RFC 9113 §3.1), so ``curl --http2``
  on ``http://`` gets HTTP/1.1, except ``Upgrade: websocket`` when the app serves WebSockets
  and no other request is in progress: the connection is then handed over
  (:mod:`kyoukai_h2fast.http1.websocket`; ``_websocket`` is the session). llhttp leaves
  the body of an upgrade request unparsed: a ``content-length`` body is then taken by count;
  a chunked one gets 400.
* Timeouts: a request whose body stops arriving for ``body_timeout`` gets 408 (the
  connection closes if its response started); an idle keep-alive connection, or one whose
  request head stalls, closes after ``idle_timeout``. Shutdown closes idle connections at once
  and the others after their current response.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

from ..apps.iterables import body_chunks as _checked
from ..config import FIRST_REQUEST_GRACE
from ..connection.base import ConnectionBase
from ..errors import BodyTimeoutError, ClientDisconnected
from ..websocket.handshake import is_upgrade_request
from ..wsgi.access_record import AccessRecord, now
from ..wsgi.environ import build_environ
from ..wsgi.request_state import H2State
from .parser import RequestReader
from .websocket import upgrade
from .wire import CONTINUE, error_response, parse_head, response_head
from .wire import Exchange as _Exchange

if TYPE_CHECKING:
    from ..contracts import Runner
    from ..server.accesslog import AccessLog
    from ..server.metrics import Recorder
    from ..websocket.session import WebSocketSession

__all__ = ["H1Protocol"]

log = logging.getLogger("kyoukai_h2fast")

_TERMINATOR = b"0\r\n\r\n"


class H1Protocol(ConnectionBase):
    """An HTTP/1.x server connection (same constructor as the HTTP/2 protocol)."""

    #: How log lines name a request's number on its connection (``H2State.describe``).
    request_label = "HTTP/1.1 request"

    def __init__(self, component: Any, parent_context: Any = None) -> None:
        self.component = component
        self.parent_context = parent_context
        self.config = component.config
        self.runner: Runner = component.runner
        #: Called after each read when apps run in worker threads (see WorkerPool.hand_over).
        self._hand_over = self.runner.hand_over if self.runner.multithread else None
        self.loop = asyncio.get_event_loop()
        self.loop_thread = threading.get_ident()
        #: Seconds a worker thread waits for request body bytes before giving up.
        self.body_timeout = self.config.body_timeout or None
        self._spool = not self.runner.dispatch_early and not (
            self.config.stream_request_bodies
            or getattr(component.app, "stream_request_bodies", False))
        self.access_log: AccessLog | None = getattr(component, "access_log", None)
        self.forwarded = getattr(component, "forwarded", None)
        #: The runner builds its request from the fields, no WSGI environ (ASGI apps without
        #: trusted proxy headers): its ``dispatch_direct``.
        self._direct = self.forwarded is None and getattr(
            type(self.runner), "builds_scope", False)
        #: Request metrics (kyoukai_h2fast.server.metrics.Recorder); None when off.
        self.metrics: Recorder | None = getattr(component, "metrics", None)
        #: True when requests keep a record of their end (for the access log, the metrics).
        self.keeps_records = self.access_log is not None or self.metrics is not None
        #: Set by connection_made(), which asyncio calls before anything else.
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # until then
        self.ip: str | None = None
        self.client_port: int | None = None
        self._reader = RequestReader(self, self.config)
        #: What a request head may take (target + fields, counted as an HTTP/2 header list).
        self._head_limit = self.config.max_header_list_size
        self._base11: dict | None = None
        self._base10: dict | None = None
        # -- responding --
        self._current: _Exchange | None = None
        self._pipeline: deque[_Exchange] = deque()
        self._advancing = False
        self._unconsumed = 0
        self._write_paused = False
        self._reading_paused = False
        self._closing = False
        self._closed = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._last_activity = 0.0
        #: The WebSocket the connection was handed over to (kyoukai_h2fast.http1.websocket).
        self._websocket: WebSocketSession | None = None
        self._websocket_task: asyncio.Task | None = None
        self._ws_app = getattr(component, "websocket_app", None)

    @property
    def open_requests(self) -> int:
        """Requests received and not answered yet: the current one and those pipelined
        behind it (for the metrics; an HTTP/2 connection's open streams)."""
        return (self._current is not None) + len(self._pipeline)

    @property
    def requests_received(self) -> int:
        """Requests read on this connection (the reader's count)."""
        return self._reader.count

    @property
    def base_environ(self) -> dict | None:
        """The per-connection environ constants (HTTP/1.1), as on the HTTP/2 protocol."""
        return self._base11

    # == connection lifecycle =============================================================
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        base = self._opened(transport)
        base["SERVER_PROTOCOL"] = "HTTP/1.1"
        self._base11 = base
        self._base10 = dict(base, SERVER_PROTOCOL="HTTP/1.0")

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()
        if self._websocket is not None:
            self._websocket.connection_lost()
        self.runner.forget(self)
        error = ClientDisconnected("the HTTP/1.1 connection was closed")
        exchanges = [ex for ex in (self._current, self._reader.parsing, *self._pipeline)
                     if ex is not None]
        for ex in exchanges:  # (cut short: the status sent, if any)
            self._ended(ex, ex.framing.status if ex.framing is not None else 0)
        states = {id(ex.state): ex.state for ex in exchanges if ex.state is not None}
        self._current = self._reader.parsing = None
        self._pipeline.clear()
        for state in states.values():
            self._drop(state, error)

    def eof_received(self) -> bool:
        # The client half-closed: answer the complete requests, then close. A request cut
        # short can never complete: close now.
        if self._websocket is not None or self._reader.parsing is not None or (
                self._current is None and not self._pipeline) \
                or self.transport.get_extra_info("ssl_object") is not None:
            return False  # (TLS cannot stay half-open: asyncio would only warn)
        self._closing = True
        self._reader.stopped = True
        return True

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._websocket is not None:
            self._websocket.output_drained()
            return
        self._update_reading()
        ex = self._current
        if ex is not None and ex.framing is not None:
            state = ex.state
            assert state is not None  # a response is written for requests only
            if state.body_iter is not None and not state.pulling:
                self._pull(state)

    def _update_reading(self) -> None:
        """Read unless the transport is full, a body window is full or a request waits."""
        if self._closed or self.transport.is_closing() or self._websocket is not None:
            return
        pause = (self._write_paused or bool(self._pipeline)
                 or self._unconsumed >= self.config.stream_window)
        if pause != self._reading_paused:
            self._reading_paused = pause
            if pause:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def _timeouts(self, now: float, next_check: float) -> float | None:
        """The body timeout of the request being received, then the idle timeout."""
        config = self.config
        if self._websocket is not None:  # its pings tell a dead peer (ws_ping_interval)
            return next_check
        ex = self._reader.parsing
        parsing = ex.state if ex is not None else None  # a request whose body is read
        if ex is not None and parsing is not None and config.body_timeout \
                and not self._reader.in_head and parsing.waiting_for_body:
            deadline = parsing.last_progress + config.body_timeout
            if deadline <= now:
                self._body_timed_out(ex)
                return None
            next_check = min(next_check, deadline)
        idle = config.idle_timeout
        if idle:
            idle_for = now - self._last_activity
            if self._current is None and not self._pipeline and ex is None and idle_for >= idle:
                log.debug("closing idle HTTP/1.1 connection from %s:%s", self.ip,
                          self.client_port)
                self._reader.stopped = True
                self.transport.close()
                return None
            next_check = min(next_check, self._last_activity + idle)
        return next_check

    def _body_timed_out(self, ex: _Exchange) -> None:
        error = BodyTimeoutError(f"no request body bytes for {self.config.body_timeout:g} s")
        state = ex.state
        assert state is not None  # its body was being read
        log.info("request body timed out on %s: %s", state.describe(), error)
        self._reader.stopped = True
        self._reader.parsing = None
        if ex is self._current and not state.headers_sent:
            self._drop(state, error)
            self._send_error(ex, 408)
        else:  # its response started, or it waits behind others: nothing can follow it
            self._drop(state, error)
            self.transport.close()

    def shutdown(self) -> None:
        """Graceful close: now when idle, else after the response in progress; a connection
        whose first request has not come yet gets ``FIRST_REQUEST_GRACE`` for it."""
        if self._closed:
            return
        if self._websocket is not None:
            self._closing = True
            self.loop.create_task(self._websocket.close(1001, "server shutting down"))
            return
        first = not self._closing and self._reader.count == 0
        self._closing = True
        while self._pipeline:  # received, never started: the client may retry them
            ex = self._pipeline.popleft()
            self._ended(ex, 0)
            if ex.state is not None:
                self._drop(ex.state, ClientDisconnected("the server is shutting down"))
        if self._current is None:
            if first:
                self.loop.call_later(FIRST_REQUEST_GRACE, self.shutdown)
                return
            self._reader.stopped = True
            self.transport.close()

    def abort(self) -> None:
        """Close now (shutdown timeout elapsed)."""
        if not self._closed and self.transport is not None:
            self.transport.abort()

    # == receiving ========================================================================
    def data_received(self, data: bytes) -> None:
        if self._websocket is not None:
            self._websocket.feed(data)
            return
        reader = self._reader
        if reader.stopped:
            return
        self._last_activity = reader.now = self.loop.time()
        if self._current is None and reader.parsing is None and not reader.in_head \
                and not reader._raw_left and not self._pipeline:
            # Between requests: a common request head that is all of ``data`` is read in one
            # pass (compiled); anything else goes to the full parser, which has its rules.
            head = parse_head(data, self._head_limit)
            if head is not None:
                try:
                    self._common_request(head)
                except Exception:  # a bug of ours must not take the process down
                    log.exception("internal error on HTTP/1.1 connection from %s:%s", self.ip,
                                  self.client_port)
                    self._reject(500, "")
                if self._hand_over is not None:
                    self._hand_over()
                return
        try:
            rejected = reader.feed(data)
        except Exception:  # a bug of ours must not take the process down
            log.exception("internal error on HTTP/1.1 connection from %s:%s", self.ip,
                          self.client_port)
            rejected = (500, "")
        if rejected is not None:
            self._reject(*rejected)
        if self._hand_over is not None:
            self._hand_over()  # worker threads get the GIL even while the loop is busy

    def _common_request(self, head: tuple) -> None:
        """A request from :func:`~kyoukai_h2fast.http1.wire.parse_head` (complete, without a
        body, nothing before it): what the reader's callbacks, :meth:`_start` and
        :meth:`_dispatch` do for it, in one step."""
        headers, method, target, http10, keep_alive = head
        reader = self._reader
        reader.count += 1
        state = H2State(headers, reader.count, self)
        state.last_progress = reader.now
        state._eof = True  # (no body)
        ex = _Exchange(state, http10, keep_alive,
                       AccessRecord() if self.keeps_records else None)
        ex.method = method
        ex.target = target
        ex.body_done = True
        if not keep_alive:
            reader.stopped = True  # nothing after a request that closes (RFC 9112 §9.6)
        self._current = ex
        self._dispatch(ex)

    # -- what the request reader reports ------------------------------------------------------
    def request_received(self, ex: _Exchange) -> None:
        """A request head: run it now, or after the requests before it (pipelining)."""
        if self._ws_app is not None and self._current is None and not self._pipeline \
                and is_upgrade_request(ex.state.headers) and upgrade(self, ex):
            return
        if not ex.body_done:
            assert ex.state is not None  # the reader reports requests only
            ex.state.spooled = self._spool
        if self._current is None:
            self._start(ex)
        else:
            self._pipeline.append(ex)
            self._update_reading()

    def request_body(self, ex: _Exchange, data: bytes) -> None:
        state = ex.state
        assert state is not None  # the reader reports requests only
        if state.spooled:
            state.spool_data(data, self.config.body_spool_threshold)
            return
        self._unconsumed += len(data)
        state.insert_data(data)
        if self._unconsumed >= self.config.stream_window:
            self._update_reading()
        if (ex is self._current and not state.dispatched
                and state.buffered >= self.config.stream_window // 2):
            self._dispatch(ex)

    def request_complete(self, ex: _Exchange) -> None:
        ex.body_done = True
        state = ex.state
        assert state is not None  # the reader reports requests only
        state.feed_eof()
        if ex is self._current and not state.dispatched:
            self._dispatch(ex)

    # -- requests in turn ---------------------------------------------------------------------
    def _start(self, ex: _Exchange) -> None:
        """Make ``ex`` the current request: answer its rejection, or run its app."""
        self._current = ex
        if ex.reject:
            self._send_error(ex, ex.reject, ex.detail)
            return
        state = ex.state
        assert state is not None  # only rejected exchanges have none
        if ex.expect_continue and not ex.body_done:
            self.transport.write(CONTINUE)
        if ex.body_done or not state.spooled and (
                self.runner.dispatch_early
                or state.buffered >= self.config.stream_window // 2):
            self._dispatch(ex)

    def _dispatch(self, ex: _Exchange) -> None:
        state = ex.state
        assert state is not None  # only rejected exchanges have none, and they never run
        state.dispatched = True
        base = self._base10 if ex.http10 else self._base11
        assert base is not None  # set by connection_made
        if self._direct:
            try:
                self.runner.dispatch_direct(self, state, base)  # type: ignore[attr-defined]
            except Exception:
                log.exception("cannot start the ASGI app for %s", state.describe())
                self.respond_error(state)
            return
        try:
            environ = build_environ(base, state.headers, state)
            if self.forwarded is not None:
                self.forwarded.apply(environ, self.ip)
            state.environ = environ
            state.is_head = ex.method == "HEAD"
        except Exception:
            log.exception("cannot build the WSGI environ for %s", state.describe())
            self.respond_error(state)
            return
        self.runner.dispatch(self, state)

    def _reject(self, status: int, detail: str = "") -> None:
        """Bad input: answer ``status`` in turn (after earlier pipelined responses), close."""
        log.debug("HTTP/1.1 request from %s:%s rejected with %d %s", self.ip,
                  self.client_port, status, detail)
        reader = self._reader
        reader.stopped = True
        ex = reader.parsing
        reader.parsing = None
        state = ex.state if ex is not None else None  # the request being read
        if ex is not None and state is not None and ex is self._current and state.dispatched:
            # The app runs (reading the body): fail its reads, answer or cut the response.
            self._drop(state, ClientDisconnected(f"request rejected with {status}"))
            self.respond_error(state, status)
            return
        rejected = _Exchange(None, False, False, ex.access if ex is not None else
                             AccessRecord() if self.keeps_records else None)
        rejected.reject = status
        rejected.detail = detail
        if ex is not None:
            if state is not None:
                self._drop(state, ClientDisconnected(f"request rejected with {status}"))
            rejected.method, rejected.target = ex.method, ex.target
            rejected.http10 = ex.http10
            if ex is self._current:
                self._current = None
            elif ex in self._pipeline:
                self._pipeline.remove(ex)
        elif reader.url:  # the request line was read: name it in the access log
            rejected.target = reader.url[:200].decode("latin-1")
            rejected.method = reader.method_name()
        if self._current is None:
            self._start(rejected)
        else:
            self._pipeline.append(rejected)
            self._update_reading()

    def _send_error(self, ex: _Exchange, status: int, detail: str = "") -> None:
        """Write a server error response for the current request and close."""
        payload = error_response(status, detail)
        self.transport.write(payload)
        ex.sent = len(payload) - payload.index(b"\r\n\r\n") - 4
        self._ended(ex, status)
        self._current = None
        self._closing = True
        self._reader.stopped = True
        self.transport.close()

    # == responding (the Responder contract) =================================================
    def respond(self, state: H2State, chunks: Iterable[bytes], *,
                body_iter: Iterator[bytes] | None = None, in_thread: bool = False,
                close: Callable[[], object] | None = None) -> None:
        ex = self._current
        if ex is None or ex.state is not state or self._closed or state.finished:
            self._close_iter(close, in_thread)
            return
        try:
            if type(chunks) is list and len(chunks) == 1 and type(chunks[0]) is bytes \
                    and chunks[0] and not state.out:
                checked = chunks  # (the common case: one bytes chunk)
                size = len(chunks[0]) if body_iter is None else None
            else:
                checked = _checked(chunks)
                if state.out:  # output of the legacy write() callable comes first
                    checked = [*state.out, *checked]
                    state.out.clear()
                size = sum(map(len, checked)) if body_iter is None else None
            head, framing = response_head(
                # (None: the app never called start_response; refused there, with the reason)
                state._emit_status,
                state._emit_headers or [], http10=ex.http10,
                is_head=state.is_head, body_size=size,
                keep_alive=ex.keep_alive and ex.body_done and not self._closing)
        except (TypeError, ValueError) as e:
            log.error("app gave an invalid response on %s: %s", state.describe(), e)
            self._close_iter(close, in_thread)
            self.respond_error(state)
            return
        ex.framing = framing
        state.headers_sent = True
        if framing.no_body:
            self._close_iter(close, in_thread)
            self.transport.write(head)
            self._finish(ex)
            return
        if size is not None and close is None and framing.length == size:
            # The whole body, as declared (the common case): one write, done.
            self.transport.write(head + b"".join(checked) if checked else head)
            ex.sent = size
            self._finish(ex)
            return
        state.body_iter = body_iter
        state.iter_in_thread = in_thread
        state.iter_close = close
        if self._write(ex, checked, head) or body_iter is None:
            self._end_iter(state)
            self._finish(ex)
        elif not self._write_paused:
            self._pull(state)

    def respond_error(self, state: H2State, status: int = 500) -> None:
        ex = self._current
        if ex is None or ex.state is not state or self._closed:
            return
        self._close_iter(state.iter_close, state.iter_in_thread)
        state.iter_close = state.body_iter = None
        if state.headers_sent:  # too late for a status: cut the response short
            self._ended(ex, ex.framing.status if ex.framing else status)
            self._current = None
            self._drop(state, ClientDisconnected("the response failed"))
            self.transport.close()
            return
        state.headers_sent = True
        self._drop(state, ClientDisconnected("the response failed"))
        self._send_error(ex, status)

    def pulled(self, state: H2State, chunks: Iterable[bytes], done: bool,
               error: BaseException | None = None, closed: bool = False) -> None:
        ex = self._current
        checked = self._pulled_chunks(state, chunks, error, closed, ex is not None
                                      and ex.state is state and not self._closed)
        if checked is None:
            return
        assert ex is not None  # (current)
        if self._write(ex, checked) or done:
            self._end_iter(state)
            self._finish(ex)
        elif not self._write_paused:
            self._pull(state)

    def respond_file(self, state: H2State, file: Any, offset: int, count: int) -> bool:
        """Zero-copy response (for :mod:`kyoukai_h2fast.apps.static_files`): the head from
        ``start_response`` (with ``count`` as its content-length), then ``count`` bytes of
        ``file`` from ``offset``, by ``sendfile`` from the file to the socket; the file is
        closed after. False, with nothing done, when this connection cannot (TLS, no socket):
        the caller then responds as usual."""
        ex = self._current
        if ex is None or ex.state is not state or self._closed or state.finished \
                or not _can_send_files(self.transport):
            return False
        try:
            head, framing = response_head(
                state._emit_status,  # (set: refused there if not)
                state._emit_headers or [], http10=ex.http10, is_head=state.is_head,
                body_size=None, keep_alive=ex.keep_alive and ex.body_done and not self._closing)
        except (TypeError, ValueError):
            return False
        ex.framing = framing
        state.headers_sent = True
        self.transport.write(head)
        state.task = self.loop.create_task(self._send_file(ex, file, offset, count))
        return True

    async def _send_file(self, ex: _Exchange, file: Any, offset: int, count: int) -> None:
        from ..apps.static_files import send_file
        state = ex.state
        assert state is not None  # a response is sent for requests only
        try:
            ex.sent = await send_file(self.loop, self.transport, file, offset, count)
        except asyncio.CancelledError:  # the connection is gone (_drop)
            return
        except OSError as e:  # the peer went away mid-file
            log.debug("HTTP/1.1 file response to %s:%s cut: %r", self.ip, self.client_port, e)
            self.transport.abort()
            return
        except Exception:  # a bug of ours: the response cannot be completed
            log.exception("HTTP/1.1 file response to %s:%s failed", self.ip, self.client_port)
            self.transport.abort()
            return
        finally:
            file.close()
            state.task = None
        if self._current is ex and not self._closed:
            self._finish(ex)

    def body_consumed(self, state: H2State, size: int) -> None:
        self._unconsumed -= size
        if self._reading_paused and not self._closed:
            self._update_reading()

    # -- writing ------------------------------------------------------------------------------
    def _write(self, ex: _Exchange, chunks: list, head: bytes = b"") -> bool:
        """Frame and write body chunks (after ``head``); True when a declared
        content-length is complete (the rest of the app's iterable is not wanted)."""
        framing = ex.framing
        assert framing is not None  # set by respond() with the head
        parts = [head] if head else []
        complete = False
        for chunk in chunks:
            if framing.length is not None:
                room = framing.length - ex.sent
                if len(chunk) >= room:
                    if len(chunk) > room:
                        log.error("app sent more than its content-length (%d) on %s; the "
                                  "rest is not sent", framing.length,
                                  cast(H2State, ex.state).describe())
                        chunk = chunk[:room]
                    complete = True
                parts.append(chunk)
                ex.sent += len(chunk)
                if complete:
                    break
            elif framing.chunked:
                parts.append(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                ex.sent += len(chunk)
            else:
                parts.append(chunk)
                ex.sent += len(chunk)
        if parts:
            self.transport.write(b"".join(parts) if len(parts) > 1 else parts[0])
        return complete

    def _end_iter(self, state: H2State) -> None:
        """The app iterable is done with (exhausted, or not wanted): close it."""
        state.body_iter = None
        self._close_iter(state.iter_close, state.iter_in_thread)
        state.iter_close = None

    def _pull(self, state: H2State) -> None:
        if state.iter_in_thread:
            state.pulling = True
            self.runner.pull_in_thread(self, state)
            return
        body_iter = state.body_iter
        assert body_iter is not None  # what there is to pull
        try:
            chunk = next(body_iter)
        except StopIteration:
            self.pulled(state, (), done=True)
        except Exception:
            log.exception("app iterator failed on %s", state.describe())
            self.respond_error(state)
        else:
            state.pulling = True
            self.loop.call_soon(self.pulled, state, (chunk,), False)

    def _finish(self, ex: _Exchange) -> None:
        """The response of the current request is complete: log it, then the next one."""
        framing = ex.framing
        state = ex.state
        assert framing is not None and state is not None  # a response was written
        if framing.chunked:
            self.transport.write(_TERMINATOR)
        elif framing.length is not None and ex.sent < framing.length:
            log.error("app sent %d of the %d bytes of its content-length on %s; closing",
                      ex.sent, framing.length, state.describe())
            framing.keep_alive = False
        state.finished = True
        if ex.access is not None:
            self._ended(ex, framing.status)
        state.release_environ()
        self._current = None
        if not ex.body_done:
            framing.keep_alive = False
        if not ex.body_done or state.buffered or state.spooled:  # something to free
            self._release(state, ClientDisconnected("the response is complete"))
        if not framing.keep_alive or self._closing:
            self._reader.stopped = True
            self.transport.close()
            return
        self._last_activity = self.loop.time()
        if self._pipeline or self._reading_paused or self._write_paused or self._unconsumed:
            self._advance()  # (else reading goes on as it is: nothing waits, nothing to pause)

    def _advance(self) -> None:
        """Start pipelined requests in order (a loop, not recursion: an inline app answers
        within :meth:`_start`)."""
        if self._advancing:
            return
        self._advancing = True
        try:
            while self._current is None and self._pipeline and not self._closed:
                self._start(self._pipeline.popleft())
        finally:
            self._advancing = False
        self._update_reading()

    def _ended(self, ex: _Exchange, status: int) -> None:
        """The request of ``ex`` ended, once (answered, cut short, or dropped unanswered:
        ``status`` 0): its access line and its count in the metrics, by the status sent."""
        record = ex.access
        if record is None:
            return
        ex.access = None
        metrics = self.metrics
        if metrics is not None:
            metrics.http1_ended(status, now() - record.arrived)
        access_log = self.access_log
        if access_log is not None:
            state = ex.state
            record.client = (state.client_address() if state is not None
                             else f"{self.ip}:{self.client_port}")
            record.method, record.target = ex.method, ex.target
            record.protocol = "HTTP/1.0" if ex.http10 else "HTTP/1.1"
            record.status = status
            record.sent = ex.sent
            access_log.write(record)

    # -- stopping work ------------------------------------------------------------------------
    def _drop(self, state: H2State, error: BaseException) -> None:
        """Stop all work for a request that is gone."""
        state.finished = True
        self._release(state, error)
        self._stop_app(state)

    def _release(self, state: H2State, error: BaseException) -> None:
        """Fail the request's body reads and free its buffered body (and spool file)."""
        discarded = state.abort(error)
        if not state.spooled:
            self._unconsumed -= discarded


def _can_send_files(transport: asyncio.Transport) -> bool:
    """A cleartext socket under ``transport``, on a system with ``os.sendfile``."""
    return (hasattr(os, "sendfile") and transport.get_extra_info("ssl_object") is None
            and transport.get_extra_info("socket") is not None)
