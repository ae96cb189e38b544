"""Where each microsecond of a request goes: the server's per-request path in one process,
without sockets or a load generator.

A real :class:`~kyoukai_h2fast.http2.protocol.H2KyoukaiProtocol` (with whichever engine and app this
process selects) gets, through a fake transport, the bytes h2load sends for ``GET /`` with 10
streams per batch (the ``get-c10-m10`` workload), on a running event loop; the time per request
is measured over many batches, then split by stage with a deterministic profile::

    python bench/glue_profile.py                      # WSGI inline app, compiled build
    python bench/glue_profile.py --app kyoukai        # Kyoukai-style app
    python bench/glue_profile.py --app asgi           # ASGI 3 app
    python bench/glue_profile.py --profile            # + cProfile breakdown (slower)
    KYOUKAI_H2FAST_ENGINE=h2 python bench/glue_profile.py   # the h2-based engine

Pin it (``taskset -c 0``) and compare variants in the same run; absolute figures depend on the
machine. Under ``valgrind --tool=callgrind`` (run twice with different ``--batches`` and
subtract) it gives instructions per request, which do not depend on what else the machine
is doing.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pickle
import pstats
import struct
import sys
import time

import h2.config
import h2.connection
import h2.settings

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)


class FakeTransport:
    """Collects what the server writes; never pauses."""

    def __init__(self) -> None:
        self.written = 0
        self.closed = False

    def write(self, data) -> None:
        self.written += len(data)

    def writelines(self, parts) -> None:
        for part in parts:
            self.written += len(part)

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 4444)}.get(
            name, default)

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def client_bytes(batches: int, per_batch: int = 10) -> tuple[bytes, list[bytes]]:
    """The client preface, then one chunk of ``per_batch`` GET HEADERS frames per batch
    (as h2load sends them: same fields, HPACK-indexed after the first). Cached in
    ``bench/scratch`` (making them runs h2's client, which would blur instruction counts)."""
    return _cached(f"glue-client-{batches}x{per_batch}", _client_bytes, batches, per_batch)


def _cached(name: str, make, *args):
    """``make(*args)``, kept in ``bench/scratch/<name>.pickle`` for the next run."""
    cache = os.path.join(BENCH, "scratch", f"{name}.pickle")
    try:
        with open(cache, "rb") as f:
            return pickle.load(f)
    except OSError:
        pass
    made = make(*args)
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    with open(cache, "wb") as f:
        pickle.dump(made, f)
    return made


def _client() -> tuple[h2.connection.H2Connection, bytes]:
    """An h2 client as h2load configures itself (huge receive windows), and its preface."""
    config = h2.config.H2Configuration(client_side=True, header_encoding=None)
    conn = h2.connection.H2Connection(config)
    conn.local_settings = h2.settings.Settings(client=True, initial_values={
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**30,
        h2.settings.SettingCodes.ENABLE_PUSH: 0})
    conn.initiate_connection()
    conn.increment_flow_control_window(2**30)
    return conn, conn.data_to_send()


def _client_bytes(batches: int, per_batch: int) -> tuple[bytes, list[bytes]]:
    conn, preface = _client()
    headers = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"),
               (b":authority", b"127.0.0.1:4444"), (b"user-agent", b"h2load nghttp2/1.52.0")]
    chunks = []
    sid = 1
    for _ in range(batches):
        for _ in range(per_batch):
            conn.send_headers(sid, headers, end_stream=True)
            sid += 2
        chunks.append(conn.data_to_send())
        # keep h2's client state small: forget the streams (their responses never come)
        conn.streams.clear()
    return preface, chunks


def upload_bytes(requests: int, size: int = 1 << 20) -> tuple[bytes, list[bytes]]:
    """The client preface, then per request a POST /echo HEADERS and ``size`` bytes of DATA
    in 16 KiB frames (raw frames: the server's windows reopen as it takes the bytes)."""
    return _cached(f"glue-upload-{requests}x{size}", _upload_bytes, requests, size)


def _upload_bytes(requests: int, size: int) -> tuple[bytes, list[bytes]]:
    conn, preface = _client()
    payload = bytes(range(256)) * 64  # 16 KiB
    out = []
    sid = 1
    for _ in range(requests):
        conn.send_headers(sid, [(b":method", b"POST"), (b":path", b"/echo"),
                                (b":scheme", b"http"), (b":authority", b"127.0.0.1:4444"),
                                (b"content-length", str(size).encode())])
        parts = [conn.data_to_send()]
        left = size
        while left:
            n = min(left, len(payload))
            left -= n
            parts.append(struct.pack(">I", n)[1:] + bytes([0, 1 if not left else 0])
                         + struct.pack(">I", sid) + payload[:n])
        out.append(b"".join(parts))
        conn.streams.clear()
        sid += 2
    return preface, out


def _serving(app_name: str, preface: bytes):
    """A server protocol (inline WSGI or Kyoukai-style app) on a fake transport, the client
    preface handed to it."""
    import apps
    from kyoukai_h2fast import H2KyoukaiComponent
    from kyoukai_h2fast.http2.protocol import H2KyoukaiProtocol

    app = {"wsgi": apps.wsgi_app, "asgi": apps.asgi_app}.get(app_name) or apps.kyoukai_app
    component = H2KyoukaiComponent(app, None, None, wsgi_threads=0, idle_timeout=0)
    component.runner.start()
    protocol = H2KyoukaiProtocol(component, None)
    protocol.connection_made(FakeTransport())
    protocol.data_received(preface)
    return protocol


async def run_upload(app_name: str, requests: int) -> float:
    """Microseconds per 1 MiB echoed (inline WSGI or Kyoukai-style: apps on the loop)."""
    preface, bodies = upload_bytes(requests + 20)
    protocol = _serving(app_name, preface)
    read = 256 * 1024  # what a socket read hands over at most

    async def feed(items) -> None:
        for body in items:
            view = memoryview(body)
            for i in range(0, len(body), read):
                protocol.data_received(bytes(view[i:i + read]))
                await asyncio.sleep(0)
            while protocol.streams:
                await asyncio.sleep(0)

    await feed(bodies[:20])
    t0 = time.perf_counter()
    await feed(bodies[20:])
    return (time.perf_counter() - t0) / requests * 1e6


async def run(app_name: str, batches: int, profile: bool) -> float:
    preface, chunks = client_bytes(batches + 200)
    protocol = _serving(app_name, preface)
    loop = asyncio.get_running_loop()

    async def feed(chunk_list) -> None:
        for chunk in chunk_list:
            protocol.data_received(chunk)
            await asyncio.sleep(0)  # scheduled flushes and callbacks run, as on a socket
            await asyncio.sleep(0)

    await feed(chunks[:200])  # warm up
    assert not protocol.streams, "responses did not complete"
    profiler = cProfile.Profile() if profile else None
    start = loop.time()
    t0 = time.perf_counter()
    if profiler:
        profiler.enable()
    await feed(chunks[200:])
    if profiler:
        profiler.disable()
    elapsed = time.perf_counter() - t0
    del start
    assert not protocol.streams
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(30)
    return elapsed / (batches * 10) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", choices=("wsgi", "kyoukai", "asgi"), default="wsgi")
    parser.add_argument("--batches", type=int, default=20_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--upload", type=int, metavar="N", default=0,
                        help="instead of GETs: N POSTs of 1 MiB echoed (apps on the loop)")
    args = parser.parse_args()
    from kyoukai_h2fast.server.allocator import tune_allocator
    tune_allocator()  # as the serving process does (server.run)
    if args.loop == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    from kyoukai_h2fast import _switch
    if args.upload:
        us = loop.run_until_complete(run_upload(args.app, args.upload))
        print(f"{args.app} app, extensions {_switch.extensions_state()}, engine "
              f"{_switch.engine_state()}: {us:.1f} us per 1 MiB echo ({args.upload} requests)")
        return
    us = loop.run_until_complete(run(args.app, args.batches, args.profile))
    print(f"{args.app} app, extensions {_switch.extensions_state()}, engine "
          f"{_switch.engine_state()}: {us:.2f} us per request "
          f"({args.batches * 10} requests, batches of 10)")


if __name__ == "__main__":
    main()
