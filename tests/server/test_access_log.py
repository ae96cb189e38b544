"""The access log (``--access-log``, logger ``kyoukai_h2fast.access``): one line per response
over HTTP/2 and HTTP/1.1, none by default, and ``--log-config`` sending it to a file."""
from __future__ import annotations

import json
import logging
import re
import time

import httpx
import pytest

from kyoukai_h2fast.server.accesslog import AccessLog
from tests.helpers.http1raw import H1Raw

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
