"""WebSocket protocol core (RFC 6455, RFC 7692, RFC 8441), sans-IO: bytes in, events out.

Both transports (HTTP/1.1 Upgrade and HTTP/2 extended CONNECT) share it:

* :mod:`.handshake`: validate the opening request (:func:`validate_http1_request`,
  :func:`validate_http2_request`: a :class:`WebSocketRequest` or a :class:`Rejection`),
  negotiate extensions and subprotocol, build the response (:func:`accept_response`);
* :mod:`.connection`: :class:`WebSocketConnection`, the state machine of an open WebSocket
  (``receive(data) -> events``, ``send_*() -> bytes``, ``data_to_send()``, ``closed``);
* :mod:`.events`: what ``receive`` reports; :mod:`.deflate`: permessage-deflate
  (:class:`DeflatePolicy`); :mod:`.constants`: opcodes, close codes, default limits;
* :mod:`.frames`: the frame codec (compiled ``_frames_c`` or the twin ``_frames_py``).
"""
from __future__ import annotations

from .connection import State, WebSocketConnection
from .constants import CloseCode
from .deflate import DeflatePolicy, PerMessageDeflate
from .errors import FrameError, InvalidStateError
from .events import *  # noqa: F403  (its __all__: the events receive() reports)
from .events import __all__ as _events
from .handshake import (
    Rejection,
    WebSocketRequest,
    accept_key,
    accept_response,
    check_subprotocol,
    is_upgrade_request,
    negotiate_extensions,
    select_subprotocol,
    validate_http1_request,
    validate_http2_request,
)

__all__ = [
    "WebSocketConnection", "State", "CloseCode", "DeflatePolicy", "PerMessageDeflate",
    "FrameError", "InvalidStateError", *_events, "WebSocketRequest", "Rejection",
    "accept_key", "accept_response", "check_subprotocol", "is_upgrade_request",
    "negotiate_extensions", "select_subprotocol", "validate_http1_request",
    "validate_http2_request",
]
