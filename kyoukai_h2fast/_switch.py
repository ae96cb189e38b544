"""The one place that chooses between the compiled modules and their pure-Python twins.

:data:`HOT_PATHS` is the table: each hot path's compiled module (``kyoukai_h2fast._<name>_c``,
built from ``src/kyoukai_h2fast/_<name>_c.pyx``; ``kyoukai_h2fast.websocket._frames_c`` from
``src/kyoukai_h2fast/websocket/_frames_c.pyx``) and its pure twin, by full module path.
``KYOUKAI_H2FAST_NO_EXTENSIONS=1`` (read once, here) selects the twins. Otherwise each selector
module (:mod:`kyoukai_h2fast.codec.frames`, :mod:`~kyoukai_h2fast.codec.hpack`,
:mod:`~kyoukai_h2fast.codec.headers`, :mod:`kyoukai_h2fast.wsgi.environ`,
:mod:`kyoukai_h2fast.websocket.frames`, :mod:`kyoukai_h2fast.http2.engine`,
:mod:`kyoukai_h2fast.http1.wire`) calls
:func:`select`, which takes the compiled module and falls back to the twin only when the
compiled one was not built. Both stay importable by name
through :func:`compiled` and :func:`pure`, which is what the differential tests use.

The connection engine is chosen the same way (``engine``: the compiled core or its twin on
``h2``), and ``KYOUKAI_H2FAST_ENGINE=h2`` (also read once, here) selects the ``h2`` engine alone
while the other hot paths stay compiled: the before/after comparison of the benchmarks and a
test run "on the h2 engine".

This module imports none of its clients: :func:`extensions_state` and :func:`engine_state`
make the same choice a selector makes (:func:`select`), where no selector made it yet.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["NO_EXTENSIONS", "H2_ENGINE", "HOT_PATHS", "MODULES", "select", "compiled", "pure",
           "extensions_state", "missing_extensions", "engine_state"]

#: True when the user asked for the pure-Python twins.
NO_EXTENSIONS: bool = os.environ.get("KYOUKAI_H2FAST_NO_EXTENSIONS", "") not in ("", "0")

#: True when the user asked for the ``h2``-based engine (the other modules stay compiled).
H2_ENGINE: bool = os.environ.get("KYOUKAI_H2FAST_ENGINE", "") == "h2"

#: Every hot path: (its compiled module, its pure-Python twin).
HOT_PATHS: dict[str, tuple[str, str]] = {
    "frames": ("kyoukai_h2fast._frames_c", "kyoukai_h2fast.codec._frames_py"),
    "hpack": ("kyoukai_h2fast._hpack_c", "kyoukai_h2fast.codec._hpack_py"),
    "headers": ("kyoukai_h2fast._headers_c", "kyoukai_h2fast.codec._headers_py"),
    "environ": ("kyoukai_h2fast._environ_c", "kyoukai_h2fast.wsgi._environ_py"),
    "engine": ("kyoukai_h2fast._engine_c", "kyoukai_h2fast.http2.h2engine.engine"),
    "websocket": ("kyoukai_h2fast.websocket._frames_c", "kyoukai_h2fast.websocket._frames_py"),
    "http1": ("kyoukai_h2fast._http1_c", "kyoukai_h2fast.http1._http1_py"),
}

#: The hot paths that ``extensions: compiled`` speaks for (the engine has a line of its own).
MODULES = ("frames", "hpack", "headers", "environ", "websocket", "http1")

_selected: dict[str, bool] = {}


def compiled(name: str) -> ModuleType | None:
    """The compiled module for ``name``, or None when it was not built."""
    try:
        return importlib.import_module(HOT_PATHS[name][0])
    except ImportError:
        return None


def pure(name: str) -> ModuleType:
    """The pure-Python twin for ``name`` (always available)."""
    return importlib.import_module(HOT_PATHS[name][1])


def select(name: str) -> ModuleType:
    """The implementation this process uses for ``name``; records the choice."""
    forced_pure = NO_EXTENSIONS or (name == "engine" and H2_ENGINE)
    module = None if forced_pure else compiled(name)
    _selected[name] = module is not None
    return module if module is not None else pure(name)


def _runs_compiled(name: str) -> bool:
    """Whether ``name`` runs compiled code in this process (choosing it now if no selector
    did yet: the same choice)."""
    if name not in _selected:
        select(name)
    return _selected[name]


def extensions_state() -> str:
    """``"compiled"`` when every hot path runs compiled code, else ``"pure"``."""
    return "compiled" if all(_runs_compiled(n) for n in MODULES) else "pure"


def missing_extensions() -> list[str]:
    """Hot paths that fell back to pure Python although extensions were wanted."""
    if NO_EXTENSIONS:
        return []
    return [n for n in MODULES if not _runs_compiled(n)]


def engine_state() -> str:
    """``"compiled"`` when the compiled connection engine runs, ``"h2"`` for the twin."""
    return "compiled" if _runs_compiled("engine") else "h2"
