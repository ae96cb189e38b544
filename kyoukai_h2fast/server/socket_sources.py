"""Where the listening sockets come from when they are not bound on ``--host``/``--port``:
a Unix domain socket (``--uds PATH``), a socket inherited as a file descriptor (``--fd N``),
or the sockets systemd passes on socket activation (``LISTEN_FDS``/``LISTEN_PID``, fds 3,
4, ...; see sd_listen_fds(3)).

:func:`open_source` turns the configuration (and the environment) into a
:class:`SocketSource`, or None when the server binds ``host``/``port`` itself (the listener
and the supervisor do that: :mod:`kyoukai_h2fast.server.listener`). Every problem is a
:class:`SocketSourceError` with a one-line message naming the option (the command line
prints it and exits 2): a ``--uds`` path in a directory that does not exist or that exists
and is not a socket, an fd that is not open, not a socket or not a listening stream socket,
``LISTEN_PID`` naming another process.

What is served on these sockets is what is served on a TCP port: HTTP/2 (h2c with prior
knowledge, or TLS with ALPN when ``--certfile``/``--keyfile`` are given) and HTTP/1.1. With
``--workers N`` the worker processes share these sockets (a Unix socket path or an inherited
socket exists once), except an inherited TCP socket that has ``SO_REUSEPORT`` set (systemd's
``ReusePort=true``): the supervisor binds one beside it for each further worker.
"""
from __future__ import annotations

import errno
import os
import socket
import stat
from collections.abc import Mapping

from ..config import ServerConfig

__all__ = ["SocketSource", "SocketSourceError", "open_source", "systemd_fds",
           "SD_LISTEN_FDS_START"]

#: The first file descriptor systemd passes (sd_listen_fds(3)).
SD_LISTEN_FDS_START = 3


class SocketSourceError(Exception):
    """A socket source that cannot be used: a one-line message naming the option."""


class SocketSource:
    """Listening sockets made (or adopted) for the server, and what to undo on exit: a Unix
    socket path this process created is removed by :meth:`close` (by the process that made
    it only: worker processes inherit the object and must not)."""

    def __init__(self, sockets: list[socket.socket], description: str,
                 unlink: str | None = None) -> None:
        self.sockets = sockets
        #: Where it serves, for log lines: ``unix:PATH``, ``fd 5``, ``systemd fds 3-4``.
        self.description = description
        self._unlink = unlink
        self._owner = os.getpid()

    def tcp_address(self) -> tuple[str, int] | None:
        """``(host, port)`` of the first socket when it is a TCP one (an inherited socket:
        what the start line and the environ's SERVER_NAME/SERVER_PORT say)."""
        name = self.sockets[0].getsockname()
        if self.sockets[0].family in (socket.AF_INET, socket.AF_INET6):
            return name[0], name[1]
        return None

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        if self._unlink is not None and os.getpid() == self._owner:
            try:
                if stat.S_ISSOCK(os.lstat(self._unlink).st_mode):
                    os.unlink(self._unlink)
            except OSError:
                pass
            self._unlink = None


def open_source(config: ServerConfig, environ: Mapping[str, str] | None = None,
                backlog: int = 1024) -> SocketSource | None:
    """The sockets ``config`` (``uds``, ``fd``) or systemd (``LISTEN_FDS`` in ``environ``,
    default ``os.environ``) give, blocking and inheritable; None: bind ``host``/``port``."""
    env = os.environ if environ is None else environ
    if config.uds is not None:
        return _unix_socket(config.uds, config.uds_permissions, backlog)
    if config.fd is not None:
        sock = _adopt_fd(config.fd, f"--fd {config.fd}")
        return SocketSource([sock], f"fd {config.fd}")
    fds = systemd_fds(env)
    if fds:
        sockets = []
        try:
            for fd in fds:
                sockets.append(_adopt_fd(fd, f"LISTEN_FDS: fd {fd}"))
        except SocketSourceError:
            for sock in sockets:
                sock.detach()  # (not ours to close: the error exits anyway)
            raise
        for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):  # not for our children
            if environ is None:
                os.environ.pop(name, None)
        last = fds[-1]
        return SocketSource(sockets, f"systemd fd{'s' if len(fds) > 1 else ''} "
                                     f"{fds[0]}{f'-{last}' if last != fds[0] else ''}")
    return None


def systemd_fds(environ: Mapping[str, str]) -> list[int]:
    """The fds of a socket activation (``LISTEN_FDS`` set, ``LISTEN_PID`` this process);
    empty without one. A ``LISTEN_PID`` of another process, or values that are no numbers,
    are errors (the sockets were meant for someone else: serving elsewhere would hide it)."""
    count_text = environ.get("LISTEN_FDS")
    if count_text is None:
        return []
    pid_text = environ.get("LISTEN_PID", "")
    try:
        count = int(count_text)
    except ValueError:
        raise SocketSourceError(f"LISTEN_FDS={count_text!r}: not a number") from None
    if pid_text:
        try:
            pid = int(pid_text)
        except ValueError:
            raise SocketSourceError(f"LISTEN_PID={pid_text!r}: not a number") from None
        if pid != os.getpid():
            raise SocketSourceError(f"LISTEN_PID={pid} is not this process ({os.getpid()}): "
                                    "the sockets of LISTEN_FDS are another process's")
    else:
        raise SocketSourceError("LISTEN_FDS is set without LISTEN_PID")
    if not 1 <= count <= 1024:
        raise SocketSourceError(f"LISTEN_FDS={count}: expected 1..1024 sockets")
    return list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count))


def _adopt_fd(fd: int, what: str) -> socket.socket:
    """A socket object for the listening stream socket ``fd`` (inheritable)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError as e:
        raise SocketSourceError(f"{what}: {e.strerror or e}") from None
    if not stat.S_ISSOCK(mode):
        raise SocketSourceError(f"{what}: not a socket")
    sock = socket.socket(fileno=fd)
    try:
        kind = sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)
        listening = sock.getsockopt(socket.SOL_SOCKET, getattr(socket, "SO_ACCEPTCONN", 30))
    except OSError as e:
        sock.detach()
        raise SocketSourceError(f"{what}: {e.strerror or e}") from None
    if kind != socket.SOCK_STREAM or not listening:
        sock.detach()
        raise SocketSourceError(f"{what}: not a listening stream socket "
                                "(a socket bound with listen() called, TCP or Unix)")
    sock.setblocking(True)
    sock.set_inheritable(True)
    return sock


def _unix_socket(path: str, permissions: int | None, backlog: int) -> SocketSource:
    """Bind ``path`` (a stale socket file left by a server that is gone is replaced; a live
    one is an error), chmod it, listen."""
    where = f"--uds {path}"
    if not hasattr(socket, "AF_UNIX"):
        raise SocketSourceError(f"{where}: Unix sockets are not available here")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise SocketSourceError(f"{where}: no such directory {directory}")
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        pass
    except OSError as e:
        raise SocketSourceError(f"{where}: {e.strerror or e}") from None
    else:
        if not stat.S_ISSOCK(mode):
            raise SocketSourceError(f"{where}: exists and is not a socket")
        if _serving(path):
            raise SocketSourceError(f"{where}: another server listens on it")
        os.unlink(path)  # stale: its server is gone
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        if permissions is not None:
            os.chmod(path, permissions)
        sock.listen(backlog)
    except OSError as e:
        sock.close()
        raise SocketSourceError(f"{where}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return SocketSource([sock], f"unix:{path}", unlink=path)


def _serving(path: str) -> bool:
    """Whether something accepts connections on the Unix socket ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError as e:  # refused: stale; a full backlog or a timeout: alive
        return e.errno in (errno.EAGAIN, None)
    finally:
        probe.close()
    return True
