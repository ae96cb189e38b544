"""Pure-Python twin of :mod:`kyoukai_h2fast._headers_c` (same public names, same errors).

Owns the same things as the compiled module: checks on received request/trailer field blocks
(RFC 9113 §8.2, §8.3; the rule list is in :mod:`kyoukai_h2fast.codec.headers`) and the conversion of
a WSGI status + header list into an HTTP/2 response field list, with the ``date`` (RFC 9110
§6.6.1, cached per second) and ``server`` fields the app did not give. Used when the extension
is not built or ``KYOUKAI_H2FAST_NO_EXTENSIONS=1``; the tests run every case on both.
"""
from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterable

from .. import __version__
from ..errors import MalformedRequestError

__all__ = ["validate_request_headers", "validate_trailers", "response_headers",
           "http_date", "CONNECTION_SPECIFIC_FIELDS", "SERVER_FIELD", "MAX_HTTP_DATE"]

#: Connection-specific fields, forbidden in HTTP/2 (RFC 9113 §8.2.2).
CONNECTION_SPECIFIC_FIELDS = frozenset(
    [b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade"])

# RFC 9113 §8.2.1: a name byte outside 0x21-0x7e, or upper case; a value NUL, LF or CR.
_NAME_ILLEGAL = re.compile(rb"[^\x21-\x40\x5b-\x7e]")
_VALUE_ILLEGAL = re.compile(rb"[\x00\n\r]")
_OWS = (0x20, 0x09)
_DIGITS = re.compile(rb"[0-9]+")

_PSEUDO_HEADERS = frozenset([b":method", b":scheme", b":authority", b":path", b":status",
                             b":protocol"])


def _check_field_chars(name: bytes, value: bytes) -> None:
    if not name:
        raise MalformedRequestError("Received header name with zero length.")
    bad = _NAME_ILLEGAL.search(name)
    if bad is not None:
        if b"A" <= bad.group() <= b"Z":
            raise MalformedRequestError(f"Received uppercase header name {name!r}.")
        raise MalformedRequestError(f"Illegal character in header name: {name!r}")
    if name.find(b":", 1) != -1:
        raise MalformedRequestError(f"Illegal character ':' in header name: {name!r}")
    if value:
        if _VALUE_ILLEGAL.search(value) is not None:
            raise MalformedRequestError(
                f"Illegal character (NUL, CR or LF) in header value: {value!r}")
        if value[0] in _OWS or value[-1] in _OWS:
            raise MalformedRequestError(f"Received header value surrounded by whitespace {value!r}")


def _content_length(value: bytes, previous: int) -> int:
    """content-length = 1*DIGIT (RFC 9110 §8.6); every copy must agree."""
    if _DIGITS.fullmatch(value) is None:
        raise MalformedRequestError(f"Invalid content-length header: {value!r}")
    length = int(value)
    if length > sys.maxsize:
        raise MalformedRequestError(f"content-length header too large: {value!r}")
    if previous >= 0 and previous != length:
        raise MalformedRequestError(f"Conflicting content-length headers: {previous} and {length}")
    return length


def _check_block(headers: Iterable[tuple[bytes, bytes]], is_trailer: bool) -> int:
    """Per-field rules and, for a request, the whole-block rules. Returns the content length."""
    seen: set[bytes] = set()
    regular_seen = False
    method = path = authority = host = None
    content_length = -1
    for name, value in headers:
        if type(name) is not bytes or type(value) is not bytes:
            if not isinstance(name, bytes) or not isinstance(value, bytes):
                raise TypeError(f"header name and value must be bytes, not {(name, value)!r}")
        _check_field_chars(name, value)
        if name[0] == 0x3A:  # b":"
            if is_trailer:
                raise MalformedRequestError(f"Received pseudo-header in trailer {name!r}")
            if name not in _PSEUDO_HEADERS:
                raise MalformedRequestError(f"Received custom pseudo-header field {name!r}")
            if name in seen:
                raise MalformedRequestError(f"Received duplicate pseudo-header field {name!r}")
            if regular_seen:
                raise MalformedRequestError(
                    f"Received pseudo-header field out of sequence: {name!r}")
            seen.add(name)
            if name == b":method":
                method = value
            elif name == b":path":
                if not value:
                    raise MalformedRequestError("An empty :path header is forbidden")
                path = value
            elif name == b":authority":
                authority = value
            elif name == b":status":
                raise MalformedRequestError("Encountered response-only header :status in a request")
            continue
        regular_seen = True
        if name == b"te":
            if value.lower() != b"trailers":
                raise MalformedRequestError(f"Invalid value for TE header: {value!r}")
        elif name == b"content-length":
            content_length = _content_length(value, content_length)
        elif name == b"host":
            if not is_trailer:
                if host is not None:
                    raise MalformedRequestError("Request header block has multiple Host headers.")
                host = value
        elif name in CONNECTION_SPECIFIC_FIELDS:
            raise MalformedRequestError(f"Connection-specific header field present: {name!r}.")
    if not is_trailer:
        _check_request_block(seen, method, path, authority, host)
    return content_length


def _check_request_block(seen: set, method: bytes | None, path: bytes | None,
                         authority: bytes | None, host: bytes | None) -> None:
    if method is None:
        raise MalformedRequestError("Header block missing mandatory b':method' header")
    is_connect = method == b"CONNECT"
    if is_connect and b":protocol" not in seen:
        # Ordinary CONNECT (RFC 9113 §8.5): only :method and :authority.
        if b":scheme" in seen or path is not None:
            raise MalformedRequestError("Ordinary CONNECT MUST NOT include :scheme or :path")
    else:
        # Every other request, extended CONNECT included (RFC 8441 §4).
        if b":scheme" not in seen:
            raise MalformedRequestError("Header block missing mandatory b':scheme' header")
        if path is None:
            raise MalformedRequestError("Header block missing mandatory b':path' header")
    if b":protocol" in seen and not is_connect:
        raise MalformedRequestError("Encountered connect-request-only header :protocol")
    if authority is None and host is None:
        raise MalformedRequestError(
            "Request header block does not have an :authority or Host header.")
    if authority is not None and host is not None and authority != host:
        raise MalformedRequestError(
            "Request header block has mismatched :authority and Host headers: "
            f"{authority!r} / {host!r}")
    # Stricter than h2 (RFC 9113 §8.3.1): origin-form, or "*" for OPTIONS only.
    if path is not None and not (path[0] == 0x2F or (path == b"*" and method == b"OPTIONS")):
        raise MalformedRequestError("Invalid :path: must start with '/' (or be '*' for OPTIONS)")


def validate_request_headers(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """Check a received request field block; return its content length, or -1 when none.

    ``headers`` is the decoded list of ``(name, value)`` bytes pairs. Raises
    :class:`~kyoukai_h2fast.errors.MalformedRequestError` for a malformed request.
    """
    return _check_block(headers, False)


def validate_trailers(headers: Iterable[tuple[bytes, bytes]]) -> None:
    """Check a received trailer field block (no pseudo-headers, RFC 9113 §8.1)."""
    _check_block(headers, True)


# ---- response field lists -------------------------------------------------------------------
# Encoded (lower-case, latin-1) names by the name the app gave, or None for a dropped field.
# Bounded: past the limit, new names are converted per call and not remembered.
_response_names: dict = {}
_RESPONSE_NAME_CACHE_MAX = 512
# Fields HTTP/2 does not carry in a response (RFC 9113 §8.2.2): connection-specific, and te.
_DROPPED_RESPONSE_FIELDS = CONNECTION_SPECIFIC_FIELDS | {b"te"}
_STATUS = re.compile(r"[1-9][0-9][0-9](?: |\Z)", re.ASCII)
_RESPONSE_NAME_ILLEGAL = re.compile(rb"[^\x21-\x39\x3b-\x7e]")  # after lower-casing

# The fields added to every response the app did not give itself. Encoded names equal to these
# are these very objects (see _encode_response_name), so spotting them costs an identity test.
_DATE = b"date"
_SERVER = b"server"
#: ``(b"server", b"kyoukai_h2fast/<version>")``.
SERVER_FIELD = (_SERVER, b"kyoukai_h2fast/" + __version__.encode("ascii"))

_DAY_NAMES = (b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun")
_MONTH_NAMES = (b"", b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep",
                b"Oct", b"Nov", b"Dec")
#: The last second IMF-fixdate can write (9999-12-31T23:59:59Z).
MAX_HTTP_DATE = 253402300799


def http_date(seconds: int) -> bytes:
    """IMF-fixdate (RFC 9110 §5.6.7) of a POSIX time, e.g. ``b"Sun, 06 Nov 1994 08:49:37 GMT"``.

    Day and month names are always English (no locale). ValueError outside 1970-9999.
    """
    if not 0 <= seconds <= MAX_HTTP_DATE:
        raise ValueError(f"time {seconds!r} is outside 1970-01-01..9999-12-31")
    t = time.gmtime(seconds)
    return b"%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAY_NAMES[t.tm_wday], t.tm_mday, _MONTH_NAMES[t.tm_mon], t.tm_year,
        t.tm_hour, t.tm_min, t.tm_sec)


# (end of the second, (b"date", IMF-fixdate)): made again once the second is over. One tuple,
# replaced whole, so a thread reading it never sees a second paired with another's date.
_date_cache = (0.0, (_DATE, b""))


def _date_field(now: Callable[[], float] = time.time) -> tuple:
    global _date_cache
    cache = _date_cache
    t = now()
    if t >= cache[0] or t < cache[0] - 1.0:  # a new second, or the clock was set back
        second = int(t)
        cache = _date_cache = (second + 1.0, (_DATE, http_date(second)))
    return cache[1]


def _latin1_bytes(obj: object, what: str) -> bytes:
    """A response header name or value (str or bytes) as bytes, or a clear error."""
    if isinstance(obj, str):
        try:
            return obj.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"response header {what} is not latin-1: {obj!r}") from None
    if isinstance(obj, bytes):
        return bytes(obj)
    raise TypeError(f"response header {what} must be str, not {type(obj).__name__}")


def _encode_response_name(name: str | bytes) -> bytes | None:
    raw = _latin1_bytes(name, "name").lower()
    if not raw:
        raise ValueError("empty response header name")
    if _RESPONSE_NAME_ILLEGAL.search(raw) is not None:
        raise ValueError(f"illegal character in response header name {name!r}")
    if raw == _DATE:
        return _DATE
    if raw == _SERVER:
        return _SERVER
    return None if raw in _DROPPED_RESPONSE_FIELDS else raw


def _response_value(value: str | bytes) -> bytes:
    raw = _latin1_bytes(value, "value")
    if _VALUE_ILLEGAL.search(raw) is not None:
        raise ValueError(f"illegal character (NUL, CR or LF) in response header value {value!r}")
    return raw.strip(b" \t")


def response_headers(
    status: str, headers: Iterable[tuple[str | bytes, str | bytes]]
) -> list[tuple[bytes, bytes]]:
    """The HTTP/2 response field list for a WSGI ``start_response(status, headers)``.

    ``status`` is e.g. ``"200 OK"`` (3 ASCII digits, 100-999, then end or a space);
    ``headers`` are ``(str, str)`` pairs (bytes values accepted as they are). Names are
    lower-cased, names and values encoded latin-1, values stripped of surrounding SP/HTAB,
    and connection-specific fields (and ``te``) dropped (RFC 9113 §8.2.2). ``date`` (RFC 9110
    §6.6.1, IMF-fixdate of the current second) and ``server`` (:data:`SERVER_FIELD`) are
    appended unless the app gave them (any letter case). Raises ValueError for a status, name
    or value that cannot be sent.
    """
    if not isinstance(status, str):
        raise ValueError(f"WSGI status must be a str such as '200 OK', not {status!r}")
    if _STATUS.match(status) is None:
        raise ValueError(f"invalid WSGI status {status!r}: must start with a 3-digit code")
    fields = [(b":status", status[:3].encode("ascii"))]
    names = _response_names
    date = _DATE
    server = _SERVER
    has_date = has_server = False
    for name, value in headers:
        encoded = names.get(name, False)
        if encoded is False:
            encoded = _encode_response_name(name)
            if len(names) < _RESPONSE_NAME_CACHE_MAX:
                names[name] = encoded
        if encoded is not None:
            if encoded is date:
                has_date = True
            elif encoded is server:
                has_server = True
            fields.append((encoded, _response_value(value)))
    if not has_date:
        fields.append(_date_field())
    if not has_server:
        fields.append(SERVER_FIELD)
    return fields
