"""A raw HTTP/1.1 test client: exact bytes out, responses parsed by h11 (a real parser).

Used where curl and httpx cannot go: pipelining, malformed requests, half-finished heads,
and checking that the server closed the connection after a response.
"""
from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass, field

import h11


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes = b""
    informational: list = field(default_factory=list)  # 1xx status codes before it

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class H1Raw:
    """One connection: ``send`` raw bytes, ``replies`` parses what comes back in order."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 15.0,
                 tls_ca: str | None = None, alpn: list[str] | None = None) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls_ca is not None:
            context = ssl.create_default_context(cafile=tls_ca)
            if alpn:
                context.set_alpn_protocols(alpn)
            self.sock = context.wrap_socket(self.sock, server_hostname="localhost")
        self.timeout = timeout
        self._pending = b""
        self._closed = False

    def __enter__(self) -> H1Raw:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv(self) -> bytes:
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            self._closed = True
        return data

    def reply(self, method: str = "GET") -> Reply:
        """The next response (a request with ``method`` is assumed to have been sent)."""
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
        conn.send(h11.EndOfMessage())
        if self._pending:
            conn.receive_data(self._pending)
            self._pending = b""
        reply = None
        informational = []
        body = []
        deadline = time.monotonic() + self.timeout
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if time.monotonic() > deadline:
                    raise TimeoutError("no complete response")
                conn.receive_data(b"" if self._closed else self._recv())
                continue
            if isinstance(event, h11.InformationalResponse):
                informational.append(event.status_code)
            elif isinstance(event, h11.Response):
                reply = Reply(event.status_code,
                              {k.decode().lower(): v.decode("latin-1") for k, v in event.headers},
                              informational=informational)
            elif isinstance(event, h11.Data):
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("closed before a complete response")
        reply.body = b"".join(body)
        data, closed = conn.trailing_data
        self._pending = bytes(data)
        self._closed = self._closed or closed
        return reply

    def replies(self, *methods: str) -> list[Reply]:
        return [self.reply(m) for m in methods]

    def closed_by_server(self, timeout: float = 15.0) -> bool:
        """True when the server closes the connection (no further bytes) within ``timeout``."""
        if self._pending:
            return False
        if self._closed:
            return True
        self.sock.settimeout(timeout)
        try:
            data = self._recv()
        except TimeoutError:
            return False
        return not data and self._closed

    def read_all(self, timeout: float = 15.0) -> bytes:
        """Every byte until the server closes (socket.timeout if it never does)."""
        self.sock.settimeout(timeout)
        out = [self._pending]
        self._pending = b""
        while not self._closed:
            out.append(self._recv())
        return b"".join(out)


def request(method: str, target: str, host: str = "x", headers=(), body: bytes | None = None,
            version: str = "1.1") -> bytes:
    """Bytes of one request (``content-length`` added for a body unless given)."""
    lines = [f"{method} {target} HTTP/{version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    names = {name.lower() for name, _ in headers}
    lines += [f"{name}: {value}" for name, value in headers]
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def chunked(*pieces: bytes, trailers: bytes = b"") -> bytes:
    """A chunked body (RFC 9112 §7.1) of ``pieces``."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n" + \
        trailers + b"\r\n"
