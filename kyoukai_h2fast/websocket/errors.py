"""The WebSocket core's exceptions, shared by both codec twins (so either raises the very same
class) and the connection.

* :class:`FrameError`: the peer broke a rule; carries the close code it maps to (RFC 6455
  §7.4.1) and a reason. The codec raises it; the connection turns it into a
  :class:`~kyoukai_h2fast.websocket.events.ConnectionFailed` event and a close frame, so a
  transport never sees it.
* :class:`InvalidStateError`: the local side called ``send_*`` when the connection no longer
  allows it (data after a close was sent or received).

Also the reasons (``R_*``) the codec's errors carry, worded once for both twins.
"""
from __future__ import annotations

__all__ = ["FrameError", "InvalidStateError"]

# The reasons of the codec's FrameErrors: one wording for both twins and the connection.
R_RESERVED_OPCODE = "reserved opcode"
R_RESERVED_BITS = "reserved bits RSV2/RSV3 set"
R_RSV1 = "reserved bit RSV1 set without a negotiated extension"
R_RSV1_CONTROL = "RSV1 set on a control frame"
R_RSV1_CONTINUATION = "RSV1 set on a continuation frame"
R_FRAGMENTED_CONTROL = "fragmented control frame"
R_CONTROL_TOO_LONG = "control frame payload over 125 bytes"
R_UNMASKED = "unmasked frame from a client"
R_MASKED = "masked frame from a server"
R_NO_MESSAGE = "continuation frame without a message in progress"
R_MESSAGE_IN_PROGRESS = "new data frame while a fragmented message is in progress"
R_NON_MINIMAL = "length not in the minimal number of bytes"
R_LENGTH_MSB = "64-bit length with the most significant bit set"
R_TOO_BIG = "message too big"
R_INVALID_UTF8 = "invalid UTF-8 in a text message"
R_TRUNCATED_UTF8 = "text message ends inside a UTF-8 sequence"


class FrameError(Exception):
    """The peer's bytes broke RFC 6455 (or a limit): fail the connection with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        #: The close code to send (1002, 1007, 1008 or 1009).
        self.code = code
        #: What was wrong, for logs and the close frame's reason.
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"


class InvalidStateError(RuntimeError):
    """A send the connection's state does not allow (e.g. a message after a close)."""
