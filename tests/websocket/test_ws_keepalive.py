"""Keep-alive pings (``ws_ping_interval``, ``ws_ping_timeout``) and backpressure over HTTP/2:
a client that answers pings stays, one that does not is closed with 1011 and dropped; an app
sending to an HTTP/2 client that never reads waits on the stream's flow control."""
from __future__ import annotations

import socket
import threading
import time

import h2.events
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.helpers.h2client import H2Client
from tests.helpers.ws_server import FLOOD, serve_in_thread


@pytest.fixture(scope="module")
def server():
    component, stop = serve_in_thread(ws_ping_interval=0.2, ws_ping_timeout=0.3)
    yield component
    stop()


def test_client_answering_pings_stays_open(server):
    with connect(f"ws://127.0.0.1:{server.port}/echo") as ws:
        time.sleep(1.0)                              # several ping rounds
        ws.send("still here")
        assert ws.recv(timeout=5) == "still here"


def test_client_not_answering_pings_is_closed_1011(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    with sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\n\r\n")
        started = time.monotonic()
        data = b""
        while True:                                  # never answers: read to the end
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        elapsed = time.monotonic() - started
    head, _, frames = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    assert frames[:1] == b"\x89"                    # a ping first
    assert b"\x88" in frames and (1011).to_bytes(2, "big") + b"keepalive" in frames
    assert elapsed < 3


def test_http2_client_that_never_reads_holds_the_app_send(server):
    FLOOD.clear()
    client = H2Client("127.0.0.1", server.port, validate=False, auto_ack=False)
    with client:
        client.wait_for(lambda ev: any(isinstance(e, h2.events.RemoteSettingsChanged)
                                       for e in client.events))
        sid = client.request_raw([(b":method", b"CONNECT"), (b":protocol", b"websocket"),
                                  (b":scheme", b"http"), (b":path", b"/flood"),
                                  (b":authority", b"localhost"),
                                  (b"sec-websocket-version", b"13")], end_stream=False)
        client.wait_for(lambda ev: client.headers(sid))
        last, since = -1, time.monotonic()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            client.read_for(0.05)
            sent = FLOOD.get("sent", 0)
            if sent != last:
                last, since = sent, time.monotonic()
            elif sent and time.monotonic() - since > 0.5:
                break
        received = len(client.body(sid))
    # 65,535 bytes of stream window reach the client; the app's sends stop a few messages on
    assert received <= 65_535
    assert 0 < FLOOD["sent"] < 10, FLOOD


def test_graceful_shutdown_closes_websockets_1001():
    component, stop = serve_in_thread(ws_ping_interval=0)
    stopping = threading.Thread(target=stop)
    try:
        with connect(f"ws://127.0.0.1:{component.port}/echo") as ws:
            ws.send("x")
            assert ws.recv(timeout=5) == "x"
            started = time.monotonic()
            stopping.start()
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=5)
        assert info.value.rcvd.code == 1001
        assert time.monotonic() - started < 2      # not the whole shutdown timeout
    finally:
        if not stopping.is_alive() and stopping.ident is None:
            stopping.start()
        stopping.join(10)
