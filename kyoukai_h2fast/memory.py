"""Giving memory back to the operating system after a burst.

CPython frees large objects (request bodies, response chunks, socket reads) with the C
allocator, and glibc keeps freed heap memory mapped when the top of its heap is pinned by a
live allocation: after a burst (a flood, many large responses at once) the process keeps its
peak size although the memory is free. ``malloc_trim(0)`` hands the free pages back.

:func:`release_soon` asks for a trim: it runs about a second later (so a burst is over), in a
worker thread (ctypes releases the GIL: the event loop is not blocked), at most once every
:data:`MIN_INTERVAL` seconds. Connections call it when they close. Where the C library has no
``malloc_trim`` (not glibc), nothing happens.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

__all__ = ["release_soon", "MIN_INTERVAL"]

#: Seconds between two trims, at least; and the delay before one.
MIN_INTERVAL = 2.0
DELAY = 1.0


def _find_trim() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_trim = _find_trim()
_lock = threading.Lock()
_pending = False
_last = 0.0


def release_soon(loop: asyncio.AbstractEventLoop) -> None:
    """Schedule a trim on ``loop`` (coalesced; see the module docstring)."""
    global _pending
    if _trim is None:
        return
    with _lock:
        if _pending:
            return
        _pending = True
    delay = max(DELAY, _last + MIN_INTERVAL - time.monotonic())
    try:
        loop.call_later(delay, _start)
    except RuntimeError:        # the loop is closing
        with _lock:
            _pending = False


def _start() -> None:
    threading.Thread(target=_run, name="kyoukai-h2fast-trim", daemon=True).start()


def _run() -> None:
    global _pending, _last
    try:
        _trim(0)
    finally:
        with _lock:
            _pending = False
            _last = time.monotonic()
