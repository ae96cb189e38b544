"""WebSocket wire constants (RFC 6455 §5.2, §7.4) and the limits' defaults, in one place.

Opcodes, close codes and which close codes may appear on the wire, plus the defaults of the
connection's limits (:mod:`kyoukai_h2fast.websocket.connection` says how each is used). The
compiled codec mirrors the opcodes as C constants (``_frames_c.pxd``); the Python-level names of
both codec twins come from here.
"""
from __future__ import annotations

import enum

__all__ = [
    "OP_CONTINUATION", "OP_TEXT", "OP_BINARY", "OP_CLOSE", "OP_PING", "OP_PONG",
    "CloseCode", "is_valid_close_code", "MAX_CONTROL_PAYLOAD", "MAX_CLOSE_REASON",
    "DEFAULT_MAX_MESSAGE_SIZE", "DEFAULT_MAX_PINGS_PER_10S", "DEFAULT_MAX_EMPTY_FRAMES_PER_10S",
    "DEFAULT_MAX_QUEUED_PONGS",
]

# -- opcodes (RFC 6455 §5.2, §11.8); 0x3-0x7 and 0xB-0xF are reserved ------------------------
OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

#: Control frames carry at most 125 bytes (RFC 6455 §5.5).
MAX_CONTROL_PAYLOAD = 125
#: A close reason fits a control frame after the 2-byte code (RFC 6455 §5.5.1).
MAX_CLOSE_REASON = MAX_CONTROL_PAYLOAD - 2


class CloseCode(enum.IntEnum):
    """Close status codes (RFC 6455 §7.4.1, IANA registry). 1005 and 1006 are never sent:
    they stand for "no code in the close frame" and "closed without a close frame"."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007          # e.g. invalid UTF-8 in a text message or a close reason
    POLICY_VIOLATION = 1008      # here: a flood budget was crossed
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


def is_valid_close_code(code: int) -> bool:
    """True for a code a close frame may carry (RFC 6455 §7.4): 1000-1003 and 1007-1014
    (registered), 3000-4999 (libraries, frameworks and applications). Everything else is a
    protocol error on the wire: < 1000, 1004 (reserved), 1005/1006 (never sent), 1015 (TLS,
    never sent), 1016-2999 (reserved for future RFCs), >= 5000."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


# -- defaults of the connection's limits -----------------------------------------------------
#: Largest message (after reassembly and decompression), and so largest frame: 16 MiB, as
#: uvicorn's ``--ws-max-size`` (the ``websockets`` library's own default is 1 MiB); Autobahn's
#: case group 9 sends messages up to 16 MiB.
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024
#: Pings a peer may send in any 10 s (the HTTP/2 ``max_pings_per_10s`` default).
DEFAULT_MAX_PINGS_PER_10S = 1000
#: Frames without progress (empty non-final fragments, pongs) a peer may send in any 10 s
#: (the HTTP/2 ``max_empty_frames_per_10s`` default).
DEFAULT_MAX_EMPTY_FRAMES_PER_10S = 1000
#: Automatic pongs queued since the transport last reported its output drained (the HTTP/2
#: ``max_queued_control_frames`` default).
DEFAULT_MAX_QUEUED_PONGS = 1000
