"""HPACK microbenchmarks: compiled vs pure twin vs the reference ``hpack`` (same run, grouped).

    python -m pytest bench/test_bench_hpack.py --benchmark-only --benchmark-group-by=group

Workloads (request field blocks as clients send them):

* ``browser-get``: a Chrome navigation (pseudo-headers, sec-ch-ua*, sec-fetch-*, long
  user-agent and accept, a ~200-octet cookie), 19 fields;
* ``h2load-get``: what ``h2load`` sends, 7 fields;
* ``api-post``: a JSON POST with a bearer ``authorization`` token (never indexed), 10 fields;
* ``100-multiplexed``: 100 GETs of page assets on one connection, sharing one dynamic table.

``first``: the first block of a connection (literals, Huffman; each round uses fresh coders,
made outside the timing); ``repeat``: the same fields again on a warmed-up table (indexed);
``100-multiplexed``: 100 blocks encoded with one encoder, decoded in order by a fresh decoder.
The blocks decoded are ``hpack.Encoder``'s, so every decoder sees the same octets.

Every decode benchmark runs twice: ``raw`` (``decode(block, raw=True)``, bytes fields, what h2
asks for) and ``str`` (``decode(block)``, the default: fields decoded as UTF-8 ``str``, what
direct users of ``hpack`` get); each is compared with ``hpack`` doing the same.
"""
from __future__ import annotations

import hpack
import pytest

from kyoukai_h2fast import _switch

POOL = 50          # fresh coders per round for the single-block "first" workloads

BROWSER_GET = [
    (b":method", b"GET"), (b":authority", b"www.example.com"), (b":scheme", b"https"),
    (b":path", b"/products/index.html?ref=home"),
    (b"sec-ch-ua", b'"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"'),
    (b"sec-ch-ua-mobile", b"?0"), (b"sec-ch-ua-platform", b'"Linux"'),
    (b"upgrade-insecure-requests", b"1"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                    b"Chrome/124.0.0.0 Safari/537.36"),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
                b"image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"),
    (b"sec-fetch-site", b"same-origin"), (b"sec-fetch-mode", b"navigate"),
    (b"sec-fetch-user", b"?1"), (b"sec-fetch-dest", b"document"),
    (b"referer", b"https://www.example.com/"), (b"accept-encoding", b"gzip, deflate, br, zstd"),
    (b"accept-language", b"en-US,en;q=0.9,fr;q=0.8"),
    (b"cookie", b"_ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000000; "
                b"sessionid=8f14e45fceea167a5a36dedd4bea2543; csrftoken=Xk2fB9pQwErTyUiOpAsDfGh"
                b"JkLzXcVbN; theme=dark; lang=en-US; consent=yes; _fbp=fb.1.1700000000000.12345"),
    (b"priority", b"u=0, i"),
]
H2LOAD_GET = [
    (b":method", b"GET"), (b":path", b"/"), (b":scheme", b"https"),
    (b":authority", b"localhost:8443"), (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip, deflate"), (b"user-agent", b"h2load nghttp2/1.59.0"),
]
API_POST = [
    (b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"api.example.com"),
    (b":path", b"/v1/orders"), (b"content-type", b"application/json"),
    (b"content-length", b"348"), (b"accept", b"application/json"),
    (b"authorization", b"Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwi"
                       b"bmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf3"
                       b"6POk6yJV_adQssw5c"),
    (b"user-agent", b"python-httpx/0.27.0"),
    (b"x-request-id", b"7d9f0f7e-3c1b-4b8e-9a43-2f1c9e1d5b6a"),
]
SENSITIVE = {b"authorization", b"proxy-authorization"}


def _as_h2_sends(fields):
    """Mark fields the way h2 does before encoding (never-indexed credentials, short cookies)."""
    return [hpack.NeverIndexedHeaderTuple(n, v)
            if n in SENSITIVE or (n == b"cookie" and len(v) < 20) else (n, v) for n, v in fields]


def _multiplexed_requests() -> list[list[tuple[bytes, bytes]]]:
    kinds = [(b"script", b"*/*", b"js"), (b"style", b"text/css,*/*;q=0.1", b"css"),
             (b"image", b"image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
              b"png")]
    requests = []
    common = [f for f in BROWSER_GET if f[0] not in (b":path", b"accept", b"sec-fetch-dest",
                                                      b"sec-fetch-mode", b"sec-fetch-user",
                                                      b"upgrade-insecure-requests", b"priority")]
    for i in range(100):
        dest, accept, ext = kinds[i % 3]
        requests.append(common[:3] + [(b":path", b"/static/asset-%03d.%s" % (i, ext))]
                        + common[3:] + [(b"accept", accept), (b"sec-fetch-dest", dest),
                                        (b"sec-fetch-mode", b"no-cors"),
                                        (b"priority", b"u=%d" % (1 + i % 3))])
    return requests


WORKLOADS = {"browser-get": BROWSER_GET, "h2load-get": H2LOAD_GET, "api-post": API_POST}
MULTIPLEXED = _multiplexed_requests()


def _implementations():
    impls = [pytest.param(hpack, id="hpack"), pytest.param(_switch.pure("hpack"), id="pure")]
    compiled = _switch.compiled("hpack")
    if compiled is not None:
        impls.append(pytest.param(compiled, id="compiled"))
    return impls


@pytest.fixture(params=_implementations())
def impl(request):
    return request.param


def _encoded_first(fields) -> bytes:
    return hpack.Encoder().encode(_as_h2_sends(fields))


# ---- decode ------------------------------------------------------------------------------
OUTPUTS = [pytest.param(True, id="raw"), pytest.param(False, id="str")]


def _output(raw: bool) -> str:
    return "raw" if raw else "str"


@pytest.mark.parametrize("raw", OUTPUTS)
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_decode_first(benchmark, impl, workload, raw):
    block = _encoded_first(WORKLOADS[workload])
    expected = hpack.Decoder().decode(block, raw=raw)
    benchmark.group = f"decode {workload} first (x{POOL}), {_output(raw)}"

    def run(decoders):
        for decoder in decoders:
            decoder.decode(block, raw)

    benchmark.pedantic(run, setup=lambda: (([impl.Decoder() for _ in range(POOL)],), {}),
                       rounds=100)
    assert impl.Decoder().decode(block, raw=raw) == expected


@pytest.mark.parametrize("raw", OUTPUTS)
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_decode_repeat(benchmark, impl, workload, raw):
    encoder = hpack.Encoder()
    first = encoder.encode(_as_h2_sends(WORKLOADS[workload]))
    block = encoder.encode(_as_h2_sends(WORKLOADS[workload]))
    decoder = impl.Decoder()
    decoder.decode(first, raw)
    benchmark.group = f"decode {workload} repeat, {_output(raw)}"
    result = benchmark(decoder.decode, block, raw)      # indexed fields: the table is unchanged
    assert result == hpack.Decoder().decode(first, raw=raw)


@pytest.mark.parametrize("raw", OUTPUTS)
def test_decode_100_multiplexed(benchmark, impl, raw):
    encoder = hpack.Encoder()
    blocks = [encoder.encode(_as_h2_sends(r)) for r in MULTIPLEXED]
    benchmark.group = f"decode 100-multiplexed (one table), {_output(raw)}"

    def run(decoder):
        for block in blocks:
            decoder.decode(block, raw)

    benchmark.pedantic(run, setup=lambda: ((impl.Decoder(),), {}), rounds=60)
    decoder = impl.Decoder()
    expected = MULTIPLEXED if raw else [[(n.decode(), v.decode()) for n, v in r]
                                        for r in MULTIPLEXED]
    assert [decoder.decode(b, raw) for b in blocks] == expected


# ---- encode ------------------------------------------------------------------------------

@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_encode_first(benchmark, impl, workload):
    fields = _as_h2_sends(WORKLOADS[workload])
    benchmark.group = f"encode {workload} first (x{POOL})"

    def run(encoders):
        for encoder in encoders:
            encoder.encode(fields)

    benchmark.pedantic(run, setup=lambda: (([impl.Encoder() for _ in range(POOL)],), {}),
                       rounds=100)
    assert hpack.Decoder().decode(impl.Encoder().encode(fields), raw=True) == WORKLOADS[workload]


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_encode_repeat(benchmark, impl, workload):
    fields = _as_h2_sends(WORKLOADS[workload])
    encoder = impl.Encoder()
    encoder.encode(fields)
    benchmark.group = f"encode {workload} repeat"
    benchmark(encoder.encode, fields)


def test_encode_100_multiplexed(benchmark, impl):
    requests = [_as_h2_sends(r) for r in MULTIPLEXED]
    benchmark.group = "encode 100-multiplexed (one table)"

    def run(encoder):
        for fields in requests:
            encoder.encode(fields)

    benchmark.pedantic(run, setup=lambda: ((impl.Encoder(),), {}), rounds=60)
    encoder, decoder = impl.Encoder(), hpack.Decoder()
    assert [decoder.decode(encoder.encode(r), raw=True) for r in requests] == MULTIPLEXED
