"""Static files (``--static /prefix=DIR``, issue 22): served by the real server without the app.

Over HTTP/2 (httpx, curl ``--http2-prior-knowledge``, a raw h2 client) and HTTP/1.1 (httpx,
curl, a raw client), both builds: content types, ETag/Last-Modified and 304, single ranges
(206, 416, If-Range), HEAD, precompressed twins, directories and the index file, 405 for other
methods, 404 for every way out of the directory (``..`` raw and encoded, NUL, backslash,
hidden names, symbolic links leading out), large files in bounded memory (zero-copy over
cleartext HTTP/1.1, blocks under flow control otherwise, TLS too), and the option errors.
"""
from __future__ import annotations

import asyncio
import email.utils
import gzip
import hashlib
import os
import random
import re
import ssl
import subprocess
import sys
import time

import httpx
import pytest

from tests.helpers.h2client import H2Client
from tests.helpers.http1raw import H1Raw, request
from tests.helpers.serverproc import ROOT
from tests.helpers.tools import require_tool

pytestmark = pytest.mark.timeout(120)

APP = "tests.served_apps.metrics:app"
PAGE = b"<!doctype html><title>page</title>" + b"<p>static</p>" * 400
BR_TWIN = b"BR-TWIN-BYTES (opaque to the server)"
HELLO = b"hello static\n"
BIG = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """``<tmp>/static`` (served at /static, with an index file), ``<tmp>/plain`` (served at
    /plain, no index) and ``<tmp>/secret.txt`` beside them (never served)."""
    top = tmp_path_factory.mktemp("static-files")
    (top / "secret.txt").write_bytes(b"TOP-SECRET\n")
    root = top / "static"
    (root / "sub").mkdir(parents=True)
    (root / ".well-known").mkdir()
    files = {
        "hello.txt": HELLO, "style.css": b"body{}", "app.js": b"let a=1;",
        "data.json": b"{}", "img.png": b"\x89PNG\r\n\x1a\nxx", "noext": b"\x00\x01",
        "archive.tar.gz": gzip.compress(b"tar"), "empty.txt": b"",
        "page.html": PAGE, "page.html.gz": gzip.compress(PAGE), "page.html.br": BR_TWIN,
        "only-gz.txt": HELLO * 3, "only-gz.txt.gz": gzip.compress(HELLO * 3),
        "sub/index.html": b"<h1>index</h1>", "sub/other.txt": b"other",
        ".hidden": b"hidden", ".well-known/acme.txt": b"acme",
        "big.bin": random.Random(7).randbytes(BIG),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    os.symlink(top / "secret.txt", root / "escape.txt")          # out: refused
    os.symlink(top, root / "escdir")                             # out: refused
    os.symlink(root / "hello.txt", root / "inner.txt")           # in: served
    plain = top / "plain"
    (plain / "dir").mkdir(parents=True)
    (plain / "dir" / "readme.txt").write_bytes(b"a directory without index.html")
    (plain / "file.txt").write_bytes(b"plain file")
    (plain / "index.html").write_bytes(b"plain index")
    return {"top": top, "root": root, "plain": plain, "files": files}


def static_args(tree) -> list[str]:
    return ["--static", f"/static={tree['root']}", "--static", f"/plain/={tree['plain']}",
            "--static-index", "index.html"]


@pytest.fixture
def server(servers, impl, tree):
    return servers.get(APP, impl=impl, args=static_args(tree))


def clients(server):
    """An HTTP/2 and an HTTP/1.1 httpx client, by name."""
    return {"HTTP/2": httpx.Client(http1=False, http2=True, base_url=server.url),
            "HTTP/1.1": httpx.Client(http1=True, http2=False, base_url=server.url)}


@pytest.fixture
def both(server):
    made = clients(server)
    yield made
    for client in made.values():
        client.close()


PROTOCOLS = ["HTTP/2", "HTTP/1.1"]


# -- files, types, the app beside them -----------------------------------------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_files_are_served_with_their_content_type(both, tree, protocol):
    client = both[protocol]
    expected = {"hello.txt": "text/plain; charset=utf-8", "style.css": "text/css; charset=utf-8",
                "data.json": "application/json", "img.png": "image/png",
                "noext": "application/octet-stream", "archive.tar.gz": "application/gzip",
                "page.html": "text/html; charset=utf-8", "inner.txt": "text/plain; charset=utf-8",
                ".well-known/acme.txt": "text/plain; charset=utf-8"}
    for name, kind in expected.items():
        reply = client.get("/static/" + name, headers={"Accept-Encoding": "identity"})
        assert reply.status_code == 200, (name, reply.text)
        assert reply.http_version == protocol
        assert reply.headers["content-type"] == kind, name
        assert reply.content == tree["files"].get(name, HELLO), name
        assert reply.headers["content-length"] == str(len(reply.content))
        assert reply.headers["accept-ranges"] == "bytes"
        assert reply.headers["cache-control"] == "no-cache"
        assert "content-encoding" not in reply.headers  # (a .tar.gz is its own bytes)
    js = client.get("/static/app.js")
    assert js.headers["content-type"].split(";")[0] in ("application/javascript",
                                                       "text/javascript")
    empty = client.get("/static/empty.txt")
    assert empty.status_code == 200 and empty.content == b""
    assert empty.headers["content-length"] == "0"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_requests_outside_the_prefixes_go_to_the_app(both, protocol):
    client = both[protocol]
    assert client.get("/").content == b"Hello, world!"
    beside = client.get("/staticx/hello.txt")  # a prefix is a whole path segment
    assert beside.status_code == 404 and beside.content.startswith(b"not found: GET /staticx")
    assert client.post("/echo", content=b"abc").content == b"abc"


def test_curl_gets_files_over_both_protocols(server, tree, tmp_path):
    curl = require_tool("curl")
    for flag in ("--http2-prior-knowledge", "--http1.1"):
        out = tmp_path / "out"
        done = subprocess.run([curl, "-s", flag, "-o", str(out), "-w", "%{http_code}",
                               server.url + "/static/page.html"], capture_output=True,
                              text=True, timeout=30)
        assert done.stdout == "200" and out.read_bytes() == PAGE


# -- validators: 304 ------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_etag_and_if_none_match(both, tree, protocol):
    client = both[protocol]
    first = client.get("/static/hello.txt")
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    for condition in (etag, "W/" + etag, f'"other", {etag}', "*"):
        again = client.get("/static/hello.txt", headers={"If-None-Match": condition})
        assert again.status_code == 304, condition
        assert again.content == b"" and again.headers["etag"] == etag
        assert again.headers["cache-control"] == "no-cache"
    changed = client.get("/static/hello.txt", headers={"If-None-Match": '"stale"'})
    assert changed.status_code == 200 and changed.content == HELLO
    # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    both_fields = client.get("/static/hello.txt", headers={
        "If-None-Match": '"stale"', "If-Modified-Since": first.headers["last-modified"]})
    assert both_fields.status_code == 200


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_last_modified_and_if_modified_since(both, tree, protocol):
    client = both[protocol]
    first = client.get("/static/hello.txt")
    modified = first.headers["last-modified"]
    mtime = os.stat(tree["root"] / "hello.txt").st_mtime
    assert email.utils.parsedate_to_datetime(modified).timestamp() == int(mtime)
    assert client.get("/static/hello.txt",
                      headers={"If-Modified-Since": modified}).status_code == 304
    later = email.utils.formatdate(mtime + 3600, usegmt=True)
    assert client.get("/static/hello.txt",
                      headers={"If-Modified-Since": later}).status_code == 304
    earlier = email.utils.formatdate(mtime - 3600, usegmt=True)
    assert client.get("/static/hello.txt",
                      headers={"If-Modified-Since": earlier}).status_code == 200
    assert client.get("/static/hello.txt",
                      headers={"If-Modified-Since": "yesterday"}).status_code == 200


# -- ranges ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_single_ranges(both, tree, protocol):
    client = both[protocol]
    page, size = PAGE, len(PAGE)
    identity = {"Accept-Encoding": "identity"}
    for spec, first, last in (("0-4", 0, 4), ("10-", 10, size - 1), ("-7", size - 7, size - 1),
                              (f"100-{size + 50}", 100, size - 1), ("-99999", 0, size - 1)):
        reply = client.get("/static/page.html", headers={**identity, "Range": "bytes=" + spec})
        assert reply.status_code == 206, spec
        assert reply.headers["content-range"] == f"bytes {first}-{last}/{size}"
        assert reply.content == page[first:last + 1]
        assert reply.headers["content-length"] == str(last + 1 - first)
    for spec in (f"{size}-", f"{size + 10}-{size + 20}", "-0"):
        reply = client.get("/static/page.html", headers={**identity, "Range": "bytes=" + spec})
        assert reply.status_code == 416, spec
        assert reply.headers["content-range"] == f"bytes */{size}"
    # Not a single byte range: the whole file.
    for value in ("bytes=0-1,5-6", "items=0-1", "bytes=5-1", "bytes=x-y"):
        reply = client.get("/static/page.html", headers={**identity, "Range": value})
        assert reply.status_code == 200 and reply.content == page, value
    etag = client.get("/static/page.html", headers=identity).headers["etag"]
    current = client.get("/static/page.html",
                         headers={**identity, "Range": "bytes=0-1", "If-Range": etag})
    assert current.status_code == 206 and current.content == page[:2]
    stale = client.get("/static/page.html",
                       headers={**identity, "Range": "bytes=0-1", "If-Range": '"old"'})
    assert stale.status_code == 200 and stale.content == page


def test_ranges_with_curl(server):
    curl = require_tool("curl")
    for flag in ("--http2-prior-knowledge", "--http1.1"):
        done = subprocess.run([curl, "-s", flag, "-r", "2-6", server.url + "/static/hello.txt"],
                              capture_output=True, timeout=30)
        assert done.stdout == HELLO[2:7]


# -- HEAD, methods ---------------------------------------------------------------------------------
def test_head_has_the_fields_and_no_body(server):
    for protocol in PROTOCOLS:
        with clients(server)[protocol] as client:
            reply = client.head("/static/page.html", headers={"Accept-Encoding": "identity"})
            assert reply.status_code == 200 and reply.content == b""
            assert reply.headers["content-length"] == str(len(PAGE))
            assert reply.headers["content-type"] == "text/html; charset=utf-8"
            big = client.head("/static/big.bin")
            assert big.headers["content-length"] == str(BIG) and big.content == b""
    with H1Raw(server.port) as raw:  # the connection goes on after a HEAD
        raw.send(request("HEAD", "/static/hello.txt") + request("GET", "/static/hello.txt"))
        head, get = raw.replies("HEAD", "GET")
        assert head.status == 200 and head.body == b""
        assert head.header("content-length") == str(len(HELLO))
        assert get.body == HELLO


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_other_methods_are_405_with_allow(both, protocol):
    client = both[protocol]
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        reply = client.request(method, "/static/hello.txt", content=b"x")
        assert reply.status_code == 405, method
        assert reply.headers["allow"] == "GET, HEAD"
    assert client.get("/static/hello.txt").content == HELLO  # the connection goes on


# -- precompressed twins ---------------------------------------------------------------------------
def _raw(client: httpx.Client, path: str, **headers) -> tuple[httpx.Response, bytes]:
    """The response and its bytes as sent (not decoded)."""
    with client.stream("GET", path, headers=headers) as reply:
        return reply, b"".join(reply.iter_raw())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_precompressed_twins(both, protocol):
    client = both[protocol]
    reply, body = _raw(client, "/static/page.html", **{"Accept-Encoding": "gzip"})
    assert reply.headers["content-encoding"] == "gzip" and gzip.decompress(body) == PAGE
    assert reply.headers["vary"] == "Accept-Encoding"
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    gz_etag = reply.headers["etag"]
    reply, body = _raw(client, "/static/page.html", **{"Accept-Encoding": "gzip, br"})
    assert reply.headers["content-encoding"] == "br" and body == BR_TWIN
    br_etag = reply.headers["etag"]
    reply, body = _raw(client, "/static/page.html", **{"Accept-Encoding": "br;q=0, gzip"})
    assert reply.headers["content-encoding"] == "gzip"
    reply, body = _raw(client, "/static/page.html", **{"Accept-Encoding": "identity"})
    assert "content-encoding" not in reply.headers and body == PAGE
    assert reply.headers["vary"] == "Accept-Encoding"  # the response varies all the same
    assert len({gz_etag, br_etag, reply.headers["etag"]}) == 3  # one per representation
    reply, body = _raw(client, "/static/only-gz.txt", **{"Accept-Encoding": "br, *;q=0.5"})
    assert reply.headers["content-encoding"] == "gzip" and gzip.decompress(body) == HELLO * 3
    reply, body = _raw(client, "/static/hello.txt", **{"Accept-Encoding": "gzip, br"})
    assert "content-encoding" not in reply.headers and "vary" not in reply.headers
    # A conditional request and a range apply to the twin that would be sent.
    again = client.get("/static/page.html",
                       headers={"Accept-Encoding": "gzip", "If-None-Match": gz_etag})
    assert again.status_code == 304 and again.headers["vary"] == "Accept-Encoding"
    reply, body = _raw(client, "/static/page.html", **{"Accept-Encoding": "br",
                                                       "Range": "bytes=0-1"})
    assert reply.status_code == 206 and body == BR_TWIN[:2]


# -- directories ----------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_directories(both, protocol):
    client = both[protocol]
    index = client.get("/static/sub/")
    assert index.status_code == 200 and index.content == b"<h1>index</h1>"
    assert index.headers["content-type"] == "text/html; charset=utf-8"
    moved = client.get("/static/sub?x=1")
    assert moved.status_code == 301 and moved.headers["location"] == "/static/sub/?x=1"
    assert client.get("/static").status_code == 404  # no index.html at its top
    assert client.get("/static/").status_code == 404
    top = client.get("/plain")
    assert top.status_code == 301 and top.headers["location"] == "/plain/"
    assert client.get("/plain/").content == b"plain index"
    # A directory without an index file is 404.
    assert client.get("/plain/dir/").status_code == 404
    assert client.get("/plain/dir").status_code == 404
    assert client.get("/plain/file.txt").content == b"plain file"
    assert client.get("/static/hello.txt/").status_code == 404


# -- nothing outside the directory -----------------------------------------------------------------
ESCAPES = [
    "/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/%2E%2E/secret.txt",
    "/static/..%2fsecret.txt", "/static/%2e%2e%2fsecret.txt", "/static/sub/../../secret.txt",
    "/static/sub/%2e%2e/%2e%2e/secret.txt", "/static/./hello.txt", "/static/%2e/hello.txt",
    "/static//etc/passwd", "/static/%2fetc%2fpasswd", "/static/hello.txt%00.png",
    "/static/%00", "/static/..%5csecret.txt", "/static/.hidden", "/static/%2ehidden",
    "/static/escape.txt", "/static/escdir/secret.txt", "/static/escdir/plain/file.txt",
    "/static/nothing-here", "/plain/../static/hello.txt",
]


def _refused(status: int, body: bytes) -> None:
    assert status == 404, (status, body)
    assert b"TOP-SECRET" not in body and b"root:" not in body and body != HELLO


@pytest.mark.parametrize("target", ESCAPES)
def test_escapes_are_404_over_http11(server, target):
    with H1Raw(server.port) as raw:
        raw.send(request("GET", target))
        reply = raw.reply()
        _refused(reply.status, reply.body)


def test_escapes_are_404_over_http2(server):
    with H2Client("127.0.0.1", server.port, validate=False) as client:
        for target in ESCAPES:
            sid = client.request_raw([(b":method", b"GET"), (b":scheme", b"http"),
                                      (b":authority", b"x"), (b":path", target.encode())])
            headers, body = client.response(sid)
            _refused(int(headers[":status"]), body)


def test_a_symlink_inside_the_directory_is_served(both):
    assert both["HTTP/2"].get("/static/inner.txt").content == HELLO


# -- large files ----------------------------------------------------------------------------------
def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_large_file_in_bounded_memory(servers, impl, tree, protocol):
    """20 MiB, over each protocol, three times: the server's peak RSS grows by much less
    than the file (HTTP/1.1 in cleartext: sendfile; HTTP/2: blocks under flow control)."""
    server = servers.fresh(APP, impl=impl, args=static_args(tree))
    expected = _digest(tree["files"]["big.bin"])
    with clients(server)[protocol] as client:
        assert client.get("/static/hello.txt").content == HELLO  # warmed up
        before = server.peak_rss_kib()
        for _ in range(3):
            reply = client.get("/static/big.bin", timeout=60)
            assert reply.status_code == 200 and _digest(reply.content) == expected
        middle = client.get("/static/big.bin", headers={"Range": "bytes=5000000-15999999"})
        assert middle.status_code == 206
        assert middle.content == tree["files"]["big.bin"][5_000_000:16_000_000]
    grown = server.peak_rss_kib() - before
    assert grown < 8 * 1024, f"peak RSS grew by {grown} KiB for a {BIG >> 20} MiB file"


def test_a_large_file_over_tls(servers, impl, tree, tls_files):
    server = servers.fresh(APP, impl=impl, tls=True, args=static_args(tree))
    expected = _digest(tree["files"]["big.bin"])
    for http2 in (True, False):
        with httpx.Client(http1=not http2, http2=http2,
                          verify=ssl.create_default_context(cafile=tls_files[2])) as client:
            reply = client.get(server.url + "/static/big.bin", timeout=60)
            assert reply.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
            assert reply.status_code == 200 and _digest(reply.content) == expected


def _open_fds(pid: int) -> int:
    """Open descriptors, not counting the eventfds the worker threads sleep on (one per
    thread: a thread started meanwhile is no leak)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        count += target != "anon_inode:[eventfd]"
    return count


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_client_gone_in_the_middle_of_a_large_file(servers, impl, tree, protocol):
    """The file (and the duplicate socket of a zero-copy send) is closed; the server goes on."""
    server = servers.fresh(APP, impl=impl, args=static_args(tree))
    with clients(server)[protocol] as client:
        assert client.get("/static/hello.txt").content == HELLO
    time.sleep(0.3)
    baseline = _open_fds(server.pid)
    for _ in range(3):
        if protocol == "HTTP/1.1":
            with H1Raw(server.port) as raw:
                raw.send(request("GET", "/static/big.bin"))
                assert raw.sock.recv(65536)
        else:
            with H2Client("127.0.0.1", server.port, auto_ack=False) as h2:
                sid = h2.request("/static/big.bin")
                h2.wait_for(lambda event, sid=sid: h2.body(sid))
    deadline = time.monotonic() + 10
    while _open_fds(server.pid) > baseline and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _open_fds(server.pid) <= baseline, os.listdir(f"/proc/{server.pid}/fd")
    with clients(server)[protocol] as client:
        assert client.get("/static/hello.txt").content == HELLO


@pytest.mark.parametrize("loop_kind", ["uvloop", "asyncio"])
def test_cleartext_http11_sends_files_zero_copy(tree, monkeypatch, loop_kind):
    """In cleartext HTTP/1.1 the file goes from the page cache to the socket by
    ``os.sendfile`` (on uvloop too, which has no ``loop.sendfile``); HTTP/2 reads blocks."""
    from kyoukai_h2fast.server.component import new_event_loop, start_server
    from tests.served_apps.basic import wsgi_app

    sent: list[int] = []
    real_sendfile = os.sendfile

    def counting_sendfile(out_fd, in_fd, offset, count):
        n = real_sendfile(out_fd, in_fd, offset, count)
        sent.append(n)
        return n
    monkeypatch.setattr(os, "sendfile", counting_sendfile)
    expected = tree["files"]["big.bin"]

    async def fetch(port: int, target: str, headers=()) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request("GET", target, headers=headers))
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head).group(1))
        body = await reader.readexactly(length)
        writer.close()
        return body

    async def main() -> None:
        server = await start_server(wsgi_app, "127.0.0.1", 0,
                                    static=(("/static", str(tree["root"])),))
        try:
            assert await fetch(server.port, "/static/big.bin") == expected
            assert sum(sent) == BIG
            ranged = await fetch(server.port, "/static/big.bin",
                                 [("Range", "bytes=1000-2000999")])
            assert ranged == expected[1000:2001000] and sum(sent) == BIG + 2_000_000
        finally:
            await server.shutdown(1.0)

    loop = new_event_loop(loop_kind)
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


@pytest.mark.parametrize("app, args", [
    ("tests.served_apps.basic:kyoukai_app", []),
    ("tests.served_apps.basic:wsgi_app", ["--wsgi-threads", "0"])])
def test_apps_on_the_event_loop(servers, impl, tree, app, args):
    """Kyoukai-style and inline WSGI apps have no thread pool: blocks are read on the loop."""
    server = servers.get(app, impl=impl, args=static_args(tree) + args)
    expected = _digest(tree["files"]["big.bin"])
    with clients(server)["HTTP/2"] as client:
        assert client.get("/").content == b"Hello, world!"
        reply = client.get("/static/big.bin", timeout=60)
        assert _digest(reply.content) == expected
        assert client.get("/static/hello.txt").content == HELLO


# -- the options ----------------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kyoukai_h2fast", "--port", "0", *args],
                          capture_output=True, text=True, timeout=30,
                          cwd=ROOT)


@pytest.mark.parametrize("args, words", [
    (["--static", "/x=/no/such/directory"], ["--static /x=/no/such/directory",
                                              "no such directory"]),
    (["--static", "/x=/etc/hostname"], ["--static /x=/etc/hostname", "not a directory"]),
    (["--static", "nothing"], ["--static", "/PREFIX=DIR"]),
    (["--static", "x=/tmp"], ["--static", "/PREFIX=DIR"]),
    (["--static", "/x="], ["--static", "/PREFIX=DIR"]),
    (["--static", "/a/../b=/tmp"], ["--static /a/../b=/tmp", "prefix"]),
    (["--static", "/x=/tmp", "--static", "/x/=/tmp"], ["--static /x/=/tmp", "twice"]),
    (["--static", "/x=/tmp", "--static-index", "a/b"], ["--static-index", "file name"]),
])
def test_bad_static_options_are_one_line_exit_2(args, words):
    done = _cli(*args)
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_without_an_index_option_and_with_a_cache_control(servers, impl, tree):
    server = servers.get(APP, impl=impl, args=[
        "--static", f"/static={tree['root']}",
        "--static-cache-control", "public, max-age=31536000, immutable"])
    for protocol in PROTOCOLS:
        with clients(server)[protocol] as client:
            reply = client.get("/static/hello.txt")
            assert reply.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert client.get("/static/sub/").status_code == 404  # directories: 404
            assert client.get("/static/sub").status_code == 404
            assert client.get("/plain/file.txt").status_code == 404  # (the app's 404)
