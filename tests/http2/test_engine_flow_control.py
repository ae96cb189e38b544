"""Flow control both ways, in memory (RFC 9113 §5.2, §6.9, §6.9.1, §6.9.2).

Receiving: DATA counts against the connection and stream windows; the protocol hands bytes back
with ``acknowledge`` and the engine answers with WINDOW_UPDATE frames batched exactly like h2's
``WindowManager`` (the oracle here, so that the frames match the h2-based twin). Sending: the
engine never exceeds the peer's windows, resumes on WINDOW_UPDATE, and follows
SETTINGS_INITIAL_WINDOW_SIZE changes on open streams, below zero included.
"""
from __future__ import annotations

import pytest
from h2.windows import WindowManager
from hyperframe.frame import DataFrame, WindowUpdateFrame

from kyoukai_h2fast.config import ServerConfig
from kyoukai_h2fast.constants import ErrorCode, Setting
from kyoukai_h2fast.http2.events import DataReceived, ResponseSent, StreamDrained, StreamReset
from tests.helpers.engine_frames import ENGINE_PARAMS, Peer

pytestmark = pytest.mark.parametrize("engine_cls", ENGINE_PARAMS)

MAX = 2**31 - 1


def _post(peer: Peer, sid: int = 1, **kw) -> None:
    peer.open(sid, method="POST", end_stream=False, **kw)


def _data_sizes(n: int, frame: int = 16_384) -> list:
    return [frame] * (n // frame) + ([n % frame] if n % frame else [])


# -- receiving ------------------------------------------------------------------------------------
@pytest.mark.parametrize("pattern", ["frames-acked-one-by-one", "acked-late-in-bulk",
                                     "tiny-frames"])
def test_window_updates_are_batched_like_h2_window_manager_6_9(engine_cls, pattern):
    """The WINDOW_UPDATE increments for the connection and the stream are exactly those h2's
    WindowManager would emit for the same received and acknowledged byte counts."""
    config = (ServerConfig(stream_window=65_535, connection_window=100_000)
              if pattern == "tiny-frames" else ServerConfig())
    peer = Peer(engine_cls, config)
    conn = WindowManager(65_535)
    if config.connection_window > 65_535:
        conn.window_opened(config.connection_window - 65_535)   # initiate(): WINDOW_UPDATE(0)
    stream = WindowManager(config.stream_window)
    _post(peer)
    expected, got = [], []
    sizes = {"frames-acked-one-by-one": _data_sizes(9_000_000),
             "acked-late-in-bulk": _data_sizes(9_000_000),
             "tiny-frames": [1, 7, 1000, 3] * 300}[pattern]
    pending = 0
    for i, size in enumerate(sizes):
        events = peer.recv(peer.ff.data(1, b"x" * size))
        assert events == [DataReceived(1, b"x" * size, size, False)]
        conn.window_consumed(size)
        stream.window_consumed(size)
        pending += size
        if pattern != "acked-late-in-bulk" or i % 10 == 9 or i == len(sizes) - 1:
            peer.engine.acknowledge(1, pending)
            for manager, sid in ((conn, 0), (stream, 1)):
                increment = manager.process_bytes(pending)
                if increment:
                    expected.append((sid, increment))
            pending = 0
            got.extend((f.stream_id, f.window_increment)
                       for f in peer.of(peer.take(), WindowUpdateFrame))
    assert got == expected
    assert {sid for sid, _ in expected} == {0, 1}  # both windows crossed h2's thresholds


def test_consecutive_data_of_one_stream_in_one_read_is_one_event(engine_cls):
    """DATA frames of one stream handled by one receive(), with no other event between them,
    are reported as one DataReceived (payloads joined, flow-controlled lengths - padding
    included - added, end_stream from the last); another stream's DATA, a request or a reset
    in between starts a new one, a PING (no event) does not, and END_STREAM ends the run."""
    peer = Peer(engine_cls)
    ff = peer.ff
    _post(peer, 1)
    _post(peer, 3)
    events = peer.recv(ff.data(1, b"a" * 100) + ff.data(1, b"b" * 16_384)
                       + ff.data(1, b"c", pad_length=10) + ff.ping()
                       + ff.data(1, b"d" * 5, end_stream=True) + ff.data(3, b"e"))
    assert events == [DataReceived(1, b"a" * 100 + b"b" * 16_384 + b"c" + b"d" * 5,
                                   100 + 16_384 + 12 + 5, True),
                      DataReceived(3, b"e", 1, False)]
    _post(peer, 5)
    events = peer.recv(ff.data(3, b"f") + ff.data(5, b"g") + ff.data(3, b"h")
                       + ff.data(3, b"i") + ff.request(7) + ff.data(3, b"j", end_stream=True)
                       + ff.data(5, b"k") + ff.data(5, b"l"))
    assert [e.__class__.__name__ for e in events] == [
        "DataReceived", "DataReceived", "DataReceived", "RequestReceived", "DataReceived",
        "DataReceived"]
    assert [(e.stream_id, e.data, e.flow_controlled_length, e.end_stream)
            for e in events if isinstance(e, DataReceived)] == [
        (3, b"f", 1, False), (5, b"g", 1, False), (3, b"hi", 2, False), (3, b"j", 1, True),
        (5, b"kl", 2, False)]
    # One frame per receive(): one event per frame, as before.
    for payload in (b"m", b"n"):
        assert peer.recv(ff.data(5, payload)) == [DataReceived(5, payload, 1, False)]


def test_data_beyond_the_stream_window_is_a_flow_control_error_6_9_1(engine_cls):
    peer = Peer(engine_cls, ServerConfig(stream_window=65_535))
    _post(peer)
    for size in _data_sizes(65_535):
        peer.recv(peer.ff.data(1, b"a" * size))
    assert peer.recv_error(peer.ff.data(1, b"!")) == ErrorCode.FLOW_CONTROL_ERROR


def test_data_beyond_the_connection_window_is_a_flow_control_error_6_9_1(engine_cls):
    """Two streams within their own windows, together over the connection's."""
    peer = Peer(engine_cls, ServerConfig(connection_window=65_535, stream_window=65_535))
    _post(peer, 1)
    _post(peer, 3)
    for size in _data_sizes(40_000):
        peer.recv(peer.ff.data(1, b"a" * size))
    for size in _data_sizes(25_535):
        peer.recv(peer.ff.data(3, b"b" * size))
    assert peer.recv_error(peer.ff.data(3, b"!")) == ErrorCode.FLOW_CONTROL_ERROR


def test_padding_is_flow_controlled_and_handed_back_6_1(engine_cls):
    """Padding (and the Pad Length octet) count against the windows; the event says how many
    bytes the protocol must hand back; handing them back reopens the windows (h2's batching),
    so twice a window's worth of padded DATA gets through."""
    peer = Peer(engine_cls, ServerConfig(stream_window=65_535, connection_window=65_535))
    conn, stream = WindowManager(65_535), WindowManager(65_535)
    _post(peer)
    expected = []
    for _ in range(500):    # 500 x (1 + 1 + 255) = 128,500 bytes of window for 500 of data
        events = peer.recv(peer.ff.data(1, b"d", pad_length=255))
        assert events == [DataReceived(1, b"d", 257, False)]
        peer.engine.acknowledge(1, events[0].flow_controlled_length)
        for manager, sid in ((conn, 0), (stream, 1)):
            manager.window_consumed(257)
            increment = manager.process_bytes(257)
            if increment:
                expected.append((sid, increment))
    got = [(f.stream_id, f.window_increment) for f in peer.of(peer.take(), WindowUpdateFrame)]
    assert got == expected and len(got) >= 4


def test_data_on_a_stream_we_reset_is_credited_to_the_connection_5_1(engine_cls):
    """DATA in flight on a stream the server reset is ignored, but its bytes are given back
    to the connection window: a whole window of it does not stall other streams."""
    peer = Peer(engine_cls, ServerConfig(connection_window=65_535, stream_window=65_535))
    _post(peer, 1)
    peer.engine.reset_stream(1, ErrorCode.CANCEL)
    assert peer.rst_codes(peer.take(), 1) == [ErrorCode.CANCEL]
    for size in _data_sizes(65_535):
        assert peer.recv(peer.ff.data(1, b"z" * size)) == []
    frames = peer.take()
    assert peer.rst_codes(frames, 1) == []
    assert sum(peer.window_updates(frames, 0)) >= 65_535 // 2
    _post(peer, 3)
    events = peer.recv(peer.ff.data(3, b"y" * 16_384, end_stream=False))
    assert [type(e) for e in events] == [DataReceived]


def test_acknowledging_a_finished_stream_still_reopens_the_connection_window(engine_cls):
    peer = Peer(engine_cls, ServerConfig(connection_window=65_535))
    _post(peer)
    for size in _data_sizes(40_000):
        peer.recv(peer.ff.data(1, b"q" * size))
    peer.recv(peer.ff.data(1, b"", end_stream=True))
    assert peer.respond(1, b"done")
    peer.take()
    assert [type(e) for e in peer.send_events()] == [ResponseSent]
    peer.engine.acknowledge(1, 40_000)
    frames = peer.take()
    assert peer.window_updates(frames, 0) == [40_000]
    assert peer.window_updates(frames, 1) == []


# -- sending --------------------------------------------------------------------------------------
def _sent(frames, sid) -> bytes:
    return b"".join(f.data for f in frames if isinstance(f, DataFrame) and f.stream_id == sid)


def test_response_waits_for_the_stream_window_and_resumes_on_window_update_6_9(engine_cls):
    peer = Peer(engine_cls, settings={Setting.INITIAL_WINDOW_SIZE: 10})
    peer.open(1)
    body = bytes(range(25))
    assert peer.respond(1, body)
    frames = peer.take()
    assert _sent(frames, 1) == body[:10]
    assert not peer.engine.wants_write and peer.engine.queued(1) == 15
    peer.recv(peer.ff.window_update(1, 5))
    assert peer.engine.wants_write
    frames = peer.take()
    assert _sent(frames, 1) == body[10:15] and peer.send_events() == []
    peer.recv(peer.ff.window_update(1, 100))
    frames = peer.take()
    assert _sent(frames, 1) == body[15:]
    assert "END_STREAM" in frames[-1].flags
    assert peer.send_events() == [ResponseSent(1, True)]
    assert peer.engine.queued(1) == 0 and peer.engine.queued_total == 0


def test_the_connection_window_is_shared_and_a_connection_update_resumes_all_6_9_1(engine_cls):
    peer = Peer(engine_cls)
    for sid in (1, 3):
        peer.open(sid)
        assert peer.respond(sid, bytes([sid]) * 40_000)
    frames = peer.take()
    assert len(_sent(frames, 1)) + len(_sent(frames, 3)) == 65_535
    assert peer.engine.queued_total == 80_000 - 65_535
    assert not peer.engine.wants_write
    peer.recv(peer.ff.window_update(0, 1 << 20))
    frames = peer.take()
    assert peer.engine.queued_total == 0
    assert sorted(e.stream_id for e in peer.send_events()) == [1, 3]


def test_empty_end_stream_needs_no_window_6_9(engine_cls):
    """With both windows at zero, a response ending with an empty DATA frame still ends."""
    peer = Peer(engine_cls, settings={Setting.INITIAL_WINDOW_SIZE: 0})
    peer.open(1)
    assert peer.engine.send_headers(1, [(b":status", b"200")], False)
    assert peer.engine.queue_data(1, b"", True)
    frames = peer.take()
    assert [(type(f).__name__, sorted(f.flags)) for f in frames] == [
        ("HeadersFrame", ["END_HEADERS"]), ("DataFrame", ["END_STREAM"])]
    assert peer.send_events() == [ResponseSent(1, True)]


def test_initial_window_size_change_adjusts_open_streams_even_below_zero_6_9_2(engine_cls):
    n = 200_000
    body = bytes(i % 251 for i in range(n))
    peer = Peer(engine_cls, settings={Setting.INITIAL_WINDOW_SIZE: 16_384})
    peer.recv(peer.ff.window_update(0, 1 << 20))
    peer.open(1)
    assert peer.respond(1, body)
    got = _sent(peer.take(), 1)
    assert len(got) == 16_384
    peer.recv(peer.ff.settings({Setting.INITIAL_WINDOW_SIZE: 65_535}))      # +49,151
    got += _sent(peer.take(), 1)
    assert len(got) == 65_535
    peer.recv(peer.ff.settings({Setting.INITIAL_WINDOW_SIZE: 16_384}))      # window -49,151
    assert _sent(peer.take(), 1) == b""
    peer.recv(peer.ff.window_update(1, 49_151))                             # back to 0
    assert _sent(peer.take(), 1) == b""
    peer.recv(peer.ff.window_update(1, 1000))
    got += _sent(peer.take(), 1)
    assert got == body[:66_535]


def test_initial_window_size_change_overflowing_a_stream_is_a_connection_error_6_9_2(
        engine_cls):
    peer = Peer(engine_cls)
    peer.open(1)
    peer.recv(peer.ff.window_update(1, MAX - 65_535))   # the stream window is now 2^31-1
    assert peer.recv_error(peer.ff.settings({Setting.INITIAL_WINDOW_SIZE: 65_536})) == \
        ErrorCode.FLOW_CONTROL_ERROR


def test_window_update_overflowing_the_connection_window_is_a_connection_error_6_9_1(
        engine_cls):
    peer = Peer(engine_cls)
    assert peer.recv_error(peer.ff.window_update(0, MAX)) == ErrorCode.FLOW_CONTROL_ERROR


def test_window_update_overflowing_a_stream_window_is_a_stream_error_6_9_1(engine_cls):
    peer = Peer(engine_cls)
    peer.open(1)
    peer.open(3)
    events = peer.recv(peer.ff.window_update(1, MAX))
    assert events == [StreamReset(1, ErrorCode.FLOW_CONTROL_ERROR, False)]
    assert peer.rst_codes(peer.take(), 1) == [ErrorCode.FLOW_CONTROL_ERROR]
    assert not peer.respond(1, b"late")      # the stream is gone
    assert peer.respond(3, b"fine")          # the connection goes on
    assert _sent(peer.take(), 3) == b"fine"


def test_a_stream_blocked_on_its_window_does_not_block_the_others_6_9(engine_cls):
    peer = Peer(engine_cls, settings={Setting.INITIAL_WINDOW_SIZE: 100})
    peer.recv(peer.ff.window_update(0, 1 << 20))
    peer.open(1)
    peer.open(3)
    assert peer.respond(1, b"a" * 1000)
    assert peer.respond(3, b"b" * 50)
    frames = peer.take()
    assert _sent(frames, 1) == b"a" * 100 and _sent(frames, 3) == b"b" * 50
    assert peer.send_events() == [ResponseSent(3, True)]
    assert peer.engine.queued(1) == 900 and not peer.engine.wants_write


def test_streamed_response_reports_drained_queues_and_the_end(engine_cls):
    peer = Peer(engine_cls)
    peer.open(1)
    assert peer.engine.send_headers(1, [(b":status", b"200")], False)
    for i in range(3):
        assert peer.engine.queue_data(1, b"chunk%d" % i, False)
        assert _sent(peer.take(), 1) == b"chunk%d" % i
        assert peer.send_events() == [StreamDrained(1)]
    assert peer.engine.queue_data(1, b"last", True)
    assert _sent(peer.take(), 1) == b"last"
    assert peer.send_events() == [ResponseSent(1, True)]
    assert not peer.engine.queue_data(1, b"more", False)


def test_a_stream_window_below_the_default_applies_once_acknowledged_6_9_2(engine_cls):
    """Until the peer acknowledged our SETTINGS it may use the default window (65,535) on a
    stream; our smaller SETTINGS_INITIAL_WINDOW_SIZE applies from its ACK on, to open
    streams too (their window drops by the difference, here below zero)."""
    peer = Peer(engine_cls, ServerConfig(stream_window=1000), handshake=False)
    peer.take()
    peer.recv(peer.ff.preface())
    peer.open(1, method="POST", end_stream=False)
    assert peer.recv(peer.ff.data(1, b"a" * 2000)) == [DataReceived(1, b"a" * 2000, 2000, False)]
    peer.recv(peer.ff.settings(ack=True))          # window now 1000 - 2000 = -1000
    assert peer.recv_error(peer.ff.data(1, b"b")) == ErrorCode.FLOW_CONTROL_ERROR


def test_a_stream_window_below_the_default_then_reopens_like_h2(engine_cls):
    peer = Peer(engine_cls, ServerConfig(stream_window=1000))
    peer.open(1, method="POST", end_stream=False)
    stream = WindowManager(1000)
    expected, got = [], []
    for _ in range(20):
        (event,) = peer.recv(peer.ff.data(1, b"c" * 400))
        stream.window_consumed(400)
        peer.engine.acknowledge(1, 400)
        increment = stream.process_bytes(400)
        if increment:
            expected.append(increment)
        got += peer.window_updates(peer.take(), 1)
    assert got == expected and sum(got) == 8000
