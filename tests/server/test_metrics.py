"""Prometheus metrics (``--metrics-port``, issue 22): the real server scraped at ``/metrics``.

Requests over HTTP/2 (httpx, a raw h2 client) and HTTP/1.1 (httpx, curl, a raw client) are
counted by protocol and status, resets as ``reset``; durations land in the histogram; bytes,
open connections and streams, the thread pool's busy threads and queue depth are reported;
a connection a flood budget closed is counted under the budget's name; with ``--workers 2``
one endpoint shows the sum of both workers, and a killed worker's counts stay. Both builds.
"""
from __future__ import annotations

import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kyoukai_h2fast.config import ServerConfig
from kyoukai_h2fast.constants import FrameType
from kyoukai_h2fast.errors import ConnectionFailed
from kyoukai_h2fast.server.metrics import BUCKETS, BUDGETS, MetricsBoard, Recorder
from tests.helpers.attack_clients import PREFACE, Conn, frame, settings
from tests.helpers.engine_frames import ENGINE_PARAMS, Peer
from tests.helpers.h2client import H2Client
from tests.helpers.http1raw import H1Raw
from tests.helpers.serverproc import ROOT, ServerProcess
from tests.helpers.tools import require_tool

pytestmark = pytest.mark.timeout(120)

APP = "tests.served_apps.metrics:app"
METRICS_LINE = re.compile(r"metrics on (http://\S+/metrics)")
H2, H1 = "HTTP/2", "HTTP/1.1"
PING = 6


def metrics_url(server) -> str:
    found = METRICS_LINE.search(server.log)
    assert found, server.log
    return found.group(1)


def scrape(server) -> dict:
    """Every sample of ``/metrics``: {(name, ((label, value), ...)): value}."""
    reply = httpx.get(metrics_url(server), timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def requests(samples: dict, protocol: str, status: str) -> float:
    return value(samples, "kyoukai_h2fast_requests_total", protocol=protocol, status=status)


def wait_for(server, check, what: str, timeout: float = 15.0) -> dict:
    """Scrape until ``check(samples)`` holds (gauges are published once a second)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(server)
        if check(samples):
            return samples
        if time.monotonic() > deadline:
            pytest.fail(f"metrics never showed {what}: "
                        f"{ {k: v for k, v in samples.items() if v} }\n{server.log[-3000:]}")
        time.sleep(0.1)


def metered(servers, impl, *args):
    return servers.fresh(APP, impl=impl, args=["--metrics-port", "0", *args])


# -- requests -------------------------------------------------------------------------------------
def test_requests_are_counted_by_protocol_and_status(servers, impl):
    server = metered(servers, impl)
    curl = require_tool("curl")
    with httpx.Client(http1=False, http2=True) as h2:
        for _ in range(3):
            assert h2.get(server.url + "/").status_code == 200
        assert h2.get(server.url + "/nothing-here").status_code == 404
        assert h2.post(server.url + "/echo", content=b"x" * 5000).content == b"x" * 5000
    with httpx.Client(http1=True, http2=False) as h1:
        assert h1.get(server.url + "/").status_code == 200
        assert h1.get(server.url + "/empty").status_code == 204
    done = subprocess.run([curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--http2-prior-"
                           "knowledge", server.url + "/bytes/100000"], capture_output=True,
                          text=True, timeout=30)
    assert done.stdout == "200"
    done = subprocess.run([curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--http1.1",
                           server.url + "/bytes/100000"], capture_output=True, text=True,
                          timeout=30)
    assert done.stdout == "200"
    with H1Raw(server.port) as raw:  # answered by the server itself
        raw.send(b"GET / HTTP/1.1\r\n\r\n")
        assert raw.reply().status == 400
    samples = scrape(server)
    assert requests(samples, H2, "200") == 5 and requests(samples, H2, "404") == 1
    assert requests(samples, H1, "200") == 2 and requests(samples, H1, "204") == 1
    assert requests(samples, H1, "400") == 1
    assert requests(samples, H2, "reset") == requests(samples, H1, "reset") == 0
    # Every complete response is in the histogram; the buckets add up.
    for protocol, count in ((H2, 6), (H1, 4)):
        name = "kyoukai_h2fast_request_duration_seconds"
        assert value(samples, name + "_count", protocol=protocol) == count
        assert value(samples, name + "_bucket", protocol=protocol, le="+Inf") == count
        assert 0 < value(samples, name + "_sum", protocol=protocol) < count * 5
        assert value(samples, name + "_bucket", protocol=protocol, le="0.0001") <= \
            value(samples, name + "_bucket", protocol=protocol, le="0.001") <= count
    # Bytes: at least the bodies, both ways.
    assert value(samples, "kyoukai_h2fast_received_bytes_total", protocol=H2) > 5000
    assert value(samples, "kyoukai_h2fast_sent_bytes_total", protocol=H2) > 105000
    assert value(samples, "kyoukai_h2fast_sent_bytes_total", protocol=H1) > 100000
    assert value(samples, "kyoukai_h2fast_received_bytes_total", protocol=H1) > 50


def test_duration_runs_from_arrival_to_the_last_byte(servers, impl):
    """A response that takes 0.3 s is above the 0.25 s bucket, in either protocol."""
    server = metered(servers, impl)
    with httpx.Client(http1=False, http2=True) as h2:
        assert h2.get(server.url + "/slow?0.3").status_code == 200
    with httpx.Client(http1=True, http2=False) as h1:
        assert h1.get(server.url + "/slow?0.3").status_code == 200
    samples = scrape(server)
    name = "kyoukai_h2fast_request_duration_seconds"
    for protocol in (H2, H1):
        assert value(samples, name + "_bucket", protocol=protocol, le="0.25") == 0
        assert value(samples, name + "_bucket", protocol=protocol, le="2.5") == 1
        assert 0.3 <= value(samples, name + "_sum", protocol=protocol) < 2.5


def test_requests_that_end_without_a_response_are_counted_as_reset(servers, impl):
    """A request that ends before its status was sent is a ``reset``; one whose response was
    cut short after its status counts under that status, as its access line does."""
    server = metered(servers, impl)
    with H2Client("127.0.0.1", server.port) as client:  # the client resets its stream
        sid = client.request("/slow?0.5")
        client.conn.reset_stream(sid)
        client.flush()
        client.read_for(0.2)
    with H1Raw(server.port) as raw:  # the client goes away before the response
        raw.send(b"GET /slow?0.5 HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with H1Raw(server.port) as raw:  # the client goes away in the middle of the response
        raw.send(b"GET /bytes/100000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert raw.sock.recv(65536)
        raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    samples = wait_for(server, lambda s: requests(s, H2, "reset") == 1
                       and requests(s, H1, "reset") == 1 and requests(s, H1, "200") == 1,
                       "one reset per protocol, the cut response as 200")
    assert requests(samples, H2, "200") == 0
    assert value(samples, "kyoukai_h2fast_request_duration_seconds_count", protocol=H2) == 0
    assert value(samples, "kyoukai_h2fast_request_duration_seconds_count", protocol=H1) == 1


def test_static_files_count_like_any_response(servers, impl, tmp_path):
    """Files sent zero-copy (cleartext HTTP/1.1) or in blocks (HTTP/2) are in the bytes sent;
    their requests, 304s and 404s in the requests."""
    data = random.Random(5).randbytes(3 * 1024 * 1024)
    (tmp_path / "big.bin").write_bytes(data)
    server = metered(servers, impl, "--static", f"/files={tmp_path}")
    with httpx.Client(http1=True, http2=False) as h1, \
            httpx.Client(http1=False, http2=True) as h2:
        for client in (h1, h2):
            first = client.get(server.url + "/files/big.bin")
            assert first.content == data
            again = client.get(server.url + "/files/big.bin",
                               headers={"If-None-Match": first.headers["etag"]})
            assert again.status_code == 304
            assert client.get(server.url + "/files/none").status_code == 404
    samples = scrape(server)
    for protocol in (H1, H2):
        assert requests(samples, protocol, "200") == requests(samples, protocol, "304") == 1
        assert requests(samples, protocol, "404") == 1
        assert value(samples, "kyoukai_h2fast_sent_bytes_total", protocol=protocol) > len(data)


# -- gauges ---------------------------------------------------------------------------------------
def test_open_connections_streams_and_the_thread_pool(servers, impl):
    """Four HTTP/1.1 clients and an HTTP/2 client with 3 streams ask for slow responses
    from a pool of 2 threads: 2 busy, 5 queued. Once answered, all back to 0."""
    server = metered(servers, impl, "--wsgi-threads", "2")
    raws = [H1Raw(server.port) for _ in range(4)]
    h2 = H2Client("127.0.0.1", server.port)
    try:
        for raw in raws:
            raw.send(b"GET /slow?2 HTTP/1.1\r\nHost: x\r\n\r\n")
        sids = [h2.request("/slow?2") for _ in range(3)]
        h2.flush()
        samples = wait_for(server, lambda s: value(
            s, "kyoukai_h2fast_threadpool_queue_depth") == 5 and value(
            s, "kyoukai_h2fast_threadpool_busy_threads") == 2, "busy and queued handlers")
        assert value(samples, "kyoukai_h2fast_threadpool_size") == 2
        assert value(samples, "kyoukai_h2fast_threadpool_threads") >= 2
        assert value(samples, "kyoukai_h2fast_open_connections", protocol=H1) == 4
        assert value(samples, "kyoukai_h2fast_open_streams", protocol=H1) == 4
        assert value(samples, "kyoukai_h2fast_open_connections", protocol=H2) == 1
        assert value(samples, "kyoukai_h2fast_open_streams", protocol=H2) == 3
        for raw in raws:
            assert raw.reply().status == 200
        for sid in sids:
            h2.response(sid, timeout=30)
    finally:
        for raw in raws:
            raw.close()
        h2.close()
    wait_for(server, lambda s: value(s, "kyoukai_h2fast_threadpool_busy_threads") == 0
             and value(s, "kyoukai_h2fast_threadpool_queue_depth") == 0
             and value(s, "kyoukai_h2fast_open_connections", protocol=H1) == 0
             and value(s, "kyoukai_h2fast_open_connections", protocol=H2) == 0
             and requests(s, H1, "200") == 4 and requests(s, H2, "200") == 3, "all done")


# -- connections closed by the flood budgets -----------------------------------------------------
def _ping_flood(port: int, count: int) -> Conn:
    conn = Conn(port)
    conn.sock.setblocking(True)
    conn.sock.settimeout(10)
    conn.sock.sendall(PREFACE + settings() + frame(PING, 0, 0, b"12345678") * count)
    conn.sock.setblocking(False)
    deadline = time.monotonic() + 5
    while not conn.closed and time.monotonic() < deadline:
        conn.drain(0.2)
    return conn


def test_a_connection_closed_by_a_flood_budget_is_counted_under_its_name(servers, impl):
    server = metered(servers, impl, "--max-pings-per-10s", "10")
    samples = scrape(server)
    for budget in BUDGETS:  # exported from the start, at 0
        assert ("kyoukai_h2fast_connections_closed_total", (("reason", budget),)) in samples
        assert value(samples, "kyoukai_h2fast_connections_closed_total", reason=budget) == 0
    flood = _ping_flood(server.port, 11)
    assert flood.goaway == 0xB and flood.closed
    flood.finish(0)
    samples = scrape(server)
    closed = {labels[0][1]: v for (name, labels), v in samples.items()
              if name == "kyoukai_h2fast_connections_closed_total"}
    assert closed == {**dict.fromkeys(BUDGETS, 0.0), "pings": 1.0}
    # Another connection error is counted under its error code.
    with H2Client("127.0.0.1", server.port) as client:
        client.send_raw(frame(PING, 0, 1, b"12345678"))  # PING on a stream: PROTOCOL_ERROR
        client.wait_closed()
    samples = scrape(server)
    assert value(samples, "kyoukai_h2fast_connections_closed_total",
                 reason="protocol_error") == 1


@pytest.mark.parametrize("engine_cls", ENGINE_PARAMS)
@pytest.mark.parametrize("budget", BUDGETS)
def test_the_engines_say_which_budget_was_crossed(engine_cls, budget):
    """``ConnectionFailed.budget`` (both engines): the name the metrics use."""
    limits = {"resets": {"max_resets_per_10s": 3}, "pings": {"max_pings_per_10s": 3},
              "settings": {"max_settings_per_10s": 3},
              "empty_frames": {"max_empty_frames_per_10s": 3},
              "queued_control_frames": {"max_queued_control_frames": 3}}[budget]
    peer = Peer(engine_cls, ServerConfig(**limits))
    peer.engine.output_drained()
    ff = peer.ff
    chunks = {
        "resets": [ff.request(2 * i + 1, end_stream=False) + ff.rst_stream(2 * i + 1)
                   for i in range(10)],
        "pings": [ff.ping() for _ in range(10)],
        "settings": [ff.settings() for _ in range(10)],
        "empty_frames": [ff.priority(1) for _ in range(10)],
        "queued_control_frames": [ff.ping() for _ in range(10)],  # ACKs never read
    }[budget]
    with pytest.raises(ConnectionFailed) as info:
        for chunk in chunks:
            peer.engine.receive(chunk)
            if budget == "pings":
                peer.engine.output_drained()
    assert info.value.budget == budget


@pytest.mark.parametrize("engine_cls", ENGINE_PARAMS)
def test_other_connection_errors_name_no_budget(engine_cls):
    peer = Peer(engine_cls, ServerConfig())
    with pytest.raises(ConnectionFailed) as info:
        peer.engine.receive(peer.ff.raw(FrameType.PING, 0, 1, b"12345678"))
    assert info.value.budget is None


@pytest.mark.parametrize("engine_cls", ENGINE_PARAMS)
def test_the_engines_count_the_bytes_they_take_and_give(engine_cls):
    """``bytes_received``/``bytes_sent`` (HTTP/2 connections' byte counts, both engines)."""
    peer = Peer(engine_cls, ServerConfig())
    taken = peer.engine.bytes_received
    given = peer.engine.bytes_sent
    assert taken > 24 and given > 0  # the prefaces
    request = peer.ff.request(1)
    peer.engine.receive(request)
    assert peer.engine.bytes_received == taken + len(request)
    peer.engine.send_headers(1, [(b":status", b"200")], False)
    peer.engine.queue_data(1, b"x" * 1000, True)
    out = peer.engine.data_to_send()
    assert peer.engine.bytes_sent == given + len(out) and len(out) > 1000
    peer.engine.receive(b"")
    assert peer.engine.bytes_received == taken + len(request)


def test_the_duration_buckets_are_those_of_bisect():
    """The recorder's unrolled bucket choice is ``bisect_left(BUCKETS, seconds)``."""
    from bisect import bisect_left
    values = [0.0, -1.0, 1e-9, 11.0, 1e9]
    for bound in BUCKETS:
        values += [bound, bound * (1 - 1e-12), bound * (1 + 1e-12), bound * 0.7, bound * 1.3]
    rng = random.Random(22)
    values += [10 ** rng.uniform(-6, 2) for _ in range(2000)]
    recorder = Recorder(MetricsBoard(1), 1)
    for seconds in values:
        histogram = recorder.requests[0].histogram
        before = list(histogram)
        recorder.http2_ended(200, seconds)
        changed = [i for i in range(len(histogram)) if histogram[i] != before[i]]
        assert changed == [bisect_left(BUCKETS, seconds)], seconds


# -- worker processes -----------------------------------------------------------------------------
def _serving(server) -> int:
    return len(re.findall(r"serving \w+ app on", server.log))


def test_one_endpoint_adds_up_the_workers_and_keeps_a_dead_workers_counts(impl):
    server = ServerProcess(APP, impl, args=["--workers", "2", "--metrics-port", "0"])
    try:
        deadline = time.monotonic() + 30
        while _serving(server) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        by_pid: dict[str, int] = {}
        made = 0
        while len(by_pid) < 2 or made < 20:  # a new connection each: the kernel spreads them
            assert made < 500, f"one worker served everything: {by_pid}"
            http2 = made % 2 == 0
            with httpx.Client(http1=not http2, http2=http2) as client:
                pid = client.get(server.url + "/pid").text
            by_pid[pid] = by_pid.get(pid, 0) + 1
            made += 1
        h2_made = (made + 1) // 2
        samples = wait_for(server, lambda s: requests(s, H2, "200") + requests(s, H1, "200")
                           == made, f"{made} requests")
        assert requests(samples, H2, "200") == h2_made
        assert requests(samples, H1, "200") == made - h2_made
        assert value(samples, "kyoukai_h2fast_worker_processes") == 2
        # A worker killed: its counts stay in the totals; its replacement reports.
        victim = int(next(iter(by_pid)))
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _serving(server) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        samples = wait_for(server, lambda s: value(s, "kyoukai_h2fast_worker_processes") == 2,
                           "the replacement reporting")
        assert requests(samples, H2, "200") == h2_made
        assert requests(samples, H1, "200") == made - h2_made
        with httpx.Client(http1=False, http2=True) as client:
            assert client.get(server.url + "/").status_code == 200
        wait_for(server, lambda s: requests(s, H2, "200") == h2_made + 1, "one more")
    finally:
        server.stop()


# -- the endpoint and its options -----------------------------------------------------------------
def test_the_endpoint_serves_metrics_at_slash_metrics_only(servers, impl):
    server = metered(servers, impl)
    base = metrics_url(server).removesuffix("/metrics")
    assert httpx.get(base + "/").status_code == 404
    assert httpx.get(base + "/other").status_code == 404
    gz = httpx.get(base + "/metrics", headers={"Accept-Encoding": "gzip"})
    assert gz.headers.get("content-encoding") == "gzip" and b"requests_total" in gz.content
    # Scrapes are not requests of the server.
    assert requests(scrape(server), H1, "200") == 0


def test_no_endpoint_without_the_flag(servers, impl):
    server = servers.fresh(APP, impl=impl)
    with httpx.Client(http1=False, http2=True) as h2:
        assert h2.get(server.url + "/").status_code == 200
    assert METRICS_LINE.search(server.log) is None


def _run_cli(*args: str, prelude: str = "") -> subprocess.CompletedProcess:
    code = (f"import sys\n{prelude}\nfrom kyoukai_h2fast.process.cli import main\n"
            f"sys.exit(main({list(args)!r}))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, cwd=ROOT)


def _one_line_error(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_metrics_without_prometheus_client_is_a_one_line_error():
    done = _run_cli("--port", "0", "--metrics-port", "0",
                    prelude="sys.modules['prometheus_client'] = None")
    _one_line_error(done, "--metrics-port", "prometheus_client", "kyoukai_h2fast[metrics]")


@pytest.mark.parametrize("port", ["65536", "-1", "x"])
def test_a_bad_metrics_port_is_a_one_line_error(port):
    _one_line_error(_run_cli("--metrics-port", port), "metrics-port")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_metrics_port_in_use_is_a_one_line_error(workers):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        done = _run_cli("--port", "0", "--workers", workers, "--metrics-port", str(port))
    finally:
        taken.close()
    _one_line_error(done, f"cannot listen on 127.0.0.1:{port} (--metrics-port)")


def test_the_metrics_host_option(servers, impl):
    server = servers.fresh(APP, impl=impl, args=["--metrics-port", "0",
                                                  "--metrics-host", "127.0.0.2"])
    assert metrics_url(server).startswith("http://127.0.0.2:")
    assert scrape(server)

