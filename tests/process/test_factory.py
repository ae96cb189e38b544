"""``--factory``: APP names a callable that returns the app. It is called once in a single
process and again on each SIGHUP reload; with ``--workers N`` once in each worker (never in
the supervisor). A factory that is not callable, fails, or returns no app is one line,
exit 2 (a worker's factory that fails: the supervisor gives up)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from kyoukai_h2fast.process import cli
from tests.helpers.fetch import fetch
from tests.helpers.serverproc import ROOT, ServerProcess

pytestmark = pytest.mark.timeout(90)

FACTORY_APP = '''\
import os

CALLS = os.environ["FACTORY_CALLS"]


def make_app():
    with open(CALLS, "a") as f:
        f.write(f"{os.getpid()}\\n")
    made_in = os.getpid()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{made_in} {os.getpid()}".encode()]
    return app


def failing():
    raise RuntimeError("factory failure (test)")


def not_an_app():
    return 42


not_callable = 7
'''


@pytest.fixture
def app_dir(tmp_path, monkeypatch):
    (tmp_path / "factory_app.py").write_text(FACTORY_APP)
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("FACTORY_CALLS", str(calls))
    return tmp_path


def calls(app_dir) -> list[int]:
    path = app_dir / "calls.txt"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def start(app_dir, app: str, *args: str) -> ServerProcess:
    return ServerProcess(app, args=["--factory", *args],
                         env={"PYTHONPATH": f"{app_dir}:{ROOT}",
                              "FACTORY_CALLS": str(app_dir / "calls.txt")})


def wait_for(condition, what: str, server: ServerProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{server.log}"
        time.sleep(0.05)


def test_a_single_process_calls_the_factory_once_and_again_on_sighup(app_dir):
    server = start(app_dir, "factory_app:make_app")
    try:
        made_in, served_by = map(int, fetch(server.port, True).split())
        assert made_in == served_by == server.pid
        assert calls(app_dir) == [server.pid]
        server.signal(signal.SIGHUP)
        wait_for(lambda: len(calls(app_dir)) == 2, "the factory called on reload", server)
        assert calls(app_dir) == [server.pid, server.pid]
    finally:
        server.stop()


def test_each_worker_calls_the_factory(app_dir):
    server = start(app_dir, "factory_app:make_app", "--workers", "2")
    try:
        wait_for(lambda: server.log.count(" serving ") >= 2, "2 workers", server)
        workers = calls(app_dir)
        assert len(workers) == 2 and server.pid not in workers, (workers, server.pid)
        made_in, served_by = map(int, fetch(server.port, False).split())
        assert made_in == served_by and served_by in workers
    finally:
        server.stop()


def test_a_workers_factory_that_fails_stops_the_supervisor(app_dir):
    env = dict(os.environ, PYTHONPATH=f"{app_dir}:{ROOT}")
    proc = subprocess.run([sys.executable, "-m", "kyoukai_h2fast", "factory_app:failing",
                           "--factory", "--workers", "2", "--port", "0"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "cannot make the app: --factory: factory_app:failing() failed: RuntimeError: " \
           "factory failure (test)" in proc.stderr, proc.stderr


@pytest.mark.parametrize(("app", "message"), [
    ("factory_app:failing",
     "--factory: factory_app:failing() failed: RuntimeError: factory failure (test)"),
    ("factory_app:not_an_app", "--factory: factory_app:not_an_app() returned 'int' is "
     "neither a WSGI callable"),
    ("factory_app:not_callable", "--factory: factory_app:not_callable is not callable (int)"),
    (None, "--factory needs APP"),
])
def test_a_bad_factory_is_one_line_exit_2(app_dir, monkeypatch, capsys, app, message):
    monkeypatch.syspath_prepend(str(app_dir))
    monkeypatch.chdir(app_dir)
    monkeypatch.delitem(sys.modules, "factory_app", raising=False)
    assert cli.main([*([app] if app else []), "--factory"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kyoukai-h2fast: error: {message}"), err
    if app == "factory_app:failing":  # the factory's traceback follows, its frames only
        assert 'factory_app.py", line' in err and "cli.py" not in err
