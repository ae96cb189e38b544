# cython: language_level=3
"""HTTP/1.1 hot path, compiled: the common request head read in one pass, the response head
written in one join (pure twin: :mod:`kyoukai_h2fast.http1._http1_py`, same names).

* :func:`parse_head` reads a request head that is *exactly* the bytes given (one complete,
  common request: a known method other than CONNECT, an origin-form target, ``HTTP/1.1`` or
  ``HTTP/1.0``, token field names, visible values (obs-text too), at most one ``host``, no body,
  no ``expect``/``upgrade``/``transfer-encoding``/``content-length``, a plain ``connection``
  value, within the header-section limit) and returns what the connection needs without any
  parser callback. Anything else, valid or not, returns None: the caller then feeds the same
  bytes to the full parser (httptools, :mod:`kyoukai_h2fast.http1.parser`), which gives every
  rarer request, and every error status, exactly as before. So this function never rejects; it
  only answers "the common case, and here it is" (the differential tests check that what it
  accepts, httptools reads the same way).
* :class:`Exchange`: one request/response on a connection (documented in the twin).
* :func:`response_head` and :class:`Framing`: the response head (status line, the app's fields
  through the shared :func:`~kyoukai_h2fast.codec.headers.response_headers` rules, framing
  fields, ``connection``) and how its body is delimited (RFC 9112 §6); documented in
  :mod:`kyoukai_h2fast.http1.wire`.
"""
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromFormat
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeLatin1
from libc.string cimport memcmp
from posix.time cimport CLOCK_REALTIME, clock_gettime, time_t, timespec

from kyoukai_h2fast._headers_c cimport response_headers_c

from kyoukai_h2fast._headers_c import http_date

__all__ = ["parse_head", "response_head", "Framing", "Exchange"]

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
        _VALUE[c] = c == 9 or 0x20 <= c <= 0x7E or c >= 0x80  # (obs-text, as llhttp)


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


# -- one exchange ---------------------------------------------------------------------------
cdef class Exchange:
    """One request/response on the connection, around its request state (see the twin,
    :class:`kyoukai_h2fast.http1._http1_py.Exchange`, for each field)."""

    cdef public object state
    cdef public bint http10
    cdef public bint keep_alive
    cdef public bint expect_continue
    cdef public object access
    cdef public bint body_done
    cdef public object framing
    cdef public object sent
    cdef public int reject
    cdef public object detail
    cdef public object target
    cdef public object method

    def __init__(self, state, bint http10, bint keep_alive, access):
        self.state = state
        self.http10 = http10
        self.keep_alive = keep_alive
        self.access = access
        self.sent = 0
        self.detail = self.target = self.method = ""


# -- the response head ----------------------------------------------------------------------
# Theory of operation. What the head of a response says depends on the app's status and field
# list, on the request (HTTP/1.0, HEAD), on the connection (keep-alive) and on the body size;
# only the ``date`` field changes with time. Apps answer most requests with the same status and
# fields (a new list of the same pairs each time), so the checked, encoded part of a head is kept
# per ``(status, tuple of pairs)`` (:class:`_Head`, a bounded table, emptied when full) and each
# response only joins it with the current date line and its framing fields.
cdef frozenset _NO_BODY_STATUS = frozenset({204, 304})
cdef dict _HEADS = {}
cdef Py_ssize_t _HEADS_MAX = 512
cdef bytes _CONTENT_LENGTH = b"content-length"
cdef bytes _FIELD_SEP = b": "
cdef bytes _CRLF = b"\r\n"
cdef bytes _END_CLOSE = b"connection: close\r\n\r\n"
cdef bytes _END_KEEP_ALIVE_10 = b"connection: keep-alive\r\n\r\n"
cdef bytes _CHUNKED = b"transfer-encoding: chunked\r\n"
cdef time_t _date_second = -1
cdef bytes _date_line = b""


cdef bytes _current_date_line():
    """``date: <IMF-fixdate>\\r\\n`` of the current second (made again when it changes)."""
    global _date_second, _date_line
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    if ts.tv_sec != _date_second:
        _date_line = b"date: " + http_date(ts.tv_sec) + _CRLF
        _date_second = ts.tv_sec
    return _date_line


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


cdef inline Framing _framing(int status, length, bint chunked, bint no_body,
                             bint keep_alive):
    """A :class:`Framing` without the Python-level call."""
    cdef Framing framing = Framing.__new__(Framing)
    framing.status = status
    framing.length = length
    framing.chunked = chunked
    framing.no_body = no_body
    framing.keep_alive = keep_alive
    return framing


@cython.final
cdef class _Head:
    """The part of a response head that depends on the app's status and fields only."""

    cdef int code
    #: Status line and fields up to where the automatic ``date`` goes, and the rest after it.
    cdef bytes before_date
    cdef bytes after_date
    cdef bint auto_date
    #: The app's content-length (an int), or None.
    cdef object length
    #: The app asked for ``connection: close``.
    cdef bint close
    #: The last head made from this one, and what it was made for (the date line object,
    #: the request/connection flags, the body size or -1): consecutive responses alike (the
    #: common case) reuse its bytes.
    cdef bytes last_head
    cdef bytes last_date
    cdef int last_flags
    cdef Py_ssize_t last_size
    cdef object last_length
    cdef bint last_chunked
    cdef bint last_no_body
    cdef bint last_keep_alive


cdef _Head _make_head(status, app_headers):
    """Check and encode what the app gave (raises ValueError/TypeError as the twin does)."""
    cdef list fields = response_headers_c(status, app_headers)
    reason = status[4:]
    if "\r" in reason or "\n" in reason:
        raise ValueError(f"invalid WSGI status {status!r}: CR or LF in the reason phrase")
    cdef _Head head = _Head.__new__(_Head)
    head.code = int(fields[0][1])
    cdef bint has_date = False, has_server = False
    for pair in app_headers:
        name, value = pair
        lowered = name.lower()
        if lowered == "connection" and "close" in value.lower():
            head.close = True
        elif lowered == "date" or lowered == b"date":
            has_date = True
        elif lowered == "server" or lowered == b"server":
            has_server = True
    cdef Py_ssize_t n = len(fields), k
    cdef Py_ssize_t date_at = n if has_date else n - 1 - (not has_server)
    cdef list parts = [b"HTTP/1.1 %d %s\r\n" % (head.code, reason.encode("latin-1"))]
    cdef tuple field
    length = None
    for k in range(1, n):
        field = <tuple>fields[k]
        name = field[0]
        value = field[1]
        if k == date_at:
            if name != b"date":  # (cannot happen: response_headers_c appends it there)
                raise AssertionError("the automatic date field is not where expected")
            head.before_date = b"".join(parts)
            parts = []
            continue
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
    head.auto_date = not has_date
    if has_date:
        head.before_date = b"".join(parts)
        head.after_date = b""
    else:
        head.after_date = b"".join(parts)
    head.length = length
    return head


cdef _Head _head_for(status, app_headers):
    cdef _Head head
    try:
        key = (status, tuple(app_headers))
        cached = _HEADS.get(key)
    except TypeError:  # (unhashable pairs: made each time)
        return _make_head(status, app_headers)
    if cached is not None:
        return <_Head>cached
    head = _make_head(status, app_headers)
    if len(_HEADS) >= _HEADS_MAX:
        _HEADS.clear()
    _HEADS[key] = head
    return head


def response_head(status, app_headers, *, bint http10, bint is_head, bint keep_alive,
                  body_size):
    """The head (status line + fields + blank line) of a response, and its :class:`Framing`
    (see :func:`kyoukai_h2fast.http1.wire.response_head`)."""
    cdef _Head head = _head_for(status, app_headers)
    cdef int code = head.code
    cdef bytes date = _current_date_line() if head.auto_date else None
    cdef int flags = http10 | (is_head << 1) | (keep_alive << 2)
    cdef Py_ssize_t size = -1 if body_size is None else body_size
    if head.last_head is not None and head.last_flags == flags and head.last_size == size \
            and head.last_date is date:
        return head.last_head, _framing(code, head.last_length, head.last_chunked,
                                        head.last_no_body, head.last_keep_alive)
    if head.close:
        keep_alive = False
    cdef list parts = [head.before_date]
    if date is not None:
        parts.append(date)
    parts.append(head.after_date)
    length = head.length
    cdef bint no_body = is_head or code < 200 or code == 204 or code == 304
    cdef bint chunked = False
    if no_body:
        if code == 204 or code == 304:
            length = None
    elif length is None:
        if body_size is not None:
            length = body_size
            parts.append(PyBytes_FromFormat(b"content-length: %zd\r\n",
                                            <Py_ssize_t>body_size))
        elif http10:
            keep_alive = False  # close-delimited body
        else:
            chunked = True
            parts.append(_CHUNKED)
    if not keep_alive:
        parts.append(_END_CLOSE)
    elif http10:
        parts.append(_END_KEEP_ALIVE_10)
    else:
        parts.append(_CRLF)
    if no_body:
        length = None
    head.last_head = b"".join(parts)
    head.last_date = date
    head.last_flags = flags
    head.last_size = size
    head.last_length = length
    head.last_chunked = chunked
    head.last_no_body = no_body
    head.last_keep_alive = keep_alive
    return head.last_head, _framing(code, length, chunked, no_body, keep_alive)
