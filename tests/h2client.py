"""A raw, blocking HTTP/2 client on ``h2`` for protocol-level tests.

It gives the tests full control of what goes on the wire (resets mid-body, windows of 0 and
1, malformed header blocks with client-side validation switched off, raw frames) and collects
every event the server's frames cause, so assertions are about RFC 9113 behaviour.
"""
from __future__ import annotations

import socket
import ssl
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings


class H2Client:
    def __init__(self, host: str, port: int, *, tls_ca: str | None = None,
                 validate: bool = True, settings: dict | None = None,
                 initiate: bool = True, timeout: float = 10.0) -> None:
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
        self.conn = h2.connection.H2Connection(config)
        if settings:
            self.conn.local_settings = h2.settings.Settings(client=True, initial_values=settings)
        self.events: list = []
        self.closed = False
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

    def _read_once(self, timeout: float) -> bool:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = True
            return False
        self.events.extend(self.conn.receive_data(data))
        self.flush()
        return True

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
                                   + (" (connection closed)" if self.closed else ""))
            self._read_once(min(left, 0.5))

    def read_for(self, seconds: float) -> None:
        """Read whatever arrives during ``seconds`` (0: only what is already there)."""
        deadline = time.monotonic() + seconds
        while not self.closed and self._read_once(max(deadline - time.monotonic(), 0.001)):
            if time.monotonic() >= deadline:
                break

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

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

    def response(self, sid: int, timeout: float | None = None):
        """Wait for the complete response: (headers dict, body bytes)."""
        self.wait_for(lambda ev: self.stream_ended(sid) or self.stream_reset(sid), timeout)
        if self.stream_reset(sid):
            raise AssertionError(f"stream {sid} was reset: {self.stream_reset(sid)}")
        return self.headers(sid), self.body(sid)

    # -- event queries --------------------------------------------------------------------------
    def of(self, sid: int, cls) -> list:
        return [e for e in self.events if isinstance(e, cls) and getattr(e, "stream_id", None) == sid]

    def headers(self, sid: int) -> dict:
        for e in self.of(sid, h2.events.ResponseReceived):
            return {k.decode(): v.decode() for k, v in e.headers}
        return {}

    def body(self, sid: int) -> bytes:
        return b"".join(e.data for e in self.of(sid, h2.events.DataReceived))

    def ack(self, sid: int) -> None:
        """Acknowledge all received data of ``sid`` (reopen our windows)."""
        n = sum(e.flow_controlled_length for e in self.of(sid, h2.events.DataReceived))
        if n:
            self.conn.acknowledge_received_data(n, sid)
            self.flush()

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
