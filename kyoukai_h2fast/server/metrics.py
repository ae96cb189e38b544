"""Prometheus metrics (``--metrics-port``): what is counted, where it is kept, and ``/metrics``.

It owns the figures and their names, and the endpoint that serves them; the protocols only
report to it (a request ended, a connection failed), through hooks that are ``None`` when
metrics are off, so the cost then is one attribute test per request. prometheus_client (the
``metrics`` extra) writes the exposition format.

What is counted (names fixed: scripts and dashboards rely on them):

* ``kyoukai_h2fast_requests_total{protocol,status}``: requests, once each, when they end.
  ``protocol`` is ``HTTP/2`` or ``HTTP/1.1`` (HTTP/1.0 counts as ``HTTP/1.1``); ``status`` is
  the code of the response sent (also when its body was then cut short, as the access log
  says it), or ``reset`` when the request ended before a status was sent (an HTTP/2 stream
  reset by either side, a connection that closed or was aborted first); requests the server
  answers by itself, 400, 408, 413, ..., count with their code;
* ``kyoukai_h2fast_request_duration_seconds{protocol}``: histogram of the seconds from a
  request's arrival (its HTTP/2 HEADERS handled, its HTTP/1.1 head parsed) to its last
  response byte handed to the transport (or to its end), for requests with a status sent
  (:data:`BUCKETS`);
* ``kyoukai_h2fast_received_bytes_total{protocol}`` / ``..._sent_bytes_total{protocol}``:
  bytes read from and written to connections (HTTP/2 frames, HTTP/1.1 messages; before TLS);
* ``kyoukai_h2fast_open_connections{protocol}``, ``kyoukai_h2fast_open_streams{protocol}``
  (HTTP/2 streams open; HTTP/1.1 requests received and not yet answered);
* ``kyoukai_h2fast_connections_closed_total{reason}``: HTTP/2 connections the server closed
  for a connection error: ``reason`` is the flood budget crossed (``resets``, ``pings``,
  ``settings``, ``empty_frames``, ``queued_control_frames``, after their ``--max-...``
  options; always exported, 0 included), else the RFC 9113 error code sent, lower case
  (``protocol_error``, ``compression_error``, ...);
* the WSGI thread pool (:class:`~kyoukai_h2fast.execution.WorkerPool`), what autoscalers
  read: ``kyoukai_h2fast_threadpool_busy_threads`` (app handlers running),
  ``..._queue_depth`` (handlers waiting for a thread), ``..._threads``, ``..._size``;
* ``kyoukai_h2fast_worker_processes``: serving processes reporting.

Where it is kept. Each serving process counts in plain lists of its own (a
:class:`Recorder`: a few list updates per request, no lock, no library call) and copies them,
with its gauges, into its *slot* of a :class:`MetricsBoard` once a second, when it answers a
scrape, and when it stops. The board is one block of shared memory (an anonymous ``mmap``,
made before worker processes are forked, so every process sees the same pages) cut into
slots of 64-bit numbers at fixed places. When a worker dies the supervisor adds its counters
into the *retired* slot and frees its slot (under a sequence number, so a reader never sees
them twice or not at all): totals never go down when a worker is replaced (a worker killed
outright loses what it counted since it last published, at most a second). Why not
prometheus_client's multiprocess mode: it keeps one file per process in a directory that must
be wiped at start, every update goes through the library, and gauges of dead workers need
manual clean-up; a fixed layout in memory needs none of that.

Where it is served. The listening socket (``--metrics-host``, default 127.0.0.1,
``--metrics-port``) is bound once (by the supervisor with ``--workers N``) and served by every
serving process's event loop, over HTTP/1.1, with the server's own protocol and an inline
WSGI app (prometheus_client's, which negotiates gzip and OpenMetrics): whichever process
accepts a scrape publishes its own figures and reads the whole board, so ``GET /metrics``
shows the totals of the server (the other workers' as of their last publication).
"""
from __future__ import annotations

import asyncio
import functools
import logging
import mmap
import os
import struct
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..constants import ErrorCode
from ..errors import ConnectionFailed
from ..http1.protocol import H1Protocol
from ..http2.protocol import H2KyoukaiProtocol

if TYPE_CHECKING:
    import socket

    from ..config import ServerConfig
    from .listener import Listener

__all__ = ["BUCKETS", "PROTOCOLS", "HTTP2", "HTTP1", "BUDGETS", "MetricsBoard", "Recorder",
           "MetricsEndpoint", "SharedMetrics", "serve_metrics"]

log = logging.getLogger("kyoukai_h2fast")

#: Protocol label values, by index (``HTTP2``, ``HTTP1``).
PROTOCOLS = ("HTTP/2", "HTTP/1.1")
HTTP2 = 0
HTTP1 = 1
#: Upper bounds (seconds) of the request duration histogram, then ``+Inf``: from 100 µs (a
#: request served from memory on a compiled build) to 10 s.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
           0.5, 1.0, 2.5, 5.0, 10.0)
#: The flood budgets (``ConnectionFailed.budget``), always exported.
BUDGETS = ("resets", "pings", "settings", "empty_frames", "queued_control_frames")
#: ``reason`` label values of connections_closed_total, by index.
REASONS = BUDGETS + tuple(name.lower() for name in vars(ErrorCode) if name.isupper()) + (
    "other",)
_REASON_INDEX = {name: i for i, name in enumerate(REASONS)}
_CODE_REASON = {code: _REASON_INDEX[name.lower()] for name, code in vars(ErrorCode).items()
                if name.isupper()}

# -- the layout of a slot (indexes of 64-bit numbers) ------------------------------------------
_STATUSES = 1000                      # status codes 100-999; index 0: reset
_NB = len(BUCKETS) + 1                # histogram buckets, +Inf last
_PID = 0                              # the process writing the slot (0: free)
_REQUESTS = 8                         # [protocol][status]
_HISTOGRAM = _REQUESTS + 2 * _STATUSES    # [protocol][bucket]
_RECEIVED = _HISTOGRAM + 2 * _NB          # [protocol]
_SENT = _RECEIVED + 2                     # [protocol]
_CLOSED = _SENT + 2                       # [reason]
_SUMS = _CLOSED + len(REASONS)            # float64: duration sums [protocol]
_GAUGES = _SUMS + 2                       # connections[2], streams[2], pool: busy, queue,
_CONNECTIONS, _STREAMS = _GAUGES, _GAUGES + 2   # threads, size
_BUSY, _QUEUE, _THREADS, _POOL_SIZE = range(_GAUGES + 4, _GAUGES + 8)
_SLOT = _GAUGES + 8
#: What a process publishes, from _REQUESTS to the end of its slot (native order, no padding).
_SLOT_LAYOUT = struct.Struct(f"={_SUMS - _REQUESTS}q2d{_SLOT - _GAUGES}q")
_COUNTERS = range(_REQUESTS, _SUMS)       # summed into the retired slot when a worker dies
#: Board header: the sequence number odd while the supervisor moves a slot to the retired one.
_SEQUENCE = 0
_HEADER = 8
#: Seconds between two publications of a process's figures into its slot.
PUBLISH_EVERY = 1.0


class MetricsBoard:
    """The shared memory every serving process writes its figures to (see the docstring).

    Slot 0 holds the counters of processes that are gone; slots 1..``slots`` are claimed by
    serving processes (:meth:`claim`), one each, and freed when they exit (:meth:`release`).
    """

    def __init__(self, slots: int = 1) -> None:
        self.slots = slots
        #: The shared pages (MAP_SHARED), and views of them as 64-bit integers and floats.
        self.memory = mmap.mmap(-1, 8 * (_HEADER + _SLOT * (slots + 1)))
        self.ints = memoryview(self.memory).cast("q")
        self.floats = memoryview(self.memory).cast("d")
        self._free = list(range(slots, 0, -1))
        self._by_pid: dict[int, int] = {}

    @staticmethod
    def base(slot: int) -> int:
        """Index of the first number of ``slot``."""
        return _HEADER + _SLOT * slot

    def claim(self) -> int | None:
        """A free slot for a process about to start (None: all taken)."""
        return self._free.pop() if self._free else None

    def fork(self) -> tuple[int, int | None]:
        """``os.fork()`` for a serving process: returns ``(pid, slot)``; in the child the
        slot it writes (None if every slot is taken: its figures are then not shared)."""
        slot = self.claim()
        pid = os.fork()
        if pid and slot is not None:
            self._by_pid[pid] = slot
        return pid, slot

    def release(self, pid: int) -> None:
        """The process ``pid`` exited: add its counters to the retired slot, free its slot."""
        slot = self._by_pid.pop(pid, None)
        if slot is None:
            return
        ints, floats = self.ints, self.floats
        base, retired = self.base(slot), self.base(0)
        ints[_SEQUENCE] += 1
        try:
            for i in _COUNTERS:
                ints[retired + i] += ints[base + i]
            for i in range(_SUMS, _SUMS + 2):
                floats[retired + i] += floats[base + i]
            for i in range(_SLOT):
                ints[base + i] = 0
        finally:
            ints[_SEQUENCE] += 1
        self._free.append(slot)

    def totals(self) -> tuple[list[int], list[float], int]:
        """Every number summed over the slots (gauges of live processes only), and how many
        processes report."""
        ints = self.ints
        for _ in range(1000):
            sequence = ints[_SEQUENCE]
            values, fractions = ints.tolist(), self.floats.tolist()
            if not sequence & 1 and ints[_SEQUENCE] == sequence:
                break
            time.sleep(0.0001)  # the supervisor is moving a slot (microseconds)
        total = [0] * _SLOT
        sums = [0.0, 0.0]
        reporting = 0
        for slot in range(self.slots + 1):
            base = self.base(slot)
            if slot and not values[base + _PID]:
                continue
            reporting += slot > 0
            row = values[base:base + _SLOT]
            for i in range(_REQUESTS, _SLOT):
                if row[i] and not _SUMS <= i < _GAUGES:  # (sums are floats: see ``sums``)
                    total[i] += row[i]
            sums[0] += fractions[base + _SUMS]
            sums[1] += fractions[base + _SUMS + 1]
        return total, sums, reporting


class _Requests:
    """The requests of one protocol in this process (its part of :class:`Recorder`)."""

    __slots__ = ("statuses", "histogram", "seconds")

    def __init__(self) -> None:
        #: Requests ended, by status sent (0: reset).
        self.statuses = [0] * _STATUSES
        #: Complete responses by duration bucket (:data:`BUCKETS`, then +Inf), and their sum.
        self.histogram = [0] * _NB
        self.seconds = 0.0

    def ended(self, status: int, seconds: float) -> None:
        """A request ended ``seconds`` after it arrived, its response's ``status`` sent, or
        before one was (``status`` 0: counted as reset; ``seconds`` unused)."""
        self.statuses[status] += 1
        if status:
            # bisect_left(BUCKETS, seconds), unrolled: compares of floats in bytecode cost a
            # fifth of bisect's (tests/test_metrics.py holds the two equal).
            if seconds <= 0.005:
                if seconds <= 0.0005:
                    i = 0 if seconds <= 0.0001 else 1 if seconds <= 0.00025 else 2
                else:
                    i = 3 if seconds <= 0.001 else 4 if seconds <= 0.0025 else 5
            elif seconds <= 0.5:
                if seconds <= 0.05:
                    i = 6 if seconds <= 0.01 else 7 if seconds <= 0.025 else 8
                else:
                    i = 9 if seconds <= 0.1 else 10 if seconds <= 0.25 else 11
            else:
                i = 12 if seconds <= 1.0 else 13 if seconds <= 2.5 else 14 if seconds <= 5.0 \
                    else 15 if seconds <= 10.0 else 16
            self.histogram[i] += 1
            self.seconds += seconds


class Recorder:
    """What one serving process counts, published into its slot of a :class:`MetricsBoard`.

    The protocols call ``http2_ended(status, seconds)`` and ``http1_ended(status, seconds)``
    when a request ends (:meth:`_Requests.ended`: the one place requests are counted), in
    plain lists of this process. They are copied into the slot, with the gauges, by
    :meth:`publish`: once a second, at scrape time by the process answering, and when
    serving stops. Bytes: the HTTP/2 engines count their own (``bytes_received``,
    ``bytes_sent``), read here from the live connections and added up as they close; HTTP/1.1
    connections get a counting protocol and transport (:meth:`meter`).
    """

    def __init__(self, board: MetricsBoard, slot: int | None, runner: Any = None,
                 connections: set | None = None) -> None:
        if slot is None:  # no shared slot left: count into a board of our own
            log.warning("metrics: no free slot for process %d; its figures are left out",
                        os.getpid())
            board, slot = MetricsBoard(1), 1
        self.board = board
        self._base = board.base(slot)
        self.requests = (_Requests(), _Requests())  # by protocol: HTTP2, HTTP1
        self.http2_ended = self.requests[HTTP2].ended
        self.http1_ended = self.requests[HTTP1].ended
        #: Bytes received by protocol, then sent by protocol (the slot's layout), of the
        #: HTTP/1.1 connections and of the HTTP/2 connections that closed.
        self.io = [0, 0, 0, 0]
        #: Connections closed, by reason (:data:`REASONS`).
        self.closed = [0] * len(REASONS)
        #: The app runner, whose thread pool the gauges read (``runner.executor``).
        self.runner = runner
        #: The live connections of the server (its ``connections``), for the gauges.
        self.connections: set = connections if connections is not None else set()
        self._timer: asyncio.TimerHandle | None = None
        board.ints[self._base + _PID] = os.getpid()

    def connection_failed(self, error: ConnectionFailed) -> None:
        """The engine ended a connection with ``error`` (a crossed flood budget, or another
        connection error)."""
        budget = error.budget
        if budget is not None:
            reason = _REASON_INDEX.get(budget, len(REASONS) - 1)
        else:
            reason = _CODE_REASON.get(error.error_code, len(REASONS) - 1)
        self.closed[reason] += 1

    def http2_closed(self, engine: Any) -> None:
        """An HTTP/2 connection closed: its engine's byte counts join the totals."""
        io = self.io
        io[HTTP2] += engine.bytes_received
        io[2 + HTTP2] += engine.bytes_sent

    def meter(self, protocol: asyncio.Protocol,
              transport: asyncio.Transport) -> tuple[asyncio.Protocol, asyncio.Transport]:
        """The protocol to give ``transport`` and the transport to give ``protocol``: for an
        HTTP/1.1 connection, byte counters between the two; HTTP/2 engines count their own."""
        if isinstance(protocol, H2KyoukaiProtocol):
            return protocol, transport
        metered = MeteredConnection(self, protocol, transport)
        return metered, metered.sender

    # -- into the board -----------------------------------------------------------------------
    def publish(self) -> None:
        """Copy this process's counters and gauges into its slot."""
        gauges = [0, 0, 0, 0]  # connections, streams: by protocol
        io = list(self.io)
        for connection in self.connections:
            if isinstance(connection, H2KyoukaiProtocol):
                gauges[HTTP2] += 1
                gauges[2 + HTTP2] += len(connection.streams)
                engine = connection.engine
                io[HTTP2] += engine.bytes_received
                io[2 + HTTP2] += engine.bytes_sent
            elif isinstance(connection, H1Protocol):
                gauges[HTTP1] += 1
                gauges[2 + HTTP1] += connection.open_requests
        pool = getattr(self.runner, "executor", None)
        gauges += [pool.running("app"), pool.queued, pool.threads, pool.size] \
            if pool is not None else [0, 0, 0, 0]
        http2, http1 = self.requests
        _SLOT_LAYOUT.pack_into(
            self.board.memory, 8 * (self._base + _REQUESTS), *http2.statuses,
            *http1.statuses, *http2.histogram, *http1.histogram, *io, *self.closed,
            http2.seconds, http1.seconds, *gauges)

    def start_publishing(self, loop: asyncio.AbstractEventLoop) -> None:
        self.publish()
        self._timer = loop.call_later(PUBLISH_EVERY, self.start_publishing, loop)

    def stop_publishing(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.publish()


class MeteredConnection(asyncio.Protocol):
    """Between an HTTP/1.1 connection's transport and its protocol: counts the bytes read (as
    the transport's protocol) and written (through :attr:`sender`, the protocol's
    transport)."""

    def __init__(self, recorder: Recorder, protocol: asyncio.Protocol,
                 transport: asyncio.Transport) -> None:
        self.protocol = protocol
        self._io = recorder.io
        self._data_received = protocol.data_received
        self.sender = _CountingTransport(transport, recorder.io, 2 + HTTP1)

    def data_received(self, data: bytes) -> None:
        self._io[HTTP1] += len(data)
        self._data_received(data)

    def eof_received(self) -> bool | None:
        return self.protocol.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        self.protocol.pause_writing()

    def resume_writing(self) -> None:
        self.protocol.resume_writing()


class _CountingTransport(asyncio.Transport):
    """A connection's transport as its protocol sees it: writes are counted."""

    def __init__(self, transport: asyncio.Transport, counts: list[int], index: int) -> None:
        super().__init__()
        #: The transport itself.
        self.wrapped = transport
        self._write = transport.write
        self._counts = counts
        self._index = index
        # Called per request by the protocols: bound once, no frame of ours in between.
        self.get_write_buffer_size = transport.get_write_buffer_size  # type: ignore[method-assign]
        self.is_closing = transport.is_closing  # type: ignore[method-assign]
        self.pause_reading = transport.pause_reading  # type: ignore[method-assign]
        self.resume_reading = transport.resume_reading  # type: ignore[method-assign]
        self.get_extra_info = transport.get_extra_info  # type: ignore[method-assign]
        self.close = transport.close  # type: ignore[method-assign]
        self.abort = transport.abort  # type: ignore[method-assign]

    def write(self, data: Any) -> None:
        self._counts[self._index] += len(data)
        self._write(data)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def count_sent(self, size: int) -> None:
        """``size`` bytes went out without :meth:`write` (zero-copy ``sendfile``)."""
        self._counts[self._index] += size

    def is_reading(self) -> bool:
        return self.wrapped.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.wrapped.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.wrapped.get_write_buffer_limits()

    def can_write_eof(self) -> bool:
        return self.wrapped.can_write_eof()

    def write_eof(self) -> None:
        self.wrapped.write_eof()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.wrapped.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.wrapped.get_protocol()


# -- exposition ----------------------------------------------------------------------------------
class _BoardCollector:
    """A prometheus_client collector: the board's totals as metric families."""

    def __init__(self, board: MetricsBoard, recorder: Recorder) -> None:
        self.board = board
        self.recorder = recorder

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )
        from prometheus_client.utils import floatToGoString

        self.recorder.publish()  # this process's gauges, as of now
        total, sums, reporting = self.board.totals()
        name = "kyoukai_h2fast_"
        requests = CounterMetricFamily(
            name + "requests", "Requests ended, by protocol and status sent ('reset': ended "
            "before a status was sent).", labels=["protocol", "status"])
        durations = HistogramMetricFamily(
            name + "request_duration_seconds", "Seconds from a request's arrival to the last "
            "byte of its response (or to its end).", labels=["protocol"])
        received = CounterMetricFamily(name + "received_bytes", "Bytes read from connections "
                                       "(before TLS).", labels=["protocol"])
        sent = CounterMetricFamily(name + "sent_bytes", "Bytes written to connections "
                                   "(before TLS).", labels=["protocol"])
        connections = GaugeMetricFamily(name + "open_connections", "Open connections.",
                                        labels=["protocol"])
        streams = GaugeMetricFamily(name + "open_streams", "Open HTTP/2 streams; HTTP/1.1 "
                                    "requests received and not answered yet.",
                                    labels=["protocol"])
        for index, protocol in enumerate(PROTOCOLS):
            base = _REQUESTS + index * _STATUSES
            for status in range(_STATUSES):
                count = total[base + status]
                if count:
                    requests.add_metric([protocol, str(status) if status else "reset"], count)
            buckets, cumulative = [], 0
            for i, bound in enumerate((*BUCKETS, float("inf"))):
                cumulative += total[_HISTOGRAM + index * _NB + i]
                buckets.append((floatToGoString(bound), cumulative))
            durations.add_metric([protocol], buckets, sums[index])
            received.add_metric([protocol], total[_RECEIVED + index])
            sent.add_metric([protocol], total[_SENT + index])
            connections.add_metric([protocol], total[_CONNECTIONS + index])
            streams.add_metric([protocol], total[_STREAMS + index])
        closed = CounterMetricFamily(
            name + "connections_closed", "HTTP/2 connections closed by the server for a "
            "connection error: the flood budget crossed, or the error code sent.",
            labels=["reason"])
        for i, reason in enumerate(REASONS):
            count = total[_CLOSED + i]
            if count or reason in BUDGETS:
                closed.add_metric([reason], count)
        yield from (requests, durations, received, sent, connections, streams, closed)
        for suffix, index, text in (
                ("threadpool_busy_threads", _BUSY, "WSGI handlers running in the pool."),
                ("threadpool_queue_depth", _QUEUE, "WSGI handlers waiting for a thread."),
                ("threadpool_threads", _THREADS, "Threads of the WSGI pool."),
                ("threadpool_size", _POOL_SIZE, "Handlers the WSGI pool runs at once.")):
            yield GaugeMetricFamily(name + suffix, text, value=total[index])
        yield GaugeMetricFamily(name + "worker_processes", "Serving processes reporting.",
                                value=reporting)


def _metrics_app(board: MetricsBoard, recorder: Recorder) -> Callable[..., Any]:
    """The WSGI app of the endpoint: prometheus_client's, at ``/metrics`` only."""
    from prometheus_client import CollectorRegistry, make_wsgi_app
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_BoardCollector(board, recorder))
    exposition = make_wsgi_app(registry)

    def app(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not Found: the metrics are at /metrics\n"]
        return exposition(environ, start_response)
    return app


class MetricsEndpoint:
    """The ``/metrics`` listener of one serving process: the server's HTTP/1.1 protocol with
    an inline WSGI app (it looks like a component to
    :class:`~kyoukai_h2fast.http1.protocol.H1Protocol`)."""

    def __init__(self, board: MetricsBoard, recorder: Recorder) -> None:
        from ..apps.runners import make_runner
        from ..config import ServerConfig
        self.app = _metrics_app(board, recorder)
        #: Small limits: scrapes carry no body and few fields.
        self.config = ServerConfig(wsgi_threads=0, max_body_size=0, idle_timeout=60.0,
                                   max_header_list_size=16 * 1024)
        self.runner = make_runner(self.app, 0)
        self.connections: set[Any] = set()
        self.metrics = self.access_log = self.forwarded = None  # scrapes are not counted
        self.recorder = recorder
        self.listener: Listener | None = None

    async def start(self, host: str, port: int,
                    sockets: list[socket.socket] | None = None) -> str:
        """Listen (or serve ``sockets``); returns the URL of the metrics."""
        from .listener import Listener
        loop = asyncio.get_running_loop()
        self.runner.start()
        self.listener = Listener(loop, functools.partial(H1Protocol, self, None), None)
        if sockets:
            self.listener.adopt(sockets)
        else:
            try:
                await self.listener.bind(host, port)
            except OSError as e:
                raise _listen_error(host, port, e) from None
        self.recorder.start_publishing(loop)
        bound = self.listener.port
        return f"http://{f'[{host}]' if ':' in host else host}:{bound}/metrics"

    async def stop(self) -> None:
        self.recorder.stop_publishing()
        if self.listener is not None:
            self.listener.close()
            await self.listener.wait_closed()
        for connection in list(self.connections):
            connection.shutdown()


def _listen_error(host: str, port: int, error: OSError) -> OSError:
    """``error`` saying which listener failed (the CLI prints ``listen_address``)."""
    failure = OSError(error.errno, error.strerror or str(error))
    failure.listen_address = f"{host}:{port} (--metrics-port)"  # type: ignore[attr-defined]
    return failure


async def serve_metrics(component: Any) -> tuple[Recorder, MetricsEndpoint]:
    """Start the metrics of a serving component: its recorder (on the board and sockets a
    supervisor gave it as ``component.metrics_board``/``metrics_sockets``, else its own) and
    its ``/metrics`` endpoint."""
    config: ServerConfig = component.config
    board: MetricsBoard | None = getattr(component, "metrics_board", None)
    slot = getattr(component, "metrics_slot", 1)
    if board is None:
        board = MetricsBoard(1)
    recorder = Recorder(board, slot, component.runner, component.connections)
    endpoint = MetricsEndpoint(board, recorder)
    sockets = getattr(component, "metrics_sockets", None)
    url = await endpoint.start(config.metrics_host, config.metrics_port or 0, sockets)
    if not sockets:
        log.info("kyoukai_h2fast metrics on %s", url)
    return recorder, endpoint


class SharedMetrics:
    """The supervisor's part (``--workers N``): the board, made and the metrics socket bound
    before the workers are forked, and the slot of each worker."""

    def __init__(self, config: ServerConfig, workers: int) -> None:
        from .listener import bind_sockets
        host, port = config.metrics_host, config.metrics_port or 0
        try:
            self.sockets = bind_sockets(host, port)
        except OSError as e:
            raise _listen_error(host, port, e) from None
        # Twice the workers: a replaced worker may still drain while its successor starts.
        self.board = MetricsBoard(2 * workers)
        bound = self.sockets[0].getsockname()[1]
        log.info("kyoukai_h2fast metrics on http://%s:%d/metrics",
                 f"[{host}]" if ":" in host else host, bound)

    def fork(self) -> tuple[int, int | None]:
        """``os.fork()``, claiming a slot for the child (see :meth:`MetricsBoard.fork`)."""
        return self.board.fork()

    def give(self, component: Any, slot: int | None) -> None:
        """In a worker: serve the shared socket and write ``slot`` of the shared board."""
        component.metrics_board = self.board
        component.metrics_slot = slot
        component.metrics_sockets = self.sockets

    def reaped(self, pid: int) -> None:
        self.board.release(pid)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
