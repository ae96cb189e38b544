"""The client certificate as environ keys (kyoukai_h2fast.wsgi.client_cert), in memory: RFC 4514
names with their escapes (checked against cryptography's writer), and the keys of a TLS
handshake made over memory BIOs (no socket) for each ``verify_mode``.
"""
from __future__ import annotations

import ssl

import pytest
import trustme
from cryptography import x509
from cryptography.x509.oid import NameOID

from kyoukai_h2fast.wsgi.client_cert import client_cert_environ, rfc4514_name


@pytest.mark.parametrize("value", ["alice", "Smith, John", "a+b", 'quote"d', "semi;colon",
                                   "<tag>", "back\\slash", "#hash", " leading", "trailing ",
                                   "é ü", "  ", "x\0y"])
def test_rfc4514_values_are_escaped_as_cryptography_writes_them(value):
    name = ((("countryName", "FR"),), (("organizationName", "Example"),),
            (("commonName", value),))
    expected = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
                          x509.NameAttribute(NameOID.COMMON_NAME, value)]).rfc4514_string()
    assert rfc4514_name(name) == expected


def test_multi_valued_rdn_and_unknown_attribute_names():
    name = ((("domainComponent", "org"),), (("commonName", "a"), ("userId", "42")),
            (("emailAddress", "a@example.org"),))
    assert rfc4514_name(name) == "emailAddress=a@example.org,CN=a+UID=42,DC=org"
    assert rfc4514_name(()) == ""


def _handshake(verify_mode: int, with_cert: bool) -> ssl.SSLObject:
    """A TLS handshake over memory BIOs; returns the server's SSLObject."""
    ca = trustme.CA()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    server_ctx.verify_mode = verify_mode
    ca.configure_trust(server_ctx)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(client_ctx)
    if with_cert:
        ca.issue_cert("bob@example.org", common_name="bob").configure_cert(client_ctx)
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="localhost")
    for _ in range(10):
        for side in (client, server):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    client.write(b"x")            # (TLS 1.3: the server takes the client's certificate)
    s_in.write(c_out.read())
    assert server.read(1) == b"x"
    return server


def test_keys_of_a_verified_certificate():
    keys = client_cert_environ(_handshake(ssl.CERT_REQUIRED, True))
    assert keys["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert keys["SSL_CLIENT_S_DN"].startswith("CN=bob,") and keys["SSL_CLIENT_S_DN_CN"] == "bob"
    assert keys["SSL_CLIENT_I_DN"].startswith("OU=Testing CA #") and ",O=trustme" in keys[
        "SSL_CLIENT_I_DN"]
    assert keys["SSL_CLIENT_CERT"].startswith("-----BEGIN CERTIFICATE-----\n")
    assert int(keys["SSL_CLIENT_M_SERIAL"], 16) > 0
    assert set(keys) == {"SSL_CLIENT_VERIFY", "SSL_CLIENT_S_DN", "SSL_CLIENT_I_DN",
                         "SSL_CLIENT_S_DN_CN", "SSL_CLIENT_M_SERIAL", "SSL_CLIENT_V_START",
                         "SSL_CLIENT_V_END", "SSL_CLIENT_CERT"}


def test_optional_without_a_certificate_says_none():
    assert client_cert_environ(_handshake(ssl.CERT_OPTIONAL, False)) == {
        "SSL_CLIENT_VERIFY": "NONE"}


def test_no_keys_when_certificates_are_not_asked_for():
    assert client_cert_environ(_handshake(ssl.CERT_NONE, True)) == {}
