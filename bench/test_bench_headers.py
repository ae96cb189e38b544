"""Benchmarks: request header validation and response field lists, compiled vs pure vs h2.

Run: ``python -m pytest bench/test_bench_headers.py --benchmark-only``. Each group times one
workload three ways: ``compiled`` (kyoukai_h2fast._headers_c), ``pure`` (the twin), and ``h2``
(``h2.utilities.validate_headers`` + ``normalize_inbound_headers``, what h2 does per block
when its own inbound validation is on).

Workloads (also used by bench/test_bench_environ.py):

* ``h2load-get``: what ``h2load https://localhost:8443/`` sends.
* ``browser-get``: a browser navigation (Chrome-like, 21 fields, cookie split into crumbs as
  RFC 9113 §8.2.3 allows and browsers do).
* ``api-post``: a JSON API call with a bearer token.
"""
from __future__ import annotations

import pytest
from h2.utilities import (
    HeaderValidationFlags,
    normalize_inbound_headers,
    normalize_outbound_headers,
    utf8_encode_headers,
    validate_headers,
    validate_outbound_headers,
)
from hpack.struct import HeaderTuple, NeverIndexedHeaderTuple

from kyoukai_h2fast import _switch

H2LOAD_GET = [
    (b":method", b"GET"), (b":path", b"/"), (b":scheme", b"https"),
    (b":authority", b"localhost:8443"), (b"user-agent", b"h2load nghttp2/1.59.0"),
]

BROWSER_GET = [
    (b":method", b"GET"), (b":authority", b"www.example.com"), (b":scheme", b"https"),
    (b":path", b"/articles/2024/http2-in-python?utm_source=news&page=2"),
    (b"sec-ch-ua", b'"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"'),
    (b"sec-ch-ua-mobile", b"?0"), (b"sec-ch-ua-platform", b'"Linux"'),
    (b"upgrade-insecure-requests", b"1"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                    b"Chrome/124.0.0.0 Safari/537.36"),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                b"image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"),
    (b"sec-fetch-site", b"same-origin"), (b"sec-fetch-mode", b"navigate"),
    (b"sec-fetch-user", b"?1"), (b"sec-fetch-dest", b"document"),
    (b"referer", b"https://www.example.com/articles/"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
    (b"accept-language", b"en-GB,en-US;q=0.9,en;q=0.8"),
    (b"cookie", b"sessionid=8f2b1c9d4e7a6b5c3d2e1f0a9b8c7d6e"),
    (b"cookie", b"csrftoken=Zk3nQ8vR2pL6yT1wX4mB7cF0hJ5sD9gA"),
    (b"cookie", b"theme=dark"), (b"priority", b"u=0, i"),
]

API_POST = [
    (b":method", b"POST"), (b":authority", b"api.example.com"), (b":scheme", b"https"),
    (b":path", b"/v2/orders?dry_run=false"),
    (b"content-type", b"application/json"), (b"content-length", b"348"),
    (b"authorization", b"Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkw"
                       b"IiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpM"),
    (b"accept", b"application/json"), (b"user-agent", b"python-httpx/0.27.0"),
    (b"x-request-id", b"6f1c2b9e-3a4d-4e5f-8a7b-1c2d3e4f5a6b"),
    (b"accept-encoding", b"gzip, deflate"),
]


def as_decoded(block: list) -> list:
    """The block as HPACK's decoder returns it: HeaderTuple instances."""
    return [NeverIndexedHeaderTuple(n, v) if n == b"authorization" else HeaderTuple(n, v)
            for n, v in block]


WORKLOADS = {
    "h2load-get": as_decoded(H2LOAD_GET),
    "browser-get": as_decoded(BROWSER_GET),
    "api-post": as_decoded(API_POST),
}


REQUEST_FLAGS = HeaderValidationFlags(
    is_client=False, is_trailer=False, is_response_header=False, is_push_promise=False)
RESPONSE_FLAGS = HeaderValidationFlags(
    is_client=False, is_trailer=False, is_response_header=True, is_push_promise=False)
RESPONSE = ("200 OK", [
    ("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "5120"),
    ("Cache-Control", "private, max-age=0"), ("Set-Cookie", "sessionid=abc; HttpOnly; Secure"),
    ("Vary", "Accept-Encoding"), ("X-Frame-Options", "DENY"), ("Connection", "close"),
])


def _h2_validate(block):
    return list(normalize_inbound_headers(validate_headers(block, REQUEST_FLAGS), REQUEST_FLAGS))


def _implementations():
    compiled = _switch.compiled("headers")
    if compiled is None:
        pytest.fail("kyoukai_h2fast._headers_c is not built")
    return {"compiled": compiled.validate_request_headers,
            "pure": _switch.pure("headers").validate_request_headers,
            "h2": _h2_validate}


@pytest.mark.parametrize("impl", ["compiled", "pure", "h2"])
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_validate_request_headers(benchmark, workload, impl):
    benchmark.group = f"validate {workload}"
    block = WORKLOADS[workload]
    validate = _implementations()[impl]
    validate(block)  # valid for every implementation
    benchmark(validate, block)


def _h2_response_headers(status, headers):
    # What h2 does to a str header list in send_headers with its outbound options on.
    fields = utf8_encode_headers([(":status", status[:3])] + headers)
    return list(validate_outbound_headers(
        normalize_outbound_headers(fields, RESPONSE_FLAGS), RESPONSE_FLAGS))


@pytest.mark.parametrize("impl", ["compiled", "pure", "h2"])
def test_response_headers(benchmark, impl):
    benchmark.group = "response_headers 7 fields"
    if impl == "h2":
        convert = _h2_response_headers
    else:
        module = _switch.compiled("headers") if impl == "compiled" else _switch.pure("headers")
        if module is None:
            pytest.fail("kyoukai_h2fast._headers_c is not built")
        convert = module.response_headers
    status, headers = RESPONSE
    # :status + 6 fields (connection dropped); ours also append date and server (RFC 9110).
    assert len(convert(status, headers)) == (7 if impl == "h2" else 9)
    benchmark(convert, status, headers)
