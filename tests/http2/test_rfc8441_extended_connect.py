"""RFC 8441 in both engines, in memory: SETTINGS_ENABLE_CONNECT_PROTOCOL, extended CONNECT
as its own event, the malformed ones as stream errors, and the tunnel's DATA both ways under
flow control beside an ordinary request."""
from __future__ import annotations

import pytest
from hyperframe.frame import DataFrame, HeadersFrame, SettingsFrame

from kyoukai_h2fast.config import ServerConfig
from kyoukai_h2fast.constants import ErrorCode, Setting
from kyoukai_h2fast.http2.events import (
    DataReceived,
    ExtendedConnectReceived,
    RequestReceived,
    StreamReset,
)
from tests.helpers.engine_frames import ENGINE_PARAMS, Peer

pytestmark = pytest.mark.parametrize("engine_cls", ENGINE_PARAMS)

WEBSOCKET = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
             (":path", "/chat?room=1"), (":authority", "example.com"),
             ("sec-websocket-version", "13")]


def _connect(peer: Peer, stream_id: int, headers=WEBSOCKET, end_stream: bool = False) -> list:
    return peer.recv(peer.ff.headers(stream_id, headers, end_stream=end_stream))


@pytest.mark.parametrize("enabled", [True, False])
def test_setting_advertised_as_configured_rfc8441_3(engine_cls, enabled):
    peer = Peer(engine_cls, ServerConfig(ws_http2=enabled), handshake=False)
    settings = peer.of(peer.take(), SettingsFrame)[0].settings
    assert settings[Setting.ENABLE_CONNECT_PROTOCOL] == int(enabled)


def test_extended_connect_is_its_own_event_rfc8441_4(engine_cls):
    peer = Peer(engine_cls)
    events = _connect(peer, 1)
    assert len(events) == 1 and isinstance(events[0], ExtendedConnectReceived)
    event = events[0]
    assert (event.stream_id, event.end_stream, event.protocol) == (1, False, b"websocket")
    assert (b":path", b"/chat?room=1") in event.headers


def test_protocol_without_the_setting_is_a_stream_error_rfc8441_3(engine_cls):
    peer = Peer(engine_cls, ServerConfig(ws_http2=False))
    assert _connect(peer, 1) == []
    assert peer.rst_codes(peer.take(), 1) == [ErrorCode.PROTOCOL_ERROR]
    # the connection goes on
    assert isinstance(peer.open(3)[0], RequestReceived)


@pytest.mark.parametrize("headers", [
    pytest.param([(":method", "GET"), *WEBSOCKET[1:]], id="protocol-on-GET"),
    pytest.param([h for h in WEBSOCKET if h[0] != ":scheme"], id="no-scheme"),
    pytest.param([h for h in WEBSOCKET if h[0] != ":path"], id="no-path"),
    pytest.param([h for h in WEBSOCKET if h[0] not in (":authority",)], id="no-authority"),
    pytest.param([*WEBSOCKET[:2], (":protocol", "websocket"), *WEBSOCKET[2:]],
                 id="protocol-twice"),
    pytest.param([(":method", "CONNECT"), (":scheme", "https"), (":path", "/"),
                  (":authority", "example.com")], id="plain-CONNECT-with-path-rfc9113-8.5"),
])
def test_malformed_extended_connect_is_reset_protocol_error(engine_cls, headers):
    peer = Peer(engine_cls)
    assert _connect(peer, 1, headers) == []
    assert peer.rst_codes(peer.take(), 1) == [ErrorCode.PROTOCOL_ERROR]


def test_plain_connect_stays_an_ordinary_request_rfc9113_8_5(engine_cls):
    peer = Peer(engine_cls)
    events = _connect(peer, 1, [(":method", "CONNECT"), (":authority", "example.com:443")])
    assert len(events) == 1 and isinstance(events[0], RequestReceived)


def test_tunnel_data_both_ways_beside_a_get(engine_cls):
    peer = Peer(engine_cls)
    _connect(peer, 1)
    assert peer.engine.send_headers(1, [(b":status", b"200")], False)
    events = peer.open(3)
    assert isinstance(events[0], RequestReceived)
    events = peer.recv(peer.ff.data(1, b"\x81\x85abcd" + b"x" * 5))
    assert events == [DataReceived(1, b"\x81\x85abcd" + b"x" * 5, 11, False)]
    peer.engine.acknowledge(1, 11)
    assert peer.engine.queue_data(1, b"\x81\x02hi", False)
    peer.respond(3, b"plain")
    frames = peer.take()
    headers = {f.stream_id: f.decoded for f in peer.of(frames, HeadersFrame)}
    assert headers[1] == [(b":status", b"200")]
    data = {(f.stream_id, bytes(f.data), "END_STREAM" in f.flags)
            for f in peer.of(frames, DataFrame)}
    assert (1, b"\x81\x02hi", False) in data and (3, b"plain", True) in data
    # the tunnel ends like any stream: END_STREAM both ways
    assert peer.engine.queue_data(1, b"", True)
    peer.take()
    events = peer.recv(peer.ff.data(1, b"", end_stream=True))
    assert events == [DataReceived(1, b"", 0, True)]
    assert not peer.engine.queue_data(1, b"more", False)


def test_tunnel_send_waits_for_the_stream_window(engine_cls):
    peer = Peer(engine_cls, settings={Setting.INITIAL_WINDOW_SIZE: 10})
    _connect(peer, 1)
    peer.engine.send_headers(1, [(b":status", b"200")], False)
    peer.engine.queue_data(1, b"y" * 25, False)
    sent = sum(len(f.data) for f in peer.of(peer.take(), DataFrame, 1))
    assert sent == 10 and peer.engine.queued(1) == 15
    peer.recv(peer.ff.window_update(1, 100))
    sent = sum(len(f.data) for f in peer.of(peer.take(), DataFrame, 1))
    assert sent == 15 and peer.engine.queued(1) == 0


def test_peer_reset_of_the_tunnel_is_reported(engine_cls):
    peer = Peer(engine_cls)
    _connect(peer, 1)
    events = peer.recv(peer.ff.rst_stream(1, ErrorCode.CANCEL))
    assert [type(e) for e in events] == [StreamReset]
