"""The one-pass reader of common request heads (``parse_head``) and the response head writer
(``response_head``): the compiled module and its pure twin agree, and what ``parse_head``
accepts the full parser (httptools, RFC 9112 §2-§5) reads the same way, so skipping it changes
nothing. Hypothesis draws heads from a grammar that mixes valid and invalid pieces.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kyoukai_h2fast import _switch
from kyoukai_h2fast.config import ServerConfig
from kyoukai_h2fast.http1.parser import RequestReader
from tests.helpers.builds import implementations

LIMIT = 64 * 1024
H2LOAD = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:29999\r\nuser-agent: h2load nghttp2/1.52.0\r\n\r\n"

pytestmark = pytest.mark.timeout(120)

# (valid pieces repeated: most drawn heads are valid, so that the fast path takes many)
_METHODS = [b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"] * 3 + [
    b"CONNECT", b"TRACE", b"get", b"FOO", b""]
_VERSIONS = [b"HTTP/1.1"] * 6 + [b"HTTP/1.0"] * 3 + [b"HTTP/2.0", b"HTTP/1.2", b"http/1.1",
                                                     b"HTTP/1.1 "]
_NAMES = [b"User-Agent", b"Accept", b"Connection", b"connection", b"X-A", b"Cookie"] * 3 + [
    b"Host", b"host", b"HOST", b"Content-Length", b"Transfer-Encoding", b"Expect", b"Upgrade",
    b"Proxy-Connection", b"X_Under", b"X-Token!#$%&'*+-.^_`|~", b"bad name", b"", b"Hos t"]
_VALUES = [b"close", b"Close", b"keep-alive", b"Keep-Alive", b"upgrade", b"close, keep-alive",
           b"0", b"5", b"chunked", b"100-continue", b"example.com", b"a\tb", b"", b" ",
           b"x ", b"\tx", b"text/html; q=0.9", b"\x7f", b"caf\xe9", b"a\x00b", b"h2c"]
_SEPARATORS = [b": "] * 4 + [b":", b":  ", b" : ", b":\t"]
_ENDS = [b"\r\n"] * 12 + [b"\n"]

_target_char = st.sampled_from([bytes([c]) for c in range(0x21, 0x7F)]
                               + [b"#", b" ", b"\t", b"\x7f", b"\x80", b"\xff", b"%2F", b"?"])
targets = st.one_of(
    st.lists(_target_char, max_size=12).map(lambda parts: b"/" + b"".join(parts)),
    st.sampled_from([b"*", b"http://example.com/a?b", b"example.com:443", b"", b"/"]))
_valid_value = st.from_regex(rb"\A[!-~\x80-\xff]([ -~\t\x80-\xff]{0,10}[!-~\x80-\xff])?\Z")
field_values = st.one_of(
    _valid_value, _valid_value, _valid_value,
    st.sampled_from(_VALUES),
    st.binary(max_size=6),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
    .map(lambda t: t.encode("ascii")))
fields = st.tuples(st.sampled_from(_NAMES), st.sampled_from(_SEPARATORS), field_values,
                   st.sampled_from(_ENDS))


@st.composite
def request_heads(draw) -> bytes:
    line = b"%s %s %s" % (draw(st.sampled_from(_METHODS)), draw(targets),
                          draw(st.sampled_from(_VERSIONS)))
    parts = [line, draw(st.sampled_from(_ENDS))]
    if draw(st.integers(0, 3)):  # mostly one Host, as real clients send
        parts.append(b"Host: example.com\r\n")
    for name, sep, value, end in draw(st.lists(fields, max_size=3)):
        parts += [name, sep, value, end]
    parts.append(draw(st.sampled_from([b"\r\n"] * 12 + [b"\n", b"", b"\r\nGET / HTTP/1.1\r\n",
                                                        b"\r\n\r\n", b"\r\nxyz"])))
    return b"".join(parts)


@st.composite
def common_heads(draw) -> bytes:
    """Heads of the kind the fast path takes (with the variations it must read right)."""
    target = b"/" + draw(st.from_regex(rb"\A[!-\"$-~]{0,15}\Z"))
    parts = [draw(st.sampled_from(_METHODS[:7])), b" ", target, b" ",
             draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"])), b"\r\n"]
    names = st.one_of(st.sampled_from([b"Host", b"hOsT", b"Connection", b"Accept", b"Cookie"]),
                      st.from_regex(rb"\A[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}\Z"))
    for _ in range(draw(st.integers(0, 4))):
        name = draw(names)
        if name.lower() == b"connection":
            value = draw(st.sampled_from([b"close", b"keep-alive", b"Keep-Alive", b"CLOSE"]))
        else:
            value = draw(_valid_value)
        parts += [name, b":", draw(st.sampled_from([b"", b" ", b"\t ", b"   "])), value,
                  b"\r\n"]
    parts.append(b"\r\n")
    return b"".join(parts)


# -- the compiled module and its twin agree -------------------------------------------------
def test_both_builds_are_compared():
    names = [p.id for p in implementations("http1")]
    assert "pure" in names
    if not _switch.NO_EXTENSIONS:
        assert "compiled" in names


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(request_heads(), common_heads()), st.sampled_from([LIMIT, 60, 200]))
@example(H2LOAD, LIMIT)
@example(b"GET / HTTP/1.0\r\n\r\n", LIMIT)
def test_parse_head_compiled_and_pure_twin_agree(data, limit):
    pure = _switch.pure("http1")
    compiled = _switch.compiled("http1")
    if compiled is None:
        pytest.skip("the compiled module is not built (pure build)")
    assert compiled.parse_head(data, limit) == pure.parse_head(data, limit)


# -- what the fast path accepts, the full parser reads the same way -----------------------
class _Sink:
    """A RequestReader owner that keeps the exchanges it is told about."""

    keeps_records = False

    def __init__(self) -> None:
        self.received: list = []
        self.complete: list = []

    def request_received(self, ex) -> None:
        self.received.append(ex)

    def request_body(self, ex, data) -> None:
        raise AssertionError("a head the fast path accepts has no body")

    def request_complete(self, ex) -> None:
        self.complete.append(ex)


def _full_parser(data: bytes, limit: int):
    sink = _Sink()
    reader = RequestReader(sink, ServerConfig(max_header_list_size=max(limit, 1024)))
    rejected = reader.feed(data)
    return rejected, sink


@pytest.mark.parametrize("impl", implementations("http1"))
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(request_heads(), common_heads()))
@example(data=H2LOAD)
@example(data=b"GET /a?b=c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
@example(data=b"OPTIONS /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
def test_what_parse_head_accepts_httptools_reads_the_same_rfc9112_3_5(impl, data):
    parsed = impl.parse_head(data, LIMIT)
    if parsed is None:
        return  # the full parser's business: its own tests cover it
    headers, method, target, http10, keep_alive = parsed
    rejected, sink = _full_parser(data, LIMIT)
    assert rejected is None
    assert len(sink.received) == 1 and sink.complete == sink.received
    ex = sink.received[0]
    assert ex.state.headers == headers
    assert (ex.method, ex.target, ex.http10, ex.keep_alive) == (method, target, http10,
                                                                keep_alive)
    assert ex.body_done and not ex.expect_continue and not ex.reject


@pytest.mark.parametrize("impl", implementations("http1"))
@pytest.mark.parametrize("data", [
    H2LOAD,
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"HEAD /x?y HTTP/1.1\r\nhost: a\r\nAccept: */*\r\nCookie: a=b; c=d\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n",   # obs-text (RFC 9110 §5.5)
])
def test_common_heads_take_the_fast_path(impl, data):
    parsed = impl.parse_head(data, LIMIT)
    assert parsed is not None
    assert parsed[0][0] == (b":method", data.split(b" ", 1)[0])


@pytest.mark.parametrize("impl", implementations("http1"))
@pytest.mark.parametrize("data", [
    H2LOAD[:-2],                                          # incomplete
    H2LOAD + H2LOAD,                                      # pipelined: the full parser
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",                            # no Host: 400 there
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",      # two: 400 there
    b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",                 # 505 there
    b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",         # 501 there
    b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",         # absolute form
    b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",      # obs-fold: 400 there
    b"GET / HTTP/1.1\nHost: a\n\n",                       # bare LF
    b"GET /#f HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",                # whitespace before the colon
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n",     # DEL
])
def test_other_heads_go_to_the_full_parser(impl, data):
    assert impl.parse_head(data, LIMIT) is None


@pytest.mark.parametrize("impl", implementations("http1"))
def test_the_header_section_limit_leaves_big_heads_to_the_full_parser_rfc6585_5(impl):
    data = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"x" * 2000 + b"\r\n\r\n"
    assert impl.parse_head(data, 2000) is None
    assert impl.parse_head(data, 4000) is not None
    rejected, _ = _full_parser(data, 1024)
    assert rejected is not None and rejected[0] == 431


# -- response heads: compiled and twin agree --------------------------------------------------
_STATUSES = ["200 OK", "204 No Content", "304 Not Modified", "101 Switching Protocols",
             "404 Not Found", "500 Oops", "200", "20 OK", "abc", "200 O\r\nK", "999 X"]
_APP_NAMES = ["Content-Type", "content-length", "Content-Length", "Connection", "X-A",
              "Date", "Server", "Transfer-Encoding", "Keep-Alive", "bad name", "Set-Cookie"]
_APP_VALUES = ["text/plain", "13", "0", "close", "keep-alive", "x", "", "1x", "a\r\nb",
               "Close, upgrade"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_STATUSES),
       st.lists(st.tuples(st.sampled_from(_APP_NAMES), st.sampled_from(_APP_VALUES)),
                max_size=5),
       st.booleans(), st.booleans(), st.booleans(),
       st.sampled_from([None, 0, 13, 100]))
def test_response_head_compiled_and_pure_twin_agree_rfc9112_6(status, app_headers, http10,
                                                             is_head, keep_alive, body_size):
    compiled = _switch.compiled("http1")
    if compiled is None:
        pytest.skip("the compiled module is not built (pure build)")
    outcomes = []
    for impl in (_switch.pure("http1"), compiled):
        try:
            head, framing = impl.response_head(status, app_headers, http10=http10,
                                               is_head=is_head, keep_alive=keep_alive,
                                               body_size=body_size)
        except (TypeError, ValueError) as e:
            outcomes.append(type(e))
        else:
            # (the date field may tick between the two calls)
            lines = [ln for ln in head.split(b"\r\n") if not ln.startswith(b"date: ")]
            outcomes.append((lines, framing.status, framing.length, framing.chunked,
                             framing.no_body, framing.keep_alive))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("impl", implementations("http1"))
def test_response_head_is_the_status_line_fields_and_framing_rfc9112_4(impl):
    head, framing = impl.response_head("200 OK", [("Content-Type", "text/plain")],
                                       http10=False, is_head=False, keep_alive=True,
                                       body_size=13)
    assert head.startswith(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ndate: ")
    assert head.endswith(b"\r\ncontent-length: 13\r\n\r\n")
    assert (framing.status, framing.length, framing.chunked, framing.keep_alive) == (
        200, 13, False, True)
    head, framing = impl.response_head("200 OK", [], http10=True, is_head=False,
                                       keep_alive=True, body_size=None)
    assert head.endswith(b"connection: close\r\n\r\n") and not framing.keep_alive
    head, framing = impl.response_head("200 OK", [], http10=False, is_head=False,
                                       keep_alive=True, body_size=None)
    assert head.endswith(b"transfer-encoding: chunked\r\n\r\n") and framing.chunked
    with pytest.raises(ValueError):
        impl.response_head("200 O\nK", [], http10=False, is_head=False, keep_alive=True,
                           body_size=None)


# -- the connection: which requests skip the full parser ------------------------------------
class _Transport:
    """What H1Protocol writes, in memory; never pauses."""

    def __init__(self) -> None:
        self.out = b""
        self.closed = False

    def write(self, data) -> None:
        self.out += bytes(data)

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 4444)}.get(
            name, default)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["REQUEST_METHOD"].encode() + b" " + environ["PATH_INFO"].encode()]


@pytest.fixture
def connection(monkeypatch):
    """An H1Protocol with an inline WSGI app on an in-memory transport; ``fed`` lists what
    reached the full parser."""
    import asyncio

    from kyoukai_h2fast import H2KyoukaiComponent
    from kyoukai_h2fast.http1.protocol import H1Protocol

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    component = H2KyoukaiComponent(_hello, None, None, wsgi_threads=0, idle_timeout=0)
    component.runner.start()
    protocol = H1Protocol(component, None)
    transport = _Transport()
    protocol.connection_made(transport)
    fed: list = []
    real_feed = protocol._reader.feed

    def feed(data):
        fed.append(data)
        return real_feed(data)

    monkeypatch.setattr(protocol._reader, "feed", feed)
    try:
        yield protocol, transport, fed
    finally:
        protocol.connection_lost(None)
        asyncio.set_event_loop(None)
        loop.close()


def test_common_requests_are_served_without_the_full_parser_rfc9112_9_3(connection):
    protocol, transport, fed = connection
    for _ in range(3):
        protocol.data_received(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    assert fed == []
    assert transport.out.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert transport.out.endswith(b"content-length: 6\r\n\r\nGET /x")
    assert protocol.requests_received == 3 and not transport.closed
    protocol.data_received(b"HEAD / HTTP/1.0\r\n\r\n")  # HTTP/1.0 without keep-alive: close
    assert fed == [] and transport.closed
    assert transport.out.endswith(b"connection: close\r\n\r\n")  # (no body for HEAD)


def test_other_requests_reach_the_full_parser_and_get_the_same_answers(connection):
    protocol, transport, fed = connection
    pipelined = b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n"
    protocol.data_received(pipelined)
    protocol.data_received(b"GET /c HTTP/1.1\r\nHo")  # a head split over reads
    protocol.data_received(b"st: a\r\n\r\n")
    assert fed == [pipelined, b"GET /c HTTP/1.1\r\nHo", b"st: a\r\n\r\n"]
    assert transport.out.count(b"HTTP/1.1 200 OK\r\n") == 3
    bodies = [transport.out.index(b"\r\n\r\nGET /" + p) for p in (b"a", b"b", b"c")]
    assert bodies == sorted(bodies) and transport.out.endswith(b"GET /c")  # in order
    protocol.data_received(b"GET / HTTP/1.1\r\n\r\n")  # no Host: the full parser's 400
    assert fed[-1] == b"GET / HTTP/1.1\r\n\r\n"
    assert b"HTTP/1.1 400 Bad Request\r\n" in transport.out and transport.closed
