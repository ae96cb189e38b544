"""Proxy headers (``--forwarded-allow-ips``): X-Forwarded-For/-Proto and RFC 7239 Forwarded
set REMOTE_ADDR and wsgi.url_scheme for trusted peers only; everyone else's are ignored. The
rules as a unit, then against the real server over HTTP/2 and HTTP/1.1."""
from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from kyoukai_h2fast.config import ServerConfig
from kyoukai_h2fast.errors import ConfigError
from kyoukai_h2fast.server.proxy_headers import ProxyHeaders, parse_forwarded
from tests.helpers.serverproc import ROOT

pytestmark = pytest.mark.timeout(120)


def base(**extra) -> dict:
    env = {"REMOTE_ADDR": "10.0.0.2", "REMOTE_PORT": "5555", "wsgi.url_scheme": "http",
           "HTTP_HOST": "example.org", "SERVER_PORT": "80"}
    env.update(extra)
    return env


# -- the rules --------------------------------------------------------------------------------
def test_untrusted_peer_changes_nothing():
    env = base(HTTP_X_FORWARDED_FOR="1.2.3.4", HTTP_X_FORWARDED_PROTO="https",
               HTTP_FORWARDED="for=5.6.7.8;proto=https")
    ProxyHeaders(("10.0.0.1",)).apply(env, "10.0.0.2")
    assert env == base(HTTP_X_FORWARDED_FOR="1.2.3.4", HTTP_X_FORWARDED_PROTO="https",
                       HTTP_FORWARDED="for=5.6.7.8;proto=https")


def test_trusted_peer_x_forwarded_for_and_proto():
    env = base(HTTP_X_FORWARDED_FOR="203.0.113.7", HTTP_X_FORWARDED_PROTO="https")
    ProxyHeaders(("10.0.0.0/24",)).apply(env, "10.0.0.2")
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"], env["wsgi.url_scheme"],
            env["SERVER_PORT"]) == ("203.0.113.7", "0", "https", "443")


def test_client_is_the_nearest_hop_that_is_not_a_trusted_proxy():
    env = base(HTTP_X_FORWARDED_FOR="198.51.100.9, 203.0.113.7, 10.0.0.5")
    ProxyHeaders(("10.0.0.0/8",)).apply(env, "10.0.0.2")
    assert env["REMOTE_ADDR"] == "203.0.113.7"  # 198.51.100.9 was said by an untrusted hop
    env = base(HTTP_X_FORWARDED_FOR="198.51.100.9, 203.0.113.7, 10.0.0.5")
    ProxyHeaders(("*",)).apply(env, "10.0.0.2")
    assert env["REMOTE_ADDR"] == "198.51.100.9"  # everyone trusted: the farthest


def test_forwarded_rfc7239_wins_and_carries_port_and_proto():
    env = base(HTTP_FORWARDED='for=192.0.2.60;proto=http;by=203.0.113.43, '
                              'For="[2001:db8:cafe::17]:4711";Proto=https',
               HTTP_X_FORWARDED_FOR="1.1.1.1")
    ProxyHeaders(("10.0.0.2",)).apply(env, "10.0.0.2")
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"], env["wsgi.url_scheme"]) == \
        ("2001:db8:cafe::17", "4711", "https")


def test_forwarded_parsing_rfc7239_4():
    assert parse_forwarded('for="_gazonk"') == [{"for": "_gazonk"}]
    assert parse_forwarded('For="[2001:db8:cafe::17]:4711"') == \
        [{"for": "[2001:db8:cafe::17]:4711"}]
    assert parse_forwarded("for=192.0.2.60;proto=http;by=203.0.113.43") == \
        [{"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}]
    assert parse_forwarded('for=192.0.2.43, for="[2001:db8:cafe::17]", junk') == \
        [{"for": "192.0.2.43"}, {"for": "[2001:db8:cafe::17]"}, {}]
    assert parse_forwarded('for="a,b;c";proto=https') == [{"for": "a,b;c", "proto": "https"}]


def test_a_scheme_other_than_http_or_https_is_ignored():
    env = base(HTTP_X_FORWARDED_PROTO="javascript")
    ProxyHeaders(("*",)).apply(env, "10.0.0.2")
    assert env["wsgi.url_scheme"] == "http"


def test_bad_allow_list_is_a_config_error_and_a_cli_exit_2():
    with pytest.raises(ConfigError):
        ServerConfig(forwarded_allow_ips=("not-an-ip",)).validate()
    done = subprocess.run([sys.executable, "-m", "kyoukai_h2fast", "--forwarded-allow-ips",
                           "10.0.0.1,bogus"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "forwarded-allow-ips" in done.stderr and done.stderr.count("\n") == 1


# -- the real server ----------------------------------------------------------------------------
HEADERS = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


def environ_over_both(server, headers) -> list[dict]:
    out = []
    for http2 in (True, False):
        with httpx.Client(http1=not http2, http2=http2, timeout=30) as c:
            r = c.get(server.url + "/environ", headers=headers)
            assert r.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
            out.append(json.loads(r.text))
    return out


def test_trusted_proxy_headers_set_remote_addr_and_scheme(servers, impl):
    server = servers.get(impl=impl, args=["--forwarded-allow-ips", "127.0.0.1"])
    for env in environ_over_both(server, HEADERS):
        assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"]) == ("203.0.113.7", "https")
    for env in environ_over_both(server, {"Forwarded": 'for="[2001:db8::1]:99";proto=https'}):
        assert (env["REMOTE_ADDR"], env["REMOTE_PORT"], env["wsgi.url_scheme"]) == \
            ("2001:db8::1", "99", "https")


def test_proxy_headers_are_ignored_by_default(servers, impl):
    server = servers.get(impl=impl)
    for env in environ_over_both(server, HEADERS):
        assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"]) == ("127.0.0.1", "http")
        assert env["HTTP_X_FORWARDED_FOR"] == "203.0.113.7"  # still visible to the app


def test_proxy_headers_from_a_peer_not_in_the_list_are_ignored(servers, impl):
    server = servers.get(impl=impl, args=["--forwarded-allow-ips", "10.0.0.0/8,::1"])
    for env in environ_over_both(server, HEADERS):
        assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"]) == ("127.0.0.1", "http")


# -- behind HAProxy as an h2c backend -------------------------------------------------------------
HAPROXY_CONFIG = """
global
    maxconn 100
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend www
    bind 127.0.0.2:{front}
    option forwardfor
    http-request set-header X-Forwarded-Proto https
    default_backend app
backend app
    server app1 127.0.0.1:{back} proto h2
"""


def test_behind_haproxy_as_h2c_backend_with_trusted_forwarded_headers(servers, impl, tmp_path):
    """curl (from 127.0.0.3) -> HAProxy (HTTP/1.1 in, h2c out, X-Forwarded-For) -> us
    (trusting 127.0.0.1): the app sees the real client and the scheme the proxy reports."""
    import shutil
    import socket
    import time

    from tests.helpers.tools import require_tool
    haproxy = shutil.which("haproxy") or shutil.which("/usr/sbin/haproxy")
    if haproxy is None:
        pytest.fail("haproxy is not installed (apt-get install -y haproxy)")
    server = servers.get(impl=impl, args=["--forwarded-allow-ips", "127.0.0.1"])
    with socket.socket() as probe:
        probe.bind(("127.0.0.2", 0))
        front = probe.getsockname()[1]
    config = tmp_path / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(front=front, back=server.port))
    proxy = subprocess.Popen([haproxy, "-db", "-f", str(config)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.2", front), timeout=1).close()
                break
            except OSError:
                assert proxy.poll() is None and time.monotonic() < deadline, \
                    proxy.stdout.read() if proxy.poll() is not None else "haproxy not ready"
                time.sleep(0.1)
        out = subprocess.run([require_tool("curl"), "-sS", "--http1.1", "--interface",
                              "127.0.0.3", f"http://127.0.0.2:{front}/environ"],
                             capture_output=True, text=True, timeout=30)
    finally:
        proxy.terminate()
        proxy.wait(10)
    assert out.returncode == 0, out.stderr
    env = json.loads(out.stdout)
    assert env["SERVER_PROTOCOL"] == "HTTP/2"  # HAProxy spoke h2c to us
    assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"]) == ("127.0.0.3", "https")
    assert env["HTTP_X_FORWARDED_FOR"] == "127.0.0.3"
