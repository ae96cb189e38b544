"""RFC 9218 extensible priorities in the connection engines, in memory, over both engines.

What is scheduled (§10, ``_engine_c_send.pxi``/``http2/h2engine/engine.py`` ``Engine._schedule``):
whenever more than one response has DATA waiting (for the connection window, or for the transport:
the ``max_data`` of ``data_to_send``), the lowest urgency goes first; within one urgency,
non-incremental responses go one at a time in stream id order and incremental ones share, frame by
frame; when both kinds wait at one urgency, the non-incremental ones take turns as one member of the
round. A request without any priority signal is urgency 3, incremental: without signals, everything
is shared fairly ("equal priority falls back to fair sharing"); a request that signals anything gets
RFC 9218's defaults (``u=3``, not incremental) for what it leaves out.

Where the signals come from: the request's ``priority`` field (§4, §5), PRIORITY_UPDATE frames
before or after the stream opens (§7.1, the most recent one wins), the response's ``priority``
field (§8) and ``set_priority``. Malformed PRIORITY_UPDATEs are connection errors where §7.1
says so, a value that is not a Dictionary is ignored; updates for streams not yet open are
remembered in bounded memory. SETTINGS_NO_RFC7540_PRIORITIES = 1 is advertised (§2.1).
"""
from __future__ import annotations

import gc
import tracemalloc

import pytest
from hyperframe.frame import DataFrame, HeadersFrame, PingFrame, SettingsFrame

from kyoukai_h2fast.config import ServerConfig
from kyoukai_h2fast.constants import ErrorCode, Setting
from kyoukai_h2fast.http2.events import RequestReceived, StreamDrained
from tests.helpers.engine_frames import ENGINE_PARAMS, Peer, raw_frame

pytestmark = pytest.mark.parametrize("engine_cls", ENGINE_PARAMS)

#: Stream windows the size of the whole test: only the connection window (65,535 until the
#: peer opens it) or ``max_data`` holds responses back.
WIDE_STREAMS = {Setting.INITIAL_WINDOW_SIZE: 1 << 30}
FRAME = 16_384


def update(stream_id: int, value: bytes, frame_stream: int = 0) -> bytes:
    """A PRIORITY_UPDATE frame (type 0x10, RFC 9218 §7.1)."""
    return raw_frame(0x10, 0, frame_stream, stream_id.to_bytes(4, "big") + value)


def _peer(engine_cls, config=None, conn_window: int = 0) -> Peer:
    peer = Peer(engine_cls, config, settings=WIDE_STREAMS)
    if conn_window:
        peer.recv(peer.ff.window_update(0, conn_window))
    return peer


def _request(peer: Peer, sid: int, priority: str | None = None, end: bool = True):
    extra = [("priority", priority)] if priority is not None else []
    (event,) = peer.open(sid, end_stream=end, extra=extra)
    assert isinstance(event, RequestReceived)
    return event


def _respond(peer: Peer, sid: int, size: int, extra=()) -> None:
    assert peer.engine.send_headers(sid, [(b":status", b"200"), *extra], False)
    assert peer.engine.queue_data(sid, bytes([sid]) * size, True)


def _data(frames) -> list:
    return [(f.stream_id, len(f.data)) for f in frames if isinstance(f, DataFrame)]


def _fold(sids) -> list:
    """Consecutive repeats folded: [1, 1, 3, 1] -> [1, 3, 1]."""
    runs = []
    for sid in sids:
        if not runs or runs[-1] != sid:
            runs.append(sid)
    return runs


def _runs(frames) -> list:
    """Stream ids of the DATA frames, consecutive repeats folded."""
    return _fold(sid for sid, _ in _data(frames))


def _queue_all(peer: Peer, specs: list, size: int = 3 * FRAME) -> None:
    """Open a stream per ``(sid, priority field or None)``, take their header blocks, then
    queue a body of ``size`` on each, so that all of them wait at once."""
    for sid, priority in specs:
        _request(peer, sid, priority)
        assert peer.engine.send_headers(sid, [(b":status", b"200")], False)
    peer.take()
    for sid, _ in specs:
        assert peer.engine.queue_data(sid, bytes([sid]) * size, True)


# -- RFC 9218 §2.1 --------------------------------------------------------------------------------
def test_server_preface_says_no_rfc7540_priorities_2_1(engine_cls):
    peer = Peer(engine_cls, handshake=False)
    (settings_frame,) = [f for f in peer.take() if isinstance(f, SettingsFrame)]
    assert settings_frame.settings[Setting.NO_RFC7540_PRIORITIES] == 1


# -- the request's priority (§4, §5) ---------------------------------------------------------------
@pytest.mark.parametrize("field,expected", [
    (None, (3, True)),               # no signal: shared fairly
    ("u=0", (0, False)),
    ("u=5, i", (5, True)),
    ("i", (3, True)),
    ("x=1", (3, False)),             # a signal: RFC 9218's defaults for what it leaves out
    ("u=9", (3, False)),             # out of range: ignored
    ("u=1,", (3, True)),             # not a Dictionary: as if absent, never an error
])
def test_the_request_priority_field_is_read_4(engine_cls, field, expected):
    peer = _peer(engine_cls)
    event = _request(peer, 1, field)
    assert event.priority == expected
    assert peer.take() == []                     # nothing answered: no error of any kind


def test_priority_field_lines_are_one_value_4(engine_cls):
    peer = _peer(engine_cls)
    (event,) = peer.open(1, extra=[("priority", "u=2"), ("x-other", "1"), ("priority", "i")])
    assert event.priority == (2, True)


def test_priority_fields_in_trailers_change_nothing(engine_cls):
    peer = _peer(engine_cls, conn_window=1 << 20)
    _request(peer, 1, "u=6", end=False)
    peer.recv(peer.ff.headers(1, [("priority", "u=0")], end_stream=True))
    _request(peer, 3, "u=5")
    _respond(peer, 1, 2 * FRAME)
    _respond(peer, 3, 2 * FRAME)
    assert _runs(peer.take()) == [3, 1]          # 1 stayed at u=6


# -- §10: the order of DATA ------------------------------------------------------------------------
def test_lower_urgency_goes_first_10(engine_cls):
    peer = _peer(engine_cls, conn_window=1 << 20)
    _queue_all(peer, [(1, "u=5"), (3, "u=3"), (5, "u=0"), (7, "u=7"), (9, "u=3")])
    assert _runs(peer.take()) == [5, 3, 9, 1, 7]


def test_non_incremental_responses_go_one_at_a_time_by_stream_id_10(engine_cls):
    """Whatever the order their bodies were queued in."""
    peer = _peer(engine_cls, conn_window=1 << 20)
    for sid in (1, 3, 5):
        _request(peer, sid, "u=2")
        assert peer.engine.send_headers(sid, [(b":status", b"200")], False)
    peer.take()
    for sid in (5, 3, 1):
        assert peer.engine.queue_data(sid, bytes([sid]) * 3 * FRAME, True)
    frames = peer.take()
    assert _runs(frames) == [1, 3, 5]
    assert _data(frames) == [(sid, FRAME) for sid in (1, 1, 1, 3, 3, 3, 5, 5, 5)]


def test_incremental_responses_share_frame_by_frame_10(engine_cls):
    peer = _peer(engine_cls, conn_window=1 << 20)
    _queue_all(peer, [(1, "u=2, i"), (3, "u=2, i"), (5, "u=2, i")])
    assert _runs(peer.take()) == [1, 3, 5, 1, 3, 5, 1, 3, 5]


def test_non_incremental_ones_take_turns_with_incremental_ones_10(engine_cls):
    """§10: 'avoid such starvation': at one urgency the non-incremental responses are one
    member of the round (the lowest stream id speaking for them), so neither kind starves."""
    peer = _peer(engine_cls, conn_window=1 << 20)
    _queue_all(peer, [(1, "u=1"), (3, "u=1, i"), (5, "u=1"), (7, "u=1, i")], size=2 * FRAME)
    assert [sid for sid, _ in _data(peer.take())] == [1, 3, 7, 1, 3, 7, 5, 5]


def test_equal_priority_without_signals_is_shared_fairly_10(engine_cls):
    """Requests without any signal (curl, API clients, a proxy coalescing many users) share
    the connection frame by frame, as before priorities; the same requests signalling RFC
    9218's defaults (``u=3``, not incremental) are served one at a time."""
    peer = _peer(engine_cls, conn_window=1 << 20)
    _queue_all(peer, [(1, None), (3, None), (5, None)])
    assert _runs(peer.take()) == [1, 3, 5, 1, 3, 5, 1, 3, 5]
    peer = _peer(engine_cls, conn_window=1 << 20)
    _queue_all(peer, [(1, "u=3"), (3, "u=3"), (5, "u=3")])
    assert _runs(peer.take()) == [1, 3, 5]


def test_unsignalled_requests_share_with_signalled_incremental_ones_10(engine_cls):
    peer = _peer(engine_cls, conn_window=1 << 20)
    _queue_all(peer, [(1, None), (3, "u=3, i"), (5, "u=3")], size=2 * FRAME)
    assert _runs(peer.take()) == [1, 3, 5, 1, 3, 5]


def test_a_stalled_download_yields_to_an_urgent_response_10(engine_cls):
    """The connection window is the bottleneck: a u=7 download used it up; a u=0 response
    gets its headers at once (header blocks are never held back), and when the window opens,
    its body goes before any more of the download."""
    peer = _peer(engine_cls)
    _request(peer, 1, "u=7")
    assert peer.engine.send_headers(1, [(b":status", b"200")], False)
    for _ in range(64):
        assert peer.engine.queue_data(1, b"d" * 65_536, False)
    assert sum(n for _, n in _data(peer.take())) == 65_535      # the window is used up
    _request(peer, 3, "u=0")
    _respond(peer, 3, 100_000)
    peer.recv(peer.ff.ping(b"stalled!"))
    frames = peer.take()
    assert [type(f) for f in frames] == [HeadersFrame, PingFrame] and _data(frames) == []
    peer.recv(peer.ff.window_update(0, 1 << 20))
    frames = peer.take()
    assert _runs(frames) == [3, 1]
    assert sum(n for sid, n in _data(frames) if sid == 3) == 100_000
    assert sum(n for _, n in _data(frames)) == 1 << 20


def test_max_data_holds_back_the_bulk_not_the_urgent_10(engine_cls):
    """The transport is the bottleneck (the protocol takes at most ``max_data`` per write):
    the urgent response goes first in every take."""
    peer = _peer(engine_cls, conn_window=1 << 24)
    _queue_all(peer, [(1, "u=6"), (3, None)], size=200_000)
    _request(peer, 5, "u=0")
    _respond(peer, 5, 100_000)
    order = []
    while peer.engine.wants_write:
        order += _data(peer.take(max_data=40_000))
    urgent = [i for i, (sid, _) in enumerate(order) if sid == 5]
    assert urgent == list(range(len(urgent)))                   # all of it first
    assert _fold(sid for sid, _ in order[len(urgent):]) == [3, 1]


def test_control_frames_are_never_held_back_by_data(engine_cls):
    peer = _peer(engine_cls, conn_window=1 << 24)
    _queue_all(peer, [(1, "u=0"), (3, None)], size=500_000)
    peer.recv(peer.ff.ping(b"urgent!!"))
    _request(peer, 5, "u=7")
    assert peer.engine.send_headers(5, [(b":status", b"204")], True)
    frames = peer.take(max_data=1)
    assert [type(f) for f in frames][:2] == [PingFrame, HeadersFrame]


def test_bytes_framed_past_the_scheduler_are_bounded(engine_cls):
    """``queue_data`` frames a chunk at once when nothing waits, but while nobody takes the
    output (a slow transport) at most 64 KiB go that way; the rest waits in the queues, where
    priority decides."""
    peer = _peer(engine_cls, conn_window=1 << 24)
    _request(peer, 1, "u=7")
    assert peer.engine.send_headers(1, [(b":status", b"200")], False)
    for _ in range(20):
        assert peer.engine.queue_data(1, b"b" * 8192, False)
    assert peer.engine.queued(1) == 20 * 8192 - 65_536
    _request(peer, 3, "u=0")
    _respond(peer, 3, 8192)
    assert _data(peer.take()) == [(1, 8192)] * 8 + [(3, 8192)] + [(1, 8192)] * 12


# -- PRIORITY_UPDATE (§7, §7.1) --------------------------------------------------------------------
def test_priority_update_reprioritizes_an_open_stream_7_1(engine_cls):
    peer = _peer(engine_cls)
    _queue_all(peer, [(1, "u=0"), (3, "u=4")], size=100_000)
    assert _runs(peer.take()) == [1]                # the connection window: 65,535 of 1
    peer.recv(update(1, b"u=7"), update(3, b"u=1"))
    assert peer.take() == []                        # no reply to the frame
    peer.recv(peer.ff.window_update(0, 1 << 20))
    assert _runs(peer.take()) == [3, 1]


def test_priority_update_before_the_stream_opens_wins_over_its_field_7(engine_cls):
    """§7: 'the most recently received PRIORITY_UPDATE frame can be considered as the most
    up-to-date information that overrides any other signal'; it waits for the stream."""
    peer = _peer(engine_cls)
    peer.recv(update(3, b"u=1, i"))
    assert peer.engine.priorities_remembered == 1
    assert _request(peer, 1, "u=6").priority == (6, False)
    assert peer.engine.priorities_remembered == 1
    assert _request(peer, 3, "u=6").priority == (1, True)
    assert peer.engine.priorities_remembered == 0


def test_the_latest_priority_update_counts_7(engine_cls):
    peer = _peer(engine_cls)
    peer.recv(update(5, b"u=1"), update(5, b"u=2"), update(5, b"u=1,"))   # the last: ignored
    assert peer.engine.priorities_remembered == 1
    assert _request(peer, 5).priority == (2, False)


def test_a_priority_update_is_a_complete_set_7(engine_cls):
    peer = _peer(engine_cls)
    _queue_all(peer, [(1, "u=0, i"), (3, "u=3, i"), (5, "u=3, i")], size=100_000)
    peer.take()
    peer.recv(update(1, b"x=1"))                    # u=3, not incremental, like a new request
    peer.recv(peer.ff.window_update(0, 1 << 20))
    runs = _runs(peer.take())
    assert runs[:6] == [3, 5, 1, 3, 5, 1]           # 1 joined u=3 as one member of the round


def test_priority_updates_for_closed_streams_are_ignored_7_1(engine_cls):
    peer = _peer(engine_cls)
    _request(peer, 1)
    assert peer.engine.send_headers(1, [(b":status", b"204")], True)
    peer.take()
    peer.recv(update(1, b"u=0"))
    _request(peer, 5)
    peer.recv(update(3, b"u=0"))                    # below the highest id: closed (§5.1.1)
    assert peer.engine.priorities_remembered == 0 and peer.take() == []


@pytest.mark.parametrize("frame,code", [
    (update(1, b"u=0", frame_stream=1), ErrorCode.PROTOCOL_ERROR),    # must be on stream 0
    (update(3, b"u=0", frame_stream=3), ErrorCode.PROTOCOL_ERROR),
    (update(0, b"u=0"), ErrorCode.PROTOCOL_ERROR),                    # stream 0 prioritized
    (update(1 << 31, b"u=0"), ErrorCode.PROTOCOL_ERROR),              # (reserved bit ignored)
    (update(2, b"u=0"), ErrorCode.PROTOCOL_ERROR),                    # an idle push stream
    (raw_frame(0x10, 0, 0, b"\x00\x00\x01"), ErrorCode.FRAME_SIZE_ERROR),   # no stream id
    (raw_frame(0x10, 0, 0, b""), ErrorCode.FRAME_SIZE_ERROR),
], ids=["on-stream-1", "on-stream-3", "for-stream-0", "for-stream-0-reserved-bit",
        "for-a-push-stream", "3-bytes", "empty"])
def test_malformed_priority_updates_are_connection_errors_7_1(engine_cls, frame, code):
    peer = _peer(engine_cls)
    _request(peer, 1, end=False)
    assert peer.recv_error(frame) == code


@pytest.mark.parametrize("value", [b"u=1,", b"u=(", b"\xff", b"U=1", b"u=1 i"])
def test_a_priority_update_that_is_no_dictionary_is_ignored_7(engine_cls, value):
    """§7: failing to parse 'MAY' be a connection error; we ignore the frame instead."""
    peer = _peer(engine_cls)
    _queue_all(peer, [(1, "u=4"), (3, "u=2")], size=100_000)
    peer.take()
    peer.recv(update(1, value), update(1 | 0x8000_0000, b"u=0"))   # the reserved bit: ignored
    peer.recv(update(3, value), update(7, value))
    assert peer.engine.priorities_remembered == 0
    peer.recv(peer.ff.window_update(0, 1 << 20))
    assert _runs(peer.take())[:2] == [1, 3]         # 1 went to u=0


def test_unknown_parameters_and_flags_are_ignored_7_1(engine_cls):
    peer = _peer(engine_cls)
    peer.recv(raw_frame(0x10, 0xFF, 0, (9).to_bytes(4, "big") + b"u=2, foo=?1, bar=(1 2)"))
    assert _request(peer, 9).priority == (2, False)


def test_idle_streams_prioritized_beyond_the_stream_limit_are_a_protocol_error_7_1(engine_cls):
    """§7.1: streams prioritized while idle plus open ones 'MUST NOT exceed' our
    SETTINGS_MAX_CONCURRENT_STREAMS."""
    peer = _peer(engine_cls, ServerConfig(max_concurrent_streams=4))
    _request(peer, 1, end=False)
    peer.recv(update(3, b"u=1"), update(5, b"u=1"), update(7, b"u=1"))
    peer.recv(update(7, b"u=2"))                    # the same stream again: no more memory
    assert peer.engine.priorities_remembered == 3
    assert peer.recv_error(update(9, b"u=1")) == ErrorCode.PROTOCOL_ERROR


def test_updates_for_streams_that_never_open_take_bounded_memory_7(engine_cls):
    """At most 256 are kept whatever the stream limit allows (more are ignored); those below
    a stream that opens can never open and are dropped, and the memory is given back."""
    # (the flood budget for frames without progress would end the connection first: this
    # test is about the memory of what is remembered, so the budget is out of the way)
    peer = _peer(engine_cls, ServerConfig(max_concurrent_streams=100_000,
                                          max_empty_frames_per_10s=2**31 - 1))
    engine = peer.engine
    for sid in range(1001, 1001 + 2 * 300, 2):
        peer.recv(update(sid, b"u=1"))
    assert engine.priorities_remembered == 256
    assert _request(peer, 1001 + 2 * 255).priority == (1, False)   # the 256th: kept
    assert engine.priorities_remembered == 0                       # and those below dropped
    assert _request(peer, 1001 + 2 * 256).priority == (3, True)    # the 257th: was ignored

    def flood(base: int) -> None:
        for sid in range(base, base + 2 * 400, 2):
            engine.receive(update(sid, b"u=5, i"))
        opened = base + 2 * 400
        engine.receive(peer.ff.request(opened))                    # all below: dropped
        engine.send_headers(opened, [(b":status", b"204")], True)
        engine.data_to_send()
        engine.send_events()

    for i in range(5):
        flood(5001 + 1000 * i)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(5, 45):
            flood(5001 + 1000 * i)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert engine.priorities_remembered == 0
    assert grown < 64 * 1024, grown


# -- the server's own signals (§8, set_priority) ---------------------------------------------------
def test_the_response_priority_field_changes_what_it_has_8(engine_cls):
    peer = _peer(engine_cls, conn_window=1 << 20)
    for sid, field in ((1, None), (3, None), (5, "u=5, i")):
        _request(peer, sid, field)
    peer.take()
    _respond(peer, 1, 3 * FRAME)
    _respond(peer, 3, 3 * FRAME, extra=[(b"priority", b"u=0")])   # (3, True) -> (0, True)
    _respond(peer, 5, 3 * FRAME, extra=[(b"priority", b"i=?0")])  # (5, True) -> (5, False)
    frames = peer.take()
    assert _runs(frames) == [3, 1, 5]
    headers = [f.decoded for f in frames if isinstance(f, HeadersFrame)]
    assert (b"priority", b"u=0") in headers[1]      # still sent: an end-to-end field


def test_informational_priority_fields_change_nothing_8(engine_cls):
    peer = _peer(engine_cls, conn_window=1 << 20)
    _request(peer, 1, "u=1")
    _request(peer, 3, "u=2")
    assert peer.engine.send_headers(1, [(b":status", b"103"), (b"priority", b"u=7")], False)
    peer.take()
    _respond(peer, 1, 2 * FRAME)
    _respond(peer, 3, 2 * FRAME)
    assert _runs(peer.take()) == [1, 3]


def test_set_priority_before_the_response_starts_holds(engine_cls):
    peer = _peer(engine_cls, conn_window=1 << 20)
    _request(peer, 1, "u=0")
    _request(peer, 3, "u=2")
    peer.engine.set_priority(1, 6, False)
    peer.engine.set_priority(3, 9, False)           # out of range: ignored
    _respond(peer, 1, 2 * FRAME)
    _respond(peer, 3, 2 * FRAME)
    assert _runs(peer.take()) == [3, 1]


def test_a_new_priority_keeps_flow_control_and_events(engine_cls):
    """Moving streams between rings and sequences mid-response loses no byte and no event."""
    peer = _peer(engine_cls)
    _queue_all(peer, [(1, "u=1"), (3, "u=1, i"), (5, None)], size=50_000)
    sent = {1: 0, 3: 0, 5: 0}
    for sid, u, i in [(1, 7, True), (3, 0, False), (5, 1, False), (1, 1, False), (3, 7, True)]:
        for stream_id, n in _data(peer.take()):
            sent[stream_id] += n
        peer.engine.set_priority(sid, u, i)
        peer.recv(peer.ff.window_update(0, 20_000))
    peer.recv(peer.ff.window_update(0, 1 << 20))
    for stream_id, n in _data(peer.take()):
        sent[stream_id] += n
    assert sent == {1: 50_000, 3: 50_000, 5: 50_000}
    assert peer.engine.queued_total == 0 and not peer.engine.wants_write


def test_a_drained_stream_comes_back_in_its_place(engine_cls):
    """A streaming response whose queue ran dry rejoins its sequence by stream id, before a
    higher id that waits."""
    peer = _peer(engine_cls, conn_window=1 << 20)
    _request(peer, 1, "u=2")
    _request(peer, 3, "u=2")
    assert peer.engine.send_headers(1, [(b":status", b"200")], False)
    assert peer.engine.send_headers(3, [(b":status", b"200")], False)
    peer.take()
    assert peer.engine.queue_data(1, b"a" * FRAME, False)
    assert peer.engine.queue_data(3, b"c" * 4 * FRAME, True)
    assert _runs(peer.take(max_data=2 * FRAME)) == [1, 3]
    assert StreamDrained(1) in peer.send_events()
    assert peer.engine.queue_data(1, b"a" * 2 * FRAME, True)   # back: before 3 (lower id)
    assert _runs(peer.take()) == [1, 3]
