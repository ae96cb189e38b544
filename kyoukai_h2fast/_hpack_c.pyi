"""Types of the compiled HPACK coder (``src/kyoukai_h2fast/_hpack_c.pyx``).

The pure twin :mod:`kyoukai_h2fast.codec._hpack_py` has the same names and signatures
(``tests/quality/test_stubs.py`` compares all three); :mod:`kyoukai_h2fast.codec.hpack` selects one.
"""
from collections.abc import Iterable, Mapping
from typing import Literal, overload

from hpack.struct import HeaderTuple
from typing_extensions import disjoint_base

__all__ = ["Decoder", "Encoder"]

_Data = bytes | bytearray | memoryview
_Field = tuple[bytes | str, bytes | str] | tuple[bytes | str, bytes | str, bool | None]

@disjoint_base
class Decoder:
    """HPACK decoder, drop-in for ``hpack.Decoder``."""

    def __init__(self, max_header_list_size: int = 65536) -> None: ...
    max_header_list_size: int
    max_allowed_table_size: int
    header_table_size: int
    @property
    def table_entries(self) -> list[tuple[bytes, bytes]]: ...
    @property
    def table_used_size(self) -> int: ...
    # One complete field block. Each field is a ``HeaderTuple`` (or ``NeverIndexedHeaderTuple``)
    # holding ``str`` name and value, or ``bytes`` ones with ``raw=True``.
    @overload
    def decode(self, data: _Data, raw: Literal[False] = False) -> list[tuple[str, str]]: ...
    @overload
    def decode(self, data: _Data, raw: Literal[True]) -> list[HeaderTuple]: ...
    @overload
    def decode(
        self, data: _Data, raw: bool = False
    ) -> list[tuple[str, str]] | list[HeaderTuple]: ...

@disjoint_base
class Encoder:
    """HPACK encoder, drop-in for ``hpack.Encoder``."""

    def __init__(self) -> None: ...
    header_table_size: int
    @property
    def table_entries(self) -> list[tuple[bytes, bytes]]: ...
    @property
    def table_used_size(self) -> int: ...
    def encode(self, headers: Iterable[_Field] | Mapping[bytes | str, bytes | str],
               huffman: bool = True) -> bytes: ...
