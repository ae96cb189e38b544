"""The WebSocket frame codec (RFC 6455 §5): the public selector.

Compiled implementation :mod:`kyoukai_h2fast.websocket._frames_c` (C-level API in
``src/kyoukai_h2fast/websocket/_frames_c.pxd``), pure-Python twin
:mod:`kyoukai_h2fast.websocket._frames_py`, chosen by :mod:`kyoukai_h2fast._switch` (name
``websocket``); both give these names:

* :class:`FrameReader`: ``feed(data)``, then iterate ``(opcode, fin, rsv1, payload)``
  frames, validated and unmasked (a whole uncompressed text message as ``str``);
  :class:`FrameError` (with the close code) for a broken rule.
* :class:`Utf8Validator`: incremental, fail-fast UTF-8 validation.
* :func:`build_frame`, :func:`apply_mask`, :func:`compressed_wire_limit`, the opcodes and
  ``DEFAULT_MAX_MESSAGE_SIZE``.
"""
from typing import TYPE_CHECKING

from .._switch import select

_impl = select("websocket")

__all__ = ["FrameReader", "Utf8Validator", "FrameError", "build_frame", "apply_mask",
           "compressed_wire_limit", "OP_CONTINUATION", "OP_TEXT", "OP_BINARY", "OP_CLOSE",
           "OP_PING", "OP_PONG", "DEFAULT_MAX_MESSAGE_SIZE"]

# Type checkers see the compiled module's stub (``_frames_c.pyi``); the pure twin has the same
# names and signatures (tests/test_stubs.py).
if TYPE_CHECKING:
    from ._frames_c import (
        DEFAULT_MAX_MESSAGE_SIZE,
        OP_BINARY,
        OP_CLOSE,
        OP_CONTINUATION,
        OP_PING,
        OP_PONG,
        OP_TEXT,
        FrameError,
        FrameReader,
        Utf8Validator,
        apply_mask,
        build_frame,
        compressed_wire_limit,
    )
else:  # the names of __all__, from the selected implementation
    globals().update({name: getattr(_impl, name) for name in __all__})
