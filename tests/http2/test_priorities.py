"""RFC 9218 priorities end to end: the real server, a real HTTP/2 client (the raw ``h2`` client,
which lets the test hold the connection window shut), both builds, WSGI apps inline and in the
thread pool, and a Kyoukai-style app.

The scene a browser meets: a 64 MiB download at ``u=7`` has used up the connection window; a
``u=0`` request (the page's CSS, say) arrives and gets its response headers at once; when the
client opens the connection window by 1 MiB, the urgent body goes out before any more of the
download's bytes. The download's priority may also come from a PRIORITY_UPDATE frame (a tab
reprioritizing, §7.1) or the urgent response's own ``priority`` field (§8). Without any signal
the two responses share the window frame by frame. The order of the DATA frames on the wire
decides every verdict, never timing.
"""
from __future__ import annotations

import subprocess

import pytest
from h2.settings import SettingCodes
from hyperframe.frame import DataFrame

from tests.helpers.h2client import H2Client, raw_frame
from tests.helpers.tools import require_tool

pytestmark = pytest.mark.timeout(120)

WSGI = "tests.served_apps.priority:wsgi_app"
KYOUKAI = "tests.served_apps.priority:kyoukai_app"
MODES = {"inline": ["--wsgi-threads", "0"], "threads": []}
URGENT_SIZE = 100_000
OPENED = 1 << 20


@pytest.fixture(params=list(MODES), ids=list(MODES))
def wsgi_server(request, servers, impl):
    return servers.get(WSGI, impl, args=MODES[request.param])


def _client(server) -> H2Client:
    """Stream windows of 1 GiB, the connection window left at 65,535 and never reopened but
    by the test (``auto_ack`` off)."""
    return H2Client("127.0.0.1", server.port, timeout=30, auto_ack=False,
                    settings={SettingCodes.INITIAL_WINDOW_SIZE: 1 << 30})


def _stalled_download(c: H2Client, priority: str | None) -> int:
    """Start the 64 MiB download and wait until it has used up the connection window."""
    sid = c.request("/download?mib=64",
                    headers=[("priority", priority)] if priority is not None else [])
    c.wait_for(lambda ev: len(c.body(sid)) >= 65_535)
    assert len(c.body(sid)) == 65_535
    return sid


def _second_response(c: H2Client, path: str, priority: str | None) -> int:
    """Request ``path``; wait for its response headers (sent although the window is shut)."""
    sid = c.request(f"{path}?size={URGENT_SIZE}",
                    headers=[("priority", priority)] if priority is not None else [])
    c.wait_for(lambda ev: c.headers(sid))
    assert c.headers(sid)[":status"] == "200" and c.body(sid) == b""
    return sid


def _open_window(c: H2Client, download: int, other: int) -> list:
    """Open the connection window by 1 MiB; the stream ids of the DATA frames it let through,
    in wire order, once all of it arrived."""
    mark = len(c.frames)
    c.conn.increment_flow_control_window(OPENED)
    c.flush()

    def arrived(ev) -> bool:
        return sum(len(f.data) for f in c.frames[mark:] if isinstance(f, DataFrame)) >= OPENED

    c.wait_for(arrived)
    frames = [f for f in c.frames[mark:] if isinstance(f, DataFrame)]
    assert {f.stream_id for f in frames} == {download, other}
    assert sum(len(f.data) for f in frames) == OPENED        # no byte beyond the window
    assert sum(len(f.data) for f in frames if f.stream_id == other) == URGENT_SIZE
    return [f.stream_id for f in frames]


def _fold(sids: list) -> list:
    runs = []
    for sid in sids:
        if not runs or runs[-1] != sid:
            runs.append(sid)
    return runs


def test_urgent_response_overtakes_a_stalled_download_rfc9218_10(wsgi_server):
    with _client(wsgi_server) as c:
        download = _stalled_download(c, "u=7")
        urgent = _second_response(c, "/small", "u=0")
        assert _fold(_open_window(c, download, urgent)) == [urgent, download]
        assert c.stream_ended(urgent) and not c.stream_ended(download)


def test_priority_update_sends_the_download_to_the_background_rfc9218_7_1(wsgi_server):
    """The download asked for u=0; a PRIORITY_UPDATE moves it to u=7, below a u=1 request."""
    with _client(wsgi_server) as c:
        download = _stalled_download(c, "u=0")
        c.send_raw(raw_frame(0x10, 0, 0, download.to_bytes(4, "big") + b"u=7"))
        urgent = _second_response(c, "/small", "u=1")
        assert _fold(_open_window(c, download, urgent)) == [urgent, download]


def test_without_the_update_the_u0_download_keeps_going_first(wsgi_server):
    """The same scene without the PRIORITY_UPDATE: what the download has queued goes before
    the u=1 response (the previous test's verdict is the frame's doing)."""
    with _client(wsgi_server) as c:
        download = _stalled_download(c, "u=0")
        urgent = _second_response(c, "/small", "u=1")
        assert _open_window(c, download, urgent)[0] == download


def test_without_signals_both_share_the_window_frame_by_frame(wsgi_server):
    """Equal priority (no signal at all: urgency 3, shared) falls back to fair sharing."""
    with _client(wsgi_server) as c:
        download = _stalled_download(c, None)
        other = _second_response(c, "/small", None)
        runs = _fold(_open_window(c, download, other))
        assert runs[:4] == [download, other, download, other]


@pytest.mark.parametrize("app,args", [(WSGI, MODES["inline"]), (WSGI, MODES["threads"]),
                                      (KYOUKAI, [])], ids=["wsgi-inline", "wsgi-threads",
                                                           "kyoukai"])
def test_the_response_priority_field_is_honoured_rfc9218_8(servers, impl, app, args):
    """Neither request signals anything; the app answers one with ``priority: u=0``."""
    server = servers.get(app, impl, args=args)
    with _client(server) as c:
        download = _stalled_download(c, None)
        urgent = _second_response(c, "/urgent-by-server", None)
        assert c.headers(urgent)["priority"] == "u=0"          # sent on to the client too
        assert _fold(_open_window(c, download, urgent)) == [urgent, download]


@pytest.mark.parametrize("app", [WSGI, KYOUKAI], ids=["wsgi", "kyoukai"])
@pytest.mark.parametrize("field,expected", [
    (None, "3 True"), ("u=2, i", "2 True"), ("u=0", "0 False"), ("u=9", "3 False"),
    ("u=1,", "3 True")])
def test_apps_see_the_request_priority_in_the_environ(servers, impl, app, field, expected):
    curl = require_tool("curl")
    server = servers.get(app, impl)
    command = [curl, "-sS", "--http2-prior-knowledge", server.url + "/priority"]
    if field is not None:
        command[1:1] = ["-H", f"priority: {field}"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == expected
