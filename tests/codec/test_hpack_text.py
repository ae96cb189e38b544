"""HPACK decoding to ``str`` (``Decoder.decode(block)``, ``raw=False``): exactly hpack's results.

hpack decodes a whole block, then turns every name and value into ``str`` with
``bytes.decode("utf-8")``; a field that is not UTF-8 fails the block with ``HPACKDecodingError``
(chained to the ``UnicodeDecodeError``) only after the whole block was decoded, so the dynamic
table keeps every insertion of that block and HPACK errors found later in the block (table
index, header list size, table size) win. The compiled decoder builds the strings from its C
buffers and keeps the ``str`` of static and dynamic table entries (decoded once per entry): these
tests pin that this caching never shows, on both implementations, against ``hpack`` itself.
"""
from __future__ import annotations

import random

import hpack
import pytest
from hpack.exceptions import HPACKDecodingError
from hpack.struct import HeaderTuple, NeverIndexedHeaderTuple

from tests.helpers.builds import implementations


@pytest.fixture(params=implementations("hpack"))
def impl(request):
    return request.param


def literal(name: bytes, value: bytes, first: int = 0x40) -> bytes:
    """A literal field with a literal name, raw (not Huffman) strings under 127 octets."""
    assert len(name) < 127 and len(value) < 127
    return bytes([first, len(name)]) + name + bytes([len(value)]) + value


def indexed_name(index: int, value: bytes, first: int = 0x40) -> bytes:
    """A literal field whose name is table entry ``index`` (< 63: one prefix octet)."""
    assert index < 63 and len(value) < 127
    return bytes([first | index]) + bytes([len(value)]) + value


def decode_text(decoder, block: bytes):
    """("ok", [(class, name, value, type(name), type(value))]) or
    ("error", class, message, (cause class, cause args))."""
    try:
        fields = decoder.decode(block)
    except Exception as err:  # noqa: BLE001 - the error is the result
        cause = err.__cause__
        if cause is None:           # hpack's other messages may show object addresses
            return "error", type(err), None, None
        return "error", type(err), str(err), (type(cause), cause.args)
    return "ok", [(type(f), f[0], f[1], type(f[0]), type(f[1])) for f in fields]


def same_as_hpack(impl, blocks, table_size=None, max_list=None):
    """Decode ``blocks`` in order with ours and hpack's (as text); compare every outcome and
    the dynamic table after each block."""
    ours, reference = impl.Decoder(), hpack.Decoder()
    for decoder in (ours, reference):
        if table_size is not None:
            decoder.header_table_size = table_size
        if max_list is not None:
            decoder.max_header_list_size = max_list
    results = []
    for block in blocks:
        result = decode_text(ours, block)
        assert result == decode_text(reference, block), block
        assert ours.table_entries == list(reference.header_table.dynamic_entries)
        results.append(result)
    return results


# ---- what a field decodes to ---------------------------------------------------------------

def test_fields_are_header_tuples_of_exact_str(impl):
    block = hpack.Encoder().encode([(":method", "GET"), (":path", "/a"), ("x-k", "v"),
                                    ("authorization", "secret", True)])
    (result,) = same_as_hpack(impl, [block])
    assert result[0] == "ok"
    assert [r[0] for r in result[1]] == [HeaderTuple] * 3 + [NeverIndexedHeaderTuple]
    assert all(r[3] is str and r[4] is str for r in result[1])
    fields = impl.Decoder().decode(block)
    assert fields[0] == (":method", "GET") and hash(fields[0]) == hash((":method", "GET"))


def test_every_static_table_entry_decodes_like_hpack(impl):
    block = bytes(0x80 | i for i in range(1, 62))
    (result,) = same_as_hpack(impl, [block])
    assert result[0] == "ok" and len(result[1]) == 61


@pytest.mark.parametrize("value", [
    "café", "日本語", "emoji 🎉", "\u00ff" * 50, "mixed ascii then \u0100", "a" * 300 + "é",
], ids=["latin1", "cjk", "astral", "long-latin1", "ascii-then-non-latin1", "long-ascii-prefix"])
@pytest.mark.parametrize("huffman", [True, False], ids=["huffman", "plain"])
def test_non_ascii_utf8_values_and_names_decode_like_hpack(impl, value, huffman):
    encoder = hpack.Encoder()
    fields = [("x-" + value[:3], value), ("user-agent", value), (":path", "/" + value)]
    blocks = [encoder.encode(fields, huffman=huffman) for _ in range(3)]   # literals, then indexed
    results = same_as_hpack(impl, blocks)
    assert results[0] == results[1] == results[2]
    assert results[0][1][1][2] == value


# ---- fields that are not UTF-8 -------------------------------------------------------------

NOT_UTF8 = {
    "lone-continuation": b"\x80",
    "truncated-2-octet": b"ok\xc3",
    "overlong-nul": b"\xc0\x80",
    "surrogate": b"\xed\xa0\x80",
    "above-u10ffff": b"\xf4\x90\x80\x80",
    "latin1-byte": b"caf\xe9",
    "ff": b"\xff\xfe",
    "long-ascii-then-bad": b"x" * 200 + b"\xff",
}


@pytest.mark.parametrize("where", ["name", "value"])
@pytest.mark.parametrize("bad", list(NOT_UTF8))
def test_field_not_utf8_is_hpacks_error_with_the_same_cause(impl, bad, where):
    raw = NOT_UTF8[bad]
    field = (literal(raw[-120:], b"v") if where == "name" else literal(b"x-bin", raw[-120:]))
    block = b"\x82" + field + b"\x84"
    (result,) = same_as_hpack(impl, [block])
    assert result[0] == "error" and result[1] is HPACKDecodingError
    assert result[3][0] is UnicodeDecodeError
    assert impl.Decoder().decode(block, raw=True)[1] in ((raw[-120:], b"v"), (b"x-bin", raw[-120:]))


def test_bad_field_keeps_the_whole_blocks_table_updates(impl):
    # After the block: 62 = x-b: 2, 63 = x-bad: \xff, 64 = x-a: 1.
    block = literal(b"x-a", b"1") + literal(b"x-bad", b"\xff") + literal(b"x-b", b"2")
    results = same_as_hpack(impl, [block, b"\xbe\xc0", b"\xbf"])
    assert results[0][1] is HPACKDecodingError
    assert results[1][0] == "ok"
    assert [f[1:3] for f in results[1][1]] == [("x-b", "2"), ("x-a", "1")]
    assert results[2][1] is HPACKDecodingError


def test_indexed_entry_that_is_not_utf8_fails_every_use(impl):
    # The entry's str cannot be cached: each block that references it fails, as in hpack,
    # and blocks that do not reference it decode.
    blocks = [literal(b"x-bin", b"\xc3\x28", 0x40), b"\xbe", b"\x82", b"\x82\xbe\x84",
              indexed_name(62, b"fine"), b"\xbe", b"\xbf"]
    results = same_as_hpack(impl, blocks)
    assert [r[0] for r in results] == ["error", "error", "ok", "error", "ok", "ok", "error"]


def test_name_from_a_bad_entry_with_a_good_value(impl):
    blocks = [literal(b"\xe9t\xe9", b"ok"), indexed_name(62, b"good", 0x00), b"\x82"]
    results = same_as_hpack(impl, blocks)
    assert [r[0] for r in results] == ["error", "error", "ok"]


@pytest.mark.parametrize("later", [
    pytest.param(b"\xff\x80\x80\x80\x80\x80\x01", id="integer-too-long"),
    pytest.param(b"\xbf", id="bad-index"),
    pytest.param(b"\x40\x05ab", id="truncated-string"),
    pytest.param(b"\x20", id="size-update-after-field"),
])
def test_hpack_errors_later_in_the_block_win_over_utf8(impl, later):
    block = literal(b"x-bad", b"\xff") + later
    (result,) = same_as_hpack(impl, [block])
    assert result[0] == "error" and result[3] is None    # not the UTF-8 error


def test_header_list_size_error_wins_over_utf8(impl):
    block = literal(b"x-bad", b"\xff") + literal(b"x-big", b"y" * 100)
    (result,) = same_as_hpack(impl, [block], max_list=100)
    assert result[0] == "error" and result[1].__name__ == "OversizedHeaderListError"


def test_table_size_error_wins_over_utf8(impl):
    ours, reference = impl.Decoder(), hpack.Decoder()
    for decoder in (ours, reference):
        decoder.max_allowed_table_size = 100      # the peer must announce <= 100 first
    block = literal(b"x-bad", b"\xff")
    assert decode_text(ours, block) == decode_text(reference, block)
    assert decode_text(ours, block)[1].__name__ == "InvalidTableSizeError"


# ---- the str cache follows the table -------------------------------------------------------

def test_evicted_entries_do_not_leak_their_text_into_new_ones(impl):
    # A small table: each insertion evicts the previous entry, so entry 62 is a different
    # field every block; a stale cached str would show as a wrong value.
    blocks = []
    for i in range(40):
        value = (f"v{i}-" + "é" * (i % 3)).encode()
        blocks.append(literal(b"x-%d" % (i % 4), value) + b"\xbe" + b"\xbe")
    results = same_as_hpack(impl, blocks, table_size=60)
    assert all(r[0] == "ok" for r in results)


def test_raw_and_text_decodes_share_one_table(impl):
    encoder = hpack.Encoder()
    ours, reference = impl.Decoder(), hpack.Decoder()
    rng = random.Random(7)
    for i in range(60):
        fields = [(":path", f"/{rng.randrange(5)}"), (f"x-k{rng.randrange(6)}", f"é{i}"),
                  ("user-agent", f"agent/{rng.randrange(3)}")]
        block = encoder.encode(fields)
        raw = bool(rng.randrange(2))
        assert ours.decode(block, raw=raw) == reference.decode(block, raw=raw)
        assert ours.table_entries == list(reference.header_table.dynamic_entries)


def test_table_size_updates_and_resizes_between_text_blocks(impl):
    encoder = hpack.Encoder()
    blocks = []
    for i, size in enumerate([4096, 200, 0, 1000, 64, 4096]):
        encoder.header_table_size = size
        blocks.append(encoder.encode([("x-a", "é" * i), ("x-b", str(i)), (":authority", "h")]))
        blocks.append(encoder.encode([("x-a", "é" * i), ("x-b", str(i))]))
    results = same_as_hpack(impl, blocks)
    assert all(r[0] == "ok" for r in results)


def test_text_of_a_decoding_session_matches_hpack_on_random_blocks(impl):
    rng = random.Random(14)
    alphabet = ["a", "Z", "-", " ", "é", "ß", "中", "🎉", "\x00", "\x7f"]
    encoder = hpack.Encoder()
    blocks = []
    for _ in range(150):
        fields = []
        for _ in range(rng.randrange(1, 8)):
            name = rng.choice([":path", "user-agent", "cookie", "x-" + rng.choice(alphabet)])
            value = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
            fields.append((name, value, rng.random() < 0.1))
        blocks.append(encoder.encode(fields, huffman=rng.random() < 0.7))
    results = same_as_hpack(impl, blocks)
    assert all(r[0] == "ok" for r in results)
