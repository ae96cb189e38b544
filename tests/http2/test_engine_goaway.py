"""GOAWAY both ways, in memory (RFC 9113 §6.8, §5.4.1).

The peer's GOAWAY is reported and leaves the connection usable so streams in flight finish; ours
refuses new streams above its last stream id (after decoding their field blocks, so HPACK stays
in sync) and lets the others finish; a connection error sends GOAWAY with its code and closes the
engine.
"""
from __future__ import annotations

import gc
import sys

import pytest
from hyperframe.frame import DataFrame, GoAwayFrame

from kyoukai_h2fast.constants import ErrorCode
from kyoukai_h2fast.errors import ConnectionFailed
from kyoukai_h2fast.http2.events import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    ResponseSent,
)
from tests.helpers.engine_frames import ENGINE_PARAMS, Peer

pytestmark = pytest.mark.parametrize("engine_cls", ENGINE_PARAMS)


@pytest.mark.parametrize("code,debug", [(0, b""), (ErrorCode.ENHANCE_YOUR_CALM, b"calm down")])
def test_peer_goaway_is_reported_and_streams_in_flight_finish_6_8(engine_cls, code, debug):
    peer = Peer(engine_cls)
    peer.open(1, method="POST", end_stream=False)
    events = peer.recv(peer.ff.goaway(1, code, debug))
    assert events == [ConnectionTerminated(code, 1, debug or None)]
    assert peer.recv(peer.ff.data(1, b"body", end_stream=True)) == [
        DataReceived(1, b"body", 4, True)]
    assert peer.respond(1, b"answer")
    frames = peer.take()
    assert [f.data for f in frames if isinstance(f, DataFrame)] == [b"answer"]
    assert peer.send_events() == [ResponseSent(1, True)]


def test_our_goaway_refuses_newer_streams_and_keeps_hpack_in_sync_6_8(engine_cls):
    peer = Peer(engine_cls)
    peer.open(1, end_stream=False)
    assert peer.engine.goaway(0) == 1
    frames = peer.take()
    assert [(f.last_stream_id, f.error_code) for f in frames if isinstance(f, GoAwayFrame)] == \
        [(1, 0)]
    # Stream 3 is refused; its block adds "x-new" to the peer's table ...
    assert peer.open(3, extra=[("x-new", "1")]) == []
    assert peer.rst_codes(peer.take(), 3) == [ErrorCode.REFUSED_STREAM]
    # ... and stream 1's trailers refer to it: decodable only if we decoded stream 3's block.
    events = peer.recv(peer.ff.headers(1, [("x-new", "1")], end_stream=True))
    assert [type(e).__name__ for e in events] == ["TrailersReceived"]
    assert events[0].headers == [(b"x-new", b"1")]
    assert peer.respond(1, b"ok")


def test_goaway_with_an_explicit_last_stream_id_6_8(engine_cls):
    peer = Peer(engine_cls)
    assert peer.engine.goaway(0, b"", 5) == 5
    assert [type(e) for e in peer.open(3)] == [RequestReceived]
    assert [type(e) for e in peer.open(5)] == [RequestReceived]
    assert peer.open(7) == []
    assert peer.rst_codes(peer.take(), 7) == [ErrorCode.REFUSED_STREAM]


def test_goaway_carries_its_debug_data_6_8(engine_cls):
    peer = Peer(engine_cls)
    peer.engine.goaway(ErrorCode.INTERNAL_ERROR, b"internal error")
    (goaway,) = [f for f in peer.take() if isinstance(f, GoAwayFrame)]
    assert (goaway.error_code, goaway.additional_data) == (ErrorCode.INTERNAL_ERROR,
                                                           b"internal error")


def test_a_later_goaway_never_raises_the_last_stream_id_6_8(engine_cls):
    """§6.8: "Endpoints MUST NOT increase the value they send in the last stream identifier"
    (a refused stream 3 raised the highest id seen meanwhile)."""
    peer = Peer(engine_cls)
    peer.open(1, end_stream=False)
    assert peer.engine.goaway(0) == 1
    peer.open(3)
    assert peer.engine.goaway(ErrorCode.INTERNAL_ERROR) == 1
    lasts = [f.last_stream_id for f in peer.take() if isinstance(f, GoAwayFrame)]
    assert lasts == [1, 1]


def test_a_connection_error_sends_goaway_with_the_highest_stream_and_closes_5_4_1(engine_cls):
    peer = Peer(engine_cls)
    peer.open(1)
    peer.open(5)
    assert peer.recv_error(peer.ff.data(7, b"x")) == ErrorCode.PROTOCOL_ERROR
    assert [f.last_stream_id for f in peer.frames if isinstance(f, GoAwayFrame)] == [5]
    # Closed: every call is ignored from now on.
    assert peer.engine.receive(peer.ff.request(9)) == []
    assert not peer.respond(1, b"late")
    assert peer.engine.queue_data(5, b"x", True) is False
    peer.engine.reset_stream(5, 0)
    peer.engine.acknowledge(1, 100)
    peer.engine.stop_reading(1, 0)
    peer.engine.set_priority(1, 0, False)
    peer.engine.goaway(0)
    assert peer.engine.data_to_send() == b""
    assert not peer.engine.wants_write
    assert peer.engine.queued_total == 0


def test_a_connection_error_lets_go_of_the_received_bytes_5_4_1(engine_cls):
    """The read that failed the connection (and whatever followed the bad frame in it) is not
    kept alive by the closed engine."""
    peer = Peer(engine_cls)
    peer.open(1, end_stream=False)
    read = peer.ff.data(7, b"x") + peer.ff.ping() * 1000        # the DATA is an error
    before = sys.getrefcount(read)
    code = None
    try:
        peer.engine.receive(read)
    except ConnectionFailed as e:
        code = e.error_code
    assert code == ErrorCode.PROTOCOL_ERROR
    gc.collect()
    assert sys.getrefcount(read) == before


def test_highest_stream_id_is_the_default_last_stream_id_and_counts_requests(engine_cls):
    """``highest_stream_id``: what GOAWAY names by default, read to count a connection's
    requests ((id + 1) // 2) without counting per request; refused streams count too."""
    peer = Peer(engine_cls)
    assert peer.engine.highest_stream_id == 0
    for sid in (1, 3, 7):
        peer.open(sid)
        assert peer.engine.highest_stream_id == sid
    assert peer.engine.goaway(0) == 7
    assert peer.open(9) == []  # refused
    assert peer.engine.highest_stream_id == 9
    assert (peer.engine.highest_stream_id + 1) // 2 == 5
