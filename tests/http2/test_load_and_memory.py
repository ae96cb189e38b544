"""Load with h2load (no failed request) and memory over a long connection (closed streams are
freed: RSS stays flat over 100k requests on one connection)."""
from __future__ import annotations

import re
import subprocess

import pytest

from tests.helpers.tools import require_tool

pytestmark = pytest.mark.timeout(300)


def h2load(*args, timeout=240) -> dict:
    tool = require_tool("h2load")
    out = subprocess.run([tool, *args], capture_output=True, text=True, timeout=timeout)
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", out.stdout)
    assert m, out.stdout + out.stderr
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out.stdout)
    keys = ("total", "started", "done", "succeeded", "failed", "errored", "timeout")
    result = dict(zip(keys, map(int, m.groups()), strict=True))
    result["2xx"] = int(codes.group(1))
    result["output"] = out.stdout
    return result


@pytest.mark.parametrize("app", ["tests.served_apps.basic:wsgi_app",
                                 "tests.served_apps.basic:kyoukai_app"], ids=["wsgi", "kyoukai"])
def test_h2load_5000_requests_4_connections_100_streams_no_failure(servers, impl, app):
    server = servers.get(app=app, impl=impl)
    r = h2load("-n", "5000", "-c", "4", "-m", "100", server.url + "/")
    assert (r["succeeded"], r["failed"], r["errored"], r["2xx"]) == (5000, 0, 0, 5000), r["output"]


def test_h2load_over_tls(servers, impl):
    server = servers.get(impl=impl, tls=True)
    r = h2load("-n", "2000", "-c", "4", "-m", "50", server.url + "/")
    assert (r["succeeded"], r["failed"], r["2xx"]) == (2000, 0, 2000), r["output"]
    assert "TLS Protocol" in r["output"] and "Application protocol: h2" in r["output"]


def test_h2load_uploads_with_bodies(servers, impl, tmp_path):
    body = tmp_path / "body.bin"
    body.write_bytes(b"u" * 100_000)
    server = servers.get(impl=impl)
    r = h2load("-n", "400", "-c", "2", "-m", "20", "-d", str(body), server.url + "/sha256")
    assert (r["succeeded"], r["failed"], r["2xx"]) == (400, 0, 400), r["output"]


def test_rss_stays_flat_over_100k_requests_on_one_connection(servers, impl):
    server = servers.fresh(impl=impl, args=("--wsgi-threads", "0"))
    warm = h2load("-n", "2000", "-c", "1", "-m", "10", server.url + "/")
    assert warm["succeeded"] == 2000
    before = server.rss_kib()
    r = h2load("-n", "100000", "-c", "1", "-m", "10", server.url + "/")
    after = server.rss_kib()
    assert (r["succeeded"], r["failed"]) == (100000, 0), r["output"]
    grown_mib = (after - before) / 1024
    assert grown_mib < 20, \
        f"RSS grew {grown_mib:.1f} MiB over 100k requests ({before} -> {after} KiB)"
