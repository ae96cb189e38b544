"""Where a WSGI request's code runs: the app call, every ``next()`` of its response iterable
and its ``close()`` run in the request's own ``contextvars.Context`` (the same object for all
of them, fresh for each request) and on one thread, in the thread pool (default) and inline
(``--wsgi-threads 0``), over HTTP/2 and HTTP/1.1, with many clients at once (issue 19 item 1).

A Flask ``stream_with_context`` generator must only ever see its own request; a plain app
reports from inside (see ``tests/served_apps/context.py``) what each call saw, also for responses
that wait for the client's flow-control window and for clients that cancel mid-stream. A
streaming response waiting for a slow client gives its pool slot back: clients that never
read cannot starve the pool.
"""
from __future__ import annotations

import asyncio
import re
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import h2.events
import httpx
import pytest
from h2.settings import SettingCodes

from tests.helpers.h2client import H2Client

pytestmark = pytest.mark.timeout(180)

PROBE = "tests.served_apps.context:probe_app"
FLASK = "tests.served_apps.context:flask_app"
MODES = {"pool": (), "inline": ("--wsgi-threads", "0")}
#: The probe in each mode, and as a Kyoukai-style app (its response pulled on the loop).
PROBES = {"pool": (PROBE, ()), "inline": (PROBE, MODES["inline"]),
          "kyoukai": ("tests.served_apps.context:kyoukai_probe_app", ())}
#: What the server log must never say while these apps run.
BAD = ("Traceback", " ERROR ", "different Context", "outside of request context",
       "Popped wrong", "abandoning")
_CHUNK = re.compile(rb"#(\d+) id=(\S+) var=(\S+) thread=(\S+) step=(\S+)( fresh=no)?\n")
_CLOSED = re.compile(r"PROBE-CLOSED id=(\S+) var=(\S+) thread=(\S+) reset=(\S+) count=(\d+)")


def _tag() -> str:
    return uuid.uuid4().hex[:8]


def _log_since(server, mark: int) -> str:
    return server.log[mark:]


def _assert_clean(log: str) -> None:
    bad = [line for line in log.splitlines() if any(b in line for b in BAD)]
    assert not bad, "server log:\n" + "\n".join(bad[:20])


def _check_chunks(body: bytes, rid: str, count: int | None = None) -> int:
    """Every chunk of ``rid``'s body saw its own request, thread and context; returns how
    many chunks there were (``count``: exactly that many)."""
    seen = _CHUNK.findall(body)
    assert seen, body[:200]
    for i, (index, cid, var, thread, step, stale) in enumerate(seen):
        assert (int(index), cid.decode(), var.decode(), thread, step, stale) == \
            (i, rid, rid, b"same", b"ok", b""), f"chunk {i} of {rid}: {seen[i]}"
    if count is not None:
        assert len(seen) == count
    return len(seen)


def _wait_closed(server, mark: int, ids: list[str], timeout: float = 20.0) -> dict:
    """Wait for every ``PROBE-CLOSED`` line of ``ids``; check each was called once, on the
    request's thread and in its context. Returns the lines by id."""
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, list] = {}
        for m in _CLOSED.finditer(_log_since(server, mark)):
            found.setdefault(m.group(1), []).append(m.groups())
        if all(rid in found for rid in ids) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    missing = [rid for rid in ids if rid not in found]
    assert not missing, f"close() never ran for {missing}"
    for rid in ids:
        assert found[rid] == [(rid, rid, "same", "ok", "1")], found[rid]
    return found


def _h2_get_all(port: int, paths: list[str], window: int) -> list[bytes]:
    """GET every path on one connection at once (streams multiplexed) with a small stream
    window: the server waits for WINDOW_UPDATE between chunks. Bodies in order."""
    with H2Client("127.0.0.1", port, timeout=60,
                  settings={SettingCodes.INITIAL_WINDOW_SIZE: window}) as client:
        sids = [client.request(path) for path in paths]
        return [client.response(sid, timeout=60)[1] for sid in sids]


async def _get_all(url: str, paths: list[str], http2: bool) -> list[httpx.Response]:
    """GET every path at once, each on a connection of its own (a user each)."""
    async def one(path: str) -> httpx.Response:
        async with httpx.AsyncClient(http1=not http2, http2=http2, timeout=60) as client:
            return await client.get(url + path)
    return await asyncio.gather(*(one(path) for path in paths))


PROTOCOLS = {"h2": True, "http1": False}


# -- 1. Flask stream_with_context: every user gets only their own data ------------------------
@pytest.mark.parametrize("protocol", list(PROTOCOLS))
@pytest.mark.parametrize("mode", list(MODES))
def test_flask_stream_with_context_sees_only_its_own_request(servers, impl, mode, protocol):
    """16 users at once, 3 rounds, each streaming 6 lines that read ``request.args['who']``
    in a ``stream_with_context`` generator: each user gets exactly their own lines, and the
    server logs no error (no "Working outside of request context", "Popped wrong request
    context", "created in a different Context")."""
    server = servers.get(FLASK, impl=impl, args=MODES[mode])
    mark = len(server.log)
    for _ in range(3):
        users = [f"user{i}-{_tag()}" for i in range(16)]
        responses = asyncio.run(_get_all(server.url, [f"/who?who={u}&n=6" for u in users],
                                         PROTOCOLS[protocol]))
        for user, r in zip(users, responses, strict=True):
            assert r.status_code == 200
            assert r.text == "".join(f"{i} who={user}\n" for i in range(6)), (user, r.text)
    time.sleep(0.2)  # (errors of the last closes reach the log)
    _assert_clean(_log_since(server, mark))


# -- 2. the app call, each next() and close(): one context, one thread --------------------------
@pytest.mark.parametrize("mode", list(PROBES))
def test_long_h2_responses_under_flow_control_stay_in_their_context(servers, impl, mode):
    """8 connections at once, 3 streams each, 12 chunks of 16 KiB per response against a
    16 KiB stream window (each chunk waits for a WINDOW_UPDATE): every ``next()`` and the
    ``close()`` ran on the app call's thread, saw the ContextVar it set and what the previous
    ``next()`` set (the same Context object), and the app call saw a fresh context."""
    app, args = PROBES[mode]
    server = servers.get(app, impl=impl, args=args)
    mark = len(server.log)
    sleep = "0.002" if mode == "pool" else "0"
    groups = [[f"c{c}s{s}-{_tag()}" for s in range(3)] for c in range(8)]
    with ThreadPoolExecutor(len(groups)) as pool:
        bodies = list(pool.map(lambda ids: _h2_get_all(
            server.port, [f"/probe?id={rid}&chunks=12&size=16384&sleep={sleep}" for rid in ids],
            16384), groups))
    for ids, got in zip(groups, bodies, strict=True):
        for rid, body in zip(ids, got, strict=True):
            assert len(body) == 12 * 16384
            _check_chunks(body, rid, 12)
    _wait_closed(server, mark, [rid for ids in groups for rid in ids])
    _assert_clean(_log_since(server, mark))


@pytest.mark.parametrize("mode", list(PROBES))
def test_long_http1_responses_stay_in_their_context(servers, impl, mode):
    """The same over HTTP/1.1: 12 users at once, 2 requests each on a keep-alive connection,
    32 chunks of 32 KiB per response."""
    app, args = PROBES[mode]
    server = servers.get(app, impl=impl, args=args)
    mark = len(server.log)
    sleep = "0.001" if mode == "pool" else "0"
    ids = [f"u{i}-{_tag()}" for i in range(12)]

    def user(rid: str) -> list[bytes]:
        with httpx.Client(timeout=60) as client:
            return [client.get(f"{server.url}/probe?id={rid}-{n}&chunks=32&size=32768"
                               f"&sleep={sleep}").content for n in range(2)]

    with ThreadPoolExecutor(len(ids)) as pool:
        bodies = list(pool.map(user, ids))
    for rid, got in zip(ids, bodies, strict=True):
        for n, body in enumerate(got):
            _check_chunks(body, f"{rid}-{n}", 32)
    _wait_closed(server, mark, [f"{rid}-{n}" for rid in ids for n in range(2)])
    _assert_clean(_log_since(server, mark))


# -- 3. a client that cancels mid-stream: close() once, on the request's thread ---------------
def _h2_cancel(port: int, rid: str) -> None:
    """Start an endless response, read three chunks, reset the stream (CANCEL)."""
    with H2Client("127.0.0.1", port, timeout=30) as client:
        sid = client.request(f"/probe?id={rid}&chunks=0&size=16384&sleep=0.001")
        client.wait_for(lambda ev: len(client.body(sid)) >= 3 * 16384)
        client.conn.reset_stream(sid, 8)  # CANCEL
        client.flush()
        headers, _ = client.get("/")  # the connection goes on
        assert headers[":status"] == "200"


def _http1_cancel(port: int, rid: str) -> None:
    """Start an endless response, read three chunks, close the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"GET /probe?id={rid}&chunks=0&size=16384&sleep=0.001 HTTP/1.1\r\n"
                     "Host: x\r\n\r\n".encode())
        got = 0
        while got < 3 * 16384:
            data = sock.recv(65536)
            assert data
            got += len(data)


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
@pytest.mark.parametrize("mode", list(PROBES))
def test_a_cancelled_response_is_closed_once_in_its_context(servers, impl, mode, protocol):
    """12 clients at once cancel endless responses after three chunks (HTTP/2: RST_STREAM;
    HTTP/1.1: the socket closes): each ``close()`` runs once, on the request's thread, in its
    context (its ContextVar token resets), and nothing is logged as an error."""
    app, args = PROBES[mode]
    server = servers.get(app, impl=impl, args=args)
    mark = len(server.log)
    cancel = _h2_cancel if PROTOCOLS[protocol] else _http1_cancel
    ids = [f"x{i}-{_tag()}" for i in range(12)]
    with ThreadPoolExecutor(len(ids)) as pool:
        list(pool.map(lambda rid: cancel(server.port, rid), ids))
    _wait_closed(server, mark, ids)
    time.sleep(0.3)  # (a second close() would show by now)
    _wait_closed(server, mark, ids)
    _assert_clean(_log_since(server, mark))


# -- 4. clients that never read do not starve the pool ---------------------------------------------
def test_streaming_responses_to_clients_that_never_read_do_not_starve_the_pool(servers, impl):
    """``--wsgi-threads 2`` (34 threads at most): 6 HTTP/2 responses to clients with a window
    of 0, 4 HTTP/1.1 responses to clients that never read, and one connection asking for 40
    such responses at once are in progress (endless); a GET on another connection is still
    answered at once (a waiting response holds its thread, not its slot, and one connection
    occupies at most half of the threads). When those clients go, each iterable is closed on
    its request's thread, in its context."""
    server = servers.fresh(PROBE, impl=impl, args=["--wsgi-threads", "2"])
    mark = len(server.log)
    h2_ids = [f"h2slow{i}-{_tag()}" for i in range(6)]
    h1_ids = [f"h1slow{i}-{_tag()}" for i in range(4)]
    flood_ids = [f"flood{i}-{_tag()}" for i in range(40)]
    stalled: list[H2Client] = []
    sockets: list[socket.socket] = []
    try:
        for rid in h2_ids:
            client = H2Client("127.0.0.1", server.port, timeout=30,
                              settings={SettingCodes.INITIAL_WINDOW_SIZE: 0})
            stalled.append(client)
            sid = client.request(f"/probe?id={rid}&chunks=0&size=65536")
            client.wait_for(lambda ev, c=client, s=sid: c.of(s, h2.events.ResponseReceived))
        for rid in h1_ids:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sockets.append(sock)
            sock.sendall(f"GET /probe?id={rid}&chunks=0&size=65536 HTTP/1.1\r\n"
                         "Host: x\r\n\r\n".encode())
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
        flood = H2Client("127.0.0.1", server.port, timeout=30,
                         settings={SettingCodes.INITIAL_WINDOW_SIZE: 0})
        stalled.append(flood)
        flood_sids = {flood.request(f"/probe?id={rid}&chunks=0&size=65536"): rid
                      for rid in flood_ids}
        flood.wait_for(lambda ev: any(flood.of(sid, h2.events.ResponseReceived)
                                      for sid in flood_sids))
        time.sleep(0.5)  # the HTTP/1.1 responses fill the socket buffers and wait
        started = time.monotonic()
        with httpx.Client(http1=False, http2=True, timeout=30) as client:
            r = client.get(f"{server.url}/probe?id=quick-{_tag()}&chunks=2&size=100")
        assert r.status_code == 200
        assert time.monotonic() - started < 10
        flood.read_for(0.2)
        answered = [rid for sid, rid in flood_sids.items()
                    if flood.of(sid, h2.events.ResponseReceived)]
        assert 1 <= len(answered) <= 17  # (half of the 34 threads)
    finally:
        for client in stalled:
            client.close()
        for sock in sockets:
            sock.close()
    _wait_closed(server, mark, h2_ids + h1_ids + answered)
    time.sleep(0.3)
    flood_closes = [m.groups() for m in _CLOSED.finditer(_log_since(server, mark))
                    if m.group(1).startswith("flood")]
    assert all(line == (line[0], line[0], "same", "ok", "1") for line in flood_closes), \
        flood_closes  # (apps that started just before the connection went included)
    _assert_clean(_log_since(server, mark))


def test_shutdown_closes_a_response_waiting_for_its_client_in_its_context(servers, impl):
    """SIGTERM while a streaming response waits for a client whose window is 0: once the
    shutdown timeout cuts it, its iterable is closed on its thread, in its context, and no
    handler is left running."""
    server = servers.fresh(PROBE, impl=impl, args=["--shutdown-timeout", "0.5"])
    rid = f"stuck-{_tag()}"
    with H2Client("127.0.0.1", server.port, timeout=30,
                  settings={SettingCodes.INITIAL_WINDOW_SIZE: 0}) as client:
        sid = client.request(f"/probe?id={rid}&chunks=0&size=65536")
        client.wait_for(lambda ev: client.of(sid, h2.events.ResponseReceived))
        server.signal()
        assert server.wait(30) == 0
    _wait_closed(server, 0, [rid])
    _assert_clean(server.log)


# -- 5. inline mode: the same guarantees on the loop's thread -----------------------------------
def test_inline_requests_on_one_connection_do_not_share_a_context(servers, impl):
    """Inline (``--wsgi-threads 0``) streams of one HTTP/2 connection interleave on the loop:
    each still sees only its own context at every step (checked in detail by the tests
    above, parametrized over both modes); and one thread runs them all."""
    server = servers.get(PROBE, impl=impl, args=MODES["inline"])
    mark = len(server.log)
    ids = [f"in{i}-{_tag()}" for i in range(6)]
    bodies = _h2_get_all(server.port, [f"/probe?id={rid}&chunks=10&size=20000" for rid in ids],
                         8192)
    for rid, body in zip(ids, bodies, strict=True):
        _check_chunks(body, rid, 10)
    _wait_closed(server, mark, ids)
    _assert_clean(_log_since(server, mark))
