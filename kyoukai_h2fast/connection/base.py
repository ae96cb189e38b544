"""The part of a connection protocol that does not depend on its HTTP version.

:class:`ConnectionBase` is the base class of :class:`~kyoukai_h2fast.http2.protocol.
H2KyoukaiProtocol` and :class:`~kyoukai_h2fast.http1.protocol.H1Protocol`. It owns, once for
both:

* the connection's place in the server: :meth:`~ConnectionBase._opened` (first thing in
  ``connection_made``) takes the transport and the peer's address, makes the per-connection
  environ constants (with the client certificate's ``SSL_CLIENT_*`` keys under mutual
  TLS: :mod:`kyoukai_h2fast.wsgi.client_cert`), enters the server's set of live connections
  (where shutdown finds it) and starts the timeout timer; :meth:`~ConnectionBase._gone`
  (first thing in ``connection_lost``) undoes the last two (the server's
  ``connection_closed`` also gives memory back);
* its timeouts: one timer that calls the protocol's ``_timeouts(now, next_check)`` at least
  every ``min(idle_timeout, body_timeout)`` seconds (an hour when neither is set); that checks
  the protocol's own timeouts and returns when to look again, or None once the connection is
  closing;
* the app's work for a request: :meth:`~ConnectionBase._close_iter` closes an app iterable where
  it runs, :meth:`~ConnectionBase._stop_app` stops what the app still does for a request that is
  gone.

Everything about the HTTP version (reading, responding, flow, what each timeout does) is the
subclass's.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from ssl import CERT_NONE
from typing import TYPE_CHECKING, Any, cast

from ..apps.iterables import body_chunks, close_iterable
from ..wsgi.client_cert import client_cert_environ
from ..wsgi.environ import make_base_environ

if TYPE_CHECKING:
    from ..config import ServerConfig
    from ..contracts import Runner
    from ..wsgi.request_state import H2State

__all__ = ["ConnectionBase"]

log = logging.getLogger("kyoukai_h2fast")

#: The longest a connection goes without looking at its timeouts (none set: an hour).
_LONGEST_CHECK = 3600.0


class ConnectionBase(asyncio.Protocol):
    """The version-independent part of a connection protocol (see the module docstring).

    The subclass sets ``component``, ``config``, ``runner`` and ``loop`` in ``__init__``, and
    ``ip``, ``client_port``, ``_closed``, ``_watchdog`` (None) and ``_last_activity``, which
    this class keeps up to date; it implements ``_timeouts``.
    """

    __slots__ = ("component", "config", "runner", "loop", "transport", "ip", "client_port",
                 "_closed", "_watchdog", "_last_activity")

    component: Any
    config: ServerConfig
    runner: Runner
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    ip: str | None
    client_port: int | None
    _closed: bool
    _watchdog: asyncio.TimerHandle | None
    _last_activity: float

    # == the connection's place in the server ===========================================
    def _opened(self, transport: asyncio.BaseTransport) -> dict[str, Any]:
        """The connection is made: remember the transport and the peer, enter the server's
        live connections, start the timeouts; returns the per-connection environ constants
        (:func:`~kyoukai_h2fast.wsgi.environ.make_base_environ`)."""
        self.transport = cast(asyncio.Transport, transport)  # a stream transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.ip, self.client_port = peer[0], peer[1]
        ssl_object = transport.get_extra_info("ssl_object")
        base = make_base_environ(
            url_scheme="https" if ssl_object is not None else "http",
            server_addr=transport.get_extra_info("sockname"), peer_addr=peer,
            multithread=self.runner.multithread, errors=self.runner.errors,
            multiprocess=self.config.multiprocess)
        if ssl_object is not None and ssl_object.context.verify_mode != CERT_NONE:
            base.update(client_cert_environ(ssl_object))  # mutual TLS (once per connection)
        self.component.connections.add(self)
        self._last_activity = self.loop.time()
        self._arm_watchdog()
        return base

    def _gone(self) -> None:
        """The connection is lost: it leaves the server's live connections (which gives back
        the memory a burst on it took); no more timeouts."""
        self._closed = True
        self.component.connection_closed(self)
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    # == timeouts =======================================================================
    def _arm_watchdog(self, delay: float | None = None) -> None:
        config = self.config
        if delay is None:
            delay = min(t for t in (config.idle_timeout, config.body_timeout, _LONGEST_CHECK)
                        if t)
        self._watchdog = self.loop.call_later(max(delay, 0.05), self._check_timeouts)

    def _check_timeouts(self) -> None:
        self._watchdog = None
        if self._closed:
            return
        now = self.loop.time()
        next_check = self._timeouts(now, now + (self.config.idle_timeout or _LONGEST_CHECK))
        if next_check is not None:
            self._arm_watchdog(next_check - now)

    def _timeouts(self, now: float, next_check: float) -> float | None:
        """Act on the timeouts that passed at loop time ``now``; return when to check again
        (``next_check`` at the latest), or None when the connection is closing."""
        raise NotImplementedError

    # == the app's work for a request =====================================================
    def _close_iter(self, close: Callable[[], object] | None, in_thread: bool) -> None:
        """Call an app iterable's ``close()`` (PEP 3333: always), where the iterable runs."""
        close_iterable(self.runner, close, in_thread)

    def respond_error(self, state: H2State, status: int = 500) -> None:
        """A plain error response for ``state``'s request (the Responder contract)."""
        raise NotImplementedError

    def _pulled_chunks(self, state: H2State, chunks: Iterable[bytes], error: BaseException | None,
                       closed: bool, current: bool) -> list[bytes] | None:
        """What both protocols' ``pulled`` do first with a streaming response's next chunks:
        the pull is over (``closed``: the iterable's ``close()`` ran where it runs); a request
        no longer ``current`` (dropped meanwhile) gets its iterable closed; an iterator that
        failed, or gave something other than bytes, gets a 500 (or a cut response). Returns
        the non-empty chunks to send, or None when there is nothing more to do."""
        state.pulling = False
        if closed:
            state.iter_close = None
        if not current:
            self._close_iter(state.iter_close, state.iter_in_thread)  # dropped while pulling
            state.iter_close = None
            return None
        if error is not None:
            log.error("app iterator failed on %s", state.describe(),
                      exc_info=(type(error), error, error.__traceback__))
            self.respond_error(state)
            return None
        try:
            return body_chunks(chunks)
        except TypeError as e:
            log.error("app iterator on %s: %s", state.describe(), e)
            self.respond_error(state)
            return None

    def _stop_app(self, state: H2State) -> None:
        """Stop what the app still does for ``state``'s request, which is gone: cancel its
        task, close its iterable (also while a chunk is being pulled: on the loop the pull is
        done already, its result waits in a callback; a job in a thread closes it once that
        pull is done), drop the rest of it and the environ."""
        if state.task is not None and not state.task.done():
            state.task.cancel()
        self._close_iter(state.iter_close, state.iter_in_thread)
        state.iter_close = None
        state.body_iter = None
        state.release_environ()
