"""HTTP/2 keep-alive PINGs against the real server, both builds (``--http2-ping-interval``,
``--http2-ping-timeout``; RFC 9113 §6.7): a silent peer gets PINGs; one that answers them stays
connected, and is still closed by the idle timeout (ACKs are no activity); one that does not is
closed with GOAWAY soon after the timeout, and the work for its streams is dropped.
"""
from __future__ import annotations

import json
import time

import pytest
from hyperframe.frame import GoAwayFrame, PingFrame

from kyoukai_h2fast.http2.keepalive import PING_ACK_SIZE, KeepAlive
from tests.helpers.builds import default_impl
from tests.helpers.h2client import H2Client

pytestmark = pytest.mark.timeout(60)

INTERVAL, TIMEOUT, IDLE = 0.3, 0.5, 2.5
ARGS = ("--http2-ping-interval", str(INTERVAL), "--http2-ping-timeout", str(TIMEOUT),
        "--idle-timeout", str(IDLE))


@pytest.fixture
def server(servers, impl):
    return servers.get("tests.served_apps.basic:wsgi_app", impl, args=ARGS)


def _server_pings(c: H2Client) -> list[bytes]:
    return [f.opaque_data for f in c.frames_of(PingFrame) if "ACK" not in f.flags]


def _goaway(c: H2Client) -> GoAwayFrame:
    frames = c.goaway_frames()
    assert frames, f"no GOAWAY; frames: {c.frames!r}"
    return frames[-1]


def test_a_silent_peer_that_answers_gets_pings_and_stays_connected(server):
    with H2Client("127.0.0.1", server.port) as c:
        c.read_for(INTERVAL * 4)
        pings = _server_pings(c)
        assert len(pings) >= 2, c.frames
        assert len(set(pings)) == len(pings) and all(p.startswith(b"ka") for p in pings)
        assert not c.closed and not c.goaway_frames()
        sid = c.request("/")
        headers, body = c.response(sid)
        assert headers[":status"] == "200" and body == b"Hello, world!"


def test_a_peer_that_does_not_answer_is_closed_after_the_timeout(server):
    with H2Client("127.0.0.1", server.port, answer_pings=False) as c:
        started = time.monotonic()
        c.wait_closed(timeout=10)
        elapsed = time.monotonic() - started
    goaway = _goaway(c)
    assert (goaway.error_code, goaway.additional_data) == (0, b"PING timeout")
    assert _server_pings(c) and elapsed < IDLE - 0.2, elapsed  # the PING, not the idle timeout
    deadline = time.monotonic() + 5          # (the log is read by another thread)
    while "no PING ACK within 0.5 s" not in server.log:
        assert time.monotonic() < deadline, server.log
        time.sleep(0.05)


def test_answered_pings_do_not_keep_an_idle_connection_open(server):
    with H2Client("127.0.0.1", server.port) as c:
        started = time.monotonic()
        c.wait_closed(timeout=10)
        elapsed = time.monotonic() - started
    goaway = _goaway(c)
    assert goaway.error_code == 0 and goaway.additional_data != b"PING timeout"
    assert len(_server_pings(c)) >= 2          # answered all along, then idle-closed anyway
    assert elapsed >= IDLE - 0.3, elapsed


def _closed_count(port: int) -> int:
    with H2Client("127.0.0.1", port) as c:
        headers, body = c.response(c.request("/closed"))
        return json.loads(body)["closed"]


def test_the_streams_of_a_dead_peer_are_dropped(server):
    """A response streaming to a peer that stopped answering (the idle timeout never fires:
    the server is working on the stream): the PING finds it, the app's iterable is closed."""
    before = _closed_count(server.port)
    with H2Client("127.0.0.1", server.port, answer_pings=False) as c:
        sid = c.request("/stream-slow?100")    # 100 chunks 0.5 s apart
        c.wait_closed(timeout=10)
        assert not c.stream_ended(sid)
    assert _goaway(c).additional_data == b"PING timeout"
    deadline = time.monotonic() + 5
    while _closed_count(server.port) == before:
        assert time.monotonic() < deadline, "the app iterable of the dead peer was not closed"
        time.sleep(0.1)


def test_over_tls_a_dead_peer_is_closed_too(servers, tls_files):
    """TLS (ALPN h2): the same PING, and the TLS transport is aborted, not shut down
    gracefully (a dead peer would never answer the close_notify)."""
    server = servers.get("tests.served_apps.basic:wsgi_app", default_impl(), tls=True, args=ARGS)
    with H2Client("127.0.0.1", server.port, tls_ca=tls_files[2], answer_pings=False) as c:
        started = time.monotonic()
        c.wait_closed(timeout=10)
        elapsed = time.monotonic() - started
    assert _goaway(c).additional_data == b"PING timeout"
    assert elapsed < IDLE - 0.2, elapsed


# ---- the schedule itself (kyoukai_h2fast.http2.keepalive), in memory ---------------------------

class _Engine:
    """What KeepAlive uses of an engine: send_ping and bytes_received."""

    def __init__(self) -> None:
        self.pings: list[bytes] = []
        self.bytes_received = 1000

    def send_ping(self, data: bytes) -> None:
        self.pings.append(data)


def test_schedule_ping_when_silent_then_deadline_then_next_after_the_ack():
    engine, k = _Engine(), KeepAlive(interval=10.0, timeout=3.0)
    assert k.check(now=5.0, last_activity=0.0, engine=engine) == 10.0   # not yet
    assert k.check(now=10.0, last_activity=0.0, engine=engine) == 13.0  # PING, ACK due at 13
    assert engine.pings == [b"ka\x00\x00\x00\x00\x00\x01"] and k.outstanding
    assert k.check(now=12.0, last_activity=0.0, engine=engine) == 13.0  # one at a time
    engine.bytes_received += PING_ACK_SIZE
    assert k.acknowledged(b"ka\x00\x00\x00\x00\x00\x01", 11.0, engine) == 0.0  # ACK alone
    assert not k.outstanding
    assert k.check(now=13.0, last_activity=0.0, engine=engine) == 21.0  # 10 s after the ACK
    assert k.check(now=21.0, last_activity=0.0, engine=engine) == 24.0
    assert k.check(now=24.0, last_activity=0.0, engine=engine) is None  # no ACK: timed out
    assert len(engine.pings) == 2


def test_an_ack_with_other_frames_counts_as_activity_and_foreign_acks_are_ignored():
    engine, k = _Engine(), KeepAlive(interval=1.0, timeout=1.0)
    k.check(now=1.0, last_activity=0.0, engine=engine)
    assert k.acknowledged(b"\0" * 8, 1.2, engine) is None          # the engine's own PING
    assert k.outstanding
    engine.bytes_received += PING_ACK_SIZE + 13                      # + a WINDOW_UPDATE
    assert k.acknowledged(engine.pings[0], 1.5, engine) is None and not k.outstanding
    assert k.acknowledged(engine.pings[0], 1.6, engine) is None    # a second (late) ACK
