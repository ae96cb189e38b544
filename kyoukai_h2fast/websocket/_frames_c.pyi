"""Types of the compiled WebSocket frame codec (``src/kyoukai_h2fast/websocket/_frames_c.pyx``).

The pure twin :mod:`kyoukai_h2fast.websocket._frames_py` has the same names and signatures
(``tests/test_stubs.py`` compares all three); :mod:`kyoukai_h2fast.websocket.frames` selects one.
"""
from typing_extensions import Self, disjoint_base

from .errors import FrameError as FrameError

__all__ = ["FrameReader", "Utf8Validator", "FrameError", "build_frame", "apply_mask",
           "compressed_wire_limit", "OP_CONTINUATION", "OP_TEXT", "OP_BINARY", "OP_CLOSE",
           "OP_PING", "OP_PONG", "DEFAULT_MAX_MESSAGE_SIZE"]

_Data = bytes | bytearray | memoryview
#: ``(opcode, fin, rsv1, payload)``; payload is ``str`` for a whole uncompressed text message.
_Frame = tuple[int, bool, bool, bytes | str]

OP_CONTINUATION: int
OP_TEXT: int
OP_BINARY: int
OP_CLOSE: int
OP_PING: int
OP_PONG: int
DEFAULT_MAX_MESSAGE_SIZE: int

@disjoint_base
class FrameReader:
    """Inbound bytes -> validated, unmasked frames (RFC 6455 §5)."""

    max_message_size: int
    # (the compiled class is made by ``__cinit__``; the twin's ``__init__`` takes the same)
    def __new__(cls, max_message_size: int = 16777216, client: bool = False,
                rsv1: bool = False) -> Self: ...
    def feed(self, data: _Data) -> None: ...
    def next_frame(self) -> _Frame | None: ...
    @property
    def buffered(self) -> int: ...
    @property
    def in_message(self) -> bool: ...
    def __iter__(self) -> Self: ...
    def __next__(self) -> _Frame: ...

@disjoint_base
class Utf8Validator:
    """Incremental, fail-fast UTF-8 validation."""

    def __init__(self) -> None: ...
    def reset(self) -> None: ...
    def feed(self, data: _Data) -> bool: ...
    @property
    def complete(self) -> bool: ...

def build_frame(opcode: int, payload: _Data | str, fin: bool = True, rsv1: bool = False,
                mask: _Data | None = None) -> bytes: ...
def apply_mask(data: _Data, mask: _Data) -> bytes: ...
def compressed_wire_limit(max_message_size: int) -> int: ...
