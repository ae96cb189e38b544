"""Public HPACK coder (RFC 7541): ``Decoder`` and ``Encoder``, drop-in for ``hpack``'s in h2.

Selects the compiled :mod:`kyoukai_h2fast._hpack_c`, or its pure twin
:mod:`kyoukai_h2fast.codec._hpack_py` (see :mod:`kyoukai_h2fast._switch`). Use as h2 does::

    conn.encoder = Encoder()
    conn.decoder = Decoder()
"""
from typing import TYPE_CHECKING

from .._switch import select

_impl = select("hpack")

# Type checkers see the compiled module's stub (``_hpack_c.pyi``); the pure twin has the same
# names and signatures (tests/quality/test_stubs.py).
if TYPE_CHECKING:
    from .._hpack_c import Decoder, Encoder
else:
    Decoder = _impl.Decoder
    Encoder = _impl.Encoder

__all__ = ["Decoder", "Encoder"]
