"""The ASGI scope built straight from a request's fields (no WSGI environ: the hot path when no
trusted proxy headers apply) is the scope built from the WSGI environ of the same request."""
from __future__ import annotations

import sys

import pytest

from kyoukai_h2fast.asgi.scope import build_scope, build_scope_direct, server_address
from kyoukai_h2fast.wsgi.environ import build_environ, make_base_environ

H2 = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"example.com:8080"),
      (b":path", b"/a/b?x=1&y=%20")]

REQUESTS = {
    "h2 authority only": H2 + [(b"accept", b"*/*")],
    "h2 host and authority": H2 + [(b"host", b"other.example"), (b"x-a", b"1")],
    "percent-encoded utf-8 path": [(b":method", b"POST"), (b":path", b"/caf%C3%A9/%2F?q")],
    "raw utf-8 path": [(b":method", b"GET"), (b":path", "/café".encode())],
    "invalid utf-8 escape": [(b":method", b"HEAD"), (b":path", b"/%FF%FE")],
    "no query": [(b":method", b"GET"), (b":path", b"/"), (b"host", b"h")],
    "CONNECT without path": [(b":method", b"CONNECT"), (b":authority", b"proxy.example:443")],
    "fields with underscores and repeats": [(b":method", b"GET"), (b":path", b"/"),
                                            (b"x_y", b"1"), (b"cookie", b"a=1"),
                                            (b"cookie", b"b=2")],
}


def _base(protocol: str, scheme: str, peer: object) -> dict:
    base = make_base_environ(url_scheme=scheme, server_addr=("127.0.0.1", 8443),
                             peer_addr=peer, multithread=False, errors=sys.stderr)
    base["SERVER_PROTOCOL"] = protocol
    return base


@pytest.mark.parametrize("protocol", ["HTTP/2", "HTTP/1.1", "HTTP/1.0"])
@pytest.mark.parametrize("scheme,peer", [("http", ("10.0.0.7", 51000)), ("https", ""),
                                         ("http", ("::1", 1, 0, 0))])
@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_direct_scope_equals_the_scope_from_the_environ(name: str, protocol: str,
                                                        scheme: str, peer: object) -> None:
    headers = REQUESTS[name]
    base = _base(protocol, scheme, peer)
    lifespan_state = {"db": object()}
    environ = build_environ(dict(base), headers, None)
    expected = build_scope(environ, headers, lifespan_state, server_address(base))
    for _ in range(2):  # the second time from the connection's cached parts
        scope = build_scope_direct(headers, base, lifespan_state)
        assert scope == expected
        assert scope["state"] is not lifespan_state


def test_direct_scope_state_is_a_copy_per_request() -> None:
    base = _base("HTTP/2", "http", ("127.0.0.1", 1))
    lifespan_state: dict = {}
    first = build_scope_direct(REQUESTS["no query"], base, lifespan_state)
    first["state"]["x"] = 1
    assert build_scope_direct(REQUESTS["no query"], base, lifespan_state)["state"] == {}
    assert lifespan_state == {}
