"""Static files (``--static /prefix=DIR``): served by the server itself, without the app.

It owns the mapping of a request path under a prefix to a file inside its directory (and
nothing outside it), and the response: fields (``Content-Type`` from :mod:`mimetypes`,
``ETag``, ``Last-Modified``, ``Cache-Control``, ``Accept-Ranges``), conditional requests
(``If-None-Match``, else ``If-Modified-Since``: 304), one byte range (206; 416 when it cannot
be satisfied; ``If-Range`` honoured; a request for several ranges gets the whole file),
``HEAD``, and a precompressed twin (``file.br``, ``file.gz``) for a client whose
``Accept-Encoding`` takes it (``Content-Encoding``, and ``Vary: Accept-Encoding`` on every
response of a file that has a twin). The bytes go out through the connection's
:class:`~kyoukai_h2fast.contracts.Responder` like any app's response, so HTTP/2 flow control,
HTTP/1.1 framing and TLS are the protocols' business: files up to :data:`SMALL_FILE` are read
at once; larger ones go from the page cache to the socket by ``os.sendfile`` where the
connection allows it (cleartext HTTP/1.1: the responder's ``respond_file``, then
:func:`send_file`), else in blocks of :data:`~kyoukai_h2fast.wsgi.filewrapper.MIN_BLOCK_SIZE`
pulled as the client takes them (in the WSGI thread pool when there is one, else on the loop,
one block per loop iteration): never the whole file in memory.

:class:`StaticRunner` wraps the app's runner: requests under a prefix are answered here, all
others go to the app as before. So the cost of this module is nothing when no prefix is set.

Refused with 404 (the same answer as a missing file, so nothing is learnt): path segments
``.`` and ``..`` (also percent-encoded: ``PATH_INFO`` is already decoded), NUL and backslash,
hidden names (a segment starting with ``.``, except ``.well-known``), anything whose real path
(symbolic links resolved) is not inside the directory, directories (unless ``static_index``
names a file to serve for them; a directory requested without its final ``/`` is then
redirected to it, 301), and anything but regular files. Methods other than GET and HEAD get
405 with ``Allow: GET, HEAD``.
"""
from __future__ import annotations

import asyncio
import email.utils
import mimetypes
import os
import stat
from typing import TYPE_CHECKING, Any

from ..config import normal_static_prefix
from ..wsgi.filewrapper import MIN_BLOCK_SIZE, FileWrapper
from .wrapping import WrappingRunner, path_under

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..config import ServerConfig
    from ..contracts import Responder, Runner
    from ..wsgi.request_state import H2State

__all__ = ["StaticRunner", "respond_with_file", "send_file", "SMALL_FILE"]

#: Files up to this size are read at once, on the loop; larger ones in blocks.
SMALL_FILE = 64 * 1024
#: Bytes one ``os.sendfile`` call may send at most (then the loop gets a turn).
_SENDFILE_MAX = 4 * 1024 * 1024
#: Precompressed twins, in order of preference: (content coding, file suffix).
_TWINS = (("br", ".br"), ("gzip", ".gz"))
_ALLOW = [("Allow", "GET, HEAD")]
_TEXT = "text/plain; charset=utf-8"
#: Content types of files that are themselves compressed (mimetypes' "encoding").
_ENCODED_TYPES = {"gzip": "application/gzip", "bzip2": "application/x-bzip2",
                  "xz": "application/x-xz", "br": "application/x-brotli"}


class StaticRunner(WrappingRunner):
    """The app's runner with static prefixes in front (the :class:`Runner` contract)."""

    def __init__(self, runner: Runner, config: ServerConfig) -> None:
        super().__init__(runner)
        #: (prefix without its final '/', real path of the directory), longest prefix first.
        self.mounts = sorted(((normal_static_prefix(prefix), os.path.realpath(directory))
                              for prefix, directory in config.static),
                             key=lambda mount: len(mount[0]), reverse=True)
        self.index = config.static_index
        self.cache_control = config.static_cache_control
        mimetypes.init()  # (read the system's types now, not during a first request)

    def dispatch(self, responder: Responder, state: H2State) -> None:
        environ = state.environ
        assert environ is not None  # built before dispatch
        path = environ["PATH_INFO"]
        for prefix, root in self.mounts:
            if path_under(path, prefix):
                self._serve(responder, state, environ, path[len(prefix):], root)
                return
        self.inner.dispatch(responder, state)

    # -- one request ---------------------------------------------------------------------------
    def _serve(self, responder: Responder, state: H2State, environ: dict, rest: str,
               root: str) -> None:
        method = environ["REQUEST_METHOD"]
        if method != "GET" and method != "HEAD":
            _plain(responder, state, "405 Method Not Allowed", _ALLOW)
            return
        found = _resolve(root, rest)
        if found is None:
            _plain(responder, state, "404 Not Found")
            return
        real, info = found
        if stat.S_ISDIR(info.st_mode):
            found = None if self.index is None else _regular(root, os.path.join(real,
                                                                                self.index))
            if found is None:
                _plain(responder, state, "404 Not Found")
                return
            if not rest.endswith("/"):  # relative links of the index need the final '/'
                target = environ.get("RAW_URI", "").partition("?")
                location = target[0] + "/" + target[1] + target[2]
                _plain(responder, state, "301 Moved Permanently", [("Location", location)])
                return
            real, info = found
        elif rest.endswith("/") or not stat.S_ISREG(info.st_mode):
            _plain(responder, state, "404 Not Found")
            return
        self._send_file(responder, state, environ, root, real, info)

    def _send_file(self, responder: Responder, state: H2State, environ: dict, root: str,
                   real: str, info: os.stat_result) -> None:
        content_type = _content_type(real)  # (of the file, whichever twin is sent)
        vary, coding = [], None
        twins = [(name, found) for name, suffix in _TWINS
                 if (found := _regular(root, real + suffix)) is not None]
        if twins:
            vary = [("Vary", "Accept-Encoding")]
            accepted = _accepted_codings(environ.get("HTTP_ACCEPT_ENCODING", ""))
            for name, (twin, twin_info) in twins:
                if name in accepted:
                    coding, real, info = name, twin, twin_info
                    break
        etag = f'"{info.st_mtime_ns:x}-{info.st_size:x}{"-" + coding if coding else ""}"'
        last_modified = email.utils.formatdate(info.st_mtime, usegmt=True)
        fields = [("ETag", etag), ("Last-Modified", last_modified),
                  ("Cache-Control", self.cache_control), *vary]
        if _not_modified(environ, etag, info.st_mtime):
            state.start_response("304 Not Modified", fields)
            responder.respond(state, [])
            return
        size = info.st_size
        status, first, count = "200 OK", 0, size
        ranged = environ.get("HTTP_RANGE")
        if ranged is not None and _range_applies(environ, etag, last_modified):
            span = _byte_range(ranged, size)
            if span == "unsatisfiable":
                _plain(responder, state, "416 Range Not Satisfiable",
                       [("Content-Range", f"bytes */{size}"), *vary])
                return
            if isinstance(span, tuple):
                first, count = span
                status = "206 Partial Content"
                fields.append(("Content-Range", f"bytes {first}-{first + count - 1}/{size}"))
        fields += [("Content-Type", content_type), ("Content-Length", str(count)),
                   ("Accept-Ranges", "bytes")]
        if coding is not None:
            fields.append(("Content-Encoding", coding))
        file = None
        if count and not state.is_head:
            try:
                file = open(real, "rb")  # noqa: SIM115  (closed with the response)
            except OSError:  # gone or unreadable since the stat
                _plain(responder, state, "404 Not Found")
                return
        state.start_response(status, fields)
        if file is None:
            responder.respond(state, [])
            return
        respond_with_file(responder, state, file, first, count, self.inner.stream)


def respond_with_file(responder: Responder, state: H2State, file: Any, first: int, count: int,
                      stream: Callable[..., None] | None = None) -> None:
    """Send ``count`` bytes of the open ``file`` from ``first`` as the whole body of the
    response started on ``state`` (and close the file with it): read at once when small,
    zero-copy where the responder can (``respond_file``: HTTP/1.1 in cleartext), else in
    blocks, through ``stream`` (a runner's :meth:`~kyoukai_h2fast.contracts.Runner.stream`,
    which may read them in the app's threads) or, without one, pulled on the loop."""
    file.seek(first)
    if count <= SMALL_FILE:
        with file:
            data = file.read(count)
        responder.respond(state, [data])
        return
    respond_file = getattr(responder, "respond_file", None)
    if respond_file is not None and respond_file(state, file, first, count):
        return  # zero-copy (HTTP/1.1 in cleartext)
    blocks = _FileRange(file, count)
    if stream is None:
        responder.respond(state, [], body_iter=blocks, close=blocks.close)
    else:
        stream(responder, state, [], blocks, blocks.close)


class _FileRange(FileWrapper):
    """``count`` bytes of an open file from where it is, in blocks; closed by ``close``."""

    __slots__ = ("remaining",)

    def __init__(self, file: Any, count: int) -> None:
        super().__init__(file, MIN_BLOCK_SIZE)
        self.remaining = count

    def __next__(self) -> bytes:
        if self._closed or self.remaining <= 0:
            raise StopIteration
        data = self.filelike.read(min(self.blksize, self.remaining))
        if not data:
            raise StopIteration
        self.remaining -= len(data)
        return data


async def send_file(loop: asyncio.AbstractEventLoop, transport: asyncio.Transport, file: Any,
                    offset: int, count: int) -> int:
    """Write ``count`` bytes of ``file`` from ``offset`` to the (cleartext) socket under
    ``transport``, after what the transport holds, by ``os.sendfile``: no copy through user
    space. Returns the bytes sent (fewer when the file is shorter). OSError when the peer is
    gone; cancel it when the connection closes.

    Any loop: uvloop has no ``loop.sendfile``, and neither loop lets a transport's socket be
    watched for writing beside the transport, so a duplicate of its descriptor is watched
    (and closed at the end, or on cancellation). The transport is not written to meanwhile
    (HTTP/1.1: the current response is this one).
    """
    sock = transport.get_extra_info("socket")
    fd = os.dup(sock.fileno())
    source = file.fileno()
    sent = 0
    try:
        while sent < count:
            if transport.is_closing():
                raise ConnectionResetError("the connection closed during a file response")
            if transport.get_write_buffer_size():  # its bytes go first
                await _writable(loop, fd)
                continue
            try:
                n = os.sendfile(fd, source, offset + sent, min(count - sent, _SENDFILE_MAX))
            except (BlockingIOError, InterruptedError):
                await _writable(loop, fd)
                continue
            if not n:  # the file is shorter than its stat said
                break
            sent += n
            await asyncio.sleep(0)  # other connections get a turn between calls
    finally:
        os.close(fd)
        count_sent = getattr(transport, "count_sent", None)  # (kyoukai_h2fast.server.metrics)
        if count_sent is not None:
            count_sent(sent)
    return sent


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    waiter = loop.create_future()

    def ready() -> None:
        if not waiter.done():
            waiter.set_result(None)
    loop.add_writer(fd, ready)
    try:
        await waiter
    finally:
        loop.remove_writer(fd)


# -- paths ----------------------------------------------------------------------------------------
def _resolve(root: str, rest: str) -> tuple[str, os.stat_result] | None:
    """The real path and stat of what ``rest`` (a decoded path under the prefix) names
    inside ``root``, or None (refused, or nothing there)."""
    names = []
    for segment in rest.split("/"):
        if not segment:
            continue
        if segment in (".", "..") or "\0" in segment or "\\" in segment or (
                segment[0] == "." and segment != ".well-known"):
            return None
        # PATH_INFO is latin-1 text of the decoded bytes; the file system has its own encoding
        names.append(os.fsdecode(segment.encode("latin-1")))
    return _inside(root, os.path.join(root, *names))


def _inside(root: str, path: str) -> tuple[str, os.stat_result] | None:
    real = os.path.realpath(path)
    if real != root and not real.startswith(root + os.sep) and root != os.sep:
        return None  # a symbolic link out of the directory
    try:
        return real, os.stat(real)
    except (OSError, ValueError):
        return None


def _regular(root: str, path: str) -> tuple[str, os.stat_result] | None:
    found = _inside(root, path)
    if found is None or not stat.S_ISREG(found[1].st_mode):
        return None
    return found


# -- fields ---------------------------------------------------------------------------------------
def _content_type(path: str) -> str:
    kind, encoding = mimetypes.guess_type(path, strict=False)
    if encoding is not None:  # e.g. a .tar.gz: the file is the compressed bytes
        return _ENCODED_TYPES.get(encoding, "application/octet-stream")
    if kind is None:
        return "application/octet-stream"
    if kind.startswith("text/") or kind == "application/javascript":
        return kind + "; charset=utf-8"
    return kind


def _accepted_codings(header: str) -> set[str]:
    """Content codings ``Accept-Encoding`` accepts (q > 0); ``*`` accepts both twins."""
    accepted: set[str] = set()
    refused: set[str] = set()
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if name == "x-gzip":
            name = "gzip"
        (accepted if quality > 0 else refused).add(name)
    if "*" in accepted:
        accepted |= {"br", "gzip"} - refused
    return accepted


def _etag_list(header: str) -> list[str]:
    """The entity tags of an ``If-None-Match``/``If-Match`` field, weakness dropped."""
    return [tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()]


def _not_modified(environ: dict, etag: str, mtime: float) -> bool:
    """RFC 9110 §13.2.2: ``If-None-Match`` (weak comparison), else ``If-Modified-Since``."""
    none_match = environ.get("HTTP_IF_NONE_MATCH")
    if none_match is not None:
        tags = _etag_list(none_match)
        return "*" in tags or etag in tags
    since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if since is not None:
        when = _http_date(since)
        return when is not None and int(mtime) <= when
    return False


def _http_date(text: str) -> float | None:
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None


def _range_applies(environ: dict, etag: str, last_modified: str) -> bool:
    """``If-Range`` (RFC 9110 §13.1.5): the range stands if the validator is still current
    (strong comparison; a date must be the ``Last-Modified`` sent)."""
    condition = environ.get("HTTP_IF_RANGE")
    if condition is None:
        return True
    condition = condition.strip()
    if condition.startswith('"') or condition.startswith("W/"):
        return condition == etag
    return condition == last_modified


def _byte_range(header: str, size: int) -> tuple[int, int] | str | None:
    """``(first, count)`` of a single ``bytes=`` range; ``"unsatisfiable"``; or None: no
    range to apply (another unit, several ranges, bad syntax: the whole file is sent)."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not dash or not (first_text.isdigit() or first_text == "") or not (
            last_text.isdigit() or last_text == "") or first_text == last_text == "":
        return None
    if first_text == "":  # the last N bytes
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        suffix = min(suffix, size)
        return size - suffix, suffix
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None  # invalid: ignored
    if first >= size:
        return "unsatisfiable"
    return first, min(last, size - 1) - first + 1


def _plain(responder: Responder, state: H2State, status: str,
           fields: list | None = None) -> None:
    """A short plain-text response (404, 405, 416, 301)."""
    body = status[4:].encode() + b"\n"
    state.start_response(status, [("Content-Type", _TEXT), ("Content-Length", str(len(body))),
                                  *(fields or ())])
    responder.respond(state, [body])

