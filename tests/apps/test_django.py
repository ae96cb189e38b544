"""A real Django project (``tests/served_apps/django_site``: settings, urls, views,
``wsgi.py``) served by the real server, as the README's Django section says: pages, a POST
form with CSRF, a ``StreamingHttpResponse``, ``ALLOWED_HOSTS``, and static files from
WhiteNoise after ``collectstatic`` (types, gzip, 304, 206) over HTTP/2 and HTTP/1.1, cleartext
and TLS; and Django's own log lines printed once."""
from __future__ import annotations

import gzip
import os
import re
import ssl
import subprocess
import sys
import time

import httpx
import pytest

from tests.helpers.serverproc import ROOT, ServerProcess

pytestmark = pytest.mark.timeout(180)

APP = "tests.served_apps.django_site.wsgi:application"
STATIC_SOURCES = os.path.join(ROOT, "tests", "served_apps", "django_site", "static")
TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture(scope="module")
def static_root(tmp_path_factory) -> str:
    """``manage.py collectstatic`` into a directory of the test's (WhiteNoise's storage
    writes the compressed copies)."""
    root = str(tmp_path_factory.mktemp("django-static"))
    done = subprocess.run([sys.executable, "-m", "django", "collectstatic", "--noinput"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ,
                                   DJANGO_SETTINGS_MODULE="tests.served_apps.django_site.settings",
                                   DJANGO_SITE_STATIC_ROOT=root))
    assert done.returncode == 0, done.stderr
    assert {"site.css", "site.css.gz", "site.js", "site.js.gz"} <= set(os.listdir(root))
    return root


@pytest.fixture(scope="module")
def django_servers(static_root, tls_files):
    """Servers of the Django project by (impl, tls), started on first use."""
    running: dict = {}

    def get(impl: str, tls: bool = False) -> ServerProcess:
        key = (impl, tls)
        if key not in running:
            running[key] = ServerProcess(APP, impl, tls_files[:2] if tls else None,
                                         ["--access-log"],
                                         env={"DJANGO_SITE_STATIC_ROOT": static_root})
        return running[key]
    yield get
    for server in running.values():
        server.stop()


def _clients(**kw):
    return (httpx.Client(http1=False, http2=True, timeout=30, **kw),
            httpx.Client(http1=True, http2=False, timeout=30, **kw))


def _source(name: str) -> bytes:
    with open(os.path.join(STATIC_SOURCES, name), "rb") as f:
        return f.read()


def test_pages_csrf_form_and_streaming_over_both_protocols(django_servers, impl):
    server = django_servers(impl)
    for client, version in zip(_clients(), ("HTTP/2", "HTTP/1.1"), strict=True):
        with client:
            page = client.get(server.url + "/")
            assert (page.status_code, page.http_version) == (200, version)
            assert "secure: False" in page.text
            token = TOKEN.search(page.text).group(1)
            assert client.cookies.get("csrftoken")
            sent = client.post(server.url + "/form",
                               data={"csrfmiddlewaretoken": token, "name": "kyoukai"})
            assert (sent.status_code, sent.text) == (200, "hello kyoukai")
            assert client.post(server.url + "/form", data={"name": "x"}).status_code == 403
            streamed = client.get(server.url + "/stream?n=2000")
            assert streamed.status_code == 200
            assert streamed.text == "".join(f"line {i}\n" for i in range(2000))
            assert "content-length" not in streamed.headers
            assert client.get(server.url + "/nope").status_code == 404
            # ALLOWED_HOSTS: another host (HTTP/2: :authority) gets Django's 400
            assert client.get(server.url + "/", headers={"host": "evil.example"}).status_code \
                == 400


def test_whitenoise_static_files_over_both_protocols(django_servers, impl):
    """Types, gzip (the .gz copy collectstatic made) or the file itself, 304 on a
    revalidation, 206 for a range."""
    server = django_servers(impl)
    css, js = _source("site.css"), _source("site.js")
    for client in _clients():
        with client:
            with client.stream("GET", server.url + "/static/site.css",
                               headers={"accept-encoding": "gzip"}) as r:
                body = b"".join(r.iter_raw())
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/css")
            assert r.headers["content-encoding"] == "gzip"
            assert int(r.headers["content-length"]) == len(body) < len(css) // 4
            assert gzip.decompress(body) == css
            plain = client.get(server.url + "/static/site.js",
                               headers={"accept-encoding": "identity"})
            assert plain.headers["content-type"].startswith("text/javascript")
            assert "content-encoding" not in plain.headers
            assert (plain.content, plain.headers["content-length"]) == (js, str(len(js)))
            again = client.get(server.url + "/static/site.css",
                               headers={"if-none-match": r.headers["etag"]})
            assert (again.status_code, again.content) == (304, b"")
            part = client.get(server.url + "/static/site.js",
                              headers={"range": "bytes=100-199",
                                       "accept-encoding": "identity"})
            assert part.status_code == 206
            assert part.headers["content-range"] == f"bytes 100-199/{len(js)}"
            assert part.content == js[100:200]


def test_django_over_tls_is_secure_and_checks_the_origin(django_servers, impl, tls_files):
    """Over TLS (ALPN h2 or http/1.1) ``request.is_secure()`` is true, and Django's CSRF
    check wants the form's Origin (or Referer) to be the site."""
    server = django_servers(impl, tls=True)
    url = server.url.replace("127.0.0.1", "localhost")
    context = ssl.create_default_context(cafile=tls_files[2])
    for client, version in zip(_clients(verify=context), ("HTTP/2", "HTTP/1.1"), strict=True):
        with client:
            page = client.get(url + "/")
            assert (page.status_code, page.http_version) == (200, version)
            assert "secure: True" in page.text
            token = TOKEN.search(page.text).group(1)
            data = {"csrfmiddlewaretoken": token, "name": "tls"}
            assert client.post(url + "/form", data=data).status_code == 403  # no Origin
            sent = client.post(url + "/form", data=data, headers={"origin": url})
            assert (sent.status_code, sent.text) == (200, "hello tls")


def test_django_log_lines_are_printed_once(django_servers, impl):
    """The project's LOGGING gives django.request a handler (which also propagates to the
    root logger, as Django's own DEBUG setup does): each "Not Found" warning is printed once
    (the CLI used to configure the root logger too: twice)."""
    server = django_servers(impl)
    marker = f"/missing-{impl}"
    assert httpx.get(server.url + marker).status_code == 404
    deadline = time.monotonic() + 10
    while marker not in server.log and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    lines = [line for line in server.log.splitlines() if line.endswith(f"Not Found: {marker}")]
    assert lines == [f"DJANGO-SITE WARNING django.request: Not Found: {marker}"], server.log
