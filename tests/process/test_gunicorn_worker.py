"""``gunicorn -k kyoukai_h2fast.workers.H2Worker``: gunicorn's master with our worker, serving
h2c, HTTP/1.1 and TLS (ALPN h2 and http/1.1) on gunicorn's bind, with its heartbeat timeout,
graceful shutdown, access log and forwarded-allow-ips. Real clients, both builds."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.helpers.fetch import fetch
from tests.helpers.serverproc import ROOT
from tests.helpers.tools import require_tool

pytestmark = pytest.mark.timeout(180)

WORKER = "kyoukai_h2fast.workers.H2Worker"
_SERVING = re.compile(r"serving (\w+) app on (\S+) .*extensions: (\w+)\)")
_LISTENING = re.compile(r"Listening at: (\S+)")
PATTERN = bytes(range(256)) * 256


def _control_socket_args() -> list[str]:
    from gunicorn.config import KNOWN_SETTINGS
    flags = {flag for setting in KNOWN_SETTINGS for flag in (setting.cli or [])}
    return ["--no-control-socket"] if "--no-control-socket" in flags else []


class Gunicorn:
    def __init__(self, app: str, impl: str, args=(), bind: str = "127.0.0.1:0") -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
        env.pop("KYOUKAI_H2FAST_NO_EXTENSIONS", None)
        if impl == "pure":
            env["KYOUKAI_H2FAST_NO_EXTENSIONS"] = "1"
        self.cmd = [sys.executable, "-m", "gunicorn", "-k", WORKER, "-b", bind,
                    *_control_socket_args(), *args, app]
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 60
        while not (self.serving and self.url):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"gunicorn did not start: {self.cmd}\n{self.log}")
            time.sleep(0.05)
        expected = "pure" if impl == "pure" else "compiled"
        assert self.serving[2] == expected, self.log

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    @property
    def serving(self):
        m = _SERVING.search(self.log)
        return m.groups() if m else None

    @property
    def url(self) -> str | None:
        """gunicorn's "Listening at" address; with --reuse-port (the workers bind, the master
        lists nothing), the first worker's."""
        m = _LISTENING.search(self.log)
        if m and m.group(1).startswith(("http", "unix")):
            return m.group(1)
        return self.serving[1] if "--reuse-port" in self.cmd and self.serving else None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(5)
        return self.proc.returncode


@pytest.fixture
def gunicorn():
    started = []

    def start(app="tests.served_apps.basic:wsgi_app", impl="compiled", args=(), bind="127.0.0.1:0"):
        g = Gunicorn(app, impl, args, bind)
        started.append(g)
        return g
    yield start
    for g in started:
        g.stop()


def curl(*args) -> subprocess.CompletedProcess:
    return subprocess.run([require_tool("curl"), "-sS", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("app", ["tests.served_apps.basic:wsgi_app",
                                 "kyoukai_h2fast.process.demo:app"], ids=["wsgi", "kyoukai-style"])
def test_serves_h2c_and_http11_on_gunicorns_bind(gunicorn, impl, app):
    g = gunicorn(app, impl)
    assert g.serving[1] == g.url  # our server took gunicorn's socket
    for flag, version in (("--http2-prior-knowledge", "2"), ("--http1.1", "1.1")):
        out = curl(flag, "-w", "\n%{http_version}", g.url + "/")
        assert out.returncode == 0, out.stderr
        body, got = out.stdout.rsplit("\n", 1)
        assert got == version and body.startswith("Hello")
    with httpx.Client(http1=False, http2=True, timeout=30) as c:
        payload = os.urandom(2_000_000)
        assert c.post(g.url + "/echo", content=payload).content == payload


def test_serves_tls_with_alpn_h2_and_http11(gunicorn, impl, tls_files):
    certfile, keyfile, cafile = tls_files
    g = gunicorn("tests.served_apps.basic:wsgi_app", impl,
                 ["--certfile", certfile, "--keyfile", keyfile])
    url = g.url.replace("http://", "https://").replace("127.0.0.1", "localhost")
    assert g.serving[1].startswith("https://")
    with httpx.Client(http1=False, http2=True, timeout=30,
                      verify=ssl.create_default_context(cafile=cafile)) as c:
        r = c.get(url + "/environ")
    assert r.http_version == "HTTP/2"
    assert json.loads(r.text)["wsgi.url_scheme"] == "https"
    out = curl("--http1.1", "--cacert", cafile, "-w", "\n%{http_version}", url + "/")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Hello, world!\n1.1"


def test_sigterm_is_graceful_a_download_in_flight_completes(gunicorn, impl, tmp_path):
    g = gunicorn("tests.served_apps.basic:wsgi_app", impl, ["--graceful-timeout", "30"])
    size = 30 * 1024 * 1024
    out = tmp_path / "download.bin"
    client = subprocess.Popen([require_tool("curl"), "-sS", "--http2-prior-knowledge",
                               "--limit-rate", "10M", "-o", str(out), g.url + f"/bytes/{size}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (out.exists() and out.stat().st_size > 2 * 1024 * 1024):
            assert time.monotonic() < deadline, "the download did not start"
            time.sleep(0.05)
        g.proc.send_signal(signal.SIGTERM)
        _, stderr = client.communicate(timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == 0, stderr
    body = out.read_bytes()
    assert len(body) == size and body == (PATTERN * (size // len(PATTERN) + 1))[:size]
    assert g.proc.wait(60) == 0
    assert "Handling signal: term" in g.log


def test_heartbeat_keeps_an_idle_worker_alive_past_the_timeout(gunicorn, impl):
    g = gunicorn("tests.served_apps.basic:wsgi_app", impl, ["--timeout", "2"])
    pid_line = re.search(r"Booting worker with pid: (\d+)", g.log)
    time.sleep(5)  # more than twice the timeout with no request
    with httpx.Client(http1=True, http2=False, timeout=30) as c:
        assert c.get(g.url + "/").status_code == 200
    assert "WORKER TIMEOUT" not in g.log
    assert re.findall(r"Booting worker with pid: (\d+)", g.log) == [pid_line.group(1)]


def test_access_log_and_forwarded_allow_ips(gunicorn, impl):
    g = gunicorn("tests.served_apps.basic:wsgi_app", impl, ["--access-logfile", "-",
                                               "--forwarded-allow-ips", "127.0.0.1"])
    with httpx.Client(http1=False, http2=True, timeout=30) as c:
        r = c.get(g.url + "/environ?q", headers={"X-Forwarded-For": "198.51.100.4",
                                                  "X-Forwarded-Proto": "https"})
    env = json.loads(r.text)
    assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"]) == ("198.51.100.4", "https")
    deadline = time.monotonic() + 10
    while '"GET /environ?q HTTP/2" 200' not in g.log:
        assert time.monotonic() < deadline, g.log
        time.sleep(0.05)
    # gunicorn's default --access-logformat: '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s
    # "%(f)s" "%(a)s"'
    assert re.search(r'^198\.51\.100\.4 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] '
                     r'"GET /environ\?q HTTP/2" 200 ', g.log, re.M), g.log


@pytest.mark.parametrize("workers, expected", [(2, True), (1, False)])
def test_wsgi_multiprocess_follows_gunicorns_workers(gunicorn, impl, workers, expected):
    g = gunicorn("tests.served_apps.basic:wsgi_app", impl, ["-w", str(workers)])
    for http2 in (True, False):
        with httpx.Client(http1=not http2, http2=http2, timeout=30) as c:
            env = json.loads(c.get(g.url + "/environ").text)
        assert env["wsgi.multiprocess"] is expected


def _wait_for(condition, what: str, g: Gunicorn, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{g.log}"
        time.sleep(0.05)


PID_APP = """\
import os
import time

VERSION = {version!r}


def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(2)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{{VERSION}} {{os.getpid()}}".encode()]
"""


def _get(port: int, http2: bool, path: str = "/") -> str:
    """``path`` on a new connection, as a conforming client asks (tests/fetch.py)."""
    return fetch(port, http2, path)


def test_max_requests_restarts_the_worker_gracefully(gunicorn, impl, tmp_path):
    """--max-requests 50: the worker stops after about 50 requests (read from its
    connections at its heartbeat, every 0.25 s at most) and gunicorn boots a fresh one; a
    request in flight then finishes, and no request is lost."""
    (tmp_path / "pid_app.py").write_text(PID_APP.format(version="one"))
    g = gunicorn("pid_app:app", impl, ["--pythonpath", str(tmp_path), "-w", "1",
                                       "--max-requests", "50", "--graceful-timeout", "30"])
    slow = subprocess.Popen([require_tool("curl"), "-sS", "--http2-prior-knowledge",
                             g.url + "/slow"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    pids = []
    for i in range(150):
        pids.append(_get(g.port, i % 2 == 0).split()[1])
        time.sleep(0.005)
    out, _ = slow.communicate(timeout=60)
    assert slow.returncode == 0 and out.split()[0] == "one", out  # finished in the old one
    first = pids[0]
    served_by_first = pids.count(first)
    assert 49 <= served_by_first < 150, (served_by_first, g.log)  # (+1: the slow request)
    assert len(set(pids)) >= 2, g.log
    assert "Autorestarting worker after current request." in g.log
    assert out.split()[1] == first


def test_reload_serves_new_code_once_a_file_changes(gunicorn, impl, tmp_path):
    """gunicorn --reload: its reloader sets the worker's ``alive`` to False when a module
    changes; the worker stops gracefully and a fresh one imports the new code."""
    (tmp_path / "pid_app.py").write_text(PID_APP.format(version="one"))
    g = gunicorn("pid_app:app", impl, ["--pythonpath", str(tmp_path), "--reload"])
    first = _get(g.port, True)
    assert first.startswith("one ")
    time.sleep(1.1)  # a later modification time
    (tmp_path / "pid_app.py").write_text(PID_APP.format(version="second"))
    _wait_for(lambda: _get(g.port, False).startswith("second "), "the new code", g, 30)
    assert _get(g.port, True).split()[1] != first.split()[1]


@pytest.mark.parametrize("http2", [True, False], ids=["h2", "http1.1"])
def test_unix_socket_start_line_remote_addr_and_access_line(gunicorn, impl, tmp_path, http2):
    path = str(tmp_path / "app.sock")
    g = gunicorn("tests.served_apps.basic:wsgi_app", impl, ["--access-logfile", "-"],
                 bind=f"unix:{path}")
    assert g.url == f"unix:{path}"
    assert g.serving[1] == f"unix:{path}"  # the start line names the socket
    transport = httpx.HTTPTransport(uds=path, http1=not http2, http2=http2)
    with httpx.Client(transport=transport, timeout=30) as c:
        r = c.get("http://localhost/environ?u=1")
    assert r.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    env = json.loads(r.text)
    assert env["REMOTE_ADDR"] == ""  # as gunicorn's own workers on a Unix socket
    assert env["SERVER_NAME"] == "localhost"
    protocol = "HTTP/2" if http2 else "HTTP/1.1"
    _wait_for(lambda: f'"GET /environ?u=1 {protocol}" 200' in g.log, "the access line", g)
    line = next(x for x in g.log.splitlines() if f'"GET /environ?u=1 {protocol}"' in x)
    assert re.match(r"- - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] ", line), line
    assert not any(x.startswith(": -") for x in g.log.splitlines()), g.log


def test_access_logformat_is_gunicorns(gunicorn, impl):
    fmt = '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(D)s %(L)s %(m)s %(U)s %(q)s %(H)s %(p)s'
    g = gunicorn("tests.served_apps.basic:wsgi_app", impl, ["--access-logfile", "-",
                                               "--access-logformat", fmt])
    for http2 in (True, False):
        with httpx.Client(http1=not http2, http2=http2, timeout=30) as c:
            assert c.get(g.url + "/slow?0.2").status_code == 200
    _wait_for(lambda: g.log.count('"GET /slow?0.2 ') == 2, "two access lines", g)
    lines = [x for x in g.log.splitlines() if '"GET /slow?0.2 ' in x]
    for line, protocol in zip(lines, ("HTTP/2", "HTTP/1.1"), strict=True):
        m = re.fullmatch(r'127\.0\.0\.1 \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] '
                         r'"GET /slow\?0\.2 (\S+)" 200 (\d+|-) (\d+) (\d+\.\d{6}) GET /slow '
                         r'0\.2 (\S+) <(\d+)>', line)
        assert m, line
        assert m.group(1) == m.group(5) == protocol
        assert 0.2 <= int(m.group(3)) / 1e6 == pytest.approx(float(m.group(4)), abs=1e-5)
        assert float(m.group(4)) < 10
    assert lines[1].split(" 200 ")[1].startswith("9 ")  # HTTP/1.1: "slow done", counted


def test_reuse_port_spreads_a_burst_over_the_workers(gunicorn, impl, tmp_path):
    """gunicorn --reuse-port (Linux) binds a SO_REUSEPORT socket in each worker instead of
    once in the master: ours serve their own, so both workers answer 40 new connections
    (HTTP/2 and HTTP/1.1), none fails."""
    (tmp_path / "pid_app.py").write_text(PID_APP.format(version="one"))
    with socket.socket() as s:  # (with port 0, each worker would bind a port of its own)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    g = gunicorn("pid_app:app", impl, ["--pythonpath", str(tmp_path), "-w", "2",
                                       "--reuse-port"], bind=f"127.0.0.1:{port}")
    _wait_for(lambda: g.log.count(" serving wsgi app on ") == 2, "two workers", g)
    assert g.log.count(f"serving wsgi app on http://127.0.0.1:{port} ") == 2, g.log
    booted = set(re.findall(r"Booting worker with pid: (\d+)", g.log))
    pids = [_get(port, i % 2 == 0).split()[1] for i in range(40)]
    assert len(booted) == 2 and set(pids) == booted, (pids, booted)
