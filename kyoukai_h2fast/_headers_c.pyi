"""Types of the compiled header validation (``src/kyoukai_h2fast/_headers_c.pyx``).

The pure twin :mod:`kyoukai_h2fast.codec._headers_py` has the same names and signatures
(``tests/quality/test_stubs.py`` compares all three); :mod:`kyoukai_h2fast.codec.headers` selects
one.
"""
from collections.abc import Iterable

__all__ = ["validate_request_headers", "validate_trailers", "response_headers",
           "http_date", "CONNECTION_SPECIFIC_FIELDS", "SERVER_FIELD", "MAX_HTTP_DATE"]

CONNECTION_SPECIFIC_FIELDS: frozenset[bytes]
SERVER_FIELD: tuple[bytes, bytes]
MAX_HTTP_DATE: int

def validate_request_headers(headers: Iterable[tuple[bytes, bytes]]) -> int: ...
def validate_trailers(headers: Iterable[tuple[bytes, bytes]]) -> None: ...
def response_headers(
    status: str, headers: Iterable[tuple[str | bytes, str | bytes]]
) -> list[tuple[bytes, bytes]]: ...
def http_date(seconds: int) -> bytes: ...
