"""Real HTTP/2 clients against the real server: httpx, curl, nghttp, over TLS (ALPN h2) and
cleartext prior-knowledge h2c, on the compiled build and the pure twins."""
from __future__ import annotations

import hashlib
import os
import re
import ssl
import subprocess

import httpx
import pytest

from tests.helpers.tools import require_tool

pytestmark = pytest.mark.timeout(120)


def _client(server, tls_files) -> httpx.Client:
    if server.url.startswith("https"):
        return httpx.Client(http2=True, timeout=30,
                            verify=ssl.create_default_context(cafile=tls_files[2]))
    return httpx.Client(http1=False, http2=True, timeout=30)


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "tls"])
def test_httpx_get_is_http2(servers, impl, tls, tls_files):
    server = servers.get(impl=impl, tls=tls)
    url = server.url.replace("127.0.0.1", "localhost") if tls else server.url
    with _client(server, tls_files) as client:
        r = client.get(url + "/")
    assert r.http_version == "HTTP/2"
    assert r.status_code == 200
    assert r.text == "Hello, world!"
    assert r.headers["content-type"] == "text/plain"


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "tls"])
def test_upload_5mb_and_download_4mb_are_byte_identical(servers, impl, tls, tls_files):
    server = servers.get(impl=impl, tls=tls)
    url = server.url.replace("127.0.0.1", "localhost") if tls else server.url
    payload = os.urandom(5 * 1024 * 1024)
    with _client(server, tls_files) as client:
        up = client.post(url + "/echo", content=payload)
        down = client.get(url + f"/bytes/{4 * 1024 * 1024}")
    assert up.status_code == 200 and up.http_version == "HTTP/2"
    assert hashlib.sha256(up.content).digest() == hashlib.sha256(payload).digest()
    expected = (bytes(range(256)) * 256 * 64)[: 4 * 1024 * 1024]
    assert len(down.content) == 4 * 1024 * 1024
    assert down.content == expected


def test_curl_prior_knowledge_h2c(servers, impl):
    curl = require_tool("curl")
    server = servers.get(impl=impl)
    out = subprocess.run([curl, "-sS", "--http2-prior-knowledge", "-w", "\n%{http_version}",
                          server.url + "/"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    body, version = out.stdout.rsplit("\n", 1)
    assert (body, version) == ("Hello, world!", "2")


def test_curl_tls_alpn_h2(servers, impl, tls_files):
    curl = require_tool("curl")
    server = servers.get(impl=impl, tls=True)
    url = server.url.replace("127.0.0.1", "localhost")
    out = subprocess.run([curl, "-sS", "--http2", "--cacert", tls_files[2], "-w",
                          "\n%{http_version}", url + "/"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    body, version = out.stdout.rsplit("\n", 1)
    assert (body, version) == ("Hello, world!", "2")


def test_curl_post_body_over_tls(servers, impl, tls_files, tmp_path):
    curl = require_tool("curl")
    server = servers.get(impl=impl, tls=True)
    url = server.url.replace("127.0.0.1", "localhost")
    data = os.urandom(300_000)
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    out = subprocess.run([curl, "-sS", "--http2", "--cacert", tls_files[2], "--data-binary",
                          f"@{src}", url + "/sha256"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{len(data)} {hashlib.sha256(data).hexdigest()}"


def test_nghttp_multiplexes_requests_on_one_connection(servers, impl):
    nghttp = require_tool("nghttp")
    server = servers.get(impl=impl)
    urls = [server.url + "/", server.url + "/environ", server.url + "/bytes/100000"]
    out = subprocess.run([nghttp, "-n", "-s", *urls], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    # nghttp -s prints one statistics line per response: all three, with 200
    stats = [line.split() for line in out.stdout.splitlines()
             if re.match(r"\s*\d+\s+\+", line)]
    assert len(stats) == 3, out.stdout
    assert sorted(row[-1] for row in stats) == ["/", "/bytes/100000", "/environ"]
    assert all(row[4] == "200" for row in stats), out.stdout


def test_http1_client_gets_a_clear_505_not_garbage_when_http1_is_off(servers, impl):
    curl = require_tool("curl")
    server = servers.get(impl=impl, args=["--no-http1"])
    out = subprocess.run([curl, "-sS", "-i", "--http1.1", server.url + "/"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("HTTP/1.1 505")
    assert "HTTP/2 only" in out.stdout


def test_failed_tls_handshakes_leave_the_server_serving(servers, impl, tls_files):
    """Plain-text bytes and half-open connections on the TLS port: no traceback, the server
    keeps serving TLS clients."""
    import socket

    server = servers.get(impl=impl, tls=True)
    for payload in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\x05hello", b""):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        if payload:
            s.sendall(payload)
        s.close()
    url = server.url.replace("127.0.0.1", "localhost")
    with httpx.Client(http2=True, verify=ssl.create_default_context(cafile=tls_files[2])) as c:
        assert c.get(url + "/").text == "Hello, world!"
    assert "Traceback" not in server.log
