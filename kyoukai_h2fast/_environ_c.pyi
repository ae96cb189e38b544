"""Types of the compiled environ builder (``src/kyoukai_h2fast/_environ_c.pyx``).

The pure twin :mod:`kyoukai_h2fast.wsgi._environ_py` has the same signature
(``tests/quality/test_stubs.py`` compares all three); :mod:`kyoukai_h2fast.wsgi.environ` selects
one.
"""
from collections.abc import Iterable
from typing import Any

__all__ = ["build_environ"]

def build_environ(base: dict[str, Any], headers: Iterable[tuple[bytes, bytes]],
                  wsgi_input: Any) -> dict[str, Any]: ...
