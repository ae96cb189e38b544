"""Protocol selection on the shared port (kyoukai_h2fast.server.protocol_select): the first
bytes of a cleartext connection (RFC 9113 §3.4 preface vs an RFC 9112 §3 request line), fed
whole and split at every byte, and the hand-over on the real server whatever the split."""
from __future__ import annotations

import socket
import time

import pytest

from kyoukai_h2fast.server.protocol_select import classify
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
])
def test_classify(data, kind):
    assert classify(data) == kind


@pytest.mark.parametrize("data", [PREFACE, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"])
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
