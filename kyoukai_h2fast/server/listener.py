"""Listening sockets and the accept loop.

Why not ``loop.create_server``: recent libuv (so uvloop) accepts one connection per event-loop
iteration. Under load an iteration lasts tens of milliseconds, so a burst of new connections
waits in the kernel's accept queue for seconds (measured: 1.9 s before the first byte for a
connection opened while 90 others were busy, against 0.2 s with the stdlib loop). Here every
readable event drains the accept queue (up to a bound), on any loop, and each socket is handed
to ``loop.connect_accepted_socket`` (which also runs the TLS handshake).

A graceful reload hands the sockets to a successor (:meth:`Listener.detach`): the old listener
stops accepting without closing them. After :meth:`Listener.close` or :meth:`Listener.detach`
the connections being set up (TLS handshakes) still complete and get this listener's
protocols, until :meth:`Listener.abort`.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import socket
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ssl import SSLContext

__all__ = ["Listener", "listening_sockets", "bind_sockets", "reuse_port_available"]

log = logging.getLogger("kyoukai_h2fast")

#: Connections accepted per readable event at most (then other work gets a turn).
_ACCEPT_BATCH = 256
#: Back off this long when the process is out of file descriptors.
_EMFILE_PAUSE = 0.5
_RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def reuse_port_available() -> bool:
    """Whether listening sockets of several processes can share a port *and* the kernel
    balances new connections over them: ``SO_REUSEPORT`` on Linux (3.9+). Elsewhere
    (macOS and the BSDs give every connection to one socket; Windows has no such option)
    processes share one socket instead."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listening_sockets(infos: Iterable[tuple[Any, ...]], port: int,
                      backlog: int = 1024, reuse_port: bool = False,
                      listen: bool = True) -> list[socket.socket]:
    """Bound, listening sockets for ``getaddrinfo`` results (each address once; IPv6 ones
    v6-only; ``SO_REUSEADDR``, and ``SO_REUSEPORT`` with ``reuse_port``), blocking. With
    ``port`` 0, the port the first one got is used for the others. On an error the sockets
    made so far are closed and the error is raised (``listen`` False: bound only, e.g. to
    check that nothing listens on the port). The one socket set-up of the single
    process (:meth:`Listener.bind`) and of the supervisor (:func:`bind_sockets`, for worker
    processes)."""
    sockets: list[socket.socket] = []
    seen = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            if port == 0 and sockets:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            if listen:
                sock.listen(backlog)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def bind_sockets(host: str, port: int, backlog: int = 1024, reuse_port: bool = False,
                 listen: bool = True) -> list[socket.socket]:
    """Listening sockets on every address ``host`` resolves to (IPv6 ones v6-only; with
    ``port`` 0, the port the first one got is used for the others), blocking and inheritable:
    what a supervisor binds for its worker processes. With ``reuse_port``
    (:func:`reuse_port_available`), more sets may be bound on the same port, one per worker:
    the kernel spreads new connections over them."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets = listening_sockets(infos, port, backlog, reuse_port, listen)
    for sock in sockets:
        sock.set_inheritable(True)
    return sockets


class Listener:
    """Bound, listening sockets that create a protocol per accepted connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 factory: Callable[[], asyncio.BaseProtocol], ssl: SSLContext | None,
                 handshake_timeout: float = 10.0) -> None:
        self._loop = loop
        self._factory = factory
        self._ssl = ssl
        self._handshake_timeout = handshake_timeout
        self.sockets: list[socket.socket] = []
        self._pending: set[asyncio.Task] = set()
        self._closed = False
        #: The sockets are this process's alone (gunicorn ``--reuse-port``: a socket per
        #: worker): :meth:`close` first accepts what waits in their queues, which closing a
        #: listening socket would reset (nobody else accepts from it).
        self.drain_on_close = False

    async def bind(self, host: str, port: int, backlog: int = 1024) -> None:
        """Bind and listen on every address ``host`` resolves to (like create_server; with
        ``port`` 0, one port for all of them)."""
        infos = await self._loop.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                             flags=socket.AI_PASSIVE)
        self.adopt(listening_sockets(infos, port, backlog))

    def adopt(self, sockets: list[socket.socket]) -> None:
        """Serve sockets already bound and listening (e.g. shared by worker processes)."""
        for sock in sockets:
            sock.setblocking(False)
            self.sockets.append(sock)
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def detach(self) -> list[socket.socket]:
        """Stop accepting and give the sockets up, still open and listening (a successor
        serves them); connections being set up (TLS handshakes) go on."""
        sockets, self.sockets = self.sockets, []
        for sock in sockets:
            try:
                self._loop.remove_reader(sock.fileno())
            except (ValueError, RuntimeError):
                pass
        return sockets

    @property
    def connecting(self) -> int:
        """Accepted connections still being set up (TLS handshakes)."""
        return len(self._pending)

    @property
    def port(self) -> int:
        """The port of the first socket (0 for a Unix socket)."""
        name = self.sockets[0].getsockname()
        return name[1] if isinstance(name, tuple) else 0

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as e:
                if e.errno in _RESOURCE_ERRNOS:
                    log.error("cannot accept connections (%s); pausing %.1f s", e.strerror,
                              _EMFILE_PAUSE)
                    self._loop.remove_reader(sock.fileno())
                    self._loop.call_later(_EMFILE_PAUSE, self._resume, sock)
                    return
                raise
            conn.setblocking(False)
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = self._loop.create_task(self._connect(conn))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def _resume(self, sock: socket.socket) -> None:
        if not self._closed and sock in self.sockets:  # (not closed, nor handed over)
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(
                self._factory, conn, ssl=self._ssl,
                ssl_handshake_timeout=self._handshake_timeout if self._ssl else None)
        except (OSError, asyncio.TimeoutError) as e:  # incl. ssl.SSLError: a bad handshake
            log.debug("connection setup failed: %r", e)
            conn.close()
        except asyncio.CancelledError:
            conn.close()
            raise

    def close(self) -> None:
        """Stop accepting and close the sockets; connections already made go on, and so do
        the ones being set up (see :attr:`connecting`, :meth:`abort`)."""
        self._closed = True
        for sock in self.sockets:
            if sock.fileno() >= 0:
                if self.drain_on_close:
                    self._accept(sock)
                try:
                    self._loop.remove_reader(sock.fileno())
                except (ValueError, RuntimeError):
                    pass
                sock.close()

    def abort(self) -> None:
        """:meth:`close`, and cancel the connections still being set up (TLS handshakes)."""
        self.close()
        for task in list(self._pending):
            task.cancel()

    async def wait_closed(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
