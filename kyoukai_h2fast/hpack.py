"""Public HPACK coder (RFC 7541) at its documented path: ``Decoder`` and ``Encoder``.

The selector lives in :mod:`kyoukai_h2fast.codec.hpack`.
"""
from .codec.hpack import Decoder, Encoder

__all__ = ["Decoder", "Encoder"]
