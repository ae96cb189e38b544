"""WebSocket core microbenchmarks (RFC 6455): compiled codec vs pure twin vs the ``websockets``
library (the sans-IO core under uvicorn's default WebSocket implementation).

    taskset -c 0 python -m pytest bench/test_bench_websocket.py --benchmark-only \
        --benchmark-group-by=group -s

``-s`` also prints, per group, each runner's median and its speed-up over ``reference``.

Groups (one masked client frame of 16 B, 16 KiB or 1 MiB; ``text`` is ASCII, as JSON mostly
is; ``text-utf8`` has an "é" every 16 bytes, where CPython's UTF-8 codec dominates):

* ``ws parse text|binary <size>``: bytes in -> the payload a message event carries (text
  validated and decoded). ``reference``: websockets' ``Frame.parse`` on a ``StreamReader``
  (unmasking with its C speedup) + ``bytes.decode`` for text, what its protocol does per
  frame; ours: ``FrameReader.feed`` + ``next_frame``.
* ``ws build text|binary <size>``: a server frame (unmasked) from a ``str``/``bytes``:
  ``reference``: ``Frame(...).serialize(mask=False)`` (text encoded first); ours:
  ``build_frame``.
* ``ws echo text <size>``: one text message through the whole sans-IO connection and its
  echo back, ``str`` to the app and from it: ``reference``: websockets' ``ServerProtocol``
  (``receive_data``, ``events_received``, the payload decoded, ``send_text`` of it encoded,
  ``data_to_send``: what uvicorn's websockets-sansio protocol does per message); ours:
  ``WebSocketConnection.receive`` + ``send_text`` with either codec twin.
"""
from __future__ import annotations

import collections

import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

from kyoukai_h2fast import _switch
from kyoukai_h2fast.websocket.connection import WebSocketConnection

SIZES = {"16B": 16, "16KiB": 16 << 10, "1MiB": 1 << 20}
MASK = b"\x37\xfa\x21\x3d"

IMPLEMENTATIONS = {"pure": _switch.pure("websocket")}
if _switch.compiled("websocket") is not None:
    IMPLEMENTATIONS["compiled"] = _switch.compiled("websocket")

MEDIANS: dict[str, dict[str, float]] = collections.defaultdict(dict)


@pytest.fixture(scope="module", autouse=True)
def print_ratios():
    yield
    for group, runners in MEDIANS.items():
        reference = runners.get("reference")
        print(f"\n{group}")
        for name, median in sorted(runners.items(), key=lambda item: -item[1]):
            ratio = f"{reference / median:7.1f}x" if reference else ""
            print(f"  {name:<12} {median * 1e6:12.3f} us  {ratio}")


def _run(benchmark, group: str, name: str, fn, expected=None):
    benchmark.group = group
    benchmark.name = name
    result = benchmark(fn)
    if expected is not None:
        assert result == expected
    if benchmark.stats is not None:  # None with --benchmark-disable
        MEDIANS[group][name] = benchmark.stats.stats.median


def _impl(name: str):
    impl = IMPLEMENTATIONS.get(name)
    if impl is None:
        pytest.fail(f"the {name} websocket codec is not built")
    return impl


def _text(n: int, utf8: bool = False) -> str:
    unit = "Hello, world! é " if utf8 else '{"hello": "wo",}'
    return (unit * (n // 16 + 1)).encode()[:n].decode("utf-8", "ignore")


def _payload(kind: str, n: int) -> str | bytes:
    if kind == "binary":
        return bytes(range(256)) * (n // 256) + bytes(n % 256)
    return _text(n, kind == "text-utf8")


def _client_frame(kind: str, payload: str | bytes) -> bytes:
    opcode = Opcode.BINARY if kind == "binary" else Opcode.TEXT
    data = payload.encode() if isinstance(payload, str) else payload
    return Frame(opcode, data).serialize(mask=True)


def _websockets_parse(data: bytes, text: bool):
    reader = StreamReader()

    def run():
        reader.feed_data(data)
        parser = Frame.parse(reader.read_exact, mask=True, max_size=None)
        try:
            next(parser)
        except StopIteration as done:
            frame = done.value
        return frame.data.decode() if text else bytes(frame.data)
    return run


def _our_parse(impl, data: bytes):
    reader = impl.FrameReader(16 << 20)

    def run():
        reader.feed(data)
        return reader.next_frame()[3]
    return run


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("kind", ["text", "text-utf8", "binary"])
@pytest.mark.parametrize("runner", ["reference", "pure", "compiled"])
def test_parse(benchmark, runner, kind, size):
    payload = _payload(kind, SIZES[size])
    data = _client_frame(kind, payload)
    if runner == "reference":
        fn = _websockets_parse(data, kind != "binary")
    else:
        fn = _our_parse(_impl(runner), data)
    _run(benchmark, f"ws parse {kind} {size}", runner, fn, payload)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("kind", ["text", "binary"])
@pytest.mark.parametrize("runner", ["reference", "pure", "compiled"])
def test_build(benchmark, runner, kind, size):
    payload = _payload(kind, SIZES[size])
    opcode = Opcode.BINARY if kind == "binary" else Opcode.TEXT
    expected = Frame(opcode, payload.encode() if isinstance(payload, str) else payload
                     ).serialize(mask=False)
    if runner == "reference":
        def fn():
            data = payload.encode() if isinstance(payload, str) else payload
            return Frame(opcode, data).serialize(mask=False)
    else:
        build = _impl(runner).build_frame

        def fn():
            return build(int(opcode), payload)
    _run(benchmark, f"ws build {kind} {size}", runner, fn, expected)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("kind", ["text", "text-utf8"])
@pytest.mark.parametrize("runner", ["reference", "pure", "compiled"])
def test_echo(benchmark, runner, kind, size):
    text = _text(SIZES[size], kind == "text-utf8")
    data = _client_frame(kind, text)
    expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
    if runner == "reference":
        proto = ServerProtocol(state=State.OPEN, max_size=None)

        def fn():
            proto.receive_data(data)
            message = proto.events_received()[0].data.decode()     # str for the app
            proto.send_text(message.encode())
            return b"".join(proto.data_to_send())
    else:
        conn = WebSocketConnection(codec=_impl(runner))

        def fn():
            event = conn.receive(data)[0]
            return conn.send_text(event.data)
    _run(benchmark, f"ws echo {kind} {size}", runner, fn, expected)
