"""The ASGI ``websocket`` scope adapter on a session over an in-memory transport: the event
order, what the app leaves undone, and the errors an app gets for sends the state forbids."""
from __future__ import annotations

import asyncio

import pytest

from kyoukai_h2fast.asgi.websocket import run_websocket
from kyoukai_h2fast.config import ServerConfig
from kyoukai_h2fast.errors import ClientDisconnected
from kyoukai_h2fast.websocket import (
    BytesMessage,
    CloseReceived,
    TextMessage,
    WebSocketConnection,
    validate_http1_request,
)
from kyoukai_h2fast.websocket.session import WebSocketSession

HEADERS = [(b":method", b"GET"), (b":path", b"/a%20b?q=1"), (b"host", b"example.com"),
           (b"upgrade", b"websocket"), (b"connection", b"Upgrade"),
           (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
           (b"sec-websocket-version", b"13"), (b"sec-websocket-protocol", b"p1, p2")]


class MemoryTransport:
    """Records what the session sends; ``writable`` as set."""

    http_version = "1.1"

    def __init__(self) -> None:
        self.heads: list = []
        self.out = bytearray()
        self.finished = self.aborted = False
        self.can_write = True
        self.reading = True

    def respond(self, status, headers, end):
        self.heads.append((status, headers))

    def write(self, data, end=False):
        self.out += data

    def writable(self):
        return self.can_write

    def idle(self):
        return self.can_write

    def set_reading(self, on):
        self.reading = on

    def finish(self):
        self.finished = True

    def abort(self):
        self.aborted = True


def _session(**config) -> tuple[WebSocketSession, MemoryTransport]:
    transport = MemoryTransport()
    request = validate_http1_request(HEADERS)
    session = WebSocketSession(transport, request, HEADERS,
                               ServerConfig(ws_ping_interval=0, **config),
                               scheme="ws", client=("1.2.3.4", 5), server=("5.6.7.8", 80))
    return session, transport


def _read(transport: MemoryTransport) -> list:
    client = WebSocketConnection(client=True)
    events = client.receive(bytes(transport.out))
    transport.out.clear()
    return events


def test_scope_and_event_order():
    async def main():
        session, transport = _session()
        client = WebSocketConnection(client=True)
        seen = []

        async def app(scope, receive, send):
            seen.append(scope)
            seen.append(await receive())
            await send({"type": "websocket.accept", "subprotocol": "p2",
                        "headers": [(b"x-a", b"1")]})
            seen.append(await receive())
            await send({"type": "websocket.send", "text": "back"})
            seen.append(await receive())

        task = asyncio.ensure_future(run_websocket(app, session, root_path="/r",
                                                   state={"k": 1}))
        await asyncio.sleep(0)
        session.feed(client.send_bytes(b"hi"))
        await asyncio.sleep(0)
        session.feed(client.send_close(4000, "x"))
        await task
        scope = seen[0]
        assert scope["type"] == "websocket" and scope["path"] == "/a b"
        assert scope["raw_path"] == b"/a%20b" and scope["query_string"] == b"q=1"
        assert scope["root_path"] == "/r" and scope["state"] == {"k": 1}
        assert scope["subprotocols"] == ["p1", "p2"] and scope["client"] == ("1.2.3.4", 5)
        assert (b"host", b"example.com") in scope["headers"]
        assert not any(name.startswith(b":") for name, _ in scope["headers"])
        assert seen[1:] == [{"type": "websocket.connect"},
                            {"type": "websocket.receive", "bytes": b"hi"},
                            {"type": "websocket.disconnect", "code": 4000, "reason": "x"}]
        status, fields = transport.heads[0]
        assert status == 101 and (b"Sec-WebSocket-Protocol", b"p2") in fields
        assert (b"x-a", b"1") in fields
        events = _read(transport)
        assert events[0] == TextMessage("back") and events[1] == CloseReceived(4000, "")
        assert transport.finished
    asyncio.run(main())


@pytest.mark.parametrize(("fails", "status"), [(False, 403), (True, 500)])
def test_no_answer_is_403_or_500(fails, status):
    async def main():
        session, transport = _session()

        async def app(scope, receive, send):
            await receive()
            if fails:
                raise RuntimeError("app bug")

        await session.run(lambda s: run_websocket(app, s))
        assert transport.heads[0][0] == status and transport.finished
    asyncio.run(main())


@pytest.mark.parametrize(("fails", "code"), [(False, 1000), (True, 1011)])
def test_open_at_return_is_closed_1000_or_1011(fails, code):
    async def main():
        session, transport = _session()

        async def app(scope, receive, send):
            await receive()
            await send({"type": "websocket.accept"})
            if fails:
                raise RuntimeError("app bug")

        await session.run(lambda s: run_websocket(app, s))
        assert _read(transport) == [CloseReceived(code, "")]
    asyncio.run(main())


def test_send_after_close_raises_client_disconnected_and_bad_messages_runtime_error():
    async def main():
        session, transport = _session()
        errors = []

        async def app(scope, receive, send):
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000})
            for message in ({"type": "websocket.send", "text": "late"},
                            {"type": "websocket.accept"},
                            {"type": "websocket.nonsense"}):
                try:
                    await send(message)
                except Exception as e:
                    errors.append(type(e))

        await session.run(lambda s: run_websocket(app, s))
        assert errors == [ClientDisconnected, RuntimeError, RuntimeError]
    asyncio.run(main())


def test_send_waits_while_the_transport_is_full():
    async def main():
        session, transport = _session()
        await session.accept()
        transport.can_write = False
        sending = asyncio.ensure_future(session.send(b"x"))
        await asyncio.sleep(0.01)
        assert not sending.done() and transport.out == b""
        transport.can_write = True
        session.output_drained()
        await sending
        assert _read(transport) == [BytesMessage(b"x")]
    asyncio.run(main())


def test_reading_stops_at_the_queue_limit_and_restarts():
    async def main():
        session, transport = _session(ws_max_queue=2)
        client = WebSocketConnection(client=True)
        await session.accept()
        session.feed(client.send_text("1") + client.send_text("2"))
        assert transport.reading is False
        assert await session.receive() == "1"
        assert transport.reading is True
    asyncio.run(main())


def test_denial_with_body_in_parts():
    async def main():
        session, transport = _session()

        async def app(scope, receive, send):
            await receive()
            await send({"type": "websocket.http.response.start", "status": 401,
                        "headers": [(b"www-authenticate", b"Basic")]})
            await send({"type": "websocket.http.response.body", "body": b"a",
                        "more_body": True})
            await send({"type": "websocket.http.response.body", "body": b"b"})

        await session.run(lambda s: run_websocket(app, s))
        status, fields = transport.heads[0]
        assert status == 401 and (b"www-authenticate", b"Basic") in fields
        assert (b"content-length", b"2") in fields and transport.out == b"ab"
    asyncio.run(main())


def test_pongs_count_only_while_the_peer_does_not_read():
    async def main():
        session, transport = _session()
        client = WebSocketConnection(client=True)
        await session.accept()
        conn = session._conn
        for _ in range(5):                         # the peer reads between its pings
            session.feed(client.send_ping(b"p"))
        assert conn._queued_pongs == 1
        transport.can_write = False                # now it does not
        for _ in range(5):
            session.feed(client.send_ping(b"p"))
        assert conn._queued_pongs == 6
    asyncio.run(main())
