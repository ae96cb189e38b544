"""The asyncio protocol: one HTTP/2 connection, from bytes on the socket to app dispatch.

It owns the orchestration and nothing else: it feeds received bytes to the connection engine
(:mod:`kyoukai_h2fast.http2.engine`), reacts to the engine's events through a dispatch table, hands
requests to the app runner (:mod:`kyoukai_h2fast.apps.runners`), writes what the engine produces as
the transport allows, and runs the connection's lifecycle (server preface, timeouts, graceful
GOAWAY, teardown). It never parses frames or headers itself.

Receiving. A request's body is *streamed* to apps that start at once (thread-pool WSGI, and
loop apps that opted in with ``stream_request_bodies``): the windows reopen as the app reads.
For apps on the event loop it is *spooled* (memory up to ``body_spool_threshold``, then a
temporary file) and the app starts once it is complete; the windows reopen as bytes arrive, so
the client never waits on flow control (see :mod:`kyoukai_h2fast.wsgi.request_state`).

Sending. A response is a header block and body chunks handed to the engine (``send_headers``,
``queue_data``), which frames them as the flow-control windows allow and in the order its
scheduler picks. :meth:`_flush` writes what the engine produced, a bounded amount per loop
iteration and nothing while the transport is paused, then reacts to what went out:
``StreamDrained`` pulls the next chunk of a streaming app's iterator (kept about one chunk ahead
of the window, so memory per stream stays bounded), ``ResponseSent`` frees the stream. A
response that ends before its request body does lets the rest of the body arrive (discarded,
bounded in bytes and time: ``linger_bytes``, ``linger_timeout``) before the stream is reset, so
clients see the answer (RFC 9113 §8.1).

Fairness and backpressure. Each read is handled at most ``max_frames_per_read`` frames at a
time: the engine keeps the rest, reading pauses, and the rest is handled in later loop
iterations, so one connection flooding frames cannot starve the others; reading also pauses
while the transport's buffer is above its high-water mark (the peer is not reading). Response
bytes queued for the connection (in the engine's send queues and the transport) are bounded
by ``max_queued_output``: beyond it, streaming responses are not pulled and new requests wait
for their app until the output drains. The flood budgets themselves (PINGs, SETTINGS, empty
frames, resets, unread control frames) are the engine's.

Timeouts. A stream whose client sends no body bytes for ``body_timeout`` while the app waits for
them gets ``408`` (or RST_STREAM(CANCEL) once the response started) and the app's read fails; a
connection with nothing received for ``idle_timeout`` and no stream the server is working on is
closed with GOAWAY. With ``http2_ping_interval`` set, a peer silent that long gets a PING and
must answer it within ``http2_ping_timeout`` (:mod:`kyoukai_h2fast.http2.keepalive`), or the
connection is closed and its streams' work dropped.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..apps.iterables import body_chunks as _checked
from ..codec.headers import response_headers
from ..config import FIRST_REQUEST_GRACE
from ..connection.base import ConnectionBase
from ..constants import UNSIGNALLED, ErrorCode
from ..errors import BodyTimeoutError, ClientDisconnected, ConnectionFailed, RateLimitedLog
from ..wsgi.access_record import AccessRecord, now
from ..wsgi.environ import build_environ
from ..wsgi.request_state import H2State
from .engine import Engine
from .events import (
    ConnectionTerminated,
    DataReceived,
    ExtendedConnectReceived,
    PingAcknowledged,
    RequestReceived,
    ResponseSent,
    StreamDrained,
    StreamReset,
    TrailersReceived,
)
from .keepalive import KeepAlive
from .websocket import H2Transport, open_stream

if TYPE_CHECKING:
    from ..contracts import Runner
    from ..server.accesslog import AccessLog
    from ..server.metrics import Recorder
    from ..server.proxy_headers import ProxyHeaders

__all__ = ["H2KyoukaiProtocol"]

log = logging.getLogger("kyoukai_h2fast")

_NO_ERROR = ErrorCode.NO_ERROR
_INTERNAL_ERROR = ErrorCode.INTERNAL_ERROR
_CANCEL = ErrorCode.CANCEL
#: DATA payload bytes written per flush at most (then the loop gets a turn), which also bounds
#: what sits in the transport's buffer beyond its high-water mark.
_FLUSH_DATA = 512 * 1024
#: A streaming response is pulled ahead while less than this is queued in the engine.
_PULL_AHEAD = 64 * 1024
#: Frames of a connection's first turn, and how long a turn should last (seconds).
_FIRST_TURN = 16
_TURN_SLICE = 0.002
#: Reads up to this size are not timed: at most 56 frames (9-byte headers), well within a
#: turn even for the pure-Python engine; a read's continuation (b"") always is.
_UNTIMED_READ = 512
_clock = time.perf_counter
_ERROR_STATUS = {
    408: "408 Request Timeout",
    413: "413 Request Entity Too Large",
    500: "500 Internal Server Error",
}
_CONTINUE = [(b":status", b"100")]
#: Fields never sent as trailers (RFC 9113 §8.2.2: connection-specific).
_NOT_TRAILERS = frozenset((b"connection", b"keep-alive", b"proxy-connection",
                           b"transfer-encoding", b"upgrade", b"te", b"content-length"))
_NO_FIELDS: list = []


def _error_response(status: int) -> tuple[list, bytes]:
    """Header list and body of a plain-text error response (date/server added per call)."""
    line = _ERROR_STATUS[status]
    body = line[4:].encode() + b"\n"
    fields = [("content-type", "text/plain"), ("content-length", str(len(body)))]
    return response_headers(line, fields), body


class H2KyoukaiProtocol(ConnectionBase):
    """An HTTP/2 server connection (seed signature: ``(component, parent_context)``)."""

    # Its own attributes are slots (those ConnectionBase keeps are its slots): every request
    # reads and writes dozens of them, and an instance dict of this many keys is not one
    # CPython 3.11 can specialize access to.
    # (__dict__ stays: subclasses and users may still add attributes of their own.)
    __slots__ = (
        "_buffered", "_closing", "_congested_at", "_continue_scheduled", "_deferred",
        "_flush_scheduled", "_hand_over", "_handlers", "_in_receive", "_input_backlog",
        "_keepalive",
        "_loop_time", "_max_frames", "_max_output", "_pull_waiting", "_trailers_waiting",
        "_read_paused", "_spool", "_spool_disk", "_spool_memory", "_start_later", "_started",
        "_starting", "_stream_bodies", "_turn_frames", "_unconsumed",
        "_write_paused", "access_log", "base_environ", "body_timeout",
        "engine", "forwarded", "logger", "loop_thread", "metrics", "parent_context",
        "read_wake_limit", "_records", "streams", "_websockets", "websocket_streams",
        "_direct", "__weakref__", "__dict__",
    )

    def __init__(self, component: Any, parent_context: Any = None) -> None:
        self.component = component
        self.parent_context = parent_context
        self.config = config = component.config
        self.runner: Runner = component.runner
        self.logger = log
        self.loop = asyncio.get_event_loop()
        self._loop_time = self.loop.time
        self.loop_thread = threading.get_ident()
        #: Seconds a worker thread waits for request body bytes before giving up.
        self.body_timeout = config.body_timeout or None
        #: A worker thread reading a body is woken once this much more is buffered (the
        #: client may always send that much unread); see ``_wake_readers`` for the connection.
        self.read_wake_limit = max(1, config.stream_window // 2)
        self._congested_at = config.connection_window // 2
        #: Access log / trusted proxy headers (kyoukai_h2fast.server.accesslog,
        #: .proxy_headers); None when off.
        self.access_log: AccessLog | None = getattr(component, "access_log", None)
        self.forwarded: ProxyHeaders | None = getattr(component, "forwarded", None)
        #: The runner builds its request from the fields, no WSGI environ (ASGI apps without
        #: trusted proxy headers): its ``dispatch_direct``.
        self._direct = self.forwarded is None and getattr(
            type(self.runner), "builds_scope", False)
        # transport, engine and base_environ are set by connection_made(), which asyncio calls
        # before anything else; None until then.
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.engine: Engine = None  # type: ignore[assignment]
        #: Live streams by id; a stream leaves this dict the moment it is finished or reset.
        self.streams: dict[int, H2State] = {}
        self.ip: str | None = None
        self.client_port: int | None = None
        self.base_environ: dict = None  # type: ignore[assignment]
        self._stream_bodies = config.stream_request_bodies or getattr(
            component.app, "stream_request_bodies", False)
        self._spool = not self.runner.dispatch_early and not self._stream_bodies
        #: Called after each turn when apps run in worker threads (see WorkerPool.hand_over).
        self._hand_over = self.runner.hand_over if self.runner.multithread else None
        self._started = False
        self._write_paused = False
        #: Frames handled per turn (at most max_frames_per_read, fewer while frames are
        #: expensive: see ``data_received``); the engine keeps the rest (``_input_backlog``).
        self._max_frames = config.max_frames_per_read
        self._turn_frames = min(_FIRST_TURN, self._max_frames)
        self._input_backlog = False
        self._continue_scheduled = False
        self._read_paused = False
        self._max_output = config.max_queued_output
        #: The transport's buffered bytes when _flush last looked (it only drains meanwhile).
        self._buffered = 0
        #: True while a read's requests wait for all of its frames (see data_received).
        self._start_later = False
        #: Streams waiting for the output to drain: requests not yet given to the app, and
        #: streaming responses not pulled (stream id -> state, in arrival order).
        self._deferred: dict[int, H2State] = {}
        #: Requests of the read being handled, started once all its frames are handled.
        self._starting: list[H2State] = []
        self._pull_waiting: dict[int, H2State] = {}
        #: Response trailers waiting for their stream's queued DATA to go (stream id ->
        #: fields): ASGI ``http.response.trailers``.
        self._trailers_waiting: dict[int, list] = {}
        self._flush_scheduled = False
        self._in_receive = False
        self._closing = False
        self._closed = False
        #: Streamed body bytes received and not yet read by apps (window not reopened).
        self._unconsumed = 0
        #: Spooled body bytes held in memory, and in temporary files, by this connection.
        self._spool_memory = 0
        self._spool_disk = 0
        self._watchdog: asyncio.TimerHandle | None = None
        self._last_activity = 0.0
        self._handlers: dict[type, Callable[[Any], None]] = {
            RequestReceived: self._on_request,
            ExtendedConnectReceived: self._on_connect,
            DataReceived: self._on_data,
            TrailersReceived: self._on_trailers,
            StreamReset: self._on_reset,
            ConnectionTerminated: self._on_goaway,
            StreamDrained: self._on_drained,
            ResponseSent: self._on_sent,
            PingAcknowledged: self._on_ping_ack,
        }
        #: Keep-alive PINGs (kyoukai_h2fast.http2.keepalive); None when off.
        self._keepalive = (KeepAlive(config.http2_ping_interval, config.http2_ping_timeout)
                           if config.http2_ping_interval else None)
        #: Request metrics (kyoukai_h2fast.server.metrics.Recorder); None when off.
        self.metrics: Recorder | None = getattr(component, "metrics", None)
        #: True when requests keep a record of their end (for the access log, the metrics).
        self._records = self.access_log is not None or self.metrics is not None
        #: WebSockets (RFC 8441) by stream id: the streams' transports
        #: (kyoukai_h2fast.http2.websocket), and how many were opened on this connection.
        self._websockets: dict[int, H2Transport] = {}
        self.websocket_streams = 0

    @property
    def requests_received(self) -> int:
        """Requests the client sent on this connection (from the highest stream id it opened:
        read, not counted per request)."""
        engine = self.engine
        return (engine.highest_stream_id + 1) // 2 if engine is not None else 0

    # == connection lifecycle =============================================================
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.engine = Engine(self.config)
        self.base_environ = self._opened(transport)
        # (in the base, so that setting it per request never grows the copied dict)
        self.base_environ["kyoukai_h2fast.priority"] = UNSIGNALLED
        keepalive = self._keepalive
        if keepalive is not None and self._watchdog is not None:  # first check: the PING's
            self._watchdog.cancel()
            self._arm_watchdog(min([keepalive.interval] + [
                t for t in (self.config.idle_timeout, self.config.body_timeout) if t]))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.metrics is not None:  # its engine's byte counts join the totals
            self.metrics.http2_closed(self.engine)
        self._gone()
        self._drop_all(ClientDisconnected("the HTTP/2 connection was closed"))

    def _drop_all(self, error: BaseException | str) -> None:
        for websocket in list(self._websockets.values()):
            websocket.closed()
        streams = list(self.streams.values())
        self.streams.clear()
        self._deferred.clear()
        self._pull_waiting.clear()
        self._starting.clear()
        self.runner.forget(self)
        for state in streams:
            self._drop_stream(state, error)

    def pause_writing(self) -> None:
        # Stop producing body data and stop reading (which bounds control-frame replies a
        # peer could make us queue) until the transport drains.
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if not self._closed:
            self._update_reading()
            self._flush()
            if self._input_backlog:
                self._continue_soon()

    def _update_reading(self) -> None:
        """Read while the output drains and no received frames wait (see the docstring)."""
        pause = self._write_paused or self._input_backlog
        if pause != self._read_paused and not self._closed:
            self._read_paused = pause
            if pause:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def shutdown(self) -> None:
        """Graceful close: GOAWAY now, close when in-flight streams are done (RFC 9113 §6.8).
        Before the client preface (TLS chose HTTP/2 at the handshake), the client gets
        ``FIRST_REQUEST_GRACE`` for it: GOAWAY follows the requests that come with it."""
        if self._closed or self._closing:
            return
        self._closing = True
        for websocket in list(self._websockets.values()):
            if websocket.session is not None:
                self.loop.create_task(websocket.session.close(1001, "server shutting down"))
        if self._started:
            self.engine.goaway(_NO_ERROR)
            self._flush()
            self._maybe_close()
        else:
            self.loop.call_later(FIRST_REQUEST_GRACE, self._maybe_close)

    def abort(self) -> None:
        """Close now (shutdown timeout elapsed); work still under way for the connection's
        streams is dropped at once (their iterables are closed when their threads return)."""
        if not self._closed and self.transport is not None:
            self.transport.close()
            self._drop_all("the server shut down before the response was complete")

    def _maybe_close(self) -> None:
        if self._closing and not self.streams and not self._websockets and not self._closed:
            self._flush()
            self.transport.close()

    def _fail(self, error_code: int, message: str) -> None:
        """A connection error: the engine queued GOAWAY; flush it and close. Work still under
        way for the connection's streams is dropped (late results are ignored)."""
        _closing_log("closing connection from %s:%s: %s (error 0x%x)",
                     self.ip, self.client_port, message, error_code)
        self._flush()
        self._closing = True
        self.transport.close()
        self._drop_all(ClientDisconnected(f"the connection was closed: {message}"))

    # == timeouts =========================================================================
    def _timeouts(self, now: float, next_check: float) -> float | None:
        """Body timeouts per stream, then the idle timeout of the connection."""
        config = self.config
        busy = False
        body_timeout = config.body_timeout
        for state in list(self.streams.values()):
            if state.waiting_for_body and not state.reject_status:
                if body_timeout:
                    deadline = state.last_progress + body_timeout
                    if deadline <= now:
                        self._body_timed_out(state)
                        continue
                    next_check = min(next_check, deadline)
            elif not self._stalled_on_peer(state):
                busy = True  # the app (or the server) is working on it
        idle = config.idle_timeout
        if self._websockets:
            busy = True    # their pings tell a dead peer (ws_ping_interval)
        if idle:
            idle_for = now - self._last_activity
            if not busy and idle_for >= idle:
                log.debug("closing idle connection from %s:%s", self.ip, self.client_port)
                self._closing = True
                self.engine.goaway(_NO_ERROR)
                self._flush()
                self.transport.close()
                return None
            next_check = min(next_check, self._last_activity + idle)
        keepalive = self._keepalive
        if keepalive is not None and self._started:
            when = keepalive.check(now, self._last_activity, self.engine)
            if when is None:
                self._ping_timed_out()
                return None
            if keepalive.outstanding:
                self._flush()
            next_check = min(next_check, when)
        return next_check

    def _on_connect(self, event: ExtendedConnectReceived) -> None:
        open_stream(self, event)

    def _ping_timed_out(self) -> None:
        """No ACK for our keep-alive PING in time: the peer is gone. GOAWAY if the socket
        takes it, then close at once (a dead peer would never drain a graceful close) and drop
        the work for every stream."""
        timeout = self.config.http2_ping_timeout
        log.info("closing connection from %s:%s: no PING ACK within %g s", self.ip,
                 self.client_port, timeout)
        self._closing = True
        self.engine.goaway(_NO_ERROR, b"PING timeout")
        self._flush()
        self.transport.abort()
        self._drop_all(ClientDisconnected(f"the peer did not answer a PING within {timeout:g} s"))

    def _on_ping_ack(self, event: PingAcknowledged) -> None:
        keepalive = self._keepalive
        if keepalive is not None:
            idle_since = keepalive.acknowledged(event.opaque_data, self._loop_time(), self.engine)
            if idle_since is not None:  # the ACK alone is no activity for the idle timeout
                self._last_activity = idle_since

    def _stalled_on_peer(self, state: H2State) -> bool:
        """True when ``state`` waits for the peer to read (its response is queued, or it
        waits for the connection's output to drain)."""
        sid = state.stream_id
        return (sid in self._deferred or sid in self._pull_waiting
                or state.headers_sent and not state.pulling and self.engine.queued(sid) > 0)

    def _body_timed_out(self, state: H2State) -> None:
        error = BodyTimeoutError(f"no request body bytes for {self.config.body_timeout:g} s "
                                 f"on stream {state.stream_id}")
        log.info("request body timed out on %s: %s", state.describe(), error)
        self._discard_body(state, error)
        if state.headers_sent:
            self._reset(state, _CANCEL)
        else:
            self.respond_error(state, 408)

    # == receiving ========================================================================
    def data_received(self, data: bytes) -> None:
        """Hand ``data`` (b"": the rest of an earlier read) to the engine, at most
        ``_turn_frames`` frames; the rest waits for a later loop iteration."""
        if not self._started:
            self._begin()
        self._last_activity = self._loop_time()
        self._in_receive = True
        engine = self.engine
        # (a read too small to hold a long turn is not timed: a request's HEADERS, say)
        started = _clock() if not data or len(data) > _UNTIMED_READ else 0.0
        try:
            events = engine.receive(data, self._turn_frames)
            pending = engine.input_pending
            # A request starts once every frame of its read is handled (_dispatch), unless
            # its event is the read's only one: nothing after it can reset its stream then.
            self._start_later = pending or len(events) > 1
            handlers = self._handlers
            for event in events:
                handlers[event.__class__](event)
            while self._starting and not pending:
                self._start_batch()
        except ConnectionFailed as e:
            self._in_receive = False
            if self.metrics is not None:
                self.metrics.connection_failed(e)
            self._fail(e.error_code, str(e))
            return
        except Exception:  # a bug of ours must not take the process down
            log.exception("internal error while handling data from %s:%s",
                          self.ip, self.client_port)
            self._in_receive = False
            engine.goaway(_INTERNAL_ERROR, b"internal error")
            self._fail(_INTERNAL_ERROR, "internal error")
            return
        self._in_receive = False
        # A turn lasts about _TURN_SLICE whatever its frames cost (a pure-Python HPACK decode
        # of a 600-field block takes milliseconds): fewer frames after a long turn, more after
        # a short one that did not handle everything.
        elapsed = _clock() - started if started else 0.0
        if elapsed > _TURN_SLICE:
            self._turn_frames = (self._turn_frames >> 1) or 1
        elif pending and elapsed < _TURN_SLICE / 4:
            self._turn_frames = min(self._turn_frames * 2, self._max_frames)
        self._flush()
        if self._hand_over is not None:
            self._hand_over()  # worker threads get the GIL even while the loop is busy
        if pending:
            if not self._input_backlog:
                self._input_backlog = True
                self._update_reading()
            # A connection whose turns are long waits as long before its next one: it gets
            # at most about half of the loop (and of the GIL: worker threads run meanwhile).
            self._continue_soon(elapsed if elapsed > _TURN_SLICE else 0.0)
        elif self._input_backlog:
            self._input_backlog = False
            self._update_reading()

    def _start_batch(self) -> None:
        """Start the requests of the read just handled (those not reset meanwhile); while
        the connection's output is full they wait for it to drain (``_deferred``)."""
        starting = self._starting
        self._starting = []
        streams = self.streams
        for state in starting:
            if streams.get(state.stream_id) is state and not state.finished:
                self._start_or_defer(state)

    def _continue_soon(self, delay: float = 0.0) -> None:
        if not self._continue_scheduled and not self._write_paused:
            self._continue_scheduled = True
            if delay:
                self.loop.call_later(delay, self._continue_input)
            else:
                self.loop.call_soon(self._continue_input)

    def _continue_input(self) -> None:
        """The next frames of a read stopped at ``_turn_frames`` (unless the connection
        closed, or its output stopped draining: resume_writing goes on)."""
        self._continue_scheduled = False
        if self._input_backlog and not self._closed and not self._write_paused:
            self.data_received(b"")

    def _begin(self) -> None:
        """The first bytes arrived: the server preface (SETTINGS) goes out. The engine checks
        the client preface (a connection error if it is wrong); the protocol chooser in front
        (:mod:`kyoukai_h2fast.server.protocol_select`) already sent HTTP/1.x requests
        elsewhere."""
        self._started = True
        self.engine.initiate()
        if self._closing:  # shut down before the preface came: GOAWAY once the requests
            self.loop.call_soon(self._goaway_now)  # of this read are in (they finish)

    def _goaway_now(self) -> None:
        if not self._closed:
            self.engine.goaway(_NO_ERROR)
            self._flush()
            self._maybe_close()

    def _on_request(self, event: RequestReceived) -> None:
        state = H2State(event.headers, event.stream_id, self)
        state.last_progress = self._last_activity
        if self._records:
            state.access = AccessRecord("HTTP/2")
        if event.priority is not UNSIGNALLED:
            state.priority = event.priority
        self.streams[event.stream_id] = state
        if event.end_stream:
            state._eof = True
        if event.content_length > self.config.max_body_size:
            self._reject(state, 413)
            return
        if not event.end_stream:
            state.spooled = self._spool
            if _expects_continue(event.headers):
                # RFC 9110 §10.1.1: the client waits for this before sending the body.
                self.engine.send_headers(event.stream_id, _CONTINUE, False)
        if event.end_stream or not state.spooled and not self._stream_bodies:
            self._dispatch(state)

    def _dispatch(self, state: H2State) -> None:
        state.dispatched = True
        if self._start_later:
            # Started once all the frames of this read are handled (over several turns when
            # the read is large): a stream reset by a later frame of the same read (rapid
            # reset, MadeYouReset) never reaches the app.
            self._starting.append(state)
        else:
            self._start_or_defer(state)

    def _start_or_defer(self, state: H2State) -> None:
        # (_output_full, inlined: once per request)
        if self._deferred or self.engine.queued_total + self._buffered >= self._max_output:
            # The peer is not reading what we queued: the app waits (its response would only
            # add to the queue); in arrival order, when the output drains (_flush).
            self._deferred[state.stream_id] = state
        else:
            self._start(state)

    def _start(self, state: H2State) -> None:
        """Build the environ and hand the request to the app runner."""
        if self._direct:
            try:
                self.runner.dispatch_direct(self, state, self.base_environ)  # type: ignore[attr-defined]
            except Exception:
                log.exception("cannot start the ASGI app for %s", state.describe())
                self.respond_error(state)
            return
        try:
            state.environ = environ = build_environ(self.base_environ, state.headers, state)
            if state.priority is not UNSIGNALLED:  # (the base environ has the default)
                environ["kyoukai_h2fast.priority"] = state.priority
            state.is_head = environ["REQUEST_METHOD"] == "HEAD"
            if self.forwarded is not None:
                self.forwarded.apply(environ, self.ip)
        except Exception:
            log.exception("cannot build the WSGI environ for %s", state.describe())
            self.respond_error(state)
            return
        self.runner.dispatch(self, state)

    def _on_data(self, event: DataReceived) -> None:
        sid = event.stream_id
        state = self.streams.get(sid)
        data = event.data
        flow = event.flow_controlled_length
        engine = self.engine
        if state is None and self._websockets and sid in self._websockets:
            self._websockets[sid].data(event)
            return
        if state is None or state.reject_status or state.finished:
            # Nobody will read it: hand the window straight back.
            engine.acknowledge(sid, flow)
            return
        n = len(data)
        if flow > n:  # padding is never read by the app
            engine.acknowledge(sid, flow - n)
        if n:
            state.received += n
            if state.received > self.config.max_body_size:
                self._reject(state, 413)
                return
            state.last_progress = self._last_activity
            if state.spooled:
                self._spool_data(state, data)
            else:
                self._unconsumed += n
                state.insert_data(data)
                if self._unconsumed >= self._congested_at:
                    self._wake_readers()
        if event.end_stream:
            state.feed_eof()
            if not state.dispatched:
                self._dispatch(state)
        elif not state.dispatched and not state.spooled and (
                state.buffered >= self.config.stream_window // 2
                or self._unconsumed >= self.config.connection_window // 2):
            # A loop app streaming its body must start reading before the windows run dry.
            self._dispatch_waiting()

    def _spool_data(self, state: H2State, data: bytes) -> None:
        """Keep a spooled body's bytes and reopen the windows for them at once, within the
        connection's memory and disk allowances (past the disk one, the window waits)."""
        config = self.config
        limit = config.body_spool_threshold
        if self._spool_memory + len(data) > config.connection_window:
            limit = 0  # the connection holds enough in memory: this stream goes to disk
        disk = state.spooled_on_disk
        state.spool_data(data, limit)
        memory = state.buffered  # (before the app reads, memory only changes here)
        self._spool_memory += memory - state.spool_memory_counted
        state.spool_memory_counted = memory
        self._spool_disk += state.spooled_on_disk - disk
        if self._spool_disk <= config.max_body_size:
            self.engine.acknowledge(state.stream_id, len(data))
        else:
            state.unacked += len(data)

    def _wake_readers(self) -> None:
        """Half the connection window is unread: readers waiting for more than they have
        must take what is there, or the window could fill up with nobody reading."""
        for state in self.streams.values():
            state.wake_reader()

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
        websocket = self._websockets.get(event.stream_id)
        if websocket is not None:
            websocket.closed()
        state = self.streams.pop(event.stream_id, None)
        if state is not None:
            if event.remote:
                why = f"was reset by the client (error 0x{event.error_code:x})"
            else:
                why = f"was reset by the server: {event.reason or 'protocol error'}"
            self._drop_stream(state, f"stream {event.stream_id} {why}")
        self._maybe_close()

    def _on_goaway(self, event: ConnectionTerminated) -> None:
        if event.error_code != _NO_ERROR:
            _closing_log("peer %s:%s sent GOAWAY with error 0x%x", self.ip, self.client_port,
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

    def _discard_body(self, state: H2State, error: BaseException | str) -> None:
        """Fail the stream's body reads, free its buffers and hand the windows back."""
        disk = state.spooled_on_disk
        discarded = state.abort(error)
        unacked = state.unacked
        state.unacked = 0
        if state.spooled:
            self._spool_memory -= state.spool_memory_counted
            state.spool_memory_counted = 0
            self._spool_disk -= disk
            credit = unacked
        else:
            self._unconsumed -= discarded
            credit = discarded
        if credit and not self._closed:
            self.engine.acknowledge(state.stream_id, credit)

    # == responding =======================================================================
    def respond(self, state: H2State, chunks: Iterable[bytes], *,
                body_iter: Iterator[bytes] | None = None, in_thread: bool = False,
                close: Callable[[], object] | None = None) -> None:
        """Start the response of ``state``: status/headers from its ``start_response``, the
        given first chunks, then ``body_iter`` (pulled on demand; in a worker thread when
        ``in_thread``), then ``close()``."""
        if self.streams.get(state.stream_id) is not state:
            self._close_iter(close, in_thread)  # reset meanwhile
            return
        try:
            headers = response_headers(
                # (None: the app never called start_response; refused there, with the reason)
                state._emit_status,  # type: ignore[arg-type]
                state._emit_headers or _NO_FIELDS)
            if not (type(chunks) is list and len(chunks) == 1 and type(chunks[0]) is bytes
                    and chunks[0]):
                chunks = _checked(chunks)
        except (TypeError, ValueError) as e:
            log.error("app gave an invalid response on %s: %s", state.describe(), e)
            self._close_iter(close, in_thread)
            self.respond_error(state)
            return
        if state.out:  # the legacy write() callable's output goes first
            chunks = state.out + chunks
            state.out = None
        if state.is_head:
            self._close_iter(close, in_thread)
            chunks, body_iter, close = [], None, None
        state.body_iter = body_iter
        state.iter_in_thread = in_thread
        state.iter_close = close
        self._send(state, headers, chunks, body_iter is None)
        if body_iter is not None:
            self._pull_if_room(state)  # one chunk ahead of the window

    def _send(self, state: H2State, headers: list, chunks: list, done: bool) -> None:
        """Queue the header block and the first chunks in the engine."""
        engine = self.engine
        sid = state.stream_id
        state.headers_sent = True
        record = state.access
        if record is not None:
            record.status = int(headers[0][1])
            record.sent = sum(map(len, chunks))
        if done and not chunks:
            engine.send_headers(sid, headers, True)
        else:
            engine.send_headers(sid, headers, False)
            if len(chunks) == 1:
                engine.queue_data(sid, chunks[0], done)
            else:
                last = len(chunks) - 1
                for i, chunk in enumerate(chunks):
                    engine.queue_data(sid, chunk, done and i == last)
        if not self._in_receive:
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
        state.out = None
        headers, body = _error_response(status)
        self._send(state, headers, [] if state.is_head else [body], True)

    def _reject(self, state: H2State, status: int) -> None:
        """Answer without running the app (body too large)."""
        state.reject_status = status
        state.dispatched = True
        self._discard_body(state, f"request rejected with {status}")
        if state.task is not None:
            state.task.cancel()
        self.respond_error(state, status)

    def _pull(self, state: H2State) -> None:
        """Get the next chunk(s) from a streaming app iterator."""
        state.pulling = True
        if state.iter_in_thread:
            self.runner.pull_in_thread(self, state)
            return
        # On the loop: one chunk per loop iteration, so a long generator is interleaved with
        # other work.
        try:
            body_iter = state.body_iter
            assert body_iter is not None  # set while the response is pulled
            chunk = next(body_iter)
        except StopIteration:
            self.loop.call_soon(self.pulled, state, (), True)
        except Exception as e:
            self.loop.call_soon(self.pulled, state, (), True, e)
        else:
            self.loop.call_soon(self.pulled, state, (chunk,), False)

    def pulled(self, state: H2State, chunks: Iterable[bytes], done: bool,
               error: BaseException | None = None, closed: bool = False) -> None:
        """Chunks arrived from the iterator of ``state`` (``done``: it is exhausted;
        ``closed``: its ``close()`` was already called where it ran)."""
        checked = self._pulled_chunks(state, chunks, error, closed,
                                      self.streams.get(state.stream_id) is state)
        if checked is None:
            return
        chunks = checked
        record = state.access
        if record is not None:
            record.sent += sum(map(len, chunks))
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
            self._pull_if_room(state)
        self._schedule_flush()

    def respond_trailers(self, state: H2State, fields: list[tuple[bytes, bytes]]) -> None:
        """End the response of ``state`` (its body all given) with a trailer block (RFC 9113
        §8.1), after the DATA still queued. The body producer is done with: its ``close``
        is called. Fields are lower-case ``(bytes, bytes)`` pairs; pseudo-header and
        connection-specific fields are dropped."""
        sid = state.stream_id
        if self.streams.get(sid) is not state:
            return
        fields = [(name, value) for name, value in fields
                  if name[:1] != b":" and name not in _NOT_TRAILERS]
        state.body_iter = None
        self._close_iter(state.iter_close, state.iter_in_thread)
        state.iter_close = None
        self._pull_waiting.pop(sid, None)
        if self.engine.queued(sid):
            self._trailers_waiting[sid] = fields
        else:
            self.engine.send_trailers(sid, fields)
            self._schedule_flush()

    def _on_drained(self, event: StreamDrained) -> None:
        if self._trailers_waiting:
            fields = self._trailers_waiting.pop(event.stream_id, None)
            if fields is not None:
                self.engine.send_trailers(event.stream_id, fields)
                self._schedule_flush()
                return
        if self._websockets:
            websocket = self._websockets.get(event.stream_id)
            if websocket is not None and websocket.session is not None:
                websocket.session.output_drained()
                return
        state = self.streams.get(event.stream_id)
        if state is not None and state.body_iter is not None and not state.pulling:
            self._pull_if_room(state)

    def _output_full(self) -> bool:
        """Response bytes queued for the connection reached ``max_queued_output`` (the
        transport's part as of the last flush: at most what it is now; what this holds back
        is looked at again, with the transport's figure of the moment, when _flush ends)."""
        return self.engine.queued_total + self._buffered >= self._max_output

    def _pull_if_room(self, state: H2State) -> None:
        """Pull the next chunk unless the connection's output is full: then when it drains."""
        if self._pull_waiting or self._output_full():
            self._pull_waiting[state.stream_id] = state
        else:
            self._pull(state)

    def _output_drained(self) -> None:
        """Room in the output: pull waiting responses, then start waiting requests, in turn
        (a pull's chunk arrives later: each is reckoned a ``_PULL_AHEAD`` of the room)."""
        streams = self.streams
        reserved = 0
        for waiting, go in ((self._pull_waiting, self._resume_pull),
                            (self._deferred, self._dispatch_now)):
            while waiting and (self.engine.queued_total + self.transport.get_write_buffer_size()
                               + reserved < self._max_output):
                sid = next(iter(waiting))
                state = waiting.pop(sid)
                if streams.get(sid) is state and not state.finished:
                    go(state)
                    reserved += _PULL_AHEAD

    def _resume_pull(self, state: H2State) -> None:
        if state.body_iter is not None and not state.pulling:
            self._pull(state)

    def _dispatch_now(self, state: H2State) -> None:
        if not state.reject_status:
            self._start(state)

    def _on_sent(self, event: ResponseSent) -> None:
        websocket = self._websockets.get(event.stream_id) if self._websockets else None
        if websocket is not None:                  # our side of the tunnel ended
            websocket.closed()
            if not event.request_complete:         # the peer's close follows (bounded)
                self.engine.stop_reading(event.stream_id, self.config.linger_bytes)
                self.loop.call_later(self.config.linger_timeout, self._linger_over,
                                     event.stream_id)
            self._maybe_close()
            return
        state = self.streams.get(event.stream_id)
        if state is not None:
            self._finish(state, event.request_complete)
            if not event.request_complete:
                self._schedule_flush()

    def _finish(self, state: H2State, request_complete: bool) -> None:
        """The response is fully sent: free the stream now."""
        state.finished = True
        sid = state.stream_id
        self.streams.pop(sid, None)
        if self._pull_waiting or self._deferred:
            self._pull_waiting.pop(sid, None)
            self._deferred.pop(sid, None)
        if state.holds_body:
            self._discard_body(state, "the response is complete")
        if not request_complete:
            # The rest of the body may still come: take it (bounded) so the client reads
            # the answer, then reset with NO_ERROR (RFC 9113 §8.1).
            config = self.config
            self.engine.stop_reading(sid, config.linger_bytes)
            self.loop.call_later(config.linger_timeout, self._linger_over, sid)
        if state.access is not None:
            self._request_ended(state, state.access)
        state.release_environ()
        if self._closing:
            self._maybe_close()

    def _linger_over(self, stream_id: int) -> None:
        if not self._closed:
            self.engine.reset_stream(stream_id, _NO_ERROR)  # no-op if the client finished
            self._schedule_flush()

    def _reset(self, state: H2State, error_code: int) -> None:
        sid = state.stream_id
        if self.streams.pop(sid, None) is not None:
            if state.access is not None:  # (before the reset drops what is still queued)
                self._request_ended(state, state.access)
            self.engine.reset_stream(sid, error_code)
            self._schedule_flush()
        self._drop_stream(state, f"stream {sid} was reset by the server")
        self._maybe_close()

    def _drop_stream(self, state: H2State, error: BaseException | str) -> None:
        """Stop all work for a stream that is gone."""
        state.finished = True
        if state.access is not None:
            self._request_ended(state, state.access)
        if self._deferred or self._pull_waiting or self._trailers_waiting:
            self._deferred.pop(state.stream_id, None)
            self._pull_waiting.pop(state.stream_id, None)
            self._trailers_waiting.pop(state.stream_id, None)
        self._discard_body(state, error)
        self._stop_app(state)

    def _request_ended(self, state: H2State, record: AccessRecord) -> None:
        """The request of ``state`` ended, once (answered, reset or dropped): its access line
        and its count in the metrics, both by the status sent (0 if none was)."""
        state.access = None
        metrics = self.metrics
        if metrics is not None:
            metrics.http2_ended(record.status, now() - record.arrived)
        access_log = self.access_log
        if access_log is not None:
            # Body bytes handed to the transport: those queued, less those the engine still
            # holds (none once the response is sent; the engine drops them on a reset).
            record.sent -= self.engine.queued(state.stream_id)
            record.client = state.client_address()
            record.method, record.target = state.request_line()
            access_log.write(record)

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
        transport = self.transport
        data = engine.data_to_send(_FLUSH_DATA)
        if data:
            transport.write(data)
        self._buffered = buffered = transport.get_write_buffer_size()
        if not buffered:
            engine.output_drained()  # the control frames we queued are out
        events = engine.send_events()
        if events:
            handlers = self._handlers
            for event in events:
                handlers[event.__class__](event)
        if (self._pull_waiting or self._deferred) and not self._write_paused:
            self._output_drained()
        if engine.wants_write:
            self._schedule_flush()


#: Connections closed for their errors (and GOAWAYs with one), briefly and at a bounded rate.
_closing_log = RateLimitedLog("%d more connections closed for errors")


def _expects_continue(headers: list) -> bool:
    for name, value in headers:
        if name == b"expect":
            return value.lower() == b"100-continue"
    return False

