"""Server configuration and limits: one frozen dataclass with safe defaults and validation.

Everything a connection needs to know about limits lives here; the CLI, :func:`serve` and
:class:`H2KyoukaiComponent` all build a :class:`ServerConfig`. Values are checked once, in
:meth:`ServerConfig.validate`, which raises :class:`~kyoukai_h2fast.errors.ConfigError` with a
one-line message naming the setting.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
from typing import Any

from .errors import ConfigError

__all__ = ["ServerConfig", "default_wsgi_threads", "resolve_workers", "parse_ip_list",
           "normal_static_prefix", "FIRST_REQUEST_GRACE"]

#: On shutdown (SIGTERM, and the old app's on a reload), seconds a connection that has not
#: sent its first request yet still gets to send it: it was made as the server stopped, and
#: its request is on the way (then it is served, and the connection closed after it). The
#: protocol chooser (cleartext), HTTP/2 (before the client preface: TLS chose it at the
#: handshake) and HTTP/1.1 (before a first request) apply it.
FIRST_REQUEST_GRACE = 0.5

KiB = 1024
MiB = 1024 * 1024

#: RFC 9113 §6.5.2 bounds.
_MIN_FRAME_SIZE = 16_384
_MAX_FRAME_SIZE = 16_777_215
_MAX_WINDOW = 2**31 - 1


def default_wsgi_threads() -> int:
    """Thread-pool size for WSGI apps when none is given (the stdlib executor's default)."""
    return min(32, (os.cpu_count() or 1) + 4)


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """Where to listen, how to run the app, and the protocol limits (RFC 9113 §6.5.2)."""

    host: str = "127.0.0.1"
    port: int = 4444
    #: TLS certificate chain and key (PEM). Both None: cleartext h2c (prior knowledge).
    certfile: str | None = None
    keyfile: str | None = None
    #: Threads for WSGI apps; 0 runs the app inline on the event loop (non-blocking apps only).
    wsgi_threads: int = dataclasses.field(default_factory=default_wsgi_threads)

    #: SETTINGS_MAX_CONCURRENT_STREAMS; further streams get RST_STREAM(REFUSED_STREAM).
    max_concurrent_streams: int = 100
    #: SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2, decompressed size incl. 32 B/field).
    max_header_list_size: int = 64 * KiB
    #: SETTINGS_HEADER_TABLE_SIZE for our HPACK decoder.
    header_table_size: int = 4096
    #: SETTINGS_MAX_FRAME_SIZE we accept.
    max_frame_size: int = _MIN_FRAME_SIZE
    #: Request bodies above this get 413 (by content-length up front, or as data arrives).
    max_body_size: int = 64 * MiB
    #: SETTINGS_INITIAL_WINDOW_SIZE: unconsumed body bytes buffered per stream, at most.
    stream_window: int = 1 * MiB
    #: Connection-level receive window: unconsumed body bytes buffered per connection, at most.
    connection_window: int = 16 * MiB
    #: Close a connection after this many seconds without receiving anything, unless the
    #: server is still working on one of its streams (0: never).
    idle_timeout: float = 120.0
    #: A stream whose app waits for body bytes that do not come for this long gets 408 (or
    #: RST_STREAM(CANCEL) once its response started); the app's read fails (0: never).
    body_timeout: float = 30.0
    #: Apps on the event loop get the whole body: kept in memory up to this many bytes per
    #: stream, beyond it in a temporary file.
    body_spool_threshold: int = 1 * MiB
    #: Let apps on the event loop start before the body is complete (they must read it with
    #: ``await wsgi_input.read_async()``). An app attribute ``stream_request_bodies = True``
    #: does the same.
    stream_request_bodies: bool = False
    #: After a response that ended before its request body, keep taking (and discarding) up to
    #: this many body bytes for up to ``linger_timeout`` seconds, then reset the stream, so
    #: clients still uploading read the answer.
    linger_bytes: int = 4 * MiB
    linger_timeout: float = 5.0
    #: WSGI handlers one connection may run in the thread pool at once (0: no cap).
    max_handlers_per_connection: int = 0
    #: On SIGINT/SIGTERM, wait this long for in-flight streams before closing.
    shutdown_timeout: float = 10.0
    #: A peer that resets more than this many streams within 10 s is sent
    #: GOAWAY(ENHANCE_YOUR_CALM) (the "rapid reset" attack, CVE-2023-44487); the resets it
    #: *provokes* count too: every RST_STREAM we send for a frame it sent (stream errors,
    #: refused streams, late frames; "MadeYouReset", CVE-2025-8671).
    max_resets_per_10s: int = 1000
    #: PING frames a peer may send within 10 s (CVE-2019-9512); beyond: ENHANCE_YOUR_CALM.
    max_pings_per_10s: int = 1000
    #: SETTINGS frames a peer may send within 10 s (CVE-2019-9515); beyond: ENHANCE_YOUR_CALM.
    max_settings_per_10s: int = 100
    #: Frames that carry no progress a peer may send within 10 s: DATA without payload or
    #: END_STREAM, WINDOW_UPDATE below 1 KiB, PRIORITY, ACKs, GOAWAY, ignored frame types
    #: (CVE-2019-9518, 9513, 9511); beyond: ENHANCE_YOUR_CALM.
    max_empty_frames_per_10s: int = 1000
    #: Control frames (RST_STREAM, WINDOW_UPDATE, PING/SETTINGS ACKs) queued for a peer whose
    #: reading lags (our output has not drained since); beyond: ENHANCE_YOUR_CALM.
    max_queued_control_frames: int = 1000
    #: Frames handled per read before the event loop serves other connections (the rest of
    #: the read waits, and reading pauses until it is handled).
    max_frames_per_read: int = 100
    #: Response bytes queued per connection (in the engine and the transport) beyond which
    #: streaming responses are not pulled and new requests wait (backpressure, no error).
    max_queued_output: int = 1 * MiB

    # -- production serving (HTTP/1.1, processes, logging, proxies) --
    #: Serve HTTP/1.1 on the same port (TLS: ALPN ``http/1.1``; cleartext: told apart from
    #: the HTTP/2 preface by the first bytes). False: HTTP/2 only (HTTP/1.x gets a 505).
    http1: bool = True
    #: Worker processes: 1 serves in this process; N > 1 runs a supervisor and N workers
    #: (``reuse_port``: a listening socket each); 0 means one per CPU (see
    #: :func:`resolve_workers`). In a worker process: how many serve (``wsgi.multiprocess``
    #: is True when more than one).
    workers: int = 1
    #: One line per request on the ``kyoukai_h2fast.access`` logger.
    access_log: bool = False
    #: Peers whose X-Forwarded-For/-Proto and Forwarded headers are trusted: addresses or
    #: networks (``10.0.0.0/8``), or ``"*"`` for any peer. Empty: trust no one.
    forwarded_allow_ips: tuple = ()
    #: Prometheus metrics at ``http://metrics_host:metrics_port/metrics`` (one endpoint for
    #: all worker processes; 0: any free port); None: off (see kyoukai_h2fast.server.metrics).
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    #: Files served without the app: ``(prefix, directory)`` pairs, e.g.
    #: ``(("/static", "/srv/app/static"),)`` (see kyoukai_h2fast.apps.static_files).
    static: tuple = ()
    #: File served for a request of a static directory (e.g. ``index.html``); None: 404.
    static_index: str | None = None
    #: ``Cache-Control`` of static files (``no-cache``: caches revalidate with the ETag).
    static_cache_control: str = "no-cache"
    #: URL prefix the app is mounted under (``--root-path``), without a final ``/``: WSGI
    #: apps get ``SCRIPT_NAME`` = it and ``PATH_INFO`` without it; requests outside it get
    #: 404 (see kyoukai_h2fast.apps.root_path). ``""``: the app serves every path.
    root_path: str = ""

    # -- WebSockets (RFC 6455 over HTTP/1.1, RFC 8441 over HTTP/2; kyoukai_h2fast.websocket) --
    #: Advertise SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 and take extended CONNECT (RFC 8441)
    #: when the app serves WebSockets (apps that do not never advertise it).
    ws_http2: bool = True
    #: Largest message (after reassembly and decompression); larger: close 1009.
    ws_max_message_size: int = 16 * MiB
    #: Messages received and not yet read by the app, at most; beyond, the socket stops
    #: reading (TCP backpressure on HTTP/1.1, the stream window on HTTP/2).
    ws_max_queue: int = 32
    #: Bytes of a socket's unsent output beyond which the app's send() waits.
    ws_write_limit: int = 64 * KiB
    #: Seconds between the server's pings (0: none); a pong not back within
    #: ``ws_ping_timeout`` seconds closes the connection (1011).
    ws_ping_interval: float = 20.0
    ws_ping_timeout: float = 20.0
    #: Negotiate permessage-deflate (RFC 7692) when the client offers it.
    ws_per_message_deflate: bool = True

    # -- TLS beyond the certificate (kyoukai_h2fast.server.tls; need certfile/keyfile) --
    #: CA certificates (PEM) that issue the client certificates the server accepts.
    ssl_ca_certs: str | None = None
    #: Client certificates: ``"none"`` (not asked for), ``"optional"`` (verified when the
    #: client sends one), ``"required"`` (the handshake fails without a valid one). The
    #: verified certificate reaches the app (kyoukai_h2fast.wsgi.client_cert).
    ssl_cert_reqs: str = "none"
    #: Lowest TLS version accepted: ``"1.2"`` or ``"1.3"``.
    ssl_min_version: str = "1.2"
    #: OpenSSL cipher list for TLS 1.2 (None: ECDHE with AES-GCM or ChaCha20).
    ssl_ciphers: str | None = None
    #: The password of an encrypted keyfile, or a file whose first line is it (preferred:
    #: a password on the command line is visible in ``ps``). Never printed (repr=False).
    ssl_keyfile_password: str | None = dataclasses.field(default=None, repr=False)
    ssl_keyfile_password_file: str | None = None

    # -- HTTP/2 keep-alive PINGs (kyoukai_h2fast.http2.keepalive) --
    #: A connection whose peer sent nothing for this many seconds gets a PING (0: never).
    http2_ping_interval: float = 0.0
    #: Seconds the peer has to acknowledge it; then the connection is closed.
    http2_ping_timeout: float = 20.0
    # -- socket sources and worker processes (kyoukai_h2fast.server.socket_sources,
    #    kyoukai_h2fast.process.supervisor) --
    #: Listen on this Unix domain socket instead of ``host``/``port``; ``uds_permissions``:
    #: its mode (e.g. ``0o660``; None: as the umask makes it).
    uds: str | None = None
    uds_permissions: int | None = None
    #: Serve this inherited listening socket (a file descriptor) instead of binding.
    fd: int | None = None
    #: With ``workers`` > 1 on Linux: one listening socket per worker, bound with
    #: ``SO_REUSEPORT`` (the kernel spreads new connections over them); False: one socket
    #: shared by all workers.
    reuse_port: bool = True
    #: Worker recycling: a worker is replaced (its successor first, then it drains) after
    #: ``max_requests`` requests plus up to ``max_requests_jitter`` more (drawn per worker),
    #: after ``workers_lifetime`` seconds, or once its resident memory exceeds
    #: ``workers_max_rss`` MiB. 0: no such limit.
    max_requests: int = 0
    max_requests_jitter: int = 0
    workers_lifetime: float = 0.0
    workers_max_rss: int = 0
    #: Write the pid of the serving (or supervising) process here; removed on exit.
    pid_file: str | None = None

    # -- app interface --
    #: The kind of app: ``auto`` (detected: Kyoukai-style, ASGI 3, else WSGI), or ``asgi``,
    #: ``wsgi``, ``kyoukai`` to force it (see kyoukai_h2fast.apps.runners.detect_kind).
    interface: str = "auto"

    def validate(self) -> ServerConfig:
        """Check every value; return self. Raises ConfigError naming the first bad one."""
        if (self.certfile is None) != (self.keyfile is None):
            raise ConfigError("--certfile and --keyfile must be given together")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0..65535, got {self.port}")
        if self.wsgi_threads < 0:
            raise ConfigError(f"wsgi-threads must be >= 0, got {self.wsgi_threads}")
        _check_range("max-concurrent-streams", self.max_concurrent_streams, 1, 2**31 - 1)
        _check_range("max-header-list-size", self.max_header_list_size, 1024, 2**31 - 1)
        _check_range("header-table-size", self.header_table_size, 0, 2**31 - 1)
        _check_range("max-frame-size", self.max_frame_size, _MIN_FRAME_SIZE, _MAX_FRAME_SIZE)
        _check_range("max-body-size", self.max_body_size, 0, 2**63 - 1)
        _check_range("stream-window", self.stream_window, 1, _MAX_WINDOW)
        _check_range("connection-window", self.connection_window, 65_535, _MAX_WINDOW)
        _check_range("max-resets-per-10s", self.max_resets_per_10s, 1, 2**31 - 1)
        _check_range("max-pings-per-10s", self.max_pings_per_10s, 1, 2**31 - 1)
        _check_range("max-settings-per-10s", self.max_settings_per_10s, 1, 2**31 - 1)
        _check_range("max-empty-frames-per-10s", self.max_empty_frames_per_10s, 1, 2**31 - 1)
        _check_range("max-queued-control-frames", self.max_queued_control_frames, 1,
                     2**31 - 1)
        _check_range("max-frames-per-read", self.max_frames_per_read, 1, 2**31 - 1)
        _check_range("max-queued-output", self.max_queued_output, 65_536, 2**63 - 1)
        if self.idle_timeout < 0:
            raise ConfigError(f"idle-timeout must be >= 0, got {self.idle_timeout}")
        if self.body_timeout < 0:
            raise ConfigError(f"body-timeout must be >= 0, got {self.body_timeout}")
        if self.linger_timeout < 0:
            raise ConfigError(f"linger-timeout must be >= 0, got {self.linger_timeout}")
        _check_range("body-spool-threshold", self.body_spool_threshold, 0, 2**63 - 1)
        _check_range("linger-bytes", self.linger_bytes, 0, 2**63 - 1)
        _check_range("max-handlers-per-connection", self.max_handlers_per_connection, 0,
                     2**31 - 1)
        if self.shutdown_timeout < 0:
            raise ConfigError(f"shutdown-timeout must be >= 0, got {self.shutdown_timeout}")
        _check_range("workers", self.workers, 0, 1024)
        if not isinstance(self.forwarded_allow_ips, tuple):
            raise ConfigError("forwarded-allow-ips must be a tuple of addresses, networks "
                              f"or '*', got {self.forwarded_allow_ips!r}")
        for entry in self.forwarded_allow_ips:
            if entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except (TypeError, ValueError):
                    raise ConfigError("forwarded-allow-ips: not an address, network or '*': "
                                      f"{entry!r}") from None
        if self.metrics_port is not None:
            _check_range("metrics-port", self.metrics_port, 0, 65535)
            try:
                import prometheus_client  # noqa: F401
            except ImportError:
                raise ConfigError("--metrics-port needs prometheus_client: pip install "
                                  "'kyoukai_h2fast[metrics]'") from None
        if self.static or self.static_index is not None:
            _check_static(self)
        _check_websocket(self)
        _check_interface(self)
        _check_sockets(self)
        _check_recycling(self)
        if self.root_path:
            _check_root_path(self)
        _check_tls_options(self)
        _check_http2_pings(self)
        return self

    @property
    def tls(self) -> bool:
        return self.certfile is not None

    @property
    def multiprocess(self) -> bool:
        """``wsgi.multiprocess``: other processes serve the same app. The supervisor gives
        its workers ``workers`` = their number, the gunicorn worker gunicorn's ``-w``."""
        return self.workers > 1

    @property
    def recycles(self) -> bool:
        """Whether a worker-recycling limit is set (they need the supervisor)."""
        return bool(self.max_requests or self.workers_lifetime or self.workers_max_rss)

    def replace(self, **changes: Any) -> ServerConfig:
        return dataclasses.replace(self, **changes).validate()


def normal_static_prefix(prefix: str) -> str:
    """A ``--static`` prefix as it is matched: ``/static/`` -> ``/static``; ``/`` -> ``""``
    (every path matches)."""
    return prefix.rstrip("/")


def _check_static(config: ServerConfig) -> None:
    """The static settings of ``config``: ConfigError (one line, naming the option) if bad."""
    prefixes = set()
    if not isinstance(config.static, tuple):
        raise ConfigError(f"static must be a tuple of (prefix, directory) pairs, got "
                          f"{config.static!r}")
    for mount in config.static:
        if not (isinstance(mount, tuple) and len(mount) == 2
                and all(isinstance(part, str) for part in mount)):
            raise ConfigError(f"--static: expected /PREFIX=DIR, got {mount!r}")
        prefix, directory = mount
        where = f"--static {prefix}={directory}"
        if not prefix.startswith("/") or "\0" in prefix or "\\" in prefix or any(
                part in (".", "..") for part in prefix.split("/")):
            raise ConfigError(f"{where}: the prefix must be a path starting with '/'")
        if normal_static_prefix(prefix) in prefixes:
            raise ConfigError(f"{where}: prefix {prefix} given twice")
        prefixes.add(normal_static_prefix(prefix))
        if "\0" in directory or not os.path.exists(directory):
            raise ConfigError(f"{where}: no such directory")
        if not os.path.isdir(directory):
            raise ConfigError(f"{where}: not a directory")
    index = config.static_index
    if index is not None and (not index or "/" in index or "\\" in index or "\0" in index
                              or index in (".", "..")):
        raise ConfigError(f"--static-index {index!r}: must be a file name (no '/')")
    value = config.static_cache_control
    if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
        raise ConfigError(f"--static-cache-control {value!r}: not a field value")


def _check_interface(config: ServerConfig) -> None:
    choices = ("auto", "asgi", "wsgi", "kyoukai")
    if config.interface not in choices:
        raise ConfigError(f"--interface {config.interface!r}: must be one of "
                          f"{', '.join(choices)}")


#: The values of ``ssl_cert_reqs`` and ``ssl_min_version``.
SSL_CERT_REQS = ("none", "optional", "required")
SSL_MIN_VERSIONS = ("1.2", "1.3")


def _check_tls_options(config: ServerConfig) -> None:
    """The TLS settings besides the certificate files (whose contents the TLS context checks):
    ConfigError (one line, naming the option) if bad."""
    if config.ssl_cert_reqs not in SSL_CERT_REQS:
        raise ConfigError(f"--ssl-cert-reqs must be none, optional or required, got "
                          f"{config.ssl_cert_reqs!r}")
    if config.ssl_min_version not in SSL_MIN_VERSIONS:
        raise ConfigError(f"--ssl-min-version must be 1.2 or 1.3, got "
                          f"{config.ssl_min_version!r}")
    given = [name for name, value in (
        ("--ssl-ca-certs", config.ssl_ca_certs), ("--ssl-ciphers", config.ssl_ciphers),
        ("--ssl-keyfile-password", config.ssl_keyfile_password),
        ("--ssl-keyfile-password-file", config.ssl_keyfile_password_file),
        ("--ssl-cert-reqs", config.ssl_cert_reqs != "none" or None),
        ("--ssl-min-version", config.ssl_min_version != "1.2" or None)) if value is not None]
    if given and config.certfile is None:
        raise ConfigError(f"{given[0]} needs TLS: give --certfile and --keyfile")
    if config.ssl_cert_reqs != "none" and not config.ssl_ca_certs:
        raise ConfigError(f"--ssl-cert-reqs {config.ssl_cert_reqs} needs --ssl-ca-certs FILE "
                          "(the CA certificates that issue the client certificates)")
    if config.ssl_ca_certs and config.ssl_cert_reqs == "none":
        raise ConfigError("--ssl-ca-certs is only used to verify client certificates: give "
                          "--ssl-cert-reqs optional or required")
    if config.ssl_keyfile_password is not None and config.ssl_keyfile_password_file is not None:
        raise ConfigError("give --ssl-keyfile-password or --ssl-keyfile-password-file, "
                          "not both")
    if config.ssl_ciphers is not None and (not config.ssl_ciphers.strip()
                                           or "\0" in config.ssl_ciphers):
        raise ConfigError(f"--ssl-ciphers: not a cipher list: {config.ssl_ciphers!r}")


def _check_http2_pings(config: ServerConfig) -> None:
    """The keep-alive PING settings: ConfigError (one line, naming the option) if bad."""
    interval, timeout = config.http2_ping_interval, config.http2_ping_timeout
    if not isinstance(interval, (int, float)) or not 0 <= interval < float("inf"):
        raise ConfigError(f"http2-ping-interval must be >= 0 seconds, got {interval!r}")
    if not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
        raise ConfigError(f"http2-ping-timeout must be > 0 seconds, got {timeout!r}")


def _check_sockets(config: ServerConfig) -> None:
    """``uds``, ``uds_permissions``, ``fd``, ``reuse_port``: ConfigError if bad (whether the
    path's directory exists and the fd is a socket is checked when they are opened:
    kyoukai_h2fast.server.socket_sources)."""
    if config.uds is not None and config.fd is not None:
        raise ConfigError("--uds and --fd cannot be given together")
    if config.uds is not None and (not isinstance(config.uds, str) or not config.uds
                                   or "\0" in config.uds):
        raise ConfigError(f"--uds {config.uds!r}: not a path")
    if config.uds_permissions is not None:
        if config.uds is None:
            raise ConfigError("--uds-permissions needs --uds")
        _check_range("uds-permissions", config.uds_permissions, 0, 0o7777)
    if config.fd is not None:
        _check_range("fd", config.fd, 0, 2**31 - 1)
    if not isinstance(config.reuse_port, bool):
        raise ConfigError(f"reuse-port must be True or False, got {config.reuse_port!r}")


def _check_recycling(config: ServerConfig) -> None:
    """The worker-recycling limits and the pid file: ConfigError if bad."""
    _check_range("max-requests", config.max_requests, 0, 2**63 - 1)
    _check_range("max-requests-jitter", config.max_requests_jitter, 0, 2**63 - 1)
    if config.max_requests_jitter and not config.max_requests:
        raise ConfigError("--max-requests-jitter needs --max-requests")
    if not isinstance(config.workers_lifetime, (int, float)) or config.workers_lifetime < 0:
        raise ConfigError(f"workers-lifetime must be >= 0 seconds, got "
                          f"{config.workers_lifetime!r}")
    _check_range("workers-max-rss", config.workers_max_rss, 0, 2**40)
    if config.pid_file is not None:
        if not isinstance(config.pid_file, str) or not config.pid_file \
                or "\0" in config.pid_file:
            raise ConfigError(f"--pid-file {config.pid_file!r}: not a path")
        directory = os.path.dirname(os.path.abspath(config.pid_file))
        if not os.path.isdir(directory):
            raise ConfigError(f"--pid-file {config.pid_file}: no such directory {directory}")


def _check_websocket(config: ServerConfig) -> None:
    """The WebSocket settings of ``config``: ConfigError (one line, naming the option)."""
    _check_range("ws-max-message-size", config.ws_max_message_size, 1, 2**63 - 1)
    _check_range("ws-max-queue", config.ws_max_queue, 1, 2**31 - 1)
    _check_range("ws-write-limit", config.ws_write_limit, 1, 2**63 - 1)
    for name, value in (("ws-ping-interval", config.ws_ping_interval),
                        ("ws-ping-timeout", config.ws_ping_timeout)):
        if not isinstance(value, (int, float)) or not 0 <= value < 1e9:
            raise ConfigError(f"{name} must be a number of seconds >= 0, got {value!r}")


def _check_root_path(config: ServerConfig) -> None:
    """``root_path``: ``/`` then path segments, no final ``/``, nothing a URL path cannot
    hold as it is (ConfigError naming --root-path otherwise)."""
    prefix = config.root_path
    if not isinstance(prefix, str) or not prefix.startswith("/") or prefix.endswith("/"):
        raise ConfigError(f"--root-path {prefix!r}: must start with '/' and not end with it "
                          "(e.g. /api)")
    if any(c in prefix for c in "?#\\") or any(ord(c) <= 32 or ord(c) == 127 for c in prefix) \
            or any(part in ("", ".", "..") for part in prefix[1:].split("/")):
        raise ConfigError(f"--root-path {prefix!r}: not a plain URL path (no '?', '#', "
                          "spaces, empty, '.' or '..' segments)")


def resolve_workers(workers: int) -> int:
    """The number of worker processes for ``workers`` (0: one per CPU this process may use)."""
    if workers:
        return workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS has no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def parse_ip_list(text: str) -> tuple:
    """``"10.0.0.1, 192.168.0.0/16"`` -> a tuple of entries (``"*"`` kept as it is)."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer in {low}..{high}, got {value!r}")
