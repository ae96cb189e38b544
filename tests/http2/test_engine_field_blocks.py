"""Requests and trailers as field blocks, in memory (RFC 9113 §4.3, §5.1.1, §5.1.2, §6.2,
§6.10, §8.1, §8.2, §8.3; RFC 7541).

A field block (HEADERS + CONTINUATIONs) is always decoded, so HPACK state stays in sync even
for streams that are refused or reset; a request is validated field by field while decoding.
Malformed requests and content-length mismatches are stream errors PROTOCOL_ERROR (§8.1.1);
HPACK failures are connection errors COMPRESSION_ERROR (§4.3); a header list over our limit is
ENHANCE_YOUR_CALM (§10.5.1); other frames inside a block, and CONTINUATION outside one, are
connection errors PROTOCOL_ERROR (§6.10).
"""
from __future__ import annotations

import pytest

from kyoukai_h2fast.config import ServerConfig
from kyoukai_h2fast.constants import ErrorCode, Flag, FrameType
from kyoukai_h2fast.errors import ConnectionFailed
from kyoukai_h2fast.http2.events import DataReceived, RequestReceived, StreamReset, TrailersReceived
from tests.helpers.engine_frames import ENGINE_PARAMS, Peer, raw_frame, request_headers

pytestmark = pytest.mark.parametrize("engine_cls", ENGINE_PARAMS)

PROTOCOL_ERROR = ErrorCode.PROTOCOL_ERROR


def test_request_is_reported_with_its_decoded_fields_8_3(engine_cls):
    peer = Peer(engine_cls)
    fields = request_headers("/p?q=1", "POST", extra=[("content-length", "5"),
                                                      ("user-agent", "t")])
    events = peer.recv(peer.ff.headers(1, fields))
    expected = [(n.encode(), v.encode()) for n, v in fields]
    assert events == [RequestReceived(1, expected, False, 5)]
    assert all(isinstance(f, tuple) and len(f) == 2 and type(f[0]) is bytes
               and type(f[1]) is bytes for f in events[0].headers)
    # The same block again (now from the dynamic table) decodes the same.
    events = peer.recv(peer.ff.headers(3, fields, end_stream=False))
    assert events == [RequestReceived(3, expected, False, 5)]


def test_a_field_block_split_over_continuation_frames_is_one_request_6_10(engine_cls):
    peer = Peer(engine_cls)
    fields = request_headers(extra=[(f"x-{i}", "v" * 50) for i in range(20)])
    block = peer.ff.block(fields)
    parts = [block[i:i + 100] for i in range(0, len(block), 100)]
    wire = peer.ff.headers_block(1, parts[0], end_stream=True, end_headers=False)
    wire += b"".join(peer.ff.continuation(1, p, end_headers=False) for p in parts[1:-1])
    wire += peer.ff.continuation(1, parts[-1], end_headers=True)
    events = []
    for i in range(0, len(wire), 37):       # delivered in small pieces
        events += peer.recv(wire[i:i + 37])
    assert events == [RequestReceived(1, [(n.encode(), v.encode()) for n, v in fields],
                                      True, -1)]


@pytest.mark.parametrize("name,build", [
    ("ping-inside-block", lambda ff, b: ff.headers_block(1, b, True, False) + ff.ping()
     + ff.continuation(1, b"")),
    ("unknown-frame-inside-block", lambda ff, b: ff.headers_block(1, b, True, False)
     + raw_frame(0xFA, 0, 1, b"x") + ff.continuation(1, b"")),
    ("continuation-on-another-stream", lambda ff, b: ff.headers_block(1, b, True, False)
     + ff.continuation(3, b"")),
    ("continuation-without-a-block", lambda ff, b: ff.continuation(1, b)),
    ("continuation-after-a-complete-block", lambda ff, b: ff.headers_block(1, b, True)
     + ff.continuation(1, b"")),
])
def test_a_field_block_is_contiguous_6_10(engine_cls, name, build):
    peer = Peer(engine_cls)
    block = peer.ff.block(request_headers())
    with pytest.raises(ConnectionFailed):
        peer.recv(build(peer.ff, block))
    assert peer.error is not None and peer.error.error_code == PROTOCOL_ERROR


def test_more_than_64_frames_in_one_field_block_is_a_protocol_error(engine_cls):
    peer = Peer(engine_cls)
    wire = peer.ff.headers_block(1, b"", True, False)
    wire += b"".join(peer.ff.continuation(1, b"", False) for _ in range(70))
    assert peer.recv_error(wire) == PROTOCOL_ERROR


def test_a_field_block_larger_than_the_header_list_limit_is_cut_10_5_1(engine_cls):
    peer = Peer(engine_cls, ServerConfig(max_header_list_size=4096))
    wire = peer.ff.headers_block(1, b"", True, False)
    wire += b"".join(peer.ff.continuation(1, b"\x00" * 1000, False) for _ in range(6))
    assert peer.recv_error(wire) == ErrorCode.ENHANCE_YOUR_CALM


def test_a_header_list_over_our_limit_is_enhance_your_calm_10_5_1(engine_cls):
    peer = Peer(engine_cls, ServerConfig(max_header_list_size=4096))
    fields = request_headers(extra=[("x-big", "v" * 5000)])
    assert peer.recv_error(peer.ff.headers(1, fields, True)) == ErrorCode.ENHANCE_YOUR_CALM


def test_an_hpack_bomb_is_cut_by_the_decoded_size_10_5_1(engine_cls):
    """One indexed field repeated: a small block that would decode far over the limit."""
    peer = Peer(engine_cls, ServerConfig(max_header_list_size=4096))
    peer.open(1, extra=[("x-bomb", "b" * 1000)])         # "x-bomb" now at index 62
    assert peer.recv_error(peer.ff.headers_block(3, peer.ff.block(request_headers())
                                                 + b"\xbe" * 10, True)) == \
        ErrorCode.ENHANCE_YOUR_CALM


@pytest.mark.parametrize("block", [b"\x80", b"\xbf", b"\x00\x05ab", b"\x3f\xe2\x1f\x82",
                                   b"\x82\x3f\xe1\x1f"],
                         ids=["index-0", "index-past-tables", "truncated-literal",
                              "table-size-over-setting", "table-size-update-after-a-field"])
def test_undecodable_field_blocks_are_compression_errors_4_3(engine_cls, block):
    peer = Peer(engine_cls)
    assert peer.recv_error(peer.ff.headers_block(1, block, True)) == ErrorCode.COMPRESSION_ERROR


MALFORMED = {
    "uppercase-name": request_headers(extra=[("X-Up", "1")]),
    "connection-header": request_headers(extra=[("connection", "keep-alive")]),
    "te-not-trailers": request_headers(extra=[("te", "gzip")]),
    "missing-method": [(":path", "/"), (":scheme", "https"), (":authority", "a")],
    "missing-path": [(":method", "GET"), (":scheme", "https"), (":authority", "a")],
    "pseudo-after-regular": [("x-a", "1")] + request_headers(),
    "duplicate-path": request_headers() + [(":path", "/again")],
    "unknown-pseudo": request_headers() + [(":foo", "bar")],
    "status-in-request": request_headers() + [(":status", "200")],
    "bad-content-length": request_headers(extra=[("content-length", "12a")]),
    "conflicting-content-length": request_headers(extra=[("content-length", "1"),
                                                         ("content-length", "2")]),
    "value-with-newline": request_headers(extra=[("x-a", "a\nb")]),
    "empty-path": [(":method", "GET"), (":path", ""), (":scheme", "https"), (":authority", "a")],
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_request_is_a_stream_error_and_hpack_stays_in_sync_8_1_1(engine_cls, name):
    peer = Peer(engine_cls)
    assert peer.recv(peer.ff.headers(1, MALFORMED[name] + [("x-after", "z")], True)) == []
    assert peer.rst_codes(peer.take(), 1) == [PROTOCOL_ERROR]
    # The next request refers to dynamic-table entries the malformed block added.
    fields = request_headers(extra=[("x-after", "z")])
    assert peer.recv(peer.ff.headers(3, fields, True)) == [
        RequestReceived(3, [(n.encode(), v.encode()) for n, v in fields], True, -1)]


def test_end_stream_with_a_positive_content_length_is_malformed_8_1_1(engine_cls):
    peer = Peer(engine_cls)
    assert peer.open(1, extra=[("content-length", "3")]) == []
    assert peer.rst_codes(peer.take(), 1) == [PROTOCOL_ERROR]
    assert [type(e) for e in peer.open(3, extra=[("content-length", "0")])] == [RequestReceived]


@pytest.mark.parametrize("sizes,end_on_data", [([3, 3], True), ([2], True), ([5], False)],
                         ids=["longer", "shorter-at-end", "longer-in-one-frame"])
def test_a_body_not_matching_content_length_is_a_stream_error_8_1_1(engine_cls, sizes,
                                                                    end_on_data):
    peer = Peer(engine_cls)
    peer.open(1, method="POST", end_stream=False, extra=[("content-length", "4")])
    events = []
    for i, size in enumerate(sizes):
        events += peer.recv(peer.ff.data(1, b"b" * size,
                                         end_stream=end_on_data and i == len(sizes) - 1))
    assert events[-1] == StreamReset(1, PROTOCOL_ERROR, False)
    assert events[-1].reason.startswith("content-length mismatch")   # the log says why
    assert peer.rst_codes(peer.take(), 1) == [PROTOCOL_ERROR]
    assert peer.recv(peer.ff.data(1, b"late")) == []      # we reset it: ignored (§5.1)


def test_a_body_matching_content_length_is_received(engine_cls):
    peer = Peer(engine_cls)
    peer.open(1, method="POST", end_stream=False, extra=[("content-length", "4")])
    assert peer.recv(peer.ff.data(1, b"ab"), peer.ff.data(1, b"cd", end_stream=True)) == [
        DataReceived(1, b"ab", 2, False), DataReceived(1, b"cd", 2, True)]


def test_trailers_end_the_request_8_1(engine_cls):
    peer = Peer(engine_cls)
    peer.open(1, method="POST", end_stream=False, extra=[("content-length", "4")])
    peer.recv(peer.ff.data(1, b"abcd"))
    events = peer.recv(peer.ff.headers(1, [("x-checksum", "42")], end_stream=True))
    assert events == [TrailersReceived(1, [(b"x-checksum", b"42")])]
    assert peer.respond(1, b"ok")


@pytest.mark.parametrize("trailers,end_stream,body", [
    ([("x-t", "1")], False, b"abcd"),              # trailers must end the stream (§8.1)
    ([(":path", "/")], True, b"abcd"),             # no pseudo-headers in trailers
    ([("x-t", "1")], True, b"ab"),                 # content-length 4, 2 bytes before them
], ids=["without-end-stream", "pseudo-header", "content-length-mismatch"])
def test_bad_trailers_are_a_stream_error_8_1(engine_cls, trailers, end_stream, body):
    peer = Peer(engine_cls)
    peer.open(1, method="POST", end_stream=False, extra=[("content-length", "4")])
    peer.recv(peer.ff.data(1, body))
    events = peer.recv(peer.ff.headers(1, trailers, end_stream=end_stream))
    assert events == [StreamReset(1, PROTOCOL_ERROR, False)]
    assert peer.rst_codes(peer.take(), 1) == [PROTOCOL_ERROR]


def test_streams_over_the_concurrency_limit_are_refused_after_decoding_5_1_2(engine_cls):
    peer = Peer(engine_cls, ServerConfig(max_concurrent_streams=2))
    assert len(peer.open(1, end_stream=False) + peer.open(3, end_stream=False)) == 2
    assert peer.open(5, extra=[("x-five", "5")]) == []
    assert peer.rst_codes(peer.take(), 5) == [ErrorCode.REFUSED_STREAM]
    assert peer.recv(peer.ff.data(5, b"late")) == []     # refused = reset by us: ignored
    assert peer.respond(1, b"done")                      # stream 1 ends ...
    peer.recv(peer.ff.data(1, b"", end_stream=True))
    peer.take()
    events = peer.open(7, extra=[("x-five", "5")])       # ... so 7 fits; HPACK in sync
    assert [type(e) for e in events] == [RequestReceived]
    assert (b"x-five", b"5") in events[0].headers


def test_client_stream_ids_are_odd_and_increasing_5_1_1(engine_cls):
    peer = Peer(engine_cls)
    assert peer.recv_error(peer.ff.request(2)) == PROTOCOL_ERROR
    peer = Peer(engine_cls)
    peer.open(9)
    assert peer.recv_error(peer.ff.request(5)) == PROTOCOL_ERROR


def test_headers_on_a_stream_closed_normally_is_a_connection_error_5_1(engine_cls):
    peer = Peer(engine_cls)
    peer.open(1)
    assert peer.respond(1, b"done")
    peer.take()
    assert peer.recv_error(peer.ff.request(1)) == ErrorCode.STREAM_CLOSED


def test_priority_frames_are_ignored_5_3_2(engine_cls):
    peer = Peer(engine_cls)
    peer.open(1)
    assert peer.respond(1)
    peer.open(3, end_stream=False)
    peer.take()
    for target in (1, 3, 11):           # closed, open, idle
        assert peer.recv(peer.ff.priority(target, depends_on=0, weight=200)) == []
    assert [type(e) for e in peer.recv(peer.ff.request(5, priority=(3, 10, True)))] == \
        [RequestReceived]
    assert peer.take() == []


def test_a_stream_depending_on_itself_is_a_stream_error_5_3_1(engine_cls):
    peer = Peer(engine_cls)
    peer.open(1, end_stream=False)
    assert peer.recv(peer.ff.priority(1, depends_on=1)) == [
        StreamReset(1, PROTOCOL_ERROR, False)]
    assert peer.open(3, priority=(3, 15, False)) == []           # a new stream: no event
    frames = peer.take()
    assert peer.rst_codes(frames, 1) == [PROTOCOL_ERROR]
    assert peer.rst_codes(frames, 3) == [PROTOCOL_ERROR]
    assert [type(e) for e in peer.open(5)] == [RequestReceived]


def test_push_promise_from_a_client_is_a_protocol_error_8_4(engine_cls):
    peer = Peer(engine_cls)
    peer.open(1, end_stream=False)
    assert peer.recv_error(peer.ff.push_promise(1, 2, request_headers())) == PROTOCOL_ERROR


@pytest.mark.parametrize("ftype", [0xA, 0xFA])
def test_unknown_and_ignored_frame_types_are_ignored_5_5(engine_cls, ftype):
    """ALTSVC (RFC 7838, 0xA, client-bound) included (PRIORITY_UPDATE, 0x10, is read:
    test_engine_priorities.py)."""
    peer = Peer(engine_cls)
    peer.open(1, method="POST", end_stream=False)
    payload = b"\x00\x00anything"
    for sid in (0, 1, 3):
        assert peer.recv(raw_frame(ftype, 0xFF, sid, payload)) == []
    assert peer.recv(peer.ff.data(1, b"x", end_stream=True)) == [DataReceived(1, b"x", 1, True)]
    assert peer.take() == []


def test_padded_headers_with_priority_fields_are_accepted_6_2(engine_cls):
    peer = Peer(engine_cls)
    events = peer.recv(peer.ff.request(1, priority=(0, 15, False), pad_length=7))
    assert [type(e) for e in events] == [RequestReceived]


def test_headers_padding_over_the_block_is_a_protocol_error_6_2(engine_cls):
    peer = Peer(engine_cls)
    frame = raw_frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM | Flag.PADDED
                      | Flag.PRIORITY, 1, b"\x05" + b"\x00\x00\x00\x00\x0f" + b"\x82")
    assert peer.recv_error(frame) == PROTOCOL_ERROR


def test_data_over_our_max_frame_size_is_a_frame_size_error_4_2(engine_cls):
    peer = Peer(engine_cls)
    peer.open(1, method="POST", end_stream=False)
    peer.recv(peer.ff.data(1, b"a" * 16_384))
    assert peer.recv_error(peer.ff.data(1, b"b" * 16_385)) == ErrorCode.FRAME_SIZE_ERROR
