"""The one place that chooses between the compiled modules and their pure-Python twins.

``KYOUKAI_H2FAST_NO_EXTENSIONS=1`` (read once, here) selects the twins. Otherwise each public
selector module (``frames``, ``hpack``, ``headers``, ``environ``, ``websocket.frames``) takes
the compiled module ``kyoukai_h2fast._<name>_c`` (or the one :data:`PATHS` names) and falls
back to the twin ``kyoukai_h2fast._<name>_py`` only when the compiled one was not built. Both
stay importable by name through :func:`compiled` and :func:`pure`, which is what the
differential tests use.

The connection engine is chosen the same way (``engine``: the compiled core
``kyoukai_h2fast._engine_c`` or its twin on ``h2``, ``kyoukai_h2fast._engine_py``), and
``KYOUKAI_H2FAST_ENGINE=h2`` (also read once, here) selects the ``h2`` engine alone while the
other hot paths stay compiled: the before/after comparison of the benchmarks and a test run
"on the h2 engine".
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["NO_EXTENSIONS", "H2_ENGINE", "MODULES", "PATHS", "select", "compiled", "pure",
           "extensions_state", "engine_state"]

#: True when the user asked for the pure-Python twins.
NO_EXTENSIONS: bool = os.environ.get("KYOUKAI_H2FAST_NO_EXTENSIONS", "") not in ("", "0")

#: True when the user asked for the ``h2``-based engine (the other modules stay compiled).
H2_ENGINE: bool = os.environ.get("KYOUKAI_H2FAST_ENGINE", "") == "h2"

#: Every hot path that has a compiled module and a pure twin.
MODULES = ("frames", "hpack", "headers", "environ", "websocket")

#: Hot paths whose modules live in a subpackage: name -> (compiled module, pure twin). The
#: others are ``kyoukai_h2fast._<name>_c`` and ``kyoukai_h2fast._<name>_py``.
PATHS = {
    "websocket": ("kyoukai_h2fast.websocket._frames_c", "kyoukai_h2fast.websocket._frames_py"),
}

_selected: dict[str, bool] = {}


def compiled(name: str) -> ModuleType | None:
    """The compiled module for ``name``, or None when it was not built."""
    try:
        return importlib.import_module(PATHS[name][0] if name in PATHS
                                       else f"kyoukai_h2fast._{name}_c")
    except ImportError:
        return None


def pure(name: str) -> ModuleType:
    """The pure-Python twin for ``name`` (always available)."""
    return importlib.import_module(PATHS[name][1] if name in PATHS
                                   else f"kyoukai_h2fast._{name}_py")


def select(name: str) -> ModuleType:
    """The implementation this process uses for ``name``; records the choice."""
    forced_pure = NO_EXTENSIONS or (name == "engine" and H2_ENGINE)
    module = None if forced_pure else compiled(name)
    _selected[name] = module is not None
    return module if module is not None else pure(name)


def extensions_state() -> str:
    """``"compiled"`` when every hot path runs compiled code, else ``"pure"``."""
    for name in MODULES:
        importlib.import_module(f"kyoukai_h2fast.{name}")
    return "compiled" if all(_selected.get(n) for n in MODULES) else "pure"


def missing_extensions() -> list[str]:
    """Hot paths that fell back to pure Python although extensions were wanted."""
    if NO_EXTENSIONS:
        return []
    extensions_state()
    return [n for n in MODULES if not _selected.get(n)]


def engine_state() -> str:
    """``"compiled"`` when the compiled connection engine runs, ``"h2"`` for the twin."""
    importlib.import_module("kyoukai_h2fast.engine")
    return "compiled" if _selected.get("engine") else "h2"
