"""Pure-Python twin of :mod:`kyoukai_h2fast._hpack_c` (same public names, same results).

Owns nothing of the HPACK format itself: the decoder *is* ``hpack.Decoder`` (the reference),
and the encoder is ``hpack.Encoder`` with the policy of the compiled encoder layered on top, so
that both produce the same octets:

* sensitive fields are always sent as never-indexed literals (hpack sends a field that is in the
  table as an index, even when marked sensitive), and ``authorization``,
  ``proxy-authorization`` and ``cookie`` values under 20 octets are sensitive automatically
  (h2's ``_secure_headers`` rule, RFC 7541 §7.1.3);
* a string is Huffman-coded only when that makes it shorter (hpack always codes it);
* a changed ``header_table_size`` is announced at the start of the next block as the smallest
  size since the last block (when below the final one) and the final size (hpack announces
  every change, and forgets a pending change when the same size is set twice).

Both classes add ``table_entries`` and ``table_used_size`` (dynamic table introspection).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import hpack
from hpack.hpack import INDEX_INCREMENTAL, INDEX_NEVER, encode_integer

if TYPE_CHECKING:
    from hpack.table import HeaderTable

__all__ = ["Decoder", "Encoder"]

_ALWAYS_SENSITIVE = frozenset([b"authorization", b"proxy-authorization"])


def _encode_int(value: int, prefix_bits: int, flags: int) -> bytes:
    encoded = encode_integer(value, prefix_bits)
    encoded[0] |= flags
    return bytes(encoded)


class _TableView:
    """Dynamic table introspection, as the compiled coders have it."""

    header_table: HeaderTable      # hpack's, set by hpack.Decoder/Encoder.__init__

    @property
    def table_entries(self) -> list[tuple[bytes, bytes]]:
        """The dynamic table as ``(name, value)`` pairs, newest (index 62) first."""
        return list(self.header_table.dynamic_entries)

    @property
    def table_used_size(self) -> int:
        """Sum of the dynamic table's entry sizes (RFC 7541 §4.1)."""
        return self.header_table._current_size


class Decoder(_TableView, hpack.Decoder):
    """``hpack.Decoder`` with dynamic table introspection."""


class Encoder(_TableView, hpack.Encoder):
    """``hpack.Encoder`` with the compiled encoder's policy (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._pending_sizes: tuple[int, int] | None = None   # (smallest, last) since last block

    @property
    def header_table_size(self) -> int:
        return self.header_table.maxsize

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        value = int(value)
        if value < 0:
            raise ValueError(f"header table size must not be negative, got {value}")
        if self._pending_sizes is not None:
            self._pending_sizes = (min(self._pending_sizes[0], value), value)
        elif value != self.header_table.maxsize:
            self._pending_sizes = (value, value)
        self.header_table.maxsize = value
        self.header_table.resized = self._pending_sizes is not None   # encode() looks at this

    def _encode_table_size_change(self) -> bytes:
        smallest, last = self._pending_sizes or (0, 0)
        self._pending_sizes = None
        sizes = (smallest, last) if smallest < last else (last,)
        return b"".join(_encode_int(size, 5, 0x20) for size in sizes)

    def add(self, to_add: tuple[bytes, bytes], sensitive: bool, huffman: bool = False) -> bytes:
        name, value = to_add
        if not sensitive:
            sensitive = name in _ALWAYS_SENSITIVE or (name == b"cookie" and len(value) < 20)
        if not sensitive:
            return super().add(to_add, False, huffman)
        match = self.header_table.search(name, value)
        if match is None:
            return self._encode_literal(name, value, INDEX_NEVER, huffman)
        return self._encode_indexed_literal(match[0], value, INDEX_NEVER, huffman)

    def _encode_literal(self, name: bytes, value: bytes, indexbit: bytes,
                        huffman: bool = False) -> bytes:
        return indexbit + self._encode_string(name, huffman) + self._encode_string(value, huffman)

    def _encode_indexed_literal(self, index: int, value: bytes, indexbit: bytes,
                                huffman: bool = False) -> bytes:
        prefix_bits = 6 if indexbit == INDEX_INCREMENTAL else 4
        return _encode_int(index, prefix_bits, indexbit[0]) + self._encode_string(value, huffman)

    def _encode_string(self, data: bytes, huffman: bool) -> bytes:
        """String literal (RFC 7541 §5.2), Huffman-coded only when that is shorter."""
        if huffman and data:
            coded = self.huffman_coder.encode(data)
            if len(coded) < len(data):
                return _encode_int(len(coded), 7, 0x80) + coded
        return _encode_int(len(data), 7, 0) + data
