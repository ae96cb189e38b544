"""Races made deterministic: late frames get one outcome whatever our side did meanwhile
(issue 7, "Proof of correctness"; RFC 9113 §5.1, §6.9.1).

* DATA or HEADERS from the peer on a stream the peer reset: stream error STREAM_CLOSED (§5.1:
  "An endpoint that receives any frame other than PRIORITY after receiving a RST_STREAM MUST
  treat that as a stream error ... of type STREAM_CLOSED"), whether our response had completed
  before the reset, was in progress, or would have come after the late frame.
* A WINDOW_UPDATE overflowing a stream's send window after we sent END_STREAM:
  RST_STREAM(FLOW_CONTROL_ERROR) on that stream (§6.9.1), whether or not the peer had ended the
  request (the stream closed, or half-closed (local)), and with the app answering before,
  during or after the frame.

The wire outcome is the same in every variant; a StreamReset event is reported only while the
protocol still knows the stream (it is live).
"""
from __future__ import annotations

import pytest
from hyperframe.frame import DataFrame, RstStreamFrame

from kyoukai_h2fast.constants import ErrorCode, Setting
from kyoukai_h2fast.http2.events import ResponseSent, StreamReset
from tests.helpers.engine_frames import ENGINE_PARAMS, Peer

pytestmark = pytest.mark.parametrize("engine_cls", ENGINE_PARAMS)

MAX = 2**31 - 1
STREAM_CLOSED = ErrorCode.STREAM_CLOSED


def _late(peer: Peer, kind: str) -> bytes:
    if kind == "data":
        return peer.ff.data(1, b"late", end_stream=True)
    return peer.ff.headers(1, [("x-trailer", "late")], end_stream=True)


def _rst_frames(peer: Peer, frames) -> list:
    return [(f.stream_id, f.error_code) for f in frames if isinstance(f, RstStreamFrame)]


# -- frames after the peer's RST_STREAM -----------------------------------------------------------
@pytest.mark.parametrize("kind", ["data", "headers"])
@pytest.mark.parametrize("response", ["complete-request-open", "complete-request-complete",
                                      "in-progress", "after", "none"])
def test_frames_on_a_stream_the_peer_reset_are_stream_closed_5_1(engine_cls, kind, response):
    peer = Peer(engine_cls, settings={Setting.INITIAL_WINDOW_SIZE: 5})
    request_complete = response == "complete-request-complete"
    peer.open(1, method="POST", end_stream=request_complete)
    if response.startswith("complete"):
        assert peer.respond(1, b"done")                        # our response ended first
    elif response == "in-progress":
        assert peer.respond(1, b"more than five bytes")        # window 5: still sending
    peer.take()
    peer.send_events()
    peer.recv(peer.ff.rst_stream(1, ErrorCode.CANCEL))
    events = peer.recv(_late(peer, kind))
    assert events == []                                        # the protocol forgot it
    frames = peer.take()
    assert _rst_frames(peer, frames) == [(1, STREAM_CLOSED)]
    assert not [f for f in frames if isinstance(f, DataFrame)]
    if response == "after":                                    # the app answers now
        assert not peer.respond(1, b"too late")
        assert peer.take() == []
    assert peer.error is None and peer.engine.queued_total == 0
    assert [type(e) for e in peer.open(3)] != []               # the connection goes on


@pytest.mark.parametrize("kind", ["data", "headers"])
def test_reset_crossing_our_end_stream_is_remembered_5_1(engine_cls, kind):
    """The peer's RST_STREAM arrives after the stream closed normally (it was sent before the
    peer saw our END_STREAM): a later frame is still the stream error of a reset stream, not
    the connection error of a stream closed by END_STREAM."""
    peer = Peer(engine_cls)
    peer.open(1)
    assert peer.respond(1, b"done")
    peer.take()
    assert peer.recv(peer.ff.rst_stream(1, ErrorCode.CANCEL)) == []
    assert peer.recv(_late(peer, kind)) == []
    assert _rst_frames(peer, peer.take()) == [(1, STREAM_CLOSED)]
    assert peer.error is None


# -- WINDOW_UPDATE overflow after our END_STREAM --------------------------------------------------
@pytest.mark.parametrize("request_ends", [False, True], ids=["request-open", "request-ended"])
@pytest.mark.parametrize("answer", ["before", "during", "after"])
def test_window_update_overflow_after_end_stream_is_flow_control_error_6_9_1(
        engine_cls, request_ends, answer):
    peer = Peer(engine_cls, settings={Setting.INITIAL_WINDOW_SIZE: 10})
    peer.open(1, method="POST", end_stream=False)
    if answer in ("before", "during"):
        assert peer.respond(1, b"01234" if answer == "before" else b"0123456789abc")
    peer.take()
    if request_ends:
        peer.recv(peer.ff.data(1, b"", end_stream=True))
    if answer == "during":      # 3 bytes wait: our END_STREAM is not out yet
        peer.recv(peer.ff.window_update(1, 1))     # (not taken: the window stays at 1)
        assert peer.engine.queued(1) == 3
        events = peer.recv(peer.ff.window_update(1, MAX))
        assert events == [StreamReset(1, ErrorCode.FLOW_CONTROL_ERROR, False)]
    elif answer == "before":    # END_STREAM went out; the stream may be fully closed
        events = peer.recv(peer.ff.window_update(1, MAX))
        live = not request_ends
        assert events == ([StreamReset(1, ErrorCode.FLOW_CONTROL_ERROR, False)] if live else [])
    else:                       # the app answers after the frame
        events = peer.recv(peer.ff.window_update(1, MAX))
        assert events == [StreamReset(1, ErrorCode.FLOW_CONTROL_ERROR, False)]
        assert not peer.respond(1, b"late")
    frames = peer.take()
    assert _rst_frames(peer, frames) == [(1, ErrorCode.FLOW_CONTROL_ERROR)]
    assert not [f for f in frames if isinstance(f, DataFrame)]
    assert peer.engine.queued_total == 0
    # Frames still in flight for the stream are ignored now (we reset it).
    assert peer.recv(peer.ff.window_update(1, 1), peer.ff.data(1, b"x")) == []
    assert _rst_frames(peer, peer.take()) == []
    assert peer.error is None


def test_window_updates_on_a_closed_stream_add_up_to_an_overflow_6_9_1(engine_cls):
    """The closed stream's window is remembered: several updates together overflow it."""
    peer = Peer(engine_cls)
    peer.open(1)
    assert peer.respond(1, b"done")
    peer.take()
    assert peer.send_events() == [ResponseSent(1, True)]
    half = (MAX - (65_535 - 4)) // 2 + 1    # the window after "done"
    assert peer.recv(peer.ff.window_update(1, half)) == []
    assert _rst_frames(peer, peer.take()) == []
    assert peer.recv(peer.ff.window_update(1, half)) == []
    assert _rst_frames(peer, peer.take()) == [(1, ErrorCode.FLOW_CONTROL_ERROR)]
