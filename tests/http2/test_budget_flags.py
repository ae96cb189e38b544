"""The flood budgets and fairness limits from the command line to the wire (issue 9).

Each budget has a ``ServerConfig`` field and a flag; a bad value is a one-line error with exit
code 2; a flag given to the real server is the budget its connections get (both builds), and
the default server lets a well-behaved client far below the defaults alone.
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from kyoukai_h2fast.config import ServerConfig
from kyoukai_h2fast.process.cli import _config_from, build_parser
from tests.helpers.attack_clients import PREFACE, Conn, frame, headers, request_block, settings
from tests.helpers.h2client import H2Client

PING = 6
ENHANCE_YOUR_CALM = 0xB

FLAGS = {
    "--max-resets-per-10s": ("max_resets_per_10s", "50", 50),
    "--max-pings-per-10s": ("max_pings_per_10s", "7", 7),
    "--max-settings-per-10s": ("max_settings_per_10s", "3", 3),
    "--max-empty-frames-per-10s": ("max_empty_frames_per_10s", "20", 20),
    "--max-queued-control-frames": ("max_queued_control_frames", "30", 30),
    "--max-frames-per-read": ("max_frames_per_read", "8", 8),
    "--max-queued-output": ("max_queued_output", "2M", 2 * 1024 * 1024),
}


@pytest.mark.parametrize("flag", list(FLAGS))
def test_each_budget_has_a_flag(flag):
    field, text, value = FLAGS[flag]
    config = _config_from(build_parser().parse_args([flag, text]))
    assert getattr(config, field) == value
    assert getattr(ServerConfig(), field) == build_parser().get_default(field)


@pytest.mark.parametrize("flag", list(FLAGS))
def test_a_bad_budget_is_one_line_exit_2(flag):
    out = subprocess.run([sys.executable, "-m", "kyoukai_h2fast", flag, "0"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and flag[2:] in lines[0], out.stderr


def _pings(port: int, count: int) -> Conn:
    conn = Conn(port)
    conn.sock.setblocking(True)
    conn.sock.settimeout(10)
    conn.sock.sendall(PREFACE + settings() + frame(PING, 0, 0, b"12345678") * count)
    conn.sock.setblocking(False)
    deadline = time.monotonic() + 2      # (the server answers within milliseconds)
    while not conn.closed and time.monotonic() < deadline:
        conn.drain(0.2)
    return conn


def test_a_budget_flag_is_what_the_server_enforces(servers, impl):
    server = servers.get(impl=impl, args=("--max-pings-per-10s", "5"))
    calm = _pings(server.port, 6)
    assert calm.goaway == ENHANCE_YOUR_CALM and calm.closed
    calm.finish(0)
    fine = _pings(server.port, 5)
    assert fine.goaway is None and not fine.closed
    fine.finish(0)


def test_a_well_behaved_client_stays_far_below_the_default_budgets(servers, impl):
    """Requests, pings and settings at a browser's pace: served, never a GOAWAY."""
    server = servers.get(impl=impl)
    conn = Conn(server.port)
    deadline = 1e12
    conn.send(PREFACE + settings(window=1 << 20), deadline)
    block = request_block()
    for i in range(300):
        sid = 2 * i + 1
        extra = frame(PING, 0, 0, b"%08d" % i) if i % 10 == 0 else b""
        extra += settings(window=1 << 20) if i % 50 == 0 else b""
        conn.send(headers(sid, block) + extra, deadline)
        conn.drain(0.01)
    conn.drain(1.0, 1.0)
    assert conn.goaway is None and not conn.closed
    assert conn.received > 300 * 13
    conn.finish(0)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5):
        pass


# -- the output budget: an app's generator is not pulled for a peer that reads nothing ----------
def _pulled(server) -> int:
    with H2Client("127.0.0.1", server.port) as client:
        return int(client.get("/pulled")[1])


@pytest.mark.parametrize("budget", [256 * 1024, 1024 * 1024])
def test_streaming_responses_are_pulled_up_to_the_connection_output_budget(servers, impl,
                                                                           budget):
    """30 streaming responses (1 KiB chunks) to a peer whose windows are 0: each stream would
    be pulled 64 KiB ahead (1.9 MiB); the connection's queued output stops at
    ``--max-queued-output`` (plus a chunk per stream), and the rest waits."""
    server = servers.get("tests.served_apps.attack:app", impl=impl,
                         args=("--max-queued-output", str(budget)))
    before = _pulled(server)
    conn = Conn(server.port)
    block = request_block(b"/chunks/100000")
    conn.send(PREFACE + settings(window=0)
              + b"".join(headers(2 * i + 1, block) for i in range(30)), 1e12)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        conn.drain(0.1)
    pulled = _pulled(server) - before
    assert not conn.closed and conn.goaway is None
    conn.finish(0)
    assert budget // 1024 <= pulled <= budget // 1024 + 2 * 30, pulled
