"""The drop-in public API of ``kyoukai.backends.http2``: names, signatures, meanings, run
in-process (asphalt component and standalone)."""
from __future__ import annotations

import asyncio
import inspect

import httpx
import pytest

import kyoukai_h2fast
from kyoukai_h2fast import (
    H2KyoukaiComponent,
    H2KyoukaiProtocol,
    H2State,
    create_wsgi_environment,
    get_header,
)
from kyoukai_h2fast.errors import BodyNotReadyError

pytestmark = pytest.mark.timeout(60)


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"in-process"]


def test_public_names_are_exported():
    for name in ("H2KyoukaiComponent", "H2KyoukaiProtocol", "H2State",
                 "create_wsgi_environment", "get_header", "serve", "start_server"):
        assert name in kyoukai_h2fast.__all__
        assert getattr(kyoukai_h2fast, name) is not None


def test_seed_signatures():
    sig = inspect.signature(H2KyoukaiComponent)
    params = list(sig.parameters.values())
    assert [p.name for p in params[:3]] == ["app", "ssl_keyfile", "ssl_certfile"]
    assert sig.parameters["ip"].kind is inspect.Parameter.KEYWORD_ONLY
    assert sig.parameters["ip"].default == "127.0.0.1"
    assert sig.parameters["port"].default == 4444
    assert list(inspect.signature(H2KyoukaiProtocol).parameters)[:2] == [
        "component", "parent_context"]
    assert list(inspect.signature(H2State).parameters) == ["headers", "stream_id", "protocol"]
    assert issubclass(H2KyoukaiProtocol, asyncio.Protocol)
    assert inspect.iscoroutinefunction(H2KyoukaiComponent.start)
    assert inspect.iscoroutinefunction(H2State.read_async)
    for method in ("read", "get_chunk", "insert_data", "start_response",
                   "get_response_headers"):
        assert callable(getattr(H2State, method))


def test_component_is_an_asphalt_component_when_asphalt_is_installed():
    from asphalt.core import Component

    assert issubclass(H2KyoukaiComponent, Component)
    component = H2KyoukaiComponent(hello, None, None, port=0)
    assert component.get_server_name().startswith("kyoukai_h2fast/")


def test_asphalt_context_start_serves_h2c():
    from asphalt.core import Context

    async def main():
        component = H2KyoukaiComponent(hello, None, None, ip="127.0.0.1", port=0)
        async with Context() as ctx:
            await component.start(ctx)
            async with httpx.AsyncClient(http1=False, http2=True) as client:
                r = await client.get(component.url + "/")
            await component.shutdown()
        return r

    r = asyncio.run(main())
    assert (r.status_code, r.content, r.http_version) == (200, b"in-process", "HTTP/2")


def test_protocol_state_lives_in_slots_and_extra_attributes_still_work():
    """Every attribute the protocol sets itself is a slot (the hot path reads and writes them
    per request); an attribute of a user's own still goes in the instance dict."""
    async def main():
        server = await kyoukai_h2fast.start_server(hello, "127.0.0.1", 0)
        try:
            async with httpx.AsyncClient(http1=False, http2=True) as client:
                r = await client.get(f"http://127.0.0.1:{server.port}/")
                (protocol,) = server.connections
                own = dict(vars(protocol))
                protocol.user_note = "mine"
                return r.status_code, own, protocol.user_note
        finally:
            await server.shutdown()

    status, own, note = asyncio.run(main())
    assert (status, own, note) == (200, {}, "mine")


def test_start_server_over_tls_with_ssl_context(tls_files):
    import ssl

    async def main():
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls_files[0], tls_files[1])
        server = await kyoukai_h2fast.start_server(hello, "127.0.0.1", 0, ssl=context)
        verify = ssl.create_default_context(cafile=tls_files[2])
        async with httpx.AsyncClient(http2=True, verify=verify) as client:
            r = await client.get(f"https://localhost:{server.port}/")
        await server.shutdown()
        return r

    r = asyncio.run(main())
    assert (r.status_code, r.content, r.http_version) == (200, b"in-process", "HTTP/2")


def test_get_header_matches_str_or_bytes_names():
    headers = [(b":path", b"/x"), (b"accept", b"*/*"), (b"accept", b"second")]
    assert get_header(headers, ":path") == b"/x"
    assert get_header(headers, b"accept") == b"*/*"
    assert get_header(headers, "missing") is None
    assert get_header([(":path", "/s")], ":path") == "/s"


class _FakeProtocol:
    """Just enough of the protocol for H2State used on its own (as the seed allowed)."""

    base_environ = None
    body_timeout = 5

    def __init__(self) -> None:
        import threading
        self.loop_thread = threading.get_ident()
        self.consumed = 0

    def body_consumed(self, state, n) -> None:
        self.consumed += n


def test_h2state_as_wsgi_input_and_create_wsgi_environment():
    protocol = _FakeProtocol()
    headers = [(b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"example.com:81"),
               (b":path", b"/a%20b?q=1"), (b"content-type", b"text/plain")]
    state = H2State(headers, 1, protocol)
    state.insert_data(b"line one\nline two\n")
    state.insert_data(b"tail")
    state.feed_eof()
    environ = create_wsgi_environment(state)
    assert type(environ) is dict
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["PATH_INFO"] == "/a b" and environ["QUERY_STRING"] == "q=1"
    assert environ["CONTENT_TYPE"] == "text/plain"
    assert environ["wsgi.input"] is state
    assert state.readline() == b"line one\n"
    assert state.read(4) == b"line"
    assert state.read() == b" two\ntail"
    assert state.read() == b""
    assert protocol.consumed == len(b"line one\nline two\ntail")


def test_h2state_read_on_loop_thread_never_blocks():
    protocol = _FakeProtocol()
    state = H2State([], 1, protocol)
    state.insert_data(b"partial")
    with pytest.raises(BodyNotReadyError):
        state.read()  # the body is not complete: a clear error, not a hang
    assert state.get_chunk() == b"partial"
    assert state.get_chunk() == b""


def test_h2state_start_response_and_response_headers():
    state = H2State([], 3, _FakeProtocol())
    write = state.start_response("404 Not Found", [("Content-Type", "text/plain")])
    assert callable(write)
    assert state.get_response_headers() == [(":status", "404"), ("Content-Type", "text/plain")]
    with pytest.raises(AssertionError):
        state.start_response("200 OK", [])
    try:
        raise KeyError("x")
    except KeyError:
        import sys
        state.start_response("500 Oops", [], sys.exc_info())  # allowed with exc_info
    assert state.get_response_headers()[0] == (":status", "500")


def test_h2state_read_async_waits_for_data():
    async def main():
        protocol = _FakeProtocol()
        protocol.loop = asyncio.get_running_loop()
        state = H2State([], 1, protocol)
        reader = asyncio.ensure_future(state.read_async())
        await asyncio.sleep(0.01)
        assert not reader.done()
        state.insert_data(b"abc")
        await asyncio.sleep(0.01)
        state.insert_data(b"def")
        state.feed_eof()
        return await reader

    assert asyncio.run(main()) == b"abcdef"


def test_config_rejects_bad_values_with_config_error():
    from kyoukai_h2fast import ServerConfig
    from kyoukai_h2fast.errors import ConfigError

    with pytest.raises(ConfigError, match="stream-window"):
        ServerConfig(stream_window=0).validate()
    with pytest.raises(ConfigError, match="together"):
        H2KyoukaiComponent(hello, None, "cert.pem")

