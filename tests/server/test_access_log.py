"""The access log (``--access-log``, logger ``kyoukai_h2fast.access``): one line per request
over HTTP/2 and HTTP/1.1 (answered, or cut short), with the body bytes sent and a fine-grained
duration; none by default, and ``--log-config`` sending it to a file."""
from __future__ import annotations

import json
import logging
import os
import re
import socket
import struct
import subprocess
import sys
import time

import httpx
import pytest

from kyoukai_h2fast.server.accesslog import AccessLog
from tests.helpers.h2client import H2Client
from tests.helpers.http1raw import H1Raw, request
from tests.helpers.serverproc import ROOT
from tests.helpers.tools import require_tool

pytestmark = pytest.mark.timeout(120)

LINE = re.compile(r'kyoukai_h2fast\.access: (\S+) - "(\S+) (\S*) (\S+)" (\d+) (\S+) (\S+)$')


def access_lines(server, count: int, timeout: float = 10.0) -> list[tuple]:
    deadline = time.monotonic() + timeout
    while True:
        lines = [m.groups() for m in map(LINE.search, server.log.splitlines()) if m]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines


def test_one_line_per_response_over_http2_and_http11(servers, impl):
    server = servers.fresh(impl=impl, args=["--access-log"])
    with httpx.Client(http1=False, http2=True) as h2, httpx.Client(http1=True, http2=False) as h1:
        h2.get(server.url + "/environ?x=1&y=%20")
        h1.get(server.url + "/bytes/70000")
        h2.post(server.url + "/echo", content=b"a" * 1234)
    with H1Raw(server.port) as c:  # a request the server answers by itself
        c.send(b"GET / HTTP/1.1\r\n\r\n")
        assert c.reply().status == 400
    lines = access_lines(server, 4)
    assert len(lines) == 4, server.log
    env_line, bytes_line, echo_line, bad_line = lines
    assert env_line[1:5] == ("GET", "/environ?x=1&y=%20", "HTTP/2", "200")
    assert re.fullmatch(r"127\.0\.0\.1:\d+", env_line[0])
    assert bytes_line[1:6] == ("GET", "/bytes/70000", "HTTP/1.1", "200", "70000")
    assert echo_line[1:6] == ("POST", "/echo", "HTTP/2", "200", "1234")
    assert bad_line[1:5] == ("GET", "/", "HTTP/1.1", "400")
    for line in lines:
        assert float(line[6]) >= 0


def test_no_access_lines_without_the_flag(servers, impl):
    server = servers.fresh(impl=impl)
    with httpx.Client(http1=True, http2=False) as h1:
        assert h1.get(server.url + "/").status_code == 200
    with httpx.Client(http1=False, http2=True) as h2:
        assert h2.get(server.url + "/").status_code == 200
    assert access_lines(server, 1, timeout=1.0) == []
    assert "kyoukai_h2fast.access" not in server.log


def test_log_config_sends_access_lines_to_a_file(servers, impl, tmp_path):
    logfile = tmp_path / "access.log"
    config = {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(message)s"},
                       "std": {"format": "%(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(logfile),
                     "formatter": "plain"},
            "console": {"class": "logging.StreamHandler", "formatter": "std",
                        "stream": "ext://sys.stderr"}},
        "loggers": {"kyoukai_h2fast.access": {"handlers": ["file"], "level": "INFO",
                                              "propagate": False}},
        "root": {"handlers": ["console"], "level": "INFO"},
    }
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(config))
    server = servers.fresh(impl=impl, args=["--access-log", "--log-config", str(path)])
    with httpx.Client(http1=False, http2=True) as h2:
        assert h2.get(server.url + "/").status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not logfile.read_text():
        time.sleep(0.05)
    assert re.fullmatch(r'127\.0\.0\.1:\d+ - "GET / HTTP/2" 200 13 \d+\.\d{6}\n',
                        logfile.read_text())
    assert "kyoukai_h2fast.access" not in server.log  # not on the console


def test_bad_log_config_is_a_one_line_error_exit_2(tmp_path):
    import subprocess
    import sys

    from tests.helpers.serverproc import ROOT
    bad = tmp_path / "bad.ini"
    bad.write_text("[loggers]\nkeys=nope\n")
    done = subprocess.run([sys.executable, "-m", "kyoukai_h2fast", "--log-config", str(bad)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--log-config" in done.stderr


def test_access_line_escapes_control_characters_and_carries_fields():
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = logging.getLogger("test.access.escape")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(Collect())
    AccessLog(logger).log("1.2.3.4:5", "GET", "/a\nb\x1b", "HTTP/1.1", 200, None, 0.5)
    (record,) = records
    assert record.getMessage() == '1.2.3.4:5 - "GET /a\\x0ab\\x1b HTTP/1.1" 200 - 0.500000'
    assert (record.client, record.status, record.bytes, record.protocol) == \
        ("1.2.3.4:5", 200, None, "HTTP/1.1")


# -- one line per request, whatever the client does after the response (issue 19.6) -------
def test_one_shot_clients_get_exactly_one_line_each(servers, impl):
    """Clients that close their connection right after the response (curl over HTTP/2 and
    HTTP/1.1, httpx over HTTP/2), against a Flask app (whose END_STREAM follows its body in a
    later pull): every request has its line, once. The HTTP/2 lines once went missing when
    the connection closed before the server saw its own END_STREAM go out."""
    curl = require_tool("curl")
    server = servers.fresh("tests.served_apps.basic:flask_app", impl=impl, args=["--access-log"])
    count = 30
    for i in range(count):
        for flag in ("--http2-prior-knowledge", "--http1.1"):
            done = subprocess.run([curl, "-s", "-o", "/dev/null", "-w", "%{http_version}",
                                   flag, f"{server.url}/?{flag[2:7]}-{i}"],
                                  capture_output=True, text=True, timeout=30)
            assert done.stdout == ("2" if "http2" in flag else "1.1"), done
        with httpx.Client(http1=False, http2=True) as c:
            assert c.get(f"{server.url}/?httpx-{i}").status_code == 200
    lines = access_lines(server, 3 * count)
    time.sleep(0.5)  # (a duplicate would come at once)
    lines = access_lines(server, 3 * count)
    targets = sorted(line[2] for line in lines)
    expected = sorted(f"/?{kind}-{i}" for kind in ("http2", "http1", "httpx")
                      for i in range(count))
    assert targets == expected, server.log
    for line in lines:
        protocol = "HTTP/1.1" if "http1" in line[2] else "HTTP/2"
        assert line[3:6] == (protocol, "200", "16"), line


# -- bytes sent and durations (issue 19.7) -------------------------------------------------
STREAM_BYTES = sum(len(b"chunk %d\n" % i) for i in range(20))


def test_bytes_are_the_body_bytes_sent_over_both_protocols(servers, impl):
    """A streamed body without content-length counts its bytes over HTTP/2 as over HTTP/1.1
    (it was ``-``); a body cut short by the app's failure counts what went out before."""
    server = servers.fresh(impl=impl, args=["--access-log"])
    with httpx.Client(http1=False, http2=True) as h2, \
            httpx.Client(http1=True, http2=False) as h1:
        for client in (h2, h1):
            assert len(client.get(server.url + "/stream?20").content) == STREAM_BYTES
            with pytest.raises(httpx.HTTPError):
                client.get(server.url + "/stream-fail")
            assert client.head(server.url + "/bytes/5000").status_code == 200
            assert len(client.get(server.url + "/bytes/100000").content) == 100000
    lines = access_lines(server, 8)
    by_protocol = {"HTTP/2": [], "HTTP/1.1": []}
    for line in lines:
        by_protocol[line[3]].append((line[1], line[2], line[4], line[5]))
    for protocol, got in by_protocol.items():
        assert got == [("GET", "/stream?20", "200", str(STREAM_BYTES)),
                       ("GET", "/stream-fail", "200", "70007"),
                       ("HEAD", "/bytes/5000", "200", "0"),
                       ("GET", "/bytes/100000", "200", "100000")], (protocol, server.log)


def test_durations_are_fine_grained_and_span_the_response(servers, impl):
    """Durations come from a fine clock (the event loop's is milliseconds under uvloop: every
    HTTP/2 duration was a whole number of milliseconds) and run from the request's arrival
    to its response's last byte."""
    server = servers.fresh(impl=impl, args=["--access-log"])
    with httpx.Client(http1=False, http2=True) as h2, \
            httpx.Client(http1=True, http2=False) as h1:
        for client in (h2, h1):
            for _ in range(10):
                assert client.get(server.url + "/").status_code == 200
            assert client.get(server.url + "/slow?0.3").status_code == 200
    lines = access_lines(server, 22)
    assert len(lines) == 22, server.log
    for protocol in ("HTTP/2", "HTTP/1.1"):
        quick = [line[6] for line in lines if line[3] == protocol and line[2] == "/"]
        assert len(quick) == 10
        assert any(not duration.endswith("000") for duration in quick), (protocol, quick)
        (slow,) = [float(line[6]) for line in lines if line[3] == protocol
                   and line[2] == "/slow?0.3"]
        assert 0.3 <= slow < 10, (protocol, slow)


# -- requests that end without a response --------------------------------------------------
def _abort(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0): the server sees the connection lost at once."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_requests_that_end_unanswered_get_one_line_with_499(servers, impl):
    """A stream the client resets, and requests whose connection is lost, before the app
    answered: one line each, status 499 (nginx's "client closed request"), 0 bytes."""
    server = servers.fresh(impl=impl, args=["--access-log"])
    c = H2Client("127.0.0.1", server.port)
    # (/slow?S sleeps S seconds: the three requests are told apart by how S is written)
    reset = c.request("/slow?1.0")
    c.request("/slow?1.00")
    time.sleep(0.3)  # the app runs
    c.conn.reset_stream(reset)
    c.flush()
    time.sleep(0.2)
    _abort(c.sock)
    h1 = H1Raw(server.port)
    h1.send(request("GET", "/slow?1.000"))
    time.sleep(0.3)
    _abort(h1.sock)
    lines = access_lines(server, 3)
    time.sleep(1.5)  # the apps finish: no second line
    lines = access_lines(server, 3)
    assert sorted((line[2], line[3], line[4], line[5]) for line in lines) == [
        ("/slow?1.0", "HTTP/2", "499", "0"),        # reset by the client
        ("/slow?1.00", "HTTP/2", "499", "0"),       # its connection lost
        ("/slow?1.000", "HTTP/1.1", "499", "0")], server.log


# -- the access log does not depend on --log-level (issue 19.10) ---------------------------
def test_access_log_is_written_whatever_the_log_level(impl):
    """``--access-log --log-level warning``: the server's INFO lines are left out, the access
    lines are not (they printed nothing, and nothing said why)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("KYOUKAI_H2FAST_NO_EXTENSIONS", None)
    if impl == "pure":
        env["KYOUKAI_H2FAST_NO_EXTENSIONS"] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "kyoukai_h2fast",
                             "tests.served_apps.basic:wsgi_app",
                             "--host", "127.0.0.1", "--port", str(port), "--access-log",
                             "--log-level", "warning"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # (no "serving" line at this level: wait for an answer)
            try:
                httpx.get(url + "/?ready", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        with httpx.Client(http1=False, http2=True) as h2, \
                httpx.Client(http1=True, http2=False) as h1:
            assert h2.get(url + "/?over-h2").status_code == 200
            assert h1.get(url + "/?over-h1").status_code == 200
        time.sleep(0.5)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    lines = [m.groups() for m in map(LINE.search, output.splitlines()) if m]
    assert [line[2:6] for line in lines if "over" in line[2]] == [
        ("/?over-h2", "HTTP/2", "200", "13"), ("/?over-h1", "HTTP/1.1", "200", "13")], output
    assert " INFO kyoukai_h2fast: " not in output  # the server's own level still applies
