"""Arbitrary input from the wire: one connection cannot starve the others, stalled bodies
time out, late results and client aborts are not logged as errors.

Found by fuzzing the server from outside; each case here reproduces one by hand with the raw
client (``tests/helpers/h2client.py``) next to a legitimate client.
"""
from __future__ import annotations

import os
import struct
import time

import httpx
import pytest

from tests.helpers.h2client import PRIORITY, RST_STREAM, WINDOW_UPDATE, H2Client, raw_frame

pytestmark = pytest.mark.timeout(120)

REAL = "tests.served_apps.real:wsgi_app"
PROTOCOL_ERROR, CANCEL = 0x1, 0x8


def _stalled_uploads(server, n: int) -> tuple[H2Client, list[int]]:
    """A connection with ``n`` POST requests whose bodies never come."""
    c = H2Client("127.0.0.1", server.port, timeout=30)
    sids = [c.request("/form-slow", "POST", end_stream=False) for _ in range(n)]
    return c, sids


def _wait_log(server, text: str, count: int = 1, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while server.log.count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} x{count} not in the log:\n{server.log}"
        time.sleep(0.05)


def test_six_stalled_uploads_on_one_connection_leave_the_pool_to_others(servers, impl):
    """Six uploads that never send their body, on one connection, with the default pool
    (CPUs + 4 threads): another client's GET is answered at once, not after the stalled
    connection goes away."""
    server = servers.fresh(REAL, impl=impl, args=["--wsgi-threads", "6"])
    attacker, _ = _stalled_uploads(server, 6)
    try:
        _wait_log(server, "FORM-SLOW-READING", 6)  # all six handlers wait for their bodies
        with httpx.Client(http1=False, http2=True, timeout=10) as c:
            for _ in range(3):
                r = c.get(server.url + "/")
                assert (r.status_code, r.text) == (200, "Hello, world!")
    finally:
        attacker.close()


def test_stalled_body_gets_408_after_the_body_timeout_and_frees_the_thread(servers, impl):
    server = servers.fresh(REAL, impl=impl, args=["--wsgi-threads", "1",
                                                  "--body-timeout", "1"])
    c, (sid,) = _stalled_uploads(server, 1)
    try:
        c.send_body(sid, b"x" * 500, end_stream=False)  # some body, then nothing
        headers, body = c.response(sid, timeout=20)
        assert headers[":status"] == "408"
        assert body == b"Request Timeout\n"
        # The only worker thread is free again: a request that needs it is answered.
        assert c.response(c.request("/"))[1] == b"Hello, world!"
    finally:
        c.close()
    assert "Traceback" not in server.log
    assert "no request body bytes for 1 s" in server.log


def test_idle_timeout_closes_a_connection_whose_only_stream_stalls(servers, impl):
    """With the body timeout off, a connection that sends nothing more while its only stream
    waits for a body is idle: GOAWAY(NO_ERROR) and close after --idle-timeout."""
    server = servers.fresh(REAL, impl=impl, args=["--body-timeout", "0",
                                                  "--idle-timeout", "1"])
    c, _ = _stalled_uploads(server, 1)
    try:
        c.wait_for(lambda ev: c.closed or c.goaway_frames(), timeout=20)
        assert [f.error_code for f in c.goaway_frames()] == [0]
    finally:
        c.close()


def test_worker_result_after_a_connection_error_is_dropped_quietly(servers, impl):
    """A slow app reads a body in a worker while the client sends a burst of PRIORITY frames
    and then a connection WINDOW_UPDATE of 0 (a connection PROTOCOL_ERROR): the server sends
    GOAWAY, and when the worker finishes later nothing is logged as an error."""
    server = servers.fresh(REAL, impl=impl)
    c = H2Client("127.0.0.1", server.port, timeout=30)
    try:
        sid = c.request("/form-slow", "POST", end_stream=False)
        c.send_body(sid, os.urandom(20_000), end_stream=False)
        _wait_log(server, "FORM-SLOW-READING")
        priority = struct.pack(">IB", 3, 15)
        c.send_raw(b"".join(raw_frame(PRIORITY, 0, 2 * i + 1, priority) for i in range(1, 200)))
        c.send_raw(raw_frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0)))
        c.wait_for(lambda ev: c.closed or c.goaway_frames(), timeout=20)
        assert [f.error_code for f in c.goaway_frames()] == [PROTOCOL_ERROR]
    finally:
        c.close()
    time.sleep(1.5)  # the worker's read fails, its result comes back to a dead connection
    assert server.alive()
    assert "Traceback" not in server.log
    assert " ERROR " not in server.log


def test_client_abort_during_an_upload_is_one_info_line_without_traceback(servers, impl):
    server = servers.fresh(REAL, impl=impl)
    c = H2Client("127.0.0.1", server.port, timeout=30)
    try:
        sid = c.request("/form-slow", "POST", end_stream=False)
        c.send_body(sid, os.urandom(5_000), end_stream=False)
        _wait_log(server, "FORM-SLOW-READING")
        c.send_raw(raw_frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL)))
        _wait_log(server, "request ended early")
        assert c.response(c.request("/"))[1] == b"Hello, world!"
    finally:
        c.close()
    log = server.log
    assert "Traceback" not in log and " ERROR " not in log
    line = next(x for x in log.splitlines() if "request ended early" in x)
    assert " INFO " in line
    assert f"stream {sid} was reset by the client (error 0x8)" in line


def test_content_length_mismatch_says_the_server_reset_the_stream_and_why(servers, impl):
    server = servers.fresh(REAL, impl=impl)
    c = H2Client("127.0.0.1", server.port, timeout=30, validate=False)
    try:
        sid = c.request("/form-slow", "POST", headers=[("content-length", "10")],
                        end_stream=False)
        _wait_log(server, "FORM-SLOW-READING")
        c.conn.send_data(sid, b"x" * 20)
        c.flush()
        c.wait_for(lambda ev: c.stream_reset(sid) is not None)
        assert c.rst_codes(sid) == [PROTOCOL_ERROR]
        _wait_log(server, "request ended early")
    finally:
        c.close()
    log = server.log
    assert "Traceback" not in log and " ERROR " not in log
    assert f"stream {sid} was reset by the server: content-length mismatch" in log


def test_many_client_aborts_are_rate_limited_in_the_log(servers, impl):
    """Aborted uploads are logged at most 10 a second (a client must not be able to flood
    the log), and never with a traceback."""
    server = servers.fresh(REAL, impl=impl)
    c = H2Client("127.0.0.1", server.port, timeout=30)
    start = time.monotonic()
    try:
        for _ in range(40):
            sid = c.request("/form-slow", "POST", end_stream=False)
            c.send_body(sid, b"x" * 1000, end_stream=False)
            c.send_raw(raw_frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL)))
        assert c.response(c.request("/"))[1] == b"Hello, world!"
        time.sleep(1.0)
    finally:
        c.close()
    seconds = time.monotonic() - start
    lines = server.log.count("request ended early")
    assert lines <= 10 * (int(seconds) + 2)
    assert "Traceback" not in server.log
