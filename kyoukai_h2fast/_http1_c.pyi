"""Types of the compiled HTTP/1.1 hot path (``src/kyoukai_h2fast/_http1_c.pyx``).

The pure twin :mod:`kyoukai_h2fast.http1._http1_py` has the same names and signatures
(``tests/quality/test_stubs.py`` compares all three); :mod:`kyoukai_h2fast.http1.wire` selects
one.
"""
from typing import Any

from typing_extensions import disjoint_base

__all__ = ["parse_head", "response_head", "Framing", "Exchange"]

def parse_head(data: bytes, limit: int) -> tuple[list[tuple[bytes, bytes]], str, str, bool,
                                                 bool] | None: ...

@disjoint_base
class Framing:
    status: int
    length: int | None
    chunked: bool
    no_body: bool
    keep_alive: bool
    def __init__(self, status: int, length: int | None, chunked: bool, no_body: bool,
                 keep_alive: bool) -> None: ...

@disjoint_base
class Exchange:
    state: Any
    http10: bool
    keep_alive: bool
    expect_continue: bool
    access: Any
    body_done: bool
    framing: Any
    sent: int
    reject: int
    detail: str
    target: str
    method: str
    def __init__(self, state: Any, http10: bool, keep_alive: bool, access: Any) -> None: ...

def response_head(status: str, app_headers: list[Any], *, http10: bool, is_head: bool,
                  keep_alive: bool, body_size: int | None) -> tuple[bytes, Framing]: ...
