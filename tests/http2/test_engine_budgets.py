"""The flood budgets of the connection engine (RFC 9113 §10.5), in memory, over both engines.

Each budget of ``ServerConfig`` is crossed by the frames it is meant for (a connection error
ENHANCE_YOUR_CALM, with the GOAWAY debug data naming the budget), and not by the same frames
spread over more than 10 seconds, or by frames that carry progress. The clock is
``time.monotonic``, replaced here so the verdicts do not depend on the machine's speed. Then
the fairness mode: ``receive(data, max_frames)`` stops after that many frames, keeps the rest,
and both engines stop at the same frame.
"""
from __future__ import annotations

import time

import pytest
from hyperframe.frame import GoAwayFrame

from kyoukai_h2fast.config import ServerConfig
from kyoukai_h2fast.constants import ErrorCode, FrameType, Setting
from kyoukai_h2fast.errors import ConnectionFailed
from kyoukai_h2fast.http2.events import DataReceived, RequestReceived, StreamReset
from tests.helpers.engine_frames import ENGINE_PARAMS, Peer, raw_frame

pytestmark = pytest.mark.parametrize("engine_cls", ENGINE_PARAMS)

CALM = ErrorCode.ENHANCE_YOUR_CALM
MAX = 2**31 - 1


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> _Clock:
    clock = _Clock()
    monkeypatch.setattr(time, "monotonic", clock)
    return clock


#: What the handshake (the client's SETTINGS, then its ACK of ours) took from the budgets.
HANDSHAKE_SETTINGS = 1
HANDSHAKE_EMPTY = 1


def _peer(engine_cls, **limits) -> Peer:
    """A connected peer; the handshake's output written out."""
    peer = Peer(engine_cls, ServerConfig(**limits))
    peer.engine.output_drained()
    return peer


def _calm(peer: Peer, *chunks: bytes) -> bytes:
    """Feed ``chunks``, which must cross a budget; the GOAWAY's debug data."""
    with pytest.raises(ConnectionFailed) as info:
        peer.recv(*chunks)
    assert info.value.error_code == CALM
    (goaway,) = [f for f in peer.take() if isinstance(f, GoAwayFrame)]
    assert goaway.error_code == CALM
    # Closed: nothing more is read or answered.
    assert peer.engine.receive(peer.ff.ping()) == [] and peer.take() == []
    return goaway.additional_data


def _drained(peer: Peer) -> None:
    peer.take()
    peer.engine.output_drained()


# -- PING and SETTINGS floods (CVE-2019-9512, CVE-2019-9515) ---------------------------------------
def test_more_pings_than_allowed_within_10s_is_enhance_your_calm(engine_cls, clock):
    peer = _peer(engine_cls, max_pings_per_10s=20)
    for _ in range(20):
        clock.now += 0.1
        peer.recv(peer.ff.ping())
        _drained(peer)
    assert _calm(peer, peer.ff.ping()) == b"too many pings"


def test_pings_spread_over_more_than_10s_are_answered(engine_cls, clock):
    peer = _peer(engine_cls, max_pings_per_10s=20)
    for _ in range(100):
        clock.now += 0.6               # 16.7 per 10 s
        peer.recv(peer.ff.ping(b"abcdefgh"))
        assert [f.opaque_data for f in peer.take()] == [b"abcdefgh"]
        peer.engine.output_drained()
    assert peer.error is None


def test_more_settings_than_allowed_within_10s_is_enhance_your_calm(engine_cls, clock):
    peer = _peer(engine_cls, max_settings_per_10s=10)
    for i in range(10 - HANDSHAKE_SETTINGS):
        clock.now += 0.2
        peer.recv(peer.ff.settings({Setting.INITIAL_WINDOW_SIZE: 1000 + i}))
        _drained(peer)
    assert _calm(peer, peer.ff.settings()) == b"too many settings"


def test_settings_flood_without_reading_the_acks_is_stopped_9515(engine_cls, clock):
    """The peer never reads its ACKs: whichever budget comes first (settings or queued
    control frames) ends the connection, after a bounded number of ACKs."""
    peer = _peer(engine_cls, max_settings_per_10s=10_000, max_queued_control_frames=50)
    with pytest.raises(ConnectionFailed) as info:
        for _ in range(200):
            peer.engine.receive(peer.ff.settings())
    assert info.value.error_code == CALM
    frames = peer.take()
    assert len(frames) == 52 and frames[-1].additional_data == b"too many control frames queued"


# -- frames without progress (CVE-2019-9518, 9513, 9511) -------------------------------------------
def _stream(peer: Peer, sid: int = 1) -> None:
    peer.open(sid, method="POST", end_stream=False)


@pytest.mark.parametrize("kind", ["empty-data", "padding-only-data", "tiny-window-update",
                                  "priority", "ping-ack", "settings-ack", "goaway",
                                  "unknown-type", "priority-update"])
def test_frames_without_progress_are_counted(engine_cls, clock, kind):
    peer = _peer(engine_cls, max_empty_frames_per_10s=30)
    _stream(peer)
    ff = peer.ff
    frame = {
        "empty-data": ff.data(1, b""),
        "padding-only-data": ff.data(1, b"", pad_length=10),
        "tiny-window-update": ff.window_update(1, 1),
        "priority": ff.priority(1, depends_on=0),
        "ping-ack": ff.ping(ack=True),
        "settings-ack": ff.settings(ack=True),
        "goaway": ff.goaway(1, 0),
        "unknown-type": raw_frame(0xFA, 0, 0, b"x"),
        "priority-update": raw_frame(FrameType.PRIORITY_UPDATE, 0, 0,
                                     b"\x00\x00\x00\x01u=1"),
    }[kind]
    for _ in range(30 - HANDSHAKE_EMPTY):
        clock.now += 0.01
        peer.recv(frame)
        if kind == "padding-only-data":
            peer.engine.acknowledge(1, 11)
        _drained(peer)
    assert peer.error is None
    assert _calm(peer, frame) == b"too many empty frames"


@pytest.mark.parametrize("kind", ["data", "end-stream", "window-update-1k", "requests"])
def test_frames_with_progress_are_not_counted(engine_cls, clock, kind):
    peer = _peer(engine_cls, max_empty_frames_per_10s=5, max_concurrent_streams=1000)
    ff = peer.ff
    for i in range(50):
        clock.now += 0.01
        sid = 2 * i + 1
        if kind == "requests":
            assert [type(e) for e in peer.open(sid)] == [RequestReceived]
            assert peer.respond(sid)
        elif kind == "end-stream":
            _stream(peer, sid)
            assert peer.recv(ff.data(sid, b"", end_stream=True)) == [
                DataReceived(sid, b"", 0, True)]
        elif kind == "data":
            if i == 0:
                _stream(peer)
            peer.recv(ff.data(1, b"x"))
            peer.engine.acknowledge(1, 1)
        else:
            peer.recv(ff.window_update(0, 1024))
        _drained(peer)
    assert peer.error is None


def test_no_progress_frames_spread_over_more_than_10s_are_fine(engine_cls, clock):
    peer = _peer(engine_cls, max_empty_frames_per_10s=10)
    _stream(peer)
    for _ in range(100):
        clock.now += 1.1               # 9.1 per 10 s
        peer.recv(peer.ff.priority(1, depends_on=0), )
        _drained(peer)
    assert peer.error is None


def test_data_dribble_window_updates_of_one_byte_9511(engine_cls, clock):
    """The peer opens the window one byte at a time: a 1-byte DATA frame each; the tiny
    updates run into the budget."""
    peer = Peer(engine_cls, ServerConfig(max_empty_frames_per_10s=100),
                settings={Setting.INITIAL_WINDOW_SIZE: 0})
    peer.open(1)
    assert peer.respond(1, b"x" * 10_000, end_stream=True)
    peer.take()
    for _ in range(100 - HANDSHAKE_EMPTY):
        clock.now += 0.01
        peer.recv(peer.ff.window_update(1, 1))
        assert [len(f.data) for f in peer.take()] == [1]
        peer.engine.output_drained()
    assert _calm(peer, peer.ff.window_update(1, 1)) == b"too many empty frames"


# -- resets: the peer's and those it provokes (CVE-2023-44487, CVE-2025-8671) ----------------------
def _made_you_reset(peer: Peer, sid: int, how: str) -> list:
    """Open ``sid`` and make the server reset it."""
    ff = peer.ff
    peer.open(sid, method="POST", end_stream=how == "data-after-end")
    if how == "window-overflow":
        return peer.recv(ff.window_update(sid, MAX))
    if how == "data-after-end":
        return peer.recv(ff.data(sid, b"late"))
    if how == "self-dependency":
        return peer.recv(ff.priority(sid, depends_on=sid))
    assert how == "content-length"
    return peer.recv(ff.data(sid, b"toolong", end_stream=True))


@pytest.mark.parametrize("how", ["window-overflow", "data-after-end", "self-dependency"])
def test_resets_the_peer_provokes_count_like_its_own_madeyoureset(engine_cls, clock, how):
    peer = _peer(engine_cls, max_resets_per_10s=10, max_queued_control_frames=10**6)
    for i in range(10):
        clock.now += 0.1
        events = _made_you_reset(peer, 2 * i + 1, how)
        assert [type(e) for e in events] == [StreamReset]
    peer.open(21, method="POST", end_stream=how == "data-after-end")
    frame = {"window-overflow": peer.ff.window_update(21, MAX),
             "data-after-end": peer.ff.data(21, b"late"),
             "self-dependency": peer.ff.priority(21, depends_on=21)}[how]
    assert _calm(peer, frame) == b"too many stream resets"


def test_refused_streams_count_as_provoked_resets(engine_cls, clock):
    peer = _peer(engine_cls, max_resets_per_10s=10, max_concurrent_streams=1)
    peer.open(1, end_stream=False)
    for i in range(10):
        clock.now += 0.1
        assert peer.open(2 * i + 3) == []
        assert peer.rst_codes(peer.take(), 2 * i + 3) == [ErrorCode.REFUSED_STREAM]
    assert _calm(peer, peer.ff.request(23)) == b"too many stream resets"


def test_peer_and_provoked_resets_add_up(engine_cls, clock):
    peer = _peer(engine_cls, max_resets_per_10s=10)
    for i in range(5):
        peer.open(4 * i + 1, end_stream=False)
        peer.recv(peer.ff.rst_stream(4 * i + 1))
        _made_you_reset(peer, 4 * i + 3, "window-overflow")
        _drained(peer)
    peer.open(41, end_stream=False)
    assert _calm(peer, peer.ff.rst_stream(41)) == b"too many stream resets"


def test_resets_the_server_decides_do_not_count(engine_cls, clock):
    peer = _peer(engine_cls, max_resets_per_10s=10)
    for i in range(50):
        peer.open(2 * i + 1, end_stream=False)
        peer.engine.reset_stream(2 * i + 1, ErrorCode.CANCEL)   # (a body timeout, an app error)
        _drained(peer)
    assert peer.error is None


# -- control frames queued for a peer that does not read -------------------------------------------
def test_control_frames_queued_without_draining_are_bounded(engine_cls, clock):
    peer = _peer(engine_cls, max_queued_control_frames=100)
    for _ in range(100):
        peer.recv(peer.ff.ping())
    assert _calm(peer, peer.ff.ping()) == b"too many control frames queued"


def test_control_frames_count_rst_stream_and_settings_acks(engine_cls, clock):
    peer = _peer(engine_cls, max_queued_control_frames=6)
    peer.recv(peer.ff.settings(), peer.ff.settings())        # 2 ACKs
    _made_you_reset(peer, 1, "window-overflow")              # 1 RST_STREAM
    peer.recv(peer.ff.ping(), peer.ff.ping(), peer.ff.ping())  # 3 PING ACKs: 6
    assert peer.error is None
    assert _calm(peer, peer.ff.settings()) == b"too many control frames queued"


def test_control_frames_written_out_do_not_count(engine_cls, clock):
    peer = _peer(engine_cls, max_queued_control_frames=10)
    for _ in range(1000):
        peer.recv(peer.ff.ping())
        peer.engine.data_to_send()
        peer.engine.output_drained()
    assert peer.error is None


# -- fairness: a bounded number of frames per call -------------------------------------------------
def test_receive_stops_after_max_frames_and_keeps_the_rest(engine_cls):
    peer = Peer(engine_cls)
    ff = peer.ff
    data = b"".join(ff.request(2 * i + 1) for i in range(10))
    engine = peer.engine
    first = engine.receive(data, 4)
    assert [e.stream_id for e in first] == [1, 3, 5, 7] and engine.input_pending
    second = engine.receive(b"", 4)
    assert [e.stream_id for e in second] == [9, 11, 13, 15] and engine.input_pending
    third = engine.receive(b"", 4)
    assert [e.stream_id for e in third] == [17, 19] and not engine.input_pending
    assert engine.receive(b"", 4) == [] and not engine.input_pending


def test_frames_in_pieces_across_a_stop(engine_cls):
    """A stop in the middle of a read, then more bytes, a frame split between them."""
    peer = Peer(engine_cls)
    ff = peer.ff
    data = ff.request(1) + ff.request(3) + ff.request(5)
    engine = peer.engine
    assert len(engine.receive(data[:-5], 1)) == 1 and engine.input_pending
    assert [e.stream_id for e in engine.receive(data[-5:], 10)] == [3, 5]
    assert not engine.input_pending


def test_a_connection_error_waits_for_its_frame(engine_cls):
    peer = Peer(engine_cls)
    ff = peer.ff
    engine = peer.engine
    data = ff.request(1) + ff.data(7, b"x")       # DATA on an idle stream: PROTOCOL_ERROR
    assert len(engine.receive(data, 1)) == 1
    with pytest.raises(ConnectionFailed) as info:
        engine.receive(b"", 1)
    assert info.value.error_code == ErrorCode.PROTOCOL_ERROR
    assert not engine.input_pending


def test_a_whole_flood_in_one_read_is_handled_in_turns(engine_cls, clock):
    """A read of many PINGs costs at most ``max_frames`` replies per call."""
    peer = _peer(engine_cls, max_pings_per_10s=10**6)
    engine = peer.engine
    engine.receive(peer.ff.ping() * 1000, 100)
    turns = 1
    assert len(peer.take()) == 100
    while engine.input_pending:
        engine.receive(b"", 100)
        assert len(peer.take()) <= 100
        engine.output_drained()
        turns += 1
    assert turns == 11      # (the 10th stop cannot know that nothing follows: one more turn)
