"""Response trailers (RFC 9113 §8.1): ``Engine.send_trailers`` in both engines.

A trailer block is a HEADERS frame with END_STREAM after the response's DATA; the engine takes
it only once the header block went and the stream's send queue is empty (the protocol waits for
``StreamDrained``), and never for a response that ended or a stream that is gone.
"""
from __future__ import annotations

import pytest
from hyperframe.frame import DataFrame, HeadersFrame

from kyoukai_h2fast.constants import ErrorCode
from kyoukai_h2fast.http2.events import ResponseSent, StreamDrained
from tests.helpers.engine_frames import ENGINE_PARAMS, Peer

pytestmark = pytest.mark.parametrize("engine_cls", ENGINE_PARAMS)

TRAILERS = [(b"x-checksum", b"abc"), (b"grpc-status", b"0")]


def _opened(engine_cls) -> Peer:
    peer = Peer(engine_cls)
    peer.open(1)
    assert peer.engine.send_headers(1, [(b":status", b"200")], False)
    return peer


def test_trailers_follow_the_data_with_end_stream(engine_cls):
    peer = _opened(engine_cls)
    assert peer.engine.queue_data(1, b"x" * 1000, False)
    frames = peer.take()
    assert [type(f) for f in frames] == [HeadersFrame, DataFrame]
    assert any(isinstance(e, StreamDrained) for e in peer.engine.send_events())
    assert peer.engine.send_trailers(1, TRAILERS)
    frames = peer.take()
    assert len(frames) == 1 and isinstance(frames[0], HeadersFrame)
    assert "END_STREAM" in frames[0].flags
    assert frames[0].decoded == TRAILERS
    assert [type(e) for e in peer.engine.send_events()] == [ResponseSent]


def test_refused_while_data_is_queued(engine_cls):
    peer = _opened(engine_cls)
    peer.engine.queue_data(1, b"y" * 200_000, False)  # beyond the 65,535 window
    peer.take()
    assert peer.engine.queued(1) > 0
    assert not peer.engine.send_trailers(1, TRAILERS)
    assert peer.take() == []


def test_refused_before_headers_and_after_the_end(engine_cls):
    peer = Peer(engine_cls)
    peer.open(1)
    assert not peer.engine.send_trailers(1, TRAILERS)          # no response headers yet
    assert peer.engine.send_headers(1, [(b":status", b"200")], False)
    assert peer.engine.queue_data(1, b"done", True)
    peer.take()
    assert not peer.engine.send_trailers(1, TRAILERS)          # the response ended
    assert not peer.engine.send_trailers(99, TRAILERS)         # unknown stream


def test_refused_on_a_reset_stream(engine_cls):
    peer = _opened(engine_cls)
    peer.engine.reset_stream(1, ErrorCode.CANCEL)
    assert not peer.engine.send_trailers(1, TRAILERS)


def test_fields_must_be_bytes_pairs(engine_cls):
    peer = _opened(engine_cls)
    with pytest.raises(TypeError):
        peer.engine.send_trailers(1, [("x-a", "b")])
