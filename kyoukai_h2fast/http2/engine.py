"""The connection engine this process uses: the compiled core or its pure twin on ``h2``.

Both implement :class:`kyoukai_h2fast.contracts.Engine` (read its docstring for the theory of
operation); the choice is made once, in :mod:`kyoukai_h2fast._switch`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _switch

__all__ = ["Engine"]

_impl = _switch.select("engine")

# Type checkers see the compiled module's stub (``_engine_c.pyi``); the pure twin has the same
# names and signatures (tests/quality/test_stubs.py).
if TYPE_CHECKING:
    from .._engine_c import Engine
else:
    Engine = _impl.Engine
