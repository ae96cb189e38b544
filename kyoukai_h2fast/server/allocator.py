"""The C allocator of a serving process: large buffers reused, memory given back after a burst.

CPython frees large objects (request bodies, response chunks, socket reads) with the C
allocator, and glibc keeps freed heap memory mapped when the top of its heap is pinned by a
live allocation: after a burst (a flood, many large responses at once) the process keeps its
peak size although the memory is free. ``malloc_trim(0)`` hands the free pages back.

:func:`release_soon` asks for a trim: it runs about a second later (so a burst is over), in a
worker thread (ctypes releases the GIL: the event loop is not blocked), at most once every
:data:`MIN_INTERVAL` seconds. Connections call it when they close. Where the C library has no
``malloc_trim`` (not glibc), nothing happens.

:func:`tune_allocator` (called once by the serving process, not when the server is embedded)
fixes glibc's thresholds. By default glibc serves allocations above a moving threshold with
``mmap`` and hands the top of its heap back to the kernel as soon as it is free; request
bodies, joined uploads and output buffers are exactly such sizes (256 KiB to 2 MiB) and live
for one request, so every request faulted its pages in again: a 1 MiB upload echo took about
730 page faults and 40% of the server's CPU (``bench/glue_profile.py --upload``, ``perf stat
-e page-faults``). With the heap used below :data:`MMAP_THRESHOLD` and up to
:data:`TRIM_THRESHOLD` of free heap kept, those buffers are reused; what a burst leaves is
still handed back by :func:`release_soon`. Worker threads share the one heap (glibc would give
each its own arena, whose top ``malloc_trim`` does not hand back: +6 MiB per thread after a
flood). A ``GLIBC_TUNABLES`` or ``MALLOC_*`` setting of the
user's wins: then nothing is changed.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

__all__ = ["release_soon", "tune_allocator", "MIN_INTERVAL", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

#: Seconds between two trims, at least; and the delay before one.
MIN_INTERVAL = 2.0
DELAY = 1.0


#: Allocations below this come from the heap (reused), above it from mmap (bytes).
MMAP_THRESHOLD = 2 * 1024 * 1024
#: Free memory at the top of the heap kept for reuse, at most (bytes).
TRIM_THRESHOLD = 8 * 1024 * 1024
# mallopt() parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def _glibc(name: str, argtypes: list) -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        fn = getattr(libc, name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = argtypes
    fn.restype = ctypes.c_int
    return fn


_trim = _glibc("malloc_trim", [ctypes.c_size_t])
_mallopt = _glibc("mallopt", [ctypes.c_int, ctypes.c_int])


def tune_allocator() -> bool:
    """Fix glibc's mmap and trim thresholds for serving (see the module docstring); False
    where there is no glibc or the user configured malloc through the environment."""
    if _mallopt is None or _trim is None:
        return False
    if "malloc" in os.environ.get("GLIBC_TUNABLES", "") or any(
            name.startswith("MALLOC_") for name in os.environ):
        return False
    # One arena: worker threads take turns on the GIL anyway, and malloc_trim() only hands
    # back the top of the main arena's heap (a thread arena would keep TRIM_THRESHOLD each).
    return bool(_mallopt(_M_ARENA_MAX, 1)
                and _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and _mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
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
