"""Events a connection engine reports to the protocol: plain data, one class per happening.

The protocol (:mod:`kyoukai_h2fast.http2.protocol`) consumes only these, never an engine's own
types, so the engine under it (``h2`` today, a compiled core later) can change without the
orchestration noticing. Every class is slotted and immutable by convention; ``end_stream``
flags fold the separate "stream ended" notification into the event that carried END_STREAM.
Events compare equal when their class and fields are equal, and print their fields, so tests
can assert on whole event lists and read failures.

Receive side (returned by ``Engine.receive``): :class:`RequestReceived`,
:class:`ExtendedConnectReceived` (RFC 8441), :class:`DataReceived`, :class:`TrailersReceived`,
:class:`StreamReset`, :class:`ConnectionTerminated`, :class:`PingAcknowledged`.
Send side (returned by ``Engine.send_events`` after ``Engine.data_to_send``):
:class:`StreamDrained`, :class:`ResponseSent`.
"""
from __future__ import annotations

from ..constants import UNSIGNALLED

__all__ = [
    "Event",
    "RequestReceived",
    "ExtendedConnectReceived",
    "DataReceived",
    "TrailersReceived",
    "StreamReset",
    "WindowUpdated",
    "SettingsChanged",
    "ConnectionTerminated",
    "PingAcknowledged",
    "StreamDrained",
    "ResponseSent",
]


class Event:
    """Base of every event: equality and repr over the ``__slots__`` fields (free-text fields
    listed in ``_uncompared`` are printed but not compared: engines word them differently)."""

    __slots__: tuple[str, ...] = ()
    _uncompared: tuple = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        skip = self._uncompared
        return all(getattr(self, f) == getattr(other, f) for f in self.__slots__
                   if f not in skip)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]  # mutable by construction; compared, not hashed

    def __repr__(self) -> str:
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__slots__)
        return f"{self.__class__.__name__}({fields})"


class RequestReceived(Event):
    """A complete, validated request header block opened ``stream_id``."""

    __slots__ = ("stream_id", "headers", "end_stream", "content_length", "priority")

    def __init__(self, stream_id: int, headers: list, end_stream: bool,
                 content_length: int, priority: tuple = UNSIGNALLED) -> None:
        #: The stream the request arrived on.
        self.stream_id = stream_id
        #: Decoded header list: ``(name: bytes, value: bytes)`` pairs, pseudo-headers first.
        self.headers = headers
        #: True when the request has no body (END_STREAM on the HEADERS frame).
        self.end_stream = end_stream
        #: The declared ``content-length``, or -1 when absent.
        self.content_length = content_length
        #: RFC 9218 ``(urgency, incremental)`` the engine schedules the response with from
        #: the start: a PRIORITY_UPDATE that came before the request, else the request's
        #: ``priority`` field (defaults ``u=3``, not incremental, for what it leaves out), else
        #: ``(3, True)``: no signal, shared fairly (:mod:`kyoukai_h2fast.http2.priority`).
        self.priority = priority


class ExtendedConnectReceived(Event):
    """An extended CONNECT (RFC 8441 §4: ``:method`` CONNECT with ``:protocol``, ``:scheme``,
    ``:path`` and ``:authority``) opened ``stream_id``: a tunnel for ``protocol`` (e.g.
    ``b"websocket"``), whose bytes travel in DATA frames both ways, under flow control. Only
    reported when SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 was advertised (``ServerConfig.ws_http2``);
    without it such a request is malformed (a stream error PROTOCOL_ERROR, RFC 8441 §3)."""

    __slots__ = ("stream_id", "headers", "end_stream", "protocol")

    def __init__(self, stream_id: int, headers: list, end_stream: bool,
                 protocol: bytes) -> None:
        #: The stream the request arrived on.
        self.stream_id = stream_id
        #: Decoded header list: ``(name: bytes, value: bytes)`` pairs, pseudo-headers first.
        self.headers = headers
        #: True when the client ended its side at once (END_STREAM on the HEADERS frame).
        self.end_stream = end_stream
        #: The ``:protocol`` value.
        self.protocol = protocol


class DataReceived(Event):
    """Request body bytes arrived on ``stream_id``."""

    __slots__ = ("stream_id", "data", "flow_controlled_length", "end_stream")

    def __init__(self, stream_id: int, data: bytes, flow_controlled_length: int,
                 end_stream: bool) -> None:
        self.stream_id = stream_id
        #: The payload, padding removed.
        self.data = data
        #: Bytes this frame took from the receive windows (payload plus padding); the
        #: protocol must hand exactly this much back with ``Engine.acknowledge``.
        self.flow_controlled_length = flow_controlled_length
        #: True when this was the last DATA frame of the request.
        self.end_stream = end_stream


class TrailersReceived(Event):
    """A validated trailer block ended the request body on ``stream_id``."""

    __slots__ = ("stream_id", "headers")

    def __init__(self, stream_id: int, headers: list) -> None:
        self.stream_id = stream_id
        self.headers = headers


class StreamReset(Event):
    """``stream_id`` is gone: reset by the peer, or by the engine for a stream error.

    The protocol must stop all work for the stream and forget it.
    """

    __slots__ = ("stream_id", "error_code", "remote", "reason")
    _uncompared = ("reason",)

    def __init__(self, stream_id: int, error_code: int, remote: bool, reason: str = "") -> None:
        self.stream_id = stream_id
        #: RFC 9113 §7 error code.
        self.error_code = error_code
        #: True when the peer sent RST_STREAM; False when the engine reset the stream
        #: (malformed request, refused stream, content-length mismatch).
        self.remote = remote
        #: Why the engine reset the stream (for logs; empty for peer resets).
        self.reason = reason


class WindowUpdated(Event):
    """The peer opened a send window (``stream_id`` 0: the connection window)."""

    __slots__ = ("stream_id", "delta")

    def __init__(self, stream_id: int, delta: int) -> None:
        self.stream_id = stream_id
        self.delta = delta


class SettingsChanged(Event):
    """The peer changed settings; send windows or the max frame size may have moved."""

    __slots__ = ("initial_window_size_changed",)

    def __init__(self, initial_window_size_changed: bool) -> None:
        self.initial_window_size_changed = initial_window_size_changed


class ConnectionTerminated(Event):
    """The peer sent GOAWAY: no new streams above ``last_stream_id`` will come."""

    __slots__ = ("error_code", "last_stream_id", "additional_data")

    def __init__(self, error_code: int, last_stream_id: int, additional_data: bytes | None) -> None:
        self.error_code = error_code
        self.last_stream_id = last_stream_id
        self.additional_data = additional_data


class PingAcknowledged(Event):
    """The peer acknowledged a PING (a PING frame with the ACK flag, RFC 9113 §6.7): ours
    from ``Engine.send_ping``, or one we never sent (the protocol compares the data)."""

    __slots__ = ("opaque_data",)

    def __init__(self, opaque_data: bytes) -> None:
        #: The 8 opaque bytes the ACK echoes.
        self.opaque_data = opaque_data


class StreamDrained(Event):
    """Everything queued with ``Engine.queue_data`` for ``stream_id`` went out, and the
    response has not ended: the protocol may pull the next chunk from the app."""

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class ResponseSent(Event):
    """The frame carrying END_STREAM of the response on ``stream_id`` went out.

    ``request_complete`` is False when the peer had not finished the request body then; the
    engine keeps the stream half-closed (local) and, once told with ``Engine.stop_reading``,
    discards further DATA (crediting the windows) until the peer ends the stream.
    """

    __slots__ = ("stream_id", "request_complete")

    def __init__(self, stream_id: int, request_complete: bool) -> None:
        self.stream_id = stream_id
        self.request_complete = request_complete
