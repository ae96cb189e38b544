"""``--workers N``: a supervisor and N worker processes on one listening socket. A worker
killed with SIGKILL is replaced; SIGTERM drains in-flight downloads (HTTP/2 and HTTP/1.1)
and the supervisor exits 0. Real server, real clients, both builds."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading

import httpx
import pytest

from kyoukai_h2fast.config import resolve_workers
from tests.helpers.serverproc import ROOT, ServerProcess
from tests.helpers.tools import require_tool
from tests.helpers.tools import wait_until as wait_for

pytestmark = pytest.mark.timeout(180)

STARTED = re.compile(r"supervisor: worker (\d+) started \(pid (\d+)\)")
PATTERN = bytes(range(256)) * 256


def worker_pids(server) -> list[int]:
    return [int(m.group(2)) for m in STARTED.finditer(server.log)]


def serving_lines(server) -> int:
    return server.log.count(" serving wsgi app on ")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def two_workers(impl):
    server = ServerProcess("tests.served_apps.basic:wsgi_app", impl, args=["--workers", "2",
                                                              "--shutdown-timeout", "30"])
    try:
        wait_for(lambda: serving_lines(server) == 2, what="two workers serving")
        yield server
    finally:
        server.stop()


def test_worker_killed_with_sigkill_is_replaced(two_workers):
    server = two_workers
    first = worker_pids(server)
    assert len(first) == 2 and all(alive(pid) for pid in first)
    os.kill(first[0], signal.SIGKILL)
    wait_for(lambda: len(worker_pids(server)) == 3 and serving_lines(server) == 3,
             what="a replacement worker")
    replacement = worker_pids(server)[2]
    assert replacement not in first and alive(replacement) and alive(first[1])
    assert re.search(rf"worker 0 \(pid {first[0]}\) died \(signal 9\)", server.log)
    for _ in range(6):  # new connections each time: both processes answer
        with httpx.Client(http1=False, http2=True, timeout=30) as c:
            assert c.get(server.url + "/").text == "Hello, world!"
    assert server.alive()


@pytest.mark.parametrize("flag", ["--http2-prior-knowledge", "--http1.1"],
                         ids=["h2", "http1.1"])
def test_sigterm_drains_a_long_download_then_the_supervisor_exits_0(two_workers, flag,
                                                                   tmp_path):
    """curl downloads 40 MiB at 10 MB/s; SIGTERM to the supervisor a second in: the worker
    sends GOAWAY (HTTP/2) or closes after the response (HTTP/1.1), and the download
    completes byte for byte before the workers and the supervisor exit 0."""
    server = two_workers
    size = 40 * 1024 * 1024
    out = tmp_path / "download.bin"
    curl = subprocess.Popen([require_tool("curl"), "-sS", flag, "--limit-rate", "10M",
                             "-o", str(out), "-w", "%{http_version} %{http_code}",
                             server.url + f"/bytes/{size}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: out.exists() and out.stat().st_size > 2 * 1024 * 1024,
                 what="the download to be under way")
        server.signal(signal.SIGTERM)
        wait_for(lambda: "stopping 2 workers" in server.log, what="the stop")
        stdout, stderr = curl.communicate(timeout=60)
    finally:
        if curl.poll() is None:
            curl.kill()
    assert curl.returncode == 0, stderr
    assert stdout == ("2 200" if "http2" in flag else "1.1 200")
    body = out.read_bytes()
    assert len(body) == size
    assert body == (PATTERN * (size // len(PATTERN) + 1))[:size]
    assert server.wait(60) == 0
    assert "killing" not in server.log
    assert not any(alive(pid) for pid in worker_pids(server))


def test_new_connections_are_refused_once_stopping(two_workers):
    server = two_workers
    server.signal(signal.SIGTERM)
    assert server.wait(60) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/", timeout=5)


def test_workers_auto_runs_one_per_cpu(impl):
    server = ServerProcess("tests.served_apps.basic:wsgi_app", impl, args=["--workers", "auto"])
    try:
        count = resolve_workers(0)
        wait_for(lambda: serving_lines(server) == count, what=f"{count} workers")
        assert len(worker_pids(server)) == count
        with httpx.Client(http1=True, http2=False) as c:
            assert c.get(server.url + "/").status_code == 200
    finally:
        server.stop()
    assert server.proc.returncode == 0


@pytest.mark.parametrize("value", ["-1", "two", "100000"])
def test_bad_workers_value_is_a_one_line_error_exit_2(value):
    done = subprocess.run([sys.executable, "-m", "kyoukai_h2fast", "--workers", value],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "workers" in done.stderr


def test_port_in_use_is_a_one_line_error_exit_2(impl):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "kyoukai_h2fast", "--workers", "2",
                               "--port", str(port)], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().endswith("Address already in use")


def test_supervisor_restarts_after_the_app_is_preloaded_once(two_workers):
    """The app is imported by the supervisor before forking: a crash of every worker does
    not re-run a failing import; replacements serve at once."""
    server = two_workers
    pids = worker_pids(server)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: serving_lines(server) == 4, what="two replacements")
    barrier = threading.Barrier(4)
    results = []

    def get():
        barrier.wait()
        with httpx.Client(http1=True, http2=False, timeout=30) as c:
            results.append(c.get(server.url + "/").status_code)

    threads = [threading.Thread(target=get) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [200] * 4


@pytest.mark.parametrize("http2", [True, False], ids=["h2", "http1.1"])
def test_wsgi_multiprocess_is_true_when_workers_serve(two_workers, servers, impl, http2):
    """PEP 3333: ``wsgi.multiprocess`` says whether other processes serve the same app:
    True under --workers 2, False for a single process."""
    single = servers.get(impl=impl)
    for server, expected in ((two_workers, True), (single, False)):
        with httpx.Client(http1=not http2, http2=http2, timeout=30) as c:
            r = c.get(server.url + "/environ")
        assert r.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        env = json.loads(r.text)
        assert env["wsgi.multiprocess"] is expected, server.cmd
        assert env["wsgi.multithread"] is True
