"""The one place that chooses between the compiled modules and their pure-Python twins.

``KYOUKAI_H2FAST_NO_EXTENSIONS=1`` (read once, here) selects the twins. Otherwise each public
selector module (``frames``, ``hpack``, ``headers``, ``environ``) takes the compiled module
``kyoukai_h2fast._<name>_c`` and falls back to ``kyoukai_h2fast._<name>_py`` only when the
compiled one was not built. Both stay importable by name through :func:`compiled` and
:func:`pure`, which is what the differential tests use.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["NO_EXTENSIONS", "MODULES", "select", "compiled", "pure", "extensions_state"]

#: True when the user asked for the pure-Python twins.
NO_EXTENSIONS: bool = os.environ.get("KYOUKAI_H2FAST_NO_EXTENSIONS", "") not in ("", "0")

#: Every hot path that has a compiled module and a pure twin.
MODULES = ("frames", "hpack", "headers", "environ")

_selected: dict[str, bool] = {}


def compiled(name: str) -> ModuleType | None:
    """The compiled module for ``name``, or None when it was not built."""
    try:
        return importlib.import_module(f"kyoukai_h2fast._{name}_c")
    except ImportError:
        return None


def pure(name: str) -> ModuleType:
    """The pure-Python twin for ``name`` (always available)."""
    return importlib.import_module(f"kyoukai_h2fast._{name}_py")


def select(name: str) -> ModuleType:
    """The implementation this process uses for ``name``; records the choice."""
    module = None if NO_EXTENSIONS else compiled(name)
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
