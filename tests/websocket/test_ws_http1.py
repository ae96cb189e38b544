"""WebSockets over HTTP/1.1 (RFC 6455) end to end: the ``websockets`` library as the client,
an ASGI app behind :mod:`kyoukai_h2fast.asgi.websocket`; raw sockets for the bad frames."""
from __future__ import annotations

import json
import os
import socket
import struct
import time
import tracemalloc

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from kyoukai_h2fast.websocket import BytesMessage, WebSocketConnection
from tests.helpers.ws_server import ENDED, FLOOD, serve_in_thread

LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def server():
    component, stop = serve_in_thread(ws_max_message_size=LIMIT, ws_ping_interval=0)
    yield component
    stop()


def _url(server, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_echo_text_binary_and_large(server, compression):
    with connect(_url(server, "/echo"), compression=compression, max_size=None) as ws:
        ws.send("héllo")
        assert ws.recv(timeout=5) == "héllo"
        ws.send(b"\x00\x01\x02")
        assert ws.recv(timeout=5) == b"\x00\x01\x02"
        big = os.urandom(700_000)
        ws.send(big)
        assert ws.recv(timeout=10) == big
        fragments = ["ab" * 1000, "cd" * 1000, "ef"]
        ws.send(iter(fragments))                  # one fragmented message
        assert ws.recv(timeout=5) == "".join(fragments)
        if compression:
            assert ws.response.headers["Sec-WebSocket-Extensions"].startswith(
                "permessage-deflate")
        else:
            assert "Sec-WebSocket-Extensions" not in ws.response.headers


def test_scope_subprotocol_and_headers(server):
    with connect(_url(server, "/info?x=1%202"), subprotocols=["chat", "other"]) as ws:
        assert ws.subprotocol == "chat"
        assert ws.response.headers["x-served-by"] == "kyoukai"
        info = json.loads(ws.recv(timeout=5))
    assert info["http_version"] == "1.1" and info["scheme"] == "ws"
    assert info["path"] == "/info" and info["query_string"] == "x=1%202"
    assert info["subprotocols"] == ["chat", "other"]
    assert "sec-websocket-key" in info["headers"]
    assert info["extensions"] == ["websocket.http.response"]


def test_close_code_from_the_client_reaches_the_app(server):
    with connect(_url(server, "/echo")) as ws:
        ws.send("x")
        ws.recv(timeout=5)
        ws.close(4321, "done")
    deadline = time.monotonic() + 5
    while ("/echo", 4321) not in ENDED and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ("/echo", 4321) in ENDED


def test_app_close_code_reaches_the_client(server):
    with connect(_url(server, "/close4001")) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd.code == 4001 and info.value.rcvd.reason == "bye"


def test_denial_response_and_close_before_accept(server):
    with pytest.raises(InvalidStatus) as info:
        connect(_url(server, "/deny"))
    assert info.value.response.status_code == 403
    assert info.value.response.body == b"no entry"
    assert info.value.response.headers["x-why"] == "test"
    with pytest.raises(InvalidStatus) as info:
        connect(_url(server, "/reject"))
    assert info.value.response.status_code == 403


def test_plain_http_still_served_beside(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"plain /x")


# -- raw clients: bad handshakes and bad frames -----------------------------------------------
def _handshake(server, extra: bytes = b"", version: bytes = b"13") -> tuple[socket.socket,
                                                                               bytes]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(b"GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Sec-WebSocket-Version: " + version + b"\r\n" + extra + b"\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return sock, head


def _close_code(sock: socket.socket) -> int:
    """Read frames until the server's close frame; its code."""
    data = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        while len(data) >= 2:
            length = data[1] & 0x7F
            header = 2 + (2 if length == 126 else 8 if length == 127 else 0)
            if length >= 126:
                length = int.from_bytes(data[2:header], "big")
            if len(data) < header + length:
                break
            if data[0] & 0x0F == 0x8:
                return int.from_bytes(data[header:header + 2], "big")
            data = data[header + length:]
    raise AssertionError(f"no close frame: {data!r}")


def _masked(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    mask = b"abcd"
    first = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    length = (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
              if n < 65536 else bytes([0x80 | 127]) + struct.pack(">Q", n))
    return bytes([first]) + length + mask + bytes(b ^ mask[i % 4] for i, b in
                                                  enumerate(payload))


@pytest.mark.parametrize(("frame", "code"), [
    pytest.param(b"\x81\x02hi", 1002, id="unmasked"),
    pytest.param(_masked(0x3, b"x"), 1002, id="reserved-opcode"),
    pytest.param(_masked(0x1, b"x", rsv=0x20), 1002, id="rsv2"),
    pytest.param(_masked(0x9, b"x" * 126), 1002, id="control-too-long"),
    pytest.param(_masked(0x9, b"x", fin=False), 1002, id="fragmented-ping"),
    pytest.param(_masked(0x1, b"\xff\xfe"), 1007, id="bad-utf8"),
    pytest.param(_masked(0x2, b"x" * (LIMIT + 1)), 1009, id="too-big"),
])
def test_bad_frames_fail_with_the_rfc_code(server, frame, code):
    sock, head = _handshake(server)
    with sock:
        assert head.startswith(b"HTTP/1.1 101")
        try:
            sock.sendall(frame)
        except (BrokenPipeError, ConnectionResetError):
            # (a frame declared too large is refused from its header: the server may have
            # closed before the rest of it was sent; its close frame was sent first)
            pass
        assert _close_code(sock) == code


@pytest.mark.parametrize(("extra", "version", "status"), [
    pytest.param(b"", b"8", b"426", id="old-version"),
    pytest.param(b"Sec-WebSocket-Protocol: a b\r\n", b"13", b"400", id="bad-protocol-list"),
])
def test_bad_handshakes_get_their_status(server, extra, version, status):
    sock, head = _handshake(server, extra, version)
    with sock:
        assert head.startswith(b"HTTP/1.1 " + status), head
        if status == b"426":
            assert b"sec-websocket-version: 13" in head.lower()


def test_client_that_never_reads_gets_backpressure(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET /flood HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\n\r\n")
        last, stable_since = -1, time.monotonic()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:            # until the app's sends stop
            sent = FLOOD.get("sent", 0)
            if sent != last:
                last, stable_since = sent, time.monotonic()
            elif sent and time.monotonic() - stable_since > 0.5:
                break
            time.sleep(0.05)
        # the app's send waits: a few socket buffers' worth went out, not 2000 × 64 KiB
        assert 0 < FLOOD["sent"] < 200, FLOOD


@pytest.mark.parametrize("flood", [
    pytest.param(_masked(0x9, b"p") * 1100, id="pings"),
    pytest.param(_masked(0x1, b"", fin=False) + _masked(0x0, b"", fin=False) * 1100,
                 id="empty-fragments"),
    pytest.param(_masked(0xA, b"") * 1100, id="unsolicited-pongs"),
])
def test_floods_are_cut_1008(server, flood):
    sock, head = _handshake(server)
    with sock:
        assert head.startswith(b"HTTP/1.1 101")
        sock.sendall(flood)
        assert _close_code(sock) == 1008


def test_tiny_fragments_cost_their_bytes_not_objects():
    server = WebSocketConnection()
    mask = b"\x00\x00\x00\x00"                   # (masked, with a mask of zeros)
    frames = [b"\x02\x81" + mask + b"a"] + [b"\x00\x81" + mask + b"b"] * 199_998 + \
        [b"\x80\x81" + mask + b"c"]                 # binary, continuations, the final one
    data = b"".join(frames)
    del frames
    tracemalloc.start()
    events = server.receive(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert events == [BytesMessage(b"a" + b"b" * 199_998 + b"c")]
    assert peak < 2_000_000, peak                 # (a list of 200,000 bytes objects: ~9 MB)


async def _bad_header_app(session):
    await session.accept(headers=[(b"x-bad", b"a\r\nInjected: 1")])


def test_app_header_with_crlf_is_refused_not_sent(server):
    server.websocket_app, saved = _bad_header_app, server.websocket_app
    try:
        sock, head = _handshake(server)
        with sock:
            assert head.startswith(b"HTTP/1.1 500"), head     # the app failed: 500, no 101
            assert b"Injected" not in head
    finally:
        server.websocket_app = saved


def test_wss_over_http11_with_tls(tls_files):
    import ssl
    certfile, keyfile, cafile = tls_files
    component, stop = serve_in_thread(certfile=certfile, keyfile=keyfile, ws_ping_interval=0)
    try:
        context = ssl.create_default_context(cafile=cafile)
        with connect(f"wss://localhost:{component.port}/info", ssl=context) as ws:
            info = json.loads(ws.recv(timeout=5))
            ws.send("over tls")
            assert ws.recv(timeout=5) == "over tls"
        assert info["scheme"] == "wss" and info["http_version"] == "1.1"
    finally:
        stop()


def test_root_path_mounts_websockets_too():
    component, stop = serve_in_thread(root_path="/api", ws_ping_interval=0)
    try:
        with connect(f"ws://127.0.0.1:{component.port}/api/info") as ws:
            info = json.loads(ws.recv(timeout=5))
        assert info["root_path"] == "/api" and info["path"] == "/api/info"
        with pytest.raises(InvalidStatus) as outside:
            connect(f"ws://127.0.0.1:{component.port}/apiv2/info")
        assert outside.value.response.status_code == 404
    finally:
        stop()
