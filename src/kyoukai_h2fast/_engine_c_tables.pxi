# Included by _engine_c.pyx: the state machines as tables (the enums are in _engine_c.pxd).
#
# Theory of operation. Every rule about *which* input is valid in *which* state lives here, as
# data, in the style of h2's ``stream._transitions`` and h11's ``_state.py``: a handler looks
# up ``STREAM_TABLE[state][input]`` and acts on the outcome; it never decides validity itself.
# What a handler adds is the arithmetic the table cannot hold: windows and their overflow,
# content-length, header validation, limits. The rows are written below as Python data, checked
# for completeness, and copied into C arrays at import; ``stream_transitions()`` and
# ``connection_transitions()`` read the C arrays back, so tests enumerate exactly what runs.
#
# Stream states are those of RFC 9113 §5.1 for a server that never pushes (no "reserved"
# states), with "closed" split by how the stream ended, which §5.1 makes decisive for late
# frames: after *our* RST_STREAM, frames are ignored ("An endpoint MUST ignore frames that it
# receives on closed streams after it has sent a RST_STREAM frame"; DATA still counts on the
# connection window); after the *peer's* RST_STREAM, any frame but PRIORITY is a stream error
# STREAM_CLOSED; after END_STREAM both ways, a field block is a connection error STREAM_CLOSED
# and DATA a stream error STREAM_CLOSED (as h2: the stream is known to be over, the connection
# need not be). A stream error always leaves the stream in RESET_LOCAL (we sent RST_STREAM).
# Frames that are errors in every state (a CONTINUATION outside a field block, PUSH_PROMISE
# from a client) are connection errors PROTOCOL_ERROR before any stream is looked up.

_STATE_NAMES = ("IDLE", "OPEN", "HALF_CLOSED_REMOTE", "HALF_CLOSED_LOCAL", "CLOSED",
                "RESET_LOCAL", "RESET_REMOTE", "CLOSED_UNKNOWN")
_INPUT_NAMES = ("RECV_HEADERS", "RECV_HEADERS_END", "RECV_DATA", "RECV_DATA_END",
                "RECV_WINDOW_UPDATE", "RECV_RST_STREAM", "RECV_PRIORITY", "RECV_PRIORITY_SELF",
                "SEND_HEADERS", "SEND_HEADERS_END", "SEND_DATA", "SEND_DATA_END",
                "SEND_RST_STREAM")
_OUTCOME_NAMES = ("OK", "IGNORE", "STREAM_CLOSED", "STREAM_PROTOCOL", "CONN_STREAM_CLOSED",
                  "CONN_PROTOCOL", "REJECT")

_SEND_REJECTED = {"SEND_HEADERS": "REJECT", "SEND_HEADERS_END": "REJECT",
                  "SEND_DATA": "REJECT", "SEND_DATA_END": "REJECT", "SEND_RST_STREAM": "REJECT"}

# state: {input: (next state, outcome)}; a bare outcome string keeps the state.
_STREAM_ROWS = {
    "IDLE": {
        "RECV_HEADERS": ("OPEN", "OK"),                  # a request opens the stream
        "RECV_HEADERS_END": ("HALF_CLOSED_REMOTE", "OK"),
        "RECV_DATA": "CONN_PROTOCOL",                    # §5.1 idle: only HEADERS, PRIORITY
        "RECV_DATA_END": "CONN_PROTOCOL",
        "RECV_WINDOW_UPDATE": "CONN_PROTOCOL",
        "RECV_RST_STREAM": "CONN_PROTOCOL",              # §6.4
        "RECV_PRIORITY": "OK",
        "RECV_PRIORITY_SELF": "CONN_PROTOCOL",           # no stream to reset: RST on idle is
        **_SEND_REJECTED,                                # itself an error (§6.4)
    },
    "OPEN": {
        "RECV_HEADERS": ("RESET_LOCAL", "STREAM_PROTOCOL"),   # trailers need END_STREAM (§8.1)
        "RECV_HEADERS_END": ("HALF_CLOSED_REMOTE", "OK"),     # trailers
        "RECV_DATA": "OK",
        "RECV_DATA_END": ("HALF_CLOSED_REMOTE", "OK"),
        "RECV_WINDOW_UPDATE": "OK",
        "RECV_RST_STREAM": ("RESET_REMOTE", "OK"),
        "RECV_PRIORITY": "OK",
        "RECV_PRIORITY_SELF": ("RESET_LOCAL", "STREAM_PROTOCOL"),
        "SEND_HEADERS": "OK",
        "SEND_HEADERS_END": ("HALF_CLOSED_LOCAL", "OK"),
        "SEND_DATA": "OK",
        "SEND_DATA_END": ("HALF_CLOSED_LOCAL", "OK"),
        "SEND_RST_STREAM": ("RESET_LOCAL", "OK"),
    },
    "HALF_CLOSED_REMOTE": {
        "RECV_HEADERS": ("RESET_LOCAL", "STREAM_CLOSED"),     # §5.1 half-closed (remote)
        "RECV_HEADERS_END": ("RESET_LOCAL", "STREAM_CLOSED"),
        "RECV_DATA": ("RESET_LOCAL", "STREAM_CLOSED"),
        "RECV_DATA_END": ("RESET_LOCAL", "STREAM_CLOSED"),
        "RECV_WINDOW_UPDATE": "OK",
        "RECV_RST_STREAM": ("RESET_REMOTE", "OK"),
        "RECV_PRIORITY": "OK",
        "RECV_PRIORITY_SELF": ("RESET_LOCAL", "STREAM_PROTOCOL"),
        "SEND_HEADERS": "OK",
        "SEND_HEADERS_END": ("CLOSED", "OK"),
        "SEND_DATA": "OK",
        "SEND_DATA_END": ("CLOSED", "OK"),
        "SEND_RST_STREAM": ("RESET_LOCAL", "OK"),
    },
    "HALF_CLOSED_LOCAL": {
        "RECV_HEADERS": ("RESET_LOCAL", "STREAM_PROTOCOL"),
        "RECV_HEADERS_END": ("CLOSED", "OK"),
        "RECV_DATA": "OK",
        "RECV_DATA_END": ("CLOSED", "OK"),
        "RECV_WINDOW_UPDATE": "OK",                     # overflow: see the WINDOW_UPDATE handler
        "RECV_RST_STREAM": ("RESET_REMOTE", "OK"),
        "RECV_PRIORITY": "OK",
        "RECV_PRIORITY_SELF": ("RESET_LOCAL", "STREAM_PROTOCOL"),
        "SEND_HEADERS": "REJECT",
        "SEND_HEADERS_END": "REJECT",
        "SEND_DATA": "REJECT",
        "SEND_DATA_END": "REJECT",
        "SEND_RST_STREAM": ("RESET_LOCAL", "OK"),
    },
    "CLOSED": {
        "RECV_HEADERS": "CONN_STREAM_CLOSED",            # §5.1 closed, after END_STREAM
        "RECV_HEADERS_END": "CONN_STREAM_CLOSED",
        "RECV_DATA": ("RESET_LOCAL", "STREAM_CLOSED"),
        "RECV_DATA_END": ("RESET_LOCAL", "STREAM_CLOSED"),
        "RECV_WINDOW_UPDATE": "OK",                      # §5.1: may arrive a short while;
        "RECV_RST_STREAM": ("RESET_REMOTE", "OK"),       # the remembered window still counts
        "RECV_PRIORITY": "OK",
        "RECV_PRIORITY_SELF": ("RESET_LOCAL", "STREAM_PROTOCOL"),
        **_SEND_REJECTED,
    },
    "RESET_LOCAL": {
        "RECV_HEADERS": "IGNORE",                        # §5.1: MUST ignore after our RST
        "RECV_HEADERS_END": "IGNORE",
        "RECV_DATA": "IGNORE",
        "RECV_DATA_END": "IGNORE",
        "RECV_WINDOW_UPDATE": "IGNORE",
        "RECV_RST_STREAM": "IGNORE",
        "RECV_PRIORITY": "OK",
        "RECV_PRIORITY_SELF": "IGNORE",
        **_SEND_REJECTED,
    },
    "RESET_REMOTE": {
        "RECV_HEADERS": ("RESET_LOCAL", "STREAM_CLOSED"),   # §5.1: after the peer's RST
        "RECV_HEADERS_END": ("RESET_LOCAL", "STREAM_CLOSED"),
        "RECV_DATA": ("RESET_LOCAL", "STREAM_CLOSED"),
        "RECV_DATA_END": ("RESET_LOCAL", "STREAM_CLOSED"),
        "RECV_WINDOW_UPDATE": "IGNORE",                  # crossing frames: harmless
        "RECV_RST_STREAM": "IGNORE",
        "RECV_PRIORITY": "OK",
        "RECV_PRIORITY_SELF": ("RESET_LOCAL", "STREAM_PROTOCOL"),
        **_SEND_REJECTED,
    },
    "CLOSED_UNKNOWN": {
        "RECV_HEADERS": "CONN_PROTOCOL",                 # §5.1.1: ids only increase
        "RECV_HEADERS_END": "CONN_PROTOCOL",
        "RECV_DATA": ("RESET_LOCAL", "STREAM_CLOSED"),
        "RECV_DATA_END": ("RESET_LOCAL", "STREAM_CLOSED"),
        "RECV_WINDOW_UPDATE": "IGNORE",
        "RECV_RST_STREAM": "IGNORE",
        "RECV_PRIORITY": "OK",
        "RECV_PRIORITY_SELF": ("RESET_LOCAL", "STREAM_PROTOCOL"),
        **_SEND_REJECTED,
    },
}

# Connection phases. GOAWAY sent or received changes no phase (§6.8: streams in flight finish,
# the connection stays usable); it sets a flag, and our own GOAWAY makes new streams above its
# last stream id be refused. Only a connection error ends the connection: from then on every
# input is ignored (the GOAWAY it queued is still handed out by data_to_send).
_PHASE_NAMES = ("PREFACE", "OPEN", "CLOSED")
_CONN_INPUT_NAMES = ("RECV_SETTINGS", "RECV_FRAME", "SEND_GOAWAY", "RECV_GOAWAY",
                     "CONNECTION_ERROR")
_CONN_ROWS = {
    "PREFACE": {                                         # §3.4: preface, then SETTINGS
        "RECV_SETTINGS": ("OPEN", "OK"),
        "RECV_FRAME": ("CLOSED", "CONN_PROTOCOL"),
        "SEND_GOAWAY": "OK",
        "RECV_GOAWAY": ("CLOSED", "CONN_PROTOCOL"),
        "CONNECTION_ERROR": ("CLOSED", "OK"),
    },
    "OPEN": {
        "RECV_SETTINGS": "OK",
        "RECV_FRAME": "OK",
        "SEND_GOAWAY": "OK",
        "RECV_GOAWAY": "OK",
        "CONNECTION_ERROR": ("CLOSED", "OK"),
    },
    "CLOSED": {name: "IGNORE" for name in _CONN_INPUT_NAMES},
}

cdef Transition STREAM_TABLE[8][13]
cdef Transition CONN_TABLE[3][5]


cdef int _fill(Transition* table, dict rows, tuple states, tuple inputs) except -1:
    """Copy ``rows`` into ``table`` (len(states) x len(inputs)); every cell must be given."""
    cdef Py_ssize_t s, i
    cdef Transition* cell
    if set(rows) != set(states):
        raise AssertionError(f"table rows {sorted(rows)} != states {sorted(states)}")
    for s, state in enumerate(states):
        row = rows[state]
        if set(row) != set(inputs):
            raise AssertionError(f"{state}: inputs {sorted(row)} != {sorted(inputs)}")
        for i, name in enumerate(inputs):
            cell = &table[s * len(inputs) + i]
            value = row[name]
            if isinstance(value, str):
                cell.next_state = <uint8_t>s
                cell.outcome = <uint8_t>_OUTCOME_NAMES.index(value)
            else:
                cell.next_state = <uint8_t>states.index(value[0])
                cell.outcome = <uint8_t>_OUTCOME_NAMES.index(value[1])
    return 0


_fill(&STREAM_TABLE[0][0], _STREAM_ROWS, _STATE_NAMES, _INPUT_NAMES)
_fill(&CONN_TABLE[0][0], _CONN_ROWS, _PHASE_NAMES, _CONN_INPUT_NAMES)
del _STREAM_ROWS, _CONN_ROWS, _SEND_REJECTED


def stream_transitions():
    """The stream table as it runs: ``{(state, input): (next_state, outcome)}`` (names).

    States, inputs and outcomes are those of ``_engine_c.pxd``; a new dict on every call.
    """
    cdef Py_ssize_t s, i
    return {(_STATE_NAMES[s], _INPUT_NAMES[i]):
            (_STATE_NAMES[STREAM_TABLE[s][i].next_state],
             _OUTCOME_NAMES[STREAM_TABLE[s][i].outcome])
            for s in range(N_STREAM_STATES) for i in range(N_STREAM_INPUTS)}


def connection_transitions():
    """The connection phase table: ``{(phase, input): (next_phase, outcome)}`` (names)."""
    cdef Py_ssize_t s, i
    return {(_PHASE_NAMES[s], _CONN_INPUT_NAMES[i]):
            (_PHASE_NAMES[CONN_TABLE[s][i].next_state],
             _OUTCOME_NAMES[CONN_TABLE[s][i].outcome])
            for s in range(N_CONN_PHASES) for i in range(N_CONN_INPUTS)}


STREAM_STATES = _STATE_NAMES
STREAM_INPUTS = _INPUT_NAMES
OUTCOMES = _OUTCOME_NAMES
CONNECTION_PHASES = _PHASE_NAMES
CONNECTION_INPUTS = _CONN_INPUT_NAMES
