"""Flow control against the real server (RFC 9113 §5.2, §6.9), with a raw h2 client.

Receiving: uploads larger than every window arrive intact (the server acknowledges consumed
DATA), and the server stops acknowledging while the app reads nothing (its buffer is bounded by
``--stream-window``). Sending: the server honours our SETTINGS_INITIAL_WINDOW_SIZE (0 and 1),
stream- and connection-level WINDOW_UPDATE, our SETTINGS_MAX_FRAME_SIZE, and treats a window
overflow as FLOW_CONTROL_ERROR.
"""
from __future__ import annotations

import hashlib
import os
import time
import uuid

import pytest
from h2.settings import SettingCodes
from hyperframe.frame import WindowUpdateFrame

from tests.helpers.h2client import H2Client

pytestmark = pytest.mark.timeout(120)

FLOW_CONTROL_ERROR = 0x3
MAX_WINDOW = 2**31 - 1
PATTERN = bytes(range(256)) * 256  # what /bytes/N serves, repeated


def expected_bytes(n: int) -> bytes:
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


def connect(server, tls_files=None, **kw) -> H2Client:
    ca = tls_files[2] if server.url.startswith("https") else None
    return H2Client("127.0.0.1", server.port, tls_ca=ca, **kw)


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def digest_line(data: bytes) -> bytes:
    return f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode()


# -- receiving: the server's windows --------------------------------------------------------------
@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "tls"])
def test_upload_larger_than_all_windows_arrives_intact_5_2(servers, impl, tls, tls_files):
    """An 8 MiB upload needs the server to reopen its 1 MiB stream window many times (§5.2.1:
    the receiver sends WINDOW_UPDATE as it consumes); every byte arrives in order."""
    server = servers.get(impl=impl, tls=tls)
    payload = os.urandom(8 * 1024 * 1024)
    with connect(server, tls_files) as c:
        sid = c.request("/sha256", "POST", body=payload)
        headers, body = c.response(sid, timeout=60)
        assert headers[":status"] == "200"
        assert body == digest_line(payload)
        # The server did reopen the windows: without WINDOW_UPDATEs on the stream and the
        # connection, no more than the initial windows could have been sent.
        assert c.window_updates(sid) > 0
        assert c.window_updates(0) > 0


def test_server_stops_acknowledging_while_the_app_reads_nothing_5_2(servers, impl):
    """While the app has not consumed the body, the server grants no more than its
    SETTINGS_INITIAL_WINDOW_SIZE (``--stream-window``): the window we see stops at 0 and no
    WINDOW_UPDATE comes for the stream, so the server's buffer is bounded. Once the app reads,
    the windows reopen and the whole body arrives."""
    stream_window = 131_072
    server = servers.get("tests.served_apps.protocol:wsgi_app", impl=impl,
                         args=["--stream-window", str(stream_window)])
    key = uuid.uuid4().hex
    payload = os.urandom(1024 * 1024)
    with connect(server) as c, connect(server) as control:
        c.wait_for(lambda ev: c.settings_acks() and c.conn.remote_settings.initial_window_size
                   == stream_window)
        connection_window_before = c.conn.outbound_flow_control_window
        sid = c.request(f"/hold?{key}", "POST", end_stream=False)
        sent = c.send_window_available(sid, payload)
        assert sent == stream_window
        # Wait until the app is holding (it has started and reads nothing), then give the
        # server every chance to send a WINDOW_UPDATE it must not send.
        wait_until(lambda: control.get("/held")[1] != b"0")
        c.read_for(0.5)
        assert c.window_updates(sid) == 0
        assert c.conn.local_flow_control_window(sid) == 0
        assert c.conn.outbound_flow_control_window == connection_window_before - sent
        assert not c.goaway_frames()

        assert control.get(f"/release?{key}")[1] == b"released"
        c.send_body(sid, payload[sent:])
        headers, body = c.response(sid, timeout=60)
        assert headers[":status"] == "200"
        assert body == digest_line(payload)
        assert c.window_updates(sid) > 0


# -- sending: our windows -------------------------------------------------------------------------
def test_initial_window_zero_gives_headers_but_no_data_until_window_update_6_9_2(servers, impl):
    """With SETTINGS_INITIAL_WINDOW_SIZE=0 the server may send HEADERS (not flow controlled,
    §6.9) but no DATA until we open the stream window."""
    server = servers.get(impl=impl)
    with connect(server, settings={SettingCodes.INITIAL_WINDOW_SIZE: 0},
                 auto_ack=False) as c:
        sid = c.request("/bytes/5000")
        c.wait_for(lambda ev: c.headers(sid))
        assert c.headers(sid)[":status"] == "200"
        c.read_for(0.5)
        assert c.data_frames(sid) == []
        assert not c.stream_ended(sid)

        c.conn.increment_flow_control_window(5000, stream_id=sid)
        c.flush()
        headers, body = c.response(sid)
        assert body == expected_bytes(5000)


def test_window_of_one_byte_sends_one_byte_per_window_update_6_9_1(servers, impl):
    """With a stream window of 1 the server sends DATA frames of exactly one byte, one per
    WINDOW_UPDATE, and the body is complete and in order."""
    n = 300
    server = servers.get(impl=impl)
    with connect(server, settings={SettingCodes.INITIAL_WINDOW_SIZE: 1},
                 auto_ack=False) as c:
        sid = c.request(f"/bytes/{n}")
        received = 0
        while received < n:
            c.wait_for(lambda ev, received=received:
                       sum(len(f.data) for f in c.data_frames(sid)) > received)
            sizes = [len(f.data) for f in c.data_frames(sid)]
            assert all(size <= 1 for size in sizes), sizes
            assert sum(sizes) == received + 1  # exactly one byte per window of 1
            received += 1
            if received < n:
                c.conn.increment_flow_control_window(1, stream_id=sid)
                c.flush()
        c.wait_for(lambda ev: c.stream_ended(sid))
        assert c.body(sid) == expected_bytes(n)
        assert max(f.flow_controlled_length for f in c.data_frames(sid)) <= 1


def test_connection_window_update_resumes_all_blocked_streams_6_9_1(servers, impl):
    """Three responses share the 65,535-byte connection window (SETTINGS cannot change it,
    §6.9.2): the server sends exactly that much, then waits; one connection-level
    WINDOW_UPDATE lets every stream finish."""
    n = 100_000
    server = servers.get(impl=impl)
    with connect(server, settings={SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20},
                 auto_ack=False) as c:
        sids = [c.request(f"/bytes/{n}") for _ in range(3)]

        def total():
            return sum(len(f.data) for f in c.data_frames())

        c.wait_for(lambda ev: total() >= 65_535, timeout=30)
        c.read_for(0.5)
        assert total() == 65_535
        assert not any(c.stream_ended(sid) for sid in sids)

        c.conn.increment_flow_control_window(3 * n)
        c.flush()
        c.wait_for(lambda ev: all(c.stream_ended(sid) for sid in sids), timeout=30)
        for sid in sids:
            assert c.headers(sid)[":status"] == "200"
            assert c.body(sid) == expected_bytes(n)


@pytest.mark.parametrize("max_frame_size", [16_384, 40_000, 1 << 20])
def test_server_respects_our_max_frame_size_4_2(servers, impl, max_frame_size):
    """No frame the server sends exceeds our SETTINGS_MAX_FRAME_SIZE (§4.2), and it uses the
    room we give: DATA frames larger than 16,384 bytes when we allow them."""
    n = 1 << 20
    server = servers.get(impl=impl)
    settings = {SettingCodes.MAX_FRAME_SIZE: max_frame_size,
                SettingCodes.INITIAL_WINDOW_SIZE: MAX_WINDOW}
    with connect(server, settings=settings) as c:
        c.conn.increment_flow_control_window(MAX_WINDOW - 65_535)
        c.flush()
        sid = c.request(f"/bytes/{n}")
        c.wait_for(lambda ev: c.stream_ended(sid), timeout=30)
        assert c.body(sid) == expected_bytes(n)
        assert c.max_frame_length_seen <= max_frame_size
        largest = max(len(f.data) for f in c.data_frames(sid))
        # /bytes serves 64 KiB chunks: the server fills frames up to min(setting, chunk).
        assert largest == min(max_frame_size, 65_536)


def test_window_update_overflowing_connection_window_is_flow_control_error_6_9_1(
        servers, impl):
    """A connection WINDOW_UPDATE taking the server's send window above 2^31-1 is a
    connection error FLOW_CONTROL_ERROR (§6.9.1)."""
    server = servers.get(impl=impl)
    with connect(server) as c:
        c.wait_for(lambda ev: c.settings_acks())
        c.send_frame(WindowUpdateFrame(0, window_increment=MAX_WINDOW))
        goaway = c.wait_for_goaway()
        assert goaway.error_code == FLOW_CONTROL_ERROR
        c.wait_closed()
    with connect(server) as c:  # the server goes on
        assert c.get("/")[1] == b"Hello, world!"


def test_window_update_overflowing_stream_window_is_stream_flow_control_error_6_9_1(
        servers, impl):
    """A stream WINDOW_UPDATE overflowing that stream's send window is a stream error:
    RST_STREAM(FLOW_CONTROL_ERROR) on that stream only; the connection goes on."""
    server = servers.get(impl=impl)
    with connect(server) as c:
        sid = c.request("/slow?1")
        c.send_frame(WindowUpdateFrame(sid, window_increment=MAX_WINDOW))
        c.wait_for(lambda ev: c.rst_codes(sid) or c.stream_ended(sid))
        assert c.rst_codes(sid) == [FLOW_CONTROL_ERROR]
        assert c.get("/")[1] == b"Hello, world!"
        c.read_for(1.5)  # the slow app finishes on the reset stream: nothing is sent for it
        assert c.headers_frames(sid) == []
        assert not c.goaway_frames()
        assert c.get("/")[1] == b"Hello, world!"


def test_settings_initial_window_change_adjusts_open_streams_even_below_zero_6_9_2(
        servers, impl):
    """A new SETTINGS_INITIAL_WINDOW_SIZE changes the window of streams already open by the
    difference (§6.9.2), and a window may go negative: the server then sends nothing until
    WINDOW_UPDATEs bring it above zero, and exactly what they allow."""
    n = 200_000
    server = servers.get(impl=impl)
    with connect(server, settings={SettingCodes.INITIAL_WINDOW_SIZE: 16_384},
                 auto_ack=False) as c:
        c.conn.increment_flow_control_window(1 << 20)  # the connection is never the limit
        sid = c.request(f"/bytes/{n}")

        def received():
            return sum(len(f.data) for f in c.data_frames(sid))

        c.wait_for(lambda ev: received() >= 16_384)
        c.read_for(0.5)
        assert received() == 16_384
        c.conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 65_535})  # +49,151
        c.flush()
        c.wait_for(lambda ev: received() >= 65_535)
        c.read_for(0.5)
        assert received() == 65_535
        c.conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 16_384})  # window -49,151
        c.flush()
        c.wait_for(lambda ev: c.settings_acks() >= 3)
        c.conn.increment_flow_control_window(49_151, stream_id=sid)  # back to 0
        c.flush()
        c.read_for(0.5)
        assert received() == 65_535
        c.conn.increment_flow_control_window(1000, stream_id=sid)
        c.flush()
        c.wait_for(lambda ev: received() >= 66_535)
        c.read_for(0.5)
        assert received() == 66_535
        assert b"".join(f.data for f in c.data_frames(sid)) == expected_bytes(66_535)
        assert c.h2_error is None  # the server never exceeded the (negative) window
        assert not c.goaway_frames() and c.rst_codes(sid) == []


def test_padding_counts_against_windows_and_is_credited_back_6_1(servers, impl):
    """Padding is flow controlled (§6.1): the server must reopen its windows for it too, so
    a body sent as 1,000 DATA frames of 1 byte + 255 bytes of padding (257 KB of window) gets
    through 64 KB windows, and the app sees only the 1,000 data bytes."""
    server = servers.get(impl=impl, args=["--stream-window", "65535",
                                          "--connection-window", "65535"])
    body = os.urandom(1000)
    with connect(server) as c:
        sid = c.request("/sha256", "POST", end_stream=False)
        for i in range(len(body)):
            c.wait_for(lambda ev: c.stream_reset(sid) is not None
                       or min(c.conn.local_flow_control_window(sid),
                              c.conn.outbound_flow_control_window) >= 257)
            c.conn.send_data(sid, body[i:i + 1], end_stream=i == len(body) - 1,
                             pad_length=255)
            c.flush()
        headers, got = c.response(sid, timeout=30)
        assert got == digest_line(body)


def test_connection_window_bounds_unconsumed_data_across_streams_5_2(servers, impl):
    """Four uploads whose apps read nothing share the connection window: the server grants
    exactly ``--connection-window`` bytes in all (each stream at most ``--stream-window``)
    until the apps read; then every upload completes."""
    server = servers.get("tests.served_apps.protocol:wsgi_app", impl=impl,
                         args=["--stream-window", "65535", "--connection-window", "131072",
                               "--wsgi-threads", "8", "--max-handlers-per-connection", "4"])
    keys = [uuid.uuid4().hex for _ in range(4)]
    payloads = [os.urandom(200_000) for _ in keys]
    with connect(server) as c, connect(server) as control:
        c.wait_for(lambda ev: c.window_updates(0) > 0)  # the server's connection credit
        sids = [c.request(f"/hold?{key}", "POST", end_stream=False) for key in keys]
        sent = [c.send_window_available(sid, p) for sid, p in zip(sids, payloads, strict=True)]
        assert sum(sent) == 131_072 and max(sent) <= 65_535
        wait_until(lambda: control.get("/held")[1] == b"4")
        c.read_for(0.5)
        assert c.conn.outbound_flow_control_window == 0
        assert all(c.conn.local_flow_control_window(sid) == 0 for sid in sids)

        for key in keys:
            control.get(f"/release?{key}")
        for sid, payload, n in zip(sids, payloads, sent, strict=True):
            c.send_body(sid, payload[n:])
        for sid, payload in zip(sids, payloads, strict=True):
            assert c.response(sid, timeout=60)[1] == digest_line(payload)
