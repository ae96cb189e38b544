"""Worker recycling limits, checked inside a worker process: ``--max-requests`` (plus a
per-worker share of ``--max-requests-jitter``), ``--workers-lifetime`` and
``--workers-max-rss``.

:class:`Limits` looks at the worker's figures a few times a second on its event loop (the
requests its connections received, read from them: nothing is counted per request; its age;
its resident memory from ``/proc/self/statm``); while requests come in, the next look is
due about when the request limit will be reached at the rate seen (not sooner than 5 ms), so
a busy worker passes its limit by a few requests, not by a quarter-second's worth. Past a
limit it logs the reason once and
calls ``ask`` (the worker writes to its supervisor's pipe), then again every second until
the supervisor acts; the worker goes on serving meanwhile. Replacing the worker is the
supervisor's job (:mod:`kyoukai_h2fast.process.supervisor`): its successor starts first, then
it drains (GOAWAY, in-flight requests finish) and exits, so no request is lost.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from ..config import MiB, ServerConfig

__all__ = ["Limits", "resident_bytes"]

log = logging.getLogger("kyoukai_h2fast.supervisor")

#: Seconds between two asks once a limit is reached.
_ASK_AGAIN = 1.0
#: The shortest pause between two looks at the request count.
_MIN_CHECK = 0.005


def resident_bytes() -> int:
    """This process's resident set size now (Linux: /proc/self/statm); elsewhere its peak
    (getrusage), which only grows: a worker past the limit is replaced all the same."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource
        import sys
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class Limits:
    """The recycling limits of one worker (see the module docstring)."""

    def __init__(self, config: ServerConfig, component: Any, ask: Callable[[], None]) -> None:
        self._component = component
        self._ask = ask
        jitter = config.max_requests_jitter
        extra = int.from_bytes(os.urandom(8), "big") % (jitter + 1) if jitter else 0
        #: Requests after which the worker asks for a replacement (0: no limit); drawn per
        #: worker (from os.urandom: forked workers share the random module's state).
        self.max_requests = config.max_requests + extra if config.max_requests else 0
        self.deadline = (time.monotonic() + config.workers_lifetime
                         if config.workers_lifetime else None)
        self.max_rss = config.workers_max_rss * MiB
        self.reason: str | None = None
        self._asked_at = 0.0
        self._served = 0
        self._seen_at = time.monotonic()

    def reached(self) -> str | None:
        """Why the worker should be replaced now, or None."""
        if self.max_requests:
            self._served = served = self._component.connections.requests_received()
            if served >= self.max_requests:
                return f"--max-requests: {served} requests (its limit: {self.max_requests})"
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return "--workers-lifetime: its lifetime is over"
        if self.max_rss:
            rss = resident_bytes()
            if rss > self.max_rss:
                return (f"--workers-max-rss: {rss / MiB:.0f} MiB resident (its limit: "
                        f"{self.max_rss // MiB} MiB)")
        return None

    def start(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        """Check every ``interval`` seconds on ``loop`` until the process ends."""
        def check() -> None:
            now = time.monotonic()
            before = self._served
            if self.reason is None:
                self.reason = self.reached()
                if self.reason is not None:
                    log.info("worker (pid %d) reached %s; asking for a replacement",
                             os.getpid(), self.reason)
            if self.reason is not None and now - self._asked_at >= _ASK_AGAIN:
                self._asked_at = now
                self._ask()
            loop.call_later(self._next_check(now, before, interval), check)
        loop.call_later(interval, check)

    def _next_check(self, now: float, before: int, interval: float) -> float:
        """Seconds to the next look: ``interval``, or sooner when the request limit is near
        at the rate of requests since the last look."""
        elapsed, self._seen_at = now - self._seen_at, now
        if self.reason is not None or not self.max_requests or self._served <= before:
            return interval
        rate = (self._served - before) / max(elapsed, 1e-6)
        return min(interval, max(_MIN_CHECK, (self.max_requests - self._served) / rate))
