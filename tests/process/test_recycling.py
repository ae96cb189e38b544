"""Worker recycling: ``--max-requests N`` (with ``--max-requests-jitter``),
``--workers-lifetime`` and ``--workers-max-rss``. A worker past its limit is replaced
gracefully: the supervisor starts its successor first, then the worker drains (GOAWAY,
in-flight HTTP/2 streams and HTTP/1.1 requests finish) and exits. A client loop sees no
failed request and more pids than workers. With ``--workers 1`` the same happens under a
supervisor of one worker. ``--pid-file`` is written at start and removed on exit. Real
server, real clients, both builds."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers.fetch import fetch
from tests.helpers.serverproc import ROOT, ServerProcess
from tests.helpers.tools import wait_until as wait_for

pytestmark = pytest.mark.timeout(180)

APP = "tests.served_apps.pid:app"
RETIRED = re.compile(r"worker \d+ \(pid (\d+)\) retired \(recycled\)")


def client_loop(port: int, count: int, pids: int) -> tuple[list[str], list[str]]:
    """``count`` requests at least (and until more than ``pids`` processes answered, for up
    to 20 s), each on a new connection, HTTP/2 and HTTP/1.1 in turn (a request the server
    said it did not process is sent again, as clients do: tests/helpers/fetch.py); (answers
    or errors, retries)."""
    answers: list[str] = []
    retried: list[str] = []
    deadline = time.monotonic() + 20
    i = 0
    while i < count or (len(set(answers)) <= pids and time.monotonic() < deadline):
        i += 1
        try:
            answers.append(fetch(port, i % 2 == 0, retried=retried))
        except Exception as e:  # refused, reset, dropped: a lost request
            answers.append(f"FAILED: {e!r}")
    return answers, retried


@pytest.mark.parametrize("workers", ["2", "1"])
def test_max_requests_replaces_workers_without_a_failed_request(impl, workers):
    server = ServerProcess(APP, impl, args=["--workers", workers, "--max-requests", "50",
                                            "--max-requests-jitter", "10",
                                            "--wsgi-threads", "0"])
    try:
        answers, retried = client_loop(server.port, 300, int(workers))
        failed = [a for a in answers if a.startswith("FAILED")]
        assert not failed, (failed[:3], server.log[-3000:])
        pids = {int(a) for a in answers}
        assert len(pids) > int(workers), pids
        # each pid served about its share: none past its limit by much (50 + 10 + checks)
        wait_for(lambda: RETIRED.search(server.log), what="a worker retired")
        assert "reached --max-requests: " in server.log
        assert "starting its replacement" in server.log
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.log[-2000:]


@pytest.mark.parametrize("flag", ["--http2-prior-knowledge", "--http1.1"],
                         ids=["h2", "http1.1"])
def test_an_in_flight_request_finishes_on_the_worker_being_replaced(impl, flag):
    """A slow response (3 s) in flight when its worker's lifetime (1 s) ends completes: the
    successor starts, the worker drains (GOAWAY / after the response), nothing is reset."""
    server = ServerProcess("tests.served_apps.basic:wsgi_app", impl,
                           args=["--workers", "1", "--workers-lifetime", "1",
                                 "--shutdown-timeout", "30"])
    try:
        slow = subprocess.Popen(["curl", "-sS", flag, "--max-time", "60",
                                 server.url + "/stream-slow?6"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = slow.communicate(timeout=60)
        log_then = server.log
        assert slow.returncode == 0, err
        assert out == "".join(f"chunk {i}\n" for i in range(6))
        # its worker was told to drain while the response was under way
        assert "the worker it replaces (pid" in log_then, log_then
        wait_for(lambda: RETIRED.search(server.log), what="the first worker retired")
    finally:
        server.stop()


def test_workers_max_rss_replaces_a_worker_past_it(impl):
    server = ServerProcess(APP, impl, args=["--workers", "1", "--workers-max-rss", "1"])
    try:
        wait_for(lambda: RETIRED.search(server.log), what="a worker retired")
        assert "reached --workers-max-rss: " in server.log
        assert int(fetch(server.port, True)) != server.pid
    finally:
        server.stop()


def test_pid_file_is_written_at_start_and_removed_on_exit(impl, tmp_path):
    path = tmp_path / "server.pid"
    server = ServerProcess(APP, impl, args=["--pid-file", str(path)])
    try:
        assert path.read_text() == f"{server.pid}\n"
        # (once it answers, its SIGTERM handler is in place: the serving line comes a moment
        # before it)
        assert int(fetch(server.port, True)) == server.pid
    finally:
        server.stop()
    assert server.proc.returncode == 0
    assert not path.exists()


def test_pid_file_with_workers_names_the_supervisor(impl, tmp_path):
    path = tmp_path / "server.pid"
    server = ServerProcess(APP, impl, args=["--pid-file", str(path), "--workers", "2"])
    try:
        assert int(path.read_text()) == server.pid
        os.kill(int(path.read_text()), signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        server.stop()
    assert not path.exists()


@pytest.mark.parametrize(("args", "needle"), [
    (["--max-requests", "-1"], "max-requests must be an integer in 0.."),
    (["--max-requests-jitter", "5"], "--max-requests-jitter needs --max-requests"),
    (["--workers-lifetime", "-2"], "workers-lifetime must be >= 0"),
    (["--workers-max-rss", "x"], "--workers-max-rss"),
    (["--pid-file", "/nonexistent-dir/x.pid"], "--pid-file /nonexistent-dir/x.pid: no such"),
])
def test_bad_recycling_values_are_one_line_exit_2(args, needle):
    done = subprocess.run([sys.executable, "-m", "kyoukai_h2fast", APP, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], done.stderr
