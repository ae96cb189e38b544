# cython: language_level=3
"""Compiled WSGI environ construction (PEP 3333) from a validated HTTP/2 request field list.

Owns the per-request half of the environ: ``build_environ(base, headers, wsgi_input)`` copies
the per-connection ``base`` (made once by :func:`kyoukai_h2fast.wsgi.environ.make_base_environ`)
and adds the request keys. The rules (PATH_INFO decoding, SERVER_NAME from ``:authority``,
repeated fields, cookies, underscore names dropped...) are documented in
:mod:`kyoukai_h2fast.wsgi.environ`; the pure twin :mod:`kyoukai_h2fast.wsgi._environ_py` implements
the same, and the tests check that both give equal dicts.

Per request this does one dict copy, one latin-1 decode per value, and dict stores; the
``HTTP_*`` key of a field name comes from a bounded cache (name bytes -> key str), so common
names cost one dict lookup. Leaves to others: validation (:mod:`kyoukai_h2fast.codec.headers` runs
first; this module trusts its input) and the body stream passed in as ``wsgi_input``.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_ITEM, PyTuple_GET_SIZE
from cpython.unicode cimport PyUnicode_Concat, PyUnicode_DecodeLatin1
from libc.string cimport memchr, memcmp

from kyoukai_h2fast.wsgi.environ_keys import COMMON_FIELD_NAMES, HTTP_KEY_CACHE_MAX

__all__ = ["build_environ"]

cdef extern from "Python.h":
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void* PyUnicode_DATA(object)

# name bytes -> "HTTP_..." key. Pre-filled with common names; grows with the names clients
# send until HTTP_KEY_CACHE_MAX entries, then stays as it is (an attacker sending endless new
# names only pays for building their keys, never grows memory).
cdef dict _http_keys = {}
cdef Py_ssize_t _http_keys_max = HTTP_KEY_CACHE_MAX

cdef signed char HEX_VALUE[256]


cdef void _init_hex() noexcept:
    cdef int c
    for c in range(256):
        if 0x30 <= c <= 0x39:
            HEX_VALUE[c] = c - 0x30
        elif 0x41 <= c <= 0x46:
            HEX_VALUE[c] = c - 0x41 + 10
        elif 0x61 <= c <= 0x66:
            HEX_VALUE[c] = c - 0x61 + 10
        else:
            HEX_VALUE[c] = -1


_init_hex()


cdef inline str _latin1(const unsigned char* data, Py_ssize_t length):
    return PyUnicode_DecodeLatin1(<const char*>data, length, NULL)


cdef inline str _method(const unsigned char* value, Py_ssize_t length):
    """REQUEST_METHOD: shared constants for the common methods, else a latin-1 decode."""
    if length == 3 and memcmp(value, b"GET", 3) == 0:
        return "GET"
    if length == 4:
        if memcmp(value, b"POST", 4) == 0:
            return "POST"
        if memcmp(value, b"HEAD", 4) == 0:
            return "HEAD"
    return _latin1(value, length)


cdef str _make_http_key(const unsigned char* name, Py_ssize_t nlen):
    """``HTTP_`` + the name upper-cased with ``-`` -> ``_`` (an ASCII str)."""
    cdef Py_ssize_t i
    cdef unsigned char c
    key = PyUnicode_New(5 + nlen, 127)
    cdef unsigned char* out = <unsigned char*>PyUnicode_DATA(key)
    out[0] = b"H"
    out[1] = b"T"
    out[2] = b"T"
    out[3] = b"P"
    out[4] = b"_"
    for i in range(nlen):
        c = name[i]
        if c >= 0x80:  # validated names are ASCII; never build a broken str from others
            raise ValueError(f"non-ASCII header name {name[:nlen]!r}")
        if 0x61 <= c <= 0x7a:
            c -= 0x20
        elif c == 0x2d:
            c = 0x5f
        out[5 + i] = c
    return key


cdef object _http_key(object name, const unsigned char* data, Py_ssize_t nlen):
    cdef PyObject* cached = PyDict_GetItem(_http_keys, name)
    if cached is not NULL:
        return <object>cached
    key = _make_http_key(data, nlen)
    if len(_http_keys) < _http_keys_max:
        _http_keys[bytes(name)] = key
    return key


cdef void _fill_http_keys() except *:
    cdef bytes name
    for name in COMMON_FIELD_NAMES:
        _http_keys[name] = _make_http_key(<const unsigned char*>PyBytes_AS_STRING(name),
                                          PyBytes_GET_SIZE(name))


_fill_http_keys()


cdef str _percent_decoded_latin1(const unsigned char* data, Py_ssize_t length):
    """PATH_INFO: %XX sequences decoded to bytes, then latin-1 (as urllib's unquote_to_bytes:
    a ``%`` not followed by two hex digits stays as it is)."""
    cdef const unsigned char* first = <const unsigned char*>memchr(data, b"%", length)
    cdef unsigned char stack_buffer[512]
    cdef unsigned char* out
    cdef Py_ssize_t i, n = 0
    cdef signed char high, low
    if first is NULL:
        return _latin1(data, length)
    if length <= 512:
        stack_buffer[0] = 0  # (silences gcc's maybe-uninitialized: n >= 1 here)
        out = &stack_buffer[0]
    else:
        out = <unsigned char*>PyMem_Malloc(length)
        if out is NULL:
            raise MemoryError()
    try:
        i = 0
        while i < length:
            if data[i] == b"%" and i + 2 < length:
                high = HEX_VALUE[data[i + 1]]
                low = HEX_VALUE[data[i + 2]]
                if high >= 0 and low >= 0:
                    out[n] = <unsigned char>((high << 4) | low)
                    n += 1
                    i += 3
                    continue
            out[n] = data[i]
            n += 1
            i += 1
        return _latin1(out, n)
    finally:
        if out is not &stack_buffer[0]:
            PyMem_Free(out)


cdef int _append(dict env, object key, str value, str separator) except -1:
    """Set ``env[key]``, or join a repeated field onto the value already there."""
    cdef PyObject* existing = PyDict_GetItem(env, key)
    if existing is NULL:
        PyDict_SetItem(env, key, value)
    else:
        PyDict_SetItem(env, key, PyUnicode_Concat(PyUnicode_Concat(<object>existing, separator),
                                                  value))
    return 0


cdef inline bint _all_digits(const unsigned char* data, Py_ssize_t length) noexcept nogil:
    cdef Py_ssize_t i
    if length <= 0:
        return False
    for i in range(length):
        if data[i] < 0x30 or data[i] > 0x39:
            return False
    return True


cdef int _set_server(dict env, const unsigned char* a, Py_ssize_t alen) except -1:
    """SERVER_NAME/SERVER_PORT from an authority: host, host:port, [v6], [v6]:port."""
    cdef const unsigned char* host = a
    cdef Py_ssize_t host_len = alen, i, colons = 0, last_colon = -1
    cdef const unsigned char* port = NULL
    cdef Py_ssize_t port_len = 0
    cdef const unsigned char* close
    if alen > 0 and a[0] == b"[":
        close = <const unsigned char*>memchr(a, b"]", alen)
        if close is not NULL:
            host = a + 1
            host_len = close - host
            i = close - a + 1  # what follows "]"
            if i < alen and a[i] == b":" and _all_digits(a + i + 1, alen - i - 1):
                port = a + i + 1
                port_len = alen - i - 1
    else:
        for i in range(alen):
            if a[i] == b":":
                colons += 1
                last_colon = i
        if colons == 1:
            host_len = last_colon
            if _all_digits(a + last_colon + 1, alen - last_colon - 1):
                port = a + last_colon + 1
                port_len = alen - last_colon - 1
            elif last_colon + 1 != alen:  # "host:junk": not a port, keep it all as the name
                host_len = alen
    if host_len <= 0:
        return 0  # no host part: keep the socket's values
    env["SERVER_NAME"] = _latin1(host, host_len)
    if port is not NULL:
        env["SERVER_PORT"] = _latin1(port, port_len)
    else:
        scheme = env.get("wsgi.url_scheme")
        env["SERVER_PORT"] = "443" if scheme == "https" else "80"
    return 0


cdef dict build_environ_c(dict base, list headers, object wsgi_input):
    cdef dict env = base.copy()
    cdef Py_ssize_t i, nlen, vlen
    cdef object item  # a strong reference: the pointers below stay valid whatever runs
    cdef PyObject* name_obj
    cdef PyObject* value_obj
    cdef const unsigned char* name
    cdef const unsigned char* value
    cdef const unsigned char* query
    cdef object authority = None
    cdef object host = None
    cdef bint path_seen = False
    i = 0
    while i < PyList_GET_SIZE(headers):  # re-read: a bytes subclass's __hash__ could mutate it
        item = <object>PyList_GET_ITEM(headers, i)
        i += 1
        if not PyTuple_Check(item) or PyTuple_GET_SIZE(item) != 2:
            raise TypeError(f"header field must be a (name, value) tuple, not {item!r}")
        name_obj = PyTuple_GET_ITEM(item, 0)
        value_obj = PyTuple_GET_ITEM(item, 1)
        if not PyBytes_Check(<object>name_obj) or not PyBytes_Check(<object>value_obj):
            raise TypeError(f"header name and value must be bytes, not {item!r}")
        name = <const unsigned char*>PyBytes_AS_STRING(<object>name_obj)
        nlen = PyBytes_GET_SIZE(<object>name_obj)
        value = <const unsigned char*>PyBytes_AS_STRING(<object>value_obj)
        vlen = PyBytes_GET_SIZE(<object>value_obj)
        if nlen == 0:
            continue
        if name[0] == b":":
            if nlen == 5 and memcmp(name, b":path", 5) == 0:
                path_seen = True
                if vlen == 1 and value[0] == b"/":  # the most common path: no decoding
                    env["PATH_INFO"] = "/"
                    env["QUERY_STRING"] = ""
                    env["RAW_URI"] = "/"
                    env["REQUEST_URI"] = "/"
                    continue
                query = <const unsigned char*>memchr(value, b"?", vlen)
                if query is NULL:
                    env["PATH_INFO"] = _percent_decoded_latin1(value, vlen)
                    env["QUERY_STRING"] = ""
                else:
                    env["PATH_INFO"] = _percent_decoded_latin1(value, query - value)
                    env["QUERY_STRING"] = _latin1(query + 1, vlen - (query - value) - 1)
                raw_uri = _latin1(value, vlen)
                env["RAW_URI"] = raw_uri
                env["REQUEST_URI"] = raw_uri
            elif nlen == 7 and memcmp(name, b":method", 7) == 0:
                env["REQUEST_METHOD"] = _method(value, vlen)
            elif nlen == 10 and memcmp(name, b":authority", 10) == 0:
                authority = <object>value_obj
            continue  # :scheme (the connection decides wsgi.url_scheme), :protocol
        if memchr(name, b"_", nlen) is not NULL:
            continue  # X_Forwarded_For must not pass for X-Forwarded-For
        if nlen == 6 and memcmp(name, b"cookie", 6) == 0:
            _append(env, "HTTP_COOKIE", _latin1(value, vlen), "; ")
        elif nlen == 12 and memcmp(name, b"content-type", 12) == 0:
            _append(env, "CONTENT_TYPE", _latin1(value, vlen), ", ")
        elif nlen == 14 and memcmp(name, b"content-length", 14) == 0:
            if PyDict_GetItem(env, "CONTENT_LENGTH") is NULL:  # copies agree (validated)
                env["CONTENT_LENGTH"] = _latin1(value, vlen)
        else:
            if nlen == 4 and memcmp(name, b"host", 4) == 0 and host is None:
                host = <object>value_obj
            _append(env, _http_key(<object>name_obj, name, nlen), _latin1(value, vlen), ", ")
    if not path_seen:  # ordinary CONNECT
        env["PATH_INFO"] = ""
        env["QUERY_STRING"] = ""
        env["RAW_URI"] = ""
        env["REQUEST_URI"] = ""
    if authority is None:
        authority = host
    elif host is None:
        env["HTTP_HOST"] = _latin1(<const unsigned char*>PyBytes_AS_STRING(authority),
                                   PyBytes_GET_SIZE(authority))
    if authority is not None:
        _set_server(env, <const unsigned char*>PyBytes_AS_STRING(authority),
                    PyBytes_GET_SIZE(authority))
    env["wsgi.input"] = wsgi_input
    return env


def build_environ(dict base not None, headers, wsgi_input) -> dict:
    """The PEP 3333 environ of one request: ``base`` copied, plus the request's keys.

    ``headers`` is the validated request field list of ``(bytes, bytes)`` pairs; see
    :mod:`kyoukai_h2fast.wsgi.environ` for the keys and rules.
    """
    if type(headers) is not list:
        headers = list(headers)
    return build_environ_c(base, headers, wsgi_input)
