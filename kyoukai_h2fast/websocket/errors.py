"""The WebSocket core's exceptions, shared by both codec twins (so either raises the very same
class) and the connection.

* :class:`FrameError`: the peer broke a rule; carries the close code it maps to (RFC 6455
  §7.4.1) and a reason. The codec raises it; the connection turns it into a
  :class:`~kyoukai_h2fast.websocket.events.ConnectionFailed` event and a close frame, so a
  transport never sees it.
* :class:`InvalidStateError`: the local side called ``send_*`` when the connection no longer
  allows it (data after a close was sent or received).
"""
from __future__ import annotations

__all__ = ["FrameError", "InvalidStateError"]


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
