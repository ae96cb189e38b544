"""Real apps, real clients: what a new Flask or Kyoukai user does in the first hour.

The thread pool runs a burst of slow requests at once; apps on the event loop read bodies of
any size with the standard werkzeug calls (``get_data()``, ``form``, ``files``); ``Expect:
100-continue`` is answered; an early response (413, 405, an app that ignores the body) reaches
curl and httpx whole; shutdown closes a generator's iterable and says only what is true.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import ssl
import subprocess
import time
import uuid

import httpx
import pytest

from tests.helpers.tools import require_tool

pytestmark = pytest.mark.timeout(180)

REAL = "tests.served_apps.real:wsgi_app"
UPLOAD_APPS = {"flask": "tests.served_apps.real:flask_app",
               "kyoukai": "tests.served_apps.real:kyoukai_app"}


def _client(server, tls_files=None, **kw) -> httpx.Client:
    if server.url.startswith("https"):
        return httpx.Client(http2=True, timeout=60,
                            verify=ssl.create_default_context(cafile=tls_files[2]), **kw)
    return httpx.Client(http1=False, http2=True, timeout=60, **kw)


def _url(server) -> str:
    return server.url.replace("127.0.0.1", "localhost") if server.url.startswith("https") \
        else server.url


def _digest(data: bytes) -> str:
    return f"{len(data)} {hashlib.sha256(data).hexdigest()}"


# -- the thread pool runs a burst at once (issue 8.1) -------------------------------------
def test_thread_pool_runs_five_parallel_requests_at_once(servers, impl):
    """Five requests on one HTTP/2 connection to an app that waits until all five run at
    once: every one is answered 200, by five different worker threads (a pool that ran the
    burst one at a time would answer 500 after its 10 s barrier timeout). A request first
    leaves a worker thread idle: the burst must not all go to it."""
    server = servers.fresh(REAL, impl=impl)
    with _client(server) as c:
        assert c.get(server.url + "/").status_code == 200
    key = uuid.uuid4().hex

    async def burst():
        async with httpx.AsyncClient(http1=False, http2=True, timeout=60) as c:
            return await asyncio.gather(*(c.get(f"{server.url}/barrier?5&{key}")
                                          for _ in range(5)))

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * 5
    assert len({r.text for r in responses}) == 5


def test_thread_pool_runs_a_burst_that_arrives_in_one_packet_at_once(servers, impl):
    """Five requests in one TCP write (as a proxy or a browser multiplexing sends them),
    after an earlier request left one worker thread idle: all five run at once."""
    from tests.helpers.h2client import H2Client
    server = servers.fresh(REAL, impl=impl)
    key = uuid.uuid4().hex
    c = H2Client("127.0.0.1", server.port, timeout=60)
    try:
        assert c.response(c.request("/"))[1] == b"Hello, world!"
        sids = []
        for _ in range(5):
            sid = c.conn.get_next_available_stream_id()
            c.conn.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"http"),
                                      (b":authority", b"localhost"),
                                      (b":path", f"/barrier?5&{key}".encode())],
                                end_stream=True)
            sids.append(sid)
        c.flush()  # one write
        answers = [c.response(sid) for sid in sids]
    finally:
        c.close()
    assert [h[":status"] for h, _ in answers] == ["200"] * 5
    assert len({body for _, body in answers}) == 5


def test_thread_pool_runs_parallel_requests_from_separate_clients_at_once(servers, impl):
    """The same with six curl processes, one connection each."""
    curl = require_tool("curl")
    server = servers.fresh(REAL, impl=impl)
    with _client(server) as c:
        assert c.get(server.url + "/").status_code == 200
    key = uuid.uuid4().hex
    procs = [subprocess.Popen([curl, "-sS", "--http2-prior-knowledge", "-w", " %{http_code}",
                               f"{server.url}/barrier?6&{key}"], stdout=subprocess.PIPE,
                              text=True) for _ in range(6)]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert all(out.endswith(" 200") for out in outs), outs
    assert len({out.split()[0] for out in outs}) == 6


# -- bodies of any size for apps on the loop and in threads (issue 8.2) --------------------
@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "tls"])
@pytest.mark.parametrize("kind", ["flask", "kyoukai"])
def test_20mb_raw_and_multipart_uploads_through_get_data_form_and_files(
        servers, impl, kind, tls, tls_files):
    """20 MB through ``request.get_data()`` and a multipart form with a 20 MB file through
    ``request.form``/``request.files``, over h2c and TLS, for a Flask app (thread pool) and a
    Kyoukai-style app (event loop, spooled body); the server's peak RSS stays well under
    200 MB."""
    server = servers.fresh(UPLOAD_APPS[kind], impl=impl, tls=tls)
    raw = os.urandom(20 * 1024 * 1024)
    with _client(server, tls_files) as c:
        r = c.post(_url(server) + "/data", content=raw)
        assert (r.status_code, r.text) == (200, _digest(raw))
        r = c.post(_url(server) + "/form", data={"name": "ünïcode", "n": "1"},
                   files={"upload": ("big.bin", raw, "application/octet-stream")})
    assert r.status_code == 200
    assert r.json() == {"form": {"name": "ünïcode", "n": "1"},
                        "files": {"upload": ["big.bin", len(raw),
                                             hashlib.sha256(raw).hexdigest()]}}
    assert server.peak_rss_kib() < 200 * 1024


def test_loop_app_body_beyond_the_memory_threshold_goes_to_a_temporary_file(servers, impl):
    """A Kyoukai-style app's 8 MB body with a 1 MiB threshold: the server's RSS grows by
    far less than the body (the rest waits on disk), and the app gets every byte."""
    server = servers.fresh(UPLOAD_APPS["kyoukai"], impl=impl,
                           args=["--body-spool-threshold", "1M"])
    with _client(server) as c:
        c.post(server.url + "/data", content=b"warm-up")
        before = server.rss_kib()
        raw = os.urandom(8 * 1024 * 1024)
        body = iter([raw[i:i + 65536] for i in range(0, len(raw), 65536)])
        r = c.post(server.url + "/data", content=body)  # streamed: no copy in the client
    assert r.text == _digest(raw)
    # The app's own get_data() holds the whole body once; the server's spool does not.
    assert server.peak_rss_kib() - before < 8 * 1024 + 6 * 1024


# -- Expect: 100-continue (issue 8.3) ---------------------------------------------------------
@pytest.mark.parametrize("app", [REAL, UPLOAD_APPS["kyoukai"]], ids=["wsgi", "kyoukai"])
def test_expect_100_continue_is_answered_before_the_body(servers, impl, app, tmp_path):
    """curl waits for ``100 Continue`` before it sends the body (here up to 60 s): the
    server answers it at once, then the final response."""
    curl = require_tool("curl")
    server = servers.get(app, impl=impl)
    payload = os.urandom(300_000)
    path = tmp_path / "body.bin"
    path.write_bytes(payload)
    route = "/form-slow" if app == REAL else "/data"
    out = subprocess.run([curl, "-sv", "--http2-prior-knowledge", "-H", "Expect: 100-continue",
                          "--expect100-timeout", "60", "--data-binary", f"@{path}",
                          "-w", "\n%{http_code} %{time_total}", server.url + route],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "< HTTP/2 100" in out.stderr
    body, status = out.stdout.rsplit("\n", 1)
    assert status.split()[0] == "200"
    assert body == (str(len(payload)) if app == REAL else _digest(payload))
    assert float(status.split()[1]) < 50  # did not sit out the expect timeout


def test_expect_100_continue_gets_413_instead_when_too_large(servers, impl, tmp_path):
    curl = require_tool("curl")
    server = servers.get(REAL, impl=impl, args=["--max-body-size", "100K"])
    path = tmp_path / "body.bin"
    path.write_bytes(os.urandom(300_000))
    out = subprocess.run([curl, "-sv", "--http2-prior-knowledge", "-H", "Expect: 100-continue",
                          "--expect100-timeout", "60", "--data-binary", f"@{path}",
                          "-w", "\n%{http_code}", server.url + "/form-slow"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "< HTTP/2 100" not in out.stderr
    assert out.stdout.rsplit("\n", 1)[1] == "413"


# -- early responses reach common clients whole (issue 8.4) ---------------------------------
EARLY = [  # (route, server args, status, body)
    ("/form-slow", ["--max-body-size", "1M"], 413, "Request Entity Too Large\n"),  # by length
    ("/too-large", [], 413, "too large for this route\n"),  # the app, without reading
    ("/method", [], 405, "use GET\n"),  # the app ignores the body
]


@pytest.mark.parametrize("route,args,status,text", EARLY, ids=["413-server", "413-app", "405"])
@pytest.mark.parametrize("source", ["file", "stdin"])
def test_curl_reads_an_early_response_to_a_large_upload(servers, impl, route, args, status,
                                                        text, source, tmp_path):
    """curl uploads 3 MB (with a content-length from a file, or streamed from stdin without
    one); the answer comes before the upload ends; curl exits 0 with the whole answer and
    does not hang."""
    curl = require_tool("curl")
    server = servers.get(REAL, impl=impl, args=args)
    payload = os.urandom(3_000_000)
    path = tmp_path / "body.bin"
    path.write_bytes(payload)
    upload = ["--data-binary", f"@{path}"] if source == "file" else ["-T", "-", "-X", "POST"]
    out = subprocess.run([curl, "-sS", "--http2-prior-knowledge", *upload,
                          "-w", "\n%{http_code}", server.url + route],
                         input=payload if source == "stdin" else None,
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    body, code = out.stdout.decode().rsplit("\n", 1)
    assert (int(code), body) == (status, text)


def test_curl_reads_a_413_that_comes_mid_body(servers, impl):
    """No content-length: the body passes --max-body-size while the app reads it; the 413
    reaches curl whole."""
    curl = require_tool("curl")
    server = servers.get(REAL, impl=impl, args=["--max-body-size", "1M"])
    out = subprocess.run([curl, "-sS", "--http2-prior-knowledge", "-T", "-", "-X", "POST",
                          "-w", "\n%{http_code}", server.url + "/form-slow"],
                         input=os.urandom(3_000_000), capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().rsplit("\n", 1) == ["Request Entity Too Large\n", "413"]


@pytest.mark.parametrize("route,args,status,text", EARLY, ids=["413-server", "413-app", "405"])
@pytest.mark.parametrize("streamed", [False, True], ids=["sized", "streamed"])
def test_httpx_reads_an_early_response_to_a_large_upload(servers, impl, route, args, status,
                                                         text, streamed):
    server = servers.get(REAL, impl=impl, args=args)
    payload = os.urandom(3_000_000)
    content = (iter([payload[i:i + 65536] for i in range(0, len(payload), 65536)])
               if streamed else payload)
    with _client(server) as c:
        r = c.post(server.url + route, content=content)
        assert (r.status_code, r.text) == (status, text)
        assert c.get(server.url + "/").text == "Hello, world!"  # the connection goes on


# -- shutdown with a generator response (issue 8.7) -----------------------------------------
def test_shutdown_after_a_generator_download_closes_it_and_abandons_nothing(servers, impl):
    server = servers.fresh(REAL, impl=impl)
    with _client(server) as c:
        r = c.get(server.url + "/generator?8")
    assert len(r.content) == 8 * 65536
    server.signal()
    assert server.wait(30) == 0
    assert server.log.count("GENERATOR-CLOSED") == 1
    assert "abandoning" not in server.log


def test_shutdown_during_a_generator_download_finishes_it_and_closes_it(servers, impl):
    """SIGTERM while a generator response is being sent: the download completes (in-flight
    streams finish), ``close()`` runs, and no handler is reported abandoned."""
    curl = require_tool("curl")
    server = servers.fresh(REAL, impl=impl)
    proc = subprocess.Popen([curl, "-sS", "--http2-prior-knowledge", "-o", "-",
                             server.url + "/generator?40"], stdout=subprocess.PIPE)
    time.sleep(0.3)  # the download is under way (40 chunks, 0.02 s apart)
    server.signal()
    body = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0
    assert len(body) == 40 * 65536
    assert server.wait(30) == 0
    assert server.log.count("GENERATOR-CLOSED") == 1
    assert "abandoning" not in server.log


def test_shutdown_timeout_cuts_a_slow_generator_and_still_closes_it(servers, impl):
    """A download longer than --shutdown-timeout is cut, but the iterable is still closed and
    the log says nothing false."""
    curl = require_tool("curl")
    server = servers.fresh(REAL, impl=impl, args=["--shutdown-timeout", "0.5"])
    proc = subprocess.Popen([curl, "-sS", "--http2-prior-knowledge", "-o", os.devnull,
                             server.url + "/generator?400"], stderr=subprocess.PIPE)
    time.sleep(0.5)
    server.signal()
    proc.communicate(timeout=60)
    assert server.wait(30) == 0
    assert server.log.count("GENERATOR-CLOSED") == 1
    # The generator was between two chunks: its thread was free again within the grace
    # period, so nothing was left running.
    assert "abandoning" not in server.log


def test_flask_json_and_form_roundtrip_over_tls(servers, impl, tls_files):
    server = servers.get(UPLOAD_APPS["flask"], impl=impl, tls=True)
    with _client(server, tls_files) as c:
        r = c.post(_url(server) + "/form", data={"a": "1", "b": "two"})
    assert r.status_code == 200 and r.http_version == "HTTP/2"
    assert json.loads(r.text) == {"form": {"a": "1", "b": "two"}, "files": {}}
