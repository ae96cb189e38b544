"""Starlette and FastAPI apps behind the server: JSON, streaming responses, a 1 MB upload,
background tasks, lifespan state and an exception (500, nothing of it sent), over HTTP/2
(httpx) and HTTP/1.1 (httpx)."""
from __future__ import annotations

import hashlib
import os
import time

import httpx
import pytest

pytestmark = pytest.mark.timeout(60)

APPS = {"starlette": "tests.served_apps.asgi_apps:starlette_app",
        "fastapi": "tests.served_apps.asgi_apps:fastapi_app"}


@pytest.fixture(params=sorted(APPS))
def framework(request) -> str:
    return request.param


@pytest.fixture
def server(servers, impl, framework):
    return servers.get(app=APPS[framework], impl=impl)


@pytest.fixture(params=["h2", "http1.1"])
def client(request):
    h2 = request.param == "h2"
    with httpx.Client(http1=not h2, http2=h2, timeout=20) as c:
        yield c


def test_json_with_lifespan_state(server, framework, client):
    if framework == "fastapi":
        r = client.get(server.url + "/items/7?q=x")
        assert r.json() == {"item_id": 7, "q": "x", "model": "loaded"}
    else:
        r = client.get(server.url + "/")
        assert r.json() == {"hello": "starlette", "db": "connected"}
    assert r.headers["content-type"] == "application/json"


def test_streaming_response(server, framework, client):
    r = client.get(server.url + "/stream")
    expected = ("".join(f"line {i}\n" for i in range(20)) if framework == "starlette"
                else "0,1,2,3,4,")
    assert r.status_code == 200 and r.text == expected


def test_upload_1mb(server, client):
    body = os.urandom(1024 * 1024)
    r = client.post(server.url + "/upload", content=body)
    assert r.json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def test_background_task_runs_after_the_response(server, client):
    key = f"k{time.monotonic_ns()}"
    assert client.get(server.url + f"/background?key={key}").status_code == 200
    deadline = time.monotonic() + 5
    while key not in client.get(server.url + "/background-done").json():
        assert time.monotonic() < deadline, "the background task never ran"
        time.sleep(0.02)


def test_exception_is_a_500_without_details(server, client):
    r = client.get(server.url + "/boom")
    assert r.status_code == 500
    assert b"secret" not in r.content


def test_starlette_under_root_path(servers, impl):
    server = servers.get(app=APPS["starlette"], impl=impl, args=("--root-path", "/api"))
    with httpx.Client(http2=True, http1=False, timeout=20) as c:
        assert c.get(server.url + "/api/").json() == {"hello": "starlette", "db": "connected"}
        assert c.get(server.url + "/api/stream").text.startswith("line 0\n")
        assert c.get(server.url + "/stream").status_code == 404  # outside the mount point
