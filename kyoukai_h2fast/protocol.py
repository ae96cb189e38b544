"""The asyncio protocol: one HTTP/2 connection, from bytes on the socket to app dispatch.

It owns the orchestration and nothing else: it feeds received bytes to the connection engine
(:mod:`kyoukai_h2fast.engine`), reacts to the engine's events through a dispatch table, hands
requests to the app runner (:mod:`kyoukai_h2fast.apps`), sends responses as the flow-control
windows and the transport allow, and runs the connection's lifecycle (server preface, idle
timeout, graceful GOAWAY, teardown). It never parses frames or headers itself.

Theory of operation for sending: a response is a header list plus a queue of body chunks
(``H2State.out``) and, for streaming apps, an iterator to pull more from. :meth:`_pump` moves
bytes from the queue into the engine while the stream window, the connection window and the
transport allow; a stream that cannot progress waits in ``_blocked`` until a WINDOW_UPDATE,
a SETTINGS change or ``resume_writing`` wakes it. Iterators are pulled only when the queue is
empty, so at most one chunk per stream is buffered ahead of the window.
"""
from __future__ import annotations

import asyncio
import logging
import threading

from .engine import H2Engine
from .environ import build_environ, make_base_environ
from .errors import ConnectionFailed
from .events import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    SettingsChanged,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from .headers import response_headers
from .stream import H2State

__all__ = ["H2KyoukaiProtocol"]

log = logging.getLogger("kyoukai_h2fast")

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_NO_ERROR = 0x0
_INTERNAL_ERROR = 0x2
_CANCEL = 0x8
_HTTP1_BODY = b"This server speaks HTTP/2 only: use TLS with ALPN h2, or h2c prior knowledge.\n"
_HTTP1_REPLY = (
    b"HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Type: text/plain\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_HTTP1_BODY), _HTTP1_BODY)
)
_ERROR_HEADERS = {
    413: [(b":status", b"413"), (b"content-type", b"text/plain"), (b"content-length", b"25")],
    500: [(b":status", b"500"), (b"content-type", b"text/plain"), (b"content-length", b"22")],
}
_ERROR_BODIES = {413: b"Request Entity Too Large\n", 500: b"Internal Server Error\n"}


class H2KyoukaiProtocol(asyncio.Protocol):
    """An HTTP/2 server connection (seed signature: ``(component, parent_context)``)."""

    def __init__(self, component, parent_context=None) -> None:
        self.component = component
        self.parent_context = parent_context
        self.config = component.config
        self.runner = component.runner
        self.logger = log
        self.loop = asyncio.get_event_loop()
        self.loop_thread = threading.get_ident()
        #: Seconds a worker thread waits for request body bytes before giving up.
        self.body_timeout = self.config.idle_timeout or None
        #: Access log / proxy headers (kyoukai_h2fast.accesslog, .forwarded); None when off.
        self.request_hook = getattr(component, "request_hook", None)
        self.response_hook = getattr(component, "response_hook", None)
        self.transport: asyncio.Transport | None = None
        self.engine: H2Engine | None = None
        #: Live streams by id; a stream leaves this dict the moment it is finished or reset.
        self.streams: dict[int, H2State] = {}
        self.ip = None
        self.client_port = None
        self.base_environ: dict | None = None
        self._blocked: dict[int, H2State] = {}
        self._preface_pending = len(_PREFACE)
        self._write_paused = False
        self._flush_scheduled = False
        self._in_receive = False
        self._closing = False
        self._closed = False
        self._unconsumed = 0
        self._idle_handle = None
        self._last_activity = 0.0
        self._handlers = {
            RequestReceived: self._on_request,
            DataReceived: self._on_data,
            TrailersReceived: self._on_trailers,
            StreamReset: self._on_reset,
            WindowUpdated: self._on_window,
            SettingsChanged: self._on_settings,
            ConnectionTerminated: self._on_goaway,
        }

    # == connection lifecycle =============================================================
    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.ip, self.client_port = peer[0], peer[1]
        ssl_object = transport.get_extra_info("ssl_object")
        self.base_environ = make_base_environ(
            url_scheme="https" if ssl_object is not None else "http",
            server_addr=transport.get_extra_info("sockname"),
            peer_addr=peer,
            multithread=self.runner.multithread,
            errors=self.runner.errors,
        )
        self.engine = H2Engine(self.config)
        self.component.connections.add(self)
        if self.config.idle_timeout:
            self._last_activity = self.loop.time()
            self._idle_handle = self.loop.call_later(self.config.idle_timeout, self._idle_check)

    def connection_lost(self, exc) -> None:
        self._closed = True
        self.component.connections.discard(self)
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        error = ConnectionResetError("the HTTP/2 connection was closed")
        for state in list(self.streams.values()):
            self._drop_stream(state, error)
        self.streams.clear()
        self._blocked.clear()

    def pause_writing(self) -> None:
        # Stop producing body data and stop reading (which bounds control-frame replies a
        # peer could make us queue) until the transport drains.
        self._write_paused = True
        if not self._closed:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if not self._closed:
            self.transport.resume_reading()
            self._pump_blocked()
            self._flush()

    def _idle_check(self) -> None:
        self._idle_handle = None
        if self._closed:
            return
        timeout = self.config.idle_timeout
        idle_for = self.loop.time() - self._last_activity
        if self.streams or idle_for < timeout:
            self._idle_handle = self.loop.call_later(max(timeout - idle_for, 0.05),
                                                     self._idle_check)
            return
        log.debug("closing idle connection from %s:%s", self.ip, self.client_port)
        self.shutdown()

    def shutdown(self) -> None:
        """Graceful close: GOAWAY now, close when in-flight streams are done (RFC 9113 §6.8)."""
        if self._closed or self._closing:
            return
        self._closing = True
        if self._preface_pending == 0:
            self.engine.goaway(_NO_ERROR)
            self._flush()
        self._maybe_close()

    def abort(self) -> None:
        """Close now (shutdown timeout elapsed)."""
        if not self._closed and self.transport is not None:
            self.transport.close()

    def _maybe_close(self) -> None:
        if self._closing and not self.streams and not self._closed:
            self._flush()
            self.transport.close()

    def _fail(self, error_code: int, message: str) -> None:
        """A connection error: the engine queued GOAWAY; flush it and close."""
        log.info("closing connection from %s:%s: %s (error 0x%x)",
                 self.ip, self.client_port, message, error_code)
        self._flush()
        self._closing = True
        self.transport.close()

    # == receiving ========================================================================
    def data_received(self, data: bytes) -> None:
        if self._preface_pending:
            if not self._check_preface(data):
                return
        self._last_activity = self.loop.time() if self._idle_handle is not None else 0.0
        self._in_receive = True
        try:
            events = self.engine.receive(data)
            handlers = self._handlers
            for event in events:
                handlers[event.__class__](event)
        except ConnectionFailed as e:
            self._in_receive = False
            self._fail(e.error_code, str(e))
            return
        except Exception:  # a bug of ours must not take the process down
            log.exception("internal error while handling data from %s:%s",
                          self.ip, self.client_port)
            self._in_receive = False
            self.engine.goaway(_INTERNAL_ERROR, b"internal error")
            self._fail(_INTERNAL_ERROR, "internal error")
            return
        self._in_receive = False
        self._flush()

    def _check_preface(self, data: bytes) -> bool:
        """Sniff the client preface; answer HTTP/1.x clients with a plain 505 and close."""
        offset = len(_PREFACE) - self._preface_pending
        seen = data[: self._preface_pending]
        if seen != _PREFACE[offset: offset + len(seen)]:
            if offset == 0 and b"HTTP/1." in data[:8192]:
                self.transport.write(_HTTP1_REPLY)
                self.transport.close()
                self._closed = True
                return False
            self._preface_pending = 0  # let the engine reject it with GOAWAY
        else:
            self._preface_pending -= len(seen)
        if offset == 0:
            # Server preface (SETTINGS) goes out once we know the client speaks HTTP/2.
            self.engine.initiate()
            if self._closing:
                self.engine.goaway(_NO_ERROR)
        return True

    def _on_request(self, event: RequestReceived) -> None:
        state = H2State(event.headers, event.stream_id, self)
        self.streams[event.stream_id] = state
        if event.end_stream:
            state._eof = True
        if event.content_length > self.config.max_body_size:
            self._reject(state, 413)
            return
        if self.runner.dispatch_early or event.end_stream:
            self._dispatch(state)

    def _dispatch(self, state: H2State) -> None:
        state.dispatched = True
        try:
            state.environ = build_environ(self.base_environ, state.headers, state)
            state.is_head = state.environ["REQUEST_METHOD"] == "HEAD"
            if self.request_hook is not None:
                self.request_hook(state)
        except Exception:
            log.exception("cannot build the WSGI environ for stream %d", state.stream_id)
            self.respond_error(state)
            return
        self.runner.dispatch(self, state)

    def _on_data(self, event: DataReceived) -> None:
        sid = event.stream_id
        state = self.streams.get(sid)
        data = event.data
        flow = event.flow_controlled_length
        if state is None or state.reject_status or state.finished:
            # Nobody will read it: hand the window straight back.
            self.engine.acknowledge(sid, flow)
            return
        if flow > len(data):  # padding is never read by the app
            self.engine.acknowledge(sid, flow - len(data))
        if data:
            state.received += len(data)
            if state.received > self.config.max_body_size:
                self._reject(state, 413)
                return
            self._unconsumed += len(data)
            state.insert_data(data)
        if event.end_stream:
            state.feed_eof()
            if not state.dispatched:
                self._dispatch(state)
        elif not state.dispatched and (
                state.buffered >= self.config.stream_window // 2
                or self._unconsumed >= self.config.connection_window // 2):
            # The app must start reading before the windows run dry (see apps.py).
            self._dispatch_waiting()

    def _dispatch_waiting(self) -> None:
        for state in list(self.streams.values()):
            if not state.dispatched and state.buffered and not state.reject_status:
                self._dispatch(state)

    def _on_trailers(self, event: TrailersReceived) -> None:
        state = self.streams.get(event.stream_id)
        if state is None:
            return
        state.trailers = event.headers
        state.feed_eof()
        if not state.dispatched and not state.reject_status:
            self._dispatch(state)

    def _on_reset(self, event: StreamReset) -> None:
        state = self.streams.pop(event.stream_id, None)
        self._blocked.pop(event.stream_id, None)
        if state is not None:
            self._drop_stream(state, ConnectionResetError(
                f"stream {event.stream_id} was reset (error 0x{event.error_code:x})"))
        self.engine.forget(event.stream_id)
        self._maybe_close()

    def _on_window(self, event: WindowUpdated) -> None:
        if event.stream_id == 0:
            self._pump_blocked()
        else:
            state = self._blocked.pop(event.stream_id, None)
            if state is not None:
                self._pump(state)

    def _on_settings(self, event: SettingsChanged) -> None:
        if event.initial_window_size_changed:
            self._pump_blocked()

    def _on_goaway(self, event: ConnectionTerminated) -> None:
        if event.error_code != _NO_ERROR:
            log.info("peer %s:%s sent GOAWAY with error 0x%x", self.ip, self.client_port,
                     event.error_code)
            self.transport.close()
            return
        # The peer opens no more streams; let the in-flight ones finish, then close.
        self._closing = True
        self._maybe_close()

    def body_consumed(self, state: H2State, size: int) -> None:
        """The app took ``size`` body bytes from ``state``: reopen the windows for them."""
        self._unconsumed -= size
        if not self._closed:
            # Also for a stream already finished: the connection window needs the credit.
            self.engine.acknowledge(state.stream_id, size)
            self._schedule_flush()

    # == responding =======================================================================
    def respond(self, state: H2State, chunks, *, body_iter=None, in_thread: bool = False,
                close=None) -> None:
        """Start the response of ``state``: status/headers from its ``start_response``, the
        given first chunks, then ``body_iter`` (pulled on demand; in a worker thread when
        ``in_thread``), then ``close()``."""
        if self.streams.get(state.stream_id) is not state:
            self._close_iter(close, in_thread)  # reset meanwhile
            return
        try:
            headers = response_headers(state._emit_status, state._emit_headers or [])
            chunks = _checked(chunks)
        except (TypeError, ValueError) as e:
            log.error("app gave an invalid response on stream %d: %s", state.stream_id, e)
            self._close_iter(close, in_thread)
            self.respond_error(state)
            return
        if state.is_head:
            self._close_iter(close, in_thread)
            chunks, body_iter, close = [], None, None
        state.out.extend(chunks)
        state.body_iter = body_iter
        state.iter_in_thread = in_thread
        state.iter_close = close
        state.out_done = body_iter is None
        state.wire_headers = headers
        self._pump(state)

    def respond_error(self, state: H2State, status: int = 500) -> None:
        """A plain error response, or RST_STREAM(INTERNAL_ERROR) if headers already went."""
        if self.streams.get(state.stream_id) is not state:
            return
        if state.headers_sent:
            self._reset(state, _INTERNAL_ERROR)
            return
        self._close_iter(state.iter_close, state.iter_in_thread)
        state.iter_close = state.body_iter = None
        state.out.clear()
        state.wire_headers = _ERROR_HEADERS[status]
        if not state.is_head:
            state.out.append(_ERROR_BODIES[status])
        state.out_done = True
        self._pump(state)

    def _reject(self, state: H2State, status: int) -> None:
        """Answer without running the app (body too large)."""
        state.reject_status = status
        state.dispatched = True
        self._discard_body(state, ValueError(f"request rejected with {status}"))
        if state.task is not None:
            state.task.cancel()
        self.respond_error(state, status)

    def _discard_body(self, state: H2State, error: BaseException) -> None:
        """Fail the stream's body reads and hand its buffered bytes' window back."""
        discarded = state.abort(error)
        if discarded:
            self._unconsumed -= discarded
            if not self._closed:
                self.engine.acknowledge(state.stream_id, discarded)

    def _pump(self, state: H2State) -> None:
        """Send what ``state`` has queued, as far as windows and the transport allow."""
        if self._write_paused:
            self._blocked[state.stream_id] = state
            return
        engine = self.engine
        sid = state.stream_id
        try:
            if not state.headers_sent:
                state.headers_sent = True
                end = state.out_done and not state.out
                engine.send_headers(sid, state.wire_headers, end)
                if end:
                    self._finish(state)
                    return
            out = state.out
            while out:
                chunk = out[0]
                last = state.out_done and len(out) == 1
                sent = engine.send_data(sid, chunk, last)
                if sent < len(chunk):
                    out[0] = memoryview(chunk)[sent:]
                    self._blocked[sid] = state
                    self._schedule_flush()
                    return
                out.popleft()
                if last:
                    self._finish(state)
                    return
            if state.out_done:
                engine.send_data(sid, b"", True)
                self._finish(state)
                return
        except Exception:  # engine refused (stream closed under us): drop the stream
            log.debug("cannot send on stream %d", sid, exc_info=True)
            self._reset(state, _INTERNAL_ERROR)
            return
        self._schedule_flush()
        if state.body_iter is not None and not state.pulling:
            self._pull(state)

    def _pump_blocked(self) -> None:
        blocked = self._blocked
        if blocked:
            self._blocked = {}
            for state in blocked.values():
                self._pump(state)

    def _pull(self, state: H2State) -> None:
        """Get the next chunk(s) from a streaming app iterator."""
        if state.iter_in_thread:
            state.pulling = True
            self.runner.pull_in_thread(self, state)
            return
        # On the loop: pull until something is queued, then let _pump send it. Chunks from
        # a long generator are interleaved with other work by rescheduling after each one.
        try:
            chunk = next(state.body_iter)
        except StopIteration:
            self.pulled(state, (), done=True)
        except Exception:
            log.exception("app iterator failed on stream %d", state.stream_id)
            self.respond_error(state)
        else:
            state.pulling = True
            self.loop.call_soon(self.pulled, state, (chunk,), False)

    def pulled(self, state: H2State, chunks, done: bool, error: BaseException | None = None,
               closed: bool = False) -> None:
        """Chunks arrived from the iterator of ``state`` (``done``: it is exhausted;
        ``closed``: its ``close()`` was already called where it ran)."""
        state.pulling = False
        if closed:
            state.iter_close = None
        if self.streams.get(state.stream_id) is not state:
            self._close_iter(state.iter_close, state.iter_in_thread)  # dropped while pulling
            state.iter_close = None
            return
        if error is not None:
            log.error("app iterator failed on stream %d", state.stream_id,
                      exc_info=(type(error), error, error.__traceback__))
            self.respond_error(state)
            return
        try:
            state.out.extend(_checked(chunks))
        except TypeError as e:
            log.error("app iterator on stream %d: %s", state.stream_id, e)
            self.respond_error(state)
            return
        if done:
            state.body_iter = None
            state.out_done = True
            self._close_iter(state.iter_close, state.iter_in_thread)
            state.iter_close = None
        if state.stream_id not in self._blocked:
            self._pump(state)

    def _finish(self, state: H2State) -> None:
        """The response is fully sent: free the stream now."""
        state.finished = True
        sid = state.stream_id
        self.streams.pop(sid, None)
        self._blocked.pop(sid, None)
        if not state._eof:
            # RFC 9113 §8.1: a complete response may end the request with NO_ERROR.
            self.engine.reset_stream(sid, _NO_ERROR)
        else:
            self.engine.forget(sid)
        self._discard_body(state, ConnectionResetError("the response is complete"))
        self._schedule_flush()
        if self.response_hook is not None:
            self.response_hook(self, state)
        self._maybe_close()

    def _reset(self, state: H2State, error_code: int) -> None:
        sid = state.stream_id
        if self.streams.pop(sid, None) is not None:
            self.engine.reset_stream(sid, error_code)
            self._schedule_flush()
            if self.response_hook is not None:
                self.response_hook(self, state)
        self._blocked.pop(sid, None)
        self._drop_stream(state, ConnectionResetError(f"stream {sid} was reset by the server"))
        self._maybe_close()

    def _drop_stream(self, state: H2State, error: BaseException) -> None:
        """Stop all work for a stream that is gone."""
        state.finished = True
        self._discard_body(state, error)
        if state.task is not None and not state.task.done():
            state.task.cancel()
        if state.iter_close is not None and not state.pulling:
            self._close_iter(state.iter_close, state.iter_in_thread)
        state.iter_close = None
        state.body_iter = None

    def _close_iter(self, close, in_thread: bool) -> None:
        """Call an app iterable's ``close()`` (PEP 3333: always), in its thread if needed."""
        if close is None:
            return
        if in_thread:
            self.runner.close_in_thread(close)
            return
        try:
            close()
        except Exception:
            log.exception("app iterable close() failed")

    # == writing ==========================================================================
    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and not self._in_receive:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._closed or self.engine is None:
            return
        data = self.engine.data_to_send()
        if data:
            self.transport.write(data)


def _checked(chunks) -> list:
    """The non-empty chunks of ``chunks``; PEP 3333 bodies are bytestrings only."""
    out = []
    for chunk in chunks:
        if chunk:
            if type(chunk) is not bytes and not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise TypeError(f"response body chunks must be bytes, got {type(chunk).__name__}")
            out.append(chunk)
    return out
