"""The access log: one line per request on the ``kyoukai_h2fast.access`` logger.

Owns a line's format (:meth:`AccessLog.write`, from the
:class:`~kyoukai_h2fast.wsgi.access_record.AccessRecord` that the protocol which served the
request, HTTP/2 or HTTP/1.1, filled in), and nothing about where
it goes (that is stdlib logging: the CLI gives the logger its own handler, ``--log-config
FILE`` anything else). Off by default; when off the protocols hold ``None`` instead of an
:class:`AccessLog` and make no records, so the cost is an attribute test per request.

A line reads::

    127.0.0.1:51234 - "GET /path?q=1 HTTP/1.1" 200 13 0.000412

client address (after trusted proxy headers, see :mod:`kyoukai_h2fast.server.proxy_headers`)
and port, request line (method, target, protocol), status, response body bytes handed to the
transport (HTTP/2: DATA payload; HTTP/1.1: body bytes without the chunked framing), seconds
from the request's arrival (its head read) to the last byte of its response handed to the
transport, or to the moment it ended without one. The same values are on the record as attributes
(``client``, ``method``, ``target``, ``protocol``, ``status``, ``bytes``, ``duration``) for
formatters of your own.

Every request that arrived gets exactly one line: answered in full, or cut short (its stream
reset by either side, its connection closed). A request that ended before a status was sent
is logged with :data:`NO_RESPONSE` (499, nginx's "client closed request").
"""
from __future__ import annotations

import logging

from ..wsgi.access_record import NO_RESPONSE, AccessRecord, now, printable

__all__ = ["AccessLog", "AccessRecord", "ACCESS_LOGGER", "NO_RESPONSE", "printable"]

#: The logger every access line goes to.
ACCESS_LOGGER = "kyoukai_h2fast.access"


class AccessLog:
    """Formats and emits access lines; one per server, shared by its connections."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(ACCESS_LOGGER)

    def write(self, record: AccessRecord) -> None:
        """Emit the line of ``record`` (at INFO); its request ends now."""
        duration = now() - record.arrived
        self.log(record.client, record.method, record.target, record.protocol,
                 record.status or NO_RESPONSE, record.sent, duration)

    def log(self, client: str, method: str, target: str, protocol: str, status: int,
            size: int | None, duration: float | None) -> None:
        """Emit one line (at INFO) from its values."""
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        target = printable(target)
        method = printable(method)
        logger.info('%s - "%s %s %s" %d %s %s', client, method, target, protocol, status,
                    "-" if size is None else size,
                    "-" if duration is None else f"{duration:.6f}",
                    extra={"client": client, "method": method, "target": target,
                           "protocol": protocol, "status": status, "bytes": size,
                           "duration": duration})
