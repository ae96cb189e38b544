"""Protocol selection on the shared port (kyoukai_h2fast.server.protocol_select): the first
bytes of a cleartext connection (RFC 9113 §3.4 preface vs an RFC 9112 §3 HTTP/1.x request line), fed
whole and split at every byte; the hand-over on the real server whatever the split; bytes that
are no HTTP/1.x request line (h2spec §3.5's "INVALID CONNECTION PREFACE", other versions) get
GOAWAY(PROTOCOL_ERROR) and a close; a long request target is neither rescanned per read nor
waited for beyond its bound."""
from __future__ import annotations

import signal
import socket
import time

import pytest
from hyperframe.frame import GoAwayFrame, SettingsFrame

from kyoukai_h2fast.server import protocol_select as sniff
from kyoukai_h2fast.server.protocol_select import classify
from tests.helpers.engine_frames import parse_frames
from tests.helpers.h2client import H2Client
from tests.helpers.http1raw import H1Raw, request

pytestmark = pytest.mark.timeout(120)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@pytest.mark.parametrize("data, kind", [
    (PREFACE, "h2"),
    (PREFACE[:16], "h2"),                      # the preface's request line is enough
    (b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", "h2"),  # a bad preface: HTTP/2 answers GOAWAY
    (b"GET / HTTP/1.1\r\n", "http/1.1"),
    (b"POST /x HTTP/1.0\r\n", "http/1.1"),
    (b"\r\nGET / HTTP/1.1\r\n", "http/1.1"),   # RFC 9112 §2.2: leading empty line
    (b"PRI /x HTTP/1.1\r\n", "http/1.1"),      # a PRI method that is not the preface
    (b"\x00\xff" * 10, "h2"),                  # garbage: HTTP/2 rejects it as before
    (b"\x16\x03\x01\x00\xa5", "h2"),            # TLS on the cleartext port
    (b"GET\r\n", "h2"),                        # not a request line
    (b"A" * 64, "h2"),                         # no method is that long
    # RFC 9113 §3.4: not the preface and not HTTP/1.x: an invalid HTTP/2 preface
    (b"INVALID CONNECTION PREFACE\r\n\r\n", "h2"),  # h2spec §3.5 case 2
    (b"INVALID", None),                        # (could still be a method)
    (b"INVALID CONNECTION P", "h2"),           # decided at the first byte no version has
    (b"GET / HTTP/2.0\r\n", "h2"),             # major version 2 in a request line
    (b"GET / HTTP/0.9\r\n", "h2"),
    (b"GET / HTTP/3.1\r\n", "h2"),
    (b"GET /\r\n", "h2"),                      # HTTP/0.9 simple request: no version
    (b"GET / http/1.1\r\n", "h2"),             # HTTP-name is case-sensitive
    (b"GET / HTTP/1.1x\r\n", "h2"),
    (b"GET  / HTTP/1.1\r\n", "h2"),            # empty target
    (b"GET /a b HTTP/1.1\r\n", "h2"),          # a space in the target
    # RFC 9112 §2.3: HTTP/1.x whatever the minor version; the HTTP/1.1 side answers
    (b"GET / HTTP/1.2\r\n", "http/1.1"),
    (b"GET / HTTP/1.1\nHost: x\n\n", "http/1.1"),  # bare LF: the HTTP/1.1 parser says 400
    # decided once the version is complete, with or without the line's end
    (b"GET / HTTP/1.1", "http/1.1"),
    (b"GET / HTTP/1.0\r", "http/1.1"),
    (b"GET / HTTP/1.", None),
    (b"GET / H", None),
    (b"GET / HTTX", "h2"),
    (b"GET /", None),
    (b"GET ", None),
    pytest.param(b"GET /" + b"a" * 60_000, None, id="long-target-waits"),  # (up to its bound)
    (b"\r\n\r", None),
])
def test_classify(data, kind):
    assert classify(data) == kind


def test_a_target_longer_than_its_bound_goes_to_http11_for_its_414():
    assert classify(b"GET /" + b"a" * 999, max_target=1000) is None
    assert classify(b"GET /" + b"a" * 1000, max_target=1000) == "http/1.1"


@pytest.mark.parametrize("data", [PREFACE, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                                  b"INVALID CONNECTION PREFACE\r\n\r\n",
                                  b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
                                  b"\r\nPOST /x?y=1 HTTP/1.0\r\n\r\n"])
def test_every_prefix_waits_or_agrees_with_the_whole(data):
    whole = classify(data)
    for n in range(len(data)):
        assert classify(data[:n]) in (None, whole), data[:n]
    assert classify(b"") is None


@pytest.mark.parametrize("step", [1, 3, 7])
def test_request_split_into_tiny_writes_is_served_as_http11(servers, impl, step):
    server = servers.get(impl=impl)
    payload = request("GET", "/", headers=[("Connection", "close")])
    with H1Raw(server.port) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(payload), step):
            c.send(payload[i:i + step])
            time.sleep(0.002)
        reply = c.reply()
    assert (reply.status, reply.body) == (200, b"Hello, world!")


def test_connection_that_sends_only_a_method_is_closed_by_the_idle_timeout(servers, impl):
    server = servers.get(impl=impl, args=["--idle-timeout", "1"])
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as s:
        s.sendall(b"GE")
        assert s.recv(100) == b""


def _server_frames(port: int, payload: bytes) -> list:
    """Send ``payload`` on a new connection; the frames the server sends until it closes."""
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(payload)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return parse_frames(data)  # the server closed the connection
            data += chunk


@pytest.mark.parametrize("payload", [
    b"INVALID CONNECTION PREFACE\r\n\r\n",      # h2spec §3.5 case 2
    b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",       # not an HTTP/1.x request, not the preface
    b"GET / HTTP/3.1\r\nHost: x\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",        # the preface's line, then a wrong rest
], ids=["h2spec-3.5-2", "version-2.0", "version-3.1", "bad-preface-rest"])
@pytest.mark.parametrize("http1", [True, False], ids=["http1", "no-http1"])
def test_an_invalid_preface_gets_goaway_protocol_error_and_a_close(servers, impl, payload,
                                                                   http1):
    """RFC 9113 §3.4: an invalid connection preface is a connection error PROTOCOL_ERROR (the
    server's SETTINGS, then GOAWAY(PROTOCOL_ERROR), then the close), whether or not HTTP/1.1
    is served on the port; never an HTTP/1.1 response."""
    server = servers.get(impl=impl, args=[] if http1 else ["--no-http1"])
    frames = _server_frames(server.port, payload)
    assert isinstance(frames[0], SettingsFrame), frames
    goaways = [f for f in frames if isinstance(f, GoAwayFrame)]
    assert len(goaways) == 1 and frames[-1] is goaways[0], frames
    assert (goaways[0].error_code, goaways[0].last_stream_id) == (1, 0)  # PROTOCOL_ERROR


def test_http11_request_line_with_no_http1_still_gets_505(servers, impl):
    server = servers.get(impl=impl, args=["--no-http1"])
    with H1Raw(server.port) as c:
        c.send(request("GET", "/"))
        assert c.reply().status == 505
        assert c.closed_by_server()


def test_a_long_target_sent_in_pieces_is_told_414_once_past_its_bound(servers, impl):
    """A request line that has not ended after --max-header-list-size bytes of target is an
    HTTP/1.x request too long to serve: 414, as when it arrives whole."""
    server = servers.get(impl=impl, args=["--max-header-list-size", "8192"])
    with H1Raw(server.port) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.send(b"GET /" + b"a" * 4000)
        time.sleep(0.1)
        c.send(b"a" * 5000)  # no version yet
        reply = c.reply()
        assert reply.status == 414
        assert c.closed_by_server()


class _Transport:
    def __init__(self) -> None:
        self.protocol = None
        self.closed = False

    def get_extra_info(self, name):
        return None

    def set_protocol(self, protocol) -> None:
        self.protocol = protocol

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class _Component:
    class config:  # noqa: N801  (a stand-in for ServerConfig)
        idle_timeout = 0
        max_header_list_size = 65536

    connections: set = set()


class _Chosen:
    def __init__(self) -> None:
        self.data = b""

    def connection_made(self, transport) -> None:
        pass

    def data_received(self, data: bytes) -> None:
        self.data += data


def test_a_target_arriving_byte_by_byte_is_not_rescanned_per_byte(monkeypatch):
    """A 60 KiB request target in 1-byte reads: the sniffer scans the buffer only for reads
    that may decide (a space, CR or LF), not once per byte (which would be quadratic)."""
    scans = []
    real_scan = sniff._scan

    def counting_scan(data, max_target):
        scans.append(len(data))
        return real_scan(data, max_target)

    monkeypatch.setattr(sniff, "_scan", counting_scan)
    chosen = _Chosen()
    sniffer = sniff.ProtocolSniffer(_Component(), _Chosen, lambda: chosen)
    transport = _Transport()
    sniffer.connection_made(transport)
    line = b"GET /" + b"a" * 60_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    for i in range(len(line)):
        if transport.protocol is not None:
            transport.protocol.data_received(line[i:i + 1])
        else:
            sniffer.data_received(line[i:i + 1])
    assert transport.protocol is chosen and chosen.data == line
    # (the method's bytes and the version's each may decide: a dozen scans, not 60,000)
    assert len(scans) < 20, len(scans)


@pytest.mark.parametrize("http2", [True, False], ids=["h2", "http1.1"])
def test_a_request_still_arriving_at_shutdown_is_served_then_the_server_exits(servers, impl,
                                                                              http2):
    """SIGTERM while a connection's first bytes are arriving: they still choose the protocol,
    the request is served, the connection closes and the server exits 0; a connection that
    has sent nothing is closed after a short grace (0.5 s)."""
    server = servers.fresh(impl=impl)
    if http2:
        client = H2Client("127.0.0.1", server.port, initiate=False, timeout=15)
        client.conn.initiate_connection()
        client.conn.send_headers(1, [(":method", "GET"), (":path", "/"), (":scheme", "http"),
                                     (":authority", "localhost")], end_stream=True)
        start = client.conn.data_to_send()  # the preface, SETTINGS and the request, as
        first, rest = start[:10], start[10:]  # clients send them: in one write
    else:
        client = H1Raw(server.port)
        first = b"GET / HT"
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as idle:
        client.sock.sendall(first)
        time.sleep(0.3)  # accepted, and the first bytes read
        server.signal(signal.SIGTERM)
        time.sleep(0.2)
        if http2:
            client.sock.sendall(rest)
            headers, body = client.response(1)
            assert (headers[":status"], body) == ("200", b"Hello, world!")
        else:
            client.send(b"TP/1.1\r\nHost: x\r\n\r\n")
            reply = client.reply()
            assert (reply.status, reply.body) == (200, b"Hello, world!")
            assert client.closed_by_server()
        began = time.monotonic()
        assert idle.recv(100) == b""  # closed after its grace
        assert time.monotonic() - began < 5
    client.close()
    assert server.wait(30) == 0
