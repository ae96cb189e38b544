"""What the app sees of a TLS client certificate (mutual TLS): mod_ssl's environ keys.

With ``--ssl-cert-reqs optional`` or ``required`` (:mod:`kyoukai_h2fast.server.tls`), every TLS
connection's environ carries, as Apache's mod_ssl (``SSLOptions +StdEnvVars +ExportCertData``)
and the WSGI servers behind it name them:

* ``SSL_CLIENT_VERIFY``: ``SUCCESS`` when the client presented a certificate that OpenSSL
  verified against ``--ssl-ca-certs`` (a certificate that fails verification fails the
  handshake: the request never comes), ``NONE`` when it presented none (``optional``).

and with ``SUCCESS`` only:

* ``SSL_CLIENT_S_DN`` / ``SSL_CLIENT_I_DN``: the subject and issuer distinguished names as
  RFC 4514 strings (most specific first: ``CN=alice,O=Example,C=FR``; mod_ssl's default
  format since 2.3);
* ``SSL_CLIENT_S_DN_CN``: the subject's common name, when it has one;
* ``SSL_CLIENT_M_SERIAL``: the serial number, upper-case hexadecimal;
* ``SSL_CLIENT_V_START`` / ``SSL_CLIENT_V_END``: validity, as OpenSSL prints it
  (``Dec  7 21:48:08 2026 GMT``);
* ``SSL_CLIENT_CERT``: the certificate itself, PEM.

Without client certificates asked for (``none``, the default) no key is added. The keys are
computed once per connection, when it is made, and put into its base environ (which
:func:`kyoukai_h2fast.wsgi.environ.build_environ` copies per request): the per-request path is
the same with or without them. They hold only what the TLS handshake verified; headers a client
or proxy sends never become ``SSL_*`` keys (``HTTP_`` prefix).
"""
from __future__ import annotations

import ssl
from typing import Any

__all__ = ["client_cert_environ", "rfc4514_name"]

#: Attribute names of ``SSLSocket.getpeercert()`` -> RFC 4514 short names (others are kept
#: as Python names them, as OpenSSL does: ``emailAddress``, ``serialNumber``, ...).
_SHORT_NAMES = {
    "commonName": "CN", "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST",
    "organizationName": "O", "organizationalUnitName": "OU", "streetAddress": "STREET",
    "domainComponent": "DC", "userId": "UID",
}
_ESCAPED = frozenset('"+,;<>\\')


def client_cert_environ(ssl_object: Any) -> dict[str, str]:
    """The ``SSL_CLIENT_*`` environ keys of a connection (its ``ssl.SSLObject``): empty
    when its context does not ask for client certificates (see the module docstring)."""
    if ssl_object.context.verify_mode == ssl.CERT_NONE:
        return {}
    der = ssl_object.getpeercert(binary_form=True)
    info = ssl_object.getpeercert() if der is not None else None
    if not info:  # no certificate (``optional``)
        return {"SSL_CLIENT_VERIFY": "NONE"}
    keys = {
        "SSL_CLIENT_VERIFY": "SUCCESS",
        "SSL_CLIENT_S_DN": rfc4514_name(info.get("subject", ())),
        "SSL_CLIENT_I_DN": rfc4514_name(info.get("issuer", ())),
        "SSL_CLIENT_M_SERIAL": str(info.get("serialNumber", "")),
        "SSL_CLIENT_V_START": str(info.get("notBefore", "")),
        "SSL_CLIENT_V_END": str(info.get("notAfter", "")),
        "SSL_CLIENT_CERT": ssl.DER_cert_to_PEM_cert(der),
    }
    common_names = [value for rdn in info.get("subject", ()) for name, value in rdn
                    if name == "commonName"]
    if common_names:
        keys["SSL_CLIENT_S_DN_CN"] = common_names[-1]
    return keys


def rfc4514_name(rdns: Any) -> str:
    """A name as ``getpeercert()`` gives it (a tuple of RDNs, each a tuple of ``(name,
    value)`` pairs, in certificate order) as an RFC 4514 string: RDNs last to first, joined
    with ``,``; the attributes of a multi-valued RDN joined with ``+``; values escaped."""
    return ",".join("+".join(f"{_SHORT_NAMES.get(name, name)}={_escape(str(value))}"
                             for name, value in rdn) for rdn in reversed(rdns))


def _escape(value: str) -> str:
    """RFC 4514 §2.4: ``"+,;<>\\`` escaped; a leading ``#`` or space, a trailing space and
    NUL too."""
    out = "".join("\\" + c if c in _ESCAPED else "\\00" if c == "\0" else c for c in value)
    if out.startswith(("#", " ")):
        out = "\\" + out
    if out.endswith(" ") and not out.endswith("\\ "):
        out = out[:-1] + "\\ "
    return out
