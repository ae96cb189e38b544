"""The send side: send queues, the scheduler, send events, stop_reading, and freeing streams
(issue 7 part 3; RFC 9218 urgency; RFC 9113 §5.1, §8.1).

``queue_data`` keeps references; ``data_to_send`` hands out control frames and header blocks
first, then DATA: lower urgency first, round-robin within an urgency in frames of at most the
peer's SETTINGS_MAX_FRAME_SIZE and of one chunk. ``StreamDrained`` says a queue emptied before
the response ended; ``ResponseSent`` says the frame with END_STREAM went out. A stream closed
both ways is freed at once; many requests leave nothing behind.
"""
from __future__ import annotations

import gc
import time
import tracemalloc

import pytest
from hyperframe.frame import DataFrame, HeadersFrame, PingFrame, RstStreamFrame

from kyoukai_h2fast import _engine_c
from kyoukai_h2fast.config import ServerConfig
from kyoukai_h2fast.constants import ErrorCode, Setting
from kyoukai_h2fast.http2.events import (
    DataReceived,
    ResponseSent,
    StreamDrained,
    StreamReset,
    TrailersReceived,
)
from tests.helpers.engine_frames import ENGINE_PARAMS, Peer

pytestmark = pytest.mark.parametrize("engine_cls", ENGINE_PARAMS)

WIDE = {Setting.INITIAL_WINDOW_SIZE: 1 << 24}


def _wide(engine_cls, config=None) -> Peer:
    peer = Peer(engine_cls, config, settings=WIDE)
    peer.recv(peer.ff.window_update(0, (1 << 30)))
    return peer


def _data(frames) -> list:
    return [(f.stream_id, len(f.data), "END_STREAM" in f.flags) for f in frames
            if isinstance(f, DataFrame)]


def _start(peer: Peer, sid: int, body: bytes = b"", end: bool = False, urgency=None) -> None:
    peer.open(sid)
    assert peer.engine.send_headers(sid, [(b":status", b"200")], False)
    if urgency is not None:
        peer.engine.set_priority(sid, urgency, False)
    if body or end:
        assert peer.engine.queue_data(sid, body, end)


def test_headers_go_out_before_data_and_in_call_order(engine_cls):
    peer = _wide(engine_cls)
    _start(peer, 1)
    _start(peer, 3)
    assert peer.engine.queue_data(1, b"a" * 40_000, True)     # waits for data_to_send
    assert peer.engine.send_headers(3, [(b":status", b"103")], False) is False  # final sent
    peer.recv(peer.ff.ping(b"pingpong"))
    frames = peer.take()
    kinds = [(type(f).__name__, f.stream_id) for f in frames]
    assert kinds[:3] == [("HeadersFrame", 1), ("HeadersFrame", 3), ("PingFrame", 0)]
    assert _data(frames) == [(1, 16_384, False), (1, 16_384, False), (1, 7_232, True)]


def test_lower_urgency_goes_first_rfc9218(engine_cls):
    peer = _wide(engine_cls)
    _start(peer, 1, urgency=5)
    _start(peer, 3)                       # default urgency 3
    _start(peer, 5, urgency=0)
    peer.take()
    for sid in (1, 3, 5):                 # all wait: the first queue is not framed at once
        peer.engine.queue_data(sid, bytes([sid]) * 20_000, True)
    order = []
    for sid, _, _ in _data(peer.take()):
        if not order or order[-1] != sid:
            order.append(sid)
    assert order == [1, 5, 3, 1] or order == [5, 3, 1]


def test_streams_of_one_urgency_take_turns_frame_by_frame(engine_cls):
    peer = _wide(engine_cls)
    for sid in (1, 3, 5):
        _start(peer, sid)
    peer.take()
    peer.engine.set_priority(1, 2, False)          # ahead of the others: goes first ...
    for sid in (1, 3, 5):
        peer.engine.queue_data(sid, bytes([sid]) * 40_000, True)
    sizes = _data(peer.take())
    first = [s for s in sizes if s[0] == 1]
    assert sizes[:len(first)] == first              # ... alone
    rest = [sid for sid, _, _ in sizes[len(first):]]
    assert rest == [3, 5, 3, 5, 3, 5]              # then round-robin, one frame each


def test_a_frame_carries_one_chunk(engine_cls):
    peer = _wide(engine_cls)
    _start(peer, 1, b"first")                        # framed at once (nothing waits)
    peer.engine.queue_data(1, b"a" * 100, False)       # at once again: nothing waits
    peer.engine.queue_data(1, b"b" * 20_000, False)    # over one frame: waits ...
    peer.engine.queue_data(1, b"c", False)             # ... and this behind it
    assert _data(peer.take()) == [(1, 5, False), (1, 100, False), (1, 16_384, False),
                                  (1, 3_616, False), (1, 1, False)]
    peer.engine.queue_data(1, b"d" * 20_000, False)
    peer.engine.queue_data(1, b"", True)          # the end joins the last queued frame
    assert _data(peer.take()) == [(1, 16_384, False), (1, 3_616, True)]


def test_max_data_bounds_the_payload_of_one_call(engine_cls):
    peer = _wide(engine_cls)
    _start(peer, 1)
    _start(peer, 3)
    peer.take()
    peer.engine.queue_data(1, b"x" * 20_000, True)     # over one frame: both wait
    peer.engine.queue_data(3, b"y" * 20_000, True)
    first = _data(peer.take(max_data=30_000))
    assert sum(n for _, n, _ in first) == 30_000
    assert peer.engine.queued_total == 10_000
    assert sum(n for _, n, _ in _data(peer.take(max_data=0))) == 0
    assert sum(n for _, n, _ in _data(peer.take())) == 10_000
    assert sorted(e.stream_id for e in peer.send_events()) == [1, 3]


def test_queue_data_keeps_a_reference_without_copying(engine_cls):
    peer = _wide(engine_cls)
    _start(peer, 1)
    peer.take()
    chunks = [bytearray(b"m" * 20_000), memoryview(b"n" * 50), b"o"]
    for chunk in chunks:                   # the first is over one frame: all wait
        assert peer.engine.queue_data(1, chunk, False)
    assert peer.engine.queued(1) == 20_051 and peer.engine.queued_total == 20_051
    assert b"".join(bytes(f.data) for f in peer.take() if isinstance(f, DataFrame)) == \
        b"m" * 20_000 + b"n" * 50 + b"o"
    assert peer.engine.queued(1) == 0 and peer.send_events()[-1] == StreamDrained(1)


def test_send_events_drained_and_response_sent(engine_cls):
    peer = _wide(engine_cls)
    peer.open(1, method="POST", end_stream=False)
    _start(peer, 3)
    assert peer.engine.send_headers(1, [(b":status", b"200")], False)
    assert peer.engine.queue_data(1, b"part", False)
    assert peer.engine.queue_data(3, b"whole", True)
    peer.take()
    assert peer.send_events() == [StreamDrained(1), ResponseSent(3, True)]
    assert peer.send_events() == []
    assert peer.engine.queue_data(1, b"", True)                  # ends before the request
    peer.take()
    assert peer.send_events() == [ResponseSent(1, False)]
    assert peer.recv(peer.ff.data(1, b"body", end_stream=True)) == [
        DataReceived(1, b"body", 4, True)]


def test_a_header_block_with_end_stream_is_a_whole_response(engine_cls):
    peer = _wide(engine_cls)
    peer.open(1)
    assert peer.engine.send_headers(1, [(b":status", b"204")], True)
    assert peer.send_events() == [ResponseSent(1, True)]
    assert not peer.engine.queue_data(1, b"x", False)
    assert not peer.engine.send_headers(1, [(b":status", b"200")], False)


def test_informational_blocks_precede_the_final_one(engine_cls):
    peer = _wide(engine_cls)
    peer.open(1)
    assert peer.engine.send_headers(1, [(b":status", b"103"), (b"link", b"</s.css>")], False)
    assert not peer.engine.queue_data(1, b"x", False)      # no body before the final block
    assert not peer.engine.send_headers(1, [(b":status", b"100")], True)   # never END_STREAM
    assert peer.respond(1, b"ok")
    frames = peer.take()
    assert [f.decoded[0] for f in frames if isinstance(f, HeadersFrame)] == [
        (b":status", b"103"), (b":status", b"200")]


def test_calls_on_streams_not_open_for_sending_are_ignored(engine_cls):
    peer = _wide(engine_cls)
    for sid in (1, 2, 99):                       # idle, even (never open), far above
        assert not peer.engine.send_headers(sid, [(b":status", b"200")], False)
        assert not peer.engine.queue_data(sid, b"x", True)
        peer.engine.reset_stream(sid, ErrorCode.CANCEL)
        peer.engine.set_priority(sid, 1, True)
        peer.engine.stop_reading(sid, 0)
        assert peer.engine.queued(sid) == 0
    assert peer.take() == [] and peer.send_events() == []


def test_bad_header_fields_raise_without_touching_the_stream(engine_cls):
    """Compiled engine: header fields are (bytes, bytes) tuples; anything else raises
    TypeError before the HPACK state changes (the contract leaves other types unspecified)."""
    if engine_cls is not None and engine_cls.__module__ != "kyoukai_h2fast._engine_c":
        engine_cls = _engine_c.Engine
    peer = _wide(engine_cls)
    peer.open(1)
    with pytest.raises(TypeError):
        peer.engine.send_headers(1, [(b":status", b"200"), ("x-str", "value")], False)
    assert peer.take() == []
    assert peer.respond(1, b"still fine", extra=[(b"x-ok", b"1")])
    assert [f.decoded for f in peer.take() if isinstance(f, HeadersFrame)] == [
        [(b":status", b"200"), (b"x-ok", b"1")]]


def test_reset_stream_drops_its_queue_and_reports_nothing(engine_cls):
    peer = _wide(engine_cls, ServerConfig())
    _start(peer, 1)
    _start(peer, 3, b"b" * 10, True)
    peer.take()
    peer.send_events()
    peer.engine.queue_data(1, b"a" * 100_000, False)
    peer.engine.reset_stream(1, ErrorCode.CANCEL)
    assert peer.engine.queued_total == 0
    frames = peer.take()
    assert [(f.stream_id, f.error_code) for f in frames if isinstance(f, RstStreamFrame)] == \
        [(1, ErrorCode.CANCEL)]
    assert _data(frames) == [] and peer.send_events() == []


def test_peer_reset_drops_the_queue(engine_cls):
    peer = _wide(engine_cls)
    _start(peer, 1)
    _start(peer, 3, b"b", True)
    peer.engine.queue_data(1, b"a" * 50_000, False)
    assert peer.recv(peer.ff.rst_stream(1, ErrorCode.CANCEL)) == [
        StreamReset(1, ErrorCode.CANCEL, True)]
    assert peer.engine.queued_total == 0 and _data(peer.take()) == [(3, 1, True)]


# -- stop_reading (RFC 9113 §8.1) ------------------------------------------------------------------
def test_stop_reading_credits_later_data_and_reports_nothing_8_1(engine_cls):
    peer = _wide(engine_cls, ServerConfig(stream_window=65_535, connection_window=65_535))
    peer.open(1, method="POST", end_stream=False)
    assert peer.respond(1, b"413 early")
    peer.take()
    assert peer.send_events() == [ResponseSent(1, False)]
    peer.engine.stop_reading(1, 1 << 20)
    sent = 0
    for _ in range(10):                       # 10 x 16 KiB: more than both windows
        assert peer.recv(peer.ff.data(1, b"u" * 16_384)) == []
        sent += 16_384
    frames = peer.take()
    assert sum(peer.window_updates(frames, 0)) >= sent - 65_535
    assert sum(peer.window_updates(frames, 1)) >= sent - 65_535
    assert peer.recv(peer.ff.data(1, b"", end_stream=True)) == []
    frames = peer.take()
    assert peer.rst_codes(frames, 1) == []
    # The request ended: a PING wakes clients that wait for the server to send anything.
    assert [(f.opaque_data, sorted(f.flags)) for f in frames if isinstance(f, PingFrame)] == [
        (b"\0" * 8, [])]
    assert peer.recv(peer.ff.rst_stream(1)) == []      # gone: closed normally


def test_stop_reading_resets_past_the_allowance_8_1(engine_cls):
    peer = _wide(engine_cls)
    peer.open(1, method="POST", end_stream=False)
    assert peer.respond(1, b"done")
    peer.engine.stop_reading(1, 20_000)
    peer.take()
    assert peer.recv(peer.ff.data(1, b"u" * 16_384)) == []
    assert peer.rst_codes(peer.take(), 1) == []
    assert peer.recv(peer.ff.data(1, b"u" * 16_384)) == []
    assert peer.rst_codes(peer.take(), 1) == [ErrorCode.NO_ERROR]
    assert peer.recv(peer.ff.data(1, b"u" * 100)) == []   # we reset it: ignored
    assert peer.error is None


def test_after_stop_reading_resets_are_not_reported(engine_cls):
    peer = _wide(engine_cls)
    peer.open(1, method="POST", end_stream=False)
    peer.open(3, method="POST", end_stream=False)
    peer.engine.stop_reading(1, 1 << 20)
    peer.engine.stop_reading(3, 1 << 20)
    assert peer.recv(peer.ff.headers(1, [("x-t", "1")], end_stream=True)) == [
        TrailersReceived(1, [(b"x-t", b"1")])]         # the end of the request is reported
    assert peer.recv(peer.ff.rst_stream(3)) == []      # the protocol is done with it
    peer.engine.reset_stream(1, 0)          # still open for our response: allowed
    assert [type(e) for e in peer.open(5, end_stream=False)] != []


# -- freeing ---------------------------------------------------------------------------------------
def _cycle(peer: Peer, sid: int, body: bool) -> None:
    """One request/response (the engine directly: the Peer's own records would grow)."""
    engine = peer.engine
    if body:
        engine.receive(peer.ff.request(sid, method="POST", end_stream=False))
        (event,) = engine.receive(peer.ff.data(sid, b"b" * 100, end_stream=True))
        engine.acknowledge(sid, event.flow_controlled_length)
    else:
        engine.receive(peer.ff.request(sid))
    assert engine.send_headers(sid, [(b":status", b"200")], False)
    assert engine.queue_data(sid, b"hello", True)
    peer.engine.data_to_send()
    peer.send_events()


def _growth(run, warm_up: int = 5000, windows: int = 8, per_window: int = 5000) -> list:
    """Bytes held (traced) after each window of ``per_window`` more calls of ``run(i)``,
    following ``warm_up`` calls that fill the bounded memories."""
    for i in range(warm_up):
        run(i)
    gc.collect()
    samples = []
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        i = warm_up
        for _ in range(windows):
            for j in range(i, i + per_window):
                run(j)
            i += per_window
            gc.collect()
            samples.append(tracemalloc.get_traced_memory()[0] - base)
    finally:
        tracemalloc.stop()
    return samples


#: How much higher memory may be in the second half of the run than in the first: a leak of
#: even 13 bytes per stream (20,000 streams) goes over it. Bounded structures that grow and
#: shrink (a dict's table) stay under their first-half peak.
LEAK_BOUND = 256 * 1024


def _assert_no_leak(samples: list) -> None:
    half = len(samples) // 2
    assert max(samples[half:]) <= max(samples[:half]) + LEAK_BOUND, samples
    assert max(samples) < 8 << 20, samples


@pytest.mark.parametrize("body", [False, True], ids=["get", "post"])
def test_finished_streams_leave_nothing_behind(engine_cls, body):
    """Memory is correctness: after 5,000 requests (the bounded memory of how recently closed
    streams ended is full), 40,000 more leave nothing behind."""
    peer = _wide(engine_cls)
    _assert_no_leak(_growth(lambda i: _cycle(peer, 2 * i + 1, body)))
    assert peer.engine.queued_total == 0 and not peer.engine.wants_write
    if hasattr(peer.engine, "open_streams"):      # compiled: nothing live, memory full
        assert peer.engine.open_streams == 0
        assert peer.engine.closed_streams_remembered == 4096


def test_reset_streams_leave_nothing_behind(engine_cls, monkeypatch):
    clock = [0.0]

    def monotonic():            # 10 resets per second: under the rapid-reset guard
        clock[0] += 0.1
        return clock[0]

    monkeypatch.setattr(time, "monotonic", monotonic)
    peer = _wide(engine_cls)
    engine = peer.engine

    def run(i):
        sid = 2 * i + 1
        engine.receive(peer.ff.request(sid, end_stream=False))
        assert engine.send_headers(sid, [(b":status", b"200")], False)
        assert engine.queue_data(sid, b"p" * 20_000, False)
        engine.receive(peer.ff.rst_stream(sid))
        engine.data_to_send()
        engine.send_events()

    _assert_no_leak(_growth(run))
    assert peer.engine.queued_total == 0


def test_memory_of_a_burst_is_given_back(engine_cls):
    """A burst (a big response header block, many DATA frames at once) leaves no big buffer
    held by the connection once its bytes were handed out."""
    peer = _wide(engine_cls)
    peer.open(1)
    huge = [(b":status", b"200")] + [(b"x-%d" % i, b"v" * 4000) for i in range(60)]
    chunk = b"z" * 100_000
    peer.engine.data_to_send()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        assert peer.engine.send_headers(1, huge, False)
        for _ in range(40):
            assert peer.engine.queue_data(1, chunk, False)
        assert peer.engine.queue_data(1, b"", True)
        sent = 0
        while peer.engine.wants_write:
            sent += len(peer.engine.data_to_send())
        peer.send_events()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert sent > 4_000_000
    assert after - before < 64 * 1024, after - before
