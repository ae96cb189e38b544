"""The HTTP/2 frame layer (RFC 9113 §4, §6): the public selector.

Compiled implementation :mod:`kyoukai_h2fast._frames_c` (C-level API in ``_frames_c.pxd``),
pure-Python twin :mod:`kyoukai_h2fast.codec._frames_py`; both give these names:

* :class:`FrameBuffer` -- drop-in for ``h2.frame_buffer.FrameBuffer`` (``add_data``, set
  ``max_frame_size``, iterate hyperframe frame objects). Same results and ``h2.exceptions``
  as h2's buffer, plus ``FrameTooLargeError`` as soon as an oversized frame's header arrives
  and ``DenialOfServiceError`` for a header block over ``max_header_block_size`` (262144).
  Bad padding raises :class:`FramePaddingError` (a ``ProtocolError`` and hyperframe's
  ``InvalidPaddingError``, the class h2's buffer lets through).
* :func:`serialize_frame` -- bytes equal to hyperframe's ``frame.serialize()``.
* :func:`headers_frames`, :func:`data_frames`, :func:`settings_frame`,
  :func:`window_update_frame`, :func:`ping_frame`, :func:`rst_stream_frame`,
  :func:`goaway_frame` -- frames from plain values; :class:`WriteBuffer` appends the same.
* :func:`parse_frame_header`, :func:`scan_frames`, :func:`count_frames` -- frame headers
  without frame objects (the compiled ones run the C-level ``FrameBuffer.next_frame``).
"""
from typing import TYPE_CHECKING

from .._switch import select

_impl = select("frames")

__all__ = ["FrameBuffer", "WriteBuffer", "FramePaddingError", "serialize_frame",
           "headers_frames", "data_frames", "settings_frame", "window_update_frame",
           "ping_frame", "rst_stream_frame", "goaway_frame", "parse_frame_header",
           "scan_frames", "count_frames", "CLIENT_PREFACE", "DEFAULT_MAX_HEADER_BLOCK_SIZE"]

# Type checkers see the compiled module's stub (``_frames_c.pyi``); the pure twin has the same
# names and signatures (tests/quality/test_stubs.py).
if TYPE_CHECKING:
    from .._frames_c import (
        CLIENT_PREFACE,
        DEFAULT_MAX_HEADER_BLOCK_SIZE,
        FrameBuffer,
        FramePaddingError,
        WriteBuffer,
        count_frames,
        data_frames,
        goaway_frame,
        headers_frames,
        parse_frame_header,
        ping_frame,
        rst_stream_frame,
        scan_frames,
        serialize_frame,
        settings_frame,
        window_update_frame,
    )
else:  # the names of __all__, from the selected implementation
    globals().update({name: getattr(_impl, name) for name in __all__})
