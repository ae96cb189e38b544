"""Public HPACK coder (RFC 7541): ``Decoder`` and ``Encoder``, drop-in for ``hpack``'s in h2.

Selects the compiled :mod:`kyoukai_h2fast._hpack_c`, or its pure twin
:mod:`kyoukai_h2fast._hpack_py` (see :mod:`kyoukai_h2fast._switch`). Use as h2 does::

    conn.encoder = Encoder()
    conn.decoder = Decoder()
"""
from ._switch import select

_impl = select("hpack")

Decoder = _impl.Decoder
Encoder = _impl.Encoder

__all__ = ["Decoder", "Encoder"]
