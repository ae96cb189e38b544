"""``--workers 2`` spreads a burst of connections over both workers: on Linux each worker
has a listening socket of its own (``SO_REUSEPORT``; the kernel hashes every new connection
to one of them). 40 connections opened at once, HTTP/2 and HTTP/1.1, to an app answering its
pid: both workers answer. Real server, real clients, both builds."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from kyoukai_h2fast.server.listener import reuse_port_available
from tests.helpers.builds import server_impls
from tests.helpers.bursts import burst_h2, burst_http11
from tests.helpers.serverproc import ROOT, ServerProcess

pytestmark = pytest.mark.timeout(120)

APP = "tests.served_apps.pid:app"
BURST = 40
STARTED = re.compile(r"supervisor: worker (\d+) started \(pid (\d+)\)")


def start(impl: str, *args: str) -> ServerProcess:
    """``--workers 2``, once both workers serve."""
    server = ServerProcess(APP, impl, args=["--workers", "2", "--wsgi-threads", "0", *args])
    deadline = time.monotonic() + 30
    while server.log.count(" serving wsgi app on ") < 2:
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"two workers did not serve:\n{server.log}")
        time.sleep(0.05)
    return server


@pytest.fixture(scope="module", params=server_impls())
def spread_server(request):
    server = start(request.param)
    yield server
    server.stop()


def workers(server: ServerProcess) -> set[int]:
    return {int(m.group(2)) for m in STARTED.finditer(server.log)}


@pytest.mark.skipif(not reuse_port_available(), reason="SO_REUSEPORT balances on Linux only")
@pytest.mark.parametrize("burst", [burst_h2, burst_http11], ids=["h2", "http1.1"])
def test_a_burst_of_40_connections_is_served_by_both_workers(spread_server, burst):
    assert "a SO_REUSEPORT socket each" in spread_server.log
    pids = burst(spread_server.port, BURST)
    assert len(pids) == BURST
    assert set(pids) == workers(spread_server), (sorted(pids), spread_server.log)
    # neither worker took (nearly) everything: the kernel's hash is close to even
    assert min(pids.count(pid) for pid in set(pids)) >= 5, sorted(pids)


def test_no_reuse_port_shares_one_socket_and_still_serves(impl):
    server = start(impl, "--no-reuse-port")
    try:
        assert "one shared socket" in server.log
        pids = burst_h2(server.port)
        assert set(pids) <= workers(server) and len(pids) == BURST
    finally:
        server.stop()


def test_a_second_server_on_the_same_port_is_refused_not_joined(spread_server):
    """SO_REUSEPORT would let a second server started by mistake on the port share its
    connections: the supervisor's probe bind refuses it (one line, exit 2)."""
    proc = subprocess.run([sys.executable, "-m", "kyoukai_h2fast", APP, "--port",
                           str(spread_server.port), "--workers", "2"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot listen on 127.0.0.1:" in lines[0] \
        and "in use" in lines[0], proc.stderr


def test_reuse_port_sockets_are_one_per_worker_in_the_supervisor(spread_server):
    """The supervisor holds both sockets (a replacement worker takes its slot's over);
    each worker holds only its own."""
    supervisor = spread_server.pid
    mine = _listening_inodes(supervisor)
    assert len(mine) == 2
    for pid in workers(spread_server):
        held = _listening_inodes(pid)
        assert len(held) == 1 and held <= mine


def _listening_inodes(pid: int) -> set[str]:
    """The inodes of the listening TCP sockets process ``pid`` holds."""
    listening = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                listening.add(fields[9])
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inode = target[8:-1]
            if inode in listening:
                held.add(inode)
    return held



def test_after_a_sighup_reload_the_new_workers_spread_the_load_too(impl):
    """The new generation takes over the supervisor's per-worker sockets: still two, and a
    burst reaches both new workers."""
    server = start(impl)
    try:
        first = workers(server)
        server.signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while "reload done: the previous workers stopped" not in server.log:
            assert time.monotonic() < deadline, server.log
            time.sleep(0.05)
        new = workers(server) - first
        assert len(new) == 2
        assert len(_listening_inodes(server.pid)) == 2
        pids = burst_h2(server.port)
        assert set(pids) == new, (sorted(pids), new)
    finally:
        server.stop()
