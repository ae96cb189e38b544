"""The command line: --version, the demo app, clear one-line errors with exit code 2."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest

from tests.helpers.serverproc import ROOT, ServerProcess

pytestmark = pytest.mark.timeout(60)


def run_cli(*args, env=None, timeout=30) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "kyoukai_h2fast", *args], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def test_version_says_compiled_or_pure_on_its_own_line():
    compiled = run_cli("--version", env={"KYOUKAI_H2FAST_NO_EXTENSIONS": ""})
    pure = run_cli("--version", env={"KYOUKAI_H2FAST_NO_EXTENSIONS": "1"})
    assert compiled.returncode == 0 and pure.returncode == 0
    lines = compiled.stdout.splitlines()
    assert lines[0].startswith("kyoukai_h2fast ")
    from kyoukai_h2fast import _switch
    built = all(_switch.compiled(name) is not None for name in _switch.MODULES)
    assert lines[1] == ("extensions: compiled" if built else "extensions: pure")
    assert pure.stdout.splitlines()[1] == "extensions: pure"


def test_version_names_the_connection_engine_on_its_own_line():
    from kyoukai_h2fast import _switch
    default = run_cli("--version", env={"KYOUKAI_H2FAST_NO_EXTENSIONS": ""})
    forced = run_cli("--version", env={"KYOUKAI_H2FAST_NO_EXTENSIONS": "",
                                       "KYOUKAI_H2FAST_ENGINE": "h2"})
    pure = run_cli("--version", env={"KYOUKAI_H2FAST_NO_EXTENSIONS": "1"})
    expected = "engine: compiled" if _switch.compiled("engine") is not None else "engine: h2"
    assert default.stdout.splitlines()[2] == expected
    assert forced.stdout.splitlines()[2] == "engine: h2"
    assert pure.stdout.splitlines()[2] == "engine: h2"


def test_console_script_is_installed():
    import shutil
    script = shutil.which("kyoukai-h2fast")
    assert script is not None, "pip install . should install the kyoukai-h2fast command"
    out = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.startswith("kyoukai_h2fast ")


@pytest.mark.parametrize("args, message", [
    (["--port", "70000"], "port must be 0..65535"),
    (["--port", "abc"], "invalid int value"),
    (["--wsgi-threads", "-1"], "wsgi-threads must be >= 0"),
    (["--max-frame-size", "100"], "max-frame-size must be an integer in 16384..16777215"),
    (["--max-concurrent-streams", "0"], "max-concurrent-streams"),
    (["--certfile", "/nonexistent.pem"], "--certfile and --keyfile must be given together"),
    (["--bogus-flag"], "unrecognized arguments"),
    (["nocolon"], "cannot import 'nocolon'"),
    (["tests.apps:"], "APP must look like module:attribute or module"),
    ([":app"], "APP must look like module:attribute or module"),
    (["no_such_module_xyz:app"], "cannot import 'no_such_module_xyz'"),
    (["tests.served_apps.basic:no_such_attr"], "has no attribute 'no_such_attr'"),
    (["tests.served_apps.basic:_lock"], "is neither a WSGI callable nor a Kyoukai-style app"),
])
def test_bad_arguments_give_one_line_and_exit_code_2(args, message):
    out = run_cli(*args)
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("kyoukai-h2fast: error: ")
    assert message in lines[0]
    assert "Traceback" not in out.stderr


def test_unreadable_certificate_is_one_line_exit_2(tmp_path):
    # every kind of bad TLS file: tests/process/test_cli_errors.py
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    out = run_cli("--certfile", str(bad), "--keyfile", str(bad))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"kyoukai-h2fast: error: --certfile {bad}: is not a PEM certificate "
        "(no '-----BEGIN CERTIFICATE-----' line)"]
    missing = run_cli("--certfile", str(tmp_path / "nope.pem"), "--keyfile", str(bad))
    assert missing.returncode == 2
    assert f"--certfile {tmp_path / 'nope.pem'}: cannot read it" in missing.stderr


def test_app_whose_import_raises_is_one_line_exit_2(tmp_path):
    # the traceback printed below the line: tests/process/test_cli_errors.py
    (tmp_path / "broken_app.py").write_text("raise ValueError('boom at import')\n")
    out = subprocess.run([sys.executable, "-m", "kyoukai_h2fast", "broken_app:app"],
                         cwd=tmp_path, env=dict(os.environ, PYTHONPATH=ROOT),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert out.stderr.splitlines()[0] == ("kyoukai-h2fast: error: cannot import 'broken_app': "
                                          "ValueError: boom at import")


def test_app_from_current_directory_is_importable(tmp_path):
    (tmp_path / "myapp.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'from cwd']\n")
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=ROOT)  # this tree, not the installed
    proc = subprocess.Popen([sys.executable, "-m", "kyoukai_h2fast", "myapp:app", "--port", "0"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert "serving wsgi app on http://127.0.0.1:" in line, line
        url = line.split(" on ", 1)[1].split()[0]
        with httpx.Client(http1=False, http2=True) as c:
            assert c.get(url + "/").text == "from cwd"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0


def test_port_in_use_is_one_line_exit_2(servers):
    server = servers.get()
    out = run_cli("--port", str(server.port))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"kyoukai-h2fast: error: cannot listen on 127.0.0.1:{server.port}: "
        + out.stderr.strip().split(": ", 3)[-1]]
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_and_sigterm_stop_cleanly(sig):
    server = ServerProcess(None)
    with httpx.Client(http1=False, http2=True) as c:
        assert c.get(server.url + "/").status_code == 200
    server.signal(sig)
    assert server.wait(15) == 0
    assert "Traceback" not in server.log
    assert "stopped" in server.log


def test_demo_is_served_with_no_app_and_logs_where(servers):
    server = servers.get(app=None)
    assert f"serving kyoukai app on {server.url}" in server.log
    with httpx.Client(http1=False, http2=True) as c:
        r = c.get(server.url + "/")
    assert r.status_code == 200 and "Hello from kyoukai_h2fast" in r.text


def test_help_says_what_zero_max_handlers_per_connection_means():
    """``--max-handlers-per-connection 0`` (the default) is no cap, as the code and the
    README say (a burst of five on one connection runs at once on the default pool:
    tests/test_real_apps.py); --help said "half the pool"."""
    done = run_cli("--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert ("--max-handlers-per-connection N WSGI handlers one connection may run in the pool "
            "at once (default 0: no cap)") in text, text
    assert "half the pool" not in text
    with open(os.path.join(ROOT, "README.md")) as f:
        assert "| `--max-handlers-per-connection` | 0 (no cap) |" in f.read()


_WSGI = ("def {name}(environ, start_response):\n"
         "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
         "    return [b'{name}']\n")


@pytest.mark.parametrize("names, served", [
    (["app"], "app"),
    (["application"], "application"),
    (["application", "app"], "app"),  # app first, as uvicorn; then gunicorn's application
], ids=["app", "application", "both"])
def test_app_without_attribute_serves_its_app_or_application(tmp_path, impl, names, served):
    (tmp_path / "bare_module.py").write_text("".join(_WSGI.format(name=n) for n in names))
    server = ServerProcess("bare_module", impl, env={"PYTHONPATH": f"{tmp_path}:{ROOT}"})
    try:
        with httpx.Client(http1=False, http2=True) as c:
            assert c.get(server.url + "/").text == served
    finally:
        server.stop()


def test_app_without_attribute_and_neither_name_is_one_line_exit_2(tmp_path):
    (tmp_path / "no_app_here.py").write_text("handler = None\n")
    out = run_cli("no_app_here", env={"PYTHONPATH": f"{tmp_path}:{ROOT}"})
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "kyoukai-h2fast: error: module 'no_app_here' has no attribute 'app' or 'application' "
        "(name the app: no_app_here:ATTRIBUTE)"]
