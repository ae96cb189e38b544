"""``--reload``: the watcher runs the server as a child and restarts it when a ``.py`` file
under a ``--reload-dir`` changes; the new code answers within about a second; a syntax error
in the saved file costs one log line and the next save recovers; virtual environments,
caches, ``.git`` and build directories are ignored; SIGTERM stops both; without watchfiles
``--reload`` is one line, exit 2. A real watcher and server, real clients."""
from __future__ import annotations

import os
import signal
import socket
import sys
import time

import pytest

from kyoukai_h2fast.process import cli
from kyoukai_h2fast.process.watch import SourceFilter
from tests.helpers.fetch import fetch
from tests.helpers.serverproc import ROOT, ServerProcess

pytestmark = pytest.mark.timeout(120)

#: The longest a restart may take on a loaded machine (about 0.6 s on a quiet one).
RESTART_WITHIN = 5.0

APP = '''\
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [{version!r}]
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int) -> str | None:
    try:
        return fetch(port, True)
    except Exception:  # restarting: nothing listening for a moment
        return None


def wait_for_body(port: int, body: str, server: ServerProcess) -> float:
    """Seconds until ``body`` is served."""
    began = time.monotonic()
    while get(port) != body:
        assert time.monotonic() - began < 30, f"{body!r} never served\n{server.log}"
        time.sleep(0.05)
    return time.monotonic() - began


def save(path, text: str) -> None:
    path.write_text(text)
    os.utime(path)


def test_a_changed_file_restarts_the_app_and_a_syntax_error_recovers(tmp_path):
    app_file = tmp_path / "watched_app.py"
    save(app_file, APP.format(version=b"v1"))
    (tmp_path / ".venv").mkdir()
    port = free_port()
    server = ServerProcess("watched_app:app", args=[
        "--reload", "--reload-dir", str(tmp_path), "--port", str(port)],
        env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PYTHONDONTWRITEBYTECODE": "1"})
    try:
        assert get(port) == "v1"
        # a file in an ignored directory restarts nothing (checked after the next restart)
        save(tmp_path / ".venv" / "ignored.py", "x = 1\n")
        save(app_file, APP.format(version=b"v2"))
        took = wait_for_body(port, "v2", server)
        print(f"restart took {took:.2f} s")
        assert took < RESTART_WITHIN, server.log
        assert server.log.count("changed; restarting the server") == 1, server.log
        assert "watched_app.py changed" in server.log and "ignored.py" not in server.log

        save(app_file, "def app(environ, start_response:\n")  # a syntax error
        deadline = time.monotonic() + 20
        while "the server exited (code 2); waiting for a change" not in server.log:
            assert time.monotonic() < deadline, server.log
            time.sleep(0.05)
        assert "SyntaxError" in server.log and server.alive()
        assert server.log.count("the server exited") == 1  # one line, not one per poll

        save(app_file, APP.format(version=b"v3"))
        took = wait_for_body(port, "v3", server)
        print(f"restart took {took:.2f} s")
        assert took < RESTART_WITHIN, server.log

        server.signal(signal.SIGTERM)
        assert server.wait(20) == 0
        assert get(port) is None  # the child stopped with the watcher
    finally:
        server.stop()


def test_without_watchfiles_reload_is_one_line_exit_2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "watchfiles", None)  # (import fails)
    assert cli.main(["--reload"]) == 2
    assert capsys.readouterr().err == ("kyoukai-h2fast: error: --reload needs watchfiles: "
                                       "pip install 'kyoukai_h2fast[reload]'\n")


def test_a_missing_reload_dir_is_one_line_exit_2(tmp_path, capsys):
    assert cli.main(["--reload", "--reload-dir", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == (f"kyoukai-h2fast: error: --reload-dir "
                                       f"{tmp_path / 'nope'}: no such directory\n")


# ---- what restarts the server ----------------------------------------------------------------

@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "build" / "project"  # (a watched directory may be under any name)
    (root / "myenv").mkdir(parents=True)
    (root / "myenv" / "pyvenv.cfg").write_text("home = /usr\n")
    return root


@pytest.mark.parametrize(("relative", "restarts"), [
    ("app.py", True),
    ("pkg/views.py", True),
    ("pkg/deep/er/models.py", True),
    ("app.txt", False),
    ("app.pyc", False),
    ("pkg/.#views.py", False),
    (".venv/lib/site.py", False),
    ("venv/lib/x.py", False),
    ("myenv/lib/python3.11/x.py", False),  # a virtual environment of any name
    ("pkg/__pycache__/views.py", False),
    (".git/hooks/x.py", False),
    (".tox/py311/x.py", False),
    (".mypy_cache/x.py", False),
    ("build/lib/app.py", False),
    ("dist/app.py", False),
    ("app.egg-info/x.py", False),
    ("node_modules/x/y.py", False),
    ("lib/site-packages/x.py", False),
])
def test_source_filter(tree, relative, restarts):
    accept = SourceFilter([str(tree)])
    assert accept(None, str(tree / relative)) is restarts


def test_the_child_does_not_watch_even_when_the_environment_says_reload(monkeypatch, tmp_path):
    """KYOUKAI_H2FAST_RELOAD=1 reaches the child too: its --no-reload wins (no watcher of
    watchers)."""
    from kyoukai_h2fast.process import watch

    commands = []

    class Recorder(watch.Watcher):
        def run(self) -> int:
            commands.append(self.command)
            return 0

    monkeypatch.setattr(watch, "Watcher", Recorder)
    environ = {"KYOUKAI_H2FAST_RELOAD": "1", "KYOUKAI_H2FAST_RELOAD_DIR": str(tmp_path)}
    monkeypatch.setattr(os, "environ", {**os.environ, **environ})
    assert cli.main(["app:app", "--port", "9"]) == 0
    (command,) = commands
    assert command[:3] == [sys.executable, "-m", "kyoukai_h2fast"]
    assert command[3:] == ["app:app", "--port", "9", "--no-reload"]
    assert cli.parse_args(command[3:], environ).reload is False
