# cython: language_level=3
"""Compiled header validation (RFC 9113 §8.2, §8.3) and response field lists.

Owns: the checks on received request and trailer field blocks that ``h2`` skips because the
server runs it with ``validate_inbound_headers=False`` (see :mod:`kyoukai_h2fast.codec.headers` for
the full rule list, including the checks that are stricter than ``h2``), and the conversion of
a WSGI ``start_response`` status + header list into an HTTP/2 response field list, with the
``date`` (RFC 9110 §6.6.1, cached per second) and ``server`` fields the app did not give.

The pure-Python twin is :mod:`kyoukai_h2fast.codec._headers_py`; both give the same public names and
raise the same errors. The C-level API (``.pxd``) lets the future connection core validate
fields by pointer while it decodes them. Leaves to others: HPACK decoding, stream state, and
what to do with the error (the engine turns it into RST_STREAM PROTOCOL_ERROR).
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_FromStringAndSize
from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_ITEM, PyTuple_GET_SIZE
from cpython.unicode cimport PyUnicode_AsLatin1String, PyUnicode_Check
from libc.string cimport memcmp, memcpy
from libc.time cimport time_t
from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec

from kyoukai_h2fast import __version__
from kyoukai_h2fast.errors import MalformedRequestError

__all__ = ["validate_request_headers", "validate_trailers", "response_headers",
           "http_date", "CONNECTION_SPECIFIC_FIELDS", "SERVER_FIELD", "MAX_HTTP_DATE"]

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX
    Py_ssize_t PyUnicode_GET_LENGTH(object)
    Py_UCS4 PyUnicode_READ_CHAR(object, Py_ssize_t)

#: Connection-specific fields, forbidden in HTTP/2 (RFC 9113 §8.2.2).
CONNECTION_SPECIFIC_FIELDS = frozenset(
    [b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade"])

# ---- character classes (RFC 9113 §8.2.1) ---------------------------------------------------
# Field names: 0x00-0x20, 0x41-0x5a (upper case) and 0x7f-0xff are illegal; a colon only as the
# first byte (pseudo-headers). Values: NUL, LF and CR are illegal anywhere.
cdef enum:
    NAME_OK = 0
    NAME_UPPER = 1
    NAME_ILLEGAL = 2
    NAME_COLON = 3

cdef unsigned char NAME_CLASS[256]
cdef unsigned char VALUE_ILLEGAL[256]


cdef void _init_tables() noexcept:
    cdef int c
    for c in range(256):
        if 0x41 <= c <= 0x5a:
            NAME_CLASS[c] = NAME_UPPER
        elif c <= 0x20 or c >= 0x7f:
            NAME_CLASS[c] = NAME_ILLEGAL
        elif c == 0x3a:
            NAME_CLASS[c] = NAME_COLON
        else:
            NAME_CLASS[c] = NAME_OK
        VALUE_ILLEGAL[c] = c == 0x00 or c == 0x0a or c == 0x0d


_init_tables()


cdef inline bint _is_ows(unsigned char c) noexcept nogil:
    return c == 0x20 or c == 0x09


cdef inline bint _equals(const unsigned char* a, Py_ssize_t alen,
                         const char* b, Py_ssize_t blen) noexcept nogil:
    return alen == blen and memcmp(a, b, blen) == 0


cdef object _malformed(str message, const unsigned char* data, Py_ssize_t length):
    """Raise MalformedRequestError ``message`` (with the offending bytes' repr)."""
    raise MalformedRequestError(message % (data[:length],))


# ---- one field ------------------------------------------------------------------------------

cdef int check_field_chars(const unsigned char* name, Py_ssize_t nlen,
                           const unsigned char* value, Py_ssize_t vlen) except -1:
    cdef Py_ssize_t i
    cdef unsigned char cls
    if nlen <= 0:
        raise MalformedRequestError("Received header name with zero length.")
    for i in range(nlen):
        cls = NAME_CLASS[name[i]]
        if cls != NAME_OK:
            if cls == NAME_UPPER:
                _malformed("Received uppercase header name %r.", name, nlen)
            elif cls == NAME_ILLEGAL:
                _malformed("Illegal character in header name: %r", name, nlen)
            elif i > 0:  # NAME_COLON: only pseudo-headers start with one
                _malformed("Illegal character ':' in header name: %r", name, nlen)
    if vlen > 0:
        for i in range(vlen):
            if VALUE_ILLEGAL[value[i]]:
                _malformed("Illegal character (NUL, CR or LF) in header value: %r", value, vlen)
        if _is_ows(value[0]) or _is_ows(value[vlen - 1]):
            _malformed("Received header value surrounded by whitespace %r", value, vlen)
    return 0


cdef void field_block_check_init(FieldBlockCheck* check, bint is_trailer) noexcept nogil:
    check.is_trailer = is_trailer
    check.pseudo_seen = 0
    check.regular_seen = False
    check.method_is_connect = False
    check.method_is_options = False
    check.path_is_asterisk = False
    check.path_is_absolute = False
    check.host_seen = False
    check.authority = NULL
    check.authority_len = 0
    check.host = NULL
    check.host_len = 0
    check.content_length = -1


cdef inline unsigned int _pseudo_bit(const unsigned char* name, Py_ssize_t nlen) noexcept nogil:
    """The PSEUDO_* bit of a pseudo-header name, 0 for an unknown one."""
    if nlen == 5 and memcmp(name, b":path", 5) == 0:
        return PSEUDO_PATH
    if nlen == 7:
        if memcmp(name, b":method", 7) == 0:
            return PSEUDO_METHOD
        if memcmp(name, b":scheme", 7) == 0:
            return PSEUDO_SCHEME
        if memcmp(name, b":status", 7) == 0:
            return PSEUDO_STATUS
    elif nlen == 10 and memcmp(name, b":authority", 10) == 0:
        return PSEUDO_AUTHORITY
    elif nlen == 9 and memcmp(name, b":protocol", 9) == 0:
        return PSEUDO_PROTOCOL
    return 0


cdef int _pseudo_field(FieldBlockCheck* check, const unsigned char* name, Py_ssize_t nlen,
                       const unsigned char* value, Py_ssize_t vlen) except -1:
    cdef unsigned int bit
    if check.is_trailer:
        _malformed("Received pseudo-header in trailer %r", name, nlen)
    bit = _pseudo_bit(name, nlen)
    if bit == 0:
        _malformed("Received custom pseudo-header field %r", name, nlen)
    if check.pseudo_seen & bit:
        _malformed("Received duplicate pseudo-header field %r", name, nlen)
    if check.regular_seen:
        _malformed("Received pseudo-header field out of sequence: %r", name, nlen)
    check.pseudo_seen |= bit
    if bit == PSEUDO_METHOD:
        check.method_is_connect = _equals(value, vlen, b"CONNECT", 7)
        check.method_is_options = _equals(value, vlen, b"OPTIONS", 7)
    elif bit == PSEUDO_PATH:
        if vlen == 0:
            raise MalformedRequestError("An empty :path header is forbidden")
        check.path_is_asterisk = vlen == 1 and value[0] == b"*"
        check.path_is_absolute = value[0] == b"/"
    elif bit == PSEUDO_AUTHORITY:
        check.authority = value
        check.authority_len = vlen
    elif bit == PSEUDO_STATUS:
        raise MalformedRequestError("Encountered response-only header :status in a request")
    return 0


cdef int _content_length(FieldBlockCheck* check, const unsigned char* value,
                         Py_ssize_t vlen) except -1:
    """content-length = 1*DIGIT (RFC 9110 §8.6); every copy must agree."""
    cdef Py_ssize_t i, length = 0
    cdef unsigned int digit
    if vlen == 0:
        _malformed("Invalid content-length header: %r", value, vlen)
    for i in range(vlen):
        digit = value[i] - 0x30
        if digit > 9:
            _malformed("Invalid content-length header: %r", value, vlen)
        if length > (PY_SSIZE_T_MAX - digit) // 10:
            _malformed("content-length header too large: %r", value, vlen)
        length = length * 10 + digit
    if check.content_length >= 0 and check.content_length != length:
        raise MalformedRequestError(
            f"Conflicting content-length headers: {check.content_length} and {length}")
    check.content_length = length
    return 0


cdef inline bint _is_trailers_token(const unsigned char* value, Py_ssize_t vlen) noexcept nogil:
    """``value`` is "trailers" in any ASCII letter case (what ``te`` may carry)."""
    cdef const char* expected = b"trailers"
    cdef Py_ssize_t i
    if vlen != 8:
        return False
    for i in range(8):
        if (value[i] | 0x20) != expected[i]:  # letters only, so |0x20 is a safe fold
            return False
    return True


cdef int field_block_check_field(FieldBlockCheck* check,
                                 const unsigned char* name, Py_ssize_t nlen,
                                 const unsigned char* value, Py_ssize_t vlen) except -1:
    check_field_chars(name, nlen, value, vlen)
    if name[0] == b":":
        return _pseudo_field(check, name, nlen, value, vlen)
    check.regular_seen = True
    if nlen == 2:
        if name[1] == b"e" and name[0] == b"t" and not _is_trailers_token(value, vlen):
            _malformed("Invalid value for TE header: %r", value, vlen)
    elif nlen == 4:
        if not check.is_trailer and memcmp(name, b"host", 4) == 0:
            if check.host_seen:
                raise MalformedRequestError("Request header block has multiple Host headers.")
            check.host_seen = True
            check.host = value
            check.host_len = vlen
    elif nlen == 14:
        if memcmp(name, b"content-length", 14) == 0:
            _content_length(check, value, vlen)
    elif ((nlen == 10 and (memcmp(name, b"connection", 10) == 0
                           or memcmp(name, b"keep-alive", 10) == 0))
          or (nlen == 7 and memcmp(name, b"upgrade", 7) == 0)
          or (nlen == 16 and memcmp(name, b"proxy-connection", 16) == 0)
          or (nlen == 17 and memcmp(name, b"transfer-encoding", 17) == 0)):
        _malformed("Connection-specific header field present: %r.", name, nlen)
    return 0


cdef Py_ssize_t field_block_check_finish(FieldBlockCheck* check) except -2:
    cdef unsigned int seen = check.pseudo_seen
    if check.is_trailer:
        return check.content_length
    if not seen & PSEUDO_METHOD:
        raise MalformedRequestError("Header block missing mandatory b':method' header")
    if check.method_is_connect and not seen & PSEUDO_PROTOCOL:
        # Ordinary CONNECT (RFC 9113 §8.5): only :method and :authority.
        if seen & (PSEUDO_SCHEME | PSEUDO_PATH):
            raise MalformedRequestError("Ordinary CONNECT MUST NOT include :scheme or :path")
    else:
        # Every other request, extended CONNECT included (RFC 8441 §4).
        if not seen & PSEUDO_SCHEME:
            raise MalformedRequestError("Header block missing mandatory b':scheme' header")
        if not seen & PSEUDO_PATH:
            raise MalformedRequestError("Header block missing mandatory b':path' header")
    if seen & PSEUDO_PROTOCOL and not check.method_is_connect:
        raise MalformedRequestError("Encountered connect-request-only header :protocol")
    if not seen & PSEUDO_AUTHORITY and not check.host_seen:
        raise MalformedRequestError(
            "Request header block does not have an :authority or Host header.")
    if seen & PSEUDO_AUTHORITY and check.host_seen and not _equals(
            check.authority, check.authority_len, <const char*>check.host, check.host_len):
        raise MalformedRequestError(
            "Request header block has mismatched :authority and Host headers: "
            f"{check.authority[:check.authority_len]!r} / {check.host[:check.host_len]!r}")
    # Stricter than h2 (RFC 9113 §8.3.1): origin-form, or "*" for OPTIONS only.
    if seen & PSEUDO_PATH and not (
            check.path_is_absolute or (check.path_is_asterisk and check.method_is_options)):
        raise MalformedRequestError(
            "Invalid :path: must start with '/' (or be '*' for OPTIONS)")
    return check.content_length


# ---- whole blocks ---------------------------------------------------------------------------

cdef int _check_block(FieldBlockCheck* check, list headers) except -1:
    cdef Py_ssize_t i, count = PyList_GET_SIZE(headers)
    cdef object item  # a strong reference: the pointers below stay valid whatever runs
    cdef PyObject* name
    cdef PyObject* value
    for i in range(count):
        # No Python code runs in this loop but on its error paths, so the list keeps every
        # field alive until field_block_check_finish reads the :authority/host pointers.
        item = <object>PyList_GET_ITEM(headers, i)
        if not PyTuple_Check(item) or PyTuple_GET_SIZE(item) != 2:
            raise TypeError(f"header field must be a (name, value) tuple, not {item!r}")
        name = PyTuple_GET_ITEM(item, 0)
        value = PyTuple_GET_ITEM(item, 1)
        if not PyBytes_Check(<object>name) or not PyBytes_Check(<object>value):
            raise TypeError(f"header name and value must be bytes, not {item!r}")
        field_block_check_field(
            check,
            <const unsigned char*>PyBytes_AS_STRING(<object>name), PyBytes_GET_SIZE(<object>name),
            <const unsigned char*>PyBytes_AS_STRING(<object>value),
            PyBytes_GET_SIZE(<object>value))
    return 0


cdef Py_ssize_t validate_request_c(list headers) except -2:
    cdef FieldBlockCheck check
    field_block_check_init(&check, False)
    _check_block(&check, headers)
    return field_block_check_finish(&check)


cdef int validate_trailers_c(list headers) except -1:
    cdef FieldBlockCheck check
    field_block_check_init(&check, True)
    _check_block(&check, headers)
    field_block_check_finish(&check)
    return 0


def validate_request_headers(headers) -> int:
    """Check a received request field block; return its content length, or -1 when none.

    ``headers`` is the decoded list of ``(name, value)`` bytes pairs. Raises
    :class:`~kyoukai_h2fast.errors.MalformedRequestError` for a malformed request.
    """
    if type(headers) is not list:
        headers = list(headers)
    return validate_request_c(headers)


def validate_trailers(headers) -> None:
    """Check a received trailer field block (no pseudo-headers, RFC 9113 §8.1)."""
    if type(headers) is not list:
        headers = list(headers)
    validate_trailers_c(headers)


# ---- response field lists -------------------------------------------------------------------
# Encoded (lower-case, latin-1) names by the name the app gave, or None for a field that is
# dropped. Bounded: past the limit, new names are converted per call and not remembered.
cdef dict _response_names = {}
cdef Py_ssize_t RESPONSE_NAME_CACHE_MAX = 512
# Fields HTTP/2 does not carry in a response (RFC 9113 §8.2.2): connection-specific, and te.
_DROPPED_RESPONSE_FIELDS = CONNECTION_SPECIFIC_FIELDS | {b"te"}
cdef list _status_codes = [None] * 1000

# The fields added to every response the app did not give itself. Encoded names equal to these
# are these very objects (see _encode_response_name), so spotting them is an identity test.
cdef bytes _DATE = b"date"
cdef bytes _SERVER = b"server"
#: ``(b"server", b"kyoukai_h2fast/<version>")``.
SERVER_FIELD = (_SERVER, b"kyoukai_h2fast/" + __version__.encode("ascii"))
cdef tuple _server_field = SERVER_FIELD


# ---- the date field (RFC 9110 §6.6.1) -------------------------------------------------------
# IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT": English names whatever the C locale, and the
# civil date computed here (days since 1970-01-01 -> year/month/day, Howard Hinnant's
# algorithm), so nothing depends on gmtime's thread-safety or on the platform.
cdef const char* DAY_NAMES = b"ThuFriSatSunMonTueWed"   # 1970-01-01 was a Thursday
cdef const char* MONTH_NAMES = b"JanFebMarAprMayJunJulAugSepOctNovDec"


cdef inline void _two_digits(char* out, long value) noexcept nogil:
    out[0] = <char>(48 + value // 10)
    out[1] = <char>(48 + value % 10)


#: The last second IMF-fixdate can write (9999-12-31T23:59:59Z).
MAX_HTTP_DATE = 253402300799
cdef long long MAX_HTTP_DATE_C = 253402300799


cdef bytes _format_http_date(long long seconds):
    """``seconds`` in 0..MAX_HTTP_DATE (the caller checks)."""
    cdef long long days = seconds // 86400
    cdef long long rest = seconds - days * 86400
    cdef long long z, era, doe, yoe, year, doy, mp
    cdef long day, month, weekday
    cdef char out[29]
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    year = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = <long>(doy - (153 * mp + 2) // 5 + 1)
    month = <long>(mp + 3 if mp < 10 else mp - 9)
    if month <= 2:
        year += 1
    weekday = <long>(((days % 7) + 7) % 7)
    memcpy(out, DAY_NAMES + 3 * weekday, 3)
    out[3] = b","
    out[4] = b" "
    _two_digits(out + 5, day)
    out[7] = b" "
    memcpy(out + 8, MONTH_NAMES + 3 * (month - 1), 3)
    out[11] = b" "
    _two_digits(out + 12, <long>(year // 100))
    _two_digits(out + 14, <long>(year % 100))
    out[16] = b" "
    _two_digits(out + 17, <long>(rest // 3600))
    out[19] = b":"
    _two_digits(out + 20, <long>(rest // 60 % 60))
    out[22] = b":"
    _two_digits(out + 23, <long>(rest % 60))
    memcpy(out + 25, b" GMT", 4)
    return PyBytes_FromStringAndSize(out, 29)


def http_date(seconds) -> bytes:
    """IMF-fixdate (RFC 9110 §5.6.7) of a POSIX time, e.g. ``b"Sun, 06 Nov 1994 08:49:37 GMT"``.

    Day and month names are always English (no locale). ValueError outside 1970-9999.
    """
    if not 0 <= seconds <= MAX_HTTP_DATE:
        raise ValueError(f"time {seconds!r} is outside 1970-01-01..9999-12-31")
    return _format_http_date(seconds)


# The current second's (b"date", IMF-fixdate) field, made again when the second changes. The
# GIL is held throughout, so the second and its field always match.
cdef time_t _date_second = -1
cdef tuple _date_field = (_DATE, b"")


cdef inline tuple _current_date_field():
    global _date_second, _date_field
    # The clock Python's time.time() reads (time(NULL) may lag it by a tick at a second's
    # boundary).
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    cdef time_t now = ts.tv_sec
    if now != _date_second and 0 <= now <= MAX_HTTP_DATE_C:
        _date_field = (_DATE, _format_http_date(now))
        _date_second = now
    return _date_field


cdef bytes _latin1_bytes(object obj, str what):
    """A response header name or value (str or bytes) as bytes, or a clear error."""
    if PyUnicode_Check(obj):
        try:
            return PyUnicode_AsLatin1String(obj)
        except UnicodeEncodeError:
            raise ValueError(f"response header {what} is not latin-1: {obj!r}") from None
    if PyBytes_Check(obj):
        return bytes(obj)
    raise TypeError(f"response header {what} must be str, not {type(obj).__name__}")


cdef object _encode_response_name(object name):
    cdef bytes raw
    cdef const unsigned char* data
    cdef Py_ssize_t i, length
    raw = _latin1_bytes(name, "name").lower()
    length = PyBytes_GET_SIZE(raw)
    if length == 0:
        raise ValueError("empty response header name")
    data = <const unsigned char*>PyBytes_AS_STRING(raw)
    for i in range(length):
        if NAME_CLASS[data[i]] != NAME_OK:  # lower-cased, so only illegal chars and ':' left
            raise ValueError(f"illegal character in response header name {name!r}")
    if raw == _DATE:
        return _DATE
    if raw == _SERVER:
        return _SERVER
    return None if raw in _DROPPED_RESPONSE_FIELDS else raw


cdef object _response_name(object name):
    cached = _response_names.get(name, False)
    if cached is not False:
        return cached
    encoded = _encode_response_name(name)
    if len(_response_names) < RESPONSE_NAME_CACHE_MAX:
        _response_names[name] = encoded
    return encoded


cdef bytes _response_value(object value):
    cdef bytes raw
    cdef const unsigned char* data
    cdef Py_ssize_t i, start, end
    raw = _latin1_bytes(value, "value")
    end = PyBytes_GET_SIZE(raw)
    data = <const unsigned char*>PyBytes_AS_STRING(raw)
    for i in range(end):
        if VALUE_ILLEGAL[data[i]]:
            raise ValueError(
                f"illegal character (NUL, CR or LF) in response header value {value!r}")
    start = 0
    while start < end and _is_ows(data[start]):
        start += 1
    while end > start and _is_ows(data[end - 1]):
        end -= 1
    if start == 0 and end == PyBytes_GET_SIZE(raw):
        return raw
    return PyBytes_FromStringAndSize(<const char*>data + start, end - start)


cdef bytes _status_code(object status):
    cdef Py_ssize_t length
    cdef Py_UCS4 c0, c1, c2
    cdef int code
    cdef char digits[3]
    if not PyUnicode_Check(status):
        raise ValueError(f"WSGI status must be a str such as '200 OK', not {status!r}")
    length = PyUnicode_GET_LENGTH(status)
    if length < 3:
        raise ValueError(f"invalid WSGI status {status!r}")
    c0 = PyUnicode_READ_CHAR(status, 0)
    c1 = PyUnicode_READ_CHAR(status, 1)
    c2 = PyUnicode_READ_CHAR(status, 2)
    if (not (u"1" <= c0 <= u"9") or not (u"0" <= c1 <= u"9") or not (u"0" <= c2 <= u"9")
            or (length > 3 and PyUnicode_READ_CHAR(status, 3) != u" ")):
        raise ValueError(f"invalid WSGI status {status!r}: must start with a 3-digit code")
    code = (<int>c0 - 48) * 100 + (<int>c1 - 48) * 10 + (<int>c2 - 48)
    cached = _status_codes[code]
    if cached is None:
        digits[0] = <char>c0
        digits[1] = <char>c1
        digits[2] = <char>c2
        cached = PyBytes_FromStringAndSize(digits, 3)
        _status_codes[code] = cached
    return cached


cdef list response_headers_c(object status, object headers):
    cdef list fields = [(b":status", _status_code(status))]
    cdef bint has_date = False, has_server = False
    for pair in headers:
        name, value = pair
        encoded = _response_name(name)
        if encoded is not None:
            if encoded is _DATE:
                has_date = True
            elif encoded is _SERVER:
                has_server = True
            fields.append((encoded, _response_value(value)))
    if not has_date:
        fields.append(_current_date_field())
    if not has_server:
        fields.append(_server_field)
    return fields


def response_headers(status, headers) -> list:
    """The HTTP/2 response field list for a WSGI ``start_response(status, headers)``.

    ``status`` is e.g. ``"200 OK"`` (3 ASCII digits, 100-999, then end or a space);
    ``headers`` are ``(str, str)`` pairs (bytes values accepted as they are). Names are
    lower-cased, names and values encoded latin-1, values stripped of surrounding SP/HTAB,
    and connection-specific fields (and ``te``) dropped (RFC 9113 §8.2.2). ``date`` (RFC 9110
    §6.6.1, IMF-fixdate of the current second) and ``server`` (:data:`SERVER_FIELD`) are
    appended unless the app gave them (any letter case). Raises ValueError for a status, name
    or value that cannot be sent.
    """
    return response_headers_c(status, headers)
