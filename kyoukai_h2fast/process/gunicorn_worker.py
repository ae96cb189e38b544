"""A gunicorn worker class: ``gunicorn -k kyoukai_h2fast.workers.H2Worker app:app``.

gunicorn keeps what it is good at (its master process: binding, worker management, signals,
configuration files, logging setup); each worker serves its share of the listening sockets
with kyoukai_h2fast on an asyncio loop (uvloop when installed): HTTP/2 (TLS with ALPN, or h2c
prior knowledge) and HTTP/1.1 on the same sockets.

gunicorn settings honoured:

* ``--bind`` (sockets are gunicorn's), ``--certfile``/``--keyfile`` (plus ``--ca-certs``,
  ``--cert-reqs``, ``--ciphers``) for TLS with ALPN ``h2``/``http/1.1``;
* ``--timeout``: the worker heartbeats twice per timeout from its event loop, so a loop
  blocked longer than that (an inline app stuck) gets the worker restarted by the master;
* ``--graceful-timeout``: SIGTERM sends GOAWAY / finishes in-flight responses for up to this
  long (``--shutdown-timeout``); SIGINT/SIGQUIT stop at once; SIGUSR1 reopens log files;
* ``--keep-alive``: seconds an idle connection is kept (``--idle-timeout``);
* ``--threads N`` (N > 1): the WSGI thread pool size (``--wsgi-threads``);
* ``--forwarded-allow-ips``: trusted proxies (see :mod:`kyoukai_h2fast.server.proxy_headers`);
* ``--access-logfile`` and ``--access-logformat``: each access record
  (:mod:`kyoukai_h2fast.server.accesslog`) is written by gunicorn's own ``Logger.access`` in
  gunicorn's format (:class:`GunicornAccess`); server messages go to its error log;
* ``--max-requests`` (with its jitter) and ``--reload``: gunicorn's ``self.alive`` is checked
  at every heartbeat tick (at most ``_ALIVE_CHECK`` seconds apart), as are the requests the
  worker received (read from its connections, nothing counted per request): past
  ``max_requests``, or once gunicorn's reloader saw a file change, the worker stops
  gracefully (GOAWAY, in-flight streams finish within ``--graceful-timeout``) and gunicorn
  starts a fresh one;
* ``-w``: ``wsgi.multiprocess`` is True when more than one worker serves;
* ``--reuse-port`` (gunicorn 23+, Linux; older ones only set the flag on the master's
  shared sockets): gunicorn then binds the listening sockets in each worker, with
  ``SO_REUSEPORT``, instead of once in the master, so the kernel spreads new connections over
  the workers (without it the workers share the master's sockets, and the one that wakes
  first accepts a whole burst). A worker leaving (``--max-requests``, SIGHUP, SIGTERM) first
  accepts and serves the connections waiting on its own socket, which closing it would reset;
  a connection that arrives in the microseconds between that and the close is still reset
  (Linux's ``net.ipv4.tcp_migrate_req = 1`` hands those to the other workers). The master
  then holds no socket: were every worker replaced at the same moment (``--max-requests``
  without ``--max-requests-jitter``), new connections would be refused until one is back.
  The kyoukai-h2fast supervisor (``--workers N``) does not have this gap: it holds every
  worker's socket, and a successor takes it over;
* ``-b unix:PATH``: the start line names the socket (``unix:PATH``); ``REMOTE_ADDR`` is
  ``""``, as gunicorn's own workers give on a Unix socket (the access line says ``-``).

gunicorn's SIGHUP is gunicorn's: the master starts new workers and stops the old ones
gracefully.

Apps: any WSGI callable gunicorn can load, and Kyoukai-style app objects (``request_class`` +
``async process_request``), which gunicorn alone would refuse as not callable.
"""
from __future__ import annotations

import asyncio
import datetime
import importlib
import logging
import os
import signal
import socket as _socket
import ssl
from typing import TYPE_CHECKING, Any, cast

from gunicorn.errors import AppImportError
from gunicorn.workers.base import Worker

from ..apps.runners import detect_kind
from ..config import ServerConfig

if TYPE_CHECKING:
    import socket

    from gunicorn.sock import BaseSocket

__all__ = ["H2Worker", "GunicornAccess"]

#: Seconds between two looks at gunicorn's ``alive`` flag and the request count.
_ALIVE_CHECK = 0.25


class H2Worker(Worker):
    """kyoukai_h2fast as a gunicorn worker (see the module docstring)."""

    def init_signals(self) -> None:
        # The event loop installs its own handlers in run(); start from the defaults.
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # until the loop handles it

    def load_wsgi(self) -> None:
        try:
            super().load_wsgi()
        except AppImportError as e:
            uri = getattr(self.app, "app_uri", None)
            if uri is None or "callable" not in str(e):
                raise
            self.wsgi = _import_object(uri)  # a Kyoukai-style app object (not callable)

    # -- configuration ---------------------------------------------------------------------
    def _listeners(self) -> list[BaseSocket]:
        # The arbiter hands workers gunicorn.sock's wrappers (create_sockets); types-gunicorn
        # declares Worker.sockets as plain sockets.
        return cast("list[BaseSocket]", self.sockets)

    def server_config(self) -> ServerConfig:
        cfg = self.cfg
        host, port = _address(self._listeners()[0].sock)
        settings: dict[str, Any] = dict(
            host=host, port=port, idle_timeout=float(cfg.keepalive or 0),
            shutdown_timeout=float(cfg.graceful_timeout),
            access_log=bool(cfg.accesslog),
            forwarded_allow_ips=tuple(cfg.forwarded_allow_ips or ()),
            workers=max(1, min(int(cfg.workers or 1), 1024)),  # wsgi.multiprocess when > 1
        )
        if cfg.threads and cfg.threads > 1:
            settings["wsgi_threads"] = cfg.threads
        return ServerConfig(**settings).validate()

    def ssl_context(self) -> ssl.SSLContext | None:
        cfg = self.cfg
        if not cfg.is_ssl:
            return None
        from ..server.component import make_ssl_context
        context = make_ssl_context(cfg.certfile, cfg.keyfile)
        if cfg.ca_certs:
            context.load_verify_locations(cafile=cfg.ca_certs)
        if cfg.cert_reqs is not None:
            context.verify_mode = cfg.cert_reqs
        if cfg.ciphers:
            context.set_ciphers(cfg.ciphers)
        return context

    def _bridge_logging(self) -> None:
        """Our loggers write where gunicorn's do (unless configured otherwise)."""
        server_log = logging.getLogger("kyoukai_h2fast")
        if not server_log.handlers:
            error_log = self.log.error_log
            for handler in error_log.handlers:
                server_log.addHandler(handler)
            server_log.setLevel(error_log.level)
            server_log.propagate = False
        if self.cfg.accesslog:
            access = logging.getLogger("kyoukai_h2fast.access")
            if not access.handlers:  # (unless a logging configuration placed some)
                access.addHandler(GunicornAccess(self.log))
                access.setLevel(logging.INFO)
                access.propagate = False

    # -- the worker's life -------------------------------------------------------------------
    def run(self) -> None:
        try:
            import uvloop
        except ImportError:
            loop = asyncio.new_event_loop()
        else:
            loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(loop))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        from ..server.allocator import tune_allocator
        from ..server.component import H2KyoukaiComponent
        tune_allocator()  # this process serves: large buffers are reused (server/allocator.py)
        self._bridge_logging()
        config = self.server_config()
        component = H2KyoukaiComponent(self.wsgi, None, None, ip=config.host,
                                       port=config.port, config=config,
                                       ssl_context=self.ssl_context())
        component.sockets = [s.sock for s in self._listeners()]
        # --reuse-port: gunicorn binds a socket per worker, in the worker (the kernel spreads
        # connections over them); on exit the ones waiting in ours are served, not reset.
        component.exclusive_sockets = bool(self.cfg.reuse_port
                                           and hasattr(_socket, "SO_REUSEPORT"))
        await component.start()
        stop = asyncio.Event()
        graceful = [True]

        def on_term() -> None:
            self.alive = False
            stop.set()

        def on_quit() -> None:
            self.alive = False
            graceful[0] = False
            stop.set()

        loop.add_signal_handler(signal.SIGTERM, on_term)
        loop.add_signal_handler(signal.SIGINT, on_quit)
        loop.add_signal_handler(signal.SIGQUIT, on_quit)
        loop.add_signal_handler(signal.SIGUSR1, self.log.reopen_files)
        loop.add_signal_handler(signal.SIGABRT, on_quit)
        interval = max(min(self.timeout / 2.0, 5.0), 0.1) if self.timeout else 1.0
        count_requests = self.cfg.max_requests > 0
        while not stop.is_set():
            self.notify()
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                break
            if count_requests and self.alive:
                self.nr = component.connections.requests_received()
                if self.nr >= self.max_requests:
                    self.log.info("Autorestarting worker after current request.")
                    self.alive = False
            if not self.alive:  # max requests, gunicorn's reloader: stop gracefully
                break
            try:
                await asyncio.wait_for(stop.wait(), min(interval, _ALIVE_CHECK))
            except asyncio.TimeoutError:
                pass
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1,
                    signal.SIGABRT):
            loop.remove_signal_handler(sig)
        keepalive = asyncio.ensure_future(self._heartbeat())
        try:
            await component.shutdown(config.shutdown_timeout if graceful[0] else 0.0)
        finally:
            keepalive.cancel()

    async def _heartbeat(self) -> None:
        """Keep the master from killing us while in-flight responses drain."""
        while True:
            self.notify()
            await asyncio.sleep(max(min(self.timeout / 2.0, 5.0), 0.1) if self.timeout else 1)


def _address(sock: socket.socket) -> tuple[str, int]:
    name = sock.getsockname()
    if isinstance(name, tuple):
        return name[0], name[1]
    return "localhost", 0  # a Unix socket (the start line names it: H2KyoukaiComponent.url)


class GunicornAccess(logging.Handler):
    """Writes kyoukai_h2fast's access records with gunicorn's ``Logger.access``, so that
    ``--access-logformat`` applies (its atoms: ``h`` ``l`` ``u`` ``t`` ``r`` ``s`` ``m`` ``U``
    ``q`` ``H`` ``b`` ``B`` ``T`` ``D`` ``M`` ``L`` ``p``, and ``{name}e``; ``f``, ``a`` and
    ``{header}i``/``{header}o`` are ``-``: the record does not carry the fields).

    Reads the record's attributes (:meth:`kyoukai_h2fast.server.accesslog.AccessLog.log`):
    ``client`` (address:port), ``method``, ``target``, ``protocol``, ``status``, ``bytes``,
    ``duration``; a record that also carries the request's ``environ`` lends it its fields.
    """

    def __init__(self, gunicorn_log: Any) -> None:
        super().__init__()
        self._log = gunicorn_log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._log.access(*_gunicorn_access_args(record))
        except Exception:
            self.handleError(record)


class _Response:
    """What gunicorn's atoms read of a response."""

    __slots__ = ("status", "sent", "headers")

    def __init__(self, status: str, sent: int | None) -> None:
        self.status = status
        self.sent = sent
        self.headers: list = []


def _gunicorn_access_args(record: logging.LogRecord) -> tuple[Any, Any, dict, Any]:
    """``(resp, req, environ, request_time)`` for gunicorn's ``Logger.access``."""
    given = getattr(record, "environ", None)
    environ: dict = dict(given) if isinstance(given, dict) else {}
    target = str(getattr(record, "target", ""))
    path, _, query = target.partition("?")
    environ.setdefault("REQUEST_METHOD", str(getattr(record, "method", "")))
    environ.setdefault("RAW_URI", target)
    environ.setdefault("PATH_INFO", path)
    environ.setdefault("QUERY_STRING", query)
    environ.setdefault("SERVER_PROTOCOL", str(getattr(record, "protocol", "")))
    host = str(getattr(record, "client", "")).rpartition(":")[0]
    if not environ.get("REMOTE_ADDR"):
        environ.pop("REMOTE_ADDR", None)  # none (a Unix socket): gunicorn prints "-"
        if host:
            environ["REMOTE_ADDR"] = host
    size = getattr(record, "bytes", None)
    duration = getattr(record, "duration", None)
    request_time = datetime.timedelta(seconds=duration or 0.0)
    response = _Response(str(getattr(record, "status", "")),
                         size if isinstance(size, int) else None)
    return response, [], environ, request_time


def _import_object(uri: str) -> Any:
    """``module:attribute`` without gunicorn's callable check (for Kyoukai-style apps)."""
    module_name, _, attr = uri.partition(":")
    obj = importlib.import_module(module_name)
    for part in (attr or "application").split("."):
        obj = getattr(obj, part)
    detect_kind(obj)  # TypeError for anything that is no app
    return obj
