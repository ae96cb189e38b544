"""Connection engine microbenchmarks: the compiled engine against the h2-based one, in memory.

    taskset -c 0 python -m pytest bench/test_bench_engine.py --benchmark-only -s

``-s`` prints, per workload, each engine's median time and the compiled engine's speed-up over
the h2-based one (the reference), all from this one run.

Workloads (one round each, a fresh connection: preface and SETTINGS exchange included):

* ``request cycle x100``: 100 requests as h2load sends them after the first (GET, a small HPACK
  block of dynamic-table references, END_STREAM), each answered with ``200`` + ``content-type``
  + ``content-length`` and a 13-byte body; the bytes to send are taken after each response.
* ``upload 1 MiB``: a POST whose body comes as 64 DATA frames of 16 KiB, fed in 64 KiB reads,
  every DATA event acknowledged (the app consumed it), then a ``204``.

Engines: ``compiled`` (``kyoukai_h2fast._engine_c.Engine``) and ``h2`` (the h2-based twin,
``kyoukai_h2fast.http2.h2engine.engine.Engine``).
"""
from __future__ import annotations

import collections
import importlib

import pytest
from hpack import Encoder
from hyperframe.frame import DataFrame, HeadersFrame, SettingsFrame

from kyoukai_h2fast.config import ServerConfig
from kyoukai_h2fast.constants import CLIENT_PREFACE
from kyoukai_h2fast.http2.events import DataReceived, RequestReceived

HELLO = b"Hello, world!"
RESPONSE = [(b":status", b"200"), (b"content-type", b"text/plain"), (b"content-length", b"13")]
CONFIG = ServerConfig()


def _compiled():
    try:
        return importlib.import_module("kyoukai_h2fast._engine_c").Engine
    except ImportError:
        pytest.fail("kyoukai_h2fast._engine_c is not built (python setup.py build_ext --inplace)")


def _h2():
    return importlib.import_module("kyoukai_h2fast.http2.h2engine.engine").Engine


ENGINES = {"compiled": _compiled, "h2": _h2}
MEDIANS: dict = collections.defaultdict(dict)


@pytest.fixture(scope="module", autouse=True)
def print_ratios():
    yield
    for group, runners in MEDIANS.items():
        reference = runners.get("h2")
        print(f"\n{group}")
        for name, median in sorted(runners.items(), key=lambda item: -item[1]):
            ratio = f"{reference / median:7.2f}x" if reference else ""
            print(f"  {name:<10} {median * 1e6:10.2f} us  {ratio}")


def _handshake() -> bytes:
    return (CLIENT_PREFACE + SettingsFrame(0).serialize()
            + SettingsFrame(0, flags=["ACK"]).serialize())


def _requests(n: int) -> list:
    encoder = Encoder()
    fields = [(":method", "GET"), (":path", "/"), (":scheme", "https"),
              (":authority", "localhost:8443"), ("user-agent", "h2load nghttp2/1.59.0")]
    return [HeadersFrame(2 * i + 1, data=encoder.encode(fields),
                         flags=["END_STREAM", "END_HEADERS"]).serialize() for i in range(n)]


REQUESTS = _requests(100)
HANDSHAKE = _handshake()


def _request_cycles(engine_cls):
    def run():
        engine = engine_cls(CONFIG)
        engine.initiate()
        engine.receive(HANDSHAKE)
        engine.data_to_send()
        sent = 0
        for frame in REQUESTS:
            (event,) = engine.receive(frame)
            sid = event.stream_id
            engine.send_headers(sid, RESPONSE, False)
            engine.queue_data(sid, HELLO, True)
            sent += len(engine.data_to_send())
            engine.send_events()
        return sent
    return run


def _upload_stream() -> list:
    block = Encoder().encode([(":method", "POST"), (":path", "/upload"), (":scheme", "https"),
                              (":authority", "localhost:8443"),
                              ("content-length", str(1 << 20))])
    chunk = bytes(range(256)) * 64
    data = HeadersFrame(1, data=block, flags=["END_HEADERS"]).serialize() + b"".join(
        DataFrame(1, data=chunk, flags=["END_STREAM"] if i == 63 else []).serialize()
        for i in range(64))
    return [data[i:i + 65536] for i in range(0, len(data), 65536)]


UPLOAD = _upload_stream()


def _upload(engine_cls):
    def run():
        engine = engine_cls(CONFIG)
        engine.initiate()
        engine.receive(HANDSHAKE)
        received = 0
        for read in UPLOAD:
            for event in engine.receive(read):
                if event.__class__ is DataReceived:
                    received += len(event.data)
                    engine.acknowledge(1, event.flow_controlled_length)
        engine.send_headers(1, [(b":status", b"204")], True)
        engine.data_to_send()
        return received
    return run


def _first_response(engine_cls) -> bytes:
    """The bytes one engine sends for the first request (the engines are comparable: the
    same frames)."""
    engine = engine_cls(CONFIG)
    engine.initiate()
    engine.receive(HANDSHAKE)
    engine.data_to_send()
    (event,) = engine.receive(REQUESTS[0])
    assert isinstance(event, RequestReceived)
    engine.send_headers(1, RESPONSE, False)
    engine.queue_data(1, HELLO, True)
    return bytes(engine.data_to_send())


WORKLOADS = {"request cycle x100": (_request_cycles, None), "upload 1 MiB": (_upload, 1 << 20)}


@pytest.mark.parametrize("workload", list(WORKLOADS))
@pytest.mark.parametrize("engine", list(ENGINES))
def test_engine(benchmark, workload, engine):
    make, expected = WORKLOADS[workload]
    assert _first_response(ENGINES[engine]()) == _first_response(ENGINES["h2"]())
    fn = make(ENGINES[engine]())
    result = fn()
    if expected is not None:
        assert result == expected
    else:
        assert result > 100 * len(HELLO)
    benchmark.group = workload
    benchmark.name = engine
    benchmark(fn)
    if benchmark.stats is not None:  # None with --benchmark-disable
        MEDIANS[workload][engine] = benchmark.stats.stats.median
