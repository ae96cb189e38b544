"""Connection lifecycle against the real server (RFC 9113 §6.8 GOAWAY, §3.4, graceful
shutdown): a client's GOAWAY, SIGTERM with streams in flight, and the shutdown timeout."""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import time

import pytest
from hyperframe.frame import GoAwayFrame, PingFrame

from tests.helpers.h2client import H2Client
from tests.helpers.http1raw import H1Raw, request

pytestmark = pytest.mark.timeout(120)

NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM = 0x0, 0x1, 0x7
HELLO = b"Hello, world!"
SLOW = {"tests.served_apps.basic:wsgi_app": "/slow?1.5",
        "tests.served_apps.basic:kyoukai_app": "/sleep?s=1.5"}


def connect(server, **kw) -> H2Client:
    return H2Client("127.0.0.1", server.port, **kw)


def sync(c: H2Client, payload: bytes = b"syncsync") -> None:
    """Return once the server has processed everything we sent (PING is answered in order)."""
    c.send_frame(PingFrame(0, opaque_data=payload))
    c.wait_for(lambda ev: any(f.opaque_data == payload and "ACK" in f.flags
                              for f in c.frames_of(PingFrame)))


def wait_exit(server, timeout: float) -> int:
    try:
        return server.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the server did not exit within {timeout} s\n"
                             + server.log[-3000:]) from None


# -- GOAWAY from the client (§6.8) ----------------------------------------------------------------
def test_client_goaway_lets_the_in_flight_request_finish_then_closes_6_8(servers, impl):
    """GOAWAY(NO_ERROR) from the client while a slow request runs: the server still answers
    it completely, then closes the connection (nothing is left to do on it)."""
    server = servers.get(impl=impl)
    with connect(server) as c:
        sid = c.request("/slow?1")
        sync(c)
        c.send_frame(GoAwayFrame(0, last_stream_id=0, error_code=NO_ERROR))
        headers, body = c.response(sid, timeout=30)
        assert (headers[":status"], body) == ("200", b"slow done")
        c.wait_closed(timeout=15)
        assert not c.goaway_frames() or c.goaway_frames()[0].error_code == NO_ERROR
    with connect(server) as c:
        assert c.get("/")[1] == HELLO


def test_client_goaway_with_an_error_closes_at_once_and_the_server_goes_on_6_8(servers,
                                                                               impl):
    """GOAWAY(PROTOCOL_ERROR) from the client: the server closes without answering; the
    app that was still running on that connection finishes into the void, harmlessly."""
    server = servers.get(impl=impl)
    log_start = len(server.log)
    with connect(server) as c:
        sid = c.request("/slow?1")
        sync(c)
        c.send_frame(GoAwayFrame(0, last_stream_id=0, error_code=PROTOCOL_ERROR))
        c.wait_closed(timeout=15)
        assert c.headers_frames(sid) == []
    with connect(server) as c:
        c.get("/slow?1.5", timeout=30)  # outlives the abandoned app
        assert c.get("/")[1] == HELLO
    assert server.alive()
    assert "internal error" not in server.log[log_start:]


# -- SIGTERM: graceful shutdown -------------------------------------------------------------------
@pytest.mark.parametrize("app", list(SLOW), ids=["wsgi", "kyoukai"])
def test_sigterm_sends_goaway_finishes_in_flight_streams_and_exits_0_6_8(servers, impl, app):
    """SIGTERM: every connection gets GOAWAY(NO_ERROR) whose last_stream_id covers the
    streams in flight; those complete (a slow response, and an upload that still needs
    WINDOW_UPDATEs after the GOAWAY), new streams are refused, idle connections are closed,
    no new connection is accepted, and the process exits 0."""
    server = servers.fresh(app, impl=impl)
    upload_path = "/sha256" if app.endswith("wsgi_app") else "/read-async"
    payload = os.urandom(3 * 1024 * 1024)  # > the 1 MiB stream window
    with connect(server) as c, connect(server) as idle:
        slow = c.request(SLOW[app])
        upload = c.request(upload_path, "POST", end_stream=False)
        c.send_body(upload, payload[:100_000], end_stream=False)
        sync(c)
        sync(idle)

        server.signal(signal.SIGTERM)
        goaway = c.wait_for_goaway(timeout=15)
        assert goaway.error_code == NO_ERROR
        assert goaway.last_stream_id >= max(slow, upload)
        idle_goaway = idle.wait_for_goaway(timeout=15)
        assert (idle_goaway.error_code, idle_goaway.last_stream_id) == (NO_ERROR, 0)
        idle.wait_closed(timeout=15)
        with pytest.raises(OSError):  # the listening socket is closed
            socket.create_connection(("127.0.0.1", server.port), timeout=5).close()

        late = c.request("/")
        assert late > goaway.last_stream_id
        c.send_body(upload, payload[100_000:])
        c.wait_for(lambda ev: c.stream_reset(late) is not None)
        assert c.rst_codes(late) == [REFUSED_STREAM]
        assert c.headers_frames(late) == []

        headers, body = c.response(slow, timeout=30)
        assert headers[":status"] == "200"
        headers, body = c.response(upload, timeout=30)
        assert headers[":status"] == "200"
        digest = hashlib.sha256(payload).hexdigest()
        assert body in (f"{len(payload)} {digest}".encode(), f"{digest} {len(payload)}".encode())
        c.wait_closed(timeout=15)
    assert wait_exit(server, 15) == 0


@pytest.mark.parametrize("app,path", [("tests.served_apps.basic:wsgi_app", "/slow?20"),
                                      ("tests.served_apps.basic:kyoukai_app", "/sleep?s=20")],
                         ids=["wsgi", "kyoukai"])
def test_shutdown_timeout_cuts_slower_requests_and_the_process_exits(servers, impl, app,
                                                                     path):
    """With --shutdown-timeout 1, a request that would take 20 s is cut: the connection is
    closed without its response and the process exits 0, long before the app would finish."""
    server = servers.fresh(app, impl=impl, args=["--shutdown-timeout", "1"])
    with connect(server) as c:
        sid = c.request(path)
        sync(c)
        server.signal(signal.SIGTERM)
        goaway = c.wait_for_goaway(timeout=15)
        assert (goaway.error_code, goaway.last_stream_id) == (NO_ERROR, sid)
        c.wait_closed(timeout=15)
        assert not c.stream_ended(sid) and c.headers_frames(sid) == []
    assert wait_exit(server, 8) == 0


@pytest.mark.parametrize("alpn", ["h2", "http/1.1"])
def test_a_tls_connection_whose_request_comes_after_sigterm_is_served(servers, impl, tls_files,
                                                                      alpn):
    """TLS chooses the protocol at the handshake, before the client sent a byte: a connection
    made just before SIGTERM gets a grace for its first request (its request is on the
    way; closing it would lose it without a word), which is then served; the server exits 0
    (and an idle one is closed after the grace)."""
    cafile = tls_files[2]
    server = servers.fresh(impl=impl, tls=True)
    if alpn == "h2":
        c = H2Client("127.0.0.1", server.port, tls_ca=cafile, initiate=False, timeout=15)
    else:
        c = H1Raw(server.port, tls_ca=cafile, alpn=["http/1.1"])
    idle = H1Raw(server.port, tls_ca=cafile, alpn=["http/1.1"])
    try:
        server.signal(signal.SIGTERM)
        time.sleep(0.2)
        if alpn == "h2":
            c.conn.initiate_connection()
            sid = c.request("/")  # (preface, SETTINGS and HEADERS in one write)
            headers, body = c.response(sid)
            assert (headers[":status"], body) == ("200", HELLO)
            assert [(g.last_stream_id, g.error_code) for g in c.goaway_frames()] == [
                (sid, NO_ERROR)]
            c.wait_closed(timeout=15)
        else:
            c.send(request("GET", "/"))
            reply = c.reply()
            assert (reply.status, reply.body) == (200, HELLO)
            assert c.closed_by_server()
        assert idle.closed_by_server()
    finally:
        c.close()
        idle.close()
    assert wait_exit(server, 15) == 0
