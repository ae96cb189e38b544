"""Malformed requests and invalid frames against the real server (RFC 9113 §3.4, §4, §5.1,
§5.4, §5.5, §6, §8.1.1, §8.2, §8.3), sent by a raw client with validation switched off.

Two tables. Malformed *requests* (§8.1.1) are stream errors: RST_STREAM(PROTOCOL_ERROR) on
that stream, and the connection (including HPACK state) goes on, proven by a valid request
right after on the same connection. Invalid *frames* are connection errors: GOAWAY with the
code the RFC names, then the server closes the connection and keeps serving new ones.
"""
from __future__ import annotations

import socket
import struct

import pytest
from hyperframe.frame import DataFrame, PingFrame, SettingsFrame

from tests.helpers.h2client import (
    ACK,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    PING,
    PRIORITY,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    H2Client,
    raw_frame,
)

pytestmark = pytest.mark.timeout(60)

NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED, FRAME_SIZE_ERROR = \
    0x0, 0x1, 0x3, 0x5, 0x6
COMPRESSION_ERROR = 0x9
HELLO = b"Hello, world!"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def connect(server, **kw) -> H2Client:
    return H2Client("127.0.0.1", server.port, **kw)


def h(*pairs) -> list:
    return [(k.encode(), v.encode()) for k, v in pairs]


def base(path: str = "/", method: str = "GET") -> list:
    return h((":method", method), (":scheme", "http"), (":authority", "localhost"),
             (":path", path))


def assert_serves_new_connections(server) -> None:
    assert server.alive(), server.log[-2000:]
    with connect(server) as c:
        assert c.get("/")[1] == HELLO


# -- malformed requests: stream errors (§8.1.1) ------------------------------------------------
MALFORMED_HEADERS = {
    # §8.2: field names are lowercase
    "uppercase-name": base() + h(("X-Upper", "1")),
    # §8.2.2: connection-specific fields
    "connection": base() + h(("connection", "keep-alive")),
    "transfer-encoding": base("/echo", "POST") + h(("transfer-encoding", "chunked")),
    "keep-alive": base() + h(("keep-alive", "timeout=5")),
    "upgrade": base() + h(("upgrade", "h2c")),
    "proxy-connection": base() + h(("proxy-connection", "keep-alive")),
    "te-gzip": base() + h(("te", "gzip")),
    "te-trailers-and-gzip": base() + h(("te", "trailers, gzip")),
    # §8.3.1: mandatory pseudo-headers, each exactly once, before regular fields
    "missing-method": base()[1:],
    "missing-scheme": [base()[0]] + base()[2:],
    "missing-path": base()[:3],
    "duplicate-path": base() + h((":path", "/other")),
    "duplicate-method": base() + h((":method", "GET")),
    "pseudo-after-regular": base()[:3] + h(("x-a", "1")) + base()[3:],
    "unknown-pseudo": base() + h((":foo", "bar")),
    "status-in-request": base() + h((":status", "200")),
    "empty-path": base(""),
    # §8.2.1: field values and names
    "value-with-cr": base() + h(("x-a", "a\rb")),
    "value-with-lf": base() + h(("x-a", "a\nb")),
    "value-with-nul": base() + h(("x-a", "a\x00b")),
    "value-leading-space": base() + h(("x-a", " a")),
    "name-with-space": base() + h(("x a", "1")),
    "name-with-colon-inside": base() + h(("x:a", "1")),
    "empty-name": base() + h(("", "1")),
    # §8.1.1: content-length must be a number
    "content-length-not-numeric": base("/echo", "POST") + h(("content-length", "abc")),
    "content-length-negative": base("/echo", "POST") + h(("content-length", "-1")),
}


@pytest.mark.parametrize("name", list(MALFORMED_HEADERS))
def test_malformed_request_is_a_stream_error_8_1_1(servers, impl, name):
    server = servers.get(impl=impl)
    with connect(server, validate=False) as c:
        sid = c.request_raw(MALFORMED_HEADERS[name], end_stream=True)
        c.wait_for(lambda ev: c.rst_codes(sid) or c.stream_ended(sid))
        assert c.rst_codes(sid) == [PROTOCOL_ERROR], f"answered instead: {c.headers(sid)}"
        assert c.headers_frames(sid) == []  # never reached the app
        assert c.get("/")[1] == HELLO
        assert not c.goaway_frames()


def test_te_trailers_is_allowed_8_2_2(servers, impl):
    """The control case: ``te: trailers`` is the one TE value allowed."""
    server = servers.get(impl=impl)
    with connect(server, validate=False) as c:
        sid = c.request_raw(base() + h(("te", "trailers")))
        assert c.response(sid)[1] == HELLO


BODY_MISMATCH = {  # content-length, DATA payloads (the last one ends the stream)
    "too-little": ("10", [b"12345"]),
    "too-much": ("5", [b"1234567890"]),
    "too-much-over-frames": ("6", [b"1234", b"5678"]),
    "none-but-announced": ("5", []),
}


@pytest.mark.parametrize("name", list(BODY_MISMATCH))
def test_content_length_not_matching_body_is_a_stream_error_8_1_1(servers, impl, name):
    server = servers.get(impl=impl)
    length, chunks = BODY_MISMATCH[name]
    with connect(server, validate=False) as c:
        sid = c.request_raw(base("/echo", "POST") + h(("content-length", length)),
                            end_stream=not chunks)
        for i, chunk in enumerate(chunks):
            c.conn.send_data(sid, chunk, end_stream=i == len(chunks) - 1)
        c.flush()
        c.wait_for(lambda ev: c.rst_codes(sid) or c.stream_ended(sid))
        assert c.rst_codes(sid) == [PROTOCOL_ERROR], f"answered instead: {c.headers(sid)}"
        assert c.headers_frames(sid) == []
        assert c.get("/")[1] == HELLO
        assert not c.goaway_frames()


@pytest.mark.parametrize("trailers,end_stream", [
    (h((":path", "/x")), True),      # §8.1: no pseudo-headers in trailers
    (h(("x-checksum", "1")), False),  # §8.1: a trailer block must end the stream
], ids=["pseudo-in-trailers", "trailers-without-end-stream"])
def test_malformed_trailers_are_a_stream_error_8_1(servers, impl, trailers, end_stream):
    server = servers.get(impl=impl)
    with connect(server, validate=False) as c:
        sid = c.request_raw(base("/echo", "POST"), end_stream=False)
        c.conn.send_data(sid, b"body")
        c.flush()
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        c.send_raw(raw_frame(HEADERS, flags, sid, c.header_block(trailers)))
        c.wait_for(lambda ev: c.rst_codes(sid) or c.stream_ended(sid))
        assert c.rst_codes(sid)[0] == PROTOCOL_ERROR
        assert c.get("/")[1] == HELLO
        assert not c.goaway_frames()


# -- invalid frames: connection errors (§4, §5, §6) ----------------------------------------------
def _open_stream(c: H2Client) -> int:
    """A request stream left open (no END_STREAM) for frames that need one."""
    return c.request("/echo", "POST", end_stream=False)


def _headers_raw(c: H2Client, sid: int, flags: int = END_HEADERS) -> bytes:
    return raw_frame(HEADERS, flags, sid, c.header_block(base()))


FRAME_ERRORS = {  # name: (bytes to send, given the client; GOAWAY error code)
    # §4.2: over SETTINGS_MAX_FRAME_SIZE (16,384): a field block frame is a connection error
    "headers-over-max-frame-size": (
        lambda c: raw_frame(HEADERS, END_HEADERS, 1, b"\x82" * 16_385), FRAME_SIZE_ERROR),
    # §6.7, §6.5, §6.9, §6.4: frames with a fixed or constrained length
    "ping-7-bytes": (lambda c: raw_frame(PING, 0, 0, b"1234567"), FRAME_SIZE_ERROR),
    "ping-9-bytes": (lambda c: raw_frame(PING, 0, 0, b"123456789"), FRAME_SIZE_ERROR),
    "settings-not-multiple-of-6": (lambda c: raw_frame(SETTINGS, 0, 0, b"\x00" * 5),
                                   FRAME_SIZE_ERROR),
    "settings-ack-with-payload": (lambda c: raw_frame(SETTINGS, ACK, 0, b"\x00\x04" + b"\0" * 4),
                                  FRAME_SIZE_ERROR),
    "window-update-3-bytes": (lambda c: raw_frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x01"),
                              FRAME_SIZE_ERROR),
    "rst-stream-5-bytes": (lambda c: raw_frame(RST_STREAM, 0, _open_stream(c), b"\0" * 5),
                           FRAME_SIZE_ERROR),
    # stream 0 vs streams (§6.1, §6.2, §6.4, §6.5, §6.7, §6.8)
    "data-on-stream-0": (lambda c: raw_frame(DATA, 0, 0, b"abc"), PROTOCOL_ERROR),
    "headers-on-stream-0": (lambda c: _headers_raw(c, 0), PROTOCOL_ERROR),
    "rst-stream-on-stream-0": (lambda c: raw_frame(RST_STREAM, 0, 0, b"\0\0\0\0"),
                               PROTOCOL_ERROR),
    "settings-on-stream-1": (lambda c: raw_frame(SETTINGS, 0, 1, b""), PROTOCOL_ERROR),
    "ping-on-stream-1": (lambda c: raw_frame(PING, 0, 1, b"12345678"), PROTOCOL_ERROR),
    "goaway-on-stream-1": (lambda c: raw_frame(GOAWAY, 0, 1, b"\0" * 8), PROTOCOL_ERROR),
    # §6.9: a zero increment on the connection
    "window-update-zero-increment": (lambda c: raw_frame(WINDOW_UPDATE, 0, 0, b"\0\0\0\0"),
                                     PROTOCOL_ERROR),
    # §6.1: padding as long as the payload
    "data-padding-too-long": (lambda c: raw_frame(DATA, 0x8, _open_stream(c), b"\x05abcd"),
                              PROTOCOL_ERROR),
    # §6.2: HEADERS padding counted after the pad length and priority fields
    "headers-padding-over-block": (
        lambda c: raw_frame(HEADERS, END_HEADERS | END_STREAM | 0x8 | 0x20, 1,
                            b"\x05" + struct.pack(">IB", 0, 15) + b"\x82"), PROTOCOL_ERROR),
    # §5.1 idle streams: only HEADERS and PRIORITY may open them
    "data-on-idle-stream": (lambda c: raw_frame(DATA, 0, 7, b"abc"), PROTOCOL_ERROR),
    "window-update-on-idle-stream": (
        lambda c: raw_frame(WINDOW_UPDATE, 0, 7, b"\0\0\0\x01"), PROTOCOL_ERROR),
    "rst-stream-on-idle-stream": (lambda c: raw_frame(RST_STREAM, 0, 7, b"\0\0\0\x08"),
                                  PROTOCOL_ERROR),
    # §5.1 "closed": a field block after both sides sent END_STREAM (DATA: test_streams)
    "headers-on-a-stream-closed-normally": (
        lambda c: c.get("/") and _headers_raw(c, 1, END_HEADERS | END_STREAM), STREAM_CLOSED),
    # §5.1.1: client streams are odd and increasing
    "even-stream-id": (lambda c: _headers_raw(c, 2, END_HEADERS | END_STREAM), PROTOCOL_ERROR),
    "stream-id-lower-than-opened": (
        lambda c: _headers_raw(c, 9, END_HEADERS | END_STREAM)
        + _headers_raw(c, 5, END_HEADERS | END_STREAM), PROTOCOL_ERROR),
    # §6.10, §4.3: field blocks are contiguous
    "continuation-without-headers": (
        lambda c: raw_frame(CONTINUATION, END_HEADERS, 1, c.header_block(base())),
        PROTOCOL_ERROR),
    "ping-inside-field-block": (
        lambda c: _headers_raw(c, 1, END_STREAM) + raw_frame(PING, 0, 0, b"12345678")
        + raw_frame(CONTINUATION, END_HEADERS, 1, b""), PROTOCOL_ERROR),
    "unknown-frame-inside-field-block": (
        lambda c: _headers_raw(c, 1, END_STREAM) + raw_frame(0xFA, 0, 1, b"x")
        + raw_frame(CONTINUATION, END_HEADERS, 1, b""), PROTOCOL_ERROR),
    "continuation-on-other-stream": (
        lambda c: _headers_raw(c, 1, END_STREAM) + raw_frame(CONTINUATION, END_HEADERS, 3, b""),
        PROTOCOL_ERROR),
    # §4.3, RFC 7541: undecodable field blocks
    "hpack-index-0": (lambda c: raw_frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\x80"),
                      COMPRESSION_ERROR),
    "hpack-index-past-tables": (
        lambda c: raw_frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\xbf"), COMPRESSION_ERROR),
    "hpack-table-size-over-setting": (
        lambda c: raw_frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\x3f\xe2\x1f\x82"),
        COMPRESSION_ERROR),
    "hpack-truncated-literal": (
        lambda c: raw_frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\x00\x05ab"),
        COMPRESSION_ERROR),
    # §6.5.2: settings values out of range
    "settings-enable-push-2": (
        lambda c: raw_frame(SETTINGS, 0, 0, struct.pack(">HI", 0x2, 2)), PROTOCOL_ERROR),
    "settings-initial-window-too-large": (
        lambda c: raw_frame(SETTINGS, 0, 0, struct.pack(">HI", 0x4, 2**31)),
        FLOW_CONTROL_ERROR),
    "settings-max-frame-size-too-small": (
        lambda c: raw_frame(SETTINGS, 0, 0, struct.pack(">HI", 0x5, 16_383)), PROTOCOL_ERROR),
}


@pytest.mark.parametrize("name", list(FRAME_ERRORS))
def test_invalid_frame_is_a_connection_error(servers, impl, name):
    server = servers.get(impl=impl)
    build, code = FRAME_ERRORS[name]
    with connect(server, validate=False) as c:
        c.wait_for(lambda ev: c.settings_acks())
        c.send_raw(build(c))
        goaway = c.wait_for_goaway()
        assert goaway.error_code == code, goaway
        c.wait_closed()
    assert_serves_new_connections(server)


def test_data_frame_over_max_frame_size_is_frame_size_error_4_2(servers, impl):
    """A DATA frame one byte over SETTINGS_MAX_FRAME_SIZE: FRAME_SIZE_ERROR (as a stream or a
    connection error, §4.2); a frame of exactly the maximum is fine."""
    server = servers.get(impl=impl)
    with connect(server) as c:
        sid = _open_stream(c)
        c.send_frame(DataFrame(sid, b"a" * 16_384, flags=["END_STREAM"]))
        assert c.response(sid)[1] == b"a" * 16_384
        sid = _open_stream(c)
        c.send_raw(raw_frame(DATA, END_STREAM, sid, b"b" * 16_385))
        c.wait_for(lambda ev: c.rst_codes(sid) or c.goaway_frames())
        codes = c.rst_codes(sid) + [g.error_code for g in c.goaway_frames()]
        assert codes[0] == FRAME_SIZE_ERROR
    assert_serves_new_connections(server)


def test_padded_frames_with_priority_are_accepted_6_1_6_2(servers, impl):
    """The control case: padded HEADERS with priority fields and padded DATA are valid;
    the padding never reaches the app."""
    server = servers.get(impl=impl)
    with connect(server) as c:
        c.wait_for(lambda ev: c.settings_acks())
        block = c.header_block(base("/echo", "POST"))
        c.send_raw(raw_frame(HEADERS, END_HEADERS | 0x8 | 0x20, 1,
                             b"\x03" + struct.pack(">IB", 0, 15) + block + b"\0" * 3))
        c.send_raw(raw_frame(DATA, END_STREAM | 0x8, 1, b"\x04" + b"payload" + b"\0" * 4))
        c.wait_for(lambda ev: any(kind == DATA and sid == 1 and flags & END_STREAM
                                  for kind, flags, sid, _ in c.wire_frames))
        assert b"".join(f.data for f in c.data_frames(1)) == b"payload"
        assert not c.goaway_frames() and c.rst_codes(1) == []


def test_invalid_preface_is_a_connection_error_3_4(servers, impl):
    """A client preface that is not PRI * HTTP/2.0... (§3.4): the server closes the
    connection, with GOAWAY(PROTOCOL_ERROR) if it sends one at all."""
    server = servers.get(impl=impl)
    with connect(server, initiate=False) as c:
        c.send_raw(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + SettingsFrame(0).serialize())
        c.wait_closed()
        assert [g.error_code for g in c.goaway_frames()] in ([], [PROTOCOL_ERROR])
        assert c.headers_frames() == []
    assert_serves_new_connections(server)


def test_garbage_instead_of_preface_closes_the_connection_3_4(servers, impl):
    server = servers.get(impl=impl)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"\x00\xff" * 100)
        s.settimeout(10)
        received = b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            received += data
    assert b"HTTP/1.1 200" not in received
    assert_serves_new_connections(server)


# -- what must be ignored or answered (§5.5, §6.5, §6.7) ----------------------------------------
def test_unknown_frame_types_and_flags_are_ignored_5_5(servers, impl):
    server = servers.get(impl=impl)
    with connect(server) as c:
        c.send_raw(raw_frame(0xFA, 0xFF, 0, b"extension payload"))
        sid = _open_stream(c)
        c.send_raw(raw_frame(0xFB, 0, sid, b"on an open stream"))
        c.send_raw(raw_frame(PING, 0xF0, 0, b"ping-ack"[:8]))  # unknown flags on PING
        c.send_body(sid, b"still the same body")
        assert c.response(sid)[1] == b"still the same body"
        assert c.get("/")[1] == HELLO
        assert not c.goaway_frames()


def test_unknown_settings_are_ignored_and_acknowledged_6_5_2(servers, impl):
    server = servers.get(impl=impl)
    with connect(server) as c:
        c.wait_for(lambda ev: c.settings_acks() == 1)
        c.send_frame(SettingsFrame(0, settings={0x7A7A: 12345, 0xF0F0: 0}))
        c.wait_for(lambda ev: c.settings_acks() == 2)
        assert c.get("/")[1] == HELLO
        assert not c.goaway_frames()


def test_ping_is_answered_with_the_same_payload_and_acks_are_not_6_7(servers, impl):
    server = servers.get(impl=impl)
    with connect(server) as c:
        c.send_frame(PingFrame(0, opaque_data=b"unasked!", flags=["ACK"]))
        c.send_frame(PingFrame(0, opaque_data=b"\x00\x01\x02\x03\xfc\xfd\xfe\xff"))
        c.wait_for(lambda ev: c.frames_of(PingFrame))
        c.read_for(0.3)
        pings = c.frames_of(PingFrame)
        assert [(p.opaque_data, "ACK" in p.flags) for p in pings] == [
            (b"\x00\x01\x02\x03\xfc\xfd\xfe\xff", True)]
        assert c.get("/")[1] == HELLO


def test_priority_frames_are_accepted_and_ignored_5_3_2(servers, impl):
    """PRIORITY (deprecated, §5.3.2) on idle, open and closed streams is no error."""
    server = servers.get(impl=impl)
    with connect(server) as c:
        done = c.request("/")
        c.response(done)
        sid = _open_stream(c)
        for target in (done, sid, sid + 20):
            c.send_raw(raw_frame(PRIORITY, 0, target, struct.pack(">IB", 0, 15)))
        c.send_body(sid, b"prioritised")
        assert c.response(sid)[1] == b"prioritised"
        assert not c.goaway_frames()
