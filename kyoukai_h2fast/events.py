"""Events a connection engine reports to the protocol: plain data, one class per happening.

The protocol (:mod:`kyoukai_h2fast.protocol`) consumes only these, never an engine's own
types, so the engine under it (``h2`` today, a compiled core later) can change without the
orchestration noticing. Every class is slotted and immutable by convention; ``end_stream``
flags fold the separate "stream ended" notification into the event that carried END_STREAM.
"""
from __future__ import annotations

__all__ = [
    "RequestReceived",
    "DataReceived",
    "TrailersReceived",
    "StreamReset",
    "WindowUpdated",
    "SettingsChanged",
    "ConnectionTerminated",
]


class RequestReceived:
    """A complete, validated request header block opened ``stream_id``."""

    __slots__ = ("stream_id", "headers", "end_stream", "content_length")

    def __init__(self, stream_id: int, headers: list, end_stream: bool,
                 content_length: int) -> None:
        #: The stream the request arrived on.
        self.stream_id = stream_id
        #: Decoded header list: ``(name: bytes, value: bytes)`` pairs, pseudo-headers first.
        self.headers = headers
        #: True when the request has no body (END_STREAM on the HEADERS frame).
        self.end_stream = end_stream
        #: The declared ``content-length``, or -1 when absent.
        self.content_length = content_length


class DataReceived:
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


class TrailersReceived:
    """A validated trailer block ended the request body on ``stream_id``."""

    __slots__ = ("stream_id", "headers")

    def __init__(self, stream_id: int, headers: list) -> None:
        self.stream_id = stream_id
        self.headers = headers


class StreamReset:
    """``stream_id`` is gone: reset by the peer, or by the engine for a stream error.

    The protocol must stop all work for the stream and forget it.
    """

    __slots__ = ("stream_id", "error_code", "remote")

    def __init__(self, stream_id: int, error_code: int, remote: bool) -> None:
        self.stream_id = stream_id
        #: RFC 9113 §7 error code.
        self.error_code = error_code
        #: True when the peer sent RST_STREAM; False when the engine reset the stream
        #: (malformed request, refused stream, content-length mismatch).
        self.remote = remote


class WindowUpdated:
    """The peer opened a send window (``stream_id`` 0: the connection window)."""

    __slots__ = ("stream_id", "delta")

    def __init__(self, stream_id: int, delta: int) -> None:
        self.stream_id = stream_id
        self.delta = delta


class SettingsChanged:
    """The peer changed settings; send windows or the max frame size may have moved."""

    __slots__ = ("initial_window_size_changed",)

    def __init__(self, initial_window_size_changed: bool) -> None:
        self.initial_window_size_changed = initial_window_size_changed


class ConnectionTerminated:
    """The peer sent GOAWAY: no new streams above ``last_stream_id`` will come."""

    __slots__ = ("error_code", "last_stream_id", "additional_data")

    def __init__(self, error_code: int, last_stream_id: int, additional_data: bytes | None) -> None:
        self.error_code = error_code
        self.last_stream_id = last_stream_id
        self.additional_data = additional_data
