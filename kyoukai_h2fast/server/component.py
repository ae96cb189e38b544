"""The server: the seed's ``H2KyoukaiComponent`` (an asphalt component when asphalt is
installed, a plain object otherwise), the TLS context (made by :mod:`kyoukai_h2fast.server.tls`),
and :func:`serve` / :func:`start_server` for users without asphalt.

It owns listening sockets, the set of live connections and shutdown: on SIGINT/SIGTERM every
connection sends GOAWAY with its last stream id, in-flight streams get ``shutdown_timeout``
seconds to finish, then whatever is left is closed. Shutdown returns as soon as nothing is in
flight, and at most ``_CLOSE_GRACE`` after the timeout (see :meth:`H2KyoukaiComponent.shutdown`).
"""
from __future__ import annotations

import asyncio
import functools
import gc
import logging
import signal
import socket as _socket
import ssl as _ssl
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from .. import __version__, _switch
from ..apps.runners import make_runner
from ..config import ServerConfig
from ..http2.protocol import H2KyoukaiProtocol
from .accesslog import AccessLog
from .allocator import release_soon, tune_allocator
from .listener import Listener
from .proxy_headers import ProxyHeaders
from .tls import alpn_protocols, make_ssl_context, ssl_context_for

if TYPE_CHECKING:
    from ..contracts import Runner

try:  # asphalt is an optional extra
    from asphalt.core import Component as _ComponentBase
except ImportError:  # pragma: no cover - exercised in environments without asphalt
    class _ComponentBase:  # type: ignore[no-redef]
        __slots__ = ()

__all__ = ["H2KyoukaiComponent", "serve", "start_server", "make_ssl_context"]

log = logging.getLogger("kyoukai_h2fast")

#: After the shutdown timeout, seconds handlers still running get to finish what the closed
#: connections started (so iterables whose responses completed are closed in their threads).
_CLOSE_GRACE = 0.1
#: Seconds between looks at the connections while shutdown waits for them.
_SHUTDOWN_POLL = 0.05


class Connections(set):
    """A component's live connections (protocols), remembering how many requests the ones
    that closed had received (``requests_received`` of each, read once, when it leaves)."""

    def __init__(self) -> None:
        super().__init__()
        self.closed_requests = 0

    def discard(self, connection: Any) -> None:
        if connection in self:
            self.closed_requests += getattr(connection, "requests_received", 0)
            super().discard(connection)

    def requests_received(self) -> int:
        """Requests received by the component so far, on closed and live connections."""
        return self.closed_requests + sum(getattr(c, "requests_received", 0) for c in self)


class H2KyoukaiComponent(_ComponentBase):
    """Serves ``app`` over HTTP/2: TLS with ALPN h2, or cleartext h2c without certificates.

    Drop-in for ``kyoukai.backends.http2.H2KyoukaiComponent(app, ssl_keyfile, ssl_certfile,
    *, ip, port)``; further keyword arguments are :class:`ServerConfig` fields (limits,
    ``wsgi_threads``...), or pass a whole ``config``.
    """

    def __init__(self, app: Any, ssl_keyfile: str | None = None,
                 ssl_certfile: str | None = None, *, ip: str = "127.0.0.1", port: int = 4444,
                 config: ServerConfig | None = None, ssl_context: _ssl.SSLContext | None = None,
                 **settings: Any) -> None:
        self.app = app
        self.ssl_keyfile = ssl_keyfile
        self.ssl_certfile = ssl_certfile
        self.ip = ip
        self.port = port
        base = config or ServerConfig()
        self.config = base.replace(host=ip, port=port, keyfile=ssl_keyfile,
                                   certfile=ssl_certfile, **settings)
        self.ssl_context = ssl_context
        self.runner: Runner = make_runner(app, self.config.wsgi_threads,
                                          self.config.max_handlers_per_connection,
                                          self.config.interface, self.config.shutdown_timeout)
        self._offer_websockets = self.config.ws_http2  # (asked for: see websocket_app)
        self.websocket_app = getattr(self.runner, "websocket_app", None)
        if self.config.static:  # files served before the app (kyoukai_h2fast.apps.static_files)
            from ..apps.static_files import StaticRunner
            self.runner = StaticRunner(self.runner, self.config)
        if self.config.root_path:  # the app under a URL prefix (kyoukai_h2fast.apps.root_path)
            from ..apps.root_path import RootPathRunner
            self.runner = RootPathRunner(self.runner, self.config.root_path)
        #: Access log and trusted proxy headers (None when off), used by the connections of
        #: both protocols.
        self.access_log = AccessLog() if self.config.access_log else None
        self.forwarded = (ProxyHeaders(self.config.forwarded_allow_ips)
                          if self.config.forwarded_allow_ips else None)
        #: Prometheus metrics (kyoukai_h2fast.server.metrics): the Recorder connections report
        #: to, set by start() when ``metrics_port`` is set (None: off). A supervisor sets
        #: ``metrics_board``/``metrics_slot``/``metrics_sockets`` to share its own.
        self.metrics: Any = None
        self._metrics_endpoint: Any = None
        #: Already listening sockets to serve instead of binding (worker processes).
        self.sockets: list[_socket.socket] | None = None
        #: Those sockets are this process's alone (no other process accepts from them): on
        #: shutdown the connections waiting in their queues are accepted and served, not
        #: reset (see :attr:`Listener.drain_on_close`).
        self.exclusive_sockets = False
        #: Live connections (protocols); used for graceful shutdown, and to count requests
        #: (``connections.requests_received()``: gunicorn's ``--max-requests``).
        self.connections: Connections = Connections()
        #: The listening sockets (a
        #: :class:`~kyoukai_h2fast.server.listener.Listener`) once started.
        self.server: Listener | None = None
        self._server_name = self.get_server_name()

    def get_server_name(self) -> str:
        return f"kyoukai_h2fast/{__version__}"

    def get_protocol(self, ctx: Any, serv_info: Any) -> H2KyoukaiProtocol:
        return H2KyoukaiProtocol(self, ctx)

    def connection_closed(self, connection: Any) -> None:
        """``connection`` (an HTTP/2 or HTTP/1.1 protocol) is gone: it leaves the live
        connections, and what a burst on it took goes back to the OS soon
        (:func:`~kyoukai_h2fast.server.allocator.release_soon`)."""
        self.connections.discard(connection)
        release_soon(connection.loop)

    def _connection_factory(self, ctx: Any,
                            serv_info: Any) -> Callable[[], asyncio.BaseProtocol]:
        """The listener's protocol factory: HTTP/2 only, or the HTTP/2-or-HTTP/1.1 choice."""
        from .protocol_select import ProtocolSniffer
        make_h2 = functools.partial(self.get_protocol, ctx, serv_info)
        if not self.config.http1:  # HTTP/1.x requests get a 505 from the sniffer
            return functools.partial(ProtocolSniffer, self, make_h2)
        from ..http1.protocol import H1Protocol
        make_h1 = functools.partial(H1Protocol, self, ctx)
        return functools.partial(ProtocolSniffer, self, make_h2, make_h1)

    @property
    def url(self) -> str:
        """Where it serves: ``scheme://host:port``, or ``unix:PATH`` on a Unix socket."""
        sockets = self.server.sockets if self.server is not None else self.sockets or []
        if sockets and sockets[0].family == getattr(_socket, "AF_UNIX", None):
            name = sockets[0].getsockname()
            return f"unix:{name.decode('latin-1') if isinstance(name, bytes) else name}"
        scheme = "https" if (self.ssl_context or self.config.tls) else "http"
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{scheme}://{host}:{self.port}"

    @property
    def websocket_app(self) -> Any:
        """The app's WebSocket handler, ``async handler(session)`` (a
        :class:`~kyoukai_h2fast.websocket.session.WebSocketSession`), or None: the app serves
        no WebSockets (HTTP/1.1 upgrades go to it as ordinary requests, RFC 8441 is not
        advertised)."""
        return self._websocket_app

    @websocket_app.setter
    def websocket_app(self, handler: Any) -> None:
        # RFC 8441 is offered (ws_http2) only while there is a handler: the connections'
        # engines read the config, set here once rather than per connection
        self._websocket_app = handler
        offer = self._offer_websockets and handler is not None
        if self.config.ws_http2 != offer:
            self.config = self.config.replace(ws_http2=offer)

    async def start(self, ctx: Any = None) -> None:
        """Listen and serve (asphalt calls this with its context; standalone: no argument)."""
        context = self.ssl_context
        if context is None and self.config.tls:
            context = ssl_context_for(self.config)
        elif context is not None:
            context.set_alpn_protocols(alpn_protocols(self.config.http1))
        self.runner.start()
        startup = getattr(self.runner, "startup", None)  # (ASGI lifespan: before accepting)
        if startup is not None:
            await startup()
        if self.config.metrics_port is not None:
            from .metrics import serve_metrics
            self.metrics, self._metrics_endpoint = await serve_metrics(self)
        loop = asyncio.get_running_loop()
        factory = self._connection_factory(ctx, (self._server_name, self.port))
        self.server = Listener(loop, factory, context)
        self.server.drain_on_close = self.exclusive_sockets
        if self.sockets:
            self.server.adopt(self.sockets)
        else:
            await self.server.bind(self.ip, self.port)
        if self.port == 0:
            self.port = self.server.port
        log.info("kyoukai_h2fast %s serving %s app on %s (%s; %s; extensions: %s)", __version__,
                 self.runner.kind, self.url, _modes(context, self.config.http1),
                 f"{self.config.wsgi_threads} WSGI threads" if self.runner.kind == "wsgi"
                 and self.config.wsgi_threads else "on the event loop",
                 _switch.extensions_state())

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting, GOAWAY every connection, wait for in-flight streams, close.

        Returns once no connection is left (at most ``_SHUTDOWN_POLL`` later), and at the
        latest ``timeout`` (default ``shutdown_timeout``) plus ``_CLOSE_GRACE`` seconds after
        the call: then the connections still open are closed and handlers still running are
        abandoned. Connections that appear meanwhile (a TLS handshake or a protocol choice
        under way: they complete) are told to shut down as they appear. After
        :meth:`release_sockets` (a reload) the listening sockets stay open for the successor.
        """
        if timeout is None:
            timeout = self.config.shutdown_timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        server = self.server
        if server is not None:
            server.close()  # stop accepting (released sockets are the successor's, open)
        told: set = set()
        while True:
            for connection in list(self.connections):
                if connection not in told:
                    told.add(connection)
                    connection.shutdown()
            if not self.connections and not (server is not None and server.connecting):
                break
            left = deadline - loop.time()
            if left <= 0:
                break
            await asyncio.sleep(min(_SHUTDOWN_POLL, left))
        for connection in list(self.connections):
            connection.abort()
        if server is not None:
            server.abort()  # handshakes still under way
            await server.wait_closed()
        # Handlers still running get what is left of the timeout (at least a moment, so that
        # iterables whose responses completed are closed in their threads).
        await self.runner.drain(max(deadline, loop.time() + _CLOSE_GRACE))
        self.runner.shutdown()
        if self._metrics_endpoint is not None:
            await self._metrics_endpoint.stop()

    def release_sockets(self) -> list[_socket.socket]:
        """Stop accepting and give up the listening sockets, still open (a successor serves
        them: graceful reload); then :meth:`shutdown` drains what this component serves."""
        return self.server.detach() if self.server is not None else []


_CLIENT_CERTS = {_ssl.CERT_OPTIONAL: ", client certificates optional",
                 _ssl.CERT_REQUIRED: ", client certificates required"}


def _modes(context: _ssl.SSLContext | None, http1: bool) -> str:
    if context is not None:
        return ("TLS+ALPN h2,http/1.1" if http1 else "TLS+ALPN h2") + _CLIENT_CERTS.get(
            context.verify_mode, "")
    return "h2c prior knowledge + HTTP/1.1" if http1 else "h2c prior knowledge"


async def start_server(app: Any, host: str = "127.0.0.1", port: int = 4444, *,
                       ssl: _ssl.SSLContext | None = None,
                       **settings: Any) -> H2KyoukaiComponent:
    """Start serving ``app`` on the running loop; returns the component (``await
    component.shutdown()`` to stop). ``port=0`` picks a free port (see ``component.port``)."""
    component = H2KyoukaiComponent(app, settings.pop("keyfile", None),
                                   settings.pop("certfile", None), ip=host, port=port,
                                   ssl_context=ssl, **settings)
    await component.start()
    return component


def serve(app: Any, host: str = "127.0.0.1", port: int = 4444, *,
          ssl: _ssl.SSLContext | None = None, loop: str = "auto", **settings: Any) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, then shut down gracefully. Blocks.

    ``ssl`` is a server SSLContext (ALPN is set to h2), or pass ``certfile=`` and ``keyfile=``;
    without either it serves cleartext h2c. ``loop`` is "auto" (uvloop when installed),
    "uvloop" or "asyncio". Other keywords are :class:`ServerConfig` fields.
    """
    component = H2KyoukaiComponent(app, settings.pop("keyfile", None),
                                   settings.pop("certfile", None), ip=host, port=port,
                                   ssl_context=ssl, **settings)
    run(component.start, component.shutdown, loop)


def new_event_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(start: Callable[[], Awaitable[object]], stop: Callable[[], Awaitable[object]],
        loop_kind: str = "auto",
        reload: Callable[[], Coroutine[Any, Any, object]] | None = None) -> None:
    """Run ``await start()``, wait for SIGINT/SIGTERM, then ``await stop()``. With ``reload``,
    each SIGHUP runs ``await reload()`` meanwhile (see :mod:`kyoukai_h2fast.reload`)."""
    loop = new_event_loop(loop_kind)
    asyncio.set_event_loop(loop)
    stopping = asyncio.Event()
    reloads: set[asyncio.Task] = set()
    started = False
    hup_while_starting = False

    def on_sighup() -> None:
        nonlocal hup_while_starting
        assert reload is not None  # installed only then
        if not started:  # (handled once serving: a reload needs something to replace)
            hup_while_starting = True
            return
        task = loop.create_task(reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    async def main() -> None:
        nonlocal started
        tune_allocator()  # this process serves: large buffers are reused (allocator.py)
        if reload is not None:  # (before the start: a SIGHUP right after it is not lost)
            loop.add_signal_handler(signal.SIGHUP, on_sighup)
        # Before the start too: start() logs "serving", and a SIGTERM sent as soon as that
        # line appears must stop the server gracefully, not kill it with the default handler.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        await start()
        # Everything alive now (the app, its modules, the server) lives as long as the
        # process: keep it out of the garbage collector's way, so collections triggered by
        # per-request objects stay cheap.
        gc.freeze()
        started = True
        if hup_while_starting:
            on_sighup()
        try:
            await stopping.wait()
            log.info("shutting down: GOAWAY sent, waiting for in-flight streams")
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        await stop()
        if reloads:  # (each returned already, or waited for stop's reload lock)
            await asyncio.gather(*reloads, return_exceptions=True)
        log.info("stopped")

    try:
        loop.run_until_complete(main())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
