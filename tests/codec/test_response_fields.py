"""The fields an origin server adds to every response: ``date`` (RFC 9110 §6.6.1, an
IMF-fixdate, §5.6.7) and ``server`` (§10.2.4, ``kyoukai_h2fast/<version>``); the app's own
``Date``/``Server`` win in any letter case. Unit tests on both twins of
:func:`kyoukai_h2fast.codec.headers.response_headers`, then the real server with curl, nghttp and
httpx on both builds.
"""
from __future__ import annotations

import email.utils
import re
import subprocess
import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kyoukai_h2fast import __version__
from tests.helpers.builds import implementations
from tests.helpers.tools import require_tool
from tests.served_apps.fields import OWN_DATE, OWN_SERVER

pytestmark = pytest.mark.timeout(120)

SERVER_VALUE = f"kyoukai_h2fast/{__version__}"
# RFC 9110 §5.6.7: IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT
IMF_FIXDATE = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug"
                         r"|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT\Z")


@pytest.fixture(scope="module", params=implementations("headers"))
def twin(request):
    return request.param


def parse_date(value: str) -> float:
    assert IMF_FIXDATE.match(value), value
    return email.utils.parsedate_to_datetime(value).timestamp()


# ---- the field list ----------------------------------------------------------------------------

def test_plain_error_response_gets_date_and_server_rfc9110_6_6_1(twin):
    before = int(time.time())
    fields = twin.response_headers("413 Request Entity Too Large",
                                   [("content-type", "text/plain"), ("content-length", "25")])
    after = time.time()
    assert fields[:3] == [(b":status", b"413"), (b"content-type", b"text/plain"),
                          (b"content-length", b"25")]
    (date_name, date), server = fields[3:]
    assert date_name == b"date"
    assert before <= parse_date(date.decode()) <= after
    assert server == (b"server", SERVER_VALUE.encode())
    assert len(fields) == 5


@pytest.mark.parametrize("date_name, server_name", [
    ("Date", "Server"), ("DATE", "SERVER"), ("date", "sErVeR"), (b"Date", b"Server")])
def test_app_date_and_server_win_in_any_letter_case(twin, date_name, server_name):
    for _ in range(2):  # the second time through the name cache
        fields = twin.response_headers("200 OK", [(date_name, OWN_DATE), ("X-A", "1"),
                                                  (server_name, OWN_SERVER)])
        assert fields == [(b":status", b"200"), (b"date", OWN_DATE.encode()), (b"x-a", b"1"),
                          (b"server", OWN_SERVER.encode())]


def test_app_date_alone_keeps_our_server_and_vice_versa(twin):
    assert twin.response_headers("200 OK", [("Date", OWN_DATE)]) == [
        (b":status", b"200"), (b"date", OWN_DATE.encode()), (b"server", SERVER_VALUE.encode())]
    fields = twin.response_headers("200 OK", [("Server", OWN_SERVER)])
    assert [name for name, _ in fields] == [b":status", b"server", b"date"]
    assert fields[1] == (b"server", OWN_SERVER.encode())


def test_date_is_made_once_per_second_and_follows_the_clock(twin):
    def date_of(fields):
        return dict(fields)[b"date"]

    # Within one second: the very same cached value.
    for _ in range(50):
        t0 = time.time()
        a = date_of(twin.response_headers("200 OK", []))
        b = date_of(twin.response_headers("204 No Content", []))
        t1 = time.time()
        if int(t0) == int(t1):
            assert a is b
            break
    else:
        pytest.fail("never two calls within one second")
    # Across a second boundary: the new second's date, at once.
    first = date_of(twin.response_headers("200 OK", []))
    deadline = time.time() + 10
    while time.time() < deadline:
        t0 = time.time()
        current = date_of(twin.response_headers("200 OK", []))
        t1 = time.time()
        assert int(t0) <= parse_date(current.decode()) <= int(t1)
        if current != first:
            assert parse_date(current.decode()) > parse_date(first.decode())
            return
        time.sleep(0.01)
    pytest.fail("the date never changed in 10 s")


@pytest.mark.parametrize("seconds, text", [
    (784111777, "Sun, 06 Nov 1994 08:49:37 GMT"),  # RFC 9110 §5.6.7's example
    (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
    (951782400, "Tue, 29 Feb 2000 00:00:00 GMT"),
    (4107542400, "Mon, 01 Mar 2100 00:00:00 GMT"),  # 2100 is not a leap year
    (253402300799, "Fri, 31 Dec 9999 23:59:59 GMT"),
])
def test_http_date_is_imf_fixdate_rfc9110_5_6_7(twin, seconds, text):
    assert twin.http_date(seconds) == text.encode()


@pytest.mark.parametrize("seconds", [-1, 253402300800, 10**30])
def test_http_date_outside_four_digit_years_is_value_error(twin, seconds):
    with pytest.raises(ValueError):
        twin.http_date(seconds)


@settings(max_examples=500, deadline=None)
@given(seconds=st.integers(min_value=0, max_value=253402300799))
def test_http_date_agrees_with_email_utils_on_both_twins(seconds):
    expected = email.utils.formatdate(seconds, usegmt=True).encode()
    for module in implementations("headers"):
        assert module.values[0].http_date(seconds) == expected


# ---- the real server -----------------------------------------------------------------------------

def curl_headers(url: str) -> list[tuple[str, str]]:
    curl = require_tool("curl")
    out = subprocess.run([curl, "-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-D", "-",
                          url], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("HTTP/2 "), lines
    return [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if line]


def values(fields, name: str) -> list[str]:
    return [v for n, v in fields if n.lower() == name]


@pytest.mark.parametrize("app, path", [
    ("tests.served_apps.fields:wsgi_app", "/"),
    ("tests.served_apps.fields:wsgi_app", "/not-modified"),
    ("tests.served_apps.fields:kyoukai_app", "/"), ("tests.served_apps.basic:flask_app", "/"),
    ("tests.served_apps.basic:wsgi_app", "/no-such-page"),
], ids=["wsgi", "wsgi-304", "kyoukai", "flask", "wsgi-404"])
def test_every_response_has_date_and_server_curl(servers, impl, app, path):
    server = servers.get(app=app, impl=impl)
    before = int(time.time())
    fields = curl_headers(server.url + path)
    after = time.time()
    (date,) = values(fields, "date")
    assert before <= parse_date(date) <= after
    assert values(fields, "server") == [SERVER_VALUE]


def test_date_and_server_over_tls_nghttp(servers, impl, tls_files):
    nghttp = require_tool("nghttp")
    server = servers.get(app="tests.served_apps.fields:wsgi_app", impl=impl, tls=True)
    out = subprocess.run([nghttp, "-v", server.url + "/"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    received = re.findall(r"recv \(stream_id=\d+\) (date|server): (.*)", out.stdout)
    assert [name for name, _ in received] == ["date", "server"], out.stdout
    assert IMF_FIXDATE.match(received[0][1]) and received[1][1] == SERVER_VALUE


@pytest.mark.parametrize("app", ["tests.served_apps.fields:wsgi_app",
                                 "tests.served_apps.fields:kyoukai_app"], ids=["wsgi", "kyoukai"])
def test_app_date_and_server_win_over_the_wire_httpx(servers, impl, app):
    server = servers.get(app=app, impl=impl)
    with httpx.Client(http1=False, http2=True, timeout=30) as client:
        r = client.get(server.url + "/own")
    assert r.status_code == 200 and r.http_version == "HTTP/2"
    assert r.headers.get_list("date") == [OWN_DATE]
    assert r.headers.get_list("server") == [OWN_SERVER]


def test_date_advances_between_requests_curl(servers, impl):
    server = servers.get(app="tests.served_apps.fields:wsgi_app", impl=impl)
    (first,) = values(curl_headers(server.url + "/"), "date")
    time.sleep(1.1)
    (second,) = values(curl_headers(server.url + "/"), "date")
    assert parse_date(second) >= parse_date(first) + 1
