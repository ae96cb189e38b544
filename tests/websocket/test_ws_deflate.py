"""permessage-deflate (RFC 7692): the offer grammar and negotiation, compression against the
``websockets`` library's implementation (both directions, every agreement of Autobahn's case
group 13), Autobahn group 12/13 echoes through the connection (both codec twins), the 8-bit
window, decompression bombs (1009) and corrupt streams (1007)."""
from __future__ import annotations

import os
import zlib

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate as WsDeflate
from websockets.frames import Frame, Opcode

from kyoukai_h2fast.websocket.connection import WebSocketConnection
from kyoukai_h2fast.websocket.deflate import (
    DeflateParameters,
    DeflatePolicy,
    PerMessageDeflate,
    negotiate,
    parse_deflate_params,
    parse_extensions,
)
from kyoukai_h2fast.websocket.errors import FrameError
from kyoukai_h2fast.websocket.events import BytesMessage, ConnectionFailed, TextMessage
from tests.helpers.builds import implementations
from tests.websocket.ws_helpers import BINARY, CLOSE, CONT, TEXT, frame, parse_frames

P = DeflateParameters


@pytest.fixture(params=implementations("websocket"))
def codec(request):
    return request.param


# -- the Sec-WebSocket-Extensions grammar (RFC 6455 §9.1) ------------------------------------
@pytest.mark.parametrize("values, parsed", [
    (["permessage-deflate"], [("permessage-deflate", [])]),
    (["permessage-deflate; client_max_window_bits, permessage-deflate"],
     [("permessage-deflate", [("client_max_window_bits", None)]), ("permessage-deflate", [])]),
    ([b'permessage-deflate ; server_max_window_bits = "10" ;client_no_context_takeover'],
     [("permessage-deflate", [("server_max_window_bits", "10"),
                              ("client_no_context_takeover", None)])]),
    ([" , ,permessage-deflate ,", "x-webkit-deflate-frame"],
     [("permessage-deflate", []), ("x-webkit-deflate-frame", [])]),
    (['foo; bar="b\\az"'], [("foo", [("bar", "baz")])]),
    ([], []),
    ([""], []),
])
def test_the_extension_grammar(values, parsed):
    assert parse_extensions(values) == parsed


@pytest.mark.parametrize("value", [
    "permessage-deflate;", "; x", "a b", 'x; y="1 0"', "x; y=", "x;=1", "x,,y z", 'x; y="1',
    "x; y=1 2", "é", "x; y=@",
])
def test_a_syntax_error_is_a_value_error(value):
    with pytest.raises(ValueError):
        parse_extensions([value])


@pytest.mark.parametrize("params, expected", [
    ([], P()),
    ([("server_no_context_takeover", None), ("client_no_context_takeover", None)],
     P(True, True)),
    ([("server_max_window_bits", "8"), ("client_max_window_bits", None)], P(False, False, 8, True)),
    ([("client_max_window_bits", "15")], P(False, False, None, 15)),
    # declined: unknown, duplicate, a value where none belongs, bad window sizes
    ([("x", None)], None),
    ([("server_no_context_takeover", None), ("server_no_context_takeover", None)], None),
    ([("client_max_window_bits", None), ("client_max_window_bits", "10")], None),
    ([("server_no_context_takeover", "1")], None),
    ([("server_max_window_bits", None)], None),
    ([("server_max_window_bits", "7")], None),
    ([("server_max_window_bits", "16")], None),
    ([("server_max_window_bits", "010")], None),
    ([("client_max_window_bits", "9a")], None),
])
def test_offer_parameters_are_accepted_or_declined(params, expected):
    assert parse_deflate_params(params) == expected


@pytest.mark.parametrize("offers, response", [
    (["permessage-deflate"], "permessage-deflate; server_max_window_bits=12"),
    (["permessage-deflate; client_max_window_bits"],
     "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"),
    (["permessage-deflate; server_max_window_bits=9; client_max_window_bits=14"],
     "permessage-deflate; server_max_window_bits=9; client_max_window_bits=12"),
    (["permessage-deflate; server_no_context_takeover; client_no_context_takeover"],
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
     "server_max_window_bits=12"),
    # the first offer is declined (RFC 7692 §5), the next one taken
    (["permessage-deflate; server_max_window_bits=16, permessage-deflate; "
      "client_no_context_takeover"],
     "permessage-deflate; client_no_context_takeover; server_max_window_bits=12"),
    (["x-webkit-deflate-frame", "permessage-deflate; mystery"], None),
    ([], None),
])
def test_negotiation_with_the_default_policy(offers, response):
    value, pmd = negotiate(offers)
    assert value == response
    assert (pmd is None) == (response is None)


def test_a_policy_of_full_windows_sends_no_window_parameters():
    policy = DeflatePolicy(server_max_window_bits=15, client_max_window_bits=15)
    assert negotiate(["permessage-deflate; client_max_window_bits"], policy)[0] == (
        "permessage-deflate")
    value, pmd = negotiate(["permessage-deflate"],
                           DeflatePolicy(server_no_context_takeover=True,
                                         client_no_context_takeover=True))
    assert value == ("permessage-deflate; server_no_context_takeover; "
                     "client_no_context_takeover; server_max_window_bits=12")


@pytest.mark.parametrize("kwargs", [{"server_max_window_bits": 7},
                                    {"client_max_window_bits": 16}, {"level": 10},
                                    {"mem_level": 0}])
def test_a_policy_out_of_range_is_refused(kwargs):
    with pytest.raises(ValueError):
        DeflatePolicy(**kwargs)


# -- compression against websockets, every agreement of Autobahn group 13 --------------------
OFFERS_13 = {
    "13.1": "permessage-deflate",
    "13.2": "permessage-deflate; client_no_context_takeover",
    "13.3": "permessage-deflate; server_max_window_bits=8",
    "13.4": "permessage-deflate; server_max_window_bits=15",
    "13.5": "permessage-deflate; client_no_context_takeover; server_max_window_bits=8",
    "13.6": "permessage-deflate; client_no_context_takeover; server_max_window_bits=15",
    "13.7": "permessage-deflate; client_no_context_takeover; server_max_window_bits=8, "
            "permessage-deflate; client_no_context_takeover, permessage-deflate",
    "client-8": "permessage-deflate; client_max_window_bits=8; server_no_context_takeover",
}
POLICIES = {"default": DeflatePolicy(),
            "full": DeflatePolicy(server_max_window_bits=15, client_max_window_bits=15),
            "no-takeover": DeflatePolicy(server_no_context_takeover=True,
                                         client_no_context_takeover=True)}
MESSAGES = [b"", b"a", b"Hello, world! " * 3, os.urandom(300), b"\x00" * 5000,
            (b"All work and no play makes Jack a dull boy. " * 400), os.urandom(70000),
            b"Hello, world! " * 3]


def _theirs(params: DeflateParameters) -> WsDeflate:
    """websockets' client side of the agreement (its local window is at least 9 bits)."""
    client_bits = params.client_max_window_bits
    return WsDeflate(params.server_no_context_takeover, params.client_no_context_takeover,
                     params.server_max_window_bits or 15,
                     max(client_bits if type(client_bits) is int else 15, 9))


@pytest.mark.parametrize("policy", list(POLICIES), ids=list(POLICIES))
@pytest.mark.parametrize("offer", list(OFFERS_13), ids=list(OFFERS_13))
def test_our_compression_and_websockets_decode_each_other(offer, policy):
    value, ours = negotiate([OFFERS_13[offer]], POLICIES[policy])
    assert ours is not None
    theirs = _theirs(ours.params)
    for message in MESSAGES:
        compressed = ours.compress(message)
        decoded = theirs.decode(Frame(Opcode.BINARY, compressed, rsv1=True))
        assert decoded.data == message
        sent = theirs.encode(Frame(Opcode.BINARY, message))
        assert sent.rsv1
        assert ours.decompress(sent.data, True, len(message)) == message


def test_context_takeover_makes_a_repeated_message_smaller():
    _, taking = negotiate(["permessage-deflate"])
    _, fresh = negotiate(["permessage-deflate; server_no_context_takeover"])
    message = os.urandom(200) * 2
    assert taking is not None and fresh is not None
    first = taking.compress(message)
    assert len(taking.compress(message)) < len(first) // 4
    assert len(fresh.compress(message)) == len(fresh.compress(message)) == len(first)


def _stream_decode(data: bytes, wbits: int) -> bytes:
    """Decode with a window of ``wbits`` truly in use: output in 64-byte steps, so every
    match must be found in the window, not in an output buffer."""
    d = zlib.decompressobj(wbits=-wbits)
    out = []
    while True:
        chunk = d.decompress(data, 64)
        out.append(chunk)
        data = d.unconsumed_tail
        if not data and not chunk:
            return b"".join(out)


def test_an_8_bit_window_decodes_what_we_compress_for_it():
    """zlib cannot compress raw deflate with 8 bits; the 9-bit window we use never matches
    further back than 250 bytes, so an 8-bit window decodes it (and a 10-bit one would not:
    the check can fail)."""
    data = b"".join(os.urandom(300) * 3 for _ in range(50))
    _, pmd = negotiate(["permessage-deflate; server_max_window_bits=8"])
    assert pmd is not None and pmd.params.server_max_window_bits == 8
    for _ in range(3):
        assert _stream_decode(pmd.compress(data) + b"\x00\x00\xff\xff", 8) == data
    wider = zlib.compressobj(6, zlib.DEFLATED, -10)
    too_far = wider.compress(data) + wider.flush(zlib.Z_SYNC_FLUSH)
    with pytest.raises(zlib.error, match="too far back"):
        _stream_decode(too_far, 8)


def test_we_decompress_with_the_window_we_asked_the_client_for():
    _, pmd = negotiate(["permessage-deflate; client_max_window_bits"])
    assert pmd is not None and pmd.params.client_max_window_bits == 12
    sender = zlib.compressobj(6, zlib.DEFLATED, -12)
    data = os.urandom(3000) * 4
    wire = sender.compress(data) + sender.flush(zlib.Z_SYNC_FLUSH)
    assert pmd.decompress(wire[:-4], True, len(data)) == data
    wide = zlib.compressobj(6, zlib.DEFLATED, -15)
    far_data = os.urandom(5000) * 3
    far = wide.compress(far_data) + wide.flush(zlib.Z_SYNC_FLUSH)
    _, fresh = negotiate(["permessage-deflate; client_max_window_bits"])
    assert fresh is not None
    body = far[:-4]
    pieces = [body[i:i + 64] for i in range(0, len(body), 64)]
    with pytest.raises(FrameError) as info:              # our window is 4 KiB, as agreed
        for i, piece in enumerate(pieces):               # (small steps: the window is used)
            fresh.decompress(piece, i == len(pieces) - 1, 1 << 20)
    assert info.value.code == 1007
    _, full = negotiate(["permessage-deflate"])          # a 32 KiB window decodes it
    assert full is not None
    assert b"".join(full.decompress(piece, i == len(pieces) - 1, 1 << 20)
                    for i, piece in enumerate(pieces)) == far_data


# -- bombs, corruption, streams that end ------------------------------------------------------
def test_a_decompression_bomb_stops_at_the_limit():
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    wire = bomb.compress(b"\x00" * (64 << 20)) + bomb.flush(zlib.Z_SYNC_FLUSH)
    assert len(wire) < 70000
    _, pmd = negotiate(["permessage-deflate"])
    assert pmd is not None
    with pytest.raises(FrameError) as info:
        pmd.decompress(wire[:-4], True, 1 << 20)
    assert (info.value.code, info.value.reason) == (1009, "message too big")


def test_a_zero_limit_still_limits():
    _, pmd = negotiate(["permessage-deflate"])
    assert pmd is not None
    assert pmd.decompress(b"\x02\x00", True, 0) == b""                 # an empty message
    with pytest.raises(FrameError):
        pmd.decompress(PerMessageDeflate(P()).compress(b"x"), True, 0)


def test_a_corrupt_stream_is_1007():
    _, pmd = negotiate(["permessage-deflate"])
    assert pmd is not None
    with pytest.raises(FrameError) as info:
        pmd.decompress(b"\xff\xff\xff\xff", True, 1000)
    assert info.value.code == 1007
    assert pmd.decompress(PerMessageDeflate(P()).compress(b"next"), True, 10) == b"next"


def test_a_final_block_ends_the_context_and_nothing_may_follow_it():
    _, pmd = negotiate(["permessage-deflate"])
    assert pmd is not None
    ending = zlib.compressobj(6, zlib.DEFLATED, -15)
    wire = ending.compress(b"first") + ending.flush(zlib.Z_FINISH)
    assert pmd.decompress(wire, True, 100) == b"first"
    fresh = zlib.compressobj(6, zlib.DEFLATED, -15)
    assert pmd.decompress((fresh.compress(b"second") + fresh.flush(zlib.Z_SYNC_FLUSH))[:-4],
                          True, 100) == b"second"
    with pytest.raises(FrameError) as info:
        pmd.decompress(wire + b"\x01\x02", True, 100)
    assert info.value.code == 1007


# -- through the connection: Autobahn group 12 and 13 echoes ---------------------------------
def _pair(codec, offer: str, policy: DeflatePolicy, **kwargs):
    value, ours = negotiate([offer], policy)
    assert ours is not None
    server = WebSocketConnection(codec=codec, deflate=ours, **kwargs)
    client = WebSocketConnection(codec=codec, client=True,
                                 deflate=PerMessageDeflate(ours.params, client=True))
    return server, client, _theirs(ours.params)


SIZES_12 = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072]


@pytest.mark.parametrize("offer", list(OFFERS_13), ids=list(OFFERS_13))
def test_12_and_13_echo_compressed_messages(codec, offer):
    server, client, reference = _pair(codec, OFFERS_13[offer], DeflatePolicy())
    text = ("Hello-µ@ßöäüàá-UTF-8!! " * 6000)
    for size in SIZES_12:
        for message in (text[:size], os.urandom(size)):
            sent = client.send_text(message) if isinstance(message, str) else (
                client.send_bytes(message))
            assert sent[0] & 0x40                      # RSV1: compressed
            events = server.receive(sent)
            assert len(events) == 1 and events[0].data == message
            echo = (server.send_text(message) if isinstance(message, str)
                    else server.send_bytes(message))
            (opcode, payload), = parse_frames(echo)
            assert opcode == (TEXT if isinstance(message, str) else BINARY) | 0x40
            decoded = reference.decode(Frame(Opcode(opcode & 0xF), payload, rsv1=True)).data
            assert decoded == (message.encode() if isinstance(message, str) else message)
            assert client.receive(echo)[0].data == message


def test_compressed_fragments_and_plain_messages_mix(codec):
    server, _, reference = _pair(codec, "permessage-deflate", DeflatePolicy())
    text = "fragmented and compressed é " * 200
    wire = reference.encode(Frame(Opcode.TEXT, text.encode())).data
    data = (frame(TEXT, wire[:10], rsv=1, fin=False) + frame(CONT, wire[10:50], fin=False)
            + frame(CONT, wire[50:]) + frame(BINARY, b"not compressed"))
    assert server.receive(data) == [TextMessage(text), BytesMessage(b"not compressed")]


def test_invalid_utf8_in_compressed_text_fails_fast(codec):
    server, _, _ = _pair(codec, "permessage-deflate", DeflatePolicy())
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    first = compressor.compress(b"valid start ") + compressor.flush(zlib.Z_SYNC_FLUSH)
    second = compressor.compress(b"\xed\xa0\x80 surrogate") + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert server.receive(frame(TEXT, first, rsv=1, fin=False)) == []
    assert server.receive(frame(CONT, second, fin=False)) == [
        ConnectionFailed(1007, "invalid UTF-8 in a text message")]
    truncated, _, _ = _pair(codec, "permessage-deflate", DeflatePolicy())
    cut = zlib.compressobj(6, zlib.DEFLATED, -15)
    wire = cut.compress(b"ends inside \xe2\x82") + cut.flush(zlib.Z_SYNC_FLUSH)
    assert truncated.receive(frame(TEXT, wire[:-4], rsv=1)) == [
        ConnectionFailed(1007, "text message ends inside a UTF-8 sequence")]


def test_a_compressed_message_over_the_limit_fails_1009_over_its_fragments(codec):
    server, client, _ = _pair(codec, "permessage-deflate", DeflatePolicy(),
                              max_message_size=100000)
    assert server.receive(client.send_bytes(b"\x00" * 100000)) == [BytesMessage(b"\x00" * 100000)]
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    part = compressor.compress(b"\x00" * 60000) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert server.receive(frame(BINARY, part, rsv=1, fin=False)) == []
    events = server.receive(frame(CONT, part, fin=False))
    assert events == [ConnectionFailed(1009, "message too big")]
    assert parse_frames(server.data_to_send())[0][0] == CLOSE


def test_a_bomb_through_the_connection(codec):
    server, _, _ = _pair(codec, "permessage-deflate", DeflatePolicy(), max_message_size=1 << 20)
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    wire = bomb.compress(b"\x00" * (32 << 20)) + bomb.flush(zlib.Z_SYNC_FLUSH)
    assert server.receive(frame(BINARY, wire[:-4], rsv=1)) == [
        ConnectionFailed(1009, "message too big")]
