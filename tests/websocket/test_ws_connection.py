"""The WebSocket connection (RFC 6455 §5.4-§7): its state table pair by pair, the close
handshake, automatic pongs and their bound, the flood budgets (on a clock of the test's), the
message limit, sending, and a client's masking; on both codec twins.

The budgets' 10 s windows read ``time.monotonic``, replaced here so the verdicts do not depend
on the machine's speed.
"""
from __future__ import annotations

import time

import pytest

from kyoukai_h2fast.websocket.connection import (
    REASONS,
    TRANSITIONS,
    Action,
    Input,
    State,
    WebSocketConnection,
)
from kyoukai_h2fast.websocket.errors import InvalidStateError
from kyoukai_h2fast.websocket.events import (
    BytesMessage,
    CloseReceived,
    ConnectionFailed,
    Ping,
    Pong,
    TextMessage,
)
from tests.helpers.builds import implementations
from tests.websocket.ws_helpers import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    close_code,
    close_payload,
    frame,
    parse_frames,
)


@pytest.fixture(params=implementations("websocket"))
def codec(request):
    return request.param


@pytest.fixture
def clock(monkeypatch):
    """A clock the test moves: ``clock.now`` seconds."""
    class Clock:
        now = 1000.0

        def __call__(self) -> float:
            return self.now

    fake = Clock()
    monkeypatch.setattr(time, "monotonic", fake)
    return fake


def connection_in(state: State, codec, **kwargs) -> WebSocketConnection:
    conn = WebSocketConnection(codec=codec, **kwargs)
    if state is State.CLOSING:
        assert conn.send_close(1001)
    elif state is State.CLOSED:
        conn.receive(frame(CLOSE, close_payload(1000)))
        conn.data_to_send()
    assert conn.state is state
    return conn


# -- the state table, every pair -------------------------------------------------------------
def test_the_table_has_every_pair():
    assert set(TRANSITIONS) == {(s, i) for s in State for i in Input}


def _apply(conn: WebSocketConnection, event: Input) -> tuple[list, bytes, bytes | None]:
    """Make ``event`` happen; (events, automatic output, bytes returned or None if refused)."""
    returned: bytes | None = b""
    events: list = []
    try:
        if event is Input.RECV_DATA:
            events = conn.receive(frame(TEXT, "data"))
        elif event is Input.RECV_PING:
            events = conn.receive(frame(PING, b"ping"))
        elif event is Input.RECV_PONG:
            events = conn.receive(frame(PONG, b"pong"))
        elif event is Input.RECV_CLOSE:
            events = conn.receive(frame(CLOSE, close_payload(1000, "bye")))
        elif event is Input.SEND_DATA:
            returned = conn.send_text("data")
        elif event is Input.SEND_CONTROL:
            returned = conn.send_ping(b"ping")
        elif event is Input.SEND_CLOSE:
            returned = conn.send_close(1000)
        else:
            events = conn.receive(frame(3))
    except InvalidStateError:
        returned = None
    return events, conn.data_to_send(), returned


@pytest.mark.parametrize("state, event", sorted(TRANSITIONS, key=lambda p: (p[0].value,
                                                                           p[1].value)),
                         ids=lambda x: x.value)
def test_each_state_and_input_does_what_the_table_says(codec, state, event):
    conn = connection_in(state, codec)
    next_state, action = TRANSITIONS[(state, event)]
    events, automatic, returned = _apply(conn, event)
    assert conn.state is next_state
    assert (returned is None) == bool(action & Action.REFUSE)
    assert bool(returned) == bool(action & Action.SEND)
    assert bool(events) == bool(action & Action.DELIVER)
    assert bool(automatic) == bool(action & Action.ANSWER)
    if action & Action.ANSWER:
        (opcode, payload), = parse_frames(automatic)
        expected = {Input.RECV_PING: (PONG, b"ping"), Input.RECV_CLOSE: (CLOSE, b"\x03\xe8"),
                    Input.FAIL: (CLOSE, None)}[event]
        assert opcode == expected[0]
        assert expected[1] is None or payload == expected[1]
    if events:
        assert type(events[0]) is {Input.RECV_DATA: TextMessage, Input.RECV_PING: Ping,
                                   Input.RECV_PONG: Pong, Input.RECV_CLOSE: CloseReceived,
                                   Input.FAIL: ConnectionFailed}[event]


# -- the close handshake ---------------------------------------------------------------------
def test_the_peer_closes_we_echo_its_code_and_read_nothing_after(codec):
    conn = WebSocketConnection(codec=codec)
    data = frame(TEXT, "a") + frame(CLOSE, close_payload(4000, "done")) + frame(TEXT, "late")
    assert conn.receive(data) == [TextMessage("a"), CloseReceived(4000, "done")]
    assert parse_frames(conn.data_to_send()) == [(CLOSE, b"\x0f\xa0")]
    assert (conn.closed, conn.close_code, conn.close_reason, conn.close_sent) == (
        True, 4000, "done", 4000)
    assert conn.receive(frame(TEXT, "later")) == []
    with pytest.raises(InvalidStateError):
        conn.send_text("too late")
    assert conn.send_close() == b""


def test_a_close_without_a_code_is_echoed_without_one(codec):
    conn = WebSocketConnection(codec=codec)
    assert conn.receive(frame(CLOSE)) == [CloseReceived(1005, "")]
    assert conn.data_to_send() == b"\x88\x00"
    assert conn.close_code == 1005


def test_we_close_messages_still_arriving_are_dropped_and_pings_answered(codec):
    conn = WebSocketConnection(codec=codec)
    sent = conn.send_close(1001, "going away")
    assert parse_frames(sent) == [(CLOSE, b"\x03\xe9going away")]
    assert conn.state is State.CLOSING and conn.close_code is None and conn.close_sent == 1001
    assert conn.receive(frame(TEXT, "in flight") + frame(PING, b"p") + frame(PONG)) == []
    assert parse_frames(conn.data_to_send()) == [(PONG, b"p")]
    with pytest.raises(InvalidStateError):
        conn.send_bytes(b"no")
    with pytest.raises(InvalidStateError):
        conn.send_ping()
    assert conn.send_close() == b""
    assert conn.receive(frame(CLOSE, close_payload(1001))) == [CloseReceived(1001, "")]
    assert conn.data_to_send() == b"" and conn.closed and conn.close_code == 1001


def test_a_failure_while_closing_sends_no_second_close(codec):
    conn = WebSocketConnection(codec=codec)
    conn.send_close()
    assert conn.receive(frame(TEXT, b"\xff")) == [
        ConnectionFailed(1007, "invalid UTF-8 in a text message")]
    assert conn.data_to_send() == b"" and conn.close_code == 1007 and conn.close_sent == 1000


def test_a_failure_sends_its_code_and_reason_and_closes(codec):
    conn = WebSocketConnection(codec=codec)
    events = conn.receive(frame(TEXT, "ok") + frame(TEXT, "x", mask=None) + frame(TEXT, "no"))
    assert events == [TextMessage("ok"), ConnectionFailed(1002, "unmasked frame from a client")]
    assert parse_frames(conn.data_to_send()) == [(CLOSE, b"\x03\xeaunmasked frame from a client")]
    assert conn.closed and conn.close_code == 1002 and conn.close_sent == 1002


@pytest.mark.parametrize("payload, code, reason", [
    (b"\x03", 1002, "close frame with a 1-byte payload"),
    (close_payload(1005), 1002, "invalid close code 1005"),
    (close_payload(999), 1002, "invalid close code 999"),
    (close_payload(1000, b"\xc3"), 1007, "invalid UTF-8 in the close reason"),
])
def test_a_bad_close_frame_fails_the_connection(codec, payload, code, reason):
    conn = WebSocketConnection(codec=codec)
    assert conn.receive(frame(CLOSE, payload)) == [ConnectionFailed(code, reason)]
    assert close_code(parse_frames(conn.data_to_send())[0][1]) == code


def test_send_close_checks_code_and_reason(codec):
    conn = WebSocketConnection(codec=codec)
    for code in (999, 1004, 1005 + 1, 1015, 2999, 5000):
        with pytest.raises(ValueError):
            conn.send_close(code)
    with pytest.raises(ValueError):
        conn.send_close(1005, "a reason without a code")
    with pytest.raises(ValueError):
        conn.send_close(1000, "é" * 62)                 # 124 bytes
    assert conn.state is State.OPEN
    assert conn.send_close(1000, "é" * 61) == b"\x88\x7c\x03\xe8" + "é".encode() * 61
    assert WebSocketConnection(codec=codec).send_close(1005) == b"\x88\x00"


def test_a_failure_reason_is_cut_at_a_character_boundary(codec):
    conn = WebSocketConnection(codec=codec)
    frame_bytes = conn._close_frame(1008, "é" * 100)
    (opcode, payload), = parse_frames(frame_bytes)
    assert len(payload) == 124 and payload[2:].decode() == "é" * 61


# -- pings, pongs and their bounds -----------------------------------------------------------
def test_pongs_queue_until_output_drained_and_then_fail_1008(codec, clock):
    conn = WebSocketConnection(codec=codec, max_queued_pongs=3)
    assert len(conn.receive(frame(PING) * 3)) == 3
    conn.output_drained()                               # the transport wrote them out
    assert len(conn.receive(frame(PING) * 3)) == 3
    assert conn.receive(frame(PING)) == [ConnectionFailed(1008, REASONS["pongs"])]
    frames = parse_frames(conn.data_to_send())
    assert frames[:6] == [(PONG, b"")] * 6 and close_code(frames[6][1]) == 1008


def test_ping_flood_fails_1008_within_10s_but_not_over_time(codec, clock):
    conn = WebSocketConnection(codec=codec, max_pings_per_10s=5)
    for _ in range(5):
        conn.receive(frame(PING))
        conn.output_drained()
        clock.now += 2.2                               # one every 2.2 s
    assert conn.receive(frame(PING)) == [Ping(b"")]     # the first has left the window
    slow = WebSocketConnection(codec=codec, max_pings_per_10s=5)
    assert slow.receive(frame(PING) * 5) == [Ping(b"")] * 5
    assert slow.receive(frame(PING)) == [ConnectionFailed(1008, REASONS["pings"])]


def test_frames_without_progress_fail_1008(codec, clock):
    conn = WebSocketConnection(codec=codec, max_empty_frames_per_10s=4)
    data = frame(TEXT, fin=False) + frame(CONT, fin=False) * 2 + frame(PONG)
    assert conn.receive(data) == [Pong(b"")]
    assert conn.receive(frame(CONT, "done")) == [TextMessage("done")]   # progress: not counted
    assert conn.receive(frame(BINARY) * 3) == [BytesMessage(b"")] * 3   # whole messages either
    assert conn.receive(frame(BINARY, fin=False)) == [
        ConnectionFailed(1008, REASONS["empty"])]
    clock.now += 11
    fresh = WebSocketConnection(codec=codec, max_empty_frames_per_10s=4)
    for _ in range(3):
        fresh.receive(frame(PONG) * 4)
        clock.now += 10.5
    assert not fresh.closed


# -- messages --------------------------------------------------------------------------------
def test_fragments_are_joined_and_control_frames_pass_between(codec):
    conn = WebSocketConnection(codec=codec)
    data = (frame(BINARY, b"ab", fin=False) + frame(PING, b"1") + frame(CONT, b"cd", fin=False)
            + frame(CONT, b"ef") + frame(TEXT, "x", fin=False) + frame(CONT, "é"))
    assert conn.receive(data) == [Ping(b"1"), BytesMessage(b"abcdef"), TextMessage("xé")]


def test_a_fragmented_message_over_the_limit_fails_1009(codec):
    conn = WebSocketConnection(codec=codec, max_message_size=10)
    assert conn.receive(frame(TEXT, "12345", fin=False) + frame(CONT, "67890")) == [
        TextMessage("1234567890")]
    events = conn.receive(frame(TEXT, "12345", fin=False) + frame(CONT, "678901"))
    assert events == [ConnectionFailed(1009, "message too big")]


def test_send_checks_control_payloads(codec):
    conn = WebSocketConnection(codec=codec)
    assert conn.send_ping(b"x" * 125) == b"\x89\x7d" + b"x" * 125
    with pytest.raises(ValueError):
        conn.send_ping(b"x" * 126)
    with pytest.raises(ValueError):
        conn.send_pong(b"x" * 126)
    assert conn.send_pong(b"hb") == b"\x8a\x02hb"


def test_a_server_never_masks_and_a_client_always_does(codec):
    server = WebSocketConnection(codec=codec)
    client = WebSocketConnection(codec=codec, client=True)
    assert server.send_text("hi") == b"\x81\x02hi"
    out = client.send_text("hi") + client.send_bytes(b"\x00") + client.send_ping(b"p")
    assert parse_frames(out, masked=True) == [(TEXT, b"hi"), (BINARY, b"\x00"), (PING, b"p")]
    assert server.receive(out) == [TextMessage("hi"), BytesMessage(b"\x00"), Ping(b"p")]
    assert client.receive(server.data_to_send() + server.send_close(3000)) == [
        Pong(b"p"), CloseReceived(3000, "")]
    echo = client.data_to_send()
    assert parse_frames(echo, masked=True) == [(CLOSE, b"\x0b\xb8")]
    assert client.receive(frame(TEXT, "masked")) == []     # closed: nothing read
    fresh = WebSocketConnection(codec=codec, client=True)
    assert fresh.receive(frame(TEXT, "masked")) == [
        ConnectionFailed(1002, "masked frame from a server")]
    assert fresh.data_to_send()[1] & 0x80                  # its close frame is masked too


def test_masks_differ_from_frame_to_frame(codec):
    client = WebSocketConnection(codec=codec, client=True)
    keys = {client.send_text("same")[2:6] for _ in range(20)}
    assert len(keys) > 15


def test_the_message_limit_can_be_changed_after_the_handshake(codec):
    conn = WebSocketConnection(codec=codec)
    conn.max_message_size = 10
    assert conn.max_message_size == 10
    assert conn.receive(frame(BINARY, b"x" * 10)) == [BytesMessage(b"x" * 10)]
    assert conn.receive(frame(BINARY, b"x" * 11)) == [ConnectionFailed(1009, "message too big")]
