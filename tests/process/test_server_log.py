"""The server's own log: the CLI configures its loggers only (an app's own handlers print each
line once), and every error line about a request names it (method, target, client, stream)
over HTTP/2 and HTTP/1.1."""
from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.helpers.h2client import H2Client
from tests.helpers.http1raw import H1Raw, request

pytestmark = pytest.mark.timeout(120)


def wait_for(server, pattern: str, count: int = 1, timeout: float = 10.0) -> list[str]:
    """The server's log lines matching ``pattern`` once there are ``count`` (or at timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in server.log.splitlines() if re.search(pattern, line)]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines


# -- which loggers the CLI configures (issue 19.8) ------------------------------------------
def test_an_apps_own_log_handler_prints_each_line_once(servers, impl):
    """An app whose logger has a handler of its own (and propagates, as Django's does with
    DEBUG=True): each of its lines is printed once. The CLI used to configure the root logger
    (logging.basicConfig), which printed every such line a second time."""
    server = servers.fresh("tests.served_apps.log_lines:wsgi_app", impl=impl)
    with httpx.Client(http1=False, http2=True) as h2, \
            httpx.Client(http1=True, http2=False) as h1:
        assert h2.get(server.url + "/over-h2").text == "logged"
        assert h1.get(server.url + "/over-h1").text == "logged"
    for path in ("/over-h2", "/over-h1"):
        wait_for(server, f"app warning for {path}$")
        time.sleep(0.3)  # (a second copy would follow at once)
        lines = wait_for(server, f"app warning for {path}$")
        assert lines == [f"APP-HANDLER WARNING app warning for {path}"], server.log
    # The server's own lines keep their format on its own handler.
    assert re.search(r"^\S+ \S+ INFO kyoukai_h2fast: kyoukai_h2fast \S+ serving wsgi app on ",
                     server.log, re.M), server.log


# -- error lines name the request (issue 19.9) ---------------------------------------------
def _h2_request(server, path: str, *, body: bytes | None = None, length: int | None = None):
    """A request on a connection of its own: (client, its port)."""
    c = H2Client("127.0.0.1", server.port)
    if length is None:
        c.request(path, body=body)
    else:  # a body that stops after ``body``
        sid = c.request_raw([(b":method", b"POST"), (b":scheme", b"http"),
                             (b":authority", b"localhost"), (b":path", path.encode()),
                             (b"content-length", str(length).encode())], end_stream=False)
        c.send_body(sid, body or b"", end_stream=False)
    return c, c.sock.getsockname()[1]


def _h1_request(server, path: str, *, body: bytes | None = None, length: int | None = None):
    c = H1Raw(server.port)
    if length is None:
        c.send(request("GET", path))
    else:
        c.send(request("POST", path, headers=[("Content-Length", str(length))]) + (body or b""))
    return c, c.sock.getsockname()[1]


CASES = [  # path, what the line says, request keywords
    ("/raise", "app raised on GET /raise", {}),
    ("/bad-status", "app gave an invalid response on GET /bad-status", {}),
    ("/stream-fail", "app iterator failed on GET /stream-fail", {}),
    ("/echo", "request body timed out on POST /echo", {"body": b"abc", "length": 10}),
]


def test_error_lines_name_method_target_client_and_stream(servers, impl):
    """App raised, invalid response, iterator failed, body timeout: each line says which
    request it is about (it said "stream 1", or nothing at all over HTTP/1.1)."""
    server = servers.fresh(impl=impl, args=["--body-timeout", "0.5"])
    clients = []
    try:
        for path, says, kw in CASES:
            for send, where in ((_h2_request, "stream 1"), (_h1_request, "HTTP/1.1 request 1")):
                client, port = send(server, path, **kw)
                clients.append(client)
                if send is _h2_request:  # the client reads (and acknowledges) its response,
                    # as any client does: a stream whose window stays shut gets no more of the
                    # app's chunks pulled, so its iterator's failure would wait for the window
                    try:
                        client.wait_for(lambda _, c=client: c.stream_ended(1)
                                        or c.stream_reset(1) is not None, timeout=5)
                    except TimeoutError:
                        pass  # (the body-timeout case: the line below is what counts)
                expected = f"{says} from 127.0.0.1:{port} ({where})"
                assert wait_for(server, re.escape(expected)), (expected, server.log)
    finally:
        for client in clients:
            client.close()
    # (a body timeout may be seen by the app's read and by the connection's watchdog: two
    # lines, each naming the request)
    for line in server.log.splitlines():
        if " ERROR " in line or "no request body bytes" in line:
            assert re.search(r" on (GET|POST) /\S+ from 127\.0\.0\.1:\d+ "
                             r"\((stream|HTTP/1\.1 request) 1\)", line), line
