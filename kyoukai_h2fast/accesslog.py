"""The access log: one line per request on the ``kyoukai_h2fast.access`` logger.

Owns what a line says (:class:`AccessRecord`, filled in by the protocol that served the
request, HTTP/2 or HTTP/1.1) and its format (:meth:`AccessLog.write`), and nothing about where
it goes (that is stdlib logging: the CLI gives the logger its own handler, ``--log-config
FILE`` anything else). Off by default; when off the protocols hold ``None`` instead of an
:class:`AccessLog` and make no records, so the cost is an attribute test per request.

A line reads::

    127.0.0.1:51234 - "GET /path?q=1 HTTP/1.1" 200 13 0.000412

client address (after trusted proxy headers, see :mod:`kyoukai_h2fast.forwarded`) and port,
request line (method, target, protocol), status, response body bytes handed to the transport
(HTTP/2: DATA payload; HTTP/1.1: body bytes without the chunked framing), seconds from the
request's arrival (its head read) to the last byte of its response handed to the transport,
or to the moment it ended without one. The same values are on the record as attributes
(``client``, ``method``, ``target``, ``protocol``, ``status``, ``bytes``, ``duration``) for
formatters of your own.

Every request that arrived gets exactly one line: answered in full, or cut short (its stream
reset by either side, its connection closed). A request that ended before a status was sent
is logged with :data:`NO_RESPONSE` (499, nginx's "client closed request").
"""
from __future__ import annotations

import logging
import time

__all__ = ["AccessLog", "AccessRecord", "ACCESS_LOGGER", "NO_RESPONSE", "printable"]

#: The logger every access line goes to.
ACCESS_LOGGER = "kyoukai_h2fast.access"
#: The status logged for a request that ended before its response's status was sent.
NO_RESPONSE = 499

#: The access log's clock: fine-grained (the event loop's clock is milliseconds under uvloop).
_now = time.perf_counter

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
        self.arrived = _now()
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


class AccessLog:
    """Formats and emits access lines; one per server, shared by its connections."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(ACCESS_LOGGER)

    def write(self, record: AccessRecord) -> None:
        """Emit the line of ``record`` (at INFO); its request ends now."""
        duration = _now() - record.arrived
        self.log(record.client, record.method, record.target, record.protocol,
                 record.status or NO_RESPONSE, record.sent, duration)

    def log(self, client: str, method: str, target: str, protocol: str, status: int,
            size: int | None, duration: float | None) -> None:
        """Emit one line (at INFO) from its values."""
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        target = target.translate(_ESCAPES)
        method = method.translate(_ESCAPES)
        logger.info('%s - "%s %s %s" %d %s %s', client, method, target, protocol, status,
                    "-" if size is None else size,
                    "-" if duration is None else f"{duration:.6f}",
                    extra={"client": client, "method": method, "target": target,
                           "protocol": protocol, "status": status, "bytes": size,
                           "duration": duration})


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x0a``): a log line stays one line
    whatever a client sends."""
    return text.translate(_ESCAPES)
