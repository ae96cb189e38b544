"""The issue's "done when": a FastAPI app with an HTTP endpoint, a WebSocket endpoint and
lifespan state, run by ``python -m kyoukai_h2fast``, over HTTP/1.1 (the websockets client) and
HTTP/2 (RFC 8441, the raw h2 client), compiled and pure builds."""
from __future__ import annotations

import json

import h2.events
import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from kyoukai_h2fast.websocket import WebSocketConnection
from kyoukai_h2fast.websocket.events import TextMessage
from tests.helpers.h2client import H2Client

APP = "tests.served_apps.ws_apps:fastapi_ws_app"


def test_fastapi_websocket_over_http11(servers, impl):
    server = servers.get(APP, impl)
    with connect(f"ws://127.0.0.1:{server.port}/ws", subprotocols=["chat"]) as ws:
        assert ws.subprotocol == "chat"
        hello = json.loads(ws.recv(timeout=5))
        assert hello == {"greeting": "hello from lifespan", "http_version": "1.1"}
        ws.send("shout")
        assert ws.recv(timeout=5) == "SHOUT"
    with pytest.raises(InvalidStatus) as info:                  # closed before the accept
        connect(f"ws://127.0.0.1:{server.port}/private")
    assert info.value.response.status_code == 403
    assert httpx.get(f"http://127.0.0.1:{server.port}/items/7").json() == {"item": 7}


def test_fastapi_websocket_over_http2(servers, impl):
    server = servers.get(APP, impl)
    with H2Client("127.0.0.1", server.port, validate=False) as client:
        client.wait_for(lambda ev: any(isinstance(e, h2.events.RemoteSettingsChanged)
                                       for e in client.events))
        sid = client.request_raw([(b":method", b"CONNECT"), (b":protocol", b"websocket"),
                                  (b":scheme", b"http"), (b":path", b"/ws"),
                                  (b":authority", b"localhost"),
                                  (b"sec-websocket-version", b"13")], end_stream=False)
        ws = WebSocketConnection(client=True)
        got: list = []

        def messages(count):
            def enough(_ev):
                got[:] = WebSocketConnection(client=True).receive(client.body(sid))
                return len(got) >= count
            client.wait_for(enough)

        messages(1)
        assert client.headers(sid)[":status"] == "200"
        assert json.loads(got[0].data) == {"greeting": "hello from lifespan",
                                           "http_version": "2"}
        client.conn.send_data(sid, ws.send_text("over h2"))
        client.flush()
        messages(2)
        assert got[1] == TextMessage("OVER H2")
        headers, body = client.get("/items/3")                 # beside it, same connection
        assert body == b'{"item":3}'
