"""RFC 9113 §6.7 PINGs the server sends (keep-alive), in memory, on both engines: ``send_ping``
queues a PING with our opaque data, the peer's ACK comes back as ``PingAcknowledged``, the
peer's own PINGs are still answered, and the calls of a closed engine are ignored.
"""
from __future__ import annotations

import pytest
from hyperframe.frame import GoAwayFrame, PingFrame

from kyoukai_h2fast.http2.events import PingAcknowledged, RequestReceived
from tests.helpers.engine_frames import ENGINE_PARAMS, Peer

pytestmark = pytest.mark.parametrize("engine_cls", ENGINE_PARAMS)


def _pings(frames) -> list:
    return [(f.opaque_data, "ACK" in f.flags) for f in frames if isinstance(f, PingFrame)]


def test_send_ping_queues_a_ping_with_our_opaque_data(engine_cls):
    peer = Peer(engine_cls)
    assert not peer.engine.wants_write
    peer.engine.send_ping(b"ka\x00\x00\x00\x00\x00\x01")
    assert peer.engine.wants_write
    assert _pings(peer.take()) == [(b"ka\x00\x00\x00\x00\x00\x01", False)]


def test_the_peers_ack_is_reported_with_its_data(engine_cls):
    peer = Peer(engine_cls)
    peer.engine.send_ping(b"abcdefgh")
    peer.take()
    assert peer.recv(peer.ff.ping(b"abcdefgh", ack=True)) == [PingAcknowledged(b"abcdefgh")]
    # an ACK we never asked for is reported too (the protocol compares the data); no reply
    assert peer.recv(peer.ff.ping(b"unasked!", ack=True)) == [PingAcknowledged(b"unasked!")]
    assert _pings(peer.take()) == []


def test_the_peers_own_ping_is_answered_and_not_reported(engine_cls):
    peer = Peer(engine_cls)
    assert peer.recv(peer.ff.ping(b"client!!")) == []
    assert _pings(peer.take()) == [(b"client!!", True)]


def test_an_ack_between_requests_keeps_the_event_order(engine_cls):
    peer = Peer(engine_cls)
    peer.engine.send_ping(b"12345678")
    peer.take()
    events = peer.recv(peer.ff.request(1) + peer.ff.ping(b"12345678", ack=True)
                       + peer.ff.request(3))
    assert [type(e) for e in events] == [RequestReceived, PingAcknowledged, RequestReceived]


@pytest.mark.parametrize("data", [b"", b"1234567", b"123456789", "12345678", bytearray(8)])
def test_opaque_data_must_be_eight_bytes(engine_cls, data):
    peer = Peer(engine_cls)
    with pytest.raises(ValueError):
        peer.engine.send_ping(data)
    assert _pings(peer.take()) == []


def test_send_ping_after_a_connection_error_is_ignored(engine_cls):
    peer = Peer(engine_cls)
    peer.recv_error(peer.ff.window_update(0, 0))  # PROTOCOL_ERROR: the engine is closed
    peer.engine.send_ping(b"12345678")
    assert _pings(peer.take()) == []


def test_send_ping_after_our_goaway_still_goes_out(engine_cls):
    """A graceful GOAWAY leaves the connection open for its streams: PINGs still work."""
    peer = Peer(engine_cls)
    peer.engine.goaway(0)
    peer.engine.send_ping(b"after-ga")
    frames = peer.take()
    assert isinstance(frames[0], GoAwayFrame)
    assert _pings(frames) == [(b"after-ga", False)]
    assert peer.recv(peer.ff.ping(b"after-ga", ack=True)) == [PingAcknowledged(b"after-ga")]
