"""Listening sockets that are not ``--host``/``--port``: ``--uds PATH`` (with
``--uds-permissions``), an inherited socket ``--fd N``, and systemd socket activation
(``LISTEN_FDS``/``LISTEN_PID``, fds from 3). HTTP/2 (h2c prior knowledge; TLS with ALPN when
configured) and HTTP/1.1 are served on each; curl ``--unix-socket`` and httpx's UDS transport
are the clients. Bad input is one line and exit 2. Real server, both builds."""
from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile

import httpx
import pytest

from tests.helpers.bursts import burst_h2
from tests.helpers.serverproc import ROOT, ServerProcess
from tests.helpers.tools import require_tool

pytestmark = pytest.mark.timeout(120)

APP = "tests.served_apps.basic:wsgi_app"
HELLO = "Hello, world!"


@pytest.fixture
def short_dir():
    """A directory with a short path (a Unix socket path has at most 107 bytes)."""
    path = tempfile.mkdtemp(prefix="kh2-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def curl_unix(path: str, http2: bool, url: str = "http://localhost/",
              ca: str | None = None) -> str:
    args = [require_tool("curl"), "-sS", "--max-time", "20", "--unix-socket", path,
            "-o", "-", "-w", " %{http_version}"]
    if ca:
        args += ["--cacert", ca, "--http2" if http2 else "--http1.1"]
    else:
        args += ["--http2-prior-knowledge" if http2 else "--http1.1"]
    done = subprocess.run([*args, url], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def cli(*args: str, env: dict | None = None, pass_fds=()) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "kyoukai_h2fast", APP, *args], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=60,
                          pass_fds=pass_fds)


def one_error_line(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kyoukai-h2fast: error: "), done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# -- --uds ---------------------------------------------------------------------------------
@pytest.mark.parametrize("workers", ["1", "2"])
def test_uds_serves_h2_prior_knowledge_and_http11_to_curl_then_is_removed(impl, short_dir,
                                                                          workers):
    path = os.path.join(short_dir, "app.sock")
    server = ServerProcess(APP, impl, args=["--uds", path, "--uds-permissions", "660",
                                            "--workers", workers])
    try:
        assert server.url == f"unix:{path}" and server.port is None
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o660
        assert curl_unix(path, http2=True) == f"{HELLO} 2"
        assert curl_unix(path, http2=False) == f"{HELLO} 1.1"
        if workers == "2":
            assert "on unix:" in server.log and "one shared socket" in server.log
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.log
    assert not os.path.exists(path), "the socket file is removed on exit"


def test_uds_serves_httpx_over_its_uds_transport_http2_and_http11(impl, short_dir):
    path = os.path.join(short_dir, "app.sock")
    server = ServerProcess(APP, impl, args=["--uds", path, "--uds-permissions", "0o600"])
    try:
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
        h2 = httpx.HTTPTransport(uds=path, http1=False, http2=True)
        with httpx.Client(transport=h2, timeout=20) as client:
            response = client.get("http://localhost/")
            assert (response.http_version, response.text) == ("HTTP/2", HELLO)
        with httpx.Client(transport=httpx.HTTPTransport(uds=path), timeout=20) as client:
            response = client.get("http://localhost/")
            assert (response.http_version, response.text) == ("HTTP/1.1", HELLO)
    finally:
        server.stop()


def test_uds_with_tls_negotiates_h2_and_http11_by_alpn(impl, short_dir, tls_files):
    path = os.path.join(short_dir, "tls.sock")
    certfile, keyfile, ca = tls_files
    server = ServerProcess(APP, impl, tls=(certfile, keyfile), args=["--uds", path])
    try:
        assert curl_unix(path, True, "https://localhost/", ca) == f"{HELLO} 2"
        assert curl_unix(path, False, "https://localhost/", ca) == f"{HELLO} 1.1"
    finally:
        server.stop()


def test_a_stale_socket_file_is_replaced(impl, short_dir):
    path = os.path.join(short_dir, "stale.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # the file stays, nothing listens: a server that died
    server = ServerProcess(APP, impl, args=["--uds", path])
    try:
        assert curl_unix(path, http2=True) == f"{HELLO} 2"
    finally:
        server.stop()


def test_uds_errors_are_one_line_exit_2(short_dir):
    one_error_line(cli("--uds", os.path.join(short_dir, "missing", "s.sock")),
                   "--uds", "no such directory")
    regular = os.path.join(short_dir, "file")
    open(regular, "w").close()
    one_error_line(cli("--uds", regular), "exists and is not a socket")
    live = os.path.join(short_dir, "live.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(live)
    listener.listen()
    try:
        one_error_line(cli("--uds", live), "another server listens on it")
    finally:
        listener.close()
    one_error_line(cli("--uds", live, "--uds-permissions", "rw"), "octal")
    one_error_line(cli("--uds", live, "--fd", "3"), "--uds and --fd")


# -- --fd ----------------------------------------------------------------------------------
@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_inherited_tcp_socket_is_served_with_fd(impl, workers):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    fd = listener.fileno()
    try:
        server = ServerProcess(APP, impl, args=["--fd", str(fd), "--workers", workers],
                               pass_fds=(fd,))
    finally:
        listener.close()  # the server holds its own copy
    try:
        assert server.url == f"http://127.0.0.1:{port}"
        with httpx.Client(http1=False, http2=True, timeout=20) as client:
            assert client.get(server.url + "/").http_version == "HTTP/2"
        with httpx.Client(timeout=20) as client:
            assert client.get(server.url + "/").text == HELLO
    finally:
        server.stop()


def test_an_inherited_unix_socket_is_served_with_fd(impl, short_dir):
    path = os.path.join(short_dir, "inherited.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen()
    fd = listener.fileno()
    try:
        server = ServerProcess(APP, impl, args=["--fd", str(fd)], pass_fds=(fd,))
    finally:
        listener.close()
    try:
        assert server.url == f"unix:{path}"
        assert curl_unix(path, http2=True) == f"{HELLO} 2"
        assert curl_unix(path, http2=False) == f"{HELLO} 1.1"
    finally:
        server.stop()
    assert os.path.exists(path), "a socket the server did not make is not removed"


def test_fd_errors_are_one_line_exit_2(short_dir):
    with open(os.path.join(short_dir, "file"), "w") as f:
        one_error_line(cli("--fd", str(f.fileno()), pass_fds=(f.fileno(),)),
                       f"--fd {f.fileno()}", "not a socket")
    one_error_line(cli("--fd", "987"), "--fd 987", "Bad file descriptor")
    unbound = socket.socket()
    try:
        one_error_line(cli("--fd", str(unbound.fileno()), pass_fds=(unbound.fileno(),)),
                       "not a listening stream socket")
    finally:
        unbound.close()


# -- systemd socket activation -------------------------------------------------------------
def as_systemd(fd: int) -> list[str]:
    """A prefix command that does what systemd does for the server: the socket on fd 3,
    LISTEN_FDS=1 and LISTEN_PID = its own pid (it then execs the server: same pid)."""
    code = ("import os, sys\n"
            f"if {fd} != 3:\n    os.dup2({fd}, 3)\n    os.close({fd})\n"
            "os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid()))\n"
            "os.execv(sys.argv[1], sys.argv[1:])\n")
    return [sys.executable, "-c", code]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_systemd_socket_activation_serves_the_passed_socket(impl, workers):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    fd = listener.fileno()
    try:
        server = ServerProcess(APP, impl, args=["--workers", workers], pass_fds=(fd,),
                               prefix=as_systemd(fd))
    finally:
        listener.close()
    try:
        assert server.url == f"http://127.0.0.1:{port}", server.log
        with httpx.Client(http1=False, http2=True, timeout=20) as client:
            response = client.get(server.url + "/")
            assert (response.http_version, response.text) == ("HTTP/2", HELLO)
        with httpx.Client(timeout=20) as client:
            assert client.get(server.url + "/").http_version == "HTTP/1.1"
    finally:
        server.stop()


def test_listen_pid_of_another_process_is_one_line_exit_2():
    one_error_line(cli(env={"LISTEN_FDS": "1", "LISTEN_PID": "1"}),
                   "LISTEN_PID=1 is not this process")
    one_error_line(cli(env={"LISTEN_FDS": "x", "LISTEN_PID": "1"}), "LISTEN_FDS='x'")


def test_systemd_reuse_port_socket_gets_a_socket_per_worker_beside_it(impl):
    """systemd's ``ReusePort=true``: the passed socket has SO_REUSEPORT; with --workers 2
    the second worker gets a socket of its own bound beside it, so a burst reaches both."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    fd = listener.fileno()
    try:
        server = ServerProcess("tests.served_apps.pid:app", impl,
                               args=["--workers", "2", "--wsgi-threads", "0"],
                               pass_fds=(fd,), prefix=as_systemd(fd))
    finally:
        listener.close()
    try:
        assert "a SO_REUSEPORT socket each" in server.log, server.log
        pids = burst_h2(server.port)
        assert len(set(pids)) == 2, sorted(pids)
    finally:
        server.stop()
