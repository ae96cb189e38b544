"""Kyoukai-style apps (request_class + async process_request) behind the server."""
from __future__ import annotations

import hashlib
import os

import httpx
import pytest

from tests.helpers.h2client import H2Client

pytestmark = pytest.mark.timeout(120)

APP = "tests.served_apps.basic:kyoukai_app"


def client() -> httpx.Client:
    return httpx.Client(http1=False, http2=True, timeout=30)


def test_hello_and_finalize_called_once_at_start(servers, impl):
    server = servers.get(app=APP, impl=impl)
    with client() as c:
        assert c.get(server.url + "/").text == "Hello, world!"
        assert c.get(server.url + "/counters").json()["finalized"] == 1


def test_request_get_data(servers, impl):
    server = servers.get(app=APP, impl=impl)
    body = os.urandom(200_000)
    with client() as c:
        assert c.post(server.url + "/get-data", content=body).content == body


@pytest.mark.parametrize("size", [0, 1, 70_000, 5 * 1024 * 1024])
def test_read_async_reads_whole_body(servers, impl, size):
    server = servers.get(app=APP, impl=impl)
    body = os.urandom(size)
    with client() as c:
        r = c.post(server.url + "/read-async", content=body)
    assert r.text == f"{hashlib.sha256(body).hexdigest()} {size}"


def test_read_async_chunks_stream_a_large_body(servers, impl):
    server = servers.get(app=APP, impl=impl)
    with client() as c:
        r = c.post(server.url + "/chunks", content=b"z" * (3 * 1024 * 1024))
    assert r.json()["total"] == 3 * 1024 * 1024


def test_app_exception_gives_500_without_traceback(servers, impl):
    server = servers.get(app=APP, impl=impl)
    with client() as c:
        r = c.get(server.url + "/raise")
        assert c.get(server.url + "/").status_code == 200
    assert r.status_code == 500
    assert "SECRET-TRACEBACK-MARKER" not in r.text


def test_slow_coroutine_does_not_delay_other_streams(servers, impl):
    """A handler suspended for 2 s does not hold up 20 requests on the same connection: all
    of them are answered before it (the order of the frames on the wire decides, not time).
    The raw client is used because httpx's HTTP/2 reader sometimes delivers other streams'
    responses only when a pending one completes."""
    server = servers.get(app=APP, impl=impl)
    c = H2Client("127.0.0.1", server.port, timeout=30)
    try:
        slow = c.request("/sleep?s=2")
        fast = [c.request("/") for _ in range(20)]
        c.assert_answered_before(slow, fast)
        assert c.body(slow) == b"slept"
        assert all(c.body(sid) == b"Hello, world!" for sid in fast)
    finally:
        c.close()


def test_demo_app_is_served_without_app_argument(servers, impl):
    server = servers.get(app=None, impl=impl)
    with client() as c:
        assert "kyoukai_h2fast" in c.get(server.url + "/").text
        assert c.post(server.url + "/echo", content=b"ping").content == b"ping"
        assert len(c.get(server.url + "/bytes/300000").content) == 300000
