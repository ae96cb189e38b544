"""TLS options against the real server: client certificates (mutual TLS) over HTTP/2 and
HTTP/1.1 with httpx and curl, what the app sees of them (mod_ssl's ``SSL_CLIENT_*`` keys), the
minimum TLS version, the TLS 1.2 cipher list, and an encrypted key opened with its password.

One CA (trustme) issues the server's certificate and alice's client certificate; another CA
issues mallory's, which the server must refuse. The bad values of these options are in
``tests/process/test_tls_option_errors.py``.
"""
from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess

import httpx
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.helpers.builds import default_impl
from tests.helpers.serverproc import ServerProcess

pytestmark = pytest.mark.timeout(120)

APP = "tests.served_apps.basic:wsgi_app"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("mtls")
    ca, other_ca = trustme.CA(), trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    alice = ca.issue_cert("alice@example.org", common_name="alice")
    mallory = other_ca.issue_cert("mallory@example.org", common_name="mallory")
    files = {}

    def put(name: str, blob) -> None:
        files[name] = str(d / name)
        blob.write_to_path(files[name])

    put("ca.pem", ca.cert_pem)
    put("server.pem", server.cert_chain_pems[0])
    put("server-key.pem", server.private_key_pem)
    put("alice.pem", alice.cert_chain_pems[0])
    put("alice-key.pem", alice.private_key_pem)
    put("mallory.pem", mallory.cert_chain_pems[0])
    put("mallory-key.pem", mallory.private_key_pem)
    key = serialization.load_pem_private_key(server.private_key_pem.bytes(), None)
    (d / "server-key-encrypted.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret pass")))
    files["server-key-encrypted.pem"] = str(d / "server-key-encrypted.pem")
    (d / "password.txt").write_text("s3cret pass\n")
    files["password.txt"] = str(d / "password.txt")
    files["alice-cert"] = x509.load_pem_x509_certificate(alice.cert_chain_pems[0].bytes())
    return files


@pytest.fixture(scope="module")
def tls_servers(pki):
    """Servers by (impl, extra args), started on first use, stopped after the module."""
    running: dict = {}

    def get(impl: str, *args: str, keyfile: str = "server-key.pem") -> ServerProcess:
        key = (impl, keyfile, args)
        if key not in running:
            running[key] = ServerProcess(APP, impl, (pki["server.pem"], pki[keyfile]), args)
        return running[key]

    yield get
    for server in running.values():
        server.stop()


def _mtls(pki: dict, mode: str) -> tuple[str, ...]:
    return ("--ssl-ca-certs", pki["ca.pem"], "--ssl-cert-reqs", mode)


def _client_context(pki: dict, who: str | None = "alice", **versions) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki["ca.pem"])
    if who:
        context.load_cert_chain(pki[f"{who}.pem"], pki[f"{who}-key.pem"])
    for name, version in versions.items():
        setattr(context, name, version)
    return context


def _environ(server: ServerProcess, context: ssl.SSLContext, http2: bool = True) -> dict:
    with httpx.Client(http2=http2, http1=not http2, verify=context, timeout=10) as client:
        response = client.get(f"https://localhost:{server.port}/environ")
    assert response.status_code == 200
    assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    return response.json()


def _ssl_keys(environ: dict) -> dict:
    return {k: v for k, v in environ.items() if k.startswith("SSL_")}


def _assert_alice(pki: dict, environ: dict) -> None:
    cert = pki["alice-cert"]
    assert environ["SSL_CLIENT_VERIFY"] == "SUCCESS"
    # RFC 4514 strings, as cryptography (and mod_ssl) write them
    assert environ["SSL_CLIENT_S_DN"] == cert.subject.rfc4514_string()
    assert environ["SSL_CLIENT_I_DN"] == cert.issuer.rfc4514_string()
    assert environ["SSL_CLIENT_S_DN"].startswith("CN=alice,")
    assert environ["SSL_CLIENT_S_DN_CN"] == "alice"
    assert int(environ["SSL_CLIENT_M_SERIAL"], 16) == cert.serial_number
    assert ssl.PEM_cert_to_DER_cert(environ["SSL_CLIENT_CERT"]) == cert.public_bytes(
        serialization.Encoding.DER)
    assert environ["SSL_CLIENT_V_END"].endswith(" GMT")


def _assert_refused(server: ServerProcess, context: ssl.SSLContext) -> None:
    """The TLS handshake fails (under TLS 1.3 the client learns it at its first read or
    write): no response, and no timeout either."""
    with pytest.raises(httpx.TransportError) as caught:
        _environ(server, context)
    assert not isinstance(caught.value, httpx.TimeoutException), caught.value


# ---- --ssl-cert-reqs required --------------------------------------------------------------------

@pytest.mark.parametrize("http2", [True, False], ids=["h2", "http1.1"])
def test_required_client_certificate_reaches_the_app(pki, tls_servers, impl, http2):
    server = tls_servers(impl, *_mtls(pki, "required"))
    environ = _environ(server, _client_context(pki), http2)
    _assert_alice(pki, environ)
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["SERVER_PROTOCOL"] == ("HTTP/2" if http2 else "HTTP/1.1")
    assert "(TLS+ALPN h2,http/1.1, client certificates required;" in server.log


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
@pytest.mark.parametrize("version", ["--http2", "--http1.1"])
def test_curl_with_cert_and_key(pki, tls_servers, impl, version):
    server = tls_servers(impl, *_mtls(pki, "required"))
    url = f"https://localhost:{server.port}/environ"
    out = subprocess.run(["curl", "-sS", "--max-time", "10", version, "--cacert", pki["ca.pem"],
                          "--cert", pki["alice.pem"], "--key", pki["alice-key.pem"], url],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    environ = json.loads(out.stdout)
    _assert_alice(pki, environ)
    assert environ["SERVER_PROTOCOL"] == ("HTTP/2" if version == "--http2" else "HTTP/1.1")
    # and without a certificate: refused
    out = subprocess.run(["curl", "-sS", "--max-time", "10", version, "--cacert", pki["ca.pem"],
                          url], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and out.stdout == "", out


@pytest.mark.parametrize("who", [None, "mallory"], ids=["no-cert", "other-ca"])
def test_required_refuses_a_client_without_a_valid_certificate(pki, tls_servers, impl, who):
    server = tls_servers(impl, *_mtls(pki, "required"))
    _assert_refused(server, _client_context(pki, who))
    # the handshake failed; the server still serves the others
    _assert_alice(pki, _environ(server, _client_context(pki)))
    assert server.alive()


# ---- --ssl-cert-reqs optional, none ------------------------------------------------------------

def test_optional_serves_clients_without_a_certificate(pki, tls_servers, impl):
    server = tls_servers(impl, *_mtls(pki, "optional"))
    for http2 in (True, False):
        environ = _environ(server, _client_context(pki, None), http2)
        assert _ssl_keys(environ) == {"SSL_CLIENT_VERIFY": "NONE"}
        _assert_alice(pki, _environ(server, _client_context(pki), http2))


def test_optional_still_refuses_a_certificate_it_cannot_verify(pki, tls_servers, impl):
    server = tls_servers(impl, *_mtls(pki, "optional"))
    _assert_refused(server, _client_context(pki, "mallory"))


def test_without_client_certificates_no_ssl_keys(pki, tls_servers):
    server = tls_servers(default_impl())  # (the keys are the same code in both builds)
    environ = _environ(server, _client_context(pki))     # a certificate nobody asked for
    assert _ssl_keys(environ) == {}


# ---- --ssl-min-version, --ssl-ciphers, --ssl-keyfile-password-file ------------------------------

def _handshake(port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        return context.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


def test_min_version_13_refuses_a_tls12_client(pki, tls_servers):
    server = tls_servers(default_impl(), "--ssl-min-version", "1.3")
    with pytest.raises(ssl.SSLError):
        _handshake(server.port, _client_context(
            pki, None, maximum_version=ssl.TLSVersion.TLSv1_2)).close()
    with _handshake(server.port, _client_context(pki, None)) as tls:
        assert tls.version() == "TLSv1.3"
    assert _environ(server, _client_context(pki, None))["wsgi.url_scheme"] == "https"


def test_default_min_version_accepts_tls12(pki, tls_servers):
    server = tls_servers(default_impl())
    with _handshake(server.port, _client_context(
            pki, None, maximum_version=ssl.TLSVersion.TLSv1_2)) as tls:
        assert tls.version() == "TLSv1.2"


def test_encrypted_key_with_password_file_and_cipher_list(pki, tls_servers):
    server = tls_servers(default_impl(), "--ssl-keyfile-password-file", pki["password.txt"],
                         "--ssl-ciphers", "ECDHE+CHACHA20",
                         keyfile="server-key-encrypted.pem")
    with _handshake(server.port, _client_context(
            pki, None, maximum_version=ssl.TLSVersion.TLSv1_2)) as tls:
        assert "CHACHA20" in tls.cipher()[0]
    assert _environ(server, _client_context(pki, None))["wsgi.url_scheme"] == "https"
