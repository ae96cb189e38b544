"""WSGI apps (PEP 3333) behind the server: thread pool and inline, streaming, close(), errors,
HEAD, the environ, Flask — through a real HTTP/2 client (httpx)."""
from __future__ import annotations

import hashlib
import time

import httpx
import pytest

from tests.helpers.h2client import H2Client

pytestmark = pytest.mark.timeout(120)

THREADED = ()
INLINE = ("--wsgi-threads", "0")


def client() -> httpx.Client:
    return httpx.Client(http1=False, http2=True, timeout=30)


@pytest.fixture(params=[THREADED, INLINE], ids=["threads", "inline"])
def mode(request):
    return request.param


def test_hello_in_thread_pool_and_inline(servers, impl, mode):
    server = servers.get(impl=impl, args=mode)
    with client() as c:
        r = c.get(server.url + "/")
    assert (r.status_code, r.text, r.http_version) == (200, "Hello, world!", "HTTP/2")


def test_streaming_generator_response_and_close_is_called(servers, impl, mode):
    server = servers.get(impl=impl, args=mode)
    with client() as c:
        before = c.get(server.url + "/closed").json()["closed"]
        r = c.get(server.url + "/stream?7")
        assert r.text == "".join(f"chunk {i}\n" for i in range(7))
        after = c.get(server.url + "/closed").json()["closed"]
    assert after == before + 1


def test_iterator_failure_after_headers_resets_stream_and_close_is_called(servers, impl, mode):
    server = servers.get(impl=impl, args=mode)
    with client() as c:
        before = c.get(server.url + "/closed").json()["closed"]
        with pytest.raises(httpx.RemoteProtocolError):
            c.get(server.url + "/stream-fail")
    with client() as c:  # the server goes on
        after = c.get(server.url + "/closed").json()["closed"]
        assert c.get(server.url + "/").status_code == 200
    assert after == before + 1


def test_app_exception_gives_500_without_traceback_and_is_logged(servers, impl, mode):
    server = servers.get(impl=impl, args=mode)
    with client() as c:
        r = c.get(server.url + "/raise")
        ok = c.get(server.url + "/")
    assert r.status_code == 500
    assert "SECRET-TRACEBACK-MARKER" not in r.text and "Traceback" not in r.text
    assert ok.status_code == 200
    deadline = time.monotonic() + 5
    while "SECRET-TRACEBACK-MARKER" not in server.log and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "SECRET-TRACEBACK-MARKER" in server.log  # logged with its traceback


def test_invalid_status_from_app_gives_500(servers, impl):
    server = servers.get(impl=impl)
    with client() as c:
        assert c.get(server.url + "/bad-status").status_code == 500


def test_connection_specific_response_headers_are_dropped(servers, impl):
    """RFC 9113 §8.2.2: a WSGI app's Connection/Transfer-Encoding must not reach the wire."""
    server = servers.get(impl=impl)
    with client() as c:
        r = c.get(server.url + "/bad-headers")
    assert r.status_code == 200 and r.text == "ok"
    assert "connection" not in r.headers and "transfer-encoding" not in r.headers
    assert r.headers["x-ok"] == "yes"


def test_head_response_has_headers_but_no_body(servers, impl, mode):
    server = servers.get(impl=impl, args=mode)
    with client() as c:
        r = c.head(server.url + "/")
    assert r.status_code == 200
    assert r.headers["content-length"] == "13"
    assert r.content == b""


def test_legacy_write_callable(servers, impl):
    server = servers.get(impl=impl)
    with client() as c:
        assert c.get(server.url + "/write").text == "written returned"


def test_empty_body_204(servers, impl):
    server = servers.get(impl=impl)
    with client() as c:
        r = c.get(server.url + "/empty")
    assert r.status_code == 204 and r.content == b""


def test_wsgi_input_iteration_and_readline(servers, impl):
    server = servers.get(impl=impl)
    body = b"one\ntwo\n\nthree"
    with client() as c:
        r = c.post(server.url + "/lines", content=body)
    assert r.json() == ["one\n", "two\n", "\n", "three"]


def test_blocking_app_in_thread_pool_does_not_stall_other_streams(servers, impl):
    """A handler blocking for 2 s in a worker thread does not hold up five requests on the
    same connection: all of them are answered before it (the order of the frames on the
    wire decides, not time; the raw client is used because httpx's HTTP/2 reader sometimes
    delivers other streams' responses only when a pending one completes)."""
    server = servers.get(impl=impl)
    c = H2Client("127.0.0.1", server.port, timeout=30)
    try:
        slow = c.request("/slow?2")
        fast = [c.request("/") for _ in range(5)]
        c.assert_answered_before(slow, fast)
        assert c.body(slow) == b"slow done"
        assert all(c.body(sid) == b"Hello, world!" for sid in fast)
    finally:
        c.close()


def test_environ_is_pep3333(servers, impl):
    server = servers.get(impl=impl)
    with client() as c:
        r = c.get(server.url + "/environ?a=1&b=%20x", headers={
            "x-custom": "v", "cookie": "a=1", "content-type": "text/x-test"})
    env = r.json()
    port = str(server.port)
    assert env["REQUEST_METHOD"] == "GET"
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "a=1&b=%20x"
    assert env["SCRIPT_NAME"] == ""
    assert env["SERVER_PROTOCOL"] == "HTTP/2"
    assert env["SERVER_NAME"] == "127.0.0.1" and env["SERVER_PORT"] == port
    assert env["HTTP_HOST"] == f"127.0.0.1:{port}"
    assert env["REMOTE_ADDR"] == "127.0.0.1" and env["REMOTE_PORT"].isdigit()
    assert env["HTTP_X_CUSTOM"] == "v" and env["HTTP_COOKIE"] == "a=1"
    assert env["CONTENT_TYPE"] == "text/x-test" and "HTTP_CONTENT_TYPE" not in env
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.input_terminated"] is True
    assert env["wsgi.multithread"] is True and env["wsgi.multiprocess"] is False
    assert env["wsgi.version"] == [1, 0]


def test_environ_url_scheme_https_over_tls(servers, impl, tls_files):
    import ssl

    server = servers.get(impl=impl, tls=True)
    url = server.url.replace("127.0.0.1", "localhost")
    with httpx.Client(http2=True, verify=ssl.create_default_context(cafile=tls_files[2])) as c:
        env = c.get(url + "/environ").json()
    assert env["wsgi.url_scheme"] == "https"
    assert env["SERVER_NAME"] == "localhost"


def test_flask_app(servers, impl):
    server = servers.get(app="tests.served_apps.basic:flask_app", impl=impl)
    with client() as c:
        assert c.get(server.url + "/").text == "Hello from Flask"
        assert c.post(server.url + "/echo", content=b"abc" * 1000).content == b"abc" * 1000
        assert c.post(server.url + "/json", json={"k": [1, 2]}).json() == {"got": {"k": [1, 2]}}


def test_inline_mode_reads_bodies_that_fit_the_stream_window(servers, impl):
    server = servers.get(impl=impl, args=INLINE)
    payload = bytes(range(256)) * 1000  # 256 kB < half the default 1 MiB stream window
    with client() as c:
        r = c.post(server.url + "/echo", content=payload)
    assert r.content == payload


def test_inline_mode_gets_bodies_far_larger_than_the_stream_window_spooled(servers, impl):
    """Loop apps start once the body is complete; the server reopens the windows as the body
    arrives (memory, then a temporary file), so a 5 MB upload through a 64 KiB stream window
    completes (the raw client sends only what the windows allow)."""
    server = servers.get(impl=impl, args=INLINE + ("--stream-window", "65536",
                                                   "--body-spool-threshold", "256K"))
    payload = bytes(range(256)) * 20_000
    c = H2Client("127.0.0.1", server.port)
    try:
        sid = c.request("/sha256", "POST", body=payload)
        headers, body = c.response(sid)
        assert headers[":status"] == "200"
        assert body == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}".encode()
    finally:
        c.close()


def test_inline_mode_streaming_opt_in_rejects_unreadable_large_body_with_500(servers, impl):
    """With --stream-request-bodies inline apps start before the body is complete and cannot
    block the loop: a read() of bytes that have not arrived is a clear 500, and the stream
    ends once the response is out (§8.1)."""
    server = servers.get(impl=impl, args=INLINE + ("--stream-window", "65536",
                                                   "--stream-request-bodies"))
    c = H2Client("127.0.0.1", server.port)
    try:
        sid = c.request("/echo", "POST", body=b"x" * 1_000_000)
        c.wait_for(lambda ev: c.stream_ended(sid) or c.stream_reset(sid) is not None)
        c.wait_for(lambda ev: c.headers(sid))
        assert c.headers(sid)[":status"] == "500"
        assert c.body(sid) == b"Internal Server Error\n"
        ok = c.request("/")
        assert c.response(ok)[1] == b"Hello, world!"
    finally:
        c.close()
    assert "BodyNotReadyError" in server.log
