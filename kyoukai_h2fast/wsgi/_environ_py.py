"""Pure-Python twin of :mod:`kyoukai_h2fast._environ_c`: ``build_environ`` (PEP 3333).

Owns the same thing as the compiled module: the per-request environ keys, added to a copy of
the per-connection base environ (:func:`kyoukai_h2fast.wsgi.environ.make_base_environ`). The rules
are documented in :mod:`kyoukai_h2fast.wsgi.environ`. The two constants it shares with the
compiled module are in :mod:`kyoukai_h2fast.wsgi.environ_keys`.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

from .environ_keys import COMMON_FIELD_NAMES, HTTP_KEY_CACHE_MAX

__all__ = ["build_environ"]


def _make_http_key(name: bytes) -> str:
    # ValueError (UnicodeDecodeError) for a non-ASCII name, as the compiled module.
    return "HTTP_" + name.decode("ascii").upper().replace("-", "_")


_http_keys: dict[bytes, str] = {name: _make_http_key(name) for name in COMMON_FIELD_NAMES}


def _append(env: dict, key: str, value: str, separator: str) -> None:
    existing = env.get(key)
    env[key] = value if existing is None else existing + separator + value


def _set_server(env: dict, authority: bytes) -> None:
    """SERVER_NAME/SERVER_PORT from an authority: host, host:port, [v6], [v6]:port."""
    host, port = authority, None
    if authority[:1] == b"[":
        close = authority.find(b"]")
        if close != -1:
            host = authority[1:close]
            rest = authority[close + 1:]
            if rest[:1] == b":" and rest[1:].isdigit():
                port = rest[1:]
    elif authority.count(b":") == 1:
        name, _, digits = authority.partition(b":")
        if digits.isdigit():
            host, port = name, digits
        elif not digits:
            host = name
    if not host:
        return  # no host part: keep the socket's values
    env["SERVER_NAME"] = host.decode("latin-1")
    if port is not None:
        env["SERVER_PORT"] = port.decode("latin-1")
    else:
        env["SERVER_PORT"] = "443" if env.get("wsgi.url_scheme") == "https" else "80"


def build_environ(base: dict[str, Any], headers: Iterable[tuple[bytes, bytes]],
                  wsgi_input: Any) -> dict[str, Any]:
    """The PEP 3333 environ of one request: ``base`` copied, plus the request's keys.

    ``headers`` is the validated request field list of ``(bytes, bytes)`` pairs; see
    :mod:`kyoukai_h2fast.wsgi.environ` for the keys and rules.
    """
    if not isinstance(base, dict):
        raise TypeError(f"base environ must be a dict, not {type(base).__name__}")
    env = base.copy()
    keys = _http_keys
    authority = host = None
    path_seen = False
    for field in headers:
        if not isinstance(field, tuple) or len(field) != 2:
            raise TypeError(f"header field must be a (name, value) tuple, not {field!r}")
        name, value = field
        if not isinstance(name, bytes) or not isinstance(value, bytes):
            raise TypeError(f"header name and value must be bytes, not {field!r}")
        if not name:
            continue
        if name[0] == 0x3A:  # b":"
            if name == b":path":
                path_seen = True
                path, sep, query = value.partition(b"?")
                env["PATH_INFO"] = unquote_to_bytes(path).decode("latin-1")
                env["QUERY_STRING"] = query.decode("latin-1")
                env["RAW_URI"] = env["REQUEST_URI"] = value.decode("latin-1")
            elif name == b":method":
                env["REQUEST_METHOD"] = value.decode("latin-1")
            elif name == b":authority":
                authority = value
            continue  # :scheme (the connection decides wsgi.url_scheme), :protocol
        if b"_" in name:
            continue  # X_Forwarded_For must not pass for X-Forwarded-For
        if name == b"cookie":
            _append(env, "HTTP_COOKIE", value.decode("latin-1"), "; ")
        elif name == b"content-type":
            _append(env, "CONTENT_TYPE", value.decode("latin-1"), ", ")
        elif name == b"content-length":
            if "CONTENT_LENGTH" not in env:  # copies agree (validated)
                env["CONTENT_LENGTH"] = value.decode("latin-1")
        else:
            if name == b"host" and host is None:
                host = value
            key = keys.get(name)
            if key is None:
                key = _make_http_key(name)
                if len(keys) < HTTP_KEY_CACHE_MAX:
                    keys[bytes(name)] = key
            _append(env, key, value.decode("latin-1"), ", ")
    if not path_seen:  # ordinary CONNECT
        env["PATH_INFO"] = env["QUERY_STRING"] = env["RAW_URI"] = env["REQUEST_URI"] = ""
    if authority is None:
        authority = host
    elif host is None:
        env["HTTP_HOST"] = authority.decode("latin-1")
    if authority is not None:
        _set_server(env, authority)
    env["wsgi.input"] = wsgi_input
    return env
