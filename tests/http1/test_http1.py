"""HTTP/1.1 on the HTTP/2 port (RFC 9112), against the real server, with real clients: curl
``--http1.1``, httpx over HTTP/1.1 and HTTP/2 on the same port, TLS with ALPN both ways, and a
raw client (responses parsed by h11) for pipelining and framing. Compiled build and pure twins.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

import httpx
import pytest

from tests.helpers.http1raw import H1Raw, request
from tests.helpers.tools import require_tool

pytestmark = pytest.mark.timeout(120)

APP_MODES = {
    "wsgi-pool": ("tests.served_apps.basic:wsgi_app", []),
    "wsgi-inline": ("tests.served_apps.basic:wsgi_app", ["--wsgi-threads", "0"]),
}


def curl(*args, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([require_tool("curl"), "-sS", *args], capture_output=True,
                          timeout=timeout)


def environ_of(text) -> dict:
    return json.loads(text)


# -- curl --http1.1 ---------------------------------------------------------------------------
def test_curl_http11_keep_alive_reuses_one_connection_rfc9112_9_3(servers, impl):
    server = servers.get(impl=impl)
    out = curl("-v", "--http1.1", server.url + "/", server.url + "/environ", "-w",
               "\n%{http_version} %{num_connects}\n")
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert text.startswith("Hello, world!\n1.1 1\n")
    assert '"SERVER_PROTOCOL": "HTTP/1.1"' in text
    assert text.rstrip().endswith("1.1 0")  # the second transfer opened no connection
    assert b"Re-using existing connection" in out.stderr


@pytest.mark.parametrize("mode", list(APP_MODES))
def test_curl_chunked_upload_reaches_the_app_whole_rfc9112_7_1(servers, impl, mode, tmp_path):
    app, args = APP_MODES[mode]
    server = servers.get(app=app, impl=impl, args=args + ["--stream-window", "4M"])
    data = os.urandom(1_500_000)
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    out = curl("--http1.1", "-H", "Transfer-Encoding: chunked", "--data-binary", f"@{src}",
               server.url + "/sha256")
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode()


def test_curl_expect_100_continue_gets_100_then_the_response_rfc9110_10_1_1(servers, impl,
                                                                           tmp_path):
    server = servers.get(impl=impl)
    data = os.urandom(2_000_000)
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    # --expect100-timeout 30: curl sends the body only once it has seen "100 Continue".
    started = time.monotonic()
    out = curl("-v", "--http1.1", "--expect100-timeout", "30", "-H", "Expect: 100-continue",
               "--data-binary", f"@{src}", server.url + "/sha256")
    assert out.returncode == 0, out.stderr
    assert b"< HTTP/1.1 100 Continue" in out.stderr
    assert out.stdout == f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode()
    assert time.monotonic() - started < 25


def test_expect_100_continue_with_a_body_too_large_gets_413_without_100(servers, impl):
    server = servers.get(impl=impl, args=["--max-body-size", "1000"])
    with H1Raw(server.port) as c:
        c.send(request("POST", "/echo", headers=[("Expect", "100-continue"),
                                                  ("Content-Length", "5000")]))
        reply = c.reply("POST")
        assert (reply.status, reply.informational) == (413, [])
        assert c.closed_by_server()


# -- httpx: both protocols on one port; TLS ALPN both ways ------------------------------------
@pytest.mark.parametrize("tls", [False, True], ids=["cleartext", "tls"])
def test_httpx_http11_and_http2_on_the_same_port(servers, impl, tls, tls_files):
    server = servers.get(impl=impl, tls=tls)
    url = server.url.replace("127.0.0.1", "localhost") if tls else server.url
    verify = ssl.create_default_context(cafile=tls_files[2]) if tls else True
    payload = os.urandom(300_000)
    with httpx.Client(http1=True, http2=False, verify=verify, timeout=30) as h1, \
            httpx.Client(http1=False, http2=True, verify=verify,
                         timeout=30) as h2:
        r1 = h1.get(url + "/environ?a=%41")
        r2 = h2.get(url + "/environ?a=%41")
        e1 = h1.post(url + "/echo", content=payload)
        e2 = h2.post(url + "/echo", content=payload)
    assert (r1.http_version, r2.http_version) == ("HTTP/1.1", "HTTP/2")
    env1, env2 = environ_of(r1.text), environ_of(r2.text)
    assert (env1["SERVER_PROTOCOL"], env2["SERVER_PROTOCOL"]) == ("HTTP/1.1", "HTTP/2")
    for key in ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "SERVER_NAME", "SERVER_PORT",
                "wsgi.url_scheme", "REMOTE_ADDR", "SCRIPT_NAME", "HTTP_HOST"):
        assert env1[key] == env2[key], key
    assert env1["wsgi.url_scheme"] == ("https" if tls else "http")
    assert e1.content == payload and e2.content == payload


def test_curl_tls_alpn_picks_http11_or_h2_rfc7301(servers, impl, tls_files):
    server = servers.get(impl=impl, tls=True)
    url = server.url.replace("127.0.0.1", "localhost") + "/"
    for flag, version in (("--http1.1", "1.1"), ("--http2", "2")):
        out = curl(flag, "--cacert", tls_files[2], "-v", "-w", "\n%{http_version}", url)
        assert out.returncode == 0, out.stderr
        assert out.stdout.decode().rsplit("\n", 1) == ["Hello, world!", version]
        assert f"ALPN: server accepted {'http/1.1' if version == '1.1' else 'h2'}".encode() \
            in out.stderr


def test_no_http1_offers_only_h2_over_tls_and_505_in_cleartext(servers, impl, tls_files):
    tls_server = servers.get(impl=impl, tls=True, args=["--no-http1"])
    url = tls_server.url.replace("127.0.0.1", "localhost") + "/"
    with H1Raw(tls_server.port, tls_ca=tls_files[2], alpn=["h2", "http/1.1"]) as c:
        assert c.sock.selected_alpn_protocol() == "h2"
    out = curl("-i", "--http1.1", "--cacert", tls_files[2], url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(b"HTTP/1.1 505")
    plain = servers.get(impl=impl, args=["--no-http1"])
    out = curl("-i", "--http1.1", plain.url + "/")
    assert out.stdout.startswith(b"HTTP/1.1 505")


# -- framing, pipelining, versions ------------------------------------------------------------
def test_pipelined_requests_are_answered_in_order_rfc9112_9_3_2(servers, impl):
    server = servers.get(impl=impl)
    body = os.urandom(100_000)
    with H1Raw(server.port) as c:
        c.send(request("GET", "/") + request("POST", "/echo", body=body)
               + request("HEAD", "/") + request("GET", "/environ?third")
               + request("GET", "/bytes/70000"))
        first, echo, head, env, big = c.replies("GET", "POST", "HEAD", "GET", "GET")
        assert c.closed_by_server(timeout=0.5) is False  # keep-alive
    assert (first.status, first.body) == (200, b"Hello, world!")
    assert echo.body == body
    assert (head.status, head.body, head.header("content-length")) == (200, b"", "13")
    assert environ_of(env.body)["QUERY_STRING"] == "third"
    assert big.body == (bytes(range(256)) * 512)[:70000]


def test_streamed_response_is_chunked_for_http11_rfc9112_7_1(servers, impl):
    server = servers.get(impl=impl)
    with H1Raw(server.port) as c:
        c.send(request("GET", "/stream?3"))
        reply = c.reply()
    assert reply.header("transfer-encoding") == "chunked"
    assert reply.header("content-length") is None
    assert reply.body == b"chunk 0\nchunk 1\nchunk 2\n"


def test_http10_gets_a_close_delimited_body_and_server_protocol_http10(servers, impl):
    server = servers.get(impl=impl)
    with H1Raw(server.port) as c:
        c.send(request("GET", "/stream?2", host=None, version="1.0"))
        raw = c.read_all()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding" not in head.lower() and b"connection: close" in head.lower()
    assert body == b"chunk 0\nchunk 1\n"
    with H1Raw(server.port) as c:
        c.send(request("GET", "/environ", host=None, version="1.0",
                       headers=[("Connection", "keep-alive")]))
        reply = c.reply()
        assert reply.header("connection") == "keep-alive"
        assert environ_of(reply.body)["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_204_and_head_have_no_body_and_keep_the_connection(servers, impl):
    server = servers.get(impl=impl)
    with H1Raw(server.port) as c:
        c.send(request("GET", "/empty") + request("HEAD", "/bytes/1000") + request("GET", "/"))
        empty, head, hello = c.replies("GET", "HEAD", "GET")
    assert (empty.status, empty.body, empty.header("transfer-encoding")) == (204, b"", None)
    assert (head.body, head.header("content-length")) == (b"", "1000")
    assert hello.body == b"Hello, world!"


def test_absolute_form_target_uses_its_authority_rfc9112_3_2_2(servers, impl):
    server = servers.get(impl=impl)
    with H1Raw(server.port) as c:
        c.send(request("GET", "http://example.org:8080/environ?q=1", host="other"))
        env = environ_of(c.reply().body)
    assert (env["PATH_INFO"], env["QUERY_STRING"]) == ("/environ", "q=1")
    assert (env["SERVER_NAME"], env["SERVER_PORT"], env["HTTP_HOST"]) == \
        ("example.org", "8080", "example.org:8080")


def test_request_that_asks_to_close_is_answered_then_closed(servers, impl):
    server = servers.get(impl=impl)
    with H1Raw(server.port) as c:
        c.send(request("GET", "/", headers=[("Connection", "close")]) + request("GET", "/"))
        reply = c.reply()
        assert reply.header("connection") == "close"
        assert c.closed_by_server()


def test_app_that_sets_connection_close_closes_and_framing_is_ours(servers, impl):
    server = servers.get(impl=impl)
    with H1Raw(server.port) as c:
        c.send(request("GET", "/bad-headers"))
        reply = c.reply()
        assert (reply.status, reply.body, reply.header("connection")) == (200, b"ok", "close")
        assert reply.header("content-length") == "2"  # the app's chunked claim was dropped
        assert c.closed_by_server()


def test_response_before_the_body_was_read_closes_the_connection(servers, impl):
    """The app answered without reading a large body: the server cannot find the next
    request reliably without reading it all, so it says close and closes."""
    server = servers.get(impl=impl)
    with H1Raw(server.port) as c:
        c.send(request("POST", "/no-read", headers=[("Content-Length", "50000000")])
               + b"x" * 100_000)
        reply = c.reply("POST")
        assert (reply.status, reply.header("connection")) == (200, "close")
        assert c.closed_by_server()


def test_upgrade_h2c_is_ignored_and_served_as_http11_rfc9113_3_1(servers, impl):
    server = servers.get(impl=impl)
    out = curl("--http2", "-d", "hello", "-w", "\n%{http_version}", server.url + "/echo")
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"hello\n1.1"


# -- apps and errors --------------------------------------------------------------------------
def test_kyoukai_style_app_over_http11(servers, impl):
    server = servers.get(app="tests.served_apps.basic:kyoukai_app", impl=impl)
    payload = os.urandom(3_000_000)  # more than half the stream window: the app starts early
    with httpx.Client(http1=True, http2=False, timeout=30) as c:
        r = c.post(server.url + "/read-async", content=payload)
        hello = c.get(server.url + "/")
    assert r.http_version == "HTTP/1.1" and r.status_code == 200
    assert r.text == f"{hashlib.sha256(payload).hexdigest()} {len(payload)}"
    assert hello.text == "Hello, world!"


@pytest.mark.parametrize("mode", list(APP_MODES))
def test_large_upload_and_download_over_http11_are_byte_identical(servers, impl, mode):
    app, args = APP_MODES[mode]
    server = servers.get(app=app, impl=impl, args=args + ["--stream-window", "16M"])
    payload = os.urandom(5 * 1024 * 1024)
    with httpx.Client(http1=True, http2=False, timeout=60) as c:
        up = c.post(server.url + "/echo", content=payload)
        down = c.get(server.url + f"/bytes/{4 * 1024 * 1024}")
    assert up.content == payload
    assert down.content == (bytes(range(256)) * 256 * 64)[: 4 * 1024 * 1024]


def test_legacy_write_callable_output_comes_first_pep3333(servers, impl):
    server = servers.get(impl=impl)
    with H1Raw(server.port) as c:
        c.send(request("GET", "/write"))
        assert c.reply().body == b"written returned"


def test_app_error_gives_500_without_traceback_and_closes(servers, impl):
    server = servers.get(impl=impl)
    with H1Raw(server.port) as c:
        c.send(request("GET", "/raise"))
        reply = c.reply()
        assert reply.status == 500
        assert b"SECRET-TRACEBACK-MARKER" not in reply.body
        assert c.closed_by_server()
    with httpx.Client(http1=True, http2=False) as c:
        assert c.get(server.url + "/").status_code == 200


def test_iterator_failure_after_headers_cuts_the_chunked_response(servers, impl):
    server = servers.get(impl=impl)
    with H1Raw(server.port) as c:
        c.send(request("GET", "/stream-fail"))
        raw = c.read_all()
    assert raw.startswith(b"HTTP/1.1 200")
    assert not raw.endswith(b"0\r\n\r\n")  # no terminating chunk: the client sees the cut



def test_client_gone_mid_stream_still_closes_the_app_iterable_pep3333(servers, impl):
    """The connection drops while a worker thread pulls the app's iterable: its close() is
    still called once the pull comes back, as over HTTP/2."""
    server = servers.get(impl=impl)  # WSGI in the thread pool
    with httpx.Client(http1=True, http2=False) as c:
        before = c.get(server.url + "/closed").json()["closed"]
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(request("GET", "/stream-slow?4"))  # chunks 0.5 s apart
        received = b""
        while b"chunk 0\n" not in received:
            received += sock.recv(65536)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()  # a reset, mid-stream
    deadline = time.monotonic() + 5
    with httpx.Client(http1=True, http2=False) as c:
        while True:
            after = c.get(server.url + "/closed").json()["closed"]
            if after == before + 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert after == before + 1, (before, after)


# -- timeouts and shutdown ----------------------------------------------------------------------
def test_idle_keep_alive_connection_is_closed_after_idle_timeout(servers, impl):
    server = servers.get(impl=impl, args=["--idle-timeout", "1"])
    with H1Raw(server.port) as c:
        c.send(request("GET", "/"))
        assert c.reply().status == 200
        assert c.closed_by_server(timeout=15)


def test_sigterm_lets_the_http11_response_in_flight_finish_then_exits_0(servers, impl):
    server = servers.fresh(impl=impl)
    result = {}

    def slow():
        with H1Raw(server.port, timeout=30) as c:
            c.send(request("GET", "/slow?2"))
            result["reply"] = c.reply()
            result["closed"] = c.closed_by_server()

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.7)
    server.signal(signal.SIGTERM)
    worker.join(40)
    assert server.wait(30) == 0
    reply = result["reply"]
    assert (reply.status, reply.body, reply.header("connection")) == (200, b"slow done", "close")
    assert result["closed"]


def test_response_head_has_one_date_and_one_server_rfc9110_6_6_1(servers, impl):
    server = servers.get(impl=impl)
    for payload in (request("GET", "/", headers=[("Connection", "close")]),
                    request("GET", "/", host=None)):  # an app response, a server error
        with H1Raw(server.port) as c:
            c.send(payload)
            head = c.read_all().split(b"\r\n\r\n", 1)[0].lower().split(b"\r\n")
        assert sum(line.startswith(b"date: ") for line in head) == 1, head
        assert sum(line.startswith(b"server: kyoukai_h2fast/") for line in head) == 1, head
