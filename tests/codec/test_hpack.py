"""HPACK coder behaviour (RFC 7541), on the compiled module and its pure twin.

The reference is the ``hpack`` package (what h2 uses by default): our decoder must return what
``hpack.Decoder`` returns and raise the class it raises; our encoder's output must decode with
``hpack.Decoder`` to the input. RFC 7541 Appendix C is in ``test_hpack_rfc7541.py``, properties
and fuzzing in ``test_hpack_fuzz.py``.
"""
from __future__ import annotations

import time
import tracemalloc

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import pytest
from hpack.exceptions import (
    HPACKDecodingError,
    InvalidTableIndexError,
    InvalidTableSizeError,
    OversizedHeaderListError,
)
from hpack.struct import HeaderTuple, NeverIndexedHeaderTuple

from kyoukai_h2fast import _switch
from tests.helpers.builds import implementations


@pytest.fixture(params=implementations("hpack"))
def impl(request):
    return request.param


def outcome(decoder, block: bytes, raw: bool = True):
    """("ok", [(type, name, value)...]) or ("error", exception class)."""
    try:
        return "ok", [(type(x), x[0], x[1]) for x in decoder.decode(block, raw=raw)]
    except Exception as err:  # noqa: BLE001 - the class is the result
        return "error", type(err)


def literal(name: bytes, value: bytes, first: int = 0x40) -> bytes:
    assert len(name) < 127 and len(value) < 127
    return bytes([first, len(name)]) + name + bytes([len(value)]) + value


# ---- the API h2 uses -------------------------------------------------------------------

def test_decoder_attributes_default_like_hpack(impl):
    ours, reference = impl.Decoder(), hpack.Decoder()
    for attr in ("max_header_list_size", "max_allowed_table_size", "header_table_size"):
        assert getattr(ours, attr) == getattr(reference, attr)
    assert impl.Decoder(max_header_list_size=100).max_header_list_size == 100
    assert impl.Encoder().header_table_size == hpack.Encoder().header_table_size == 4096


def test_decode_returns_header_tuples_bytes_when_raw_and_str_otherwise(impl):
    block = hpack.Encoder().encode([(":method", "GET"), ("x-secret", "s", True)])
    raw = impl.Decoder().decode(block, raw=True)
    assert [type(x) for x in raw] == [HeaderTuple, NeverIndexedHeaderTuple]
    assert raw == [(b":method", b"GET"), (b"x-secret", b"s")]
    text = impl.Decoder().decode(block)
    assert [type(x) for x in text] == [HeaderTuple, NeverIndexedHeaderTuple]
    assert text == [(":method", "GET"), ("x-secret", "s")]
    assert hash(raw[0]) == hash((b":method", b"GET"))


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=lambda w: w.__name__)
def test_decode_accepts_buffers_like_hpack(impl, wrap):
    block = hpack.Encoder().encode([(":path", "/a"), ("user-agent", "x" * 50)])
    assert impl.Decoder().decode(wrap(block), raw=True) == [(b":path", b"/a"),
                                                            (b"user-agent", b"x" * 50)]


def test_decode_rejects_text_like_hpack(impl):
    assert (outcome(impl.Decoder(), "\x82") == outcome(hpack.Decoder(), "\x82")
            == ("error", TypeError))


def test_decoders_keep_state_between_blocks_and_match_hpack(impl):
    encoder = hpack.Encoder()
    ours, reference = impl.Decoder(), hpack.Decoder()
    for i in range(30):
        block = encoder.encode([(":path", f"/{i % 7}"), ("x-n", str(i) * 40), ("cookie", "c" * 30)])
        assert outcome(ours, block) == outcome(reference, block)
    assert ours.table_entries == list(reference.header_table.dynamic_entries)


def test_h2_connections_use_our_coders_both_ways(impl):
    """h2 client (hpack) <-> h2 server (ours), with a HEADER_TABLE_SIZE change in between."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    server.encoder, server.decoder = impl.Encoder(), impl.Decoder()
    client.initiate_connection()
    server.initiate_connection()
    server.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 1024})

    def pump():
        for _ in range(4):
            events = server.receive_data(client.data_to_send())
            client.receive_data(server.data_to_send())
        return events

    pump()
    request = [(":method", "GET"), (":scheme", "https"), (":authority", "example.com"),
               (":path", "/"), ("authorization", "Bearer t0ken"), ("cookie", "a=1")]
    for stream_id in (1, 3, 5):
        sent = request + [("x-stream", str(stream_id) * 300)]
        client.send_headers(stream_id, sent, end_stream=True)
        events = server.receive_data(client.data_to_send())
        (received,) = [e for e in events if isinstance(e, h2.events.RequestReceived)]
        # (h2 moves cookie fields to the end when it combines them)
        assert sorted(received.headers) == sorted((n.encode(), v.encode()) for n, v in sent)
        server.send_headers(stream_id, [(":status", "200"), ("server", "kyoukai"),
                                        ("set-cookie", "k=" + "v" * 40)], end_stream=True)
        (response,) = [e for e in client.receive_data(server.data_to_send())
                       if isinstance(e, h2.events.ResponseReceived)]
        assert response.headers == [(b":status", b"200"), (b"server", b"kyoukai"),
                                    (b"set-cookie", b"k=" + b"v" * 40)]
    assert server.decoder.header_table_size == 1024     # the client announced the new size
    assert server.decoder.table_used_size <= 1024


# ---- decoding errors: the class hpack raises -----------------------------------------------

HUFFMAN_A = 0x1F            # 'a' is 00011, padded with 111
BAD_BLOCKS = {
    "empty-block": b"",
    "integer-truncated": b"\xff",
    "integer-truncated-in-continuation": b"\xff\x80",
    "integer-too-long": b"\xff\x80\x80\x80\x80\x80\x01",
    "integer-5-continuations-accepted-then-bad-index": b"\xff\xff\xff\xff\xff\x0f",
    "index-0": b"\x80",
    "index-beyond-static-table": b"\xbe",
    "index-beyond-dynamic-table": literal(b"a", b"b") + b"\xbf",
    "name-index-beyond-table": b"\x7f\x00\x01a",
    "name-index-0-never-indexed-literal-name-truncated": b"\x10",
    "string-length-missing": b"\x40",
    "string-truncated": b"\x40\x05ab",
    "value-length-missing": b"\x40\x01a",
    "value-truncated": b"\x40\x01a\x05b",
    "value-length-overflows": b"\x40\x01a\x7f\xff\xff\xff\xff\x0f",
    "huffman-ok": bytes([0x40, 0x81, HUFFMAN_A, 0x01]) + b"v",
    "huffman-padding-longer-than-7-bits": bytes([0x40, 0x82, HUFFMAN_A, 0xFF, 0x01]) + b"v",
    "huffman-padding-not-ones": bytes([0x40, 0x81, 0x18, 0x01]) + b"v",
    "huffman-eos-inside": bytes([0x40, 0x84, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]) + b"v",
    "huffman-eos-then-more": bytes([0x40, 0x85, 0xFF, 0xFF, 0xFF, 0xFC, 0x1F, 0x01]) + b"v",
    "huffman-empty": bytes([0x40, 0x80, 0x01]) + b"v",
    "size-update-above-allowed": b"\x3f\xe2\x1f",
    "size-update-at-allowed": b"\x3f\xe1\x1f\x82",
    "size-update-after-field": b"\x82\x20",
    "size-updates-twice-at-start": b"\x20\x3f\xe1\x01\x82",
    "size-update-truncated": b"\x3f",
    "invalid-utf8-then-bad-index": literal(b"x", b"\xff") + b"\x80",
}


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "text"])
@pytest.mark.parametrize("name", list(BAD_BLOCKS))
def test_decoding_errors_are_hpacks_classes(impl, name, raw):
    block = BAD_BLOCKS[name]
    assert outcome(impl.Decoder(), block, raw) == outcome(hpack.Decoder(), block, raw)


def test_bad_huffman_and_index_errors_are_decoding_errors(impl):
    # Guards the table above against a reference that stopped raising.
    for name in ("huffman-padding-longer-than-7-bits", "huffman-padding-not-ones",
                 "huffman-eos-inside", "integer-too-long", "string-truncated"):
        assert outcome(impl.Decoder(), BAD_BLOCKS[name]) == ("error", HPACKDecodingError), name
    for name in ("index-0", "index-beyond-dynamic-table", "name-index-beyond-table"):
        kind, cls = outcome(impl.Decoder(), BAD_BLOCKS[name])
        assert issubclass(cls, InvalidTableIndexError), name
    assert outcome(impl.Decoder(), BAD_BLOCKS["size-update-above-allowed"]) == (
        "error", InvalidTableSizeError)


def test_invalid_utf8_is_an_error_only_as_text(impl):
    block = literal(b"x-bin", b"\xff\xfe")
    assert impl.Decoder().decode(block, raw=True) == [(b"x-bin", b"\xff\xfe")]
    with pytest.raises(HPACKDecodingError):
        impl.Decoder().decode(block)


def test_shrunk_allowed_table_size_requires_an_update_from_the_peer(impl):
    decoder = impl.Decoder()
    decoder.max_allowed_table_size = 100
    with pytest.raises(InvalidTableSizeError):
        decoder.decode(b"\x82")
    decoder = impl.Decoder()
    decoder.max_allowed_table_size = 100
    assert decoder.decode(b"\x3f\x45\x82", raw=True) == [(b":method", b"GET")]
    assert decoder.header_table_size == 100


def test_table_size_update_evicts_entries(impl):
    decoder = impl.Decoder()
    decoder.decode(literal(b"a", b"1") + literal(b"b", b"2"))
    assert decoder.table_entries == [(b"b", b"2"), (b"a", b"1")]
    decoder.decode(b"\x3f\x03")                      # 34: room for one 34-octet entry
    assert decoder.table_entries == [(b"b", b"2")] and decoder.table_used_size == 34
    decoder.decode(b"\x20")                          # 0: empty
    assert decoder.table_entries == [] and decoder.header_table_size == 0


def test_entry_larger_than_table_empties_it(impl):
    decoder = impl.Decoder()
    decoder.header_table_size = 40
    fields = decoder.decode(literal(b"a", b"1") + literal(b"big", b"x" * 10) + b"\x82", raw=True)
    assert fields == [(b"a", b"1"), (b"big", b"x" * 10), (b":method", b"GET")]
    assert decoder.table_entries == [] and decoder.table_used_size == 0


# ---- max_header_list_size: the HPACK bomb --------------------------------------------------

def test_oversized_header_list_is_hpacks_error(impl):
    block = literal(b"a", b"1") + literal(b"b", b"2")           # 34 octets each
    for limit, expected in ((68, "ok"), (67, "error")):
        ours, reference = impl.Decoder(max_header_list_size=limit), hpack.Decoder()
        reference.max_header_list_size = limit
        assert outcome(ours, block)[0] == expected
        assert outcome(ours, block) == outcome(reference, block)
    with pytest.raises(OversizedHeaderListError):
        impl.Decoder(max_header_list_size=67).decode(block)


def hpack_bomb(references: int) -> bytes:
    """One 4 KB dynamic entry, then ``references`` one-octet references to it."""
    value = b"x" * 4000
    entry = b"\x40\x01b\x7f" + bytes([(len(value) - 127) & 0x7F | 0x80, (len(value) - 127) >> 7])
    return entry + value + b"\xbe" * references


def test_hpack_bomb_fails_exactly_at_the_limit(impl):
    entry_size = 1 + 4000 + 32
    fits = 65536 // entry_size                         # the entry itself + (fits - 1) references
    assert len(impl.Decoder().decode(hpack_bomb(fits - 1), raw=True)) == fits
    with pytest.raises(OversizedHeaderListError):
        impl.Decoder().decode(hpack_bomb(fits), raw=True)


def test_hpack_bomb_fails_fast_with_bounded_memory(impl):
    block = hpack_bomb(200_000)                         # would expand to 800 MB
    decoder = impl.Decoder()
    tracemalloc.start()
    try:
        started = time.perf_counter()
        with pytest.raises(OversizedHeaderListError):
            decoder.decode(block, raw=True)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Not the 200k tuples (~13 MB) of a full expansion: hpack copies the input for its literal
    # parsing (so: a few times the 200 KB input); the compiled decoder only holds the ~16 fields.
    assert peak < 3 * len(block), peak
    if impl is _switch.compiled("hpack"):
        assert peak < 16 * 1024, peak
    assert elapsed < 0.5, elapsed            # stopped after ~16 of 200k references


# ---- encoder -------------------------------------------------------------------------------

ENCODER_INPUTS = {   # factories: a generator can be used once
    "str-2-tuples": lambda: [(":method", "GET"), (":path", "/"), ("user-agent", "test/1.0")],
    "bytes-2-tuples": lambda: [(b":status", b"200"), (b"content-type", b"text/html")],
    "non-string-values": lambda: [(b"content-length", 42), ("x-float", 1.5)],
    "3-tuples": lambda: [(":method", "GET", False), ("x-token", "secret", True)],
    "header-tuples": lambda: [HeaderTuple(b":path", b"/"), NeverIndexedHeaderTuple(b"x-k", b"v")],
    "dict-pseudo-headers-first": lambda: {"user-agent": "u", ":path": "/", "accept": "*/*",
                                          ":method": "GET"},
    "generator": lambda: ((f"x-{i}", str(i)) for i in range(3)),
    "lists-as-fields": lambda: [[":method", "GET"], ["x-a", "b", True]],
    "empty": lambda: [],
}


@pytest.mark.parametrize("name", list(ENCODER_INPUTS))
def test_encoder_accepts_what_hpack_accepts(impl, name):
    ours = hpack.Decoder().decode(impl.Encoder().encode(ENCODER_INPUTS[name]()))
    reference = hpack.Decoder().decode(hpack.Encoder().encode(ENCODER_INPUTS[name]()))
    assert ours == reference and (ours or name == "empty")
    assert [type(x) for x in ours] == [type(x) for x in reference]


def test_encoder_rejects_what_hpack_rejects(impl):
    for bad in ([(b"only-name",)], [b"x"], [("x", "\udc80")]):
        with pytest.raises(Exception) as ours:
            impl.Encoder().encode(bad)
        with pytest.raises(Exception) as reference:
            hpack.Encoder().encode(bad)
        assert type(ours.value) is type(reference.value)


def test_repeated_fields_are_sent_indexed(impl):
    encoder = impl.Encoder()
    fields = [(":method", "GET"), (":path", "/x"), ("x-custom", "value"), ("accept", "*/*")]
    first = encoder.encode(fields)
    second = encoder.encode(fields)
    assert len(second) == len(fields) and all(octet & 0x80 for octet in second)
    decoder = hpack.Decoder()
    assert decoder.decode(first) == decoder.decode(second) == fields


@pytest.mark.parametrize("field", [
    (b"x-api-key", b"k", True),
    NeverIndexedHeaderTuple(b"x-api-key", b"k"),
    (b"authorization", b"Bearer " + b"t" * 100),
    (b"proxy-authorization", b"Basic dXNlcjpwYXNz"),
    (b"cookie", b"s=" + b"1" * 17),                   # 19 octets
    (b":method", b"GET", True),                        # in the static table, still a literal
], ids=["3-tuple", "never-indexed-tuple", "authorization", "proxy-authorization",
        "short-cookie", "static-exact-match"])
def test_sensitive_fields_are_never_indexed(impl, field):
    encoder = impl.Encoder()
    decoder = hpack.Decoder()
    for _ in range(2):
        block = encoder.encode([field])
        (decoded,) = decoder.decode(block, raw=True)
        assert type(decoded) is NeverIndexedHeaderTuple
        assert decoded == tuple(field[:2])
        assert block[0] & 0xF0 == 0x10                 # §6.2.3 representation
    assert encoder.table_entries == [] and len(decoder.header_table.dynamic_entries) == 0


def test_long_cookie_is_indexed(impl):
    encoder = impl.Encoder()
    cookie = (b"cookie", b"s=" + b"1" * 18)           # 20 octets
    encoder.encode([cookie])
    assert encoder.table_entries == [cookie]
    assert encoder.encode([cookie]) == b"\xbe"


@pytest.mark.parametrize("value, huffman_expected", [
    (b"www.example.com", True),                       # 12 octets coded
    (b"\x00\x01\x02{}|~", False),                     # long codes: raw is shorter
    (b"307", False),                                  # 3 octets either way: raw
])
def test_huffman_only_when_shorter(impl, value, huffman_expected):
    block = impl.Encoder().encode([(b"x-value", value)])
    assert block[0] == 0x40 and block[1] & 0x80         # literal name, Huffman-coded (shorter)
    value_start = 2 + (block[1] & 0x7F)
    assert bool(block[value_start] & 0x80) is huffman_expected
    assert hpack.Decoder().decode(block, raw=True) == [(b"x-value", value)]
    plain = impl.Encoder().encode([(b"x-value", value)], huffman=False)
    assert not plain[1] & 0x80 and not plain[2 + 7] & 0x80


def test_table_size_change_is_announced_at_the_next_block(impl):
    encoder = impl.Encoder()
    decoder = hpack.Decoder()
    encoder.header_table_size = 4096                   # unchanged: nothing to announce
    assert encoder.encode([(b":method", b"GET")]) == b"\x82"
    encoder.header_table_size = 100
    encoder.header_table_size = 300
    block = encoder.encode([(b":method", b"GET")])
    assert block == b"\x3f\x45" + b"\x3f\x8d\x02" + b"\x82"    # smallest (100), then last (300)
    decoder.decode(block)
    assert decoder.header_table_size == 300
    assert encoder.encode([(b":method", b"GET")]) == b"\x82"  # announced once
    encoder.header_table_size = 200
    encoder.header_table_size = 200                    # set twice: still announced
    assert encoder.encode([]) == b"\x3f\xa9\x01"
    with pytest.raises(ValueError):
        encoder.header_table_size = -1


def test_encoder_table_evicts_like_the_peer(impl):
    encoder = impl.Encoder()
    encoder.header_table_size = 120
    decoder = impl.Decoder()
    for i in range(10):
        fields = [(b"x-a", b"%d" % i * 20), (b"x-b", b"v")]
        assert decoder.decode(encoder.encode(fields), raw=True) == fields
        assert encoder.table_entries == decoder.table_entries
        assert encoder.table_used_size == decoder.table_used_size <= 120


# ---- C-level API (compiled only: it has no Python twin) ------------------------------------

def compiled_module():
    """The compiled module; its C-level API has no pure twin (skipped only in pure builds)."""
    module = _switch.compiled("hpack")
    if module is None:
        if _switch.NO_EXTENSIONS:
            pytest.skip("pure build (KYOUKAI_H2FAST_NO_EXTENSIONS): no C-level API")
        pytest.fail("kyoukai_h2fast._hpack_c is not built")
    return module


def test_c_decode_block_slices_stay_valid_until_the_next_block():
    c = compiled_module()
    encoder = hpack.Encoder()
    encoder.header_table_size = 200
    via_c, via_python = c.Decoder(), c.Decoder()
    via_c.header_table_size = via_python.header_table_size = 200
    for i in range(20):
        # Huffman strings, indexed references, and entries evicted later in the same block.
        fields = [(b":method", b"GET"), (b":path", b"/p/%d" % (i % 3)), (b"user-agent", b"ua"),
                  (b"x-big-%d" % i, b"%d" % i * 60), (b"x-big-%d" % (i + 1), b"z" * 70),
                  (b"x-after", b"y" * (i % 5)), (b"password", b"secret", True)]
        block = encoder.encode(fields)
        collected = c._capi_decode(via_c, block)
        expected = via_python.decode(block, raw=True)
        assert [(n, v) for n, v, _, _ in collected] == expected
        assert [f & 1 for _, _, f, _ in collected] == [
            int(type(x) is NeverIndexedHeaderTuple) for x in expected]
        assert [idx for _, _, _, idx in collected][:3] == [2, 4, 58]
        assert all(idx == 0 for _, _, _, idx in collected[3:])


def test_c_decode_block_errors_are_hpacks():
    c = compiled_module()
    for name in ("index-0", "huffman-eos-inside", "size-update-after-field"):
        with pytest.raises(Exception) as caught:
            c._capi_decode(c.Decoder(), BAD_BLOCKS[name])
        assert ("error", type(caught.value)) == outcome(hpack.Decoder(), BAD_BLOCKS[name])


def test_c_encode_field_matches_encode():
    c = compiled_module()
    via_c, via_python = c.Encoder(), c.Encoder()
    via_c.header_table_size = via_python.header_table_size = 256
    decoder = hpack.Decoder()
    for i in range(10):
        fields = [(b":status", b"200", False), (b"content-type", b"text/plain", False),
                  (b"x-request", b"%d" % i * 30, False), (b"x-secret", b"s", True),
                  (b"authorization", b"a", False)]
        encoded = c._capi_encode(via_c, fields)
        assert encoded == via_python.encode(fields)
        assert decoder.decode(encoded, raw=True) == [(n, v) for n, v, _ in fields]
    assert c._capi_encode(c.Encoder(), [(b"x", b"www.example.com", False)], False) == (
        b"\x40\x01x\x0fwww.example.com")


def test_static_table_is_rfc7541_appendix_a():
    assert compiled_module()._STATIC_TABLE == hpack.table.HeaderTable.STATIC_TABLE
