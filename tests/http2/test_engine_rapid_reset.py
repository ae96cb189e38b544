"""The rapid-reset guard (CVE-2023-44487), in memory: more than ``max_resets_per_10s`` streams
reset by the peer within 10 seconds is a connection error ENHANCE_YOUR_CALM (RFC 9113 §5.4.1,
§10.5); resets spread over a longer time are fine. The clock is ``time.monotonic``, replaced
here so the verdict does not depend on the machine's speed.
"""
from __future__ import annotations

import time

import pytest
from hyperframe.frame import GoAwayFrame

from kyoukai_h2fast.config import ServerConfig
from kyoukai_h2fast.constants import ErrorCode
from kyoukai_h2fast.errors import ConnectionFailed
from tests.helpers.engine_frames import ENGINE_PARAMS, Peer

pytestmark = pytest.mark.parametrize("engine_cls", ENGINE_PARAMS)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _reset(peer: Peer, sid: int) -> list:
    peer.recv(peer.ff.request(sid, end_stream=False))
    return peer.recv(peer.ff.rst_stream(sid))


def test_more_resets_than_allowed_within_10s_is_enhance_your_calm(engine_cls, monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(time, "monotonic", clock)
    peer = Peer(engine_cls, ServerConfig(max_resets_per_10s=10))
    for i in range(10):
        clock.now += 0.5
        assert len(_reset(peer, 2 * i + 1)) == 1
    with pytest.raises(ConnectionFailed) as info:
        _reset(peer, 21)
    assert info.value.error_code == ErrorCode.ENHANCE_YOUR_CALM
    goaways = [f for f in peer.take() if isinstance(f, GoAwayFrame)]
    assert [(g.error_code, g.additional_data) for g in goaways] == [
        (ErrorCode.ENHANCE_YOUR_CALM, b"too many stream resets")]


def test_resets_spread_over_more_than_10s_are_allowed(engine_cls, monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(time, "monotonic", clock)
    peer = Peer(engine_cls, ServerConfig(max_resets_per_10s=10))
    for i in range(60):
        clock.now += 1.5          # 6.67 resets per 10 s
        assert len(_reset(peer, 2 * i + 1)) == 1
    assert peer.error is None


def test_resets_by_the_server_do_not_count(engine_cls, monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(time, "monotonic", clock)
    peer = Peer(engine_cls, ServerConfig(max_resets_per_10s=10))
    for i in range(50):
        peer.recv(peer.ff.request(2 * i + 1, end_stream=False))
        peer.engine.reset_stream(2 * i + 1, ErrorCode.CANCEL)
        peer.recv(peer.ff.rst_stream(2 * i + 1))     # crossing: the stream is already gone
    assert peer.error is None
