"""``wsgi.file_wrapper`` (PEP 3333, "Optional Platform-Specific File Handling").

Every environ carries :class:`kyoukai_h2fast.wsgi.filewrapper.FileWrapper`; Flask's ``send_file``
(through werkzeug's ``wrap_file``) then reads the file in blocks of at least 256 KiB instead of
8 KiB, the download arrives byte-identical under flow control, and the file is closed when the
response ends, when the client resets the stream, and when the client goes away. Real clients
(curl, httpx, the raw h2 client) against the real server, both builds, thread-pool and inline
WSGI.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import time
import uuid

import h2.errors
import h2.events
import httpx
import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

from kyoukai_h2fast.wsgi.environ import make_base_environ
from kyoukai_h2fast.wsgi.filewrapper import MAX_BLOCK_SIZE, MIN_BLOCK_SIZE, FileWrapper
from tests.helpers.h2client import H2Client
from tests.helpers.tools import require_tool
from tests.served_apps.files import SIZES, content

pytestmark = pytest.mark.timeout(120)

APP = "tests.served_apps.files:flask_app"
BIG = "big.bin"


@pytest.fixture(params=[(), ("--wsgi-threads", "0")], ids=["pool", "inline"])
def mode(request):
    return request.param


# ---- the wrapper -------------------------------------------------------------------------------

class _File(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[int] = []
        self.close_calls = 0

    def read(self, size=-1):
        self.reads.append(size)
        return super().read(size)

    def close(self):
        self.close_calls += 1
        super().close()


@pytest.mark.parametrize("asked, used", [
    (8192, MIN_BLOCK_SIZE), (1, MIN_BLOCK_SIZE), (MIN_BLOCK_SIZE, MIN_BLOCK_SIZE),
    (512 * 1024, 512 * 1024), (64 * 1024 * 1024, MAX_BLOCK_SIZE)])
def test_blocks_are_at_least_256_kib_and_at_most_1_mib(asked, used):
    data = os.urandom(3 * MAX_BLOCK_SIZE + 17)
    f = _File(data)
    wrapper = FileWrapper(f, asked)
    assert iter(wrapper) is wrapper
    assert b"".join(wrapper) == data
    assert set(f.reads) == {used}
    assert MIN_BLOCK_SIZE == 256 * 1024 and MAX_BLOCK_SIZE == 1024 * 1024


def test_close_closes_the_file_once_and_ends_the_iteration():
    f = _File(b"x" * (MIN_BLOCK_SIZE * 2))
    wrapper = FileWrapper(f)
    assert len(next(wrapper)) == MIN_BLOCK_SIZE
    wrapper.close()
    wrapper.close()
    assert f.closed and f.close_calls == 1
    with pytest.raises(StopIteration):
        next(wrapper)


def test_file_without_close_or_seek_is_still_served():
    class ReadOnly:
        def __init__(self):
            self._data = io.BytesIO(b"abc")

        def read(self, n):
            return self._data.read(n)

    wrapper = FileWrapper(ReadOnly())
    assert not wrapper.seekable() and wrapper.tell() is None
    assert list(wrapper) == [b"abc"]
    wrapper.close()


def test_werkzeug_range_request_seeks_through_the_wrapper():
    data = os.urandom(2 * MIN_BLOCK_SIZE)
    f = _File(data)
    environ = EnvironBuilder(headers={"Range": "bytes=300000-300099"}).get_environ()
    environ["wsgi.file_wrapper"] = FileWrapper
    response = Response(wrap_file(environ, f), direct_passthrough=True)
    response.content_length = len(data)
    response.make_conditional(Request(environ), accept_ranges=True, complete_length=len(data))
    body = b"".join(response.response)
    assert response.status_code == 206 and body == data[300000:300100]
    assert f.reads == [MIN_BLOCK_SIZE]  # it sought to the start: one block read, not two
    response.response.close()
    assert f.closed


def test_every_environ_has_the_file_wrapper_pep3333():
    env = make_base_environ(url_scheme="http", server_addr=None, peer_addr=None,
                            multithread=True, errors=None)
    assert env["wsgi.file_wrapper"] is FileWrapper


# ---- Flask send_file on the real server ----------------------------------------------------------

def _open_fds_on(pid: int, directory: str) -> list[str]:
    """Paths under ``directory`` the process ``pid`` has open."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:  # closed meanwhile
            continue
        if target.startswith(directory + os.sep):
            found.append(target)
    return found


def _wait_until(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {timeout} s")
        time.sleep(0.05)


def _served(servers, impl, mode):
    server = servers.get(app=APP, impl=impl, args=mode)
    with httpx.Client(http1=False, http2=True, timeout=30) as client:
        where = client.get(server.url + "/where").json()
    assert where["pid"] == server.pid
    return server, where["dir"]


def test_environ_file_wrapper_is_ours_on_the_wire(servers, impl, mode):
    server = servers.get(app=APP, impl=impl, args=mode)
    with httpx.Client(http1=False, http2=True, timeout=30) as client:
        r = client.get(server.url + "/wrapper")
    assert r.json() == {"wrapper": "kyoukai_h2fast.wsgi.filewrapper.FileWrapper"}


def test_send_file_download_is_byte_identical_and_the_file_closed_curl(
        servers, impl, mode, tmp_path):
    curl = require_tool("curl")
    server, files_dir = _served(servers, impl, mode)
    out_file = tmp_path / "download.bin"
    out = subprocess.run([curl, "-sS", "--http2-prior-knowledge", "-o", str(out_file), "-w",
                          "%{http_code} %{http_version} %{size_download}",
                          server.url + f"/send/{BIG}"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"200 2 {SIZES[BIG]}"
    assert hashlib.sha256(out_file.read_bytes()).digest() == hashlib.sha256(
        content(BIG)).digest()
    _wait_until(lambda: not _open_fds_on(server.pid, files_dir), "the file closed")


def test_send_file_reads_in_large_blocks_and_closes_httpx(servers, impl, mode):
    server, _ = _served(servers, impl, mode)
    tag = uuid.uuid4().hex
    with httpx.Client(http1=False, http2=True, timeout=60) as client:
        r = client.get(server.url + f"/recorded/{BIG}?tag={tag}")
        assert r.status_code == 200 and r.http_version == "HTTP/2"
        assert r.content == content(BIG)
        record = _wait_until(lambda: (lambda rec: rec if rec["closed"] else None)(
            client.get(server.url + f"/reads/{tag}").json()), "close() of the file")
    # werkzeug asked for 8192-byte blocks; the wrapper reads 256 KiB at a time
    assert record["reads"] and set(record["reads"]) == {MIN_BLOCK_SIZE}, record["reads"]
    assert len(record["reads"]) == SIZES[BIG] // MIN_BLOCK_SIZE + 2  # + the short and empty


def test_file_closed_when_the_client_resets_the_stream_mid_download(servers, impl, mode):
    server, files_dir = _served(servers, impl, mode)
    tag = uuid.uuid4().hex
    host, port = server.url.split("//")[1].split(":")
    with H2Client(host, int(port), auto_ack=False) as c:
        sid = c.request(f"/recorded/{BIG}?tag={tag}")
        # our 64 KiB windows stay shut: the server is stuck mid-file
        c.wait_for(lambda ev: c.of(sid, h2.events.DataReceived))
        c.read_for(0.2)
        assert 0 < len(c.body(sid)) < SIZES[BIG]
        assert _open_fds_on(server.pid, files_dir)  # the file is open while it waits
        c.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        c.ack(sid)  # give the connection window back for the next response
        check = c.request(f"/reads/{tag}")
        _, body = c.response(check)
        # the connection goes on; the app ran and the file is being served or closed
        assert json.loads(body)["reads"]

    def closed():
        with httpx.Client(http1=False, http2=True, timeout=30) as client:
            return client.get(server.url + f"/reads/{tag}").json()["closed"]

    _wait_until(closed, "close() of the file after RST_STREAM(CANCEL)")
    _wait_until(lambda: not _open_fds_on(server.pid, files_dir), "the file descriptor closed")


def test_file_closed_when_the_client_goes_away_mid_download_curl(servers, impl, mode, tmp_path):
    curl = require_tool("curl")
    server, files_dir = _served(servers, impl, mode)
    tag = uuid.uuid4().hex
    # 1 MiB/s for 1 s of a 6 MiB file: curl gives up and closes the connection
    out = subprocess.run([curl, "-sS", "--http2-prior-knowledge", "--limit-rate", "1M",
                          "--max-time", "1", "-o", str(tmp_path / "partial.bin"),
                          server.url + f"/recorded/{BIG}?tag={tag}"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 28, out  # CURLE_OPERATION_TIMEDOUT
    assert (tmp_path / "partial.bin").stat().st_size < SIZES[BIG]

    def closed():
        with httpx.Client(http1=False, http2=True, timeout=30) as client:
            return client.get(server.url + f"/reads/{tag}").json()["closed"]

    _wait_until(closed, "close() of the file after the client left")
    _wait_until(lambda: not _open_fds_on(server.pid, files_dir), "the file descriptor closed")
