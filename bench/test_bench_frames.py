"""Frame layer microbenchmarks (RFC 9113 §4, §6): compiled vs pure twin vs h2/hyperframe.

    python -m pytest bench/test_bench_frames.py --benchmark-only --benchmark-group-by=group -s

``-s`` also prints, per group, each runner's median time and its speed-up over the
``reference`` runner (hyperframe's bare ``Frame.parse_frame_header`` + ``parse_body`` loop for
parsing, hyperframe's ``serialize()`` for output), all from this one run.

Inbound workloads (one whole byte stream per round, as a server receives it):

* ``h2load``: preface + SETTINGS + WINDOW_UPDATE + 100 HEADERS (END_STREAM, small HPACK blocks
  as h2load sends them after the first request).
* ``upload``: HEADERS + 64 DATA frames of 16 KiB (a 1 MiB request body).
* ``control``: 100 x (PING, WINDOW_UPDATE, SETTINGS ACK).

Parsing runners: ``h2`` (``h2.frame_buffer.FrameBuffer``), ``reference`` (bare hyperframe),
``compiled-objects`` / ``pure-objects`` (our ``FrameBuffer`` yielding hyperframe objects, what
h2 consumes), ``compiled-scan`` / ``pure-scan`` (``count_frames``: the low-level path with all
checks and header-block joining but no per-frame Python object).
"""
from __future__ import annotations

import collections

import pytest
from h2.frame_buffer import FrameBuffer as H2FrameBuffer
from hpack import Encoder
from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from kyoukai_h2fast import _switch

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_FRAME_SIZE = 16384


def _h2load_stream() -> bytes:
    encoder = Encoder()
    parts = [PREFACE,
             SettingsFrame(0, settings={3: 100, 4: 65535, 2: 0}).serialize(),
             WindowUpdateFrame(0, window_increment=1 << 30).serialize()]
    for i in range(100):
        block = encoder.encode([(":method", "GET"), (":path", "/"), (":scheme", "https"),
                                (":authority", "localhost:8443"),
                                ("user-agent", "h2load nghttp2/1.59.0")])
        parts.append(HeadersFrame(2 * i + 1, data=block,
                                  flags=["END_STREAM", "END_HEADERS"]).serialize())
    return b"".join(parts)


def _upload_stream() -> bytes:
    block = Encoder().encode([(":method", "POST"), (":path", "/upload"), (":scheme", "https"),
                              (":authority", "localhost:8443"), ("content-length", str(1 << 20))])
    parts = [PREFACE, SettingsFrame(0).serialize(),
             HeadersFrame(1, data=block, flags=["END_HEADERS"]).serialize()]
    chunk = bytes(range(256)) * 64
    for i in range(64):
        parts.append(DataFrame(1, data=chunk, flags=["END_STREAM"] if i == 63 else []).serialize())
    return b"".join(parts)


def _control_stream() -> bytes:
    parts = [PREFACE]
    for i in range(100):
        parts += [PingFrame(0, opaque_data=i.to_bytes(8, "big")).serialize(),
                  WindowUpdateFrame(i % 3, window_increment=1000 + i).serialize(),
                  SettingsFrame(0, flags=["ACK"]).serialize()]
    return b"".join(parts)


STREAMS = {"h2load": _h2load_stream(), "upload": _upload_stream(), "control": _control_stream()}
EXPECTED_FRAMES = {"h2load": 102, "upload": 66, "control": 300}

IMPLEMENTATIONS = {"pure": _switch.pure("frames")}
if _switch.compiled("frames") is not None:
    IMPLEMENTATIONS["compiled"] = _switch.compiled("frames")

MEDIANS: dict[str, dict[str, float]] = collections.defaultdict(dict)


@pytest.fixture(scope="module", autouse=True)
def print_ratios():
    yield
    for group, runners in MEDIANS.items():
        reference = runners.get("reference")
        print(f"\n{group}")
        for name, median in sorted(runners.items(), key=lambda item: -item[1]):
            ratio = f"{reference / median:7.1f}x" if reference else ""
            print(f"  {name:<18} {median * 1e6:10.2f} us  {ratio}")


def _run(benchmark, group: str, name: str, fn, expected=None):
    benchmark.group = group
    benchmark.name = name
    result = benchmark(fn)
    if expected is not None:
        assert result == expected
    if benchmark.stats is not None:  # None with --benchmark-disable
        MEDIANS[group][name] = benchmark.stats.stats.median


def _objects(buffer_class, data: bytes) -> int:
    buf = buffer_class(server=True)
    buf.add_data(data)
    buf.max_frame_size = MAX_FRAME_SIZE
    count = 0
    for _ in buf:
        count += 1
    return count


def _hyperframe_loop(data: bytes) -> int:
    view = memoryview(data)[len(PREFACE):]
    position, count = 0, 0
    while position < len(view):
        frame, length = Frame.parse_frame_header(view[position:position + 9])
        frame.parse_body(view[position + 9:position + 9 + length])
        position += 9 + length
        count += 1
    return count


PARSERS = ["h2", "reference", "pure-objects", "compiled-objects", "pure-scan", "compiled-scan"]


@pytest.mark.parametrize("workload", list(STREAMS))
@pytest.mark.parametrize("runner", PARSERS)
def test_parse(benchmark, workload, runner):
    data = STREAMS[workload]
    group = f"parse {workload}"
    expected = EXPECTED_FRAMES[workload]
    if runner == "h2":
        _run(benchmark, group, runner, lambda: _objects(H2FrameBuffer, data), expected)
    elif runner == "reference":
        _run(benchmark, group, runner, lambda: _hyperframe_loop(data), expected)
    else:
        impl_name, kind = runner.split("-")
        impl = IMPLEMENTATIONS.get(impl_name)
        if impl is None:
            pytest.fail(f"{impl_name} frames module is not built")
        if kind == "objects":
            _run(benchmark, group, runner, lambda: _objects(impl.FrameBuffer, data), expected)
        else:
            _run(benchmark, group, runner,
                 lambda: impl.count_frames(data, MAX_FRAME_SIZE, True), expected)


def _response_frames():
    """What h2 sends for one response (HEADERS, 4 DATA frames) and six control frames."""
    body = b"r" * 16384
    return [HeadersFrame(1, data=b"\x88\x5f\x87\x49\x7c\xa5\x8a\xe8\x19\xaa\x5c\x82\x10\x00",
                         flags=["END_HEADERS"]),
            DataFrame(1, data=body), DataFrame(1, data=body), DataFrame(1, data=body),
            DataFrame(1, data=b"tail", flags=["END_STREAM"]),
            WindowUpdateFrame(0, window_increment=65535), PingFrame(0, b"12345678", flags=["ACK"]),
            RstStreamFrame(3, error_code=8), SettingsFrame(0, flags=["ACK"]),
            GoAwayFrame(0, last_stream_id=1)]


def _direct(impl):
    body = b"r" * 16384
    header_block = b"\x88\x5f\x87\x49\x7c\xa5\x8a\xe8\x19\xaa\x5c\x82\x10\x00"

    def run():
        return b"".join([
            impl.headers_frames(1, header_block, False, MAX_FRAME_SIZE),
            impl.data_frames(1, body * 3 + b"tail", True, MAX_FRAME_SIZE),
            impl.window_update_frame(0, 65535), impl.ping_frame(b"12345678", True),
            impl.rst_stream_frame(3, 8), impl.settings_frame({}, True), impl.goaway_frame(1, 0)])
    return run


SERIALIZERS = ["reference", "pure-serialize_frame", "compiled-serialize_frame", "pure-direct",
               "compiled-direct"]


def _serializer(runner: str, frames: list, direct):
    """The function a serialization benchmark times: hyperframe's ``serialize()`` for the
    reference, else ``serialize_frame`` or the direct functions of the named build."""
    if runner == "reference":
        return lambda: b"".join([f.serialize() for f in frames])
    impl_name, kind = runner.split("-", 1)
    impl = IMPLEMENTATIONS.get(impl_name)
    if impl is None:
        pytest.fail(f"{impl_name} frames module is not built")
    if kind == "direct":
        return direct(impl)
    serialize = impl.serialize_frame
    return lambda: b"".join([serialize(f) for f in frames])


@pytest.mark.parametrize("runner", SERIALIZERS)
def test_serialize_response(benchmark, runner):
    frames = _response_frames()
    fn = _serializer(runner, frames, _direct)
    assert fn() == b"".join(f.serialize() for f in frames)
    _run(benchmark, "serialize one response + control frames", runner, fn)


def _control_frames():
    return [WindowUpdateFrame(0, window_increment=65535), WindowUpdateFrame(1, window_increment=1),
            PingFrame(0, b"12345678", flags=["ACK"]), RstStreamFrame(3, error_code=8),
            SettingsFrame(0, flags=["ACK"]), GoAwayFrame(0, last_stream_id=1)]


def _direct_control(impl):
    def run():
        return b"".join([impl.window_update_frame(0, 65535), impl.window_update_frame(1, 1),
                         impl.ping_frame(b"12345678", True), impl.rst_stream_frame(3, 8),
                         impl.settings_frame({}, True), impl.goaway_frame(1, 0)])
    return run


@pytest.mark.parametrize("runner", SERIALIZERS)
def test_serialize_control(benchmark, runner):
    """Six control frames: per-frame overhead, no payload copies."""
    frames = _control_frames()
    fn = _serializer(runner, frames, _direct_control)
    assert fn() == b"".join(f.serialize() for f in frames)
    _run(benchmark, "serialize six control frames", runner, fn)
