# cython: language_level=3
"""HTTP/1.1 hot path, compiled: the common request head read in one pass, the response head
written in one join (pure twin: :mod:`kyoukai_h2fast.http1._http1_py`, same names).

* :func:`parse_head` reads a request head that is *exactly* the bytes given (one complete,
  common request: a known method other than CONNECT, an origin-form target, ``HTTP/1.1`` or
  ``HTTP/1.0``, token field names, printable values, at most one ``host``, no body, no
  ``expect``/``upgrade``/``transfer-encoding``/``content-length``, a plain ``connection``
  value, within the header-section limit) and returns what the connection needs without any
  parser callback. Anything else, valid or not, returns None: the caller then feeds the same
  bytes to the full parser (httptools, :mod:`kyoukai_h2fast.http1.parser`), which gives every
  rarer request, and every error status, exactly as before. So this function never rejects;
  it only answers "the common case, and here it is" (the differential tests check that what it
  accepts, httptools reads the same way).
* :func:`response_head` and :class:`Framing`: the response head (status line, the app's fields
  through the shared :func:`~kyoukai_h2fast.codec.headers.response_headers` rules, framing
  fields, ``connection``) and how its body is delimited (RFC 9112 §6); documented in
  :mod:`kyoukai_h2fast.http1.wire`.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize
from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeLatin1
from libc.string cimport memcmp

from kyoukai_h2fast._headers_c cimport response_headers_c

__all__ = ["parse_head", "response_head", "Framing"]

# -- character classes (RFC 9110 §5.6.2 token, §5.5 field value; request target) ----------
cdef unsigned char _TCHAR[256]
cdef unsigned char _TARGET[256]
cdef unsigned char _VALUE[256]
cdef unsigned char _LOWER[256]


cdef void _init_tables():
    cdef int c
    for c in range(256):
        _LOWER[c] = c + 32 if 65 <= c <= 90 else c
        _TCHAR[c] = (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122) \
            or c in b"!#$%&'*+-.^_`|~"
        # printable ASCII but '#' (a fragment is the full parser's business)
        _TARGET[c] = 0x21 <= c <= 0x7E and c != 35
        _VALUE[c] = c == 9 or 0x20 <= c <= 0x7E


_init_tables()

# Methods the fast path knows (llhttp knows more; the others go to it).
cdef tuple _METHODS = (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH")
cdef tuple _METHOD_NAMES = tuple(m.decode("ascii") for m in _METHODS)
cdef bytes _PSEUDO_METHOD = b":method"
cdef bytes _PSEUDO_PATH = b":path"


cdef inline bint _is(const unsigned char* p, Py_ssize_t n, const char* lower,
                     Py_ssize_t m) noexcept:
    """``p[:n]`` equals the lower-case ASCII ``lower[:m]``, ignoring the letter case."""
    cdef Py_ssize_t k
    if n != m:
        return False
    for k in range(n):
        if _LOWER[p[k]] != <unsigned char>lower[k]:
            return False
    return True


def parse_head(data, Py_ssize_t limit):
    """``(headers, method, target, http10, keep_alive)`` for a common request head that is
    all of ``data``, else None (see the module docstring).

    ``headers`` has the HTTP/2 shape the environ builder takes: ``(b":method", method)``,
    ``(b":path", target)``, then the fields with lower-case names (values as received, without
    the leading whitespace); ``method`` and ``target`` are str (latin-1); ``keep_alive`` is
    the client's wish (RFC 9112 §9.3). ``limit`` bounds the target plus the fields, counted as
    an HTTP/2 header list (name + value + 32 each).
    """
    if not PyBytes_CheckExact(data):
        return None
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    # The head ends exactly at the end: every scan below stops at that CR LF CR LF.
    if n < 18 or p[n - 1] != 10 or p[n - 2] != 13 or p[n - 3] != 10 or p[n - 4] != 13:
        return None
    cdef Py_ssize_t i = 0, j, k, name_start, name_len, value_start, value_end
    cdef Py_ssize_t target_start, target_len, size
    cdef int method_index = -1
    cdef bytes known
    while _TCHAR[p[i]]:
        i += 1
    for k in range(len(_METHODS)):
        known = <bytes>_METHODS[k]
        if PyBytes_GET_SIZE(known) == i and memcmp(PyBytes_AS_STRING(known), p, i) == 0:
            method_index = k
            break
    if method_index < 0 or p[i] != 32 or p[i + 1] != 47:  # SP, then "/"
        return None
    i += 1
    target_start = i
    while _TARGET[p[i]]:
        i += 1
    target_len = size = i - target_start
    if size > limit or n - i < 11 or memcmp(p + i, b" HTTP/1.", 8) != 0 \
            or (p[i + 8] != 49 and p[i + 8] != 48) or p[i + 9] != 13 or p[i + 10] != 10:
        return None
    cdef bint http10 = p[i + 8] == 48
    cdef list headers = [
        (_PSEUDO_METHOD, _METHODS[method_index]),
        (_PSEUDO_PATH, PyBytes_FromStringAndSize(<const char*>p + target_start, target_len))]
    i += 11
    cdef int hosts = 0
    cdef int connection = 0  # 1: close, 2: keep-alive
    cdef bytes name
    cdef char* out
    while p[i] != 13:
        name_start = i
        while _TCHAR[p[i]]:
            i += 1
        name_len = i - name_start
        if name_len == 0 or p[i] != 58:  # ":" right after a non-empty name
            return None
        i += 1
        while p[i] == 32 or p[i] == 9:
            i += 1
        value_start = i
        while _VALUE[p[i]]:
            i += 1
        value_end = i
        if p[i] != 13 or p[i + 1] != 10 or value_end == value_start \
                or p[value_end - 1] == 32 or p[value_end - 1] == 9:
            return None  # (a bad byte, an empty value or trailing whitespace: the full parser)
        i += 2
        size += name_len + (value_end - value_start) + 32
        if size > limit:
            return None
        # What the full parser interprets: host counted, connection read, the rest its own.
        if _is(p + name_start, name_len, b"host", 4):
            hosts += 1
        elif _is(p + name_start, name_len, b"connection", 10):
            if connection:
                return None
            if _is(p + value_start, value_end - value_start, b"close", 5):
                connection = 1
            elif _is(p + value_start, value_end - value_start, b"keep-alive", 10):
                connection = 2
            else:
                return None
        elif _is(p + name_start, name_len, b"content-length", 14) \
                or _is(p + name_start, name_len, b"transfer-encoding", 17) \
                or _is(p + name_start, name_len, b"expect", 6) \
                or _is(p + name_start, name_len, b"upgrade", 7) \
                or _is(p + name_start, name_len, b"proxy-connection", 16):
            return None
        name = PyBytes_FromStringAndSize(NULL, name_len)
        out = PyBytes_AS_STRING(name)
        for j in range(name_len):
            out[j] = <char>_LOWER[p[name_start + j]]
        headers.append((name, PyBytes_FromStringAndSize(<const char*>p + value_start,
                                                        value_end - value_start)))
    if i + 2 != n or hosts > 1 or (hosts == 0 and not http10):
        return None  # another request behind this one, or a Host the full parser rejects
    cdef bint keep_alive = (connection == 2) if http10 else (connection != 1)
    return (headers, _METHOD_NAMES[method_index],
            PyUnicode_DecodeLatin1(<const char*>p + target_start, target_len, NULL),
            http10, keep_alive)


# -- the response head ----------------------------------------------------------------------
cdef frozenset _NO_BODY_STATUS = frozenset({204, 304})
#: "200 OK" -> (200, b"HTTP/1.1 200 OK\r\n"), for statuses seen already (bounded).
cdef dict _STATUS_LINES = {}
cdef bytes _CONTENT_LENGTH = b"content-length"
cdef bytes _FIELD_SEP = b": "
cdef bytes _CRLF = b"\r\n"


cdef class Framing:
    """How a response body is delimited; what :func:`response_head` decided."""

    cdef public int status
    cdef public object length
    cdef public bint chunked
    cdef public bint no_body
    cdef public bint keep_alive

    def __init__(self, int status, length, bint chunked, bint no_body, bint keep_alive):
        self.status = status
        self.length = length
        self.chunked = chunked
        self.no_body = no_body
        self.keep_alive = keep_alive


cdef tuple _status_line(status, list fields):
    cached = _STATUS_LINES.get(status)
    if cached is not None:
        return <tuple>cached
    reason = status[4:]
    if "\r" in reason or "\n" in reason:
        raise ValueError(f"invalid WSGI status {status!r}: CR or LF in the reason phrase")
    code = int(fields[0][1])
    line = b"HTTP/1.1 %d %s\r\n" % (code, reason.encode("latin-1"))
    result = (code, line)
    if len(_STATUS_LINES) < 256 and type(status) is str:
        _STATUS_LINES[status] = result
    return result


def response_head(status, app_headers, *, bint http10, bint is_head, bint keep_alive,
                  body_size):
    """The head (status line + fields + blank line) of a response, and its :class:`Framing`
    (see :func:`kyoukai_h2fast.http1.wire.response_head`)."""
    cdef list fields = response_headers_c(status, app_headers)
    cdef tuple line = _status_line(status, fields)
    cdef int code = line[0]
    for pair in app_headers:
        name, value = pair
        if name.lower() == "connection" and "close" in value.lower():
            keep_alive = False
    cdef list parts = [line[1]]
    length = None
    cdef Py_ssize_t k
    cdef tuple field
    for k in range(1, len(fields)):
        field = <tuple>fields[k]
        name = field[0]
        value = field[1]
        if name == _CONTENT_LENGTH:
            if not value.isdigit():
                raise ValueError(f"invalid content-length {value!r}")
            if length is not None and int(value) != length:
                raise ValueError("conflicting content-length fields")
            if length is not None:
                continue
            length = int(value)
        parts.append(name)
        parts.append(_FIELD_SEP)
        parts.append(value)
        parts.append(_CRLF)
    cdef bint no_body = is_head or code < 200 or code in _NO_BODY_STATUS
    cdef bint chunked = False
    if no_body:
        if code in _NO_BODY_STATUS:
            length = None
    elif length is None:
        if body_size is not None:
            length = body_size
            parts.append(b"content-length: %d\r\n" % body_size)
        elif http10:
            keep_alive = False  # close-delimited body
        else:
            chunked = True
            parts.append(b"transfer-encoding: chunked\r\n")
    if not keep_alive:
        parts.append(b"connection: close\r\n\r\n")
    elif http10:
        parts.append(b"connection: keep-alive\r\n\r\n")
    else:
        parts.append(_CRLF)
    return b"".join(parts), Framing(code, None if no_body else length, chunked, no_body,
                                    keep_alive)
