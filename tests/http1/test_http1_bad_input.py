"""Bad input on HTTP/1.1 gets a precise status and a closed connection (RFC 9112 §2.2, §3,
§5, §6; RFC 9110 §15.5), never a traceback or a hang; the server keeps serving. Raw client,
responses parsed by h11; compiled build and pure twins."""
from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.helpers.http1raw import H1Raw, chunked, request

pytestmark = pytest.mark.timeout(120)

LIMITS = ["--max-body-size", "10000", "--max-header-list-size", "8192"]

CASES = {
    # RFC 9112 §3.2: an HTTP/1.1 request without Host, or with two
    "no-host-400": (request("GET", "/", host=None), 400),
    "two-hosts-400": (request("GET", "/", headers=[("Host", "y")]), 400),
    # §5.1: no whitespace between name and colon; a name must be a token
    "space-before-colon-400": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A : 1\r\n\r\n", 400),
    "bad-field-name-400": (b"GET / HTTP/1.1\r\nHost: x\r\nX(A): 1\r\n\r\n", 400),
    "nul-in-value-400": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
    # §5.2: obsolete line folding
    "obs-fold-400": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400),
    # §6.3: both content-length and transfer-encoding (request smuggling)
    "cl-and-te-400": (request("POST", "/echo", headers=[("Content-Length", "5"),
                                                       ("Transfer-Encoding", "chunked")])
                      + b"5\r\nhello\r\n0\r\n\r\n", 400),
    "two-different-content-lengths-400": (request("POST", "/echo", headers=[
        ("Content-Length", "5"), ("Content-Length", "6")]) + b"hello!", 400),
    "bad-content-length-400": (request("POST", "/echo", headers=[("Content-Length", "5x")]),
                               400),
    "bad-chunk-size-400": (request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")])
                           + b"zz\r\nhello\r\n0\r\n\r\n", 400),
    "te-not-ending-in-chunked-400": (request("POST", "/echo", headers=[
        ("Transfer-Encoding", "chunked, gzip")]) + b"0\r\n\r\n", 400),
    "lf-only-request-line-400": (b"GET / HTTP/1.1\nHost: x\n\n", 400),
    # RFC 9110 §15.5.14: content-length over --max-body-size, before any body byte
    "content-length-too-large-413": (request("POST", "/echo",
                                             headers=[("Content-Length", "10001")]), 413),
    "chunked-body-too-large-413": (request("POST", "/echo", headers=[
        ("Transfer-Encoding", "chunked")]) + chunked(b"a" * 6000, b"b" * 6000), 413),
    # RFC 9110 §15.5.15 / RFC 6585 §5: request target and header section over the limit
    "target-too-long-414": (request("GET", "/" + "a" * 9000), 414),
    "header-too-large-431": (request("GET", "/", headers=[("X-Big", "v" * 9000)]), 431),
    "too-many-fields-431": (request("GET", "/", headers=[(f"X-F{i}", "v")
                                                         for i in range(400)]), 431),
    # RFC 9110 §10.1.1: an expectation we cannot meet
    "expect-other-417": (request("GET", "/", headers=[("Expect", "something-else")]), 417),
    # RFC 9110 §9.3.6: CONNECT is for proxies
    "connect-501": (b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n", 501),
    # RFC 9112 §2.3: a minor version llhttp does not know (major versions other than 1 are
    # an invalid HTTP/2 preface on a first request: tests/test_http1_sniff.py)
    "version-1.2-400": (b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 400),
    "upgrade-with-chunked-body-400": (request("POST", "/echo", headers=[
        ("Connection", "Upgrade"), ("Upgrade", "h2c"), ("Transfer-Encoding", "chunked")])
        + chunked(b"hello"), 400),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_request_gets_its_status_and_a_closed_connection(servers, impl, case):
    payload, status = CASES[case]
    server = servers.get(impl=impl, args=LIMITS)
    with H1Raw(server.port) as c:
        c.send(payload)
        reply = c.reply("POST" if payload.startswith(b"POST") else "GET")
        assert reply.status == status, reply
        assert reply.header("connection") == "close"
        assert b"Traceback" not in reply.body and b"File \"" not in reply.body
        assert c.closed_by_server()
    assert "internal error" not in server.log  # no bug of ours was hit
    with httpx.Client(http1=True, http2=False) as client:
        assert client.get(server.url + "/").text == "Hello, world!"


@pytest.mark.parametrize("app, args", [
    ("tests.served_apps.basic:wsgi_app", ["--wsgi-threads", "0"]),
    ("tests.served_apps.basic:kyoukai_app", []),
    ("tests.served_apps.basic:wsgi_app", []),
], ids=["wsgi-inline", "kyoukai", "wsgi-pool"])
def test_chunked_body_over_the_limit_gets_413_in_every_app_mode(servers, impl, app, args):
    """The body grows past --max-body-size while the request is current (its app started
    or not yet): 413 if no response started, and the connection closes."""
    server = servers.get(app=app, impl=impl, args=LIMITS + args)
    path = "/read-async" if "kyoukai" in app else "/echo"
    with H1Raw(server.port) as c:
        c.send(request("POST", path, headers=[("Transfer-Encoding", "chunked")])
               + b"fa0\r\n" + b"a" * 4000 + b"\r\n")  # one chunk, no last-chunk yet
        time.sleep(0.3)  # the request is current and waiting for its body
        try:
            c.send(chunked(b"b" * 4000, b"c" * 4000))
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = c.reply("POST")
        assert reply.status == 413
        assert c.closed_by_server()
    with httpx.Client(http1=True, http2=False) as client:
        assert client.get(server.url + "/").status_code == 200


def test_bad_request_behind_a_good_one_is_answered_in_turn(servers, impl):
    server = servers.get(impl=impl, args=LIMITS)
    with H1Raw(server.port) as c:
        c.send(request("GET", "/") + b"GET / HTTP/1.1\r\nHost: x\r\nX(A): 1\r\n\r\n"
               + request("GET", "/"))
        good, bad = c.replies("GET", "GET")
        assert (good.status, good.body) == (200, b"Hello, world!")
        assert bad.status == 400
        assert c.closed_by_server()


def test_another_major_version_in_a_later_request_gets_505(servers, impl):
    """RFC 9110 §15.6.6: once a connection speaks HTTP/1.1, a request line with a major
    version we do not speak gets 505 (as a first line it is an invalid HTTP/2 preface:
    tests/test_http1_sniff.py)."""
    server = servers.get(impl=impl, args=LIMITS)
    with H1Raw(server.port) as c:
        c.send(request("GET", "/") + b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
        good, bad = c.replies("GET", "GET")
        assert (good.status, bad.status) == (200, 505)
        assert c.closed_by_server()


def test_garbage_after_a_keep_alive_response_gets_400_and_close(servers, impl):
    server = servers.get(impl=impl, args=LIMITS)
    with H1Raw(server.port) as c:
        c.send(request("GET", "/"))
        assert c.reply().status == 200
        c.send(b"\x00\x01\x02 not http\r\n\r\n")
        assert c.reply().status == 400
        assert c.closed_by_server()


def test_header_section_trickled_past_the_limit_gets_431(servers, impl):
    """The head never ends and grows byte by byte in many reads: bounded, then 431."""
    server = servers.get(impl=impl, args=LIMITS)
    with H1Raw(server.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: ")
        sent = 0
        try:
            while sent < 64 * 1024:
                c.send(b"v" * 1024)
                sent += 1024
                time.sleep(0.002)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = c.reply()
        assert reply.status == 431
        assert c.closed_by_server()


def test_stalled_request_head_is_closed_by_the_idle_timeout(servers, impl):
    """Slowloris: an unfinished head and then nothing; the idle timeout closes it."""
    server = servers.get(impl=impl, args=["--idle-timeout", "1"])
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        received = b""
        while True:
            data = s.recv(65536)  # socket.timeout (a failure) if the server never closes
            if not data:
                break
            received += data
    assert received == b""


@pytest.mark.parametrize("app, args", [
    ("tests.served_apps.basic:wsgi_app", []),                      # the app waits in a thread
    ("tests.served_apps.basic:wsgi_app", ["--wsgi-threads", "0"]),  # spooled: app not started
    ("tests.served_apps.basic:kyoukai_app", []),
], ids=["wsgi-pool", "wsgi-inline", "kyoukai"])
def test_body_that_stops_arriving_gets_408_rfc9110_15_5_9(servers, impl, app, args):
    """A body that stops arriving: after --body-timeout the request gets 408 (the app's
    blocked read is released) and the connection closes; the server goes on."""
    server = servers.get(app=app, impl=impl, args=["--body-timeout", "1"] + args)
    path = "/read-async" if "kyoukai" in app else "/echo"
    with H1Raw(server.port, timeout=30) as c:
        c.send(request("POST", path, headers=[("Content-Length", "1000")]) + b"x" * 10)
        reply = c.reply("POST")
        assert reply.status == 408
        assert c.closed_by_server()
    with httpx.Client(http1=True, http2=False) as client:
        assert client.get(server.url + "/").status_code == 200


def test_client_that_half_closes_mid_body_is_dropped(servers, impl):
    server = servers.get(impl=impl)
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as s:
        s.sendall(request("POST", "/echo", headers=[("Content-Length", "1000")]) + b"x" * 10)
        s.shutdown(socket.SHUT_WR)
        assert s.recv(65536) == b""  # closed, not left hanging
    with httpx.Client(http1=True, http2=False) as client:
        assert client.get(server.url + "/").status_code == 200
