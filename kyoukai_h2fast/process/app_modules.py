"""The app's own modules, and importing them afresh for a graceful reload (SIGHUP).

Python reads a module's file once: a later ``import`` finds the module in ``sys.modules``. To
serve new code without a new process, :meth:`AppModules.fresh` takes the app's own modules out
of ``sys.modules`` and imports the app again, which reads their files anew.

The app's own modules are those imported since :class:`AppModules` was made (just before the
first import of the app) whose file is outside the standard library and the directories of
installed packages (``site-packages``, ``dist-packages``, the user site), kyoukai_h2fast's
modules excepted. Libraries stay as they are: importing them again would make second copies
of their classes while objects of the first ones live on. Modules without a file (built-in,
namespace packages) stay too; their submodules are imported afresh.

If the new import fails, the modules taken out are put back (and the failed import's own
leftovers dropped), so the old app, still serving, and its late imports find them as before.
What the old app holds stays alive as long as the old app does.
"""
from __future__ import annotations

import importlib
import os
import site
import sys
import sysconfig
from collections.abc import Callable
from types import ModuleType
from typing import TypeVar

__all__ = ["AppModules", "library_dirs"]

T = TypeVar("T")

_OWN_PACKAGE = __name__.partition(".")[0]


def library_dirs() -> tuple[str, ...]:
    """Directories whose modules are libraries, not the app's (resolved, with a separator at
    the end so that a prefix test matches whole path components)."""
    paths = sysconfig.get_paths()
    dirs = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    dirs.update(getattr(site, "getsitepackages", list)())
    user_site = getattr(site, "getusersitepackages", lambda: None)()
    if user_site:
        dirs.add(user_site)
    dirs.update(entry for entry in sys.path
                if os.path.basename(entry.rstrip(os.sep)) in ("site-packages", "dist-packages"))
    return tuple(sorted({os.path.join(os.path.realpath(d), "") for d in dirs if d}))


class AppModules:
    """Remembers which modules predate the app; :meth:`fresh` imports the app anew."""

    def __init__(self) -> None:
        self._before = frozenset(sys.modules)
        self._libraries = library_dirs()

    def is_app_module(self, name: str, module: ModuleType | None) -> bool:
        """Whether ``module`` (``sys.modules[name]``) is one of the app's own modules."""
        if name in self._before or module is None:
            return False
        if name == _OWN_PACKAGE or name.startswith(_OWN_PACKAGE + "."):
            return False
        path = getattr(module, "__file__", None)
        if not isinstance(path, str):
            return False
        return not os.path.realpath(path).startswith(self._libraries)

    def app_modules(self) -> dict[str, ModuleType]:
        return {name: module for name, module in list(sys.modules.items())
                if self.is_app_module(name, module)}

    def fresh(self, load: Callable[[], T]) -> T:
        """``load()`` (the app's import) with the app's own modules read anew; if it raises,
        ``sys.modules`` is as it was before, and the exception propagates."""
        taken = self.app_modules()
        for name in taken:
            del sys.modules[name]
        importlib.invalidate_caches()
        try:
            return load()
        except BaseException:
            for name in self.app_modules():
                del sys.modules[name]
            sys.modules.update(taken)
            raise
