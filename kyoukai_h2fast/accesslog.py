"""The access log: one line per response on the ``kyoukai_h2fast.access`` logger.

Owns the line's content and format, and nothing about where it goes (that is stdlib logging:
``--log-config FILE``, or any handler on the logger). Off by default; when off the protocols
hold ``None`` instead of an :class:`AccessLog`, so the cost is one attribute test per response.

A line reads::

    127.0.0.1:51234 - "GET /path?q=1 HTTP/1.1" 200 13 0.000412

client address (after trusted proxy headers, see :mod:`kyoukai_h2fast.forwarded`) and port,
request line (method, target, protocol), status, body bytes, seconds from the start of the
request to the end of its response. The same values are on the record as attributes
(``client``, ``method``, ``target``, ``protocol``, ``status``, ``bytes``, ``duration``) for
formatters of your own. Bytes are counted as sent over HTTP/1.1; over HTTP/2 they are the
declared ``content-length`` of the response (``-`` for a streamed response without one).
"""
from __future__ import annotations

import logging
import time
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .stream import H2State

__all__ = ["AccessLog", "ACCESS_LOGGER"]

#: The logger every access line goes to.
ACCESS_LOGGER = "kyoukai_h2fast.access"

# Request targets are logged as received, with control characters escaped (a log line stays
# one line whatever a client sends).
_ESCAPES = {i: f"\\x{i:02x}" for i in [*range(0x20), 0x7f]}


class AccessLog:
    """Formats and emits access lines; one per server, shared by its connections."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(ACCESS_LOGGER)
        #: HTTP/2 requests by state (weakly): when their app started (see :meth:`started`).
        self._starts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def log(self, client: str, method: str, target: str, protocol: str, status: int,
            size: int | None, duration: float | None) -> None:
        """Emit one line (at INFO)."""
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

    # -- HTTP/2 (hooks called by the HTTP/2 protocol) --------------------------------------
    def started(self, state: H2State) -> None:
        """An HTTP/2 request reached its app (for states without ``started_at``)."""
        self._starts[state] = time.monotonic()

    def finished(self, protocol: Any, state: H2State) -> None:
        """An HTTP/2 response ended (sent in full, or its stream reset by the server)."""
        started_at = getattr(state, "started_at", 0.0)
        duration: float | None
        if started_at:  # when the request arrived (time.monotonic, or the loop's clock)
            duration = time.monotonic() - started_at
        else:
            started = self._starts.pop(state, None)
            duration = None if started is None else time.monotonic() - started
        status = getattr(state, "status_sent", 0) or _status_of(state)
        size = getattr(state, "body_sent", None)
        if size is None:
            size = 0 if state.is_head else _declared_length(state)
        environ = state.environ
        if environ is not None:
            client = f"{environ.get('REMOTE_ADDR', '')}:{environ.get('REMOTE_PORT', '')}"
            method = environ.get("REQUEST_METHOD", "")
            target = environ.get("RAW_URI", "")
        else:  # answered before the app ran (e.g. 413)
            client = f"{protocol.ip}:{protocol.client_port}"
            method = target = ""
            for name, value in state.headers:
                if name == b":method":
                    method = value.decode("latin-1")
                elif name == b":path":
                    target = value.decode("latin-1")
        self.log(client, method, target, "HTTP/2", status, size, duration)


def _status_of(state: H2State) -> int:
    for name, value in getattr(state, "wire_headers", None) or ():
        if name == b":status":
            return int(value)
    status = state._emit_status
    return int(status[:3]) if status and status[:3].isdigit() else 0


def _declared_length(state: H2State) -> int | None:
    """The response's content-length as the app declared it, or None."""
    for name, value in state._emit_headers or ():
        if isinstance(name, str) and name.lower() == "content-length":
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None
