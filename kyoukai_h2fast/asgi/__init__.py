"""ASGI 3 apps (spec 2.4): the ``http`` and ``lifespan`` scopes, with the ``http.response.trailers``
and ``http.response.pathsend`` extensions.

:mod:`.scope` builds a request's scope, :mod:`.http` is its receive/send cycle, :mod:`.lifespan`
the app's startup and shutdown, :mod:`.runner` the :class:`~kyoukai_h2fast.contracts.Runner` that
ties them to the connections (:func:`is_asgi_app` tells ASGI apps from the other kinds).
"""
from __future__ import annotations

import functools
import inspect
from typing import Any

__all__ = ["is_asgi_app"]


def is_asgi_app(app: Any) -> bool:
    """True for an ASGI 3 app: an ``async def app(scope, receive, send)``, or an object whose
    ``__call__`` is one (three positional parameters; a Kyoukai-style app is told apart by its
    ``process_request`` before this is asked)."""
    if inspect.isclass(app):
        return False
    target = app
    while isinstance(target, functools.partial):
        target = target.func
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        if not callable(app):
            return False
        target = app.__call__
    if not inspect.iscoroutinefunction(target):
        return False
    try:
        params = list(inspect.signature(app).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return len(positional) <= 3
    required = [p for p in positional if p.default is p.empty]
    return len(required) <= 3 <= len(positional)
