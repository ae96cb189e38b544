"""WebSockets over HTTP/2 (RFC 8441) end to end, with the raw h2 client: the setting
advertised, extended CONNECT answered 200, WebSocket frames in DATA both ways beside an ordinary
GET on the same connection, the close handshake ending the stream, bad requests answered."""
from __future__ import annotations

import threading

import h2.events
import h2.settings
import pytest

from kyoukai_h2fast.websocket import WebSocketConnection
from kyoukai_h2fast.websocket.events import BytesMessage, CloseReceived, TextMessage
from tests.helpers.h2client import H2Client
from tests.helpers.ws_server import SLEEPY_GO, serve_in_thread


@pytest.fixture(scope="module")
def server():
    component, stop = serve_in_thread(ws_ping_interval=0)
    yield component
    stop()


def _client(server) -> H2Client:
    client = H2Client("127.0.0.1", server.port, validate=False)
    client.wait_for(lambda ev: any(isinstance(e, h2.events.RemoteSettingsChanged)
                                   for e in client.events))
    return client


def _connect(client: H2Client, path: bytes = b"/echo", protocol: bytes = b"websocket",
             extra=((b"sec-websocket-version", b"13"),)) -> int:
    return client.request_raw([(b":method", b"CONNECT"), (b":protocol", protocol),
                               (b":scheme", b"http"), (b":path", path),
                               (b":authority", b"localhost"), *extra], end_stream=False)


_SEEN: dict = {}


def _messages(client: H2Client, sid: int, ws: WebSocketConnection, count: int) -> list:
    """Every event ``ws`` (the client's side) read from the stream so far, once ``count``."""
    got, seen = _SEEN.setdefault(ws, ([], [0]))   # (the object itself: ids are reused)

    def more(_ev) -> bool:
        data = client.body(sid)
        if len(data) > seen[0]:
            got.extend(ws.receive(data[seen[0]:]))
            seen[0] = len(data)
        return len(got) >= count or client.stream_ended(sid)
    client.wait_for(more)
    return list(got)


def test_setting_advertised_and_websocket_echo_beside_a_get(server):
    with _client(server) as client:
        assert client.conn.remote_settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] == 1
        before = sum(c.websocket_streams for c in server.connections
                     if hasattr(c, "websocket_streams"))
        sid = _connect(client, b"/info?a=b", extra=((b"sec-websocket-version", b"13"),
                                                    (b"sec-websocket-protocol", b"chat")))
        client.wait_for(lambda ev: client.headers(sid))
        assert client.headers(sid)[":status"] == "200"
        assert client.headers(sid)["sec-websocket-protocol"] == "chat"
        ws = WebSocketConnection(client=True)
        [info] = _messages(client, sid, ws, 1)
        assert '"http_version": "2"' in info.data and '"query_string": "a=b"' in info.data
        assert sum(c.websocket_streams for c in server.connections
                   if hasattr(c, "websocket_streams")) == before + 1
        # an ordinary request on the same connection, while the WebSocket is open
        headers, body = client.get("/plain")
        assert headers[":status"] == "200" and body == b"plain /plain"
        client.send_body(sid, ws.send_text("hé") + ws.send_bytes(b"\x00" * 70_000),
                         end_stream=False)            # (in frames, under flow control)
        got = _messages(client, sid, ws, 3)
        assert got[1:] == [TextMessage("hé"), BytesMessage(b"\x00" * 70_000)]
        client.conn.send_data(sid, ws.send_close(4000, "done"))
        client.flush()
        got = _messages(client, sid, ws, 4)
        assert got[3] == CloseReceived(4000, "")
        client.conn.end_stream(sid)
        client.flush()
        client.wait_for(lambda ev: client.stream_ended(sid))
        assert client.stream_reset(sid) is None


def test_app_denial_and_close_over_http2(server):
    with _client(server) as client:
        sid = _connect(client, b"/deny")
        headers, body = client.response(sid)
        assert headers[":status"] == "403" and body == b"no entry"
        sid = _connect(client, b"/close4001")
        client.wait_for(lambda ev: client.headers(sid))
        ws = WebSocketConnection(client=True)
        [close] = _messages(client, sid, ws, 1)
        assert close == CloseReceived(4001, "bye")


def test_extended_connect_ended_at_once_gets_400(server):
    with _client(server) as client:
        sid = client.request_raw([(b":method", b"CONNECT"), (b":protocol", b"websocket"),
                                  (b":scheme", b"http"), (b":path", b"/echo"),
                                  (b":authority", b"localhost"),
                                  (b"sec-websocket-version", b"13")], end_stream=True)
        headers, _ = client.response(sid)
        assert headers[":status"] == "400"


def test_graceful_shutdown_closes_http2_websockets_1001():
    component, stop = serve_in_thread(ws_ping_interval=0)
    stopping = threading.Thread(target=stop)
    try:
        with _client(component) as client:
            sid = _connect(client)
            client.wait_for(lambda ev: client.headers(sid))
            stopping.start()
            ws = WebSocketConnection(client=True)
            [close] = _messages(client, sid, ws, 1)
            assert close == CloseReceived(1001, "server shutting down")
            assert client.goaway() is not None
            client.conn.send_data(sid, ws.data_to_send(), end_stream=True)   # the echo
            client.flush()
            client.wait_for(lambda ev: client.stream_ended(sid))
    finally:
        if stopping.ident is None:
            stopping.start()
        stopping.join(10)


@pytest.mark.parametrize(("protocol", "extra", "status"), [
    pytest.param(b"foo", ((b"sec-websocket-version", b"13"),), "501", id="unknown-protocol"),
    pytest.param(b"websocket", (), "400", id="no-version"),
])
def test_bad_extended_connect_gets_its_status(server, protocol, extra, status):
    with _client(server) as client:
        sid = _connect(client, protocol=protocol, extra=extra)
        headers, _ = client.response(sid)
        assert headers[":status"] == status
        headers, body = client.get("/after")           # the connection goes on
        assert body == b"plain /after"


def test_malformed_extended_connect_is_reset(server):
    with _client(server) as client:
        sid = client.request_raw([(b":method", b"CONNECT"), (b":protocol", b"websocket"),
                                  (b":path", b"/echo"), (b":authority", b"localhost")],
                                 end_stream=False)      # no :scheme (RFC 8441 §4)
        client.wait_for(lambda ev: client.stream_reset(sid) is not None)
        assert client.rst_codes(sid) == [1]            # PROTOCOL_ERROR


def test_not_advertised_for_an_app_without_websockets():
    component, stop = serve_in_thread(ws_ping_interval=0)
    try:
        component.websocket_app = None
        with _client(component) as client:
            settings = client.conn.remote_settings
            assert settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] == 0
            sid = _connect(client)
            client.wait_for(lambda ev: client.stream_reset(sid) is not None)
            assert client.rst_codes(sid) == [1]
    finally:
        stop()


def test_app_that_does_not_read_closes_the_stream_window(server):
    SLEEPY_GO.clear()
    with _client(server) as client:
        sid = _connect(client, b"/sleepy")
        client.wait_for(lambda ev: client.headers(sid))
        ws = WebSocketConnection(client=True)
        message = ws.send_bytes(b"m" * 16_000)
        total = 0
        pending = b""
        for _ in range(200):                       # 3.2 MB offered
            pending = pending or message
            sent = client.send_window_available(sid, pending)
            total += sent
            pending = pending[sent:]
            if pending:
                client.read_for(0.5)               # any WINDOW_UPDATE that would come
                if client.conn.local_flow_control_window(sid) == 0:
                    client.read_for(0.5)
                    if client.conn.local_flow_control_window(sid) == 0:
                        break
        # at most: 32 messages queued for the app (ws_max_queue), the read that filled the
        # queue (up to 256 KiB), one stream window (1 MiB); not the 3.2 MB offered
        assert 1024 * 1024 < total < 32 * 16_100 + 256 * 1024 + 1024 * 1024, total
        assert client.conn.local_flow_control_window(sid) == 0
        SLEEPY_GO.set()                            # the app reads: the window reopens
        client.wait_for(lambda ev: client.conn.local_flow_control_window(sid) > 0)
