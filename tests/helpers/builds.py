"""Which builds a test runs against: the pure twins and the compiled modules, as pytest params.

In-memory tests take a hot path's two implementations (:func:`implementations`); tests of the
real server take ``compiled`` and ``pure`` server processes (:func:`server_impls`, the ``impl``
fixture of ``tests/conftest.py``).
"""
from __future__ import annotations

import pytest

from kyoukai_h2fast import _switch

__all__ = ["implementations", "server_impls", "default_impl"]


class _MissingCompiled:
    """Stands in for a compiled module that was not built: any use fails the test."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str):
        module = _switch.HOT_PATHS[self._name][0]
        pytest.fail(f"{module} is not built (pip install -e . compiles it)")


def implementations(name: str) -> list:
    """pytest params for the pure twin and the compiled module of hot path ``name``.

    Ids are ``pure`` and ``compiled``. A compiled module that is missing fails its tests
    loudly, unless the user asked for a pure build (``KYOUKAI_H2FAST_NO_EXTENSIONS=1``) and
    nothing was compiled, in which case only the pure param exists.
    """
    params = [pytest.param(_switch.pure(name), id="pure")]
    module = _switch.compiled(name)
    if module is not None:
        params.append(pytest.param(module, id="compiled"))
    elif not _switch.NO_EXTENSIONS:
        params.append(pytest.param(_MissingCompiled(name), id="compiled"))
    return params


def server_impls() -> list:
    """``compiled`` and ``pure`` server params (same rule as :func:`implementations`)."""
    params = [pytest.param("compiled", id="compiled"), pytest.param("pure", id="pure")]
    if _switch.NO_EXTENSIONS and _switch.compiled("frames") is None:
        params = params[1:]
    return params


def default_impl() -> str:
    """The implementation tests use when they do not parametrize it: what the process uses
    (pure with ``KYOUKAI_H2FAST_NO_EXTENSIONS=1``, else compiled)."""
    return "pure" if _switch.NO_EXTENSIONS else "compiled"
