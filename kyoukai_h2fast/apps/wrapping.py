"""What a runner placed in front of the app's runner shares (``--static``, ``--root-path``).

:class:`WrappingRunner` keeps the :class:`~kyoukai_h2fast.contracts.Runner` contract by handing
everything but :meth:`dispatch` to the runner it wraps (the calls the protocols make per read
are bound once, not looked up per request); :func:`path_under` is the whole-segment prefix
match both wrappers use on the decoded ``PATH_INFO``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..contracts import Responder, Runner
    from ..wsgi.request_state import H2State

__all__ = ["WrappingRunner", "path_under"]


def path_under(path: str, prefix: str) -> bool:
    """``path`` is ``prefix`` or starts with ``prefix`` and ``/``: whole segments only
    (``/api/x`` is under ``/api``, ``/apiv2`` is not)."""
    size = len(prefix)
    return path.startswith(prefix) and (len(path) == size or path[size] == "/")


class WrappingRunner:
    """A runner in front of ``inner``: subclasses define :meth:`dispatch`."""

    def __init__(self, inner: Runner) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.multithread = inner.multithread
        self.dispatch_early = inner.dispatch_early
        self.errors = inner.errors
        # The inner runner's (bound once: the protocols call hand_over per read).
        self.start = inner.start
        self.shutdown = inner.shutdown
        self.hand_over = inner.hand_over
        self.forget = inner.forget
        self.drain = inner.drain
        self.stream = inner.stream

    def __getattr__(self, name: str) -> Any:  # the inner runner's own (executor, mounts...)
        return getattr(self.inner, name)

    def pull_in_thread(self, responder: Responder, state: H2State) -> None:
        self.inner.pull_in_thread(responder, state)

    def close_in_thread(self, close: Callable[[], object] | None) -> None:
        self.inner.close_in_thread(close)
