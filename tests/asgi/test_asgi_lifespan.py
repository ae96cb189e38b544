"""ASGI lifespan: startup before the listener accepts, a failed startup is one line and exit
code 3, shutdown runs on SIGTERM after the drain; apps without lifespan are served (see
test_asgi_http); detection of the app kind and ``--interface``."""
from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from kyoukai_h2fast.apps.runners import detect_kind
from tests.helpers.serverproc import ROOT, ServerProcess
from tests.served_apps import asgi_apps, basic

pytestmark = pytest.mark.timeout(60)


def _cli(*args: str, env=None) -> subprocess.CompletedProcess:
    full = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "kyoukai_h2fast", *args, "--port", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30, env=full)


def test_failed_startup_is_one_line_and_exit_code_3():
    result = _cli("tests.served_apps.asgi_apps:failing_lifespan_app")
    assert result.returncode == 3
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert errors == ["kyoukai-h2fast: error: the app's lifespan startup failed: "
                      "database unreachable"], result.stderr
    assert "Traceback" not in result.stderr and "serving" not in result.stderr


def test_failed_startup_under_workers_is_one_line_per_worker_and_exit_code_3():
    """With --workers the supervisor gives up as soon as a worker's lifespan startup failed,
    and exits with the same code as the single process; no traceback."""
    result = _cli("tests.served_apps.asgi_apps:failing_lifespan_app", "--workers", "2")
    assert result.returncode == 3, result.stderr
    assert "the app's lifespan startup failed: database unreachable" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_shutdown_runs_after_the_drain_on_sigterm(impl):
    server = ServerProcess("tests.served_apps.asgi_apps:starlette_app", impl)
    try:
        with httpx.Client(http2=True, http1=False, timeout=10) as c:
            assert c.get(server.url + "/").json()["db"] == "connected"  # startup ran first
        server.signal()
        assert server.wait(20) == 0
    finally:
        server.stop()
    log = server.log
    assert "starlette lifespan shutdown ran" in log
    assert log.index("shutting down") < log.index("starlette lifespan shutdown ran")


def test_bad_interface_is_a_one_line_error():
    result = _cli("--interface", "cgi")
    assert result.returncode == 2 and "--interface" in result.stderr
    assert "Traceback" not in result.stderr


def test_interface_forces_the_kind():
    result = _cli("tests.served_apps.asgi_apps:bare_app", "--interface", "kyoukai")
    assert result.returncode == 2 and "Kyoukai-style" in result.stderr


def _wsgi(environ, start_response):
    return []


async def _asgi(scope, receive, send):
    pass


async def _two(scope, receive):
    pass


def test_detect_kind():
    assert detect_kind(asgi_apps.bare_app) == "asgi"
    assert detect_kind(asgi_apps.callable_app) == "asgi"
    assert detect_kind(asgi_apps.fastapi_app) == "asgi"
    assert detect_kind(asgi_apps.starlette_app) == "asgi"
    assert detect_kind(_asgi) == "asgi"
    assert detect_kind(basic.kyoukai_app) == "kyoukai"  # async too, told apart first
    assert detect_kind(_wsgi) == "wsgi"
    assert detect_kind(_two) == "wsgi"  # not three parameters: not ASGI 3
    assert detect_kind(_wsgi, "asgi") == "asgi"
    assert detect_kind(asgi_apps.bare_app, "wsgi") == "wsgi"


def test_websocket_requests_go_to_the_adapter_when_there_is_one():
    from kyoukai_h2fast.asgi.scope import is_websocket
    assert is_websocket([(b":method", b"CONNECT"), (b":protocol", b"websocket")])
    assert is_websocket([(b":method", b"GET"), (b"upgrade", b"WebSocket")])
    assert not is_websocket([(b":method", b"GET"), (b"upgrade", b"h2c")])
    assert not is_websocket([(b":method", b"GET"), (b"accept", b"*/*")])


def test_runner_offers_its_websocket_handler_to_the_server():
    """WebSocket opening requests never reach dispatch: the connections take them and run
    the runner's ``websocket_app`` (kyoukai_h2fast.asgi.websocket) on a session."""
    from kyoukai_h2fast.asgi.runner import ASGIRunner
    from kyoukai_h2fast.server.component import H2KyoukaiComponent
    from tests.served_apps.basic import wsgi_app

    assert callable(ASGIRunner(asgi_apps.bare_app).websocket_app)
    assert H2KyoukaiComponent(asgi_apps.bare_app, port=0).websocket_app is not None
    assert H2KyoukaiComponent(wsgi_app, port=0).websocket_app is None
