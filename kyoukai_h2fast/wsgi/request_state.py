"""Per-stream state: the request (headers, body as ``wsgi.input``) and the response record.

:class:`H2State` is the seed's public class, kept drop-in: ``H2State(headers, stream_id,
protocol)``, ``read``, ``read_async``, ``get_chunk``, ``insert_data``, ``start_response``,
``get_response_headers``. It does no protocol work itself: the protocol feeds it body bytes
(:meth:`insert_data`, :meth:`spool_data`) and decides when the app starts.

Two ways to hold a request body:

* **streamed** (thread-pool apps, and loop apps that opted in to start early): bytes wait in
  memory until the app reads them, and every byte taken is reported back through
  ``protocol.body_consumed``, so the flow-control window reopens only for consumed data and
  the buffer is bounded by the stream's receive window. In a worker thread ``read`` waits for
  data (at most the body timeout); on the event loop thread it never blocks and raises
  :class:`~kyoukai_h2fast.errors.BodyNotReadyError` for bytes that have not arrived.
* **spooled** (apps on the event loop, which start once the body is complete): bytes are kept
  in memory up to a threshold and beyond it in an anonymous temporary file, and the protocol
  reopens the windows as they arrive, so the client never waits on flow control and memory
  per stream stays bounded by the threshold. Reads then never block.

A stream that is gone makes reads raise :class:`~kyoukai_h2fast.errors.ClientDisconnected`
(or :class:`~kyoukai_h2fast.errors.BodyTimeoutError`); its temporary file is closed at once.
"""
from __future__ import annotations

import asyncio
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import IO, TYPE_CHECKING, Any

from ..constants import UNSIGNALLED
from ..errors import BodyNotReadyError, BodyTimeoutError, ClientDisconnected
from .access_record import printable

if TYPE_CHECKING:
    from ..apps.pool import Resumable
    from .access_record import AccessRecord

__all__ = ["H2State", "get_header", "create_wsgi_environment"]

#: The chunks of a body nothing arrived for yet (shared, empty; replaced by a deque).
#: Typed as the deque it stands for: reads see no chunks in it, and a stream without a body
#: never makes a deque.
_NO_CHUNKS: deque[bytes] = ()  # type: ignore[assignment]
#: Bytes a "next chunk" read takes from a body spooled to a temporary file, at most.
FILE_CHUNK = 256 * 1024

#: A worker thread reading a body reports consumed bytes (reopening the windows) in batches of
#: this size, and before it waits for more; a waiting reader is woken once this much (or what
#: it asked for) has arrived, not on every DATA frame.
_ACK_BATCH = 128 * 1024


def get_header(headers: Iterable[tuple[Any, Any]], name: str | bytes) -> Any:
    """The value of the first header called ``name`` in ``headers``, or None.

    ``headers`` is a list of ``(name, value)`` pairs (bytes, as received, or str); ``name``
    may be str or bytes and is matched against either.
    """
    alt = name.encode("latin-1") if isinstance(name, str) else name.decode("latin-1")
    for key, value in headers:
        if key == name or key == alt:
            return value
    return None


def create_wsgi_environment(r: H2State) -> dict:
    """The PEP 3333 environ for the request held by ``r`` (``wsgi.input`` is ``r``)."""
    from .environ import build_environ, make_base_environ

    base = getattr(r.protocol, "base_environ", None)
    if base is None:
        import sys
        base = make_base_environ(url_scheme="http", server_addr=None, peer_addr=None,
                                 multithread=False, errors=sys.stderr)
    return build_environ(base, r.headers, r)


class H2State:
    """One HTTP/2 stream: request data in, response data out."""

    __slots__ = (
        "stream_id", "headers", "_protocol", "_chunks", "_offset", "_size", "_wake_at",
        "_wake_limit", "_pending", "_file", "_eof", "_error", "_waiter", "_client_wait",
        "_cond", "_loop_thread", "received", "spooled", "last_progress", "_emit_status",
        "_emit_headers", "headers_sent", "out", "body_iter", "iter_in_thread", "iter_close",
        "pulling", "is_head", "task", "job", "dispatched", "finished", "trailers", "environ",
        "reject_status", "access", "unacked", "spooled_on_disk", "spool_memory_counted",
        "priority", "__weakref__",
    )

    def __init__(self, headers: list, stream_id: int, protocol: Any) -> None:
        self.stream_id = stream_id
        #: The request header list as received: ``(bytes, bytes)`` pairs.
        self.headers = headers
        self._protocol = protocol
        # -- request body: received chunks, the first read up to ``_offset`` --
        self._chunks: deque[bytes] = _NO_CHUNKS  # a deque once bytes arrive
        self._offset = 0
        self._size = 0
        #: A reader thread waiting for data wants to be woken once this much is buffered.
        self._wake_at = 0
        #: ... at most this much: what the connection lets the client send unread (the
        #: protocol's ``read_wake_limit``, e.g. half the stream window), so a waiting reader
        #: is always woken before the client runs out of window (set for thread reads).
        self._wake_limit = 16384
        #: Bytes a worker thread read whose window is not reported to the protocol yet.
        self._pending = 0
        #: Spooled body beyond the memory threshold (an anonymous temporary file), or None.
        self._file: IO[bytes] | None = None
        self._eof = False
        self._error: BaseException | str | None = None
        self._waiter: asyncio.Future | None = None
        self._cond: threading.Condition | None = None
        self._loop_thread = getattr(protocol, "loop_thread", None)
        #: Body bytes received so far (for the max-body-size limit).
        self.received = 0
        #: True when the body is spooled (windows reopened by the protocol on arrival).
        self.spooled = False
        #: Loop time of the last body bytes received (or of the request): stall detection.
        self.last_progress = 0.0
        #: Spooled bytes whose window the protocol has not reopened yet.
        self.unacked = 0
        #: Spooled bytes written to the temporary file.
        self.spooled_on_disk = 0
        #: Memory the protocol counts for this stream against its connection's allowance.
        self.spool_memory_counted = 0
        #: Trailer header list, when the client sent trailers.
        self.trailers: list | None = None
        # -- response --
        self._emit_status: str | None = None
        self._emit_headers: list | None = None
        self.headers_sent = False
        #: Output of the legacy ``write()`` callable, sent before the app iterable's (a list
        #: once it wrote something).
        self.out: list | None = None
        #: Remaining app iterator to pull chunks from, or None; ``iter_in_thread``: it is
        #: pulled by ``job``, in the request's thread (``Runner.pull_in_thread``).
        self.body_iter: Iterator[bytes] | None = None
        self.iter_in_thread = False
        #: Closes the iterable (PEP 3333: always, once); ``iter_in_thread``: stops ``job``,
        #: which closes it in the request's thread.
        self.iter_close: Callable[[], object] | None = None
        self.pulling = False
        self.is_head = False
        # -- lifecycle --
        self.task: asyncio.Task | None = None
        #: The worker-pool job that owns a streaming thread-pool response (it pulls and closes
        #: the iterable: :class:`~kyoukai_h2fast.apps.pool.Resumable`), or None.
        self.job: Resumable | None = None
        self.dispatched = False
        self.finished = False
        self.environ: dict | None = None
        self.reject_status = 0
        #: What the access log will say about the request (None while the log is off).
        self.access: AccessRecord | None = None
        #: RFC 9218 ``(urgency, incremental)`` of the response (``RequestReceived.priority``).
        self.priority = UNSIGNALLED

    @property
    def protocol(self) -> Any:
        """The :class:`~kyoukai_h2fast.http2.protocol.H2KyoukaiProtocol` this stream belongs to."""
        return self._protocol

    # -- naming the request in log lines (any thread) ----------------------------------------
    def client_address(self) -> str:
        """``address:port`` of the client: from the environ once built (after trusted proxy
        headers), else the connection's peer."""
        environ = self.environ
        if environ is not None:
            return f"{environ.get('REMOTE_ADDR', '')}:{environ.get('REMOTE_PORT', '')}"
        protocol = self._protocol
        return f"{getattr(protocol, 'ip', None)}:{getattr(protocol, 'client_port', None)}"

    def request_line(self) -> tuple[str, str]:
        """``(method, target)`` as received (control characters escaped)."""
        method = target = ""
        for name, value in self.headers:
            if name == b":method":
                method = printable(value.decode("latin-1"))
            elif name == b":path":
                target = printable(value.decode("latin-1"))
            elif name[:1] != b":":
                break  # (pseudo-header fields come first)
        return method, target

    def describe(self) -> str:
        """The request in a log line: ``GET /path from 127.0.0.1:5555 (stream 1)``."""
        method, target = self.request_line()
        label = getattr(self._protocol, "request_label", "stream")
        return f"{method} {target} from {self.client_address()} ({label} {self.stream_id})"

    # -- feeding (event loop thread only) --------------------------------------------------
    def insert_data(self, data: bytes) -> None:
        """Append received body bytes (streamed body); wake a waiting reader once what it
        waits for is there (not on every DATA frame)."""
        if self._chunks is _NO_CHUNKS:
            self._chunks = deque()
        cond = self._cond
        if cond is None:
            self._chunks.append(data)
            self._size += len(data)
        else:
            with cond:
                self._chunks.append(data)
                self._size += len(data)
                if self._size >= self._wake_at:
                    cond.notify()
        self._wake()

    def spool_data(self, data: bytes, memory_limit: int) -> None:
        """Keep received body bytes of a spooled body: in memory while the stream's memory
        stays within ``memory_limit``, else (all of it, in order) in the temporary file."""
        file = self._file
        if file is None:
            if self._size + len(data) <= memory_limit:
                if self._chunks is _NO_CHUNKS:
                    self._chunks = deque()
                self._chunks.append(data)
                self._size += len(data)
                return
            file = self._file = tempfile.TemporaryFile(prefix="kyoukai-h2fast-body-")
            if self._size:
                held = self._size
                file.write(self._take(-1))
                self.spooled_on_disk += held
        file.write(data)
        self.spooled_on_disk += len(data)

    def feed_eof(self) -> None:
        """The request body is complete."""
        if self._file is not None:
            self._file.seek(0)
        cond = self._cond
        if cond is None:
            self._eof = True
        else:
            with cond:
                self._eof = True
                cond.notify_all()
        self._wake()

    def release_environ(self) -> None:
        """The request is over (answered, or its stream gone): drop the links that would keep
        it in a reference cycle, so it is freed now rather than by a later GC pass. The
        environ holds this state as ``wsgi.input``, and werkzeug's ``Request`` puts itself in
        the environ it reads (``werkzeug.request``); what the app still holds keeps working."""
        environ = self.environ
        if environ is not None:
            self.environ = None
            environ.pop("werkzeug.request", None)

    def abort(self, error: BaseException | str) -> int:
        """The stream is gone: drop buffered bytes; reads raise ``error`` (a message: a
        :class:`~kyoukai_h2fast.errors.ClientDisconnected` with it). Returns the bytes
        received whose window was not handed back yet (in memory, or read by a worker thread
        and not reported)."""
        cond = self._cond
        if cond is None:
            self._error = error
            discarded = self._size
            self._clear()
        else:
            with cond:
                self._error = error
                discarded = self._size + self._pending
                self._pending = 0
                self._clear()
                cond.notify_all()
        file = self._file
        if file is not None:
            self._file = None
            file.close()
        self._wake()
        return discarded

    def _clear(self) -> None:
        self._chunks = _NO_CHUNKS
        self._offset = 0
        self._size = 0

    def wake_reader(self) -> None:
        """Wake a reader thread waiting for more than is buffered (the connection window is
        full of unread bytes: it must take what is there)."""
        cond = self._cond
        if cond is not None and self._wake_at:
            with cond:
                if self._size:
                    cond.notify()

    def enable_thread_reads(self, client_wait: Callable[[], AbstractContextManager[object]]
                            ) -> None:
        """Allow blocking reads from worker threads (called before handing to a thread); each
        wait for the client's bytes runs inside ``client_wait()`` (the thread pool's
        :func:`~kyoukai_h2fast.apps.pool.blocking`, which gives the thread's slot to another
        job meanwhile)."""
        if self._cond is None and not self._eof:
            self._client_wait = client_wait
            self._cond = threading.Condition()
            self._wake_limit = min(getattr(self._protocol, "read_wake_limit", 16384),
                                   _ACK_BATCH)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def buffered(self) -> int:
        """Body bytes received and held in memory, not yet read by the app."""
        return self._size

    @property
    def body_complete(self) -> bool:
        return self._eof

    @property
    def holds_body(self) -> bool:
        """True when something of the body is still held or may be read: bytes buffered or
        spooled, a reader that could wait, or a body still to come."""
        return bool(self._size or self._file is not None or self._cond is not None
                    or self._waiter is not None or not self._eof or self.spooled
                    or self._pending or self.unacked)

    @property
    def waiting_for_body(self) -> bool:
        """True when the app reads, or will read, body bytes that have not arrived."""
        return not self._eof and self._error is None

    # -- taking (any thread; the lock is held by the caller when threads read) -------------
    def _take(self, size: int) -> bytes:
        """Up to ``size`` bytes (all when negative) from the front: whole received chunks are
        handed over as they are, only a partly read chunk is sliced (no other copy)."""
        parts: list = []
        self._take_into(size, parts)
        if not parts:
            return b""
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _take_into(self, size: int, parts: list) -> int:
        """Append up to ``size`` bytes (all when negative) to ``parts``; returns how many."""
        file = self._file
        if file is not None and self._eof:  # a spooled body: the file holds all of it
            data = file.read(size if size >= 0 else -1)
            if size < 0 or len(data) < size:
                self._file = None
                file.close()
            if data:
                parts.append(data)
            return len(data)
        chunks = self._chunks
        if not chunks or not size:
            return 0
        need = taken = self._size if size < 0 or size > self._size else size
        self._size -= need
        offset = self._offset
        while need:
            chunk = chunks[0]
            left = len(chunk) - offset
            if left <= need:
                parts.append(chunk if not offset else chunk[offset:])
                chunks.popleft()
                offset = 0
                need -= left
            else:
                parts.append(chunk[offset:offset + need])
                offset += need
                need = 0
        self._offset = offset
        return taken

    def _line_length(self) -> int:
        """Length of the first line buffered (with its ``\\n``), or -1 when none is."""
        scanned = 0
        start = self._offset
        for chunk in self._chunks:
            end = chunk.find(b"\n", start)
            if end >= 0:
                return scanned + end - start + 1
            scanned += len(chunk) - start
            start = 0
        return -1

    def _consumed(self, n: int) -> None:
        if n and not self.spooled:
            if threading.get_ident() == self._loop_thread:
                self._protocol.body_consumed(self, n)
            else:  # a worker thread, holding the lock: report in batches
                self._pending += n
                if self._pending >= _ACK_BATCH:
                    self._report_consumed()

    def _report_consumed(self) -> None:
        n = self._pending
        if n:
            self._pending = 0
            protocol = self._protocol
            protocol.loop.call_soon_threadsafe(protocol.body_consumed, self, n)

    def _check_error(self) -> None:
        if self._error is not None:
            raise self._failure()

    def _failure(self) -> BaseException:
        """The error reads raise once the stream is gone (made on first use: most streams
        end without anybody reading after the end)."""
        error = self._error
        if isinstance(error, str):
            error = self._error = ClientDisconnected(error)
        assert error is not None  # called once the stream failed
        return error

    # -- wsgi.input (PEP 3333) -------------------------------------------------------------
    def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes (all of the body when ``size`` is negative or None)."""
        if size is None:
            size = -1
        if self._cond is None or threading.get_ident() == self._loop_thread:
            return self._read_nowait(size)
        return self._read_blocking(size, line=False)

    def _read_nowait(self, size: int) -> bytes:
        self._check_error()
        if self._file is not None:
            return self._take(size)
        if not self._eof and (size < 0 or self._size < size):
            raise BodyNotReadyError(
                "the request body has not fully arrived; read it with "
                "`await environ['wsgi.input'].read_async()` on the event loop")
        data = self._take(size)
        self._consumed(len(data))
        return data

    def _read_blocking(self, size: int, line: bool) -> bytes:
        cond = self._cond
        assert cond is not None  # reads from worker threads have one
        parts: list[bytes] = []
        got = 0
        timeout = self._protocol.body_timeout
        with cond:
            while True:
                if self._error is not None:
                    raise self._failure()
                found = False
                if line:
                    length = self._line_length()
                    want = length if length >= 0 else self._size
                    if size >= 0:
                        want = min(want, size - got)
                    n = self._take_into(want, parts)
                    found = length >= 0 and n == length
                else:
                    n = self._take_into(-1 if size < 0 else size - got, parts)
                if n:
                    got += n
                    self._consumed(n)
                if found or (size >= 0 and got >= size) or (self._eof and not self._size):
                    break
                # About to wait: hand back the window for what was read, so the client can
                # send the rest, and ask to be woken once enough is there (not per frame).
                self._report_consumed()
                limit = self._wake_limit
                self._wake_at = limit if size < 0 or line else min(size - got, limit)
                try:
                    with self._client_wait():  # a wait for the client holds no pool slot
                        arrived = cond.wait(timeout)
                finally:
                    self._wake_at = 0
                if not arrived:
                    raise BodyTimeoutError(
                        f"no request body bytes for {timeout:g} s on stream {self.stream_id}")
        if not parts:
            return b""
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        """Read one line (up to and including ``\\n``), at most ``size`` bytes."""
        if size is None:
            size = -1
        if self._cond is None or threading.get_ident() == self._loop_thread:
            self._check_error()
            if self._file is not None and self._eof:
                return self._file.readline(size)
            length = self._line_length()
            if length < 0 and not self._eof and (size < 0 or self._size < size):
                raise BodyNotReadyError("the request body has not fully arrived")
            want = length if length >= 0 else self._size
            data = self._take(want if size < 0 else min(want, size))
            self._consumed(len(data))
            return data
        return self._read_blocking(size, line=True)

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                return lines

    def __iter__(self) -> H2State:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    # -- async reading (event loop thread) ------------------------------------------------
    async def read_async(self, to_end: bool = True) -> bytes:
        """Read the whole remaining body (``to_end``) or the next available chunk (from a
        body spooled to a temporary file: the next :data:`FILE_CHUNK` bytes of it)."""
        parts: list[bytes] = []
        while True:
            self._check_error()
            data = self._take(-1 if to_end or self._file is None else FILE_CHUNK)
            if data:
                self._consumed(len(data))
                if not to_end:
                    return data
                parts.append(data)
            if self._eof and self._file is None and not self._size:
                break
            if self._eof:
                continue
            waiter = self._waiter = self._protocol.loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def get_chunk(self) -> bytes:
        """The body bytes buffered now (never waits; ``b""`` when none; from a body spooled to a
        temporary file, the next :data:`FILE_CHUNK` bytes of it)."""
        self._check_error()
        data = self._take(-1 if self._file is None else FILE_CHUNK)
        self._consumed(len(data))
        return data

    # -- response (WSGI start_response) ---------------------------------------------------
    def start_response(self, status: str, headers: list,
                       exc_info: Any = None) -> Callable[[bytes], None]:
        """PEP 3333 ``start_response``: remember the status and headers to send."""
        if exc_info is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self._emit_status is not None:
            raise AssertionError("start_response called twice without exc_info")
        self._emit_status = status
        self._emit_headers = headers
        return self._write

    def _write(self, data: bytes) -> None:
        # The legacy write() callable: queued before the iterable's output.
        if data:
            if self.out is None:
                self.out = []
            self.out.append(bytes(data))

    def get_response_headers(self) -> list:
        """The response header list for h2: ``(":status", code)`` then the app's headers."""
        status = self._emit_status
        code = status.split(" ", 1)[0] if status else "500"
        return [(":status", code)] + list(self._emit_headers or [])
