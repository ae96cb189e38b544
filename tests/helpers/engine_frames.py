"""In-memory driving of connection engines: a frame factory, an output parser, a client peer.

The engine tests feed bytes to an engine and look at what comes out, without a socket (as h2's
``tests/helpers.py`` ``FrameFactory`` does for h2):

* :class:`FrameFactory` builds client frames: the preface, SETTINGS, HEADERS with an
  HPACK-encoded request (one encoder per factory, so blocks depend on earlier ones as on a real
  connection), DATA, WINDOW_UPDATE, ..., and raw frames with any type, flags and payload.
* :func:`parse_frames` turns an engine's output into hyperframe frame objects.
* :class:`Peer` is a client connected to one engine: it performs the handshake, sends frames,
  collects events and the server's frames (header blocks decoded in order with its own HPACK
  decoder), and records connection errors.
* :func:`engine_classes` lists the engines under test (the compiled one, and the h2-based twin
  ``kyoukai_h2fast.http2.h2engine.engine`` once it exists), as pytest params.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import os
import struct

import pytest
from hpack import Decoder, Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

import kyoukai_h2fast
from kyoukai_h2fast.config import ServerConfig
from kyoukai_h2fast.constants import CLIENT_PREFACE, ErrorCode, Flag, FrameType
from kyoukai_h2fast.errors import ConnectionFailed

__all__ = ["FrameFactory", "parse_frames", "Peer", "engine_classes", "ENGINE_PARAMS",
           "request_headers", "describe", "TWIN_FAULTS", "twin_fault"]


def _load(name: str):
    """``kyoukai_h2fast.<name>.Engine`` if that module is part of this checkout (an editable
    install elsewhere must not lend us its modules)."""
    package = os.path.dirname(os.path.abspath(kyoukai_h2fast.__file__))
    if not any(os.path.exists(os.path.join(package, *name.split(".")) + suffix)
               for suffix in importlib.machinery.all_suffixes()):
        return None
    return importlib.import_module(f"kyoukai_h2fast.{name}").Engine


def engine_classes() -> dict:
    """``{"compiled": cls, "h2": cls}``: the engines that import (the twin may not exist yet)."""
    found = {"compiled": _load("_engine_c"), "h2": _load("http2.h2engine.engine")}
    return {name: cls for name, cls in found.items() if cls is not None}


#: pytest params over every engine that imports; the compiled one must be built.
ENGINE_PARAMS = [pytest.param(cls, id=name) for name, cls in engine_classes().items()]
if "compiled" not in engine_classes():
    ENGINE_PARAMS.insert(0, pytest.param(None, id="compiled-missing"))


#: Known faults of the h2-based twin (``kyoukai_h2fast.http2.h2engine.engine``), where RFC 9113
#: (or the Engine contract) says otherwise and the compiled engine follows it. A test that meets one
#: checks the RFC behaviour on the compiled engine and this documented behaviour on the twin
#: (``twin_fault``); once the twin is fixed, that test fails and names the entry to delete.
#: The differential tests recognise the same faults (test_engine_differential.TWIN_DEVIATIONS).
TWIN_FAULTS = {
    "settings-in-order":
        "RFC 9113 §6.5.3: 'The values in the SETTINGS frame MUST be processed in the order they "
        "appear.' The twin gets SETTINGS from the frame layer as hyperframe objects, whose "
        "settings dict keeps only the last value of a repeated setting (the payload is gone by "
        "then), so an invalid earlier one passes; fixing it needs the frame layer to hand the "
        "entries over in order.",
}


def twin_fault(engine_cls, name: str) -> bool:
    """True when ``engine_cls`` is the h2-based twin, which has the known fault ``name``."""
    assert name in TWIN_FAULTS, name
    return getattr(engine_cls, "__module__", "") == "kyoukai_h2fast.http2.h2engine.engine"


def request_headers(path: str = "/", method: str = "GET", authority: str = "example.com",
                    extra=()) -> list:
    return [(":method", method), (":path", path), (":scheme", "https"),
            (":authority", authority), *extra]


def raw_frame(ftype: int, flags: int, stream_id: int, payload: bytes,
              length: int | None = None) -> bytes:
    """A frame with any type, flags, stream id and payload; ``length`` may lie."""
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + struct.pack(">BBI", ftype, flags, stream_id) + payload


class FrameFactory:
    """Client frames for one connection (its HPACK encoder carries state across blocks)."""

    def __init__(self) -> None:
        self.encoder = Encoder()

    # -- connection ----------------------------------------------------------------------
    def preface(self, settings: dict | None = None) -> bytes:
        return CLIENT_PREFACE + self.settings(settings or {})

    @staticmethod
    def settings(settings: dict | None = None, ack: bool = False) -> bytes:
        frame = SettingsFrame(0, settings=settings or {})
        if ack:
            frame.flags.add("ACK")
        return frame.serialize()

    @staticmethod
    def settings_raw(pairs) -> bytes:
        """SETTINGS with ``(id, value)`` pairs in order (duplicates allowed)."""
        return raw_frame(FrameType.SETTINGS, 0, 0,
                         b"".join(struct.pack(">HI", ident, value) for ident, value in pairs))

    @staticmethod
    def ping(data: bytes = b"12345678", ack: bool = False) -> bytes:
        return PingFrame(0, opaque_data=data, flags=["ACK"] if ack else []).serialize()

    @staticmethod
    def goaway(last_stream_id: int = 0, error_code: int = 0, debug: bytes = b"") -> bytes:
        return GoAwayFrame(0, last_stream_id=last_stream_id, error_code=error_code,
                           additional_data=debug).serialize()

    @staticmethod
    def window_update(stream_id: int, increment: int) -> bytes:
        return raw_frame(FrameType.WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))

    # -- streams -------------------------------------------------------------------------
    def block(self, headers) -> bytes:
        return self.encoder.encode(headers)

    def headers(self, stream_id: int, headers, end_stream: bool = False,
                end_headers: bool = True, priority: tuple | None = None,
                pad_length: int | None = None) -> bytes:
        """HEADERS with ``headers`` encoded; ``priority``: (depends_on, weight, exclusive)."""
        return self.headers_block(stream_id, self.block(headers), end_stream, end_headers,
                                  priority, pad_length)

    @staticmethod
    def headers_block(stream_id: int, block: bytes, end_stream: bool = False,
                      end_headers: bool = True, priority: tuple | None = None,
                      pad_length: int | None = None) -> bytes:
        flags = (Flag.END_STREAM if end_stream else 0) | (Flag.END_HEADERS if end_headers else 0)
        payload = block
        if priority is not None:
            depends_on, weight, exclusive = priority
            flags |= Flag.PRIORITY
            payload = struct.pack(">IB", depends_on | (0x80000000 if exclusive else 0),
                                  weight) + payload
        if pad_length is not None:
            flags |= Flag.PADDED
            payload = bytes([pad_length]) + payload + b"\0" * pad_length
        return raw_frame(FrameType.HEADERS, flags, stream_id, payload)

    def request(self, stream_id: int, path: str = "/", method: str = "GET",
                end_stream: bool = True, extra=(), **kw) -> bytes:
        return self.headers(stream_id, request_headers(path, method, extra=extra),
                            end_stream=end_stream, **kw)

    @staticmethod
    def continuation(stream_id: int, fragment: bytes, end_headers: bool = True) -> bytes:
        return raw_frame(FrameType.CONTINUATION, Flag.END_HEADERS if end_headers else 0,
                         stream_id, fragment)

    @staticmethod
    def data(stream_id: int, payload: bytes = b"", end_stream: bool = False,
             pad_length: int | None = None) -> bytes:
        flags = Flag.END_STREAM if end_stream else 0
        if pad_length is not None:
            flags |= Flag.PADDED
            payload = bytes([pad_length]) + payload + b"\0" * pad_length
        return raw_frame(FrameType.DATA, flags, stream_id, payload)

    @staticmethod
    def rst_stream(stream_id: int, error_code: int = ErrorCode.CANCEL) -> bytes:
        return raw_frame(FrameType.RST_STREAM, 0, stream_id, struct.pack(">I", error_code))

    @staticmethod
    def priority(stream_id: int, depends_on: int = 0, weight: int = 15,
                 exclusive: bool = False) -> bytes:
        return raw_frame(FrameType.PRIORITY, 0, stream_id,
                         struct.pack(">IB", depends_on | (0x80000000 if exclusive else 0), weight))

    def push_promise(self, stream_id: int, promised: int, headers) -> bytes:
        return raw_frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, stream_id,
                         struct.pack(">I", promised) + self.block(headers))

    raw = staticmethod(raw_frame)


def parse_frames(data: bytes) -> list:
    """hyperframe frames of a server's output (no preface)."""
    frames = []
    view = memoryview(data)
    pos = 0
    while pos < len(data):
        assert len(data) - pos >= 9, f"truncated frame header at {pos}"
        frame, length = Frame.parse_frame_header(view[pos:pos + 9])
        assert len(data) - pos - 9 >= length, f"truncated frame at {pos}"
        frame.parse_body(view[pos + 9:pos + 9 + length])
        frames.append(frame)
        pos += 9 + length
    return frames


def describe(frame, decoded=None) -> tuple:
    """A frame as comparable plain data (header blocks by their decoded fields)."""
    flags = tuple(sorted(frame.flags))
    kind = type(frame).__name__
    if isinstance(frame, (HeadersFrame, ContinuationFrame)):
        return (kind, frame.stream_id, flags, decoded)
    if isinstance(frame, DataFrame):
        return (kind, frame.stream_id, flags, bytes(frame.data))
    if isinstance(frame, SettingsFrame):
        return (kind, 0, flags, tuple(sorted(frame.settings.items())))
    if isinstance(frame, WindowUpdateFrame):
        return (kind, frame.stream_id, flags, frame.window_increment)
    if isinstance(frame, RstStreamFrame):
        return (kind, frame.stream_id, flags, frame.error_code)
    if isinstance(frame, GoAwayFrame):
        return (kind, 0, flags, (frame.last_stream_id, frame.error_code, frame.additional_data))
    if isinstance(frame, PingFrame):
        return (kind, 0, flags, frame.opaque_data)
    if isinstance(frame, PriorityFrame):
        return (kind, frame.stream_id, flags, (frame.depends_on, frame.stream_weight))
    return (kind, frame.stream_id, flags, None)


class Peer:
    """A client connected to one engine, in memory.

    ``handshake=True`` sends the preface (with ``settings``), acknowledges the server's SETTINGS
    and drops the server preface from the output, so tests start from an open connection.
    """

    def __init__(self, engine_cls, config: ServerConfig | None = None, *,
                 handshake: bool = True, settings: dict | None = None) -> None:
        if engine_cls is None:
            pytest.fail("kyoukai_h2fast._engine_c is not built "
                        "(python setup.py build_ext --inplace)")
        self.config = (config or ServerConfig()).validate()
        self.engine = engine_cls(self.config)
        self.ff = FrameFactory()
        self.decoder = Decoder(max_header_list_size=1 << 30)
        self.decoder.max_allowed_table_size = 1 << 32
        #: Every frame the server sent (parsed), in order.
        self.frames: list = []
        #: Every receive-side event, in order.
        self.events: list = []
        #: The ConnectionFailed raised by receive, if any.
        self.error: ConnectionFailed | None = None
        self._partial: list = []
        self.engine.initiate()
        if handshake:
            self.recv(self.ff.preface(settings))
            self.recv(self.ff.settings(ack=True))
            self.take()

    # -- input ---------------------------------------------------------------------------
    def recv(self, *chunks: bytes) -> list:
        """Feed bytes; return the events. ConnectionFailed propagates (and is recorded)."""
        events = []
        for chunk in chunks:
            try:
                got = self.engine.receive(chunk)
            except ConnectionFailed as e:
                self.error = e
                raise
            self.events.extend(got)
            events.extend(got)
        return events

    def recv_error(self, *chunks: bytes) -> int:
        """Feed bytes that must fail the connection; return the error code (checked against
        the GOAWAY the engine queued)."""
        with pytest.raises(ConnectionFailed) as info:
            self.recv(*chunks)
        code = info.value.error_code
        goaways = [f for f in self.take() if isinstance(f, GoAwayFrame)]
        assert goaways and goaways[-1].error_code == code, (goaways, code)
        return code

    # -- output --------------------------------------------------------------------------
    def take(self, max_data: int = -1) -> list:
        """The frames ``data_to_send`` gives now (parsed; header blocks decoded into
        ``frame.decoded``)."""
        data = self.engine.data_to_send(max_data) if max_data != -1 else self.engine.data_to_send()
        frames = parse_frames(bytes(data))
        for frame in frames:
            self._decode(frame)
        self.frames.extend(frames)
        return frames

    def _decode(self, frame) -> None:
        if isinstance(frame, (HeadersFrame, ContinuationFrame)):
            self._partial.append(frame)
            if "END_HEADERS" in frame.flags:
                block = b"".join(f.data for f in self._partial)
                first = self._partial[0]
                first.decoded = [(bytes(n), bytes(v)) for n, v in
                                 self.decoder.decode(block, raw=True)]
                first.block_frames = len(self._partial)
                self._partial = []
            else:
                frame.decoded = None

    def send_events(self) -> list:
        return self.engine.send_events()

    # -- conveniences --------------------------------------------------------------------
    def open(self, stream_id: int, end_stream: bool = True, **kw) -> list:
        """Send a request on ``stream_id``; return the events."""
        return self.recv(self.ff.request(stream_id, end_stream=end_stream, **kw))

    def respond(self, stream_id: int, body: bytes = b"", end_stream: bool = True,
                status: bytes = b"200", extra=()) -> bool:
        """Queue a response (headers, then ``body`` if any); True if both were accepted."""
        headers = [(b":status", status), *extra]
        if not body and end_stream:
            return self.engine.send_headers(stream_id, headers, True)
        ok = self.engine.send_headers(stream_id, headers, False)
        return ok and self.engine.queue_data(stream_id, body, end_stream)

    @staticmethod
    def of(frames, cls, stream_id: int | None = None) -> list:
        return [f for f in frames if isinstance(f, cls)
                and (stream_id is None or f.stream_id == stream_id)]

    def rst_codes(self, frames, stream_id: int) -> list:
        return [f.error_code for f in self.of(frames, RstStreamFrame, stream_id)]

    def window_updates(self, frames, stream_id: int) -> list:
        return [f.window_increment for f in self.of(frames, WindowUpdateFrame, stream_id)]
