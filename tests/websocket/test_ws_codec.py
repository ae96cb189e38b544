"""The WebSocket frame codec (RFC 6455 §5) on the compiled module and its pure twin.

References: frames are built here by hand (``ws_helpers.frame``) and by the ``websockets``
library's sans-IO ``Frame`` (parse and serialize), UTF-8 validity is CPython's
``bytes.decode``; the compiled and pure codecs must agree with them and with each other, for
any split of the input.
"""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import PayloadTooBig, ProtocolError
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from kyoukai_h2fast import _switch
from kyoukai_h2fast.websocket import frames as selected
from kyoukai_h2fast.websocket.errors import FrameError
from tests.helpers.builds import implementations
from tests.websocket.ws_helpers import MASK, can_start_utf8, frame

IMPLS = implementations("websocket")
TEXT, BINARY, CLOSE, PING, PONG, CONT = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
SLOW = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(params=IMPLS)
def impl(request):
    return request.param


def read_all(impl, chunks, **kwargs):
    """Frames (and the FrameError, if any, as its last item) for ``chunks`` fed in turn."""
    reader = impl.FrameReader(**kwargs)
    out: list = []
    try:
        for chunk in chunks:
            reader.feed(chunk)
            out.extend(reader)
    except FrameError as e:
        out.append(("error", e.code, e.reason))
    return out


def split(data: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted({min(p, len(data)) for p in points})
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def test_the_selector_takes_the_compiled_codec_unless_told_not_to():
    expected = _switch.pure("websocket") if _switch.NO_EXTENSIONS else _switch.compiled(
        "websocket")
    assert selected.FrameReader is expected.FrameReader
    assert "websocket" in _switch.MODULES


# -- frames: what comes out ------------------------------------------------------------------
def test_frames_come_out_unmasked_whole_text_decoded(impl):
    data = (frame(TEXT, "héllo") + frame(BINARY, b"\x00\xff" * 70000)
            + frame(TEXT, "ab", fin=False) + frame(CONT, "\u20ac") + frame(PING, b"p")
            + frame(PONG) + frame(CLOSE, b"\x03\xe8"))
    assert read_all(impl, [data]) == [
        (TEXT, True, False, "héllo"), (BINARY, True, False, b"\x00\xff" * 70000),
        (TEXT, False, False, b"ab"), (CONT, True, False, "\u20ac".encode()),
        (PING, True, False, b"p"), (PONG, True, False, b""),
        (CLOSE, True, False, b"\x03\xe8")]


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 125, 126, 127, 1023, 1024, 1025, 65535, 65536,
                               100003])
def test_every_length_encoding_and_payload_size(impl, n):
    payload = os.urandom(n)
    text = ("é" * n)[:n]
    assert read_all(impl, [frame(BINARY, payload)]) == [(BINARY, True, False, payload)]
    assert read_all(impl, [frame(TEXT, text)]) == [(TEXT, True, False, text)]
    assert read_all(impl, [frame(BINARY, payload, mask=None)], client=True) == [
        (BINARY, True, False, payload)]


def test_nothing_comes_out_until_a_frame_is_whole(impl):
    data = frame(BINARY, b"x" * 70000)
    reader = impl.FrameReader()
    for i in range(0, len(data) - 1, 4096):
        reader.feed(data[i:i + 4096] if i + 4096 < len(data) else data[i:-1])
        assert reader.next_frame() is None
    assert reader.buffered == len(data) - 1
    reader.feed(data[-1:])
    assert reader.next_frame() == (BINARY, True, False, b"x" * 70000)
    assert reader.buffered == 0 and reader.next_frame() is None


def test_any_buffer_type_is_read_alike(impl):
    data = frame(TEXT, "abc") + frame(BINARY, b"def")
    for kind in (bytes, bytearray, memoryview):
        assert read_all(impl, [kind(data[:3]), kind(data[3:])]) == [
            (TEXT, True, False, "abc"), (BINARY, True, False, b"def")]


def test_feeding_again_before_reading_everything_keeps_the_order(impl):
    reader = impl.FrameReader()
    reader.feed(frame(TEXT, "one") + frame(TEXT, "two"))
    assert reader.next_frame()[3] == "one"
    reader.feed(frame(TEXT, "three"))
    assert [f[3] for f in reader] == ["two", "three"]


def test_in_message_follows_the_fragments(impl):
    reader = impl.FrameReader()
    reader.feed(frame(BINARY, b"a", fin=False))
    assert reader.next_frame() and reader.in_message
    reader.feed(frame(CONT, b"b", fin=False) + frame(PING) + frame(CONT, b"c"))
    assert [f[0] for f in reader] == [CONT, PING, CONT]
    assert not reader.in_message


# -- framing rules ---------------------------------------------------------------------------
BAD_FRAMES = [
    ("reserved-opcode-3", frame(3), 1002, "reserved opcode 0x3"),
    ("reserved-opcode-7", frame(7, b"x"), 1002, "reserved opcode 0x7"),
    ("reserved-opcode-0xb", frame(0xB), 1002, "reserved opcode 0xb"),
    ("reserved-opcode-0xf", frame(0xF, b"x"), 1002, "reserved opcode 0xf"),
    ("rsv2", frame(TEXT, "a", rsv=2), 1002, "reserved bits RSV2/RSV3 set"),
    ("rsv3", frame(BINARY, b"a", rsv=4), 1002, "reserved bits RSV2/RSV3 set"),
    ("rsv1-no-extension", frame(TEXT, "a", rsv=1), 1002,
     "reserved bit RSV1 set without a negotiated extension"),
    ("rsv-on-control", frame(PING, rsv=6), 1002, "reserved bits RSV2/RSV3 set"),
    ("fragmented-ping", frame(PING, b"a", fin=False), 1002, "fragmented control frame"),
    ("fragmented-close", frame(CLOSE, fin=False), 1002, "fragmented control frame"),
    ("ping-126", frame(PING, b"x" * 126), 1002, "control frame payload over 125 bytes"),
    ("close-126", frame(CLOSE, b"\x03\xe8" + b"x" * 124), 1002,
     "control frame payload over 125 bytes"),
    ("unmasked", frame(TEXT, "a", mask=None), 1002, "unmasked frame from a client"),
    ("continuation-alone", frame(CONT, b"a"), 1002,
     "continuation frame without a message in progress"),
    ("continuation-alone-not-fin", frame(CONT, b"a", fin=False), 1002,
     "continuation frame without a message in progress"),
    ("text-inside-message", frame(TEXT, "a", fin=False) + frame(TEXT, "b"), 1002,
     "new data frame while a fragmented message is in progress"),
    ("binary-inside-message", frame(BINARY, b"a", fin=False) + frame(BINARY, b"b"), 1002,
     "new data frame while a fragmented message is in progress"),
    ("non-minimal-16", frame(BINARY, b"a" * 125, length_bytes=2), 1002,
     "length not in the minimal number of bytes"),
    ("non-minimal-64", frame(BINARY, b"a" * 65535, length_bytes=8), 1002,
     "length not in the minimal number of bytes"),
    ("non-minimal-64-small", frame(BINARY, b"", length_bytes=8), 1002,
     "length not in the minimal number of bytes"),
    ("length-msb", frame(BINARY, length=1 << 63, length_bytes=8), 1002,
     "64-bit length with the most significant bit set"),
    ("invalid-utf8", frame(TEXT, b"\xff"), 1007, "invalid UTF-8 in a text message"),
    ("surrogate", frame(TEXT, b"a\xed\xa0\x80"), 1007, "invalid UTF-8 in a text message"),
    ("truncated-utf8", frame(TEXT, b"\xe2\x82", fin=False) + frame(CONT), 1007,
     "text message ends inside a UTF-8 sequence"),
    ("invalid-utf8-fragment", frame(TEXT, b"a", fin=False) + frame(CONT, b"\xc0\xaf"), 1007,
     "invalid UTF-8 in a text message"),
    ("too-big-frame", frame(BINARY, length=1 << 20, length_bytes=8), 1009, "message too big"),
    ("too-big-message", frame(BINARY, b"a" * 60000, fin=False)
     + frame(CONT, b"a" * 60000, fin=False) + frame(CONT, length=12000), 1009,
     "message too big"),
]


@pytest.mark.parametrize("data, code, reason", [c[1:] for c in BAD_FRAMES],
                         ids=[c[0] for c in BAD_FRAMES])
def test_each_broken_rule_has_its_close_code(impl, data, code, reason):
    got = read_all(impl, [data], max_message_size=2 ** 17)
    assert got[-1] == ("error", code, reason)
    # any split gives the same outcome, and the frames before the bad one come out
    assert read_all(impl, [bytes([b]) for b in data], max_message_size=2 ** 17) == got


def test_a_client_rejects_masked_frames(impl):
    assert read_all(impl, [frame(TEXT, "a")], client=True) == [
        ("error", 1002, "masked frame from a server")]


def test_header_errors_come_before_the_payload_arrives(impl):
    """An oversized or broken frame fails from its header alone (nothing is buffered)."""
    header = frame(BINARY, length=1 << 24, length_bytes=8)[:10]
    assert read_all(impl, [header], max_message_size=1 << 20) == [
        ("error", 1009, "message too big")]
    assert read_all(impl, [frame(PING, b"x" * 126)[:2]]) == [
        ("error", 1002, "control frame payload over 125 bytes")]


def test_the_limit_is_inclusive(impl):
    ok = frame(BINARY, b"a" * 100, fin=False) + frame(CONT, b"a" * 28)
    assert [f[0] for f in read_all(impl, [ok], max_message_size=128)] == [BINARY, CONT]
    assert read_all(impl, [frame(TEXT, "a" * 129)], max_message_size=128)[-1][:2] == (
        "error", 1009)


def test_a_compressed_message_may_take_a_little_more_on_the_wire(impl):
    limit = impl.compressed_wire_limit(1000)
    assert limit == 1000 + 1000 // 1024 + 1024
    at = frame(BINARY, b"a" * limit, rsv=1)
    assert read_all(impl, [at], max_message_size=1000, rsv1=True)[0][:3] == (BINARY, True, True)
    over = frame(BINARY, b"a" * (limit + 1), rsv=1)
    assert read_all(impl, [over], max_message_size=1000, rsv1=True) == [
        ("error", 1009, "message too big")]


def test_rsv1_with_deflate_only_on_a_first_data_frame(impl):
    ok = frame(TEXT, b"\xff", rsv=1, fin=False) + frame(CONT, b"\xfe")   # not validated
    assert read_all(impl, [ok], rsv1=True) == [(TEXT, False, True, b"\xff"),
                                               (CONT, True, False, b"\xfe")]
    assert read_all(impl, [frame(TEXT, "a", fin=False, rsv=1) + frame(CONT, "b", rsv=1)],
                    rsv1=True)[-1] == ("error", 1002, "RSV1 set on a continuation frame")
    assert read_all(impl, [frame(PING, rsv=1)], rsv1=True) == [
        ("error", 1002, "RSV1 set on a control frame")]


def test_the_reader_stays_failed(impl):
    reader = impl.FrameReader()
    reader.feed(frame(3))
    with pytest.raises(FrameError):
        reader.next_frame()
    reader.feed(frame(TEXT, "fine"))
    with pytest.raises(FrameError) as info:
        list(reader)
    assert info.value.code == 1002


def test_max_message_size_cannot_be_negative(impl):
    with pytest.raises(ValueError):
        impl.FrameReader(-1)


# -- UTF-8: fail fast ------------------------------------------------------------------------
def test_a_text_frame_fails_as_soon_as_its_arrived_bytes_cannot_be_utf8(impl):
    """Autobahn 6.4.3/6.4.4: one frame in chops; the chop with the bad byte fails at once."""
    data = frame(TEXT, "κόσμε".encode() + b"\xf4\x90\x80\x80" + b"edited")
    reader = impl.FrameReader()
    bad_at = 6 + len("κόσμε".encode()) + 2      # the header, "κόσμε", then F4 90
    reader.feed(data[:bad_at - 1])
    assert reader.next_frame() is None
    reader.feed(data[bad_at - 1:bad_at])
    with pytest.raises(FrameError) as info:
        reader.next_frame()
    assert info.value.code == 1007


def test_partial_validation_spans_fragments_and_chops(impl):
    text = "añ€😀" * 3000
    raw = text.encode()
    data = (frame(TEXT, raw[:5001], fin=False) + frame(CONT, raw[5001:20003], fin=False)
            + frame(CONT, raw[20003:]))
    for size in (1, 7, 4096, 5000):
        got = read_all(impl, [data[i:i + size] for i in range(0, len(data), size)])
        assert b"".join(f[3] for f in got) == raw


@given(st.binary(max_size=40), st.lists(st.integers(0, 40), max_size=4))
@SLOW
def test_utf8_validator_agrees_with_cpython(data, points):
    for impl in IMPLS:
        module = impl.values[0]
        v = module.Utf8Validator()
        prefix = b""
        for piece in split(data, points):
            prefix += piece
            assert v.feed(piece) == can_start_utf8(prefix), prefix
        try:
            data.decode("utf-8")
            valid = True
        except UnicodeDecodeError:
            valid = False
        assert v.complete == valid


@given(st.text(max_size=30), st.lists(st.integers(0, 120), max_size=5))
@SLOW
def test_valid_text_is_valid_in_any_split(text, points):
    raw = text.encode()
    for impl in IMPLS:
        v = impl.values[0].Utf8Validator()
        assert all(v.feed(piece) for piece in split(raw, points))
        assert v.complete


def test_every_short_sequence_against_cpython(impl):
    """All 1- and 2-byte inputs, and the 3- and 4-byte ones whose lead byte starts a
    multi-byte character (second byte in every range): feed and complete as CPython says."""
    def check(b: bytes) -> None:
        v = impl.Utf8Validator()
        assert v.feed(b) == can_start_utf8(b), b
        try:
            b.decode("utf-8")
            ok = True
        except UnicodeDecodeError:
            ok = False
        assert v.complete == ok, b
    for i in range(256):
        check(bytes([i]))
        for j in range(256):
            check(bytes([i, j]))
    for lead in range(0xE0, 0xF8):
        for second in range(0x80, 0xC0, 3):
            for third in range(0x70, 0xD0, 5):
                check(bytes([lead, second, third]))
                if lead >= 0xF0:
                    check(bytes([lead, second, 0x80, third]))


def test_validator_reset_and_sticky_failure(impl):
    v = impl.Utf8Validator()
    assert not v.feed(b"\xc0")
    assert not v.feed(b"a") and not v.complete
    v.reset()
    assert v.feed(bytearray(b"\xe2\x82")) and not v.complete
    assert v.feed(memoryview(b"\xac")) and v.complete


# -- building and masking --------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 125, 126, 65535, 65536])
def test_build_frame_matches_the_hand_made_frame(impl, n):
    payload = bytes(range(256)) * (n // 256) + bytes(range(n % 256))
    assert impl.build_frame(BINARY, payload) == frame(BINARY, payload, mask=None)
    assert impl.build_frame(BINARY, payload, mask=MASK) == frame(BINARY, payload)
    assert impl.build_frame(CONT, payload, fin=False, rsv1=True) == frame(
        CONT, payload, fin=False, rsv=1, mask=None)
    assert impl.build_frame(TEXT, "é" * n) == frame(TEXT, "é" * n, mask=None)


def test_build_frame_refuses_what_cannot_be_encoded(impl):
    with pytest.raises(ValueError):
        impl.build_frame(16, b"")
    with pytest.raises(ValueError):
        impl.build_frame(-1, b"")
    with pytest.raises(ValueError):
        impl.build_frame(TEXT, b"", mask=b"abc")
    with pytest.raises(ValueError):
        impl.apply_mask(b"abc", b"12345")


@given(st.binary(max_size=100), st.binary(min_size=4, max_size=4))
@settings(max_examples=200, deadline=None)
def test_apply_mask_is_the_xor_of_the_repeated_key(data, key):
    expected = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    for impl in IMPLS:
        module = impl.values[0]
        assert module.apply_mask(data, key) == expected
        assert module.apply_mask(module.apply_mask(data, key), key) == data


# -- differential: the websockets library, and compiled vs pure ------------------------------
def websockets_parse(data: bytes, mask: bool = True) -> list[tuple[int, bool, bool, bytes]]:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    out = []
    while True:
        parser = Frame.parse(reader.read_exact, mask=mask)
        try:
            next(parser)
        except StopIteration as done:
            f = done.value
            out.append((int(f.opcode), f.fin, f.rsv1, bytes(f.data)))
            continue
        except EOFError:
            return out
        return out


frames_strategy = st.lists(st.tuples(
    st.sampled_from([TEXT, BINARY, PING, PONG, CLOSE]),
    st.one_of(st.binary(max_size=300), st.binary(max_size=300),
              st.builds(lambda n, b: bytes([b, b ^ 0x5A]) * n, st.integers(32765, 32770),
                        st.integers(0, 255))),
    st.binary(min_size=4, max_size=4)), min_size=1, max_size=6)


@given(frames_strategy)
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_websockets_and_we_build_and_parse_the_same_frames(specs):
    wire = []
    expected = []
    for opcode, payload, key in specs:
        if opcode >= CLOSE:
            payload = payload[:125]
        if opcode == TEXT:
            payload = payload.decode("latin-1").encode()   # valid UTF-8
        f = Frame(Opcode(opcode), payload)
        ours = [impl.values[0].build_frame(opcode, payload, mask=key) for impl in IMPLS]
        # websockets masks with a random key: compare what it parses, and our bytes
        assert websockets_parse(f.serialize(mask=True)) == websockets_parse(ours[0])
        assert all(o == ours[0] for o in ours)
        wire.append(f.serialize(mask=True))
        expected.append((opcode, True, False,
                         payload.decode() if opcode == TEXT else payload))
    data = b"".join(wire)
    assert [(o, fin, r, p.decode() if o == TEXT else p)
            for o, fin, r, p in websockets_parse(data)] == expected
    for impl in IMPLS:
        assert read_all(impl.values[0], [data]) == expected
    for opcode, _, _, payload in expected:
        for impl in IMPLS:
            built = impl.values[0].build_frame(opcode, payload)      # a server's frame
            assert websockets_parse(built, mask=False) == [
                (opcode, True, False, payload.encode() if opcode == TEXT else payload)]


@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=6),
       st.booleans(), st.booleans())
@settings(max_examples=300, deadline=None)
def test_compiled_and_pure_agree_on_any_bytes_and_any_split(data, points, client, rsv1):
    """Arbitrary bytes (mostly invalid) and valid-looking frames with random headers: both
    codecs give the same frames and the same error at the same point."""
    outcomes = [read_all(impl.values[0], split(data, points), client=client, rsv1=rsv1,
                         max_message_size=300) for impl in IMPLS]
    assert all(o == outcomes[0] for o in outcomes)
    assert read_all(IMPLS[0].values[0], [data], client=client, rsv1=rsv1,
                    max_message_size=300) == outcomes[0]


raw_frame = st.builds(
    lambda opcode, payload, fin, rsv, masked: frame(opcode, payload, fin, rsv,
                                                    MASK if masked else None),
    st.sampled_from([CONT, TEXT, BINARY, 3, CLOSE, PING, PONG, 0xB]),
    st.one_of(st.binary(max_size=20), st.text(max_size=10).map(str.encode),
              st.sampled_from([b"\xe2\x82", b"\xac", b"\xed\xa0\x80", b"\xf0\x9f"])),
    st.booleans(), st.sampled_from([0, 0, 0, 1, 2]), st.sampled_from([True, True, False]))


@given(st.lists(raw_frame, max_size=8), st.lists(st.integers(0, 300), max_size=6),
       st.booleans())
@settings(max_examples=400, deadline=None)
def test_compiled_and_pure_agree_on_frame_sequences(frames, points, rsv1):
    data = b"".join(frames)
    outcomes = [read_all(impl.values[0], split(data, points), rsv1=rsv1) for impl in IMPLS]
    assert all(o == outcomes[0] for o in outcomes)
    if not rsv1 and not any(o[0] == "error" for o in outcomes[0]):
        # what we accept, websockets accepts too (it does not check UTF-8 or continuation)
        try:
            theirs = websockets_parse(data)
        except (ProtocolError, PayloadTooBig):
            pytest.fail("websockets rejects frames we accepted")
        assert [(o, fin, p.encode() if isinstance(p, str) else p)
                for o, fin, _, p in outcomes[0]] == [(o, fin, p) for o, fin, _, p in theirs]
