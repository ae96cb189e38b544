"""The werkzeug fast paths give exactly what werkzeug gives, or decline: a ``Response`` read as
status, headers and body equals werkzeug's own WSGI path (``get_wsgi_response``), and a
``Request`` built from an environ equals werkzeug's constructor."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from kyoukai_h2fast.apps.werkzeug_fast import request_factory, wsgi_parts


def _werkzeug(response, method="GET"):
    environ = EnvironBuilder(method=method).get_environ()
    app_iter, status, headers = response.get_wsgi_response(environ)
    try:
        body = list(app_iter)
    finally:
        if hasattr(app_iter, "close"):
            app_iter.close()
    return status, headers, body


def _fast(response):
    parts = wsgi_parts(response)
    assert parts is not None
    status, headers, chunks = parts
    return status, headers, list(chunks)


def _build(body, status, headers, mimetype, set_length):
    response = Response(body, status=status, headers=headers, mimetype=mimetype)
    if not set_length:
        response.headers.pop("Content-Length", None)
    return response


field_names = st.sampled_from(["X-A", "x-b", "Cache-Control", "Set-Cookie", "Vary", "ETag"])
field_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e),
                       max_size=20)


@settings(max_examples=300, deadline=None)
@given(body=st.one_of(st.binary(max_size=200), st.text(max_size=50)),
       status=st.sampled_from([200, 201, 202, 400, 404, 418, 500, 503]),
       headers=st.lists(st.tuples(field_names, field_values), max_size=5),
       mimetype=st.sampled_from([None, "text/plain", "application/json"]),
       set_length=st.booleans())
def test_fast_path_equals_get_wsgi_response(body, status, headers, mimetype, set_length):
    expected = _werkzeug(_build(body, status, headers, mimetype, set_length))
    assert _fast(_build(body, status, headers, mimetype, set_length)) == expected


def test_multi_chunk_bodies_without_content_length_get_werkzeugs_length():
    def make():
        response = Response(status=200)
        response.response = [b"ab", b"", b"cde"]
        response.headers.pop("Content-Length", None)
        return response
    assert _fast(make()) == _werkzeug(make())
    assert ("Content-Length", "5") in _fast(make())[1]


def test_call_on_close_callbacks_run():
    closed = []
    response = Response(b"x")
    response.call_on_close(lambda: closed.append(True))
    wsgi_parts(response)
    assert closed == [True]


@pytest.mark.parametrize("make", [
    lambda: Response(b"", status=204),
    lambda: Response(b"", status=304),
    lambda: Response(b"x", status=101),
    lambda: Response(b"moved", status=302, headers={"Location": "/elsewhere"}),
    lambda: Response(b"x", headers={"Content-Location": "/x"}),
    lambda: Response(iter([b"a", b"b"])),
    lambda: Response([b"x"], direct_passthrough=True),
    lambda: _str_chunks(),
], ids=["204", "304", "1xx", "location", "content-location", "generator", "passthrough",
        "str-chunks"])
def test_declines_what_werkzeug_rewrites(make):
    assert wsgi_parts(make()) is None


def _str_chunks():
    response = Response()
    response.response = ["text", b"bytes"]
    return response


def test_declines_subclasses_that_change_the_wsgi_path():
    class Custom(Response):
        def get_wsgi_headers(self, environ):
            return super().get_wsgi_headers(environ)

    class Plain(Response):
        pass

    assert wsgi_parts(Custom(b"x")) is None
    assert wsgi_parts(Plain(b"x")) is not None


# --- requests --------------------------------------------------------------------------------

latin1_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xff), max_size=12)


_FIELD_NAMES = ("method", "scheme", "server", "root_path", "path", "query_string",
                "remote_addr", "shallow")


def _fields(request):
    values = {name: getattr(request, name) for name in _FIELD_NAMES}
    environ = request.environ
    return (values, {name: type(value) for name, value in values.items()},
            type(request.headers), request.headers.environ is environ,
            environ.get("werkzeug.request") is request, sorted(vars(request)))


@settings(max_examples=300, deadline=None)
@given(path=st.one_of(st.none(), latin1_text, latin1_text.map(lambda s: "/" + s),
                      latin1_text.map(lambda s: "//" + s)),
       script=st.one_of(st.none(), latin1_text.map(lambda s: "/" + s)),
       query=st.one_of(st.none(), latin1_text),
       method=st.sampled_from([None, "GET", "post", "PATCH"]),
       server=st.sampled_from([None, ("127.0.0.1", "8000"), ("sock", None), ("h", "x")]),
       scheme=st.sampled_from([None, "http", "https"]),
       remote=st.sampled_from([None, "::1"]))
def test_request_builder_equals_werkzeugs_constructor(path, script, query, method, server,
                                                      scheme, remote):
    environ = {}
    for key, value in (("PATH_INFO", path), ("SCRIPT_NAME", script), ("QUERY_STRING", query),
                       ("REQUEST_METHOD", method), ("wsgi.url_scheme", scheme),
                       ("REMOTE_ADDR", remote), ("HTTP_HOST", "example.com")):
        if value is not None:
            environ[key] = value
    if server is not None:
        environ["SERVER_NAME"] = server[0]
        if server[1] is not None:
            environ["SERVER_PORT"] = server[1]
    make = request_factory(Request)
    assert make is not Request  # the fast builder is in use for werkzeug's own class
    real, fast = Request(dict(environ)), make(dict(environ))
    assert isinstance(fast, Request) and type(fast).__name__ == "Request"
    assert _fields(fast) == _fields(real)
    for read in (lambda r: r.url, lambda r: r.args, lambda r: dict(r.headers)):
        assert _outcome(read, fast) == _outcome(read, real)


def _outcome(read, request):
    try:
        return read(request)
    except Exception as e:  # werkzeug's own error (e.g. a query that is not UTF-8)
        return type(e)


def test_request_builder_keeps_subclasses_that_change_construction():
    class Custom(Request):
        def __init__(self, environ):
            super().__init__(environ)
            self.extra = 1

    class WithProperty(Request):
        @property
        def path(self):
            return "/fixed"

        @path.setter
        def path(self, value):
            pass

    class Plain(Request):
        pass

    assert request_factory(Custom) is Custom
    assert request_factory(WithProperty) is WithProperty
    plain = request_factory(Plain)({"PATH_INFO": "/x", "REQUEST_METHOD": "GET"})
    assert isinstance(plain, Plain) and type(plain).__name__ == "Plain" and plain.path == "/x"


def test_request_fields_are_computed_once_and_the_apps_own_values_win():
    make = request_factory(Request)
    environ = {"PATH_INFO": "/a", "REQUEST_METHOD": "get", "QUERY_STRING": "x=1"}
    request = make(environ)
    assert vars(request) == {"environ": environ, "shallow": False}
    assert request.path == "/a" and request.args["x"] == "1" and request.method == "GET"
    assert vars(request)["path"] == "/a"  # stored on first read
    request.path = "/elsewhere"
    assert request.path == "/elsewhere" and request.url.endswith("/elsewhere?x=1")


def test_fields_fast_path_is_in_use_and_the_public_path_gives_the_same(monkeypatch):
    from kyoukai_h2fast.apps import werkzeug_fast
    assert werkzeug_fast._LAYOUT_KNOWN  # the installed werkzeug's fields are read directly

    def make():
        response = Response(b"body", status=201, headers=[("X-A", "1")], mimetype="text/html")
        response.call_on_close(lambda: closed.append(True))
        return response

    closed: list = []
    fast = _fast(make())
    monkeypatch.setattr(werkzeug_fast, "_LAYOUT_KNOWN", False)
    assert _fast(make()) == fast == _werkzeug(make())
    assert closed == [True, True, True]  # each of the three responses closed once
