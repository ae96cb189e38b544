"""The opening handshake (RFC 6455 §4.2, RFC 8441 §4-§5): every bad request's outcome, the
response fields, subprotocols and extensions; and a whole session with the ``websockets``
library's sans-IO client (its request validated here, our 101 accepted there, messages both
ways with permessage-deflate) on both codec twins."""
from __future__ import annotations

import base64
import os

import pytest
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Opcode
from websockets.protocol import State as WsState
from websockets.uri import parse_uri
from websockets.utils import accept_key as ws_accept_key

from kyoukai_h2fast.websocket import (
    DeflatePolicy,
    Rejection,
    WebSocketConnection,
    WebSocketRequest,
    accept_key,
    accept_response,
    check_subprotocol,
    is_upgrade_request,
    negotiate_extensions,
    select_subprotocol,
    validate_http1_request,
    validate_http2_request,
)
from kyoukai_h2fast.websocket.events import BytesMessage, CloseReceived, TextMessage
from tests.helpers.builds import implementations

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
GOOD_H1 = [(b":method", b"GET"), (b":path", b"/chat?x=1"), (b"host", b"server.example.com"),
           (b"upgrade", b"websocket"), (b"connection", b"Upgrade"),
           (b"sec-websocket-key", KEY), (b"sec-websocket-version", b"13")]
GOOD_H2 = [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
           (b":path", b"/chat"), (b":authority", b"server.example.com"),
           (b"sec-websocket-version", b"13")]
V13 = (b"Sec-WebSocket-Version", b"13")
UPGRADE_FIELDS = ((b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"), V13)


def without(headers, name):
    return [(n, v) for n, v in headers if n != name]


def replaced(headers, name, *values):
    return without(headers, name) + [(name, v) for v in values]


def test_accept_key_is_the_rfc_example_and_agrees_with_websockets():
    assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="          # RFC 6455 §1.3
    for _ in range(20):
        key = base64.b64encode(os.urandom(16)).decode()
        assert accept_key(key) == ws_accept_key(key) == accept_key(key.encode())


def test_a_good_http1_request():
    request = validate_http1_request(GOOD_H1 + [(b"sec-websocket-protocol", b"chat, superchat"),
                                                (b"sec-websocket-protocol", b"v2"),
                                                (b"sec-websocket-extensions", b"foo")])
    assert request == WebSocketRequest(b"/chat?x=1", KEY, ("chat", "superchat", "v2"),
                                       (b"foo",), False)
    # field names in any case, list tokens in any case and position
    mixed = [(b"Host", b"h"), (b"Upgrade", b"h2c, WebSocket"),
             (b"Connection", b"keep-alive"), (b"Connection", b"UPGRADE"),
             (b"Sec-WebSocket-Key", b" " + KEY), (b"Sec-WebSocket-Version", b"13"),
             (b":method", b"GET")]
    assert isinstance(validate_http1_request(mixed), WebSocketRequest)


@pytest.mark.parametrize("headers, version, status, reason, fields", [
    (replaced(GOOD_H1, b":method", b"POST"), "1.1", 405,
     "a WebSocket handshake is a GET request", ((b"Allow", b"GET"),)),
    (GOOD_H1, "1.0", 400, "a WebSocket handshake needs HTTP/1.1", ()),
    (without(GOOD_H1, b"host"), "1.1", 400, "missing Host", ()),
    (without(GOOD_H1, b"upgrade"), "1.1", 426, "missing Upgrade: websocket", UPGRADE_FIELDS),
    (replaced(GOOD_H1, b"upgrade", b"h2c"), "1.1", 426, "missing Upgrade: websocket",
     UPGRADE_FIELDS),
    (without(GOOD_H1, b"connection"), "1.1", 400, "missing Connection: Upgrade", ()),
    (replaced(GOOD_H1, b"connection", b"keep-alive"), "1.1", 400,
     "missing Connection: Upgrade", ()),
    (without(GOOD_H1, b"sec-websocket-version"), "1.1", 426,
     "unsupported Sec-WebSocket-Version (13 is supported)", UPGRADE_FIELDS),
    (replaced(GOOD_H1, b"sec-websocket-version", b"8"), "1.1", 426,
     "unsupported Sec-WebSocket-Version (13 is supported)", UPGRADE_FIELDS),
    (replaced(GOOD_H1, b"sec-websocket-version", b"13", b"13"), "1.1", 426,
     "unsupported Sec-WebSocket-Version (13 is supported)", UPGRADE_FIELDS),
    (without(GOOD_H1, b"sec-websocket-key"), "1.1", 400,
     "missing or repeated Sec-WebSocket-Key", ()),
    (replaced(GOOD_H1, b"sec-websocket-key", KEY, KEY), "1.1", 400,
     "missing or repeated Sec-WebSocket-Key", ()),
    (replaced(GOOD_H1, b"sec-websocket-key", base64.b64encode(b"x" * 15)), "1.1", 400,
     "Sec-WebSocket-Key is not 16 bytes in base64", ()),
    (replaced(GOOD_H1, b"sec-websocket-key", b"!" * 24), "1.1", 400,
     "Sec-WebSocket-Key is not 16 bytes in base64", ()),
    (replaced(GOOD_H1, b"sec-websocket-key", KEY[:-2] + b"=A"), "1.1", 400,
     "Sec-WebSocket-Key is not 16 bytes in base64", ()),
    (GOOD_H1 + [(b"sec-websocket-protocol", b"chat, not a token")], "1.1", 400,
     "malformed Sec-WebSocket-Protocol", ()),
    (GOOD_H1 + [(b"sec-websocket-extensions", b"permessage-deflate;")], "1.1", 400,
     "malformed Sec-WebSocket-Extensions", ()),
], ids=["post", "http10", "no-host", "no-upgrade", "upgrade-h2c", "no-connection",
        "connection-keep-alive", "no-version", "version-8", "version-twice", "no-key",
        "two-keys", "key-15-bytes", "key-not-base64", "key-bad-padding", "bad-protocols",
        "bad-extensions"])
def test_each_bad_http1_request_has_one_outcome(headers, version, status, reason, fields):
    assert validate_http1_request(headers, version) == Rejection(status, reason, fields)


def test_a_good_http2_request_and_the_key_is_ignored():
    assert validate_http2_request(GOOD_H2) == WebSocketRequest(b"/chat", None, (), (), True)
    keyed = validate_http2_request(GOOD_H2 + [(b"sec-websocket-key", b"anything")])
    assert isinstance(keyed, WebSocketRequest) and keyed.key is None


@pytest.mark.parametrize("headers, status, reason, fields, malformed", [
    (replaced(GOOD_H2, b":method", b"GET"), 400, ":protocol on a request other than CONNECT",
     (), True),
    (without(GOOD_H2, b":scheme"), 400, "extended CONNECT without :scheme", (), True),
    (without(GOOD_H2, b":path"), 400, "extended CONNECT without :path", (), True),
    (without(GOOD_H2, b":authority"), 400, "extended CONNECT without :authority", (), True),
    (replaced(GOOD_H2, b":path", b"/a", b"/b"), 400, "repeated :path", (), True),
    (replaced(GOOD_H2, b":protocol", b"webtransport"), 501,
     "unsupported :protocol (websocket is supported)", (), False),
    (without(GOOD_H2, b"sec-websocket-version"), 400,
     "unsupported sec-websocket-version (13 is supported)",
     ((b"sec-websocket-version", b"13"),), False),
    (replaced(GOOD_H2, b"sec-websocket-version", b"12"), 400,
     "unsupported sec-websocket-version (13 is supported)",
     ((b"sec-websocket-version", b"13"),), False),
    (GOOD_H2 + [(b"sec-websocket-protocol", b"a b")], 400, "malformed Sec-WebSocket-Protocol",
     (), False),
], ids=["not-connect", "no-scheme", "no-path", "no-authority", "two-paths", "other-protocol",
        "no-version", "version-12", "bad-protocols"])
def test_each_bad_http2_request_has_one_outcome(headers, status, reason, fields, malformed):
    assert validate_http2_request(headers) == Rejection(status, reason, fields, malformed)


def test_is_upgrade_request():
    assert is_upgrade_request(GOOD_H1)
    assert is_upgrade_request([(b"Upgrade", b"foo, WebSocket")])
    assert not is_upgrade_request(without(GOOD_H1, b"upgrade"))
    assert not is_upgrade_request([(b"upgrade", b"h2c")])


def test_response_fields_over_both_transports():
    h1 = validate_http1_request(GOOD_H1 + [(b"sec-websocket-protocol", b"chat")])
    h2 = validate_http2_request(GOOD_H2 + [(b"sec-websocket-protocol", b"chat")])
    assert isinstance(h1, WebSocketRequest) and isinstance(h2, WebSocketRequest)
    assert accept_response(h1) == (101, [(b"Upgrade", b"websocket"),
                                         (b"Connection", b"Upgrade"),
                                         (b"Sec-WebSocket-Accept",
                                          b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")])
    assert accept_response(h1, "chat", "permessage-deflate")[1][3:] == [
        (b"Sec-WebSocket-Protocol", b"chat"), (b"Sec-WebSocket-Extensions",
                                               b"permessage-deflate")]
    assert accept_response(h2) == (200, [])
    assert accept_response(h2, "chat", "permessage-deflate") == (200, [
        (b"sec-websocket-protocol", b"chat"),
        (b"sec-websocket-extensions", b"permessage-deflate")])
    with pytest.raises(ValueError):
        accept_response(h2, "superchat")


def test_subprotocols():
    request = validate_http1_request(GOOD_H1 + [(b"sec-websocket-protocol", b"b, a")])
    assert isinstance(request, WebSocketRequest)
    assert select_subprotocol(request, ["a", "b"]) == "a"       # the server's preference
    assert select_subprotocol(request, ["c"]) is None
    check_subprotocol(request, None)
    check_subprotocol(request, "b")
    with pytest.raises(ValueError, match="not offered"):
        check_subprotocol(request, "c")


def test_extensions_need_a_policy():
    request = validate_http2_request(GOOD_H2 + [(b"sec-websocket-extensions",
                                                 b"permessage-deflate")])
    assert isinstance(request, WebSocketRequest)
    assert negotiate_extensions(request) == (None, None)
    value, pmd = negotiate_extensions(request, DeflatePolicy())
    assert value == "permessage-deflate; server_max_window_bits=12" and pmd is not None
    plain = validate_http2_request(GOOD_H2)
    assert isinstance(plain, WebSocketRequest)
    assert negotiate_extensions(plain, DeflatePolicy()) == (None, None)


# -- a whole session with the websockets library's client ------------------------------------
def _parse_request(data: bytes) -> list[tuple[bytes, bytes]]:
    """The HTTP/1.1 reader's shape: ``:method``, ``:path``, then lower-case fields."""
    head, _, _ = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    method, path, _ = lines[0].split(b" ")
    fields = [(b":method", method), (b":path", path)]
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields.append((name.strip().lower(), value.strip()))
    return fields


@pytest.fixture(params=implementations("websocket"))
def codec(request):
    return request.param


@pytest.mark.parametrize("deflate", [True, False], ids=["deflate", "plain"])
def test_a_session_with_the_websockets_client(codec, deflate):
    client = ClientProtocol(parse_uri("ws://localhost:8000/chat"),
                            subprotocols=["chat", "superchat"],
                            extensions=[ClientPerMessageDeflateFactory()] if deflate else None)
    client.send_request(client.connect())
    request = validate_http1_request(_parse_request(b"".join(client.data_to_send())))
    assert isinstance(request, WebSocketRequest)
    value, pmd = negotiate_extensions(request, DeflatePolicy())
    assert (pmd is not None) == deflate
    subprotocol = select_subprotocol(request, ["superchat", "chat"])
    status, fields = accept_response(request, subprotocol, value)
    response = b"HTTP/1.1 101 Switching Protocols\r\n" + b"".join(
        n + b": " + v + b"\r\n" for n, v in fields) + b"\r\n"
    client.receive_data(response)
    assert client.handshake_exc is None and client.state is WsState.OPEN
    assert [type(e).__name__ for e in client.events_received()] == ["Response"]
    assert client.subprotocol == "superchat"
    assert bool(client.extensions) == deflate

    server = WebSocketConnection(codec=codec, deflate=pmd)
    text = "Hello-µ@ßöäüàá-UTF-8!! " * 500
    client.send_text(text.encode())
    client.send_binary(os.urandom(10000))
    client.send_ping(b"hb")
    client.send_text(b"frag-", fin=False)
    client.send_continuation(b"ment", fin=True)
    events = server.receive(b"".join(client.data_to_send()))
    assert [type(e).__name__ for e in events] == ["TextMessage", "BytesMessage", "Ping",
                                                 "TextMessage"]
    assert events[0] == TextMessage(text) and events[3] == TextMessage("frag-ment")
    assert isinstance(events[1], BytesMessage) and len(events[1].data) == 10000
    out = server.data_to_send() + server.send_text(text) + server.send_bytes(b"\x00" * 3000)
    client.receive_data(out)
    got = client.events_received()
    assert [(f.opcode, bytes(f.data)) for f in got] == [
        (Opcode.PONG, b"hb"), (Opcode.TEXT, text.encode()), (Opcode.BINARY, b"\x00" * 3000)]
    client.receive_data(server.send_close(1001, "bye"))
    assert server.receive(b"".join(client.data_to_send())) == [CloseReceived(1001, "bye")]
    assert server.closed and client.close_rcvd.code == 1001
