"""Protocol constants of HTTP/2 (RFC 9113) and its extensions, written once.

Engines (compiled and pure), the asyncio protocol and the tests take error codes, frame types,
setting identifiers and the client preface from here, not from ``h2``, so that no module needs
a library's enums to speak the protocol. Plain ints: cheap to compare on the hot path.

It is also where a compiled module and its pure twin find the values they share (as msgpack
shares its exceptions): the default bound of a header block, the RFC 9218 priority tuples and
the reasons of the flood budgets. A compiled module imports nothing from its pure twin.
"""
from __future__ import annotations

__all__ = [
    "CLIENT_PREFACE",
    "ErrorCode",
    "FrameType",
    "Flag",
    "Setting",
    "DEFAULT_WINDOW",
    "MAX_WINDOW",
    "MIN_MAX_FRAME_SIZE",
    "MAX_MAX_FRAME_SIZE",
    "DEFAULT_MAX_HEADER_BLOCK_SIZE",
    "PRIORITIES",
    "UNSIGNALLED",
    "BUDGET_REASONS",
]

#: The client connection preface (RFC 9113 §3.4), before the client's SETTINGS frame.
CLIENT_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

#: Initial flow-control window of every stream and of the connection (RFC 9113 §6.9.2).
DEFAULT_WINDOW = 65_535
#: Largest flow-control window (RFC 9113 §6.9.1).
MAX_WINDOW = 2**31 - 1
#: Bounds of SETTINGS_MAX_FRAME_SIZE (RFC 9113 §6.5.2).
MIN_MAX_FRAME_SIZE = 16_384
MAX_MAX_FRAME_SIZE = 16_777_215
#: Default bound of one (joined) header block, in bytes: h2's 64 frames x 4096 bytes.
DEFAULT_MAX_HEADER_BLOCK_SIZE = 262144

#: Every RFC 9218 priority ``(urgency, incremental)`` as the one tuple object both engines hand
#: out: ``PRIORITIES[2 * u + i]`` (read by :mod:`kyoukai_h2fast.http2.priority`).
PRIORITIES = tuple((u, i) for u in range(8) for i in (False, True))
#: A request without any priority signal: urgency 3, shared fairly (RFC 9218 §10; see
#: :mod:`kyoukai_h2fast.http2.priority`).
UNSIGNALLED = PRIORITIES[7]

#: Flood budget name (``ConnectionFailed.budget``, named after its ``--max-...`` option) ->
#: (message of ConnectionFailed, GOAWAY debug data), for both engines (what each budget
#: counts: :mod:`kyoukai_h2fast.http2.h2engine.budgets`).
BUDGET_REASONS = {
    "resets": ("rapid reset flood", b"too many stream resets"),
    "pings": ("ping flood", b"too many pings"),
    "settings": ("settings flood", b"too many settings"),
    "empty_frames": ("flood of frames without progress", b"too many empty frames"),
    "queued_control_frames": ("control frames queued and not read",
                              b"too many control frames queued"),
}


class ErrorCode:
    """RFC 9113 §7 error codes."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


class FrameType:
    """Frame type codes (RFC 9113 §6; ALTSVC RFC 7838; PRIORITY_UPDATE RFC 9218 §7.1)."""

    DATA = 0x0
    HEADERS = 0x1
    PRIORITY = 0x2
    RST_STREAM = 0x3
    SETTINGS = 0x4
    PUSH_PROMISE = 0x5
    PING = 0x6
    GOAWAY = 0x7
    WINDOW_UPDATE = 0x8
    CONTINUATION = 0x9
    ALTSVC = 0xA
    PRIORITY_UPDATE = 0x10


class Flag:
    """Frame flags (RFC 9113 §6)."""

    END_STREAM = 0x1
    ACK = 0x1
    END_HEADERS = 0x4
    PADDED = 0x8
    PRIORITY = 0x20


class Setting:
    """SETTINGS identifiers (RFC 9113 §6.5.2; RFC 8441 §3; RFC 9218 §2.1)."""

    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6
    ENABLE_CONNECT_PROTOCOL = 0x8
    NO_RFC7540_PRIORITIES = 0x9
