"""A raw, blocking HTTP/2 client on ``h2`` for protocol-level tests.

It gives the tests full control of what goes on the wire (resets mid-body, windows of 0 and
1, malformed header blocks with client-side validation switched off, raw frames) and collects
every event the server's frames cause, so assertions are about RFC 9113 behaviour.

Two views of what the server sent are kept side by side:

* ``events``: ``h2`` events, from a client connection that, unlike plain ``h2``, stays usable
  after a GOAWAY (so a graceful shutdown can be followed to its end, RFC 9113 §6.8) and can be
  told to ignore the server's SETTINGS_MAX_CONCURRENT_STREAMS (to test REFUSED_STREAM);
* ``frames``: every frame exactly as received (``hyperframe`` objects), parsed independently of
  the client state machine, for assertions on frame sizes, flags and error codes even when the
  client's ``h2`` would reject what came.
"""
from __future__ import annotations

import socket
import ssl
import struct
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.frame_buffer
import h2.settings
from hyperframe.frame import (
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

#: Frame type codes (RFC 9113 §6) for :func:`raw_frame`.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4


def raw_frame(frame_type: int, flags: int, stream_id: int, payload: bytes = b"",
              length: int | None = None) -> bytes:
    """One frame as bytes, with no validation at all (``length`` may lie)."""
    if length is None:
        length = len(payload)
    return (struct.pack(">I", length)[1:] + bytes([frame_type, flags])
            + struct.pack(">I", stream_id & 0x7FFF_FFFF) + payload)


class _ClientConnection(h2.connection.H2Connection):
    """``h2``'s client, kept open after GOAWAY, optionally blind to the stream limit, and
    optionally deaf to PINGs (``answer_pings`` False: a peer that is gone, as far as PINGs
    tell)."""

    ignore_stream_limit = False
    answer_pings = True

    def _receive_ping_frame(self, frame):
        frames, events = super()._receive_ping_frame(frame)
        return (frames if self.answer_pings else []), events

    def _receive_goaway_frame(self, frame):
        # h2 would move to CLOSED and reject every later frame; a server finishing its
        # in-flight streams after GOAWAY (§6.8) keeps sending them.
        event = h2.events.ConnectionTerminated()
        event.error_code = h2.errors._error_code_from_int(frame.error_code)
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]

    @property
    def open_outbound_streams(self) -> int:
        if self.ignore_stream_limit:
            return 0
        return super().open_outbound_streams


class H2Client:
    def __init__(self, host: str, port: int, *, tls_ca: str | None = None,
                 validate: bool = True, settings: dict | None = None,
                 initiate: bool = True, timeout: float = 10.0, auto_ack: bool = True,
                 answer_pings: bool = True) -> None:
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls_ca:
            ctx = ssl.create_default_context(cafile=tls_ca)
            ctx.set_alpn_protocols(["h2"])
            raw = ctx.wrap_socket(raw, server_hostname="localhost")
            assert raw.selected_alpn_protocol() == "h2"
        self.sock = raw
        self.timeout = timeout
        config = h2.config.H2Configuration(
            client_side=True, header_encoding=None,
            validate_outbound_headers=validate, normalize_outbound_headers=validate,
            validate_inbound_headers=True)
        self.conn = _ClientConnection(config)
        self.conn.answer_pings = answer_pings
        if settings:
            # In effect at once (h2 applies initial_values without waiting for the ACK);
            # h2 caches the frame size limit, so update it too.
            self.conn.local_settings = h2.settings.Settings(client=True, initial_values=settings)
            self.conn.max_inbound_frame_size = self.conn.local_settings.max_frame_size
        self.events: list = []
        #: Every frame received, in order (independent of the client state machine).
        self.frames: list = []
        self._frame_parser = h2.frame_buffer.FrameBuffer(server=False)
        self._frame_parser.max_frame_size = 2**24 - 1
        #: ``(type, flags, stream_id, length)`` of every frame as it was on the wire
        #: (``frames`` has HEADERS and its CONTINUATIONs joined).
        self.wire_frames: list[tuple[int, int, int, int]] = []
        self._wire_header = b""
        self._wire_skip = 0
        #: The error h2 raised on what the server sent, if any (then only ``frames`` grows).
        self.h2_error: Exception | None = None
        self.closed = False
        #: Reopen our receive windows as DATA arrives (as a real client reading the body
        #: would); tests of the server's sending side switch it off.
        self.auto_ack = auto_ack
        if initiate:
            self.conn.initiate_connection()
            self.flush()

    # -- I/O ---------------------------------------------------------------------------------
    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, frame) -> None:
        """Send a ``hyperframe`` frame as is, behind the client state machine's back."""
        self.sock.sendall(frame.serialize())

    def _read_once(self, timeout: float) -> bool:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except (ConnectionResetError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = True
            return False
        self._scan_wire(data)
        self._frame_parser.add_data(data)
        self.frames.extend(self._frame_parser)
        if self.h2_error is None:
            try:
                events = self.conn.receive_data(data)
                if self.auto_ack:
                    for event in events:
                        if isinstance(event, h2.events.DataReceived) and \
                                event.flow_controlled_length:
                            self.conn.acknowledge_received_data(
                                event.flow_controlled_length, event.stream_id)
            except h2.exceptions.ProtocolError as e:
                self.h2_error = e
            else:
                self.events.extend(events)
            self.flush()
        return True

    def _scan_wire(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._wire_skip:
                n = min(self._wire_skip, len(view))
                self._wire_skip -= n
                view = view[n:]
                continue
            need = 9 - len(self._wire_header)
            self._wire_header += bytes(view[:need])
            view = view[need:]
            if len(self._wire_header) == 9:
                head = self._wire_header
                length = int.from_bytes(head[:3], "big")
                sid = int.from_bytes(head[5:9], "big") & 0x7FFF_FFFF
                self.wire_frames.append((head[3], head[4], sid, length))
                self._wire_header = b""
                self._wire_skip = length

    @property
    def max_frame_length_seen(self) -> int:
        return max((length for _, _, _, length in self.wire_frames), default=0)

    def wait_for(self, predicate, timeout: float | None = None):
        """Read until ``predicate(events)`` is truthy; return its value (fail on timeout)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            value = predicate(self.events)
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                raise TimeoutError(f"condition not met; events: {self.events!r}"
                                   + (" (connection closed)" if self.closed else "")
                                   + (f"; h2 rejected the server's frames: {self.h2_error!r}"
                                      if self.h2_error else ""))
            self._read_once(min(left, 0.5))

    def read_for(self, seconds: float) -> None:
        """Read whatever arrives during ``seconds`` (0: only what is already there)."""
        deadline = time.monotonic() + seconds
        while not self.closed and self._read_once(max(deadline - time.monotonic(), 0.001)):
            if time.monotonic() >= deadline:
                break

    def wait_closed(self, timeout: float | None = None) -> None:
        """Read until the server closes the connection (fail on timeout)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the server did not close the connection; "
                                   f"frames: {self.frames!r}")
            self._read_once(min(left, 0.5))

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------------------
    def request(self, path: str = "/", method: str = "GET", body: bytes | None = None,
                headers: list | None = None, end_stream: bool = True,
                authority: str = "localhost") -> int:
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(b":method", method.encode()), (b":scheme", b"http"),
                (b":authority", authority.encode()), (b":path", path.encode())]
        hdrs += [(k.encode() if isinstance(k, str) else k, v.encode() if isinstance(v, str) else v)
                 for k, v in (headers or [])]
        self.conn.send_headers(sid, hdrs, end_stream=end_stream and body is None)
        if body is not None:
            self.send_body(sid, body, end_stream=end_stream)
        self.flush()
        return sid

    def request_raw(self, headers: list, end_stream: bool = True) -> int:
        """Open a stream with exactly ``headers`` (``(bytes, bytes)`` pairs, any order)."""
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, headers, end_stream=end_stream)
        self.flush()
        return sid

    def header_block(self, headers: list) -> bytes:
        """``headers`` HPACK-encoded with the connection's encoder (keeps HPACK in sync)."""
        return self.conn.encoder.encode(headers)

    def send_body(self, sid: int, body: bytes, end_stream: bool = True) -> None:
        """Send ``body`` respecting flow control (reads WINDOW_UPDATEs as needed). Stops
        quietly if the server resets or closes the stream meanwhile."""
        view = memoryview(body)
        while view:
            try:
                window = self.conn.local_flow_control_window(sid)
            except h2.exceptions.StreamClosedError:
                return
            if window == 0:
                self.flush()
                self.wait_for(lambda ev: self.stream_reset(sid) is not None
                              or self.stream_ended(sid)
                              or self.conn.local_flow_control_window(sid) > 0)
                if self.stream_reset(sid) is not None or self.stream_ended(sid):
                    return  # the server answered (or reset) before taking the whole body
                continue
            n = min(window, self.conn.max_outbound_frame_size, len(view))
            try:
                self.conn.send_data(sid, view[:n].tobytes(),
                                    end_stream=end_stream and n == len(view))
            except h2.exceptions.StreamClosedError:
                return
            view = view[n:]
            self.flush()
            self.read_for(0)  # notice an early response / reset
        if end_stream and not body:
            self.conn.end_stream(sid)
            self.flush()

    def send_window_available(self, sid: int, body: bytes) -> int:
        """Send as much of ``body`` as the windows allow now, without END_STREAM; return the
        number of bytes sent."""
        sent = 0
        while sent < len(body):
            n = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size,
                    len(body) - sent)
            if n <= 0:
                break
            self.conn.send_data(sid, body[sent:sent + n])
            sent += n
        self.flush()
        return sent

    def response(self, sid: int, timeout: float | None = None):
        """Wait for the complete response: (headers dict, body bytes)."""
        self.wait_for(lambda ev: self.stream_ended(sid) or self.stream_reset(sid), timeout)
        if self.stream_reset(sid):
            raise AssertionError(f"stream {sid} was reset: {self.stream_reset(sid)}")
        return self.headers(sid), self.body(sid)

    def get(self, path: str = "/", timeout: float | None = None):
        """GET ``path`` on a new stream and wait for it: (headers dict, body bytes)."""
        return self.response(self.request(path), timeout)

    # -- event queries --------------------------------------------------------------------------
    def of(self, sid: int, cls) -> list:
        return [e for e in self.events
                if isinstance(e, cls) and getattr(e, "stream_id", None) == sid]

    def headers(self, sid: int) -> dict:
        for e in self.of(sid, h2.events.ResponseReceived):
            return {k.decode(): v.decode() for k, v in e.headers}
        return {}

    def body(self, sid: int) -> bytes:
        return b"".join(e.data for e in self.of(sid, h2.events.DataReceived))

    def ack(self, sid: int) -> None:
        """Acknowledge all received data of ``sid`` (reopen our windows; with ``auto_ack``
        off)."""
        n = sum(e.flow_controlled_length for e in self.of(sid, h2.events.DataReceived))
        if n:
            self.conn.acknowledge_received_data(n, sid)
            self.flush()

    def end_order(self) -> list[int]:
        """Stream ids in the order their responses ended (END_STREAM received)."""
        return [e.stream_id for e in self.events if isinstance(e, h2.events.StreamEnded)]

    def assert_answered_before(self, slow: int, fast: list[int], timeout: float = 30) -> None:
        """Wait for ``slow``; every stream of ``fast`` ended before it (the order of the frames
        on the wire decides, not time)."""
        self.wait_for(lambda ev: self.stream_ended(slow), timeout)
        ended = self.end_order()
        assert ended[-1] == slow and sorted(ended[:-1]) == sorted(fast), ended

    def stream_ended(self, sid: int) -> bool:
        return bool(self.of(sid, h2.events.StreamEnded))

    def stream_reset(self, sid: int):
        resets = self.of(sid, h2.events.StreamReset)
        return resets[0].error_code if resets else None

    def goaway(self):
        for e in self.events:
            if isinstance(e, h2.events.ConnectionTerminated):
                return e
        return None

    # -- raw frame queries ------------------------------------------------------------------------
    def frames_of(self, cls, sid: int | None = None) -> list:
        return [f for f in self.frames
                if isinstance(f, cls) and (sid is None or f.stream_id == sid)]

    def rst_codes(self, sid: int) -> list[int]:
        """Error codes of every RST_STREAM received on ``sid``, in order."""
        return [f.error_code for f in self.frames_of(RstStreamFrame, sid)]

    def goaway_frames(self) -> list:
        return self.frames_of(GoAwayFrame)

    def wait_for_goaway(self, timeout: float | None = None):
        """Wait for a GOAWAY frame (from the raw frames, so it works whatever came before)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.goaway_frames():
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                raise TimeoutError(f"no GOAWAY; frames: {self.frames!r}"
                                   + (" (connection closed)" if self.closed else ""))
            self._read_once(min(left, 0.5))
        return self.goaway_frames()[0]

    def window_updates(self, sid: int) -> int:
        """Sum of WINDOW_UPDATE increments received for ``sid`` (0: the connection)."""
        return sum(f.window_increment for f in self.frames_of(WindowUpdateFrame, sid))

    def data_frames(self, sid: int | None = None) -> list:
        return self.frames_of(DataFrame, sid)

    def headers_frames(self, sid: int | None = None) -> list:
        return self.frames_of(HeadersFrame, sid)

    def settings_acks(self) -> int:
        return sum(1 for f in self.frames_of(SettingsFrame) if "ACK" in f.flags)
