"""The server's errors: exceptions shared by the compiled modules and their pure twins (written
once, here), and :class:`RateLimitedLog`, which reports the errors any client can cause.

Errors of the frame layer and of HPACK are the ``h2``/``hpack`` classes themselves (or
subclasses), so that ``h2`` reacts to them exactly as it does to its own. This module adds
what those libraries do not have.
"""
from __future__ import annotations

import logging
import time

from h2.errors import ErrorCodes
from h2.exceptions import ProtocolError
from hyperframe.exceptions import InvalidPaddingError
from werkzeug.exceptions import ClientDisconnected as _WerkzeugClientDisconnected
from werkzeug.exceptions import RequestTimeout as _WerkzeugRequestTimeout

__all__ = [
    "MalformedRequestError",
    "FramePaddingError",
    "CompressionError",
    "ConnectionFailed",
    "BodyNotReadyError",
    "ClientDisconnected",
    "BodyTimeoutError",
    "ConfigError",
    "RateLimitedLog",
]

log = logging.getLogger("kyoukai_h2fast")


class MalformedRequestError(ProtocolError):
    """A request or trailer header block breaks RFC 9113 §8.2/§8.3.

    RFC 9113 §8.1.1: a malformed request is a *stream* error of type PROTOCOL_ERROR; the
    connection and its other streams go on.
    """

    error_code = ErrorCodes.PROTOCOL_ERROR


class FramePaddingError(ProtocolError, InvalidPaddingError):
    """Padding as long as the frame payload (RFC 9113 §6.1): a connection PROTOCOL_ERROR.

    h2's own buffer lets hyperframe's ``InvalidPaddingError`` through and ``H2Connection``
    catches that class first; being both, this error takes the same path there and is a
    ``ProtocolError`` for everyone else.
    """


class CompressionError(ProtocolError):
    """A field block could not be decoded (RFC 9113 §4.3): connection error COMPRESSION_ERROR."""

    error_code = ErrorCodes.COMPRESSION_ERROR


class ConnectionFailed(Exception):
    """Raised by a connection engine when the peer broke the protocol at connection level.

    The engine has already queued its GOAWAY frame; the protocol flushes it and closes.
    """

    def __init__(self, error_code: int, message: str, budget: str | None = None) -> None:
        super().__init__(message)
        #: RFC 9113 §7 error code sent in the GOAWAY frame.
        self.error_code = error_code
        #: The flood budget the peer crossed (a key of ``_engine_py_budgets.REASONS``, named
        #: after its ``--max-...`` option: ``resets``, ``pings``, ``settings``,
        #: ``empty_frames``, ``queued_control_frames``), or None for any other error.
        self.budget = budget


class BodyNotReadyError(RuntimeError):
    """A blocking read of body bytes that have not arrived, on the event loop thread.

    Apps running on the loop (Kyoukai-style, or WSGI with ``--wsgi-threads 0``) start once the
    whole body is in and never see this, unless they opted in to start early
    (``stream_request_bodies``); those read with ``await environ['wsgi.input'].read_async()``.
    """


class ClientDisconnected(_WerkzeugClientDisconnected, ConnectionResetError):
    """The request's stream is gone (reset by the client, or by the server for bad input)
    while the app was reading its body.

    It is a ``ConnectionResetError`` and werkzeug's ``ClientDisconnected`` (a 400
    ``HTTPException``): Flask and werkzeug apps turn it into a response without logging a
    traceback, and the server logs it once, briefly, without a traceback (there is nobody to
    answer). ``str()`` says who reset the stream and why.
    """

    def __init__(self, message: str) -> None:
        _WerkzeugClientDisconnected.__init__(self, description=message)
        self.args = (message,)

    def __str__(self) -> str:
        return self.args[0]


class BodyTimeoutError(_WerkzeugRequestTimeout, TimeoutError):
    """The client sent no request body bytes for ``body_timeout`` seconds while the app
    waited for them (``--body-timeout``). The server answers 408 (or resets the stream when
    the response has started) and frees the app's thread."""

    def __init__(self, message: str) -> None:
        _WerkzeugRequestTimeout.__init__(self, description=message)
        self.args = (message,)

    def __str__(self) -> str:
        return self.args[0]


class ConfigError(ValueError):
    """A setting or command-line value is out of range or inconsistent."""


class RateLimitedLog:
    """INFO lines about errors any client can cause (a connection closed for its errors, a
    request that ended early), at most ``per_second`` a second, then one line saying how many
    were left out (``left_out``, a format for the count): a flood of them must not become a log
    flood. Called like ``logging.info``."""

    def __init__(self, left_out: str, per_second: int = 10) -> None:
        self._left_out = left_out
        self._per_second = per_second
        self._window = 0
        self._count = 0
        self._suppressed = 0

    def __call__(self, message: str, *args: object) -> None:
        now = int(time.monotonic())
        if now != self._window:
            if self._suppressed:
                log.info(self._left_out, self._suppressed)
            self._window, self._count, self._suppressed = now, 0, 0
        self._count += 1
        if self._count <= self._per_second:
            log.info(message, *args)
        else:
            self._suppressed += 1
