"""Stream lifecycle and multiplexing against the real server (RFC 9113 §5.1, §5.1.2, §5.4,
§8.1), with a raw h2 client: client resets, concurrency and its limit, responses that end
before the request, HEAD, failing apps, and frames on streams the server has reset."""
from __future__ import annotations

import os

import h2.events
import pytest
from hyperframe.frame import DataFrame, PriorityFrame, RstStreamFrame, WindowUpdateFrame

from tests.helpers.h2client import H2Client

pytestmark = pytest.mark.timeout(120)

NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
STREAM_CLOSED = 0x5
REFUSED_STREAM = 0x7
CANCEL = 0x8
HELLO = b"Hello, world!"

WSGI = "tests.served_apps.basic:wsgi_app"
KYOUKAI = "tests.served_apps.basic:kyoukai_app"


def connect(server, **kw) -> H2Client:
    return H2Client("127.0.0.1", server.port, **kw)


def event_index(client: H2Client, sid: int, cls) -> int:
    """Position of the first ``cls`` event of ``sid`` in the order received."""
    for i, event in enumerate(client.events):
        if isinstance(event, cls) and event.stream_id == sid:
            return i
    raise AssertionError(f"no {cls.__name__} on stream {sid}")


# -- client resets (§5.1, §6.4) -------------------------------------------------------------
def test_client_reset_mid_upload_frees_the_stream_and_the_connection_goes_on_6_4(
        servers, impl):
    """RST_STREAM(CANCEL) in the middle of an upload: the stream is gone for the server (it
    no longer counts against SETTINGS_MAX_CONCURRENT_STREAMS=2, even after five such
    resets), an upload in flight on another stream completes, and new requests work."""
    server = servers.get(impl=impl, args=["--max-concurrent-streams", "2"])
    other_body = os.urandom(300_000)
    with connect(server) as c:
        other = c.request("/echo", "POST", end_stream=False)
        c.send_body(other, other_body[:100_000], end_stream=False)
        for _ in range(5):
            sid = c.request("/sha256", "POST", end_stream=False)
            c.send_body(sid, os.urandom(100_000), end_stream=False)
            c.conn.reset_stream(sid, CANCEL)
            c.flush()
        c.send_body(other, other_body[100_000:])
        headers, body = c.response(other, timeout=30)
        assert headers[":status"] == "200" and body == other_body
        # Both concurrent slots are free again: neither of these is refused.
        a = c.request("/echo", "POST", end_stream=False)
        b = c.request("/echo", "POST", end_stream=False)
        c.send_body(a, b"first")
        c.send_body(b, b"second")
        assert c.response(a)[1] == b"first"
        assert c.response(b)[1] == b"second"
        assert not c.goaway_frames()


def test_client_reset_while_the_response_is_pending_6_4(servers, impl):
    """RST_STREAM on a stream whose (slow) app is still running: other streams are answered,
    nothing is ever sent on the reset stream once the app finishes, and the connection and
    the server stay healthy."""
    server = servers.get(impl=impl)
    with connect(server) as c:
        slow = c.request("/slow?1")
        c.conn.reset_stream(slow, CANCEL)
        c.flush()
        assert c.get("/")[1] == HELLO
        c.read_for(1.5)  # the app finishes meanwhile
        assert c.headers_frames(slow) == [] and c.data_frames(slow) == []
        assert c.rst_codes(slow) == []
        assert not c.goaway_frames()
        assert c.get("/")[1] == HELLO


# -- concurrency (§5.1.2) -------------------------------------------------------------------
@pytest.mark.parametrize("app,slow_path", [(WSGI, "/slow?1.5"), (KYOUKAI, "/sleep?s=1.5")],
                         ids=["wsgi-threads", "kyoukai"])
def test_one_slow_stream_delays_no_other_stream_5_1_2(servers, impl, app, slow_path):
    """Streams are independent: with a slow request opened first, five fast requests on the
    same connection all complete before the slow one answers."""
    server = servers.get(app, impl=impl)
    with connect(server) as c:
        slow = c.request(slow_path)
        fast = [c.request("/") for _ in range(5)]
        c.wait_for(lambda ev: c.stream_ended(slow), timeout=30)
        slow_answer = event_index(c, slow, h2.events.ResponseReceived)
        for sid in fast:
            assert c.body(sid) == HELLO
            assert event_index(c, sid, h2.events.StreamEnded) < slow_answer
        assert c.headers(slow)[":status"] == "200"


def test_streams_over_max_concurrent_streams_are_refused_5_1_2(servers, impl):
    """With --max-concurrent-streams 3 and three streams open, further streams get
    RST_STREAM(REFUSED_STREAM) (§5.1.2, §8.7: safe to retry); the open ones and the
    connection are unaffected and later requests work."""
    server = servers.get(impl=impl, args=["--max-concurrent-streams", "3"])
    with connect(server) as c:
        c.wait_for(lambda ev: c.conn.remote_settings.max_concurrent_streams == 3)
        c.conn.ignore_stream_limit = True
        held = [c.request("/echo", "POST", end_stream=False) for _ in range(3)]
        extra = [c.request("/", end_stream=True) for _ in range(2)]
        c.wait_for(lambda ev: all(c.stream_reset(sid) is not None for sid in extra))
        assert [c.rst_codes(sid) for sid in extra] == [[REFUSED_STREAM]] * 2
        assert all(c.headers_frames(sid) == [] for sid in extra)
        c.conn.ignore_stream_limit = False
        for i, sid in enumerate(held):
            c.send_body(sid, b"body %d" % i)
        for i, sid in enumerate(held):
            assert c.response(sid)[1] == b"body %d" % i
        assert c.get("/")[1] == HELLO
        assert not c.goaway_frames()


# -- responses and request bodies (§8.1) ----------------------------------------------------------
def test_early_response_lets_the_upload_finish_then_the_stream_closes_cleanly_8_1(
        servers, impl):
    """The app answers without reading a large upload: the server sends the complete
    response (END_STREAM), then keeps crediting the windows so the client can finish its
    upload (as nginx's lingering close does), and no RST_STREAM follows when it does. The
    discarded bytes are credited back, so a following upload larger than the whole
    connection window still goes through."""
    server = servers.get(impl=impl, args=["--connection-window", "131072",
                                          "--stream-window", "65535"])
    with connect(server) as c:
        sid = c.request("/no-read", "POST", end_stream=False)
        c.send_body(sid, os.urandom(20_000), end_stream=False)
        c.wait_for(lambda ev: c.stream_ended(sid))
        assert c.headers(sid)[":status"] == "200"
        assert c.body(sid) == b"not reading"
        rest = memoryview(os.urandom(1_000_000))  # more than both windows, after the answer
        while rest:
            c.wait_for(lambda ev: c.conn.local_flow_control_window(sid) > 0)
            n = min(c.conn.local_flow_control_window(sid), 16384, len(rest))
            c.conn.send_data(sid, rest[:n].tobytes(), end_stream=n == len(rest))
            c.flush()
            rest = rest[n:]
        c.read_for(0.3)
        assert c.rst_codes(sid) == []
        payload = os.urandom(400_000)  # > the whole connection window
        up = c.request("/echo", "POST", body=payload)
        assert c.response(up, timeout=30)[1] == payload
        assert not c.goaway_frames()


def test_early_response_then_upload_past_linger_bytes_is_reset_with_no_error_8_1(
        servers, impl):
    """Past ``--linger-bytes`` more body bytes after the response, the stream is reset with
    NO_ERROR (§8.1), after the complete response."""
    server = servers.get(impl=impl, args=["--linger-bytes", "100K"])
    with connect(server) as c:
        sid = c.request("/no-read", "POST", end_stream=False)
        c.send_body(sid, os.urandom(10_000), end_stream=False)
        c.wait_for(lambda ev: c.stream_ended(sid))
        for _ in range(20):  # 320 KB, far past the allowance
            if c.stream_reset(sid) is not None:
                break
            c.conn.send_data(sid, os.urandom(16384))
            c.flush()
            c.read_for(0.02)
        c.wait_for(lambda ev: c.stream_reset(sid) is not None)
        assert c.rst_codes(sid) == [NO_ERROR]
        assert (event_index(c, sid, h2.events.StreamEnded)
                < event_index(c, sid, h2.events.StreamReset))
        assert c.body(sid) == b"not reading"


def test_early_response_then_stalled_upload_is_reset_after_linger_timeout_8_1(servers, impl):
    """A client that stops sending after an early response is reset with NO_ERROR once
    ``--linger-timeout`` has passed (the stream's state is not kept forever)."""
    server = servers.get(impl=impl, args=["--linger-timeout", "0.5"])
    with connect(server) as c:
        sid = c.request("/no-read", "POST", end_stream=False)
        c.send_body(sid, os.urandom(10_000), end_stream=False)
        c.wait_for(lambda ev: c.stream_ended(sid))
        c.wait_for(lambda ev: c.stream_reset(sid) is not None, timeout=10)
        assert c.rst_codes(sid) == [NO_ERROR]
        assert c.body(sid) == b"not reading"


def test_request_trailers_end_the_body_8_1(servers, impl):
    """A request body followed by a trailer field block (END_STREAM on the trailers, §8.1):
    the app gets the whole body."""
    server = servers.get(impl=impl)
    payload = os.urandom(200_000)
    with connect(server) as c:
        sid = c.request("/echo", "POST", headers=[("te", "trailers")], end_stream=False)
        c.send_body(sid, payload, end_stream=False)
        c.conn.send_headers(sid, [(b"x-checksum", b"abc")], end_stream=True)
        c.flush()
        headers, body = c.response(sid, timeout=30)
        assert headers[":status"] == "200" and body == payload


@pytest.mark.parametrize("app", [WSGI, KYOUKAI], ids=["wsgi", "kyoukai"])
def test_head_response_has_headers_and_no_body_8_1(servers, impl, app):
    """HEAD: the response HEADERS carries END_STREAM or is followed by no content (RFC 9110
    §9.3.2); no DATA frame has a payload."""
    server = servers.get(app, impl=impl)
    with connect(server) as c:
        sid = c.request("/", "HEAD")
        headers, body = c.response(sid)
        assert headers[":status"] == "200"
        assert body == b""
        assert all(len(f.data) == 0 for f in c.data_frames(sid))
        assert c.get("/")[1] == HELLO


@pytest.mark.parametrize("app", [WSGI, KYOUKAI], ids=["wsgi", "kyoukai"])
def test_app_exception_is_500_without_traceback_and_other_streams_go_on(servers, impl, app):
    """An app that raises gives a plain 500 on its stream only; the body does not leak the
    exception (the app puts a marker string in it)."""
    server = servers.get(app, impl=impl)
    with connect(server) as c:
        before = c.request("/slow?1" if app == WSGI else "/sleep?s=1")
        bad = c.request("/raise")
        after = c.request("/")
        headers, body = c.response(bad)
        assert headers[":status"] == "500"
        assert b"SECRET-TRACEBACK-MARKER" not in body and b"Traceback" not in body
        assert b"RuntimeError" not in body
        assert c.response(after)[1] == HELLO
        assert c.response(before)[0][":status"] == "200"
        assert not c.goaway_frames()


# -- frames on closed streams (§5.1) -------------------------------------------------------------
def test_data_on_a_stream_the_server_reset_is_ignored_5_1(servers, impl):
    """After the server resets a stream (here: RST_STREAM(NO_ERROR) after a complete
    response), DATA the client had in flight for it must be ignored (§5.1 "closed": frames
    after sending RST_STREAM), not treated as a connection error."""
    server = servers.get(impl=impl)
    with connect(server) as c:
        sid = c.request("/no-read", "POST", end_stream=False)
        c.send_body(sid, b"x" * 1000, end_stream=False)
        c.wait_for(lambda ev: c.stream_reset(sid) is not None)
        assert c.rst_codes(sid) == [NO_ERROR]
        for _ in range(3):
            c.send_frame(DataFrame(sid, b"y" * 1000))
        c.send_frame(DataFrame(sid, b"end", flags=["END_STREAM"]))
        assert c.get("/")[1] == HELLO
        assert not c.goaway_frames()
        # At most a stream error STREAM_CLOSED may answer them, on that stream only.
        assert set(c.rst_codes(sid)[1:]) <= {0x5}


def test_data_on_a_malformed_request_stream_the_server_reset_is_ignored_5_1(servers, impl):
    """Same after a stream error: DATA following a malformed request's HEADERS (which the
    server answered with RST_STREAM(PROTOCOL_ERROR)) does not fail the connection."""
    server = servers.get(impl=impl)
    with connect(server, validate=False) as c:
        sid = c.request("/echo", "POST", headers=[("connection", "keep-alive")],
                        end_stream=False)
        c.send_frame(DataFrame(sid, b"z" * 5000))
        c.send_frame(DataFrame(sid, b"", flags=["END_STREAM"]))
        c.wait_for(lambda ev: c.rst_codes(sid) or c.stream_ended(sid))
        assert c.rst_codes(sid)[0] == PROTOCOL_ERROR
        assert c.get("/")[1] == HELLO
        assert not c.goaway_frames()


def _reset_by_client(c: H2Client) -> int:
    sid = c.request("/echo", "POST", end_stream=False)
    c.conn.reset_stream(sid, CANCEL)
    c.flush()
    return sid


def _closed_by_both_end_streams(c: H2Client) -> int:
    sid = c.request("/")
    c.response(sid)
    return sid


@pytest.mark.parametrize("close", [_reset_by_client, _closed_by_both_end_streams],
                         ids=["after-client-reset", "after-both-end-stream"])
def test_data_on_a_closed_stream_is_stream_closed_5_1(servers, impl, close):
    """DATA on a stream closed by our RST_STREAM or by END_STREAM both ways: error
    STREAM_CLOSED (§5.1 "closed"; a stream error, or a connection error, both allowed)."""
    server = servers.get(impl=impl)
    with connect(server) as c:
        sid = close(c)
        c.send_frame(DataFrame(sid, b"late", flags=["END_STREAM"]))
        c.wait_for(lambda ev: c.rst_codes(sid) or c.goaway_frames())
        codes = c.rst_codes(sid) + [g.error_code for g in c.goaway_frames()]
        assert codes[0] == STREAM_CLOSED
        if not c.goaway_frames():
            assert c.get("/")[1] == HELLO


def test_data_after_the_request_ended_is_stream_closed_5_1(servers, impl):
    """DATA on a half-closed (remote) stream, i.e. after the request's END_STREAM, while the
    response is pending: stream error STREAM_CLOSED (§5.1); the connection goes on."""
    server = servers.get(impl=impl)
    with connect(server) as c:
        sid = c.request("/slow?0.5")
        c.send_frame(DataFrame(sid, b"too late"))
        try:
            c.wait_for(lambda ev: c.rst_codes(sid) or c.stream_ended(sid), timeout=5)
        except TimeoutError:
            pytest.fail("neither RST_STREAM nor a response within 5 s: the stream hangs")
        assert c.rst_codes(sid) == [STREAM_CLOSED]
        assert c.get("/")[1] == HELLO
        assert not c.goaway_frames()


def test_window_update_rst_stream_and_priority_on_a_closed_stream_are_ignored_5_1(
        servers, impl):
    """Right after a stream closed, WINDOW_UPDATE and RST_STREAM for it may still arrive
    (the peer had not seen END_STREAM yet) and must be ignored; PRIORITY is allowed in
    every state (§5.1 "closed")."""
    server = servers.get(impl=impl)
    with connect(server) as c:
        sid = c.request("/")
        assert c.response(sid)[1] == HELLO
        c.send_frame(WindowUpdateFrame(sid, window_increment=1000))
        c.send_frame(PriorityFrame(sid, depends_on=0, stream_weight=10))
        c.send_frame(RstStreamFrame(sid, error_code=CANCEL))
        assert c.get("/")[1] == HELLO
        assert not c.goaway_frames()
        assert c.rst_codes(sid) == []
