"""Every (state, input) pair of the stream table, and of the connection phase table, driven
through the engine's public interface (RFC 9113 §5.1, §3.4, §5.4, §6.8).

The compiled engine exports its tables (``stream_transitions()``, ``connection_transitions()``).
For each pair, a stream is brought into the state through the interface, the input is applied
(a frame from the peer, or a send call), and the test checks what the outcome promises (an
event, RST_STREAM, a connection error, a refused call) and, through a probe, which state the
stream is in afterwards. The probe tells every state apart by what the engine does:

========================  ============  =============================================
state                     open to send  HEADERS with END_STREAM (a trailer block)
========================  ============  =============================================
IDLE                      no            a malformed request: RST_STREAM PROTOCOL_ERROR
OPEN                      yes           TrailersReceived
HALF_CLOSED_REMOTE        yes           RST_STREAM STREAM_CLOSED + StreamReset
HALF_CLOSED_LOCAL         no            TrailersReceived
CLOSED                    no            connection error STREAM_CLOSED
RESET_LOCAL               no            ignored
RESET_REMOTE              no            RST_STREAM STREAM_CLOSED (no event: it is gone)
CLOSED_UNKNOWN            no            connection error PROTOCOL_ERROR
========================  ============  =============================================
"""
from __future__ import annotations

import pytest

from kyoukai_h2fast import _engine_c
from kyoukai_h2fast.constants import ErrorCode
from kyoukai_h2fast.http2.events import DataReceived, RequestReceived, StreamReset, TrailersReceived
from tests.helpers.engine_frames import ENGINE_PARAMS, Peer

TABLE = _engine_c.stream_transitions()
STATES = _engine_c.STREAM_STATES
INPUTS = _engine_c.STREAM_INPUTS
LIVE = {"OPEN", "HALF_CLOSED_REMOTE", "HALF_CLOSED_LOCAL"}
SID = 1
TRAILERS = [("x-trailer", "1")]


def _into(peer: Peer, state: str) -> None:
    """Bring stream 1 into ``state`` (no response headers sent on OPEN/HALF_CLOSED_REMOTE)."""
    if state == "IDLE":
        return
    if state == "CLOSED_UNKNOWN":       # stream 3 opens: 1 is closed without ever opening
        peer.open(3, end_stream=False)
        return
    request_ends = state in ("HALF_CLOSED_REMOTE", "CLOSED")
    assert [type(e) for e in peer.open(SID, end_stream=request_ends)] == [RequestReceived]
    if state in ("HALF_CLOSED_LOCAL", "CLOSED"):
        assert peer.engine.send_headers(SID, [(b":status", b"204")], True)
    elif state == "RESET_LOCAL":
        peer.engine.reset_stream(SID, ErrorCode.CANCEL)
    elif state == "RESET_REMOTE":
        peer.recv(peer.ff.rst_stream(SID))
    peer.take()
    peer.send_events()


def _probe(peer: Peer):
    """Which state stream 1 is in, by behaviour (see the module docstring)."""
    engine = peer.engine
    can_send = (engine.send_headers(SID, [(b":status", b"103")], False)
                or engine.queue_data(SID, b"", False))
    peer.take()
    peer.send_events()
    try:
        events = peer.recv(peer.ff.headers(SID, TRAILERS, end_stream=True))
    except _ConnectionFailed as e:
        return can_send, f"connection error {e.error_code}"
    frames = peer.take()
    return (can_send, tuple(type(e).__name__ for e in events),
            tuple(peer.rst_codes(frames, SID)))


from kyoukai_h2fast.errors import ConnectionFailed as _ConnectionFailed  # noqa: E402

PROBE = {
    "IDLE": (False, (), (ErrorCode.PROTOCOL_ERROR,)),
    "OPEN": (True, ("TrailersReceived",), ()),
    "HALF_CLOSED_REMOTE": (True, ("StreamReset",), (ErrorCode.STREAM_CLOSED,)),
    "HALF_CLOSED_LOCAL": (False, ("TrailersReceived",), ()),
    "CLOSED": (False, f"connection error {ErrorCode.STREAM_CLOSED}"),
    "RESET_LOCAL": (False, (), ()),
    "RESET_REMOTE": (False, (), (ErrorCode.STREAM_CLOSED,)),
    "CLOSED_UNKNOWN": (False, f"connection error {ErrorCode.PROTOCOL_ERROR}"),
}


def _apply(peer: Peer, state: str, name: str):
    """Apply input ``name`` to stream 1; returns (events, frames, accepted, error code)."""
    ff = peer.ff
    engine = peer.engine
    accepted = None
    if name.startswith("SEND_"):
        end = name.endswith("_END")
        if name.startswith("SEND_HEADERS"):
            accepted = engine.send_headers(SID, [(b":status", b"200")], end)
        elif name.startswith("SEND_DATA"):
            accepted = (engine.send_headers(SID, [(b":status", b"200")], False)
                        and engine.queue_data(SID, b"body", end))
        else:
            before = len(peer.frames)
            engine.reset_stream(SID, ErrorCode.CANCEL)
            frames = peer.take()
            accepted = bool(peer.rst_codes(frames, SID)) and len(peer.frames) > before
            return [], frames, accepted, None
        return [], peer.take(), accepted, None
    if name.startswith("RECV_HEADERS"):
        headers = TRAILERS if state != "IDLE" else [
            (":method", "POST"), (":path", "/"), (":scheme", "https"), (":authority", "a")]
        frame = ff.headers(SID, headers, end_stream=name.endswith("_END"))
    elif name.startswith("RECV_DATA"):
        frame = ff.data(SID, b"x", end_stream=name.endswith("_END"))
    elif name == "RECV_WINDOW_UPDATE":
        frame = ff.window_update(SID, 1)
    elif name == "RECV_RST_STREAM":
        frame = ff.rst_stream(SID, ErrorCode.CANCEL)
    elif name == "RECV_PRIORITY":
        frame = ff.priority(SID, depends_on=0)
    else:
        assert name == "RECV_PRIORITY_SELF"
        frame = ff.priority(SID, depends_on=SID)
    try:
        events = peer.recv(frame)
    except _ConnectionFailed as e:
        return [], peer.take(), accepted, e.error_code
    return events, peer.take(), accepted, None


def _expected_ok_events(state: str, name: str) -> list:
    if name == "RECV_HEADERS" and state == "IDLE":
        return [RequestReceived]
    if name == "RECV_HEADERS_END":
        return [RequestReceived] if state == "IDLE" else [TrailersReceived]
    if name.startswith("RECV_DATA"):
        return [DataReceived]
    if name == "RECV_RST_STREAM" and state in LIVE:
        return [StreamReset]
    return []


PAIRS = [(s, i) for s in STATES for i in INPUTS]

# The specification, written out independently of the engine (RFC 9113 §5.1, §5.1.1, §5.3.1,
# §6.4, §8.1): per state, the (next state, outcome) of each input in INPUTS order. "=" keeps
# the state; outcomes: ok, ign(ore), sc (stream error STREAM_CLOSED), sp (stream error
# PROTOCOL_ERROR), CSC / CP (connection error STREAM_CLOSED / PROTOCOL_ERROR), rej(ected call).
_I, _O, _HR, _HL, _C, _RL, _RR = ("IDLE", "OPEN", "HALF_CLOSED_REMOTE", "HALF_CLOSED_LOCAL",
                                  "CLOSED", "RESET_LOCAL", "RESET_REMOTE")
_REJ5 = [("=", "rej")] * 5
SPEC = {  # HEADERS, HEADERS_END, DATA, DATA_END, WINDOW_UPDATE, RST_STREAM, PRIORITY,
          # PRIORITY_SELF, send: HEADERS, HEADERS_END, DATA, DATA_END, RST_STREAM
    _I: [(_O, "ok"), (_HR, "ok"), ("=", "CP"), ("=", "CP"), ("=", "CP"), ("=", "CP"),
         ("=", "ok"), ("=", "CP"), *_REJ5],
    _O: [(_RL, "sp"), (_HR, "ok"), ("=", "ok"), (_HR, "ok"), ("=", "ok"), (_RR, "ok"),
         ("=", "ok"), (_RL, "sp"), ("=", "ok"), (_HL, "ok"), ("=", "ok"), (_HL, "ok"),
         (_RL, "ok")],
    _HR: [(_RL, "sc"), (_RL, "sc"), (_RL, "sc"), (_RL, "sc"), ("=", "ok"), (_RR, "ok"),
          ("=", "ok"), (_RL, "sp"), ("=", "ok"), (_C, "ok"), ("=", "ok"), (_C, "ok"),
          (_RL, "ok")],
    _HL: [(_RL, "sp"), (_C, "ok"), ("=", "ok"), (_C, "ok"), ("=", "ok"), (_RR, "ok"),
          ("=", "ok"), (_RL, "sp"), ("=", "rej"), ("=", "rej"), ("=", "rej"), ("=", "rej"),
          (_RL, "ok")],
    _C: [("=", "CSC"), ("=", "CSC"), (_RL, "sc"), (_RL, "sc"), ("=", "ok"), (_RR, "ok"),
         ("=", "ok"), (_RL, "sp"), *_REJ5],
    _RL: [("=", "ign")] * 6 + [("=", "ok"), ("=", "ign"), *_REJ5],
    _RR: [(_RL, "sc")] * 4 + [("=", "ign"), ("=", "ign"), ("=", "ok"), (_RL, "sp"), *_REJ5],
    "CLOSED_UNKNOWN": [("=", "CP"), ("=", "CP"), (_RL, "sc"), (_RL, "sc"), ("=", "ign"),
                       ("=", "ign"), ("=", "ok"), (_RL, "sp"), *_REJ5],
}
_OUTCOME = {"ok": "OK", "ign": "IGNORE", "sc": "STREAM_CLOSED", "sp": "STREAM_PROTOCOL",
            "CSC": "CONN_STREAM_CLOSED", "CP": "CONN_PROTOCOL", "rej": "REJECT"}


def test_the_stream_table_is_the_specification_5_1():
    expected = {(state, name): (state if nxt == "=" else nxt, _OUTCOME[outcome])
                for state, row in SPEC.items()
                for name, (nxt, outcome) in zip(INPUTS, row, strict=True)}
    assert len(SPEC[_O]) == len(INPUTS)
    differences = {k: (TABLE.get(k), v) for k, v in expected.items() if TABLE.get(k) != v}
    assert differences == {}
    assert set(TABLE) == set(expected)


def test_the_stream_table_is_complete_and_names_known_states():
    assert set(TABLE) == set(PAIRS)
    assert all(nxt in STATES and outcome in _engine_c.OUTCOMES
               for nxt, outcome in TABLE.values())
    # A send call is refused exactly where no response may be sent (§5.1).
    for state in STATES:
        refused = {i for i in INPUTS if i.startswith("SEND_") and TABLE[state, i][1] == "REJECT"}
        sendable = state in ("OPEN", "HALF_CLOSED_REMOTE")
        expected = (set() if sendable else
                    {"SEND_HEADERS", "SEND_HEADERS_END", "SEND_DATA", "SEND_DATA_END"}
                    if state == "HALF_CLOSED_LOCAL" else
                    {i for i in INPUTS if i.startswith("SEND_")})
        assert refused == expected, state


def test_the_exported_table_is_a_copy():
    table = _engine_c.stream_transitions()
    table["OPEN", "RECV_DATA"] = ("CLOSED", "CONN_PROTOCOL")
    assert _engine_c.stream_transitions()["OPEN", "RECV_DATA"] == ("OPEN", "OK")


@pytest.mark.parametrize("engine_cls", ENGINE_PARAMS)
@pytest.mark.parametrize("state,name", PAIRS, ids=[f"{s}-{i}" for s, i in PAIRS])
def test_stream_transition_5_1(engine_cls, state, name):
    next_state, outcome = TABLE[state, name]
    probe = PROBE
    peer = Peer(engine_cls)
    _into(peer, state)
    events, frames, accepted, error = _apply(peer, state, name)
    rst = peer.rst_codes(frames, SID)
    if outcome in ("CONN_PROTOCOL", "CONN_STREAM_CLOSED"):
        assert error == (ErrorCode.PROTOCOL_ERROR if outcome == "CONN_PROTOCOL"
                         else ErrorCode.STREAM_CLOSED)
        # ... and the engine is closed: it ignores everything from now on.
        assert peer.engine.receive(peer.ff.ping()) == []
        assert peer.take() == []
        return
    assert error is None
    if outcome == "REJECT":
        assert accepted is False and frames == [] and events == []
    elif outcome == "IGNORE":
        assert events == [] and rst == []
        assert [f for f in frames if f.stream_id == SID] == []
    elif outcome in ("STREAM_CLOSED", "STREAM_PROTOCOL"):
        code = ErrorCode.STREAM_CLOSED if outcome == "STREAM_CLOSED" else ErrorCode.PROTOCOL_ERROR
        assert rst == [code]
        notified = [e for e in events if isinstance(e, StreamReset)]
        assert notified == ([StreamReset(SID, code, False)] if state in LIVE else [])
    else:
        assert outcome == "OK"
        if accepted is not None:
            assert accepted is True
        else:
            assert [type(e) for e in events] == _expected_ok_events(state, name)
            assert rst == []
    assert _probe(peer) == probe[next_state], (state, name, next_state)


# -- connection phases (§3.4, §5.4.1, §6.8) ------------------------------------------------------
CONN = _engine_c.connection_transitions()


def test_the_connection_table_is_complete():
    assert set(CONN) == {(p, i) for p in _engine_c.CONNECTION_PHASES
                         for i in _engine_c.CONNECTION_INPUTS}
    assert all(outcome == "IGNORE" for (phase, _), (_, outcome) in CONN.items()
               if phase == "CLOSED")


def _conn_into(peer: Peer, phase: str) -> None:
    if phase == "OPEN":
        peer.recv(peer.ff.preface())
    elif phase == "CLOSED":
        peer.recv_error(b"GET / HTTP/1.1\r\n\r\n")


def _conn_apply(peer: Peer, name: str):
    ff = peer.ff
    preface = b"" if peer.engine.phase != "PREFACE" else ff.preface()[:24]
    try:
        if name == "RECV_SETTINGS":
            return peer.recv(preface + ff.settings()), None
        if name == "RECV_FRAME":
            return peer.recv(preface + ff.ping()), None
        if name == "RECV_GOAWAY":
            return peer.recv(preface + ff.goaway()), None
        if name == "SEND_GOAWAY":
            return peer.engine.goaway(0), None
        assert name == "CONNECTION_ERROR"
        return peer.recv(preface + ff.window_update(0, 0)), None
    except _ConnectionFailed as e:
        return None, e.error_code


@pytest.mark.parametrize("phase,name", sorted(CONN), ids=[f"{p}-{i}" for p, i in sorted(CONN)])
def test_connection_transition(phase, name):
    """Compiled engine: the phase table, pair by pair (phases are not part of the contract)."""
    next_phase, outcome = CONN[phase, name]
    peer = Peer(_engine_c.Engine, handshake=False)
    peer.take()
    _conn_into(peer, phase)
    assert peer.engine.phase == phase
    peer.take()
    result, error = _conn_apply(peer, name)
    frames = peer.take()
    if outcome == "IGNORE":
        assert error is None and frames == []
        assert result in ([], None, 0)
    elif outcome == "CONN_PROTOCOL" or name == "CONNECTION_ERROR":
        assert error == ErrorCode.PROTOCOL_ERROR
        assert [type(f).__name__ for f in frames][-1] == "GoAwayFrame"
    else:
        assert error is None
    assert peer.engine.phase == next_phase
