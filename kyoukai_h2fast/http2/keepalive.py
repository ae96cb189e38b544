"""HTTP/2 keep-alive PINGs: finding peers that are gone without closing (``--http2-ping-interval``).

A connection whose peer sent nothing for ``http2_ping_interval`` seconds gets a PING (RFC 9113
§6.7) with opaque data of our own; the peer must acknowledge it within ``http2_ping_timeout``
seconds, or the connection is closed (GOAWAY when the socket still takes it) and the work for
its streams dropped. A peer that vanished (a laptop closed, a NAT that forgot the mapping, a
crashed client behind a proxy that keeps the TCP connection) is otherwise only noticed when TCP
gives up, which takes many minutes, while its streams hold threads, buffers and the
connection's place.

:class:`KeepAlive` owns the schedule and the one PING outstanding; the protocol
(:mod:`kyoukai_h2fast.http2.protocol`) calls :meth:`KeepAlive.check` from its timeout timer and
:meth:`KeepAlive.acknowledged` for each
:class:`~kyoukai_h2fast.http2.events.PingAcknowledged` the engine reports, and does the closing.

The PING ACKs do not count as activity for the idle timeout (``--idle-timeout``): when the ACK
is all the peer sent since our PING (17 bytes), :meth:`KeepAlive.acknowledged` gives back the
time of the peer's last activity before it, so a client that only answers PINGs is still
closed when idle.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..contracts import Engine

__all__ = ["KeepAlive", "PING_ACK_SIZE"]

#: Bytes of a PING ACK on the wire: a 9-byte frame header and 8 bytes of opaque data.
PING_ACK_SIZE = 17
#: First bytes of our keep-alive PINGs' opaque data (a counter follows): they differ from the
#: all-zero PING the engine sends after an early response.
_PREFIX = b"ka"


class KeepAlive:
    """The keep-alive PINGs of one HTTP/2 connection (see the module docstring)."""

    __slots__ = ("interval", "timeout", "sent", "_outstanding", "_sent_at", "_idle_since",
                 "_bytes_at", "_acked_at")

    def __init__(self, interval: float, timeout: float) -> None:
        #: Seconds without anything received before a PING; its ACK's deadline.
        self.interval = interval
        self.timeout = timeout
        #: PINGs sent so far (the counter in their opaque data).
        self.sent = 0
        #: The opaque data of the PING waiting for its ACK, or None.
        self._outstanding: bytes | None = None
        self._sent_at = 0.0
        #: The peer's last activity when the PING went out, and the engine's received bytes.
        self._idle_since = 0.0
        self._bytes_at = 0
        #: When the last ACK came (the next PING is due ``interval`` after it at the earliest).
        self._acked_at = 0.0

    @property
    def outstanding(self) -> bool:
        """True while a PING waits for its ACK."""
        return self._outstanding is not None

    def check(self, now: float, last_activity: float, engine: Engine) -> float | None:
        """At loop time ``now``: queue a PING on ``engine`` if the peer has been silent for
        ``interval`` (``last_activity``: when it last sent anything). Returns when to check
        again, or None when the outstanding PING's ACK is overdue (close the connection)."""
        if self._outstanding is not None:
            deadline = self._sent_at + self.timeout
            return None if now >= deadline else deadline
        due = max(last_activity, self._acked_at) + self.interval
        if now < due:
            return due
        self.sent += 1
        self._outstanding = _PREFIX + self.sent.to_bytes(6, "big")
        engine.send_ping(self._outstanding)
        self._sent_at = now
        self._idle_since = last_activity
        self._bytes_at = engine.bytes_received
        return now + self.timeout

    def acknowledged(self, opaque_data: bytes, now: float, engine: Engine) -> float | None:
        """The peer acknowledged a PING with ``opaque_data`` at ``now``. For the ACK of ours
        that came alone, returns the peer's last activity before our PING (the protocol's
        idle clock goes back to it); otherwise None."""
        if opaque_data != self._outstanding:
            return None  # not ours (the engine's wake-up PING), or late
        self._outstanding = None
        self._acked_at = now
        if engine.bytes_received - self._bytes_at == PING_ACK_SIZE:
            return self._idle_since
        return None
