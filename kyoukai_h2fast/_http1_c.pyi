"""Types of the compiled HTTP/1.1 hot path (``src/kyoukai_h2fast/_http1_c.pyx``).

The pure twin :mod:`kyoukai_h2fast.http1._http1_py` has the same names and signatures
(``tests/quality/test_stubs.py`` compares all three); :mod:`kyoukai_h2fast.http1.wire` selects
one.
"""
from typing import Any

__all__ = ["parse_head", "response_head", "Framing"]

def parse_head(data: bytes, limit: int) -> tuple[list[tuple[bytes, bytes]], str, str, bool,
                                                 bool] | None: ...

class Framing:
    status: int
    length: int | None
    chunked: bool
    no_body: bool
    keep_alive: bool
    def __init__(self, status: int, length: int | None, chunked: bool, no_body: bool,
                 keep_alive: bool) -> None: ...

def response_head(status: str, app_headers: list[Any], *, http10: bool, is_head: bool,
                  keep_alive: bool, body_size: int | None) -> tuple[bytes, Framing]: ...
