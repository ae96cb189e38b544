"""Events the WebSocket connection reports: plain data, one class per happening.

``WebSocketConnection.receive`` (:mod:`kyoukai_h2fast.websocket.connection`) returns a list
of these. Like the HTTP/2 engine's events (:mod:`kyoukai_h2fast.events`, whose
:class:`~kyoukai_h2fast.events.Event` base gives equality and repr over the slots), they are
slotted and immutable by convention, compare equal when class and fields are equal, and print
their fields, so tests assert on whole event lists.

* :class:`TextMessage`, :class:`BytesMessage`: a whole message (fragments reassembled,
  decompressed, text validated and decoded).
* :class:`Ping`, :class:`Pong`: control frames; the pong answering a ping is already queued
  (``data_to_send``) when :class:`Ping` is reported.
* :class:`CloseReceived`: the peer's close frame; the echo is queued when we had not closed.
* :class:`ConnectionFailed`: the peer broke a rule or a limit (RFC 6455 §7.1.7 "Fail the
  WebSocket Connection"); the close frame with ``code`` is queued (unless we had already sent
  one); the transport writes ``data_to_send()`` and closes the connection.
"""
from __future__ import annotations

from ..http2.events import Event

__all__ = ["WebSocketEvent", "TextMessage", "BytesMessage", "Ping", "Pong", "CloseReceived",
           "ConnectionFailed"]


class WebSocketEvent(Event):
    """Base of the WebSocket events."""

    __slots__ = ()


class TextMessage(WebSocketEvent):
    """A whole text message (opcode 0x1), valid UTF-8, decoded."""

    __slots__ = ("data",)

    def __init__(self, data: str) -> None:
        #: The message text.
        self.data = data


class BytesMessage(WebSocketEvent):
    """A whole binary message (opcode 0x2)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        #: The message bytes.
        self.data = data


class Ping(WebSocketEvent):
    """A ping (opcode 0x9); its pong is queued already (RFC 6455 §5.5.2)."""

    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        #: Application data of the ping (at most 125 bytes).
        self.payload = payload


class Pong(WebSocketEvent):
    """A pong (opcode 0xA): an answer to our ping, or an unsolicited heartbeat (§5.5.3)."""

    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        #: Application data of the pong (at most 125 bytes).
        self.payload = payload


class CloseReceived(WebSocketEvent):
    """The peer's close frame (RFC 6455 §5.5.1). Nothing after it is read."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        #: The status code; 1005 (``NO_STATUS_RCVD``) when the frame carried none.
        self.code = code
        #: The reason text (valid UTF-8, possibly empty).
        self.reason = reason


class ConnectionFailed(WebSocketEvent):
    """We failed the connection (RFC 6455 §7.1.7): the peer broke a rule or a limit."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        #: The close code sent: 1002 protocol error, 1007 invalid data (UTF-8, deflate),
        #: 1008 policy violation (a flood budget), 1009 message too big.
        self.code = code
        #: What was wrong (also the close frame's reason).
        self.reason = reason
