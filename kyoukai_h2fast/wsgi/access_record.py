"""What one access-log line records about one request (:class:`AccessRecord`), below both
protocols, which fill it in, and the server's :class:`~kyoukai_h2fast.server.accesslog.AccessLog`,
which writes it; and :func:`printable`, the one rule for putting client-sent text in a log line.
"""
from __future__ import annotations

import time

__all__ = ["AccessRecord", "NO_RESPONSE", "now", "printable"]

#: The status logged for a request that ended before its response's status was sent.
NO_RESPONSE = 499

#: The access log's clock: fine-grained (the event loop's clock is milliseconds under uvloop).
now = time.perf_counter

# Request targets are logged as received, with control characters escaped (see printable).
_ESCAPES = {i: f"\\x{i:02x}" for i in [*range(0x20), 0x7f]}


class AccessRecord:
    """What one access line says about one request.

    Made when the request arrives (only while the access log is on), filled in by the
    protocol as its response goes out, and written once by :meth:`AccessLog.write`.
    """

    __slots__ = ("arrived", "client", "method", "target", "protocol", "status", "sent")

    def __init__(self, protocol: str = "") -> None:
        #: ``time.perf_counter()`` when the request arrived.
        self.arrived = now()
        #: ``address:port`` of the client (after trusted proxy headers).
        self.client = ""
        self.method = ""
        self.target = ""
        #: ``HTTP/2``, ``HTTP/1.1`` or ``HTTP/1.0``.
        self.protocol = protocol
        #: The status sent (0 until the response's head goes out).
        self.status = 0
        #: Response body bytes handed to the transport.
        self.sent = 0


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x0a``): a log line stays one line
    whatever a client sends."""
    return text.translate(_ESCAPES)
