"""The asyncio protocol: one HTTP/2 connection, from bytes on the socket to app dispatch.

It owns the orchestration and nothing else: it feeds received bytes to the connection engine
(:mod:`kyoukai_h2fast.engine`), reacts to the engine's events through a dispatch table, hands
requests to the app runner (:mod:`kyoukai_h2fast.apps`), sends responses as the flow-control
windows and the transport allow, and runs the connection's lifecycle (server preface, idle
timeout, graceful GOAWAY, teardown). It never parses frames or headers itself.

Theory of operation for sending: a response is a header block and body chunks handed to the
engine (``send_headers``, ``queue_data``), which frames them as the flow-control windows allow
and in the order its scheduler picks. :meth:`_flush` writes what the engine produced, a
bounded amount per loop iteration and nothing while the transport is paused, then reacts to
what went out: ``StreamDrained`` pulls the next chunk of a streaming app's iterator (which is
kept about one chunk ahead of the window, so memory per stream stays bounded), and
``ResponseSent`` frees the stream.
"""
from __future__ import annotations

import asyncio
import logging
import threading

from .constants import CLIENT_PREFACE as _PREFACE, ErrorCode
from .engine import Engine
from .environ import build_environ, make_base_environ
from .errors import ConnectionFailed
from .events import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    ResponseSent,
    StreamDrained,
    StreamReset,
    TrailersReceived,
)
from .headers import response_headers
from .stream import H2State

__all__ = ["H2KyoukaiProtocol"]

log = logging.getLogger("kyoukai_h2fast")

_NO_ERROR = ErrorCode.NO_ERROR
_INTERNAL_ERROR = ErrorCode.INTERNAL_ERROR
#: DATA payload bytes written per flush at most (then the loop gets a turn), which also bounds
#: what sits in the transport's buffer beyond its high-water mark.
_FLUSH_DATA = 512 * 1024
#: A streaming response is pulled ahead while less than this is queued in the engine.
_PULL_AHEAD = 64 * 1024
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
        self.transport: asyncio.Transport | None = None
        self.engine: Engine | None = None
        #: Live streams by id; a stream leaves this dict the moment it is finished or reset.
        self.streams: dict[int, H2State] = {}
        self.ip = None
        self.client_port = None
        self.base_environ: dict | None = None
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
            ConnectionTerminated: self._on_goaway,
            StreamDrained: self._on_drained,
            ResponseSent: self._on_sent,
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
        self.engine = Engine(self.config)
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
        if state is not None:
            self._drop_stream(state, ConnectionResetError(
                f"stream {event.stream_id} was reset (error 0x{event.error_code:x})"))
        self._maybe_close()

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
        if state.out:  # the legacy write() callable's output goes first
            chunks[:0] = state.out
            state.out.clear()
        if state.is_head:
            self._close_iter(close, in_thread)
            chunks, body_iter, close = [], None, None
        state.body_iter = body_iter
        state.iter_in_thread = in_thread
        state.iter_close = close
        self._send(state, headers, chunks, body_iter is None)
        if body_iter is not None:
            self._pull(state)  # one chunk ahead of the window

    def _send(self, state: H2State, headers: list, chunks: list, done: bool) -> None:
        """Queue the header block and the first chunks in the engine."""
        engine = self.engine
        sid = state.stream_id
        state.headers_sent = True
        if done and not chunks:
            engine.send_headers(sid, headers, True)
        else:
            engine.send_headers(sid, headers, False)
            last = len(chunks) - 1
            for i, chunk in enumerate(chunks):
                engine.queue_data(sid, chunk, done and i == last)
        self._schedule_flush()

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
        self._send(state, _ERROR_HEADERS[status], [] if state.is_head else
                   [_ERROR_BODIES[status]], True)

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

    def _pull(self, state: H2State) -> None:
        """Get the next chunk(s) from a streaming app iterator."""
        state.pulling = True
        if state.iter_in_thread:
            self.runner.pull_in_thread(self, state)
            return
        # On the loop: one chunk per loop iteration, so a long generator is interleaved with
        # other work.
        try:
            chunk = next(state.body_iter)
        except StopIteration:
            self.loop.call_soon(self.pulled, state, (), True)
        except Exception as e:
            self.loop.call_soon(self.pulled, state, (), True, e)
        else:
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
            chunks = _checked(chunks)
        except TypeError as e:
            log.error("app iterator on stream %d: %s", state.stream_id, e)
            self.respond_error(state)
            return
        engine = self.engine
        sid = state.stream_id
        last = len(chunks) - 1
        for i, chunk in enumerate(chunks):
            engine.queue_data(sid, chunk, done and i == last)
        if done:
            if not chunks:
                engine.queue_data(sid, b"", True)
            state.body_iter = None
            self._close_iter(state.iter_close, state.iter_in_thread)
            state.iter_close = None
        elif engine.queued(sid) < _PULL_AHEAD:
            self._pull(state)
        self._schedule_flush()

    def _on_drained(self, event: StreamDrained) -> None:
        state = self.streams.get(event.stream_id)
        if state is not None and state.body_iter is not None and not state.pulling:
            self._pull(state)

    def _on_sent(self, event: ResponseSent) -> None:
        state = self.streams.get(event.stream_id)
        if state is not None:
            self._finish(state, event.request_complete)

    def _finish(self, state: H2State, request_complete: bool) -> None:
        """The response is fully sent: free the stream now."""
        state.finished = True
        sid = state.stream_id
        self.streams.pop(sid, None)
        if not request_complete:
            # RFC 9113 §8.1: a complete response may end the request with NO_ERROR.
            self.engine.reset_stream(sid, _NO_ERROR)
        self._discard_body(state, ConnectionResetError("the response is complete"))
        self._schedule_flush()
        self._maybe_close()

    def _reset(self, state: H2State, error_code: int) -> None:
        sid = state.stream_id
        if self.streams.pop(sid, None) is not None:
            self.engine.reset_stream(sid, error_code)
            self._schedule_flush()
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
        """Write what the engine has (control frames, then DATA up to a bound per pass), and
        react to what went out; continue in a later loop iteration if more is ready."""
        self._flush_scheduled = False
        if self._closed or self._write_paused or self.engine is None:
            return
        engine = self.engine
        data = engine.data_to_send(_FLUSH_DATA)
        if data:
            self.transport.write(data)
        events = engine.send_events()
        if events:
            handlers = self._handlers
            for event in events:
                handlers[event.__class__](event)
        if engine.wants_write:
            self._schedule_flush()


def _checked(chunks) -> list:
    """The non-empty chunks of ``chunks``; PEP 3333 bodies are bytestrings only."""
    out = []
    for chunk in chunks:
        if chunk:
            if type(chunk) is not bytes and not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise TypeError(f"response body chunks must be bytes, got {type(chunk).__name__}")
            out.append(chunk)
    return out
