"""An app's response iterable, as both protocols and the runners handle it (PEP 3333).

Written once for HTTP/2 and HTTP/1.1: :func:`body_chunks` checks the chunks an app gives
(bytestrings only; empty ones dropped), :func:`close_iterable` calls the iterable's ``close()``
where the iterable runs (in a worker thread through the runner, else here), and
:func:`safe_close` calls it so that a failing ``close()`` is logged, never raised into the
server. Which chunks are sent when, and how, is each protocol's.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..contracts import Runner

__all__ = ["body_chunks", "close_iterable", "safe_close"]

log = logging.getLogger("kyoukai_h2fast")


def body_chunks(chunks: Iterable[bytes]) -> list:
    """The non-empty chunks of ``chunks``; PEP 3333 bodies are bytestrings only (TypeError
    otherwise)."""
    out = []
    for chunk in chunks:
        if chunk:
            if type(chunk) is not bytes and not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise TypeError(f"response body chunks must be bytes, got {type(chunk).__name__}")
            out.append(chunk)
    return out


def safe_close(close: Callable[[], object] | None) -> None:
    """Call an app iterable's ``close`` (if any); a failure is logged."""
    if close is not None:
        try:
            close()
        except Exception:
            log.exception("app iterable close() failed")


def close_iterable(runner: Runner, close: Callable[[], object] | None, in_thread: bool) -> None:
    """Call an app iterable's ``close()`` (PEP 3333: always), in its thread if it runs in one
    (``runner.close_in_thread``)."""
    if close is None:
        return
    if in_thread:
        runner.close_in_thread(close)
        return
    safe_close(close)
