"""Arbitrary input from the wire (issue 14), bounded: a seeded fuzz-like run against the real
server.

``tests/helpers/wirefuzz.py`` replays a pool of seeded wire inputs (mutated h2 captures, hand-built
and mutated HPACK blocks, every frame type with random flags, ids, lengths, padding and windows)
from several threads for ~16 s, while a legitimate httpx HTTP/2 client sends ``GET /`` every 20 ms
on its own connection. The server (default thread-pool WSGI app, asyncio loop: what every install
has) must survive, answer every legitimate check, keep its RSS bounded after warm-up, and log no
traceback but the app's own (RFC 9113 §5.4: errors are protocol outcomes, not crashes). The 90 s
version with figures: ``python -m tests.helpers.wirefuzz --seconds 90 --impl compiled``.
"""
from __future__ import annotations

import pytest

from tests.helpers import wirefuzz

pytestmark = pytest.mark.timeout(180)

SECONDS = 16.0
WARMUP = 5.0
RSS_GROWTH_LIMIT_MIB = 8.0      # after warm-up; a leak of 3 KB per connection would exceed it


@pytest.fixture
def report(servers, impl):
    server = servers.fresh(impl=impl, args=("--loop", "asyncio"))
    try:
        yield wirefuzz.run(server, SECONDS, seed=14, pool=400, workers=6, warmup=WARMUP)
    finally:
        server.stop()


def test_fuzzed_server_survives_answers_every_client_and_logs_no_server_traceback(report):
    growth_mib = report.rss_growth_after_plateau_kib / 1024
    checks = {  # every criterion is checked, so a failure names all that failed
        "the fuzzer made at least 300 connections": report.connections >= 300,
        "the server is alive": report.server_alive,
        "at least 100 legitimate checks were answered": report.checks_ok >= 100,
        "no legitimate check failed": report.checks_failed == 0,
        "no traceback in the log but the app's own": not report.findings["server_tracebacks"],
        f"RSS grew < {RSS_GROWTH_LIMIT_MIB} MiB after warm-up": growth_mib < RSS_GROWTH_LIMIT_MIB,
    }
    failed = [name for name, ok in checks.items() if not ok]
    assert not failed, "NOT MET: " + "; ".join(failed) + "\n" + report.summary()


def test_log_findings_tells_app_tracebacks_from_server_ones():
    log = [
        "2026-01-01 00:00:00,000 ERROR kyoukai_h2fast: app raised while handling stream 1\n",
        "Traceback (most recent call last):\n",
        '  File "/x/kyoukai_h2fast/apps/runners.py", line 1, in run\n',
        '  File "/x/tests/served_apps/basic.py", line 2, in wsgi_app\n',
        "RuntimeError: app failure\n",
        "2026-01-01 00:00:01,000 ERROR kyoukai_h2fast: app raised while handling stream 3\n",
        "Traceback (most recent call last):\n",
        '  File "/x/tests/served_apps/basic.py", line 3, in wsgi_app\n',
        '  File "/x/kyoukai_h2fast/wsgi/request_state.py", line 4, in read\n',
        "ConnectionResetError: stream 3 was reset\n",
        "2026-01-01 00:00:02,000 INFO kyoukai_h2fast: fine\n",
    ]
    findings = wirefuzz.log_findings(log)
    assert len(findings["error_lines"]) == 2
    assert [t["exception"] for t in findings["app_tracebacks"]] == ["RuntimeError: app failure"]
    assert [t["exception"] for t in findings["server_tracebacks"]] == [
        "ConnectionResetError: stream 3 was reset"]
    assert findings["server_tracebacks"][0]["log"].endswith("handling stream 3")


def test_scripts_are_reproducible_bounded_and_varied():
    scripts = [wirefuzz.make_script(5, i) for i in range(300)]
    assert [s.chunks for s in scripts[:20]] == [wirefuzz.make_script(5, i).chunks
                                                for i in range(20)]
    assert all(0 < s.size <= wirefuzz.MAX_SCRIPT_BYTES for s in scripts)
    types = set()
    for s in scripts:
        data = b"".join(c for _, c in s.chunks)
        if data.startswith(wirefuzz.PREFACE):
            position = len(wirefuzz.PREFACE)
            while position + 9 <= len(data):
                types.add(data[position + 3])
                position += 9 + int.from_bytes(data[position:position + 3], "big")
    assert set(range(11)) | {wirefuzz.ORIGIN} <= types     # every frame type, and extensions
    assert any(t > wirefuzz.ORIGIN for t in types)
    assert {s.ending for s in scripts} == {"fin", "rst", "drain", "hold"}


def test_loopback_only():
    with pytest.raises(SystemExit):
        wirefuzz._check_loopback("192.0.2.1")
    wirefuzz._check_loopback("127.0.0.1")
