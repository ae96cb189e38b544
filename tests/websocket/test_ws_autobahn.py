"""A conformance matrix modeled on the Autobahn TestSuite's case groups, run sans-IO against
the server connection (both codec twins) with an echo app (``ws_helpers.echo``).

Groups: 1 framing, 2 pings/pongs, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8
(with fail-fast), 7 close handling (every valid and invalid close code), 9 limits and sizes;
12/13 (permessage-deflate) are in ``test_ws_deflate.py``. Each case gives the client's bytes in
the chops Autobahn sends them (a "wait" between frames is a chunk boundary; a message the
case expects echoed before a bad frame arrives in a chunk of its own: a message completed in
the same chunk as a failure or a close is reported, but the app can no longer answer it) and
checks the exact events and the exact frames the server writes (echoes, pongs, the close
frame's code).
Then, for every case: any split of the same bytes gives the same events and the same
automatic output (hypothesis).
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kyoukai_h2fast.websocket.connection import State, WebSocketConnection
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
    can_start_utf8,
    chops,
    close_code,
    close_payload,
    echo,
    frame,
    parse_frames,
)

IMPLS = implementations("websocket")


@pytest.fixture(params=IMPLS)
def codec(request):
    return request.param


def failed(code: int) -> tuple[str, int]:
    return ("failed", code)


def closed(code: int) -> tuple[str, int]:
    return ("close", code)


def normalize(events: list) -> list:
    return [failed(e.code) if isinstance(e, ConnectionFailed) else e for e in events]


def frames_out(out: bytes) -> list:
    return [closed(close_code(p)) if op == CLOSE else (op, p) for op, p in parse_frames(out)]


# -- the cases: (id, chunks, expected events, expected frames out) ---------------------------
CASES: list[tuple[str, list[bytes], list, list]] = []


def case(cid: str, chunks: list[bytes], events: list, out: list) -> None:
    CASES.append((cid, chunks, events, out))


def text_echo(payload: str) -> tuple[list, list]:
    return [TextMessage(payload)], [(TEXT, payload.encode())]


# 1 framing: text and binary of every length encoding, whole and in chops of 997
for i, n in enumerate([0, 125, 126, 127, 128, 65535, 65536]):
    case(f"1.1.{i + 1}", [frame(TEXT, "*" * n)], [TextMessage("*" * n)],
         [(TEXT, b"*" * n)])
    case(f"1.2.{i + 1}", [frame(BINARY, b"\xfe" * n)], [BytesMessage(b"\xfe" * n)],
         [(BINARY, b"\xfe" * n)])
case("1.1.8", chops(frame(TEXT, "*" * 65536), 997), [TextMessage("*" * 65536)],
     [(TEXT, b"*" * 65536)])
case("1.2.8", chops(frame(BINARY, b"\xfe" * 65536), 997), [BytesMessage(b"\xfe" * 65536)],
     [(BINARY, b"\xfe" * 65536)])

# 2 pings and pongs
case("2.1", [frame(PING)], [Ping(b"")], [(PONG, b"")])
case("2.2", [frame(PING, b"Hello, world!")], [Ping(b"Hello, world!")],
     [(PONG, b"Hello, world!")])
BIN = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
case("2.3", [frame(PING, BIN)], [Ping(BIN)], [(PONG, BIN)])
case("2.4", [frame(PING, b"\xfe" * 125)], [Ping(b"\xfe" * 125)], [(PONG, b"\xfe" * 125)])
case("2.5", [frame(PING, b"\xfe" * 126)], [failed(1002)], [closed(1002)])
case("2.6", chops(frame(PING, b"\xfe" * 125), 1), [Ping(b"\xfe" * 125)],
     [(PONG, b"\xfe" * 125)])
case("2.7", [frame(PONG)], [Pong(b"")], [])
case("2.8", [frame(PONG, b"unsolicited pong payload")], [Pong(b"unsolicited pong payload")],
     [])
case("2.9", [frame(PONG, b"unsolicited pong payload") + frame(PING, b"ping payload")],
     [Pong(b"unsolicited pong payload"), Ping(b"ping payload")], [(PONG, b"ping payload")])
TEN = [frame(PING, b"payload-%d" % i) for i in range(10)]
case("2.10", [b"".join(TEN)], [Ping(b"payload-%d" % i) for i in range(10)],
     [(PONG, b"payload-%d" % i) for i in range(10)])
case("2.11", chops(b"".join(TEN), 1), [Ping(b"payload-%d" % i) for i in range(10)],
     [(PONG, b"payload-%d" % i) for i in range(10)])

# 3 reserved bits: what came before is echoed, the bad frame fails 1002, nothing after it
case("3.1", [frame(TEXT, "Hello, world!", rsv=1)], [failed(1002)], [closed(1002)])
for cid, rsv, chunked in [("3.2", 2, False), ("3.3", 3, False), ("3.4", 4, True)]:
    data = frame(TEXT, "Hello, world!") + frame(TEXT, "Hello, world!", rsv=rsv) + frame(PING)
    case(cid, chops(data, 1) if chunked else [data[:19], data[19:]],
         [TextMessage("Hello, world!"), failed(1002)],
         [(TEXT, b"Hello, world!"), closed(1002)])
case("3.5", [frame(BINARY, bytes(range(256)), rsv=5)], [failed(1002)], [closed(1002)])
case("3.6", [frame(PING, b"Hello, world!", rsv=6)], [failed(1002)], [closed(1002)])
case("3.7", [frame(CLOSE, close_payload(1000), rsv=7)], [failed(1002)], [closed(1002)])

# 4 reserved opcodes, alone and between a message and a ping
for group, opcodes in (("4.1", (3, 4, 5, 6, 7)), ("4.2", (11, 12, 13, 14, 15))):
    for i, op in enumerate(opcodes):
        payload = b"reserved opcode payload" if i in (1, 3, 4) else b""
        if i < 2:
            case(f"{group}.{i + 1}", [frame(op, payload)], [failed(1002)], [closed(1002)])
        else:
            data = frame(TEXT, "Hello, world!") + frame(op, payload) + frame(PING)
            case(f"{group}.{i + 1}", chops(data, 1) if i == 4 else [data[:19], data[19:]],
                 [TextMessage("Hello, world!"), failed(1002)],
                 [(TEXT, b"Hello, world!"), closed(1002)])

# 5 fragmentation
case("5.1", [frame(PING, b"fragment1", fin=False) + frame(CONT, b"fragment2")],
     [failed(1002)], [closed(1002)])
case("5.2", [frame(PONG, b"fragment1", fin=False) + frame(CONT, b"fragment2")],
     [failed(1002)], [closed(1002)])
TWO = [frame(TEXT, "fragment1", fin=False), frame(CONT, "fragment2")]
case("5.3", [b"".join(TWO)], *text_echo("fragment1fragment2"))
case("5.4", TWO, *text_echo("fragment1fragment2"))
case("5.5", chops(b"".join(TWO), 1), *text_echo("fragment1fragment2"))
WITH_PING = [TWO[0], frame(PING, b"pongme!"), TWO[1]]
for cid, chunks in [("5.6", [b"".join(WITH_PING)]), ("5.7", WITH_PING),
                    ("5.8", chops(b"".join(WITH_PING), 1))]:
    case(cid, chunks, [Ping(b"pongme!"), TextMessage("fragment1fragment2")],
         [(PONG, b"pongme!"), (TEXT, b"fragment1fragment2")])
for first, fin in [(9, True), (12, False)]:
    data = [frame(CONT, "non-continuation payload", fin=fin), frame(TEXT, "Hello, world!")]
    case(f"5.{first}", [b"".join(data)], [failed(1002)], [closed(1002)])
    case(f"5.{first + 1}", data, [failed(1002)], [closed(1002)])
    case(f"5.{first + 2}", chops(b"".join(data), 1), [failed(1002)], [closed(1002)])
case("5.15", [b"".join(TWO), frame(CONT, "fragment3", fin=False) + frame(TEXT, "fragment4")],
     [TextMessage("fragment1fragment2"), failed(1002)],
     [(TEXT, b"fragment1fragment2"), closed(1002)])
for cid, fin in [("5.16", False), ("5.17", True)]:
    data = (frame(CONT, "fragment1", fin=fin) + frame(TEXT, "fragment2", fin=False)
            + frame(CONT, "fragment3"))
    case(cid, [data * 2], [failed(1002)], [closed(1002)])
case("5.18", [frame(TEXT, "fragment1", fin=False) + frame(TEXT, "fragment2")],
     [failed(1002)], [closed(1002)])
FIVE = [frame(TEXT, "fragment1", fin=False), frame(CONT, "fragment2", fin=False),
        frame(PING, b"pongme 1!"), frame(CONT, "fragment3", fin=False),
        frame(CONT, "fragment4", fin=False), frame(PING, b"pongme 2!"), frame(CONT, "fragment5")]
for cid, chunks in [("5.19", [b"".join(FIVE[:3]), b"".join(FIVE[3:])]), ("5.20", FIVE)]:
    case(cid, chunks, [Ping(b"pongme 1!"), Ping(b"pongme 2!"),
                       TextMessage("fragment1fragment2fragment3fragment4fragment5")],
         [(PONG, b"pongme 1!"), (PONG, b"pongme 2!"),
          (TEXT, b"fragment1fragment2fragment3fragment4fragment5")])

# 6 UTF-8: empty messages and fragments, then every sequence of the test file as one frame
# and as 1-byte fragments (fail-fast positions: test_fail_fast_at_the_first_impossible_byte)
case("6.1.1", [frame(TEXT)], *text_echo(""))
case("6.1.2", [frame(TEXT, fin=False) + frame(CONT, fin=False) + frame(CONT)], *text_echo(""))
case("6.1.3", [frame(TEXT, fin=False) + frame(CONT, "middle frame payload", fin=False)
               + frame(CONT)], *text_echo("middle frame payload"))
KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
UTF8_SEQUENCES: list[tuple[str, bytes]] = [
    ("6.2", "Hello-µ@ßöäüàá-UTF-8!!".encode()),
    ("6.3", KOSME + b"\xed\xa0\x80edited"),
    ("6.5.1", KOSME), ("6.5.2", b"\xf0\x90\x80\x80"), ("6.5.3", b"\xce\xba\xe1\xbd\xb9"),
    *[(f"6.6.{n}", KOSME[:n]) for n in range(1, len(KOSME) + 1)],
    # first and last possible sequences of each length, other boundary conditions
    ("6.7.1", b"\x00"), ("6.7.2", b"\xc2\x80"), ("6.7.3", b"\xe0\xa0\x80"),
    ("6.7.4", b"\xf0\x90\x80\x80"), ("6.8.1", b"\xf8\x88\x80\x80\x80"),
    ("6.8.2", b"\xfc\x84\x80\x80\x80\x80"), ("6.9.1", b"\x7f"), ("6.9.2", b"\xdf\xbf"),
    ("6.9.3", b"\xef\xbf\xbf"), ("6.9.4", b"\xf4\x8f\xbf\xbf"), ("6.10.1", b"\xf7\xbf\xbf\xbf"),
    ("6.10.2", b"\xfb\xbf\xbf\xbf\xbf"), ("6.10.3", b"\xfd\xbf\xbf\xbf\xbf\xbf"),
    ("6.11.1", b"\xed\x9f\xbf"), ("6.11.2", b"\xee\x80\x80"), ("6.11.3", b"\xef\xbf\xbd"),
    ("6.11.4", b"\xf4\x8f\xbf\xbf"), ("6.11.5", b"\xf4\x90\x80\x80"),
    # unexpected continuation bytes, lonely start bytes, missing last continuation bytes
    ("6.12.1", b"\x80"), ("6.12.2", b"\xbf"), ("6.12.3", b"\x80\xbf"),
    ("6.12.4", b"\x80\xbf\x80"), ("6.12.5", b"\x80\xbf\x80\xbf"),
    ("6.12.6", b"\x80\xbf\x80\xbf\x80"), ("6.12.7", b"\x80\xbf\x80\xbf\x80\xbf"),
    ("6.12.8", bytes(range(0x80, 0xC0))),
    ("6.13.1", b" ".join(bytes([c]) for c in range(0xC0, 0xE0)) + b" "),
    ("6.13.2", b" ".join(bytes([c]) for c in range(0xE0, 0xF0)) + b" "),
    ("6.13.3", b" ".join(bytes([c]) for c in range(0xF0, 0xF8)) + b" "),
    ("6.13.4", b"\xf8 \xf9 \xfa \xfb "), ("6.13.5", b"\xfc \xfd "),
    ("6.14.1", b"\xc0"), ("6.14.2", b"\xe0\x80"), ("6.14.3", b"\xf0\x80\x80"),
    ("6.14.4", b"\xf8\x80\x80\x80"), ("6.14.5", b"\xfc\x80\x80\x80\x80"), ("6.14.6", b"\xdf"),
    ("6.14.7", b"\xef\xbf"), ("6.14.8", b"\xf7\xbf\xbf"), ("6.14.9", b"\xfb\xbf\xbf\xbf"),
    ("6.14.10", b"\xfd\xbf\xbf\xbf\xbf"),
    ("6.15.1", b"\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf"
               b"\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf"),
    # impossible bytes, overlong forms, surrogates
    ("6.16.1", b"\xfe"), ("6.16.2", b"\xff"), ("6.16.3", b"\xfe\xfe\xff\xff"),
    ("6.17.1", b"\xc0\xaf"), ("6.17.2", b"\xe0\x80\xaf"), ("6.17.3", b"\xf0\x80\x80\xaf"),
    ("6.17.4", b"\xf8\x80\x80\x80\xaf"), ("6.17.5", b"\xfc\x80\x80\x80\x80\xaf"),
    ("6.18.1", b"\xc1\xbf"), ("6.18.2", b"\xe0\x9f\xbf"), ("6.18.3", b"\xf0\x8f\xbf\xbf"),
    ("6.18.4", b"\xf8\x87\xbf\xbf\xbf"), ("6.18.5", b"\xfc\x83\xbf\xbf\xbf\xbf"),
    ("6.19.1", b"\xc0\x80"), ("6.19.2", b"\xe0\x80\x80"), ("6.19.3", b"\xf0\x80\x80\x80"),
    ("6.19.4", b"\xf8\x80\x80\x80\x80"), ("6.19.5", b"\xfc\x80\x80\x80\x80\x80"),
    *[(f"6.20.{i + 1}", s) for i, s in enumerate(
        [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf", b"\xed\xb0\x80",
         b"\xed\xbe\x80", b"\xed\xbf\xbf"])],
    *[(f"6.21.{i + 1}", s) for i, s in enumerate(
        [b"\xed\xa0\x80\xed\xb0\x80", b"\xed\xa0\x80\xed\xbf\xbf", b"\xed\xad\xbf\xed\xb0\x80",
         b"\xed\xad\xbf\xed\xbf\xbf", b"\xed\xae\x80\xed\xb0\x80", b"\xed\xae\x80\xed\xbf\xbf",
         b"\xed\xaf\xbf\xed\xb0\x80", b"\xed\xaf\xbf\xed\xbf\xbf"])],
    # noncharacters are valid UTF-8 (6.22), and the replacement character (6.23)
    *[(f"6.22.{i + 1}", chr(cp).encode()) for i, cp in enumerate(
        [0xFFFE, 0xFFFF, 0x1FFFE, 0x1FFFF, 0x2FFFE, 0x10FFFE, 0x10FFFF, *range(0xFDD0, 0xFDF0)])],
    ("6.23.1", b"\xef\xbf\xbd"), ("6.23.2", b"\xef\xbf\xbd" * 3),
    ("6.23.3", "\ufffd\u00e9\ufffd".encode()),
]


def _utf8_valid(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


for cid, sequence in UTF8_SEQUENCES:
    if _utf8_valid(sequence):
        expected = text_echo(sequence.decode())
    else:
        expected = ([failed(1007)], [closed(1007)])
    case(f"{cid}-one-frame", [frame(TEXT, sequence)], *expected)
    fragments = [frame(TEXT if i == 0 else CONT, sequence[i:i + 1], fin=i == len(sequence) - 1)
                 for i in range(len(sequence))]
    if fragments:
        case(f"{cid}-byte-fragments", [b"".join(fragments)], *expected)

# 7 close handling
HELLO = frame(TEXT, "Hello World!")
case("7.1.1", [HELLO, frame(CLOSE, close_payload(1000))],
     [TextMessage("Hello World!"), CloseReceived(1000, "")],
     [(TEXT, b"Hello World!"), closed(1000)])
case("7.1.2", [frame(CLOSE, close_payload(1000)) * 2], [CloseReceived(1000, "")],
     [closed(1000)])
case("7.1.3", [frame(CLOSE, close_payload(1000)) + frame(PING)], [CloseReceived(1000, "")],
     [closed(1000)])
case("7.1.4", [frame(CLOSE, close_payload(1000)) + HELLO], [CloseReceived(1000, "")],
     [closed(1000)])
case("7.1.5", [frame(TEXT, "fragment1", fin=False) + frame(CLOSE, close_payload(1000))
               + frame(CONT, "fragment2")], [CloseReceived(1000, "")], [closed(1000)])
case("7.1.6", [frame(TEXT, "BAsd7&jh23" * 26214), frame(CLOSE, close_payload(1000)),
               frame(PING)],
     [TextMessage("BAsd7&jh23" * 26214), CloseReceived(1000, "")],
     [(TEXT, b"BAsd7&jh23" * 26214), closed(1000)])
case("7.3.1", [frame(CLOSE)], [CloseReceived(1005, "")], [closed(1005)])
case("7.3.2", [frame(CLOSE, b"a")], [failed(1002)], [closed(1002)])
case("7.3.3", [frame(CLOSE, close_payload(1000))], [CloseReceived(1000, "")], [closed(1000)])
case("7.3.4", [frame(CLOSE, close_payload(1000, "Hello World!"))],
     [CloseReceived(1000, "Hello World!")], [closed(1000)])
case("7.3.5", [frame(CLOSE, close_payload(1000, "*" * 123))], [CloseReceived(1000, "*" * 123)],
     [closed(1000)])
case("7.3.6", [frame(CLOSE, close_payload(1000, "*" * 124))], [failed(1002)], [closed(1002)])
case("7.5.1", [frame(CLOSE, close_payload(1000, KOSME + b"\xed\xa0\x80edited"))],
     [failed(1007)], [closed(1007)])
VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
               3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
for i, code in enumerate(VALID_CODES):
    case(f"7.7.{i + 1}-{code}", [frame(CLOSE, close_payload(code))], [CloseReceived(code, "")],
         [closed(code)])
for i, code in enumerate(INVALID_CODES):
    case(f"7.9.{i + 1}-{code}", [frame(CLOSE, close_payload(code))], [failed(1002)],
         [closed(1002)])

SMALL_CASES = [c for c in CASES if sum(map(len, c[1])) <= 4096]


@pytest.mark.parametrize("chunks, events, out", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_autobahn_case(codec, chunks, events, out):
    server = WebSocketConnection(codec=codec)
    got_events, got_out = echo(server, chunks)
    assert normalize(got_events) == events
    assert frames_out(got_out) == out
    ends = [e for e in events if isinstance(e, tuple) or isinstance(e, CloseReceived)]
    assert server.closed == bool(ends)
    if ends:
        assert server.close_code == (ends[0][1] if isinstance(ends[0], tuple) else ends[0].code)
        assert server.receive(frame(PING)) == [] and server.data_to_send() == b""


def _automatic(codec, chunks: list[bytes]) -> tuple[list, bytes]:
    """Events and automatic output (no app sends) for ``chunks``."""
    server = WebSocketConnection(codec=codec)
    events = []
    out = b""
    for chunk in chunks:
        events += server.receive(chunk)
        out += server.data_to_send()
    return events, out


@given(st.sampled_from(SMALL_CASES), st.lists(st.integers(0, 4096), max_size=8))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_split_gives_the_same_events_and_automatic_output(chosen, points):
    data = b"".join(chosen[1])
    cuts = sorted({p % (len(data) + 1) for p in points})
    bounds = [0, *cuts, len(data)]
    pieces = [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    for impl in IMPLS:
        whole = _automatic(impl.values[0], [data])
        assert _automatic(impl.values[0], pieces) == whole
        assert _automatic(impl.values[0], chops(data, 1)) == whole


@pytest.mark.parametrize("cid, sequence", UTF8_SEQUENCES, ids=[c[0] for c in UTF8_SEQUENCES])
def test_fail_fast_at_the_first_impossible_byte(codec, cid, sequence):
    """Autobahn 6.x with 1-byte fragments sent one at a time: the connection fails at the
    first fragment after which the text cannot be valid UTF-8, not at the message's end."""
    server = WebSocketConnection(codec=codec)
    for i in range(len(sequence)):
        got = server.receive(frame(TEXT if i == 0 else CONT, sequence[i:i + 1],
                                   fin=i == len(sequence) - 1))
        prefix = sequence[:i + 1]
        if not can_start_utf8(prefix) or (i == len(sequence) - 1
                                          and not _utf8_valid(sequence)):
            assert normalize(got) == [failed(1007)], (cid, i)
            return
        assert got == ([TextMessage(sequence.decode())] if i == len(sequence) - 1 else [])
    assert _utf8_valid(sequence)


@pytest.mark.parametrize("cid, parts", [
    ("6.4.1", [KOSME, b"\xf4\x90\x80\x80", b"edited"]),
    ("6.4.2", [KOSME + b"\xf4", b"\x90", b"\x80\x80edited"]),
])
def test_fail_fast_on_the_fragment_that_breaks_the_text(codec, cid, parts):
    server = WebSocketConnection(codec=codec)
    assert server.receive(frame(TEXT, parts[0], fin=False)) == []
    assert normalize(server.receive(frame(CONT, parts[1], fin=False))) == [failed(1007)]
    assert server.closed


@pytest.mark.parametrize("cid, cut", [("6.4.3", 4), ("6.4.4", 2)])
def test_fail_fast_on_the_chop_that_breaks_the_text(codec, cid, cut):
    data = frame(TEXT, KOSME + b"\xf4\x90\x80\x80edited")
    head = 6 + len(KOSME)
    server = WebSocketConnection(codec=codec)
    assert server.receive(data[:head]) == []
    assert normalize(server.receive(data[head:head + cut])) == [failed(1007)]


# 9 limits and sizes (Autobahn's message sizes, fragment sizes and chop sizes)
@pytest.mark.parametrize("size", [64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20],
                         ids=["64K", "256K", "1M", "4M", "16M"])
def test_9_1_and_9_2_large_messages(codec, size):
    server = WebSocketConnection(codec=codec)
    text = "*" * size
    events, out = echo(server, [frame(TEXT, text)])
    assert events == [TextMessage(text)] and frames_out(out) == [(TEXT, text.encode())]
    data = b"\xfe" * size
    events, out = echo(server, [frame(BINARY, data)])
    assert events == [BytesMessage(data)] and frames_out(out) == [(BINARY, data)]


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
@pytest.mark.parametrize("fragment", [64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 1 << 20])
def test_9_3_and_9_4_fragmented_messages(codec, opcode, fragment):
    size = 1 << 20
    payload = b"*" * size
    data = b"".join(frame(opcode if i == 0 else CONT, payload[i:i + fragment],
                          fin=i + fragment >= size) for i in range(0, size, fragment))
    server = WebSocketConnection(codec=codec)
    events, out = echo(server, [data])
    message = TextMessage("*" * size) if opcode == TEXT else BytesMessage(payload)
    assert events == [message] and frames_out(out) == [(opcode, payload)]


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
@pytest.mark.parametrize("chop", [64, 128, 256, 512, 1024, 2048])
def test_9_5_and_9_6_messages_in_chops(codec, opcode, chop):
    payload = b"*" * (1 << 20)
    server = WebSocketConnection(codec=codec)
    events, out = echo(server, chops(frame(opcode, payload), chop))
    assert frames_out(out) == [(opcode, payload)] and len(events) == 1


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
@pytest.mark.parametrize("size", [0, 16, 64, 256, 1024, 4096, 16384, 65536])
def test_9_7_and_9_8_many_messages(codec, opcode, size):
    payload = b"*" * size
    server = WebSocketConnection(codec=codec)
    count = 1000 if size <= 4096 else 100
    events, out = echo(server, [frame(opcode, payload) * count])
    assert frames_out(out) == [(opcode, payload)] * count and len(events) == count


def test_a_message_over_the_limit_fails_1009(codec):
    server = WebSocketConnection(codec=codec, max_message_size=1 << 20)
    assert normalize(echo(server, [frame(BINARY, b"*" * (1 << 20))])[0]) == [
        BytesMessage(b"*" * (1 << 20))]
    events, out = echo(server, [frame(TEXT, "*" * ((1 << 20) + 1))])
    assert normalize(events) == [failed(1009)] and frames_out(out) == [closed(1009)]
    assert server.state is State.CLOSED
