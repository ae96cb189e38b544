"""A finished request is freed when it ends, by reference counting: nothing of it is left in a
reference cycle for the cyclic GC to find later (closed streams are freed at once; a cycle per
request also cost a GC pass every few hundred requests).

The environ holds the request's :class:`~kyoukai_h2fast.H2State` as ``wsgi.input`` and the
state holds the environ; werkzeug's ``Request`` puts itself in the environ it reads. Both links
are dropped when the response is complete or the stream is reset. Served in-process (the
objects are counted in this process) with the cyclic GC switched off while requests run, over
HTTP/2 and HTTP/1.1, for WSGI apps inline and in worker threads and for Kyoukai-style apps.
"""
from __future__ import annotations

import asyncio
import gc
import time

import httpx
import pytest
from werkzeug.wrappers import Request

import kyoukai_h2fast
from kyoukai_h2fast import H2State
from tests.helpers.h2client import H2Client
from tests.served_apps.basic import kyoukai_app, wsgi_app

MODES = {
    "wsgi-inline": (wsgi_app, {"wsgi_threads": 0}),
    "wsgi-threads": (wsgi_app, {"wsgi_threads": 4}),
    "kyoukai": (kyoukai_app, {}),
}


def _live(kind: type) -> int:
    return sum(1 for obj in gc.get_objects() if type(obj) is kind)


async def _serve_and_count(app, settings: dict, http2: bool) -> tuple[int, int, list]:
    """Serve 50 requests (GETs and uploads) on one connection with the GC off; returns the
    H2State and werkzeug Request objects still alive once the responses are in (after up to
    2 s for worker threads to let go of their last job), and the statuses."""
    server = await kyoukai_h2fast.start_server(app, "127.0.0.1", 0, **settings)
    statuses = []
    try:
        async with httpx.AsyncClient(http1=not http2, http2=http2,
                                     base_url=f"http://127.0.0.1:{server.port}") as client:
            for i in range(25):
                statuses.append((await client.get("/")).status_code)
                path = "/echo" if app is wsgi_app else "/get-data"
                r = await client.post(path, content=b"x" * (1000 + i))
                statuses.append(r.status_code)
                assert r.content == b"x" * (1000 + i)
            deadline = time.monotonic() + 2.0
            while (_live(H2State) or _live(Request)) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            states, requests = _live(H2State), _live(Request)
    finally:
        await server.shutdown()
    return states, requests, statuses


@pytest.mark.parametrize("http2", [True, False], ids=["h2c", "http1"])
@pytest.mark.parametrize("mode", list(MODES))
def test_finished_requests_are_freed_without_the_cyclic_gc(mode, http2):
    app, settings = MODES[mode]
    gc.collect()
    assert _live(H2State) == 0 and _live(Request) == 0  # (nothing left by earlier tests)
    gc.disable()
    try:
        states, requests, statuses = asyncio.run(_serve_and_count(app, settings, http2))
    finally:
        gc.enable()
    assert statuses == [200] * 50
    assert (states, requests) == (0, 0), \
        f"{states} H2State and {requests} Request objects wait for the cyclic GC"


def _reset_while_the_app_works(port: int, path: str) -> dict:
    """Five requests reset by the client (RST_STREAM CANCEL) while the app works on them,
    then a GET on the same connection; returns that GET's status."""
    with H2Client("127.0.0.1", port) as client:
        for _ in range(5):
            sid = client.request(path)
            time.sleep(0.05)  # the app has started
            client.conn.reset_stream(sid, 8)  # CANCEL
            client.flush()
        headers, _ = client.get("/")  # (waits for the answer)
        return headers


@pytest.mark.parametrize("mode", ["kyoukai", "wsgi-threads"])
def test_a_stream_reset_while_its_app_works_is_freed_without_the_cyclic_gc(mode):
    app, settings = MODES[mode]
    path = "/sleep?s=0.3" if app is kyoukai_app else "/slow?0.3"

    async def main() -> tuple[int, dict]:
        server = await kyoukai_h2fast.start_server(app, "127.0.0.1", 0, **settings)
        try:
            headers = await asyncio.to_thread(_reset_while_the_app_works, server.port, path)
            deadline = time.monotonic() + 3.0  # the threads' sleeps end, their jobs go
            while _live(H2State) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            return _live(H2State), headers
        finally:
            await server.shutdown()

    gc.collect()
    gc.disable()
    try:
        left, headers = asyncio.run(main())
    finally:
        gc.enable()
    assert headers[":status"] == "200"
    assert left == 0
