"""Shared test fixtures: implementation parametrization (compiled and pure twins)."""
from __future__ import annotations

import pytest

from kyoukai_h2fast import _switch


class _MissingCompiled:
    """Stands in for a compiled module that was not built: any use fails the test."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str):
        pytest.fail(f"kyoukai_h2fast._{self._name}_c is not built (pip install -e . compiles it)")


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
