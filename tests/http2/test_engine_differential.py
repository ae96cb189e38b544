"""Differential tests: the compiled engine against the h2-based twin, on random sessions.

Hypothesis writes a session: frames from the peer (valid and invalid: every frame type, bad
lengths and stream ids, window overflows, CONTINUATION interleaving, resets at every stage) and
calls from the server side (responses queued in pieces, resets, acknowledgements,
stop_reading, priorities, GOAWAY, ``data_to_send`` with random bounds, ``output_drained``,
the rest of a read stopped at ``max_frames``). RFC 9218 signals are part of it: requests with
``priority`` fields (valid, repeated, invalid), PRIORITY_UPDATE frames (for open, closed and not
yet open streams, malformed), responses with a ``priority`` field, ``set_priority`` calls.
Both engines get the same session; after every step the test compares the events, the
connection errors (codes), the return values, the send events, whether input is pending and
the *parsed* output frames (header blocks compared by their decoded fields, each engine's
blocks decoded in its own HPACK context). The "tight" configuration has flood budgets small
enough to be crossed within a session and lets each ``receive`` handle one frame.

Where the engines differ, RFC 9113 decides. A difference that is a known fault of the twin is
described in ``engine_frames.TWIN_FAULTS`` (with the RFC text) and recognised by its check in
:data:`TWIN_DEVIATIONS` (none is left that a session can reach), which also asserts that the
compiled engine did what the RFC asks; the session stops being compared there (the engines'
states have diverged), and the test goes on with the next session. Any other difference fails
the test with the shrunk session.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kyoukai_h2fast.config import ServerConfig
from kyoukai_h2fast.constants import ErrorCode, Setting
from kyoukai_h2fast.errors import ConnectionFailed
from tests.helpers.engine_frames import (
    TWIN_FAULTS,
    FrameFactory,
    describe,
    engine_classes,
    parse_frames,
    raw_frame,
)

ENGINES = engine_classes()

def _pair():
    """(compiled, twin); the twin is None while this checkout does not have it: the sessions
    then still run on the compiled engine, checked against invariants only (_check_alone)."""
    if "compiled" not in ENGINES:
        pytest.fail("kyoukai_h2fast._engine_c is not built")
    return ENGINES["compiled"], ENGINES.get("h2")


# -- sessions --------------------------------------------------------------------------------------
IDS = st.sampled_from([1, 1, 1, 1, 3, 3, 3, 5, 5, 7, 9, 11, 2, 0])
SMALL = st.integers(0, 40)
CODES = st.sampled_from([0, 1, 2, 3, 5, 7, 8, 0xB, 0x42])
FIELDS = [
    [],
    [("content-length", "3")],
    [("content-length", "0")],
    [("x-a", "1"), ("x-b", "2")],
    [("Upper", "x")],                    # malformed
    [("connection", "close")],           # malformed
    [("te", "trailers")],
    [("priority", "u=0")],               # RFC 9218 signals
    [("priority", "u=6, i")],
    [("priority", "i"), ("priority", "u=1")],
    [("priority", "u=1,")],              # not a Dictionary: no signal
    [("priority", "u=9, i=?0")],
]
#: PRIORITY_UPDATE field values (RFC 9218 §7), and response ``priority`` fields (§8).
PRIORITY_VALUES = ["u=0", "u=7", "u=2, i", "i", "", "u=1,", "u=8"]


@st.composite
def peer_frame(draw):
    """One peer action: ("peer", kind, args)."""
    kind = draw(st.sampled_from([
        "request", "request", "request", "data", "data", "data", "window_update",
        "rst_stream", "priority", "settings", "settings_ack", "ping", "goaway", "trailers",
        "trailers", "split_request", "split_request", "interleaved_block", "raw",
        "priority_update", "priority_update", "ping_ack"]))
    sid = draw(IDS)
    if kind == "request":
        return ("peer", kind, (sid, draw(st.booleans()), draw(st.sampled_from(range(len(FIELDS)))),
                               draw(st.sampled_from(["GET", "POST", "HEAD"]))))
    if kind == "data":
        return ("peer", kind, (sid, draw(st.sampled_from([0, 1, 3, 100, 5000, 16_384])),
                               draw(st.booleans()),
                               draw(st.one_of(st.none(), st.integers(0, 255)))))
    if kind == "window_update":
        return ("peer", kind, (draw(st.sampled_from([0, 1, 3, 5])),
                               draw(st.sampled_from([1, 10, 1000, 65_535, 2**30, 2**31 - 1]))))
    if kind == "rst_stream":
        return ("peer", kind, (sid, draw(CODES)))
    if kind == "priority":
        return ("peer", kind, (sid, draw(st.sampled_from([0, 1, 3, sid]))))
    if kind == "settings":
        pairs = draw(st.lists(st.tuples(
            st.sampled_from([Setting.INITIAL_WINDOW_SIZE, Setting.MAX_FRAME_SIZE,
                             Setting.HEADER_TABLE_SIZE, Setting.ENABLE_PUSH,
                             Setting.MAX_CONCURRENT_STREAMS, 0x7A7A]),
            st.sampled_from([0, 1, 10, 4096, 16_384, 65_535, 100_000, 2**31 - 1, 2**31])),
            max_size=3, unique_by=lambda pair: pair[0]))
        return ("peer", kind, (tuple(pairs),))
    if kind == "trailers":
        return ("peer", kind, (sid, draw(st.booleans())))
    if kind == "split_request":
        return ("peer", kind, (sid, draw(st.integers(1, 4))))
    if kind == "interleaved_block":
        return ("peer", kind, (sid, draw(st.sampled_from(["ping", "data", "other-stream"]))))
    if kind == "priority_update":
        return ("peer", kind, (draw(st.sampled_from([1, 3, 5, 7, 9, 11, 13, 21, 99, 2, 0])),
                               draw(st.sampled_from(PRIORITY_VALUES)),
                               draw(st.sampled_from([0, 0, 0, 0, 0, 1])),        # frame's stream
                               draw(st.sampled_from([None, None, None, None, 2]))))  # length
    if kind == "raw":
        return ("peer", kind, (draw(st.sampled_from([0, 1, 2, 3, 4, 6, 7, 8, 9, 0xA, 0x10, 0xFA])),
                               draw(st.integers(0, 255)), draw(st.sampled_from([0, 1, 2, 3])),
                               draw(st.binary(max_size=12))))
    return ("peer", kind, ())


@st.composite
def server_call(draw):
    kind = draw(st.sampled_from(["respond", "respond", "respond", "more", "more", "reset",
                                 "acknowledge", "stop_reading", "priority", "goaway", "send",
                                 "send", "drained", "resume", "send_ping"]))
    sid = draw(st.sampled_from([1, 3, 5, 7, 9]))
    if kind == "respond":
        return ("server", kind, (sid, draw(st.sampled_from(["103", "200", "204"])),
                                 draw(st.sampled_from([0, 5, 1000, 20_000, 70_000])),
                                 draw(st.booleans()),
                                 draw(st.sampled_from([None, None, None] + PRIORITY_VALUES))))
    if kind == "more":
        return ("server", kind, (sid, draw(st.sampled_from([0, 7, 16_384, 40_000])),
                                 draw(st.booleans())))
    if kind == "reset":
        return ("server", kind, (sid, draw(CODES)))
    if kind == "acknowledge":
        return ("server", kind, (sid, draw(st.sampled_from([1, 100, 5000, 40_000]))))
    if kind == "stop_reading":
        return ("server", kind, (sid, draw(st.sampled_from([0, 100, 10_000]))))
    if kind == "priority":
        return ("server", kind, (sid, draw(st.integers(-1, 8)), draw(st.booleans())))
    if kind == "goaway":
        return ("server", kind, (draw(CODES),))
    if kind in ("drained", "resume", "send_ping"):
        return ("server", kind, ())
    return ("server", kind, (draw(st.sampled_from([-1, -1, 0, 100, 20_000])),))


SESSIONS = st.lists(st.one_of(peer_frame(), server_call()), min_size=4, max_size=60)


def _peer_bytes(ff: FrameFactory, kind: str, args: tuple) -> bytes:
    if kind == "request":
        sid, end, fields, method = args
        return ff.request(sid, method=method, end_stream=end, extra=FIELDS[fields])
    if kind == "data":
        sid, size, end, pad = args
        return ff.data(sid, b"d" * size, end_stream=end, pad_length=pad)
    if kind == "window_update":
        return ff.window_update(*args)
    if kind == "rst_stream":
        return ff.rst_stream(*args)
    if kind == "priority":
        sid, depends = args
        return ff.priority(sid, depends_on=depends)
    if kind == "settings":
        return ff.settings_raw(args[0])
    if kind == "settings_ack":
        return ff.settings(ack=True)
    if kind == "ping":
        return ff.ping()
    if kind == "ping_ack":         # of the server's send_ping (or unasked)
        return ff.ping(b"srvping1", ack=True)
    if kind == "goaway":
        return ff.goaway(1, 0)
    if kind == "trailers":
        sid, end = args
        return ff.headers(sid, [("x-trailer", "t")], end_stream=end)
    if kind == "split_request":
        sid, parts = args
        block = ff.block([(":method", "POST"), (":path", "/s"), (":scheme", "https"),
                          (":authority", "a"), ("x-long", "l" * 60)])
        size = -(-len(block) // parts)
        pieces = [block[i:i + size] for i in range(0, len(block), size)] or [b""]
        out = ff.headers_block(sid, pieces[0], end_stream=False, end_headers=len(pieces) == 1)
        for i, piece in enumerate(pieces[1:], 1):
            out += ff.continuation(sid, piece, end_headers=i == len(pieces) - 1)
        return out
    if kind == "interleaved_block":
        sid, other = args
        block = ff.block([(":method", "GET"), (":path", "/"), (":scheme", "https"),
                          (":authority", "a")])
        out = ff.headers_block(sid, block[:3], True, False)
        out += {"ping": ff.ping(), "data": ff.data(sid, b"x"),
                "other-stream": ff.continuation(sid + 2, block[3:])}[other]
        return out + ff.continuation(sid, block[3:])
    if kind == "priority_update":
        target, value, frame_sid, length = args
        payload = target.to_bytes(4, "big") + value.encode()
        return raw_frame(0x10, 0, frame_sid, payload[:length] if length else payload)
    if kind == "garbage":
        return args[0]
    ftype, flags, sid, payload = args
    return raw_frame(ftype, flags, sid, payload)


class _Side:
    """One engine under test, with its own HPACK decoder for its header blocks."""

    def __init__(self, engine_cls, config, max_frames: int = -1) -> None:
        from hpack import Decoder
        self.engine = engine_cls(config)
        self.max_frames = max_frames
        self.decoder = Decoder(max_header_list_size=1 << 30)
        self.decoder.max_allowed_table_size = 1 << 32
        self.partial = []
        self.failed = None

    def frames(self, data: bytes) -> list:
        out = []
        for frame in parse_frames(bytes(data)):
            decoded = None
            if type(frame).__name__ in ("HeadersFrame", "ContinuationFrame"):
                self.partial.append(frame.data)
                if "END_HEADERS" in frame.flags:
                    decoded = [tuple(map(bytes, f)) for f in
                               self.decoder.decode(b"".join(self.partial), raw=True)]
                    self.partial = []
            out.append(describe(frame, decoded))
        return out

    def step(self, action, data: bytes | None) -> tuple:
        """Apply one action; everything observable, as plain data."""
        side, kind, args = action
        engine = self.engine
        result = None
        events = []
        error = None
        try:
            result, events = self._act(side, kind, args, data)
        except ConnectionFailed as e:
            error = e.error_code
        except Exception as e:      # the contract: calls never raise
            result = f"raised {type(e).__name__}"
        max_data = args[0] if kind == "send" else -1
        out = engine.data_to_send(max_data) if max_data >= 0 else engine.data_to_send()
        return (error, result, list(events), list(engine.send_events()), self.frames(out),
                engine.queued_total, engine.input_pending)

    def _act(self, side, kind, args, data):
        engine = self.engine
        result = None
        if side == "peer":
            return None, engine.receive(data, self.max_frames)
        if kind == "resume":       # the rest of a read stopped at max_frames
            return None, engine.receive(b"", self.max_frames)
        if kind == "respond":
            sid, status, size, end, priority = args
            headers = [(b":status", status.encode())]
            if priority is not None:
                headers.append((b"priority", priority.encode()))
            if size or not end:
                result = (engine.send_headers(sid, headers, False),
                          engine.queue_data(sid, b"r" * size, end))
            else:
                result = engine.send_headers(sid, headers, True)
        elif kind == "more":
            sid, size, end = args
            result = engine.queue_data(sid, b"m" * size, end)
        elif kind == "reset":
            engine.reset_stream(*args)
        elif kind == "acknowledge":
            engine.acknowledge(*args)
        elif kind == "stop_reading":
            engine.stop_reading(*args)
        elif kind == "priority":
            engine.set_priority(*args)
        elif kind == "goaway":
            result = engine.goaway(args[0])
        elif kind == "drained":
            engine.output_drained()
        elif kind == "send_ping":
            engine.send_ping(b"srvping1")
        return result, []


def _run_session(session, config, max_frames: int = -1) -> None:
    compiled_cls, twin_cls = _pair()
    compiled = _Side(compiled_cls, config, max_frames)
    twin = _Side(twin_cls, config, max_frames) if twin_cls is not None else None
    ff = FrameFactory()
    for side in (compiled, twin):
        if side is not None:
            side.engine.initiate()
    start = ("peer", "preface", ())
    history = []
    invariants = _Invariants()
    for action in [start] + list(session):
        data = None
        if action[0] == "peer":
            data = ff.preface() if action[1] == "preface" else _peer_bytes(ff, action[1], action[2])
        got = compiled.step(action, data)
        invariants.check(action, got)
        if twin is None:
            history.append((action, got, got))
            if got[0] is not None:
                return
            continue
        expected = twin.step(action, data)
        history.append((action, got, expected))
        if got != expected:
            deviation = _known_deviation(history, compiled.engine)
            if deviation is not None:
                SEEN_DEVIATIONS.add(deviation)
                return
            raise AssertionError(_report(history))
        if got[0] is not None:          # both failed the connection the same way
            return


class _Invariants:
    """What must hold for any engine on any session, whatever the other engine does."""

    def __init__(self) -> None:
        self.max_frame_size = 16_384
        self.conn_window = 65_535          # what the peer allowed us, minus what we sent
        self.failed = False

    def check(self, action, got) -> None:
        error, result, events, send_events, frames, queued_total, _ = got
        assert not (isinstance(result, str) and result.startswith("raised")), (action, result)
        if self.failed:                    # after a connection error: silence
            assert (error, events, send_events, frames) == (None, [], [], []), (action, got)
            assert result in (None, False) or action[1] == "goaway", (action, got)
            return
        side, kind, args = action
        if side == "peer" and kind == "settings":
            for ident, value in args[0]:
                if ident == Setting.MAX_FRAME_SIZE and 16_384 <= value < 2**24:
                    self.max_frame_size = value
        if side == "peer" and kind == "window_update" and args[0] == 0:
            self.conn_window += args[1]
        for frame in frames:
            kind_name, sid, flags, payload = frame
            if kind_name == "DataFrame":
                assert len(payload) <= self.max_frame_size, frame
                self.conn_window -= len(payload)
                assert self.conn_window >= 0, ("DATA beyond the connection window", action)
        assert queued_total >= 0
        if error is not None:
            assert frames and frames[-1][0] == "GoAwayFrame" and frames[-1][3][1] == error
            self.failed = True


def _report(history) -> str:
    lines = ["engines differ at the last step (compiled vs h2 twin):"]
    for action, got, expected in history:
        lines.append(f"  {action}")
        if got != expected:
            for name, a, b in zip(("error", "result", "events", "send_events", "frames",
                                   "queued_total", "input_pending"), got, expected, strict=True):
                if a != b:
                    lines.append(f"    {name}:\n      compiled {a}\n      twin     {b}")
    return "\n".join(lines)


# -- known faults of the twin (RFC 9113 decides) ---------------------------------------------------
def _same_but(got, expected, *fields) -> bool:
    names = ("error", "result", "events", "send_events", "frames", "queued_total",
             "input_pending")
    return all(a == b for name, a, b in zip(names, got, expected, strict=True)
               if name not in fields)


#: The check recognising each known fault of the twin (described in engine_frames.TWIN_FAULTS);
#: each check also asserts what the compiled engine must have done instead.
TWIN_DEVIATIONS: dict = {}
assert set(TWIN_DEVIATIONS) <= set(TWIN_FAULTS)
SEEN_DEVIATIONS: set = set()


def _known_deviation(history, compiled):
    """The name of the TWIN_DEVIATIONS entry explaining the last step's difference, or None."""
    action, got, expected = history[-1]
    for name, check in TWIN_DEVIATIONS.items():
        if check(action, got, expected, compiled):
            return name
    return None


CONFIGS = {
    "default": ServerConfig(),
    "small": ServerConfig(stream_window=65_535, connection_window=65_535,
                          max_concurrent_streams=2, max_header_list_size=4096),
    # Flood budgets crossed within a session, one frame per receive() (fairness mode).
    "tight": ServerConfig(max_pings_per_10s=1, max_settings_per_10s=2,
                          max_empty_frames_per_10s=2, max_resets_per_10s=1,
                          max_queued_control_frames=4, max_concurrent_streams=4),
}
MAX_FRAMES = {"tight": 1}


@pytest.mark.parametrize("config", list(CONFIGS))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session=SESSIONS)
def test_engines_agree_on_random_sessions(config, session):
    _run_session(session, CONFIGS[config], MAX_FRAMES.get(config, -1))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session=st.lists(st.one_of(peer_frame(), server_call()), max_size=12),
       garbage=st.binary(max_size=64))
def test_engines_agree_on_garbage_after_a_session(session, garbage):
    _run_session(list(session) + [("peer", "garbage", (garbage,))], CONFIGS["default"])


# -- sessions heavy with scheduling (RFC 9218) -----------------------------------------------------
_REQUEST_FIELDS = [0, 7, 8, 9, 10, 11]              # FIELDS: none, and the priority fields


@st.composite
def _scheduling_session(draw):
    """Well-formed sessions where several responses wait for the connection window at once
    (stream windows are wide) while priorities change by every signal: requests with
    ``priority`` fields, all answered at once, then window updates, PRIORITY_UPDATEs,
    ``set_priority``, more body, bounded ``data_to_send`` calls and window changes."""
    sids = sorted(draw(st.lists(st.sampled_from([1, 3, 5, 7, 9, 11]), min_size=2, max_size=6,
                                unique=True)))
    values = PRIORITY_VALUES
    actions = [("peer", "settings", (((Setting.INITIAL_WINDOW_SIZE, 1 << 24),),))]
    for sid in sids:
        actions.append(("peer", "request", (sid, True, draw(st.sampled_from(_REQUEST_FIELDS)),
                                            "GET")))
    for sid in draw(st.permutations(sids)):
        actions.append(("server", "respond", (sid, "200", draw(st.sampled_from(
            [1000, 20_000, 70_000, 150_000])), draw(st.booleans()),
            draw(st.sampled_from([None, None, None] + values)))))
    steps = st.one_of(
        st.tuples(st.just("peer"), st.just("window_update"), st.tuples(
            st.just(0), st.sampled_from([1000, 20_000, 50_000, 100_000, 300_000]))),
        st.tuples(st.just("server"), st.just("more"), st.tuples(
            st.sampled_from(sids), st.sampled_from([7, 16_384, 40_000]), st.booleans())),
        st.tuples(st.just("server"), st.just("priority"), st.tuples(
            st.sampled_from(sids), st.integers(0, 7), st.booleans())),
        st.tuples(st.just("server"), st.just("send"), st.tuples(
            st.sampled_from([0, 5000, 40_000]))),
        st.tuples(st.just("peer"), st.just("priority_update"), st.tuples(
            st.sampled_from(sids + [13, 15]), st.sampled_from(values), st.just(0),
            st.just(None))),
        st.tuples(st.just("peer"), st.just("window_update"), st.tuples(
            st.sampled_from(sids), st.sampled_from([1000, 100_000]))),
        st.tuples(st.just("peer"), st.just("settings"), st.tuples(st.sampled_from([
            ((Setting.INITIAL_WINDOW_SIZE, 10_000),), ((Setting.INITIAL_WINDOW_SIZE, 1 << 24),)]))),
        st.tuples(st.just("peer"), st.just("rst_stream"), st.tuples(
            st.sampled_from(sids), st.just(ErrorCode.CANCEL))),
    )
    actions += draw(st.lists(steps, min_size=5, max_size=40))
    if draw(st.booleans()):                 # late requests, signalled before they open
        actions += [("peer", "request", (13, True, draw(st.sampled_from(_REQUEST_FIELDS)),
                                         "GET")),
                    ("server", "respond", (13, "200", 70_000, True, None))]
        actions += draw(st.lists(steps, max_size=10))
    return actions


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session=_scheduling_session())
def test_engines_schedule_alike_on_random_sessions(session):
    """RFC 9218 §10: the same DATA order from both engines on sessions where priorities
    decide (the random sessions above mostly end early, at a connection error)."""
    _run_session(session, CONFIGS["default"])
