"""HPACK properties and differential fuzzing (hypothesis), on both implementations.

* Round trips: our Encoder -> our Decoder and our Encoder -> ``hpack.Decoder`` give back the
  fields, over sessions of blocks sharing one dynamic table, with table size changes, long
  values (eviction) and sensitive fields.
* The compiled and pure encoders produce the same octets.
* Our decoders agree with ``hpack.Decoder`` (results, field classes, table state, exception
  classes) on blocks from ``hpack.Encoder``, on mutated blocks, and on arbitrary bytes.

``tests/codec/fuzz_hpack.py`` is the long-running (atheris) version of the arbitrary-input check.
"""
from __future__ import annotations

import hpack
import pytest
from hpack.struct import NeverIndexedHeaderTuple
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kyoukai_h2fast import _switch
from tests.helpers.builds import implementations

IMPLS = implementations("hpack")
STATIC_NAMES = sorted({n for n, _ in hpack.table.HeaderTable.STATIC_TABLE})
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", params=IMPLS)
def impl(request):
    return request.param


names = st.one_of(st.sampled_from(STATIC_NAMES + [b"x-custom", b"x-request-id"]),
                  st.binary(max_size=24))
values = st.one_of(st.sampled_from([b"", b"GET", b"/", b"200", b"gzip, deflate", b"*/*"]),
                   st.binary(max_size=40), st.binary(min_size=100, max_size=700))
blocks = st.lists(st.tuples(names, values, st.sampled_from([False, False, False, True])),
                  max_size=14)
# A session: blocks sharing one table; before each, maybe a new header_table_size.
sessions = st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 6000)), blocks),
                    min_size=1, max_size=8)


def outcome(decoder, block: bytes, raw: bool = True):
    try:
        return "ok", [(type(x), x[0], x[1]) for x in decoder.decode(block, raw=raw)]
    except Exception as err:  # noqa: BLE001 - the class is the result
        return "error", type(err)


def never_indexed(name: bytes, value: bytes, sensitive: bool) -> bool:
    return (sensitive or name in (b"authorization", b"proxy-authorization")
            or (name == b"cookie" and len(value) < 20))


@FAST
@given(session=sessions)
def test_encoder_round_trips_through_our_decoder_and_hpacks(session):
    for impl in IMPLS:
        impl = impl.values[0]
        encoder, ours, reference = impl.Encoder(), impl.Decoder(), hpack.Decoder()
        ours.max_allowed_table_size = reference.max_allowed_table_size = 8192
        for table_size, block in session:
            if table_size is not None:
                encoder.header_table_size = table_size
            encoded = encoder.encode(block)
            expected = [(NeverIndexedHeaderTuple if never_indexed(n, v, s) else hpack.HeaderTuple,
                         n, v) for n, v, s in block]
            assert outcome(ours, encoded) == ("ok", expected)
            assert outcome(reference, encoded) == ("ok", expected)
            assert encoder.table_entries == ours.table_entries == list(
                reference.header_table.dynamic_entries)
            assert encoder.table_used_size <= encoder.header_table_size


@FAST
@given(session=sessions, huffman=st.booleans())
def test_compiled_and_pure_encoders_emit_the_same_octets(session, huffman):
    if len(IMPLS) < 2:
        pytest.skip("pure build: nothing to compare")
    pure, compiled = (p.values[0].Encoder() for p in IMPLS)
    for table_size, block in session:
        if table_size is not None:
            pure.header_table_size = compiled.header_table_size = table_size
        assert compiled.encode(block, huffman=huffman) == pure.encode(block, huffman=huffman)


@FAST
@given(session=sessions, huffman=st.booleans())
def test_decoders_match_hpack_on_hpack_encoded_sessions(session, huffman):
    encoder = hpack.Encoder()
    decoders = [hpack.Decoder()] + [p.values[0].Decoder() for p in IMPLS]
    for d in decoders:
        d.max_allowed_table_size = 8192
    for table_size, block in session:
        if table_size is not None:
            encoder.header_table_size = table_size
        encoded = encoder.encode(block, huffman=huffman)
        results = [outcome(d, encoded) for d in decoders]
        assert results[0][0] == "ok"
        assert all(r == results[0] for r in results[1:])
        tables = [list(decoders[0].header_table.dynamic_entries)] + [
            d.table_entries for d in decoders[1:]]
        assert all(t == tables[0] for t in tables[1:])


# Text sessions: fields drawn from a small pool (so later blocks reference table entries),
# a good share of them not UTF-8.
text_bytes = st.one_of(st.sampled_from([b"", b"a", b"\xc3\xa9", b"\xff", b"ok\xc3",
                                        b"\xed\xa0\x80"]),
                       st.text(max_size=10).map(str.encode), st.binary(max_size=10))
text_pools = st.lists(st.tuples(st.one_of(st.sampled_from([b":path", b"user-agent", b"x-a"]),
                                          text_bytes), text_bytes), min_size=1, max_size=8)


@FAST
@given(pool=text_pools, huffman=st.booleans(), data=st.data())
def test_decoders_match_hpack_as_text_across_utf8_errors(pool, huffman, data):
    """Text output (raw=False, or raw chosen per block) of sessions whose fields are often not
    UTF-8: hpack fails such a block after decoding it whole, so the table stays in sync and the
    session goes on; ours must give the same results, errors and table after every block."""
    encoder = hpack.Encoder()
    decoders = [hpack.Decoder()] + [p.values[0].Decoder() for p in IMPLS]
    for d in decoders:
        d.max_allowed_table_size = 8192
    for _ in range(data.draw(st.integers(1, 8))):
        table_size = data.draw(st.sampled_from([None, None, None, 0, 80, 200, 4096]))
        block = data.draw(st.lists(st.sampled_from(pool), max_size=6))
        if table_size is not None:
            encoder.header_table_size = table_size
        encoded = encoder.encode(block, huffman=huffman)
        raw = data.draw(st.sampled_from([False, False, True]))
        results = [outcome(d, encoded, raw) for d in decoders]
        assert all(r == results[0] for r in results[1:]), (encoded.hex(), raw, results)
        tables = [list(decoders[0].header_table.dynamic_entries)] + [
            d.table_entries for d in decoders[1:]]
        assert all(t == tables[0] for t in tables[1:])


@FAST
@given(session=sessions, data=st.data())
def test_decoders_match_hpack_on_mutated_blocks(session, data):
    """Valid sessions with one block damaged: same results and errors, then same state."""
    encoder = hpack.Encoder()
    encoded = []
    for table_size, block in session:
        if table_size is not None:
            encoder.header_table_size = table_size
        encoded.append(bytearray(encoder.encode(block)))
    victim = encoded[data.draw(st.integers(0, len(encoded) - 1))]
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["flip", "truncate", "insert", "set"]))
        at = data.draw(st.integers(0, len(victim)))
        if op == "truncate":
            del victim[at:]
        elif op == "insert":
            victim[at:at] = data.draw(st.binary(min_size=1, max_size=4))
        elif victim and at < len(victim):
            victim[at] = (victim[at] ^ (1 << data.draw(st.integers(0, 7))) if op == "flip"
                          else data.draw(st.integers(0, 255)))
    raw = data.draw(st.booleans())
    decoders = [hpack.Decoder()] + [p.values[0].Decoder() for p in IMPLS]
    for d in decoders:
        d.max_allowed_table_size = 8192
    for block in encoded:
        results = [outcome(d, bytes(block), raw) for d in decoders]
        assert all(r == results[0] for r in results[1:]), (bytes(block).hex(), results)
        if results[0][0] == "error":
            break


@settings(max_examples=3000, deadline=None)
@given(first=st.binary(max_size=64), second=st.binary(max_size=64),
       raw=st.booleans(), limits=st.tuples(st.integers(0, 5000), st.integers(0, 300)))
def test_decoders_match_hpack_on_arbitrary_bytes(first, second, raw, limits):
    table_allowed, list_size = limits
    decoders = [hpack.Decoder()] + [p.values[0].Decoder() for p in IMPLS]
    for d in decoders:
        d.max_allowed_table_size = table_allowed
        d.max_header_list_size = list_size * 10
    for block in (first, second):
        results = [outcome(d, block, raw) for d in decoders]
        assert all(r == results[0] for r in results[1:]), (block.hex(), results)
        if results[0][0] == "error":
            break


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=30)), max_size=8))
def test_text_fields_round_trip_as_text(impl, text_fields):
    encoded = impl.Encoder().encode(text_fields)
    assert impl.Decoder().decode(encoded) == hpack.Decoder().decode(encoded) == text_fields


def test_compiled_module_is_tested():
    """Guards against a broken build silently testing the pure twin twice."""
    if not _switch.NO_EXTENSIONS:
        assert [p.id for p in IMPLS] == ["pure", "compiled"]
        assert _switch.compiled("hpack") is not None
