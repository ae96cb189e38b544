"""ASGI ``http`` scope behind the server (a bare ASGI 3 app): the scope, request bodies as
``http.request`` events, streamed responses, trailers, pathsend, errors and ``http.disconnect``,
over HTTP/2 (httpx, raw h2 client) and HTTP/1.1 (curl, raw sockets)."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import ssl
import struct
import subprocess
import time

import h2.events
import httpx
import pytest

from tests.helpers.h2client import H2Client
from tests.served_apps.asgi_apps import FILE_DATA

pytestmark = pytest.mark.timeout(60)

APP = "tests.served_apps.asgi_apps:bare_app"


@pytest.fixture
def server(servers, impl):
    return servers.get(app=APP, impl=impl)


def http2() -> httpx.Client:
    return httpx.Client(http1=False, http2=True, timeout=20)


def curl(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-s", "--http1.1", *args, url], capture_output=True,
                          timeout=30)


def _poll(server, key: str, want: int = 1) -> int:
    """The app's count of disconnects seen for ``key`` (waits up to 5 s for ``want``)."""
    deadline = time.monotonic() + 5
    with http2() as c:
        while True:
            seen = int(c.get(f"{server.url}/disconnects?{key}").text)
            if seen >= want or time.monotonic() > deadline:
                return seen
            time.sleep(0.02)


def _log_has(server, text: str) -> bool:
    """``text`` is in the server's log (its reader thread may lag the response: wait 5 s)."""
    deadline = time.monotonic() + 5
    while text not in server.log:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_detected_as_asgi_and_lifespan_unsupported_is_served(server):
    assert "serving asgi app" in server.log
    assert "does not support lifespan" in server.log
    with http2() as c:
        r = c.get(server.url + "/")
    assert r.http_version == "HTTP/2" and r.text == "Hello, ASGI!"
    assert curl(server.url + "/").stdout == b"Hello, ASGI!"


def test_scope_over_http2(server):
    with http2() as c:
        scope = c.get(server.url + "/scope/caf%C3%A9?x=1&y=%20", headers={"X-Token": "t"}).json()
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "2"
    assert scope["method"] == "GET" and scope["scheme"] == "http"
    assert scope["path"] == "/scope/café"
    assert scope["raw_path"] == "/scope/caf%C3%A9"
    assert scope["query_string"] == "x=1&y=%20"
    assert scope["root_path"] == ""
    headers = dict(scope["headers"])
    assert headers["x-token"] == "t" and headers["host"] == f"127.0.0.1:{server.port}"
    assert not any(name.startswith(":") for name, _ in scope["headers"])
    assert scope["client"][0] == "127.0.0.1" and scope["server"] == ["127.0.0.1", server.port]
    assert scope["extensions"] == ["http.response.pathsend", "http.response.trailers"]


def test_scope_over_http1(server):
    scope = json.loads(curl(server.url + "/scope", "-H", "X-Token: t").stdout)
    assert scope["http_version"] == "1.1"
    assert dict(scope["headers"])["x-token"] == "t"
    assert scope["extensions"] == ["http.response.pathsend"]  # trailers are HTTP/2's


@pytest.mark.parametrize("protocol", ["h2", "http1.1"])
def test_request_body_1mb_arrives_in_several_events(server, protocol, tmp_path):
    body = os.urandom(1024 * 1024)
    if protocol == "h2":
        with http2() as c:
            text = c.post(server.url + "/echo", content=body).text
    else:
        path = tmp_path / "body"
        path.write_bytes(body)
        text = curl(server.url + "/echo", "--data-binary", f"@{path}").stdout.decode()
    size, digest, events = text.split()
    assert int(size) == len(body) and digest == hashlib.sha256(body).hexdigest()
    assert int(events) > 1  # streamed with more_body, not buffered whole


@pytest.mark.parametrize("protocol", ["h2", "http1.1"])
def test_streamed_response(server, protocol):
    count = 40  # 2.5 MiB: beyond the windows, so sends wait for the client
    expected = b"".join(bytes([i]) * 65536 for i in range(count))
    if protocol == "h2":
        with http2() as c:
            got = c.get(f"{server.url}/stream?{count}").content
    else:
        got = curl(f"{server.url}/stream?{count}").stdout
    assert got == expected


def test_trailers_after_the_data_over_http2(server):
    with H2Client("127.0.0.1", server.port) as client:
        sid = client.request("/trailers")
        headers, body = client.response(sid)
        trailers = client.of(sid, h2.events.TrailersReceived)
    assert headers[":status"] == "200" and body == b"x" * 100_000
    assert len(trailers) == 1
    assert dict(trailers[0].headers) == {
        b"x-digest": hashlib.sha256(body).hexdigest().encode()}


def test_trailers_left_out_over_http1(server):
    result = curl(server.url + "/trailers")
    assert result.returncode == 0 and result.stdout == b"x" * 100_000


@pytest.mark.parametrize("protocol", ["h2", "http1.1"])
def test_pathsend(server, protocol):
    if protocol == "h2":
        with http2() as c:
            r = c.get(server.url + "/pathsend")
            assert r.headers["content-length"] == str(len(FILE_DATA))
            assert r.content == FILE_DATA
    else:
        assert curl(server.url + "/pathsend").stdout == FILE_DATA


@pytest.mark.parametrize("protocol", ["h2", "http1.1"])
def test_exception_before_start_is_a_plain_500(server, protocol):
    if protocol == "h2":
        with http2() as c:
            r = c.get(server.url + "/raise")
        status, body = r.status_code, r.content
    else:
        result = curl(server.url + "/raise", "-w", "\n%{http_code}")
        body, _, code = result.stdout.rpartition(b"\n")
        status = int(code)
    assert status == 500 and body == b"Internal Server Error\n"
    assert b"secret" not in body
    assert _log_has(server, "RuntimeError: secret detail of the app")  # logged, traceback


def test_returning_without_a_response_is_a_500(server):
    with http2() as c:
        assert c.get(server.url + "/no-response").status_code == 500
    assert _log_has(server, "ASGI app returned without starting the response")


def test_exception_after_start_resets_the_http2_stream(server):
    with H2Client("127.0.0.1", server.port) as client:
        sid = client.request("/raise-after-start")
        client.wait_for(lambda ev: client.stream_reset(sid) or client.stream_ended(sid))
        resets = client.of(sid, h2.events.StreamReset)
    assert resets and resets[0].error_code == 2  # INTERNAL_ERROR


def test_exception_after_start_closes_the_http1_connection(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /raise-after-start HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert b"partial" in data and not data.endswith(b"0\r\n\r\n")  # cut, never completed


def test_disconnect_when_the_client_resets_the_stream(server):
    key = f"reset-{os.getpid()}-{time.monotonic_ns()}"
    with H2Client("127.0.0.1", server.port) as client:
        sid = client.request(f"/wait-disconnect?{key}", method="POST", body=b"abc",
                             end_stream=False)
        time.sleep(0.05)
        client.conn.reset_stream(sid)
        client.flush()
        assert _poll(server, key) == 1


def test_disconnect_when_the_http1_client_leaves(server):
    # (An abortive close: a half-close - FIN only - still gets its response over HTTP/1.1.)
    key = f"leave-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(f"GET /wait-disconnect?{key} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    time.sleep(0.05)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    assert _poll(server, key) == 1


def test_send_raises_oserror_once_the_client_is_gone(server):
    key = f"send-{os.getpid()}-{time.monotonic_ns()}"
    with H2Client("127.0.0.1", server.port, auto_ack=False) as client:
        sid = client.request(f"/stream-until-gone?{key}")
        client.wait_for(lambda ev: client.body(sid))  # the app streams, then waits on send
        client.conn.reset_stream(sid)
        client.flush()
        assert _poll(server, key) == 1


def test_send_waits_for_the_client_window(server):
    # The client never reopens its 65,535-byte stream window: the app's send() must stall
    # after about that much (plus one chunk ahead), not buffer the endless response.
    key = f"window-{os.getpid()}-{time.monotonic_ns()}"
    with H2Client("127.0.0.1", server.port, auto_ack=False) as client:
        sid = client.request(f"/stream-count?{key}")
        client.wait_for(lambda ev: len(client.body(sid)) >= 65535)
        client.read_for(0.3)
        assert len(client.body(sid)) == 65535
        sent = _poll(server, "sent-" + key)
        assert 4 <= sent <= 12, sent  # 16 KiB chunks: the window and about 64 KiB ahead
        client.conn.reset_stream(sid)
        client.flush()


def test_https_scope_over_tls(servers, impl, tls_files):
    server = servers.get(app=APP, impl=impl, tls=True)
    verify = ssl.create_default_context(cafile=tls_files[2])
    with httpx.Client(http2=True, verify=verify, timeout=20) as c:
        r = c.get(server.url + "/scope")
    assert r.http_version == "HTTP/2"
    assert r.json()["scheme"] == "https" and r.json()["http_version"] == "2"
