"""WebSocket protocol core (RFC 6455, RFC 7692, RFC 8441), sans-IO: bytes in, events out.

Both transports (HTTP/1.1 Upgrade and HTTP/2 extended CONNECT) share it:

* :mod:`.handshake`: validate the opening request, compute the response headers, negotiate
  subprotocol and extensions;
* :mod:`.connection`: :class:`WebSocketConnection`, the state machine of an open WebSocket
  (``receive(data) -> events``, ``send_*() -> bytes``, ``data_to_send()``);
* :mod:`.events`: what ``receive`` reports; :mod:`.deflate`: permessage-deflate;
* :mod:`.frames`: the frame codec (compiled ``_frames_c`` or the twin ``_frames_py``).
"""
from __future__ import annotations

from .constants import CloseCode
from .errors import FrameError, InvalidStateError
from .events import (
    BytesMessage,
    CloseReceived,
    ConnectionFailed,
    Ping,
    Pong,
    TextMessage,
    WebSocketEvent,
)
from .frames import FrameReader, build_frame

__all__ = [
    "CloseCode", "FrameError", "InvalidStateError", "WebSocketEvent", "TextMessage",
    "BytesMessage", "Ping", "Pong", "CloseReceived", "ConnectionFailed", "FrameReader",
    "build_frame",
]
