"""The server's limits against the real server, with a raw h2 client: header list size
(RFC 9113 §6.5.2, §10.5.1), body size (413), frame size and HPACK table size we advertise,
idle timeout, and the rapid-reset guard (CVE-2023-44487). Whatever the limit, the outcome is
exact and the process keeps serving new connections."""
from __future__ import annotations

import hashlib
import os
import socket

import pytest
from h2.settings import SettingCodes
from hyperframe.frame import DataFrame, GoAwayFrame

from tests.helpers.h2client import (
    CONTINUATION,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PING,
    H2Client,
    raw_frame,
)

pytestmark = pytest.mark.timeout(120)

NO_ERROR, PROTOCOL_ERROR, FRAME_SIZE_ERROR, CANCEL, COMPRESSION_ERROR, ENHANCE_YOUR_CALM = \
    0x0, 0x1, 0x6, 0x8, 0x9, 0xB
HELLO = b"Hello, world!"


def connect(server, **kw) -> H2Client:
    return H2Client("127.0.0.1", server.port, **kw)


def assert_serves_new_connections(server) -> None:
    assert server.alive(), server.log[-2000:]
    with connect(server) as c:
        assert c.get("/")[1] == HELLO


def digest_line(data: bytes) -> bytes:
    return f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode()


# -- header list size (§6.5.2, §10.5.1) ---------------------------------------------------------
HEADER_LIMIT = 4096


@pytest.fixture
def header_limited(servers, impl):
    return servers.get(impl=impl, args=["--max-header-list-size", str(HEADER_LIMIT)])


def test_max_header_list_size_is_advertised_and_a_list_under_it_is_served_6_5_2(
        header_limited):
    with connect(header_limited) as c:
        c.wait_for(lambda ev: c.conn.remote_settings.max_header_list_size == HEADER_LIMIT)
        # 4 pseudo-headers + this field, each counted as name + value + 32 (§6.5.2).
        sid = c.request("/", headers=[("x-fill", "v" * 3000)])
        assert c.response(sid)[1] == HELLO


def test_header_list_over_the_limit_is_enhance_your_calm_and_server_survives_10_5_1(
        header_limited):
    """The server cannot finish decoding an oversized block (HPACK state is then unknown),
    so it ends the connection: GOAWAY(ENHANCE_YOUR_CALM), close; other connections go on."""
    with connect(header_limited) as c:
        ok = c.request("/")
        c.response(ok)
        c.request("/", headers=[("x-fill", "v" * (2 * HEADER_LIMIT))])
        goaway = c.wait_for_goaway()
        assert goaway.error_code == ENHANCE_YOUR_CALM
        assert goaway.last_stream_id == ok
        c.wait_closed()
    assert_serves_new_connections(header_limited)


def test_hpack_bomb_over_the_decompressed_limit_is_enhance_your_calm_10_5_1(servers, impl):
    """The limit applies to the decoded list: 20 references (1 byte each) to one 4 KB
    dynamic-table entry decode to ~80 KB, over the default 64 KiB list size."""
    server = servers.get(impl=impl)
    big = "b" * 4000
    with connect(server) as c:
        first = c.request("/", headers=[("x-big", big)])  # indexed into the dynamic table
        c.response(first)
        bomb = c.header_block([(b":method", b"GET"), (b":scheme", b"http"),
                               (b":authority", b"localhost"), (b":path", b"/")]
                              + [(b"x-big", big.encode())] * 20)
        assert len(bomb) < 100  # really a bomb: a tiny block
        c.send_raw(raw_frame(HEADERS, END_HEADERS | END_STREAM, first + 2, bomb))
        goaway = c.wait_for_goaway()
        assert goaway.error_code == ENHANCE_YOUR_CALM
        c.wait_closed()
    assert_serves_new_connections(server)


def test_continuation_flood_is_cut_and_server_survives(header_limited):
    """A field block spread over many tiny CONTINUATION frames (the 2024 CONTINUATION flood)
    is not buffered without bound: the connection ends with GOAWAY (ENHANCE_YOUR_CALM for a
    block over the header list limit, or PROTOCOL_ERROR for too many frames)."""
    with connect(header_limited) as c:
        c.wait_for(lambda ev: c.settings_acks())
        literal = b"\x00\x01a\x64" + b"v" * 100  # a: 100-byte value, not indexed
        c.send_raw(raw_frame(HEADERS, 0, 1, b"\x82\x86\x84"))
        for _ in range(400):
            c.send_raw(raw_frame(9, 0, 1, literal))  # CONTINUATION without END_HEADERS
            if c.closed or c.goaway_frames():
                break
            c.read_for(0)
        goaway = c.wait_for_goaway()
        assert goaway.error_code in (ENHANCE_YOUR_CALM, PROTOCOL_ERROR)
    assert_serves_new_connections(header_limited)


# -- body size (413) ------------------------------------------------------------------------------
BODY_LIMIT = 100_000


@pytest.fixture(params=[("tests.served_apps.basic:wsgi_app", "/sha256"),
                        ("tests.served_apps.basic:kyoukai_app", "/read-async")],
                ids=["wsgi", "kyoukai"])
def body_limited(request, servers, impl):
    app, path = request.param
    return servers.get(app, impl=impl, args=["--max-body-size", str(BODY_LIMIT)]), path


def _assert_413(c: H2Client, sid: int) -> None:
    c.wait_for(lambda ev: c.stream_ended(sid) or c.stream_reset(sid) is not None)
    c.wait_for(lambda ev: c.headers(sid))
    assert c.headers(sid)[":status"] == "413"
    assert c.body(sid) == b"Request Entity Too Large\n"


def test_content_length_over_max_body_size_gets_413_before_any_body(body_limited):
    """Announced too large: 413 at once (the app never runs), then RST_STREAM(NO_ERROR) to
    stop the upload we have not sent (§8.1); the connection goes on."""
    server, path = body_limited
    with connect(server) as c:
        sid = c.request(path, "POST", headers=[("content-length", str(BODY_LIMIT + 1))],
                        end_stream=False)
        _assert_413(c, sid)
        c.wait_for(lambda ev: c.stream_reset(sid) is not None)
        assert c.rst_codes(sid) == [NO_ERROR]
        assert c.get("/")[1] == HELLO
        assert not c.goaway_frames()


def test_streamed_body_over_max_body_size_gets_413(body_limited):
    """No content-length: the 413 comes once the body passes the limit."""
    server, path = body_limited
    with connect(server) as c:
        sid = c.request(path, "POST", end_stream=False)
        c.send_body(sid, os.urandom(3 * BODY_LIMIT))
        _assert_413(c, sid)
        assert c.get("/")[1] == HELLO
        assert not c.goaway_frames()


def test_body_of_exactly_max_body_size_is_accepted(body_limited):
    server, path = body_limited
    payload = os.urandom(BODY_LIMIT)
    with connect(server) as c:
        sid = c.request(path, "POST", body=payload,
                        headers=[("content-length", str(BODY_LIMIT))])
        headers, body = c.response(sid)
        assert headers[":status"] == "200"
        digest = hashlib.sha256(payload).hexdigest()
        assert body in (digest_line(payload), f"{digest} {len(payload)}".encode())


# -- frame size and HPACK table size we advertise ------------------------------------------------
def test_configured_max_frame_size_is_advertised_and_enforced_4_2(servers, impl):
    server = servers.get(impl=impl, args=["--max-frame-size", "32768"])
    with connect(server) as c:
        c.wait_for(lambda ev: c.conn.remote_settings.max_frame_size == 32768)
        sid = c.request("/echo", "POST", end_stream=False)
        c.send_frame(DataFrame(sid, b"a" * 32768, flags=["END_STREAM"]))
        assert c.response(sid)[1] == b"a" * 32768
        c.send_raw(raw_frame(HEADERS, END_HEADERS, sid + 2, b"\x82" * 32769))
        assert c.wait_for_goaway().error_code == FRAME_SIZE_ERROR
    assert_serves_new_connections(server)


@pytest.mark.parametrize("table_size,code", [(1024, None), (2048, COMPRESSION_ERROR)],
                         ids=["at-limit", "over-limit"])
def test_hpack_table_size_update_over_our_setting_is_compression_error(servers, impl,
                                                                       table_size, code):
    """With --header-table-size 1024, a dynamic table size update (RFC 7541 §6.3) to 1024 is
    fine and one to 2048 is a decoding error: GOAWAY(COMPRESSION_ERROR)."""
    server = servers.get(impl=impl, args=["--header-table-size", "1024"])
    with connect(server) as c:
        c.wait_for(lambda ev: c.conn.remote_settings.header_table_size == 1024
                   and c.settings_acks())
        assert table_size < 2**5 - 1 + 2**14
        rest = table_size - 31
        update = bytes([0x3F, 0x80 | (rest & 0x7F), rest >> 7])
        c.send_raw(raw_frame(HEADERS, END_HEADERS | END_STREAM, 1, update + b"\x82\x86\x84"
                             + b"\x41\x09localhost"))
        if code is None:
            c.wait_for(lambda ev: any(f.stream_id == 1 for f in c.headers_frames()))
            assert not c.goaway_frames()
        else:
            assert c.wait_for_goaway().error_code == code
    assert_serves_new_connections(server)


# -- limits the client sets ---------------------------------------------------------------------
@pytest.mark.parametrize("table_size", [0, 100])
def test_server_hpack_encoder_honours_our_header_table_size_6_5_2(servers, impl, table_size):
    """With our SETTINGS_HEADER_TABLE_SIZE of 0 (no dynamic table) or 100, the server's
    encoder must stay within it (RFC 7541 §4.2): every response decodes, same headers."""
    server = servers.get(impl=impl)
    with connect(server, settings={SettingCodes.HEADER_TABLE_SIZE: table_size}) as c:
        for _ in range(5):
            headers, body = c.get("/")
            assert (headers[":status"], headers["content-type"], body) == (
                "200", "text/plain", HELLO)
        assert c.h2_error is None


def test_response_field_block_over_our_max_frame_size_uses_continuation_4_3(servers, impl):
    """A 40 KB response header does not fit one 16 KB frame: HEADERS + CONTINUATION
    frames, each within our SETTINGS_MAX_FRAME_SIZE (§4.3, §6.10)."""
    server = servers.get("tests.served_apps.protocol:wsgi_app", impl=impl)
    with connect(server) as c:
        sid = c.request("/big-headers?40000")
        headers, body = c.response(sid)
        assert headers["x-big"] == "h" * 40000 and headers["x-after"] == "after"
        assert body == b"big headers"
    assert c.h2_error is None
    kinds = [kind for kind, _, stream, _ in c.wire_frames if stream == sid]
    assert kinds[:2] == [HEADERS, CONTINUATION]  # ~30 KB (Huffman) in 16 KB frames
    assert c.max_frame_length_seen <= 16_384


# -- idle timeout ---------------------------------------------------------------------------------
def test_idle_connection_gets_goaway_no_error_and_is_closed(servers, impl):
    server = servers.get(impl=impl, args=["--idle-timeout", "1"])
    with connect(server) as c:
        sid = c.request("/")
        c.response(sid)
        goaway = c.wait_for_goaway(timeout=15)
        assert (goaway.error_code, goaway.last_stream_id) == (NO_ERROR, sid)
        c.wait_closed(timeout=15)


@pytest.mark.parametrize("sent", [b"", b"PRI * HTTP/2.0\r\n"], ids=["nothing", "half-preface"])
def test_connection_that_never_completes_the_preface_is_closed_by_idle_timeout(
        servers, impl, sent):
    """A peer that connects and stalls (slowloris) is closed by the idle timeout too."""
    server = servers.get(impl=impl, args=["--idle-timeout", "1"])
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as s:
        s.sendall(sent)
        received = b""
        while True:
            data = s.recv(65536)  # socket.timeout (a failure) if the server never closes
            if not data:
                break
            received += data
    assert b"HTTP/1.1" not in received


def test_connection_with_a_stream_in_progress_is_not_idle(servers, impl):
    """A request running longer than the idle timeout completes; GOAWAY may only follow."""
    server = servers.get(impl=impl, args=["--idle-timeout", "1"])
    with connect(server) as c:
        sid = c.request("/slow?2")
        headers, body = c.response(sid, timeout=30)
        assert (headers[":status"], body) == ("200", b"slow done")
        ended_at = next(i for i, f in enumerate(c.frames)
                        if f.stream_id == sid and "END_STREAM" in f.flags)
        assert all(i > ended_at for i, f in enumerate(c.frames) if isinstance(f, GoAwayFrame))


# -- floods ------------------------------------------------------------------------------------
def test_ping_flood_from_a_peer_that_never_reads_is_stopped(servers, impl):
    """PINGs sent by a client that reads nothing: the server never queues PING ACKs without
    bound; the flood budgets end the connection (GOAWAY(ENHANCE_YOUR_CALM), then close:
    unread, it arrives as a reset) long before 128 MB were sent (tests/http2/test_attacks.py has
    the reading variant)."""
    server = servers.fresh(impl=impl)
    rss_before = server.rss_kib()
    flood = raw_frame(PING, 0, 0, b"12345678") * 60_000  # ~1 MB per send
    with connect(server) as c:
        c.sock.settimeout(10)
        sent = 0
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            while sent < 128 * 1024 * 1024:
                c.sock.sendall(flood)
                sent += len(flood)
        growth_kib = server.rss_kib() - rss_before
        assert growth_kib < 48 * 1024, f"RSS grew by {growth_kib} KiB after {sent} bytes"
    assert_serves_new_connections(server)


# -- rapid reset (CVE-2023-44487) -----------------------------------------------------------------
def test_rapid_reset_flood_gets_enhance_your_calm_and_others_are_served(servers, impl):
    """Thousands of HEADERS + RST_STREAM pairs within seconds: GOAWAY(ENHANCE_YOUR_CALM) and
    close; a connection opened before the flood and new connections are still served."""
    server = servers.fresh(impl=impl)
    with connect(server) as bystander, connect(server) as c:
        assert bystander.get("/")[1] == HELLO
        block = []
        for i in range(2000):
            sid = c.conn.get_next_available_stream_id()
            c.conn.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"http"),
                                      (b":authority", b"localhost"), (b":path", b"/")])
            c.conn.reset_stream(sid, CANCEL)
            if i % 100 == 99:
                block.append(c.conn.data_to_send())
                try:
                    c.send_raw(block[-1])
                except OSError:  # closed on us already
                    break
                c.read_for(0)
                if c.goaway_frames() or c.closed:
                    break
        goaway = c.wait_for_goaway(timeout=30)
        assert goaway.error_code == ENHANCE_YOUR_CALM
        c.wait_closed(timeout=30)
        assert bystander.get("/")[1] == HELLO
    assert_serves_new_connections(server)
