"""Request/trailer header validation (RFC 9113 §8.2, §8.3) and response field lists.

Every test runs on the compiled module and its pure twin. The reference is ``h2`` itself:
``h2.utilities.validate_headers`` (server side, request or trailer flags) plus
``h2.stream.H2Stream._initialize_content_length``, which is what ``h2`` would have checked had
the server left ``validate_inbound_headers`` on. Whatever ``h2`` rejects we must reject; what it
accepts we must accept, except for our documented extra checks (``:path`` form, oversized
``content-length``), asserted by reason.
"""
from __future__ import annotations

import sys

import pytest
from h2.config import H2Configuration
from h2.exceptions import ProtocolError
from h2.stream import H2Stream
from h2.utilities import HeaderValidationFlags, validate_headers
from hpack.struct import HeaderTuple, NeverIndexedHeaderTuple
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kyoukai_h2fast.errors import MalformedRequestError
from tests.helpers.builds import implementations

REQUEST_FLAGS = HeaderValidationFlags(
    is_client=False, is_trailer=False, is_response_header=False, is_push_promise=False)
TRAILER_FLAGS = HeaderValidationFlags(
    is_client=False, is_trailer=True, is_response_header=False, is_push_promise=False)


@pytest.fixture(scope="module", params=implementations("headers"))
def impl(request):
    return request.param


# ---- the reference ----------------------------------------------------------------------------

def h2_rejects(headers: list, is_trailer: bool = False) -> ProtocolError | None:
    """The error h2 raises for this block (header validation + content-length), or None."""
    try:
        list(validate_headers(headers, TRAILER_FLAGS if is_trailer else REQUEST_FLAGS))
        stream = H2Stream(1, H2Configuration(client_side=False), 65535, 65535)
        stream._initialize_content_length(headers)
    except ProtocolError as error:
        return error
    return None


def h2_content_length(headers: list) -> int:
    stream = H2Stream(1, H2Configuration(client_side=False), 65535, 65535)
    stream._initialize_content_length(headers)
    length = stream._expected_content_length
    return -1 if length is None else length


def extra_check_reason(headers: list) -> str | None:
    """Which of our documented extra checks (stricter than h2) this block fails, if any: a
    pattern of the error's message (either reason when it fails both: the first one found
    is reported)."""
    fields = dict(reversed(headers))  # first occurrence wins
    reasons = []
    path = fields.get(b":path")
    if path is not None and not (path.startswith(b"/")
                                 or (path == b"*" and fields.get(b":method") == b"OPTIONS")):
        reasons.append(":path")
    for name, value in headers:
        if name == b"content-length" and value.isdigit() and int(value) > sys.maxsize:
            reasons.append("too large")
            break
    return "|".join(reasons) or None


def assert_agrees_with_h2(impl, headers: list) -> None:
    reference = h2_rejects(headers)
    if reference is not None:
        with pytest.raises(MalformedRequestError):
            impl.validate_request_headers(headers)
        return
    reason = extra_check_reason(headers)
    if reason is not None:
        with pytest.raises(MalformedRequestError, match=reason):
            impl.validate_request_headers(headers)
        return
    assert impl.validate_request_headers(headers) == h2_content_length(headers)


def assert_trailers_agree_with_h2(impl, headers: list) -> None:
    if h2_rejects(headers, is_trailer=True) is not None:
        with pytest.raises(MalformedRequestError):
            impl.validate_trailers(headers)
    elif extra_check_reason([h for h in headers if h[0] == b"content-length"]):
        with pytest.raises(MalformedRequestError, match="too large"):
            impl.validate_trailers(headers)
    else:
        assert impl.validate_trailers(headers) is None


# ---- named cases: one per rule ---------------------------------------------------------------

GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/index.html"),
       (b":authority", b"example.com"), (b"accept", b"*/*")]


def with_field(name: bytes, value: bytes, block=GET) -> list:
    return list(block) + [(name, value)]


def replaced(name: bytes, value: bytes | None, block=GET) -> list:
    """``block`` with field ``name`` given ``value`` (None: removed)."""
    return [(n, value if n == name else v) for n, v in block if n != name or value is not None]


REJECTED = {
    # RFC 9113 §8.2.1: field names
    "8.2.1 uppercase name": with_field(b"Accept-Language", b"en"),
    "8.2.1 uppercase pseudo name": [(b":Method", b"GET")] + GET[1:],
    "8.2.1 space in name": with_field(b"x y", b"1"),
    "8.2.1 control char in name": with_field(b"x\x01", b"1"),
    "8.2.1 DEL in name": with_field(b"x\x7f", b"1"),
    "8.2.1 non-ASCII in name": with_field(b"caf\xe9", b"1"),
    "8.2.1 colon inside name": with_field(b"x:y", b"1"),
    "8.2.1 empty name": with_field(b"", b"1"),
    # RFC 9113 §8.2.1: field values
    "8.2.1 NUL in value": with_field(b"x", b"a\x00b"),
    "8.2.1 CR in value": with_field(b"x", b"a\rb"),
    "8.2.1 LF in value": with_field(b"x", b"a\nb"),
    "8.2.1 leading space in value": with_field(b"x", b" a"),
    "8.2.1 trailing HTAB in value": with_field(b"x", b"a\t"),
    "8.2.1 value only whitespace": with_field(b"x", b" "),
    # RFC 9113 §8.2.2: connection-specific fields and te
    "8.2.2 connection": with_field(b"connection", b"keep-alive"),
    "8.2.2 proxy-connection": with_field(b"proxy-connection", b"close"),
    "8.2.2 keep-alive": with_field(b"keep-alive", b"timeout=5"),
    "8.2.2 transfer-encoding": with_field(b"transfer-encoding", b"chunked"),
    "8.2.2 upgrade": with_field(b"upgrade", b"h2c"),
    "8.2.2 te other than trailers": with_field(b"te", b"gzip"),
    "8.2.2 te trailers plus more": with_field(b"te", b"trailers, gzip"),
    # RFC 9113 §8.3: pseudo-headers
    "8.3 duplicate :method": [(b":method", b"GET")] + GET,
    "8.3 duplicate :path": with_field(b":path", b"/b", GET[:4]),
    "8.3 pseudo after regular": GET + [(b":path", b"/again")],
    "8.3 pseudo after regular (only copy)": [GET[0], GET[1], GET[3], GET[4], GET[2]],
    "8.3 unknown pseudo": with_field(b":foo", b"x", GET[:4]),
    "8.3 bare colon pseudo": with_field(b":", b"x", GET[:4]),
    "8.3 :status in request": [(b":status", b"200")] + GET,
    "8.3.1 missing :method": replaced(b":method", None),
    "8.3.1 missing :scheme": replaced(b":scheme", None),
    "8.3.1 missing :path": replaced(b":path", None),
    "8.3.1 empty :path": replaced(b":path", b""),
    "8.5 CONNECT with :path": replaced(b":method", b"CONNECT"),
    "8.5 CONNECT with :scheme": [(b":method", b"CONNECT"), (b":scheme", b"https"),
                                 (b":authority", b"example.com:443")],
    "RFC 8441 :protocol without CONNECT": with_field(b":protocol", b"websocket", GET[:4]),
    "RFC 8441 extended CONNECT without :path": [
        (b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
        (b":authority", b"example.com")],
    "8.3.1 neither :authority nor host": replaced(b":authority", None),
    "8.3.1 host differs from :authority": with_field(b"host", b"other.example"),
    "8.3.1 two host fields": replaced(b":authority", None) + [(b"host", b"a"), (b"host", b"a")],
    # RFC 9110 §8.6 content-length, as h2's stream checks it
    "content-length not digits": with_field(b"content-length", b"12a"),
    "content-length signed": with_field(b"content-length", b"+5"),
    "content-length empty": with_field(b"content-length", b""),
    "content-length list": with_field(b"content-length", b"5, 5"),
    "content-length conflicting": with_field(b"content-length", b"6", with_field(
        b"content-length", b"5")),
}

# Our extra checks: h2 accepts these blocks; we reject them, for the reason given.
STRICTER = {
    "8.3.1 :path not origin-form": (replaced(b":path", b"index.html"), ":path"),
    "8.3.1 :path absolute URI": (replaced(b":path", b"https://example.com/"), ":path"),
    "8.3.1 :path * without OPTIONS": (replaced(b":path", b"*"), ":path"),
    "content-length above sys.maxsize": (
        with_field(b"content-length", str(sys.maxsize + 1).encode()), "too large"),
}

ACCEPTED = {
    "plain GET": (GET, -1),
    "host alone": (replaced(b":authority", None) + [(b"host", b"example.com")], -1),
    "host equal to :authority": (with_field(b"host", b"example.com"), -1),
    "te trailers any case": (with_field(b"te", b"TrAiLeRs"), -1),
    "empty value": (with_field(b"x-empty", b""), -1),
    "inner whitespace in value": (with_field(b"x", b"a \t b"), -1),
    "non-ASCII value bytes": (with_field(b"x", b"caf\xe9\x80\xff"), -1),
    "content-length": (with_field(b"content-length", b"42"), 42),
    "content-length leading zeros": (with_field(b"content-length", b"007"), 7),
    "content-length repeated equal": (
        with_field(b"content-length", b"5", with_field(b"content-length", b"5")), 5),
    "content-length sys.maxsize": (with_field(b"content-length", str(sys.maxsize).encode()),
                                   sys.maxsize),
    "OPTIONS *": (replaced(b":path", b"*", replaced(b":method", b"OPTIONS")), -1),
    "ordinary CONNECT": ([(b":method", b"CONNECT"), (b":authority", b"example.com:443")], -1),
    "extended CONNECT": ([(b":method", b"CONNECT"), (b":protocol", b"websocket"),
                          (b":scheme", b"https"), (b":path", b"/chat"),
                          (b":authority", b"example.com")], -1),
    "HeaderTuple fields": ([HeaderTuple(n, v) for n, v in GET]
                           + [NeverIndexedHeaderTuple(b"authorization", b"Bearer x")], -1),
    "cookie crumbs": (with_field(b"cookie", b"b=2", with_field(b"cookie", b"a=1")), -1),
}


@pytest.mark.parametrize("headers", list(REJECTED.values()), ids=list(REJECTED))
def test_rfc9113_rule_rejects_like_h2(impl, headers):
    assert h2_rejects(headers) is not None, "h2 itself accepts this case: fix the table"
    with pytest.raises(MalformedRequestError):
        impl.validate_request_headers(headers)


@pytest.mark.parametrize("headers,reason", list(STRICTER.values()), ids=list(STRICTER))
def test_documented_extra_check_rejects_what_h2_accepts(impl, headers, reason):
    assert h2_rejects(headers) is None
    with pytest.raises(MalformedRequestError, match=reason):
        impl.validate_request_headers(headers)


@pytest.mark.parametrize("headers,length", list(ACCEPTED.values()), ids=list(ACCEPTED))
def test_valid_request_accepted_with_content_length(impl, headers, length):
    assert h2_rejects(headers) is None
    assert impl.validate_request_headers(headers) == length
    assert impl.validate_request_headers(iter(headers)) == length  # any iterable


def test_malformed_request_is_a_stream_protocol_error(impl):
    with pytest.raises(ProtocolError) as info:  # h2's class: the engine resets the stream
        impl.validate_request_headers(with_field(b"connection", b"close"))
    assert info.value.error_code == 0x1  # PROTOCOL_ERROR


def test_non_bytes_fields_are_a_type_error(impl):
    with pytest.raises(TypeError):
        impl.validate_request_headers([(":method", "GET")] + GET[1:])
    with pytest.raises((TypeError, ValueError)):
        impl.validate_request_headers([(b":method",)] + GET[1:])


TRAILERS_REJECTED = {
    "8.1 pseudo-header in trailers": [(b":path", b"/")],
    "8.1 :status in trailers": [(b":status", b"200")],
    "8.2.1 uppercase trailer name": [(b"Grpc-Status", b"0")],
    "8.2.1 CR in trailer value": [(b"x", b"a\rb")],
    "8.2.1 empty trailer name": [(b"", b"x")],
    "8.2.2 connection in trailers": [(b"x", b"1"), (b"connection", b"close")],
    "8.2.2 te gzip in trailers": [(b"te", b"gzip")],
    "content-length syntax in trailers": [(b"content-length", b"x")],
}


@pytest.mark.parametrize("headers", list(TRAILERS_REJECTED.values()),
                         ids=list(TRAILERS_REJECTED))
def test_trailer_rule_rejects_like_h2(impl, headers):
    assert h2_rejects(headers, is_trailer=True) is not None
    with pytest.raises(MalformedRequestError):
        impl.validate_trailers(headers)


def test_trailers_skip_request_rules(impl):
    # no :authority/host, several host fields: request-only rules (h2 skips them too)
    headers = [(b"grpc-status", b"0"), (b"host", b"a"), (b"host", b"b"), (b"x", b"")]
    assert h2_rejects(headers, is_trailer=True) is None
    assert impl.validate_trailers(headers) is None
    assert impl.validate_trailers([]) is None


# ---- differential: hypothesis against h2 ------------------------------------------------------

NAMES = [b":method", b":scheme", b":path", b":authority", b":status", b":protocol", b":foo",
         b":", b"host", b"te", b"content-length", b"cookie", b"connection", b"keep-alive",
         b"proxy-connection", b"transfer-encoding", b"upgrade", b"accept", b"x-a_b",
         b"user-agent", b"Host", b"TE", b"x:y", b""]
VALUES = [b"GET", b"POST", b"CONNECT", b"OPTIONS", b"HEAD", b"get", b"https", b"http", b"/",
          b"*", b"/a?b=c", b"a", b"", b"example.com", b"example.com:8443", b"[::1]:80",
          b"websocket", b"trailers", b"TRAILERS", b"gzip", b"0", b"12", b"012", b"-1", b" 1",
          b"1 ", b"a\x00", b"\r\n", b"\t", str(sys.maxsize + 1).encode()]

names = st.one_of(st.sampled_from(NAMES), st.binary(max_size=6),
                  st.binary(max_size=4).map(lambda b: b":" + b))
values = st.one_of(st.sampled_from(VALUES), st.binary(max_size=8))


@st.composite
def valid_requests(draw):
    method = draw(st.sampled_from([b"GET", b"POST", b"HEAD", b"OPTIONS", b"CONNECT", b"PUT"]))
    authority = draw(st.sampled_from([b"example.com", b"example.com:8443", b"[::1]:8080", b"a"]))
    if method == b"CONNECT" and draw(st.booleans()):
        pseudo = [(b":method", method), (b":authority", authority)]
    else:
        pseudo = [(b":method", method), (b":scheme", draw(st.sampled_from([b"https", b"http"]))),
                  (b":path", draw(st.sampled_from([b"/", b"/a/b?c=d", b"*", b"/%2F"])))]
        if method == b"CONNECT":
            pseudo.append((b":protocol", b"websocket"))
        if draw(st.booleans()):
            pseudo.append((b":authority", authority))
        else:
            pseudo.append((b"host", authority))  # moved among the regular fields below
    pseudo = draw(st.permutations(pseudo))
    regular = [p for p in pseudo if p[0] == b"host"]
    pseudo = [p for p in pseudo if p[0] != b"host"]
    regular += draw(st.lists(st.tuples(
        st.sampled_from([b"accept", b"cookie", b"user-agent", b"content-type", b"te",
                         b"content-length", b"x-forwarded-for"]),
        st.sampled_from([b"a", b"trailers", b"12", b"text/plain", b"", b"x=1"])), max_size=5))
    return pseudo + draw(st.permutations(regular))


@st.composite
def mutated_requests(draw):
    headers = draw(valid_requests())
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["insert", "delete", "move", "duplicate", "rename", "revalue",
                                   "uppercase", "pad"]))
        if op == "insert" or not headers:
            headers.insert(draw(st.integers(0, len(headers))), (draw(names), draw(values)))
            continue
        i = draw(st.integers(0, len(headers) - 1))
        name, value = headers[i]
        if op == "delete":
            del headers[i]
        elif op == "move":
            headers.insert(draw(st.integers(0, len(headers) - 1)), headers.pop(i))
        elif op == "duplicate":
            headers.insert(draw(st.integers(0, len(headers))), (name, value))
        elif op == "rename":
            headers[i] = (draw(names), value)
        elif op == "revalue":
            headers[i] = (name, draw(values))
        elif op == "uppercase":
            headers[i] = (name.upper(), value)
        else:
            headers[i] = (name, draw(st.sampled_from([b" ", b"\t", b""])) + value
                          + draw(st.sampled_from([b" ", b"\t", b""])))
    return headers


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers=valid_requests())
def test_differential_valid_requests_match_h2(impl, headers):
    assert_agrees_with_h2(impl, headers)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers=mutated_requests())
def test_differential_mutated_requests_match_h2(impl, headers):
    assert_agrees_with_h2(impl, headers)


@settings(max_examples=500, deadline=None)
@given(headers=st.lists(st.tuples(names, values), max_size=6))
def test_differential_random_blocks_match_h2(impl, headers):
    assert_agrees_with_h2(impl, headers)


@settings(max_examples=500, deadline=None)
@given(headers=st.lists(st.tuples(names, values), max_size=5))
def test_differential_trailers_match_h2(impl, headers):
    assert_trailers_agree_with_h2(impl, headers)


# ---- response_headers ------------------------------------------------------------------------

def app_part(fields: list, pairs=()) -> list:
    """``fields`` without the ``date``/``server`` fields response_headers appends for the app
    (those the app's ``pairs`` lack); checks they are there, last, in that order."""
    given = {str(n).lower() if isinstance(n, str) else n.decode("latin-1").lower()
             for n, _ in pairs}
    added = [name for name in (b"date", b"server") if name.decode() not in given]
    tail = fields[len(fields) - len(added):]
    assert [name for name, _ in tail] == added, fields
    return fields[:len(fields) - len(added)]


@pytest.mark.parametrize("status,code", [
    ("200 OK", b"200"), ("404 Not Found", b"404"), ("101", b"101"), ("999 whatever", b"999"),
    ("599 ", b"599"),
])
def test_response_status_code_from_wsgi_status(impl, status, code):
    assert app_part(impl.response_headers(status, [])) == [(b":status", code)]


@pytest.mark.parametrize("status", [
    "", "20", "2000 OK", "200OK", "099 Low", "abc", " 200 OK", "20x OK",
    "\u0662\u0660\u0660 OK",  # Arabic-Indic digits are not ASCII digits
    b"200 OK", 200, None,
])
def test_response_status_rejected_unless_three_ascii_digits(impl, status):
    with pytest.raises(ValueError):
        impl.response_headers(status, [])


def test_response_names_lowercased_latin1_bytes(impl):
    fields = app_part(impl.response_headers("200 OK", [
        ("Content-Type", "text/html; charset=utf-8"), ("X-Cafe-Id", "\xe9t\xe9"),
        ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("x-bytes", b"raw\xff")]))
    assert fields == [(b":status", b"200"), (b"content-type", b"text/html; charset=utf-8"),
                      (b"x-cafe-id", b"\xe9t\xe9"), (b"set-cookie", b"a=1"),
                      (b"set-cookie", b"b=2"), (b"x-bytes", b"raw\xff")]


def test_response_drops_connection_specific_fields_rfc9113_8_2_2(impl):
    fields = app_part(impl.response_headers("200 OK", [
        ("Connection", "close"), ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "x"),
        ("Transfer-Encoding", "chunked"), ("Upgrade", "h2c"), ("TE", "trailers"),
        ("Content-Length", "5")]))
    assert fields == [(b":status", b"200"), (b"content-length", b"5")]


def test_response_values_stripped_of_surrounding_whitespace(impl):
    fields = app_part(impl.response_headers("200 OK", [("X", " \ta b\t "), ("Y", "   ")]))
    assert fields[1:] == [(b"x", b"a b"), (b"y", b"")]


@pytest.mark.parametrize("name,value", [
    ("X", "a\r\nInjected: 1"), ("X", "a\nb"), ("X", "a\x00"), ("X", b"a\rb"),
    ("X", "\u20ac"),  # not latin-1
    ("", "x"), ("Bad Name", "x"), ("x:y", "x"), (":status", "200"), ("X\u20ac", "x"),
    ("x\x7f", "x"), ("x\n", "x"), ("X-Caf\xe9", "x"),  # 0x7f-0xff: RFC 9113 §8.2.1
])
def test_response_rejects_fields_that_cannot_be_sent(impl, name, value):
    with pytest.raises(ValueError):
        impl.response_headers("200 OK", [(name, value)])


def test_response_names_correct_past_the_name_cache(impl):
    # The encoded-name cache is bounded; names beyond it are still converted right.
    pairs = [(f"X-Custom-{i}", str(i)) for i in range(2000)]
    for _ in range(2):
        fields = app_part(impl.response_headers("200 OK", pairs))
        assert fields[1:] == [(f"x-custom-{i}".encode(), str(i).encode()) for i in range(2000)]
    # a cached dropped name stays dropped, a cached bad name keeps failing
    for _ in range(2):
        assert app_part(impl.response_headers("204 No Content", [("Connection", "close")])) == [
            (b":status", b"204")]
        with pytest.raises(ValueError):
            impl.response_headers("200 OK", [("Bad Name", "x")])


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e, exclude_characters=":"),
            min_size=1, max_size=10),
    st.text(st.characters(max_codepoint=0xff, exclude_characters="\r\n\x00"), max_size=10)),
    max_size=8))
def test_response_headers_are_valid_http2_fields(impl, pairs):
    fields = app_part(impl.response_headers("200 OK", pairs), pairs)
    kept = [(n, v) for n, v in pairs
            if n.lower() not in ("connection", "keep-alive", "proxy-connection",
                                 "transfer-encoding", "upgrade", "te")]
    assert fields[1:] == [(n.lower().encode("latin-1"), v.encode("latin-1").strip(b" \t"))
                          for n, v in kept]
    # what we send passes h2's own inbound checks (as a trailer block: no pseudo rules)
    sent = [f for f in fields[1:] if f[0] != b"content-length"]  # its value is the app's job
    assert h2_rejects(sent, is_trailer=True) is None
