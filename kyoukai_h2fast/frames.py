"""The HTTP/2 frame layer (RFC 9113 §4, §6) at its documented path.

The selector, and what each name does, is :mod:`kyoukai_h2fast.codec.frames`.
"""
# ruff: noqa: F403, F405 - this module is the names of __all__, taken from the selector
from .codec.frames import *

__all__ = ["FrameBuffer", "WriteBuffer", "FramePaddingError", "serialize_frame",
           "headers_frames", "data_frames", "settings_frame", "window_update_frame",
           "ping_frame", "rst_stream_frame", "goaway_frame", "parse_frame_header",
           "scan_frames", "count_frames", "CLIENT_PREFACE", "DEFAULT_MAX_HEADER_BLOCK_SIZE"]
