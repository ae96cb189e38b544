"""The contracts between the pieces, written down as ``typing.Protocol`` classes.

Three seams, each with more than one implementation:

* :class:`Engine` - a sans-IO server-side HTTP/2 connection (RFC 9113). Implemented by the
  compiled core (``kyoukai_h2fast._engine_c``) and by its pure twin on ``h2``
  (``kyoukai_h2fast.http2.h2engine.engine``), which is also the oracle of the differential tests.
* :class:`Runner` - how a request reaches an app (WSGI in a thread pool or inline, or a
  Kyoukai-style coroutine) and how its response comes back (:mod:`kyoukai_h2fast.apps.runners`).
* :class:`Responder` - what a runner may call on the connection that owns a request: the HTTP/2
  protocol (:mod:`kyoukai_h2fast.http2.protocol`) or an HTTP/1.1 one.

Nothing here runs; the module exists so that the rules are in one place, and so that type
checkers hold every implementation to them.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import asyncio

    from .config import ServerConfig
    from .http2.events import Event
    from .wsgi.request_state import H2State

__all__ = ["Engine", "Runner", "Responder"]


class Engine(Protocol):
    """Server-side HTTP/2 connection state: bytes in, events out, bytes to send. No I/O.

    Theory of operation. The protocol feeds every received byte to :meth:`receive` and
    handles the returned events in order. Responses go the other way: :meth:`send_headers`
    queues a header block at once; :meth:`queue_data` appends body bytes to the stream's
    *send queue*, which the engine drains as the flow-control windows allow, in the order its
    scheduler picks (RFC 9218 §10: lower urgency first; within one urgency non-incremental
    responses one at a time by stream id, incremental ones and requests without any priority
    signal sharing frame by frame). Priorities come from the request's ``priority`` field and
    PRIORITY_UPDATE frames (read by the engine, reported in
    :class:`~kyoukai_h2fast.http2.events.RequestReceived`), the response's ``priority`` field (see
    :meth:`send_headers`) and :meth:`set_priority`. Nothing is written until the
    protocol calls :meth:`data_to_send`: control frames and header blocks first, in the order
    they were queued, then DATA frames from the send queues, at most ``max_data`` payload
    bytes. Window updates from the peer and SETTINGS changes are handled inside the engine;
    the protocol learns what the sending achieved from :meth:`send_events`
    (:class:`~kyoukai_h2fast.http2.events.StreamDrained`: pull more from the app;
    :class:`~kyoukai_h2fast.http2.events.ResponseSent`: the response is complete).

    Streams. The engine owns stream state (RFC 9113 §5.1) and frees a stream's memory as soon
    as it is closed in both directions or reset; it remembers how recently closed streams
    ended in bounded memory, to tell stream errors from connection errors for late frames.
    A stream reset by the peer or by the engine itself (a stream error) is reported once as
    :class:`~kyoukai_h2fast.http2.events.StreamReset`. Calls that act on a stream the engine no
    longer has open for sending (reset, closed, unknown), and every call after a connection
    error, are ignored: a worker's late result is never an error.

    Receiving. Bytes of request bodies count against the receive windows until the protocol
    calls :meth:`acknowledge` for them (the app consumed them); the engine then sends
    WINDOW_UPDATE frames, batched. Padding is the protocol's to hand back too:
    ``DataReceived.flow_controlled_length`` counts the payload, the Pad Length field and the
    padding, and the protocol acknowledges ``flow_controlled_length - len(data)`` at once
    (the app never reads padding). DATA the protocol never sees (on streams the engine reset,
    on streams after :meth:`stop_reading`) is credited by the engine itself.

    Extended CONNECT (RFC 8441). With ``ServerConfig.ws_http2`` the engine advertises
    SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 and reports a request with ``:protocol`` as
    :class:`~kyoukai_h2fast.http2.events.ExtendedConnectReceived` (not ``RequestReceived``);
    the stream is then a tunnel like any other stream (``send_headers`` 200, DATA both ways
    under flow control). Without the setting such a request is a stream error PROTOCOL_ERROR.

    Budgets (RFC 9113 §10.5: denial of service). Per received frame, the engine counts what
    a peer can make it do without progress: PINGs, SETTINGS, frames without progress (empty
    DATA, tiny WINDOW_UPDATEs, PRIORITY, ...), stream resets the peer sends or provokes, and
    control frames queued while the protocol has not reported its output drained
    (:meth:`output_drained`); crossing a budget of the ``ServerConfig`` is a connection error
    ENHANCE_YOUR_CALM (:mod:`kyoukai_h2fast.http2.h2engine.budgets` says what counts). For
    fairness, :meth:`receive` can stop after ``max_frames`` frames and keep the rest
    (:attr:`input_pending`); both engines stop at the same frame.

    Errors. A connection error makes :meth:`receive` queue GOAWAY with the RFC 9113 §7 error
    code and raise :class:`~kyoukai_h2fast.errors.ConnectionFailed`; the engine is closed from
    then on. Stream errors never raise: they queue RST_STREAM and report ``StreamReset``.
    """

    def __init__(self, config: ServerConfig) -> None: ...

    def initiate(self) -> None:
        """Queue the server preface: our SETTINGS, then a connection WINDOW_UPDATE when the
        configured connection window is larger than 65,535."""

    def receive(self, data: bytes, max_frames: int = -1) -> list[Event]:
        """Feed bytes from the peer (the client preface included); return the events of at
        most ``max_frames`` frames (negative: all). Frames beyond that stay buffered
        (:attr:`input_pending`) until the next call, which may pass ``b""``."""

    @property
    def input_pending(self) -> bool:
        """True when the last :meth:`receive` stopped at ``max_frames`` (more frames may be
        buffered)."""

    def output_drained(self) -> None:
        """Everything :meth:`data_to_send` returned so far has been written out (the
        transport's buffer is empty): the control frames queued until now no longer count
        against ``max_queued_control_frames``."""

    def data_to_send(self, max_data: int = -1) -> bytes:
        """Take the bytes to write: every queued control frame and header block, then DATA
        from the send queues, at most ``max_data`` payload bytes (negative: no bound but the
        windows). Records send events (see :meth:`send_events`)."""

    def send_events(self) -> list[Event]:
        """Take the send-side events recorded since the last call (``StreamDrained``,
        ``ResponseSent``), in the order they happened."""

    @property
    def wants_write(self) -> bool:
        """True when :meth:`data_to_send` would return bytes now (queued frames, or queued
        DATA with window to send it)."""

    def send_headers(self, stream_id: int, headers: list[tuple[bytes, bytes]],
                     end_stream: bool) -> bool:
        """Queue a response header block (``:status`` first). A ``1xx`` block may precede the
        final one (never with ``end_stream``). A ``priority`` field in the final block changes
        the response's priority by the parameters it has (RFC 9218 §8); it is sent as well.
        Returns False when the stream is not open for sending (then nothing is queued)."""

    def queue_data(self, stream_id: int, data: bytes | bytearray | memoryview,
                   end_stream: bool) -> bool:
        """Append ``data`` (may be empty) to the stream's send queue; ``end_stream``: it is
        the last of the response. The engine keeps a reference (no copy); the caller must not
        mutate it. Returns False when the stream is not open for sending."""

    def send_trailers(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> bool:
        """Queue a trailer block with END_STREAM after the response's DATA (RFC 9113 §8.1).
        Only when the final header block went, the stream's send queue is empty (wait for
        ``StreamDrained``) and the response has not ended; else False and nothing queued."""

    def queued(self, stream_id: int) -> int:
        """Bytes in the stream's send queue not yet written (0 for unknown streams)."""

    @property
    def queued_total(self) -> int:
        """Bytes in all send queues of the connection, not yet written."""

    @property
    def bytes_received(self) -> int:
        """Bytes given to :meth:`receive` so far (the metrics read it)."""

    @property
    def bytes_sent(self) -> int:
        """Bytes returned by :meth:`data_to_send` so far (the metrics read it)."""

    def acknowledge(self, stream_id: int, size: int) -> None:
        """The app consumed ``size`` body bytes of ``stream_id``: reopen the windows for them
        (also for a stream that is gone, which still owes the connection window)."""

    def stop_reading(self, stream_id: int, max_bytes: int) -> None:
        """The request body of ``stream_id`` is no longer wanted (the response went out
        early): further DATA is credited at once and not reported; after ``max_bytes`` more
        the stream is reset with NO_ERROR (RFC 9113 §8.1). When the peer ends the stream, the
        engine sends a PING (opaque data all zero): some clients (curl 7.88) that had the
        whole response before they finished uploading wait for the server to send anything
        before they notice the exchange is over."""

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        """Queue RST_STREAM, drop the stream's send queue and forget it (no event)."""

    def send_ping(self, opaque_data: bytes) -> None:
        """Queue a PING frame (RFC 9113 §6.7) carrying ``opaque_data`` (exactly 8 bytes, else
        ValueError); :meth:`receive` reports the peer's ACK of any PING as
        :class:`~kyoukai_h2fast.http2.events.PingAcknowledged` (keep-alive: the protocol checks
        the peer still answers). Call it after :meth:`initiate`; ignored after a connection
        error."""

    def set_priority(self, stream_id: int, urgency: int, incremental: bool) -> None:
        """RFC 9218: the scheduling parameters of ``stream_id``'s response from now on."""

    def goaway(self, error_code: int = 0, debug: bytes = b"",
               last_stream_id: int | None = None) -> int:
        """Queue GOAWAY (default last stream id: the highest the peer opened) and refuse
        streams above it with REFUSED_STREAM; streams up to it may finish (§6.8). Returns the
        last stream id sent."""

    @property
    def highest_stream_id(self) -> int:
        """The highest stream id the peer opened (0: none yet). Read, never counted per
        request: ``(highest_stream_id + 1) // 2`` is the connection's number of requests
        (streams the client skipped or the server refused included)."""


class Responder(Protocol):
    """What an app runner may call on the connection that owns a request.

    Every method runs on the event loop thread (runners in worker threads post to it), and
    every method tolerates a request whose stream or connection is already gone: the call is
    then a no-op (an iterable's ``close`` is still called).
    """

    loop: asyncio.AbstractEventLoop
    #: The asphalt context (or None) given to Kyoukai-style apps.
    parent_context: Any

    def respond(self, state: H2State, chunks: Iterable[bytes], *,
                body_iter: Iterator[bytes] | None = None, in_thread: bool = False,
                close: Callable[[], object] | None = None) -> None:
        """Start the response of ``state``: status and headers from its ``start_response``,
        then ``chunks``, then ``body_iter`` pulled on demand, then ``close()``.

        ``in_thread``: the iterable belongs to the worker job that posted this call; the
        connection never touches ``body_iter`` itself but asks for each next chunk with
        :meth:`Runner.pull_in_thread` (one at a time: the next request after ``pulled``), and
        gives the iterable up with :meth:`Runner.close_in_thread` (``close``), which may be
        called at any time, also while a pull is under way."""

    def respond_error(self, state: H2State, status: int = 500) -> None:
        """A plain error response, or a reset when the headers already went out."""

    def pulled(self, state: H2State, chunks: Iterable[bytes], done: bool,
               error: BaseException | None = None, closed: bool = False) -> None:
        """Chunks pulled from ``state.body_iter`` (by :meth:`Runner.pull_in_thread`)."""

    def body_consumed(self, state: H2State, size: int) -> None:
        """The app took ``size`` body bytes of ``state``: reopen the windows for them."""

    # The HTTP/2 protocol also has ``respond_trailers(state, fields)`` (a streamed response
    # ended by a trailer block, for ASGI's ``http.response.trailers``) and the HTTP/1.1 one
    # ``respond_file(state, file, offset, count)`` (sendfile); callers look them up with
    # getattr.


class Runner(Protocol):
    """Runs requests on one kind of app (:func:`kyoukai_h2fast.apps.runners.make_runner`).

    The server calls :meth:`start`, then :meth:`drain` and :meth:`shutdown` when it stops;
    each connection (a :class:`Responder`) calls :meth:`dispatch` per request,
    :meth:`pull_in_thread` and :meth:`close_in_thread` for responses it was given with
    ``in_thread`` (only runners whose apps run in worker threads give those), :meth:`hand_over`
    after a read when ``multithread``, and :meth:`forget` when it is gone.
    """

    #: ``"kyoukai"``, ``"wsgi"`` or ``"asgi"``.
    kind: str
    #: ``wsgi.multithread``: the app runs in worker threads.
    multithread: bool
    #: True when the app may start before the request body is complete.
    dispatch_early: bool
    #: ``wsgi.errors``.
    errors: Any

    def start(self) -> None:
        """Called once on the serving loop before the first request. A runner may also have
        ``async def startup()``, awaited right after, before the listener accepts (the ASGI
        runner's lifespan startup; its failure stops the server)."""

    async def drain(self, deadline: float) -> None:
        """Called on shutdown, once the connections stopped taking requests: wait (until the
        loop time ``deadline`` at most) for app code still running, while its results still
        reach the loop (so iterables pulled in worker threads get closed)."""

    def shutdown(self) -> None:
        """Called once after the last connection closed (or was abandoned)."""

    def dispatch(self, responder: Responder, state: H2State) -> None:
        """Run the app for ``state`` (``state.environ`` is built); it answers through
        ``responder``. Each request runs in a ``contextvars.Context`` of its own, copied
        from the caller's; for WSGI apps the app call, every ``next()`` of the response
        iterable and its ``close()`` run in that one Context and on one thread."""

    def hand_over(self) -> None:
        """Called by a connection after handling a read: if app jobs wait for a worker thread
        to take the GIL while the loop is busy, pause briefly so one does. Connections call
        it only when ``multithread`` (apps on the loop have no thread to hand over to)."""

    def pull_in_thread(self, responder: Responder, state: H2State) -> None:
        """Have the worker job that owns ``state``'s response pull its next chunk(s), on the
        request's thread and in its context, then post ``responder.pulled(...)`` to the
        loop (with ``closed=True`` once it ended and the job closed it)."""

    def close_in_thread(self, close: Callable[[], object] | None) -> None:
        """The connection gives an ``in_thread`` iterable up: ``close`` is what the runner
        passed to :meth:`Responder.respond` (None: nothing to close); the iterable's own
        ``close()`` runs where the app runs (the request's thread and context), once (a pull
        under way may still post its chunk: ``pulled`` ignores it for a stream that is gone).
        Never blocks the loop."""

    def forget(self, responder: Responder) -> None:
        """``responder``'s connection is gone: drop its app jobs that did not start yet (an
        iterable they would have pulled is still closed)."""

    def stream(self, responder: Responder, state: H2State, chunks: list[bytes],
               it: Iterator[bytes], close: Callable[[], object] | None) -> None:
        """Send a response (status and headers already given to ``state.start_response``)
        whose body the server itself produces: ``chunks`` first, then ``it``, pulled where
        the runner pulls an app's streamed response (a worker thread, or the loop); then
        ``close``."""
