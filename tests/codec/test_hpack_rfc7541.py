"""RFC 7541 Appendix C examples, decoded and encoded by both implementations.

The hex blocks, decoded fields and dynamic table states (entries newest first, with their
§4.1 sizes) are the RFC's. The encoder reproduces the RFC's octets except where the RFC's
encoder chose a Huffman string that is not shorter than the raw one (C.6.2, ``307``): ours
sends the raw literal then, by design (Huffman only when shorter).
"""
from __future__ import annotations

import pytest
from hpack import Decoder as ReferenceDecoder
from hpack.struct import HeaderTuple, NeverIndexedHeaderTuple

from tests.helpers.builds import implementations


@pytest.fixture(params=implementations("hpack"))
def impl(request):
    return request.param


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


GET_HTTP = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
            (b":authority", b"www.example.com")]
REQUESTS = [
    GET_HTTP,
    GET_HTTP + [(b"cache-control", b"no-cache")],
    [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/index.html"),
     (b":authority", b"www.example.com"), (b"custom-key", b"custom-value")],
]
REQUEST_TABLES = [
    [(b":authority", b"www.example.com", 57)],
    [(b"cache-control", b"no-cache", 53), (b":authority", b"www.example.com", 57)],
    [(b"custom-key", b"custom-value", 54), (b"cache-control", b"no-cache", 53),
     (b":authority", b"www.example.com", 57)],
]
DATE_1 = b"Mon, 21 Oct 2013 20:13:21 GMT"
DATE_2 = b"Mon, 21 Oct 2013 20:13:22 GMT"
LOCATION = b"https://www.example.com"
COOKIE = b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
RESPONSES = [
    [(b":status", b"302"), (b"cache-control", b"private"), (b"date", DATE_1),
     (b"location", LOCATION)],
    [(b":status", b"307"), (b"cache-control", b"private"), (b"date", DATE_1),
     (b"location", LOCATION)],
    [(b":status", b"200"), (b"cache-control", b"private"), (b"date", DATE_2),
     (b"location", LOCATION), (b"content-encoding", b"gzip"), (b"set-cookie", COOKIE)],
]
RESPONSE_TABLES = [
    [(b"location", LOCATION, 63), (b"date", DATE_1, 65), (b"cache-control", b"private", 52),
     (b":status", b"302", 42)],
    [(b":status", b"307", 42), (b"location", LOCATION, 63), (b"date", DATE_1, 65),
     (b"cache-control", b"private", 52)],
    [(b"set-cookie", COOKIE, 98), (b"content-encoding", b"gzip", 52), (b"date", DATE_2, 65)],
]

C3 = [h("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
      h("8286 84be 5808 6e6f 2d63 6163 6865"),
      h("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65")]
C4 = [h("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"),
      h("8286 84be 5886 a8eb 1064 9cbf"),
      h("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")]
C5 = [h("4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133"
        "2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70"
        "6c65 2e63 6f6d"),
      h("4803 3330 37c1 c0bf"),
      h("88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d"
        "54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049"
        "5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e"
        "3d31")]
C6 = [h("4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6"
        "2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3"),
      h("4883 640e ffc1 c0bf"),
      h("88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab"
        "77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f"
        "9587 3160 65c0 03ed 4ee5 b106 3d50 07")]
SERIES = {
    "C.3-requests-raw": (C3, REQUESTS, REQUEST_TABLES, 4096, False),
    "C.4-requests-huffman": (C4, REQUESTS, REQUEST_TABLES, 4096, True),
    "C.5-responses-raw": (C5, RESPONSES, RESPONSE_TABLES, 256, False),
    "C.6-responses-huffman": (C6, RESPONSES, RESPONSE_TABLES, 256, True),
}


def table_state(coder) -> list[tuple[bytes, bytes, int]]:
    return [(n, v, len(n) + len(v) + 32) for n, v in coder.table_entries]


# ---- C.1 integer representation (§5.1), through dynamic table size updates ---------------

@pytest.mark.parametrize("block, size", [(b"\x2a", 10), (h("3f9a0a"), 1337)],
                         ids=["C.1.1-10-in-5-bit-prefix", "C.1.2-1337-in-5-bit-prefix"])
def test_c1_integer_decoding(impl, block, size):
    decoder = impl.Decoder()
    assert decoder.decode(block) == []
    assert decoder.header_table_size == size


@pytest.mark.parametrize("size, encoded", [(10, b"\x2a"), (1337, h("3f9a0a"))])
def test_c1_integer_encoding(impl, size, encoded):
    encoder = impl.Encoder()
    encoder.header_table_size = size
    assert encoder.encode([(b":method", b"GET")]) == encoded + b"\x82"


# ---- C.2 header field representations (§6) ---------------------------------------------

C2 = [
    ("C.2.1-literal-with-indexing",
     h("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
     HeaderTuple(b"custom-key", b"custom-header"), [(b"custom-key", b"custom-header", 55)]),
    ("C.2.2-literal-without-indexing", h("040c 2f73 616d 706c 652f 7061 7468"),
     HeaderTuple(b":path", b"/sample/path"), []),
    ("C.2.3-literal-never-indexed", h("1008 7061 7373 776f 7264 0673 6563 7265 74"),
     NeverIndexedHeaderTuple(b"password", b"secret"), []),
    ("C.2.4-indexed", b"\x82", HeaderTuple(b":method", b"GET"), []),
]


@pytest.mark.parametrize("block, field, table", [c[1:] for c in C2], ids=[c[0] for c in C2])
def test_c2_field_representations_decode(impl, block, field, table):
    decoder = impl.Decoder()
    (decoded,) = decoder.decode(block, raw=True)
    assert decoded == field and type(decoded) is type(field)
    assert table_state(decoder) == table
    assert decoder.table_used_size == sum(size for _, _, size in table)


def test_c2_1_literal_with_indexing_encode(impl):
    assert impl.Encoder().encode([(b"custom-key", b"custom-header")], huffman=False) == C2[0][1]


def test_c2_3_never_indexed_encode(impl):
    encoder = impl.Encoder()
    assert encoder.encode([(b"password", b"secret", True)], huffman=False) == C2[2][1]
    assert encoder.table_entries == []


def test_c2_4_indexed_encode(impl):
    assert impl.Encoder().encode([(b":method", b"GET")]) == b"\x82"


# ---- C.3 - C.6: request and response series sharing one dynamic table ---------------------

@pytest.mark.parametrize("series", list(SERIES))
def test_appendix_c_series_decode(impl, series):
    blocks, fields, tables, table_size, _ = SERIES[series]
    decoder = impl.Decoder()
    decoder.header_table_size = table_size
    for block, expected, table in zip(blocks, fields, tables, strict=True):
        assert decoder.decode(block, raw=True) == expected
        assert table_state(decoder) == table
        assert decoder.table_used_size == sum(size for _, _, size in table)
    # And as text (raw=False), on a fresh decoder.
    decoder = impl.Decoder()
    decoder.header_table_size = table_size
    assert decoder.decode(blocks[0]) == [(n.decode(), v.decode()) for n, v in fields[0]]


@pytest.mark.parametrize("series", list(SERIES))
def test_appendix_c_series_encode(impl, series):
    blocks, fields, tables, table_size, huffman = SERIES[series]
    encoder = impl.Encoder()
    reference = ReferenceDecoder()
    reference.header_table_size = table_size
    size_update = b""
    if table_size != 4096:
        encoder.header_table_size = table_size
        size_update = h("3fe101")               # §6.3 update to 256 before the first block
    for i, (block, expected, table) in enumerate(zip(blocks, fields, tables, strict=True)):
        encoded = encoder.encode(expected, huffman=huffman)
        if series.startswith("C.6") and i == 1:
            # ":status: 307" Huffman-codes to 3 octets, as long as "307": sent raw.
            block = h("4803 3330 37c1 c0bf")
        assert encoded == (size_update if i == 0 else b"") + block
        assert table_state(encoder) == table
        assert reference.decode(encoded, raw=True) == expected
