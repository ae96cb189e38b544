"""WSGI environ construction (PEP 3333) from HTTP/2 request fields, on both implementations.

Explicit cases for each key, hypothesis for compiled == pure on random valid requests, and
werkzeug's ``Request`` reading the environ back (path, args, headers, cookies, host).
"""
from __future__ import annotations

import io
import sys
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.wrappers import Request

from kyoukai_h2fast import _switch
from kyoukai_h2fast.wsgi.environ import make_base_environ
from kyoukai_h2fast.wsgi.filewrapper import FileWrapper
from tests.helpers.builds import implementations

validate = _switch.pure("headers").validate_request_headers


@pytest.fixture(scope="module", params=implementations("environ"))
def impl(request):
    return request.param


def base(url_scheme="https", server_addr=("192.0.2.1", 8443), peer_addr=("198.51.100.7", 50000),
         multithread=True):
    return make_base_environ(url_scheme=url_scheme, server_addr=server_addr,
                             peer_addr=peer_addr, multithread=multithread, errors=sys.stderr)


def request(path=b"/", method=b"GET", authority=b"example.com", extra=(), scheme=b"https"):
    headers = [(b":method", method), (b":scheme", scheme), (b":path", path)]
    if authority is not None:
        headers.append((b":authority", authority))
    headers += list(extra)
    validate(headers)  # every case here is a request the server would accept
    return headers


def environ_of(impl, headers=None, wsgi_input=None, **base_args):
    return impl.build_environ(base(**base_args), request() if headers is None else headers,
                              wsgi_input)


# ---- per-connection base ------------------------------------------------------------------

def test_base_environ_constants_pep3333():
    errors = io.StringIO()
    env = make_base_environ(url_scheme="http", server_addr=("127.0.0.1", 8080),
                            peer_addr=("127.0.0.1", 40000), multithread=False, errors=errors)
    assert env == {
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": errors,
        "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "wsgi.input_terminated": True, "wsgi.file_wrapper": FileWrapper,
        "SCRIPT_NAME": "", "SERVER_PROTOCOL": "HTTP/2",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8080", "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000"}


def test_base_environ_ipv6_and_missing_addresses():
    env = base(server_addr=("::1", 443, 0, 0), peer_addr=("2001:db8::5", 1234, 0, 0))
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("::1", "443")
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("2001:db8::5", "1234")
    env = base(url_scheme="https", server_addr=None, peer_addr=None)
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("", "")
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("localhost", "443")
    assert base(url_scheme="http", server_addr="/run/app.sock")["SERVER_PORT"] == "80"


def test_base_environ_rejects_unknown_url_scheme():
    with pytest.raises(ValueError):
        base(url_scheme="ftp")


# ---- request keys -------------------------------------------------------------------------

def test_request_method_and_standard_keys(impl):
    body = io.BytesIO(b"")
    b = base()
    env = impl.build_environ(b, request(method=b"DELETE"), body)
    assert env["REQUEST_METHOD"] == "DELETE"
    assert env["wsgi.input"] is body
    assert env["SERVER_PROTOCOL"] == "HTTP/2" and env["SCRIPT_NAME"] == ""
    assert env["wsgi.url_scheme"] == "https"
    assert "wsgi.input" not in b and "REQUEST_METHOD" not in b  # base left untouched
    assert not [k for k in env if k.startswith("HTTP2") or ":" in k]
    assert "HTTP_SCHEME" not in env and "HTTP_METHOD" not in env


def test_url_scheme_comes_from_the_connection_not_scheme_pseudo_header(impl):
    env = environ_of(impl, request(scheme=b"https"), url_scheme="http")
    assert env["wsgi.url_scheme"] == "http"


@pytest.mark.parametrize("path,path_info,query", [
    (b"/", "/", ""),
    (b"/a/b.html", "/a/b.html", ""),
    (b"/a?x=1&y=2", "/a", "x=1&y=2"),
    (b"/a?", "/a", ""),
    (b"/a?x=%20?y=%2F", "/a", "x=%20?y=%2F"),           # query kept raw, split at first ?
    (b"/a%20b", "/a b", ""),
    (b"/a%2Fb", "/a/b", ""),                            # %2F decodes to / (PEP 3333 practice)
    (b"/caf%C3%A9", "/caf\xc3\xa9", ""),               # UTF-8 bytes, each as a latin-1 char
    (b"/%ff%FE", "/\xff\xfe", ""),                      # not UTF-8: still one char per byte
    (b"/100%", "/100%", ""), (b"/%zz%4", "/%zz%4", ""), (b"/%%41", "/%A", ""),
    (b"/raw\xe9", "/raw\xe9", ""),                       # raw non-ASCII byte (h2 allows it)
    (b"/" + b"%41" * 400, "/" + "A" * 400, ""),         # beyond the on-stack buffer
    (b"*", "*", ""),
])
def test_path_info_percent_decoded_latin1_and_query_string(impl, path, path_info, query):
    method = b"OPTIONS" if path == b"*" else b"GET"
    env = environ_of(impl, request(path=path, method=method))
    assert env["PATH_INFO"] == path_info
    assert env["QUERY_STRING"] == query
    assert env["RAW_URI"] == env["REQUEST_URI"] == path.decode("latin-1")


def test_ordinary_connect_has_empty_path_keys(impl):
    headers = [(b":method", b"CONNECT"), (b":authority", b"db.internal:5432")]
    validate(headers)
    env = environ_of(impl, headers)
    assert (env["PATH_INFO"], env["QUERY_STRING"], env["RAW_URI"]) == ("", "", "")
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("db.internal", "5432")


@pytest.mark.parametrize("authority,url_scheme,name,port", [
    (b"example.com", "https", "example.com", "443"),
    (b"example.com", "http", "example.com", "80"),
    (b"example.com:8080", "https", "example.com", "8080"),
    (b"example.com:", "https", "example.com", "443"),
    (b"example.com:x1", "http", "example.com:x1", "80"),  # not a port: all of it is the name
    (b"[::1]", "https", "::1", "443"),
    (b"[2001:db8::1]:8443", "http", "2001:db8::1", "8443"),
    (b"[::1]junk", "http", "::1", "80"),
    (b"::1", "http", "::1", "80"),                          # unbracketed: no port split
    (b"10.0.0.1:9000", "http", "10.0.0.1", "9000"),
])
def test_server_name_and_port_from_authority(impl, authority, url_scheme, name, port):
    env = environ_of(impl, request(authority=authority), url_scheme=url_scheme)
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == (name, port)
    assert env["HTTP_HOST"] == authority.decode("latin-1")  # no host field: from :authority


@pytest.mark.parametrize("authority", [b"", b":8080"])
def test_authority_without_host_part_keeps_socket_server_name(impl, authority):
    env = environ_of(impl, request(authority=authority))
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("192.0.2.1", "8443")


def test_host_field_instead_of_authority(impl):
    env = environ_of(impl, request(authority=None, extra=[(b"host", b"api.example:81")]))
    assert env["HTTP_HOST"] == "api.example:81"
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("api.example", "81")
    env = environ_of(impl, request(extra=[(b"host", b"example.com")]))
    assert env["HTTP_HOST"] == "example.com"


def test_content_type_and_length_without_http_prefix(impl):
    env = environ_of(impl, request(method=b"POST", extra=[
        (b"content-type", b"application/json"), (b"content-length", b"17"),
        (b"content-length", b"17")]))
    assert env["CONTENT_TYPE"] == "application/json"
    assert env["CONTENT_LENGTH"] == "17"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert "CONTENT_LENGTH" not in environ_of(impl)


def test_fields_become_http_keys_and_repeats_join_with_comma(impl):
    env = environ_of(impl, request(extra=[
        (b"accept", b"text/html"), (b"x-custom-thing", b"1"), (b"accept", b"*/*"),
        (b"x-empty", b""), (b"x.dotted", b"d"), (b"accept", b"")]))
    assert env["HTTP_ACCEPT"] == "text/html, */*, "
    assert env["HTTP_X_CUSTOM_THING"] == "1"
    assert env["HTTP_X_EMPTY"] == ""
    assert env["HTTP_X.DOTTED"] == "d"


def test_cookie_crumbs_joined_with_semicolon_rfc9113_8_2_3(impl):
    env = environ_of(impl, request(extra=[
        (b"cookie", b"a=1"), (b"accept", b"x"), (b"cookie", b"b=2"), (b"cookie", b"c=3")]))
    assert env["HTTP_COOKIE"] == "a=1; b=2; c=3"


def test_underscore_field_names_are_dropped(impl):
    env = environ_of(impl, request(extra=[
        (b"x-forwarded-for", b"10.0.0.1"), (b"x_forwarded_for", b"6.6.6.6"),
        (b"x_only_underscore", b"1")]))
    assert env["HTTP_X_FORWARDED_FOR"] == "10.0.0.1"
    assert "HTTP_X_ONLY_UNDERSCORE" not in env
    assert "6.6.6.6" not in env.values()


def test_values_decoded_latin1(impl):
    env = environ_of(impl, request(extra=[(b"x-name", b"caf\xc3\xa9 \xff")]))
    assert env["HTTP_X_NAME"] == "caf\xc3\xa9 \xff"
    assert env["HTTP_X_NAME"].encode("latin-1").decode("utf-8", "replace") == "café \ufffd"


def test_http_key_cache_bounded_and_correct_beyond_it(impl):
    extra = [(f"x-name-{i}".encode(), str(i).encode()) for i in range(1500)]
    for _ in range(2):
        env = environ_of(impl, request(extra=extra))
        assert all(env[f"HTTP_X_NAME_{i}"] == str(i) for i in range(1500))
    if impl is _switch.pure("environ"):
        assert len(impl._http_keys) <= impl.HTTP_KEY_CACHE_MAX


def test_non_ascii_field_name_is_refused(impl):
    # build_environ trusts validation; unvalidated non-ASCII names must not make odd keys
    with pytest.raises(ValueError):
        environ_of(impl, [(b":method", b"GET"), (b":path", b"/"), (b"x\xe9", b"1")])


def test_bad_input_types(impl):
    with pytest.raises(TypeError):
        impl.build_environ(None, request(), None)
    with pytest.raises(TypeError):
        environ_of(impl, [(":method", "GET")])
    with pytest.raises(TypeError):
        environ_of(impl, [(b":method",)])


def test_headertuple_fields_and_iterables(impl):
    from hpack.struct import HeaderTuple
    headers = [HeaderTuple(n, v) for n, v in request(extra=[(b"accept", b"a")])]
    env = impl.build_environ(base(), iter(headers), None)
    assert env["HTTP_ACCEPT"] == "a" and env["PATH_INFO"] == "/"


# ---- hypothesis: compiled == pure, and werkzeug reads it back ------------------------------

TOKEN = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-._~!#$&'*+^`|"),
                min_size=1, max_size=12)
FIELD_VALUE = st.binary(max_size=20).map(
    lambda b: b.replace(b"\x00", b"").replace(b"\r", b"").replace(b"\n", b"").strip(b" \t"))
PATH = st.lists(st.one_of(
    st.text(st.sampled_from("abcXYZ09-._~/%?=&+;:@"), max_size=6),
    st.binary(max_size=3).map(lambda b: "".join(f"%{c:02X}" for c in b)),
    st.binary(min_size=1, max_size=2).map(lambda b: "".join(f"%{c:02x}" for c in b))),
    max_size=6).map(lambda parts: ("/" + "".join(parts)).encode())
AUTHORITY = st.one_of(
    st.sampled_from([b"example.com", b"example.com:8080", b"[::1]", b"[::1]:8443", b"a:",
                     b"b:c", b"", b"10.0.0.1:1"]),
    TOKEN.map(str.encode))


# RFC 9113 §8.2.2: connection-specific fields, and te with anything but "trailers".
NOT_IN_A_VALID_REQUEST = _switch.pure("headers").CONNECTION_SPECIFIC_FIELDS | {b"te"}


@st.composite
def valid_requests(draw):
    authority = draw(AUTHORITY)
    fields = draw(st.lists(st.tuples(
        st.one_of(TOKEN.map(str.encode), st.sampled_from(
            [b"cookie", b"accept", b"content-type", b"user-agent", b"x_under", b"host"])),
        FIELD_VALUE), max_size=8))
    fields = [(n, authority) if n == b"host" else (n, v) for n, v in fields
              if n not in NOT_IN_A_VALID_REQUEST]  # TOKEN can spell "te", "upgrade"...
    hosts = [f for f in fields if f[0] == b"host"]
    fields = [f for f in fields if f[0] != b"host"] + hosts[:1]
    if draw(st.booleans()):
        fields.append((b"content-length", str(draw(st.integers(0, 10**6))).encode()))
    use_authority = not hosts or draw(st.booleans())
    headers = [(b":method", draw(st.sampled_from([b"GET", b"POST", b"PATCH"]))),
               (b":scheme", b"https"), (b":path", draw(PATH))]
    if use_authority:
        headers.append((b":authority", authority))
    return headers + draw(st.permutations(fields))


@settings(max_examples=400, deadline=None)
@given(headers=valid_requests(), url_scheme=st.sampled_from(["http", "https"]))
def test_compiled_and_pure_build_equal_environs(headers, url_scheme):
    validate(headers)
    compiled = _switch.compiled("environ")
    if compiled is None:
        if not _switch.NO_EXTENSIONS:
            pytest.fail("kyoukai_h2fast._environ_c is not built")
        pytest.skip("pure-only build (KYOUKAI_H2FAST_NO_EXTENSIONS): nothing to compare")
    b = base(url_scheme=url_scheme)
    assert compiled.build_environ(b, headers, None) == _switch.pure("environ").build_environ(
        b, headers, None)


SEGMENT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"),
                  min_size=1, max_size=8)


@settings(max_examples=150, deadline=None)
@given(segments=st.lists(SEGMENT, min_size=1, max_size=4),
       args=st.lists(st.tuples(SEGMENT, SEGMENT), max_size=4),
       cookies=st.dictionaries(st.text("abcdefgh", min_size=1, max_size=5),
                               st.text("0123456789xyz", max_size=6), max_size=4),
       port=st.one_of(st.none(), st.integers(1, 65535)))
def test_werkzeug_request_reads_the_environ(impl, segments, args, cookies, port):
    path = "/" + "/".join(segments)
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in args)
    raw_path = quote(path, safe="/") + ("?" + query if query else "")
    host = "example.com" + ("" if port is None else f":{port}")
    extra = [(b"cookie", f"{k}={v}".encode()) for k, v in cookies.items()]
    extra += [(b"user-agent", b"hyp/1.0"), (b"accept", b"a"), (b"accept", b"b")]
    env = environ_of(impl, request(path=raw_path.encode(), authority=host.encode(),
                                   extra=extra))
    req = Request(env)
    assert req.path == path
    assert {k: req.args.getlist(k) for k in req.args} == {
        k: [v for key, v in args if key == k] for k, _ in args}
    # werkzeug leaves the scheme's default port out of .host (as browsers do)
    assert req.host == ("example.com" if port == 443 else host)
    assert req.headers["User-Agent"] == "hyp/1.0"
    assert req.headers["Accept"] == "a, b"
    assert dict(req.cookies) == cookies
    assert req.scheme == "https" and req.method == "GET"
