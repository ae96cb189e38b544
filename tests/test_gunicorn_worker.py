"""``gunicorn -k kyoukai_h2fast.workers.H2Worker``: gunicorn's master with our worker, serving
h2c, HTTP/1.1 and TLS (ALPN h2 and http/1.1) on gunicorn's bind, with its heartbeat timeout,
graceful shutdown, access log and forwarded-allow-ips. Real clients, both builds."""
from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time

import httpx
import pytest

from conftest import require_tool
from serverproc import ROOT

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
    def __init__(self, app: str, impl: str, args=()) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("KYOUKAI_H2FAST_NO_EXTENSIONS", None)
        if impl == "pure":
            env["KYOUKAI_H2FAST_NO_EXTENSIONS"] = "1"
        self.cmd = [sys.executable, "-m", "gunicorn", "-k", WORKER, "-b", "127.0.0.1:0",
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
        m = _LISTENING.search(self.log)
        return m.group(1) if m else None

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

    def start(app="tests.apps:wsgi_app", impl="compiled", args=()):
        g = Gunicorn(app, impl, args)
        started.append(g)
        return g
    yield start
    for g in started:
        g.stop()


def curl(*args) -> subprocess.CompletedProcess:
    return subprocess.run([require_tool("curl"), "-sS", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("app", ["tests.apps:wsgi_app", "kyoukai_h2fast.demo:app"],
                         ids=["wsgi", "kyoukai-style"])
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
    g = gunicorn("tests.apps:wsgi_app", impl, ["--certfile", certfile, "--keyfile", keyfile])
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
    g = gunicorn("tests.apps:wsgi_app", impl, ["--graceful-timeout", "30"])
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
    g = gunicorn("tests.apps:wsgi_app", impl, ["--timeout", "2"])
    pid_line = re.search(r"Booting worker with pid: (\d+)", g.log)
    time.sleep(5)  # more than twice the timeout with no request
    with httpx.Client(http1=True, http2=False, timeout=30) as c:
        assert c.get(g.url + "/").status_code == 200
    assert "WORKER TIMEOUT" not in g.log
    assert re.findall(r"Booting worker with pid: (\d+)", g.log) == [pid_line.group(1)]


def test_access_log_and_forwarded_allow_ips(gunicorn, impl):
    g = gunicorn("tests.apps:wsgi_app", impl, ["--access-logfile", "-",
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
    assert '198.51.100.4:0 - "GET /environ?q HTTP/2" 200' in g.log


@pytest.mark.parametrize("workers, expected", [(2, True), (1, False)])
def test_wsgi_multiprocess_follows_gunicorns_workers(gunicorn, impl, workers, expected):
    g = gunicorn("tests.apps:wsgi_app", impl, ["-w", str(workers)])
    for http2 in (True, False):
        with httpx.Client(http1=not http2, http2=http2, timeout=30) as c:
            env = json.loads(c.get(g.url + "/environ").text)
        assert env["wsgi.multiprocess"] is expected
