"""The flood budgets of one connection, for the pure engine twin
(:mod:`kyoukai_h2fast.http2.h2engine.engine`).

The compiled engine keeps the same counters as C ints (``_engine_c_budgets.pxi``) with the
same arithmetic, so both engines end a connection at the same frame. What is counted, per
received frame, before the frame is handled (budgets of
:class:`~kyoukai_h2fast.config.ServerConfig`):

* ``max_pings_per_10s``: PING frames (not ACKs);
* ``max_settings_per_10s``: SETTINGS frames (not ACKs);
* ``max_empty_frames_per_10s``: frames that carry no progress: DATA without payload and
  without END_STREAM, WINDOW_UPDATE with an increment below :data:`TINY_WINDOW_UPDATE`,
  PRIORITY, PING and SETTINGS ACKs, GOAWAY, and frames of types a server ignores (ALTSVC,
  PRIORITY_UPDATE, unknown types, RFC 9113 §5.5);

and after the frame was handled:

* ``max_resets_per_10s``: streams the peer reset (RST_STREAM on a live stream) plus every
  RST_STREAM the engine queued while handling the frame (stream errors, refused streams, late
  frames on closed streams): resets the peer *provokes* count like resets it sends
  ("MadeYouReset", CVE-2025-8671, next to "Rapid Reset", CVE-2023-44487);
* ``max_queued_control_frames``: control frames (RST_STREAM, WINDOW_UPDATE, PING and SETTINGS
  ACKs) queued since the protocol last reported the output drained
  (``Engine.output_drained``): a peer that does not read cannot make us queue replies.

Crossing a budget is a connection error ENHANCE_YOUR_CALM (GOAWAY with the debug data of
:data:`kyoukai_h2fast.constants.BUDGET_REASONS`). The windows are 10 s wide, in 20 buckets of
0.5 s, on ``time.monotonic``.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ...constants import FrameType

if TYPE_CHECKING:
    from ...config import ServerConfig

__all__ = ["RateWindow", "Budgets", "TINY_WINDOW_UPDATE"]

#: A WINDOW_UPDATE below this increment carries (almost) no progress (the "data dribble").
TINY_WINDOW_UPDATE = 1024

_BUCKETS = 20
_DATA, _PRIORITY, _SETTINGS, _PING, _GOAWAY, _WINDOW_UPDATE, _ALTSVC = (
    FrameType.DATA, FrameType.PRIORITY, FrameType.SETTINGS, FrameType.PING,
    FrameType.GOAWAY, FrameType.WINDOW_UPDATE, FrameType.ALTSVC)


class RateWindow:
    """How many events happened in the last 10 s (20 buckets of 0.5 s), against a limit."""

    __slots__ = ("limit", "epoch", "bucket", "counts", "total")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.epoch = 0.0
        self.bucket = 0
        self.counts = [0] * _BUCKETS
        self.total = 0

    def add(self, n: int = 1) -> bool:
        """Count ``n`` events now; True when the window holds more than the limit."""
        now = time.monotonic()            # looked up each time: tests replace it
        if self.epoch == 0.0:
            self.epoch = now - 1.0
        bucket = int((now - self.epoch) * 2.0)
        counts = self.counts
        if bucket > self.bucket:
            if bucket - self.bucket >= _BUCKETS:
                for i in range(_BUCKETS):
                    counts[i] = 0
                self.total = 0
            else:
                for b in range(self.bucket + 1, bucket + 1):
                    self.total -= counts[b % _BUCKETS]
                    counts[b % _BUCKETS] = 0
            self.bucket = bucket
        counts[self.bucket % _BUCKETS] += n
        self.total += n
        return self.total > self.limit


class Budgets:
    """The counters of one connection (see the module docstring)."""

    __slots__ = ("resets", "pings", "settings", "empty", "max_control")

    def __init__(self, config: ServerConfig) -> None:
        self.resets = RateWindow(config.max_resets_per_10s)
        self.pings = RateWindow(config.max_pings_per_10s)
        self.settings = RateWindow(config.max_settings_per_10s)
        self.empty = RateWindow(config.max_empty_frames_per_10s)
        self.max_control = config.max_queued_control_frames

    def frame(self, ftype: int, flags: int, payload_length: int, increment: int) -> str | None:
        """Count a received frame (type, flags, DATA payload length without padding,
        WINDOW_UPDATE increment); the name of the budget it exceeds, or None."""
        if ftype == _DATA:
            if payload_length or flags & 0x1:
                return None
        elif ftype == _PING or ftype == _SETTINGS:
            if not flags & 0x1:
                window = self.pings if ftype == _PING else self.settings
                if window.add():
                    return "pings" if ftype == _PING else "settings"
                return None
        elif ftype == _WINDOW_UPDATE:
            if increment >= TINY_WINDOW_UPDATE:
                return None
        elif ftype != _PRIORITY and ftype != _GOAWAY and ftype < _ALTSVC:
            return None                   # HEADERS, RST_STREAM, PUSH_PROMISE, CONTINUATION
        return "empty_frames" if self.empty.add() else None
