"""``--root-path PREFIX``: the app mounted under a URL prefix. Requests under it reach the
app with ``SCRIPT_NAME`` = the prefix and ``PATH_INFO`` without it (PEP 3333), whole path
segments only; every other request gets the server's 404 without the app; static files are
inside the root path. Real server, HTTP/2 (httpx) and HTTP/1.1 (curl), both builds."""
from __future__ import annotations

import json
import os
import subprocess

import httpx
import pytest

from kyoukai_h2fast.config import ServerConfig
from kyoukai_h2fast.errors import ConfigError
from kyoukai_h2fast.process import cli
from tests.helpers.serverproc import ROOT
from tests.helpers.tools import require_tool

pytestmark = pytest.mark.timeout(60)

STATIC_DIR = os.path.join(ROOT, "tests", "served_apps")
ARGS = ("--root-path", "/api/v1/", "--static", f"/files={STATIC_DIR}")
SERVER_404 = "Not Found\n"


@pytest.fixture
def server(servers, impl):
    return servers.get("tests.served_apps.basic:wsgi_app", impl, args=ARGS)


def h2_get(server, path: str) -> httpx.Response:
    with httpx.Client(http1=False, http2=True, base_url=server.url, timeout=10) as client:
        response = client.get(path)
    assert response.http_version == "HTTP/2"
    return response


def environ_of(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return json.loads(response.text)


def test_a_path_under_the_prefix_reaches_the_app_with_script_name(server):
    env = environ_of(h2_get(server, "/api/v1/environ?x=1"))
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/api/v1", "/environ")
    assert env["RAW_URI"] == "/api/v1/environ?x=1"
    assert env["QUERY_STRING"] == "x=1"


def test_the_prefix_itself_reaches_the_app_with_an_empty_path_info(server):
    response = h2_get(server, "/api/v1")
    # the test app's own 404 names the PATH_INFO it got: empty
    assert (response.status_code, response.text) == (404, "not found: GET ")
    assert h2_get(server, "/api/v1/").text == "Hello, world!"


def test_the_prefix_matches_the_decoded_path(server):
    env = environ_of(h2_get(server, "/%61pi/v1/environ"))
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/api/v1", "/environ")


@pytest.mark.parametrize("path", ["/", "/environ", "/api", "/api/v10/environ",
                                  "/api/v1x", "/API/v1/environ", "/files/basic.py"])
def test_paths_outside_the_prefix_get_the_servers_404(server, path):
    response = h2_get(server, path)
    assert (response.status_code, response.text) == (404, SERVER_404)


def test_http1_under_and_outside_the_prefix(server):
    curl = require_tool("curl")
    out = subprocess.run([curl, "-sS", "--http1.1", f"{server.url}/api/v1/environ"],
                         capture_output=True, text=True, timeout=30)
    env = json.loads(out.stdout)
    assert (env["SCRIPT_NAME"], env["PATH_INFO"], env["SERVER_PROTOCOL"]) == \
        ("/api/v1", "/environ", "HTTP/1.1")
    out = subprocess.run([curl, "-sS", "--http1.1", "-o", "/dev/null", "-w", "%{http_code}",
                          f"{server.url}/other"], capture_output=True, text=True, timeout=30)
    assert out.stdout == "404"


def test_static_files_are_inside_the_root_path(server):
    response = h2_get(server, "/api/v1/files/basic.py")
    with open(os.path.join(STATIC_DIR, "basic.py"), "rb") as f:
        assert (response.status_code, response.content) == (200, f.read())


def test_a_kyoukai_style_app_under_a_root_path(servers, impl):
    server = servers.get("tests.served_apps.basic:kyoukai_app", impl,
                         args=("--root-path", "/k"))
    assert h2_get(server, "/k/").text == "Hello, world!"
    assert h2_get(server, "/k").text == "Hello, world!"  # werkzeug: "" is "/"
    assert (h2_get(server, "/").status_code, h2_get(server, "/x/").text) == (404, SERVER_404)


# ---- the option ------------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "stored"), [("/api/", "/api"), ("/", ""), ("", ""),
                                                ("/a/b", "/a/b")])
def test_the_command_line_drops_the_final_slash(given, stored):
    args = cli.parse_args(["--root-path", given], {})
    assert args.root_path == stored


@pytest.mark.parametrize("bad", ["api", "/api/", "/a//b", "/a/../b", "/./a", "/a b", "/a?b",
                                 "/a#b", "/a\\b", "/a\x00"])
def test_a_bad_root_path_is_a_config_error_naming_it(bad):
    with pytest.raises(ConfigError, match="--root-path"):
        ServerConfig(root_path=bad).validate()


def test_without_a_root_path_the_apps_runner_is_used_as_it_is():
    from kyoukai_h2fast.apps.runners import WSGIRunner
    from kyoukai_h2fast.server.component import H2KyoukaiComponent

    app = plain_app
    assert type(H2KyoukaiComponent(app, port=0).runner) is WSGIRunner
    runner = H2KyoukaiComponent(app, port=0, root_path="/p").runner
    assert type(runner).__name__ == "RootPathRunner" and runner.prefix == "/p"
    runner.shutdown()


def plain_app(environ, start_response):  # (a WSGI app for the in-process checks)
    start_response("200 OK", [])
    return [b""]
