"""How long SIGTERM takes to stop the server: at once when nothing is in flight, as soon as
the in-flight requests are done, and never much later than ``--shutdown-timeout`` when they
take longer (README, "Command line": the timeout plus a fraction of a second; the systemd
``TimeoutStopSec`` advice rests on it). Single process and ``--workers 2``, both builds, a
real client in flight."""
from __future__ import annotations

import signal
import subprocess
import time

import httpx
import pytest

from tests.helpers.serverproc import ServerProcess
from tests.helpers.tools import require_tool

pytestmark = pytest.mark.timeout(180)

#: What a loaded shared machine may add to a stop, on top of the rule (the old stop took the
#: timeout plus 2 s, whatever the load).
SLACK = 1.2


def start(impl: str, workers: int, timeout: float) -> ServerProcess:
    args = ["--shutdown-timeout", str(timeout)]
    if workers > 1:
        args += ["--workers", str(workers)]
    server = ServerProcess("tests.served_apps.basic:wsgi_app", impl, args=args)
    deadline = time.monotonic() + 30
    while server.log.count(" serving wsgi app on ") < workers:
        assert time.monotonic() < deadline, server.log
        time.sleep(0.05)
    return server


def stop_seconds(server: ServerProcess) -> float:
    """Seconds from SIGTERM to the process's exit (which must be 0)."""
    began = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.wait(60) == 0, server.log
    return time.monotonic() - began


class InFlight:
    """curl GETs ``/slow?seconds`` (HTTP/2 with prior knowledge, or HTTP/1.1; curl reads the
    rest of a stream a graceful GOAWAY left running, which httpx does not)."""

    def __init__(self, server: ServerProcess, seconds: float, http2: bool) -> None:
        flag = "--http2-prior-knowledge" if http2 else "--http1.1"
        self._curl = subprocess.Popen([require_tool("curl"), "-sS", flag, "-w", " %{http_code}",
                                       f"{server.url}/slow?{seconds}"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def join(self) -> tuple[int, str]:
        """curl's exit code and what it printed (the body, then the status)."""
        out, _ = self._curl.communicate(timeout=60)
        return self._curl.returncode, out


@pytest.mark.parametrize("workers", [1, 2], ids=["single", "workers-2"])
def test_idle_server_stops_at_once(impl, workers):
    server = start(impl, workers, 10)
    with httpx.Client(http1=False, http2=True, timeout=30) as c:  # served, then idle
        assert c.get(server.url + "/").status_code == 200
    assert stop_seconds(server) < 0.5 + SLACK


@pytest.mark.parametrize("http2", [True, False], ids=["h2", "http1.1"])
@pytest.mark.parametrize("workers", [1, 2], ids=["single", "workers-2"])
def test_stop_waits_for_a_request_in_flight_then_exits_at_once(impl, workers, http2):
    """A 1.5 s request in flight, a 30 s timeout: it completes, and the exit follows it."""
    server = start(impl, workers, 30)
    request = InFlight(server, 1.5, http2)
    time.sleep(0.5)
    took = stop_seconds(server)
    assert request.join() == (0, "slow done 200")
    assert 0.8 <= took < 1.0 + SLACK, took


@pytest.mark.parametrize("workers", [1, 2], ids=["single", "workers-2"])
def test_a_request_longer_than_the_timeout_is_cut_at_the_timeout(impl, workers):
    """--shutdown-timeout 2 and a 30 s request in flight: the exit comes 2 s after SIGTERM
    plus a fraction of a second (it came 4 s after: 1 s of draining and 1 s of thread-pool
    wait were added to the timeout)."""
    server = start(impl, workers, 2)
    request = InFlight(server, 30, True)
    time.sleep(0.5)
    took = stop_seconds(server)
    assert 1.9 <= took < 2.0 + SLACK, took
    code, out = request.join()
    assert code != 0 and "slow done" not in out  # cut


@pytest.mark.parametrize("impl", ["compiled", "pure"])
def test_sigterm_as_soon_as_serving_is_logged_stops_gracefully(impl: str) -> None:
    """The SIGTERM handler is in place before the "serving" line is written: a supervisor
    (or a test) that signals the moment it reads that line gets a graceful stop and exit 0,
    not the default handler's death by signal (exit -15, a pid file left behind)."""
    for _ in range(3):
        server = ServerProcess("tests.served_apps.basic:wsgi_app", impl)
        server.signal(signal.SIGTERM)  # (ServerProcess returns as soon as it read the line)
        assert server.wait(30) == 0, server.log
        assert "stopped" in server.log, server.log
