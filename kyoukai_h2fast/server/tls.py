"""The server's TLS context (RFC 9113 §9.2) and clear errors for bad certificate/key files.

:func:`make_ssl_context` builds the context: TLS 1.2 or later (or 1.3 only), ALPN ``h2``, no
compression, AEAD ciphers with ephemeral key exchange for TLS 1.2 (or the operator's list),
client certificates verified against the operator's CA when asked for (mutual TLS: ``none``,
``optional`` or ``required``; what the app sees of them is
:mod:`kyoukai_h2fast.wsgi.client_cert`), an encrypted key opened with its password;
:func:`ssl_context_for` does it from a :class:`~kyoukai_h2fast.config.ServerConfig` (the
password read from its file). When the files cannot be loaded it raises
:class:`TLSFileError` naming the file at fault and why, in one line, instead of OpenSSL's
``[SSL] PEM lib (_ssl.c:3905)``: a file that is missing or unreadable, a certificate file
without a certificate, a key file without a private key, the two files swapped, an encrypted
(password-protected) key, a key that does not belong to the certificate, a damaged PEM block.

The files are first loaded as they are; they are only inspected after OpenSSL refused them, so
the heuristics here can never reject a pair that works. An encrypted key never makes OpenSSL
prompt for a pass phrase on the terminal (the server would hang at start): without a password
given, it is an error; with a wrong one, too.
"""
from __future__ import annotations

import re
import ssl
from typing import TYPE_CHECKING, NoReturn

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import ServerConfig

__all__ = ["make_ssl_context", "ssl_context_for", "alpn_protocols", "TLSFileError",
           "DEFAULT_CIPHERS"]

#: TLS 1.2 ciphers by default: ephemeral key exchange and AEAD (RFC 9113 §9.2.2).
DEFAULT_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
_MIN_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
              "required": ssl.CERT_REQUIRED}

_CERTIFICATE = re.compile(rb"-----BEGIN (?:TRUSTED |X509 )?CERTIFICATE-----")
_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:(?:RSA|EC|DSA|ENCRYPTED) )?PRIVATE KEY-----")
_ENCRYPTED_KEY = re.compile(rb"-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: *4, *ENCRYPTED")
_SSL_SOURCE = re.compile(r"\s*\(_ssl\.c:\d+\)$")


class TLSFileError(ConfigError):
    """A file that cannot serve TLS: ``which`` file (the option that names it:
    ``"certfile"``, ``"keyfile"``, ``"ssl-ca-certs"``, ``"ssl-keyfile-password-file"``), its
    ``path``, and the ``reason`` in words."""

    def __init__(self, which: str, path: str, reason: str) -> None:
        super().__init__(f"{which} {path}: {reason}")
        self.which = which
        self.path = path
        self.reason = reason


class _PassPhraseNeeded(Exception):
    """OpenSSL asked for the pass phrase of an encrypted key."""


def _refuse_pass_phrase() -> NoReturn:
    raise _PassPhraseNeeded


def alpn_protocols(http1: bool = True) -> list[str]:
    """What ALPN offers: ``h2``, then ``http/1.1`` when HTTP/1.1 is served too."""
    return ["h2", "http/1.1"] if http1 else ["h2"]


def make_ssl_context(certfile: str, keyfile: str | None = None, http1: bool = True, *,
                     ca_certs: str | None = None, cert_reqs: str = "none",
                     min_version: str = "1.2", ciphers: str | None = None,
                     password: str | bytes | None = None) -> ssl.SSLContext:
    """A server TLS context for HTTP/2 (RFC 9113 §9.2): TLS >= ``min_version`` (``"1.2"`` or
    ``"1.3"``), ALPN ``h2`` (then ``http/1.1`` when ``http1``), no compression, ``ciphers``
    for TLS 1.2 (default :data:`DEFAULT_CIPHERS`: AEAD with ephemeral key exchange).

    ``keyfile`` None: the private key is in ``certfile``; ``password``: the key's password
    (an encrypted key without it is an error, never a prompt). ``cert_reqs`` ``"optional"``
    or ``"required"`` asks the client for a certificate issued by a CA of ``ca_certs``
    (``"required"``: the handshake fails without one). Raises :class:`TLSFileError` when the
    files cannot be used (see the module docstring), ConfigError for other bad values.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.minimum_version = _MIN_VERSIONS[min_version]
        verify_mode = _CERT_REQS[cert_reqs]
    except KeyError as e:
        raise ConfigError(f"not a TLS setting: {e.args[0]!r}") from None
    context.options |= ssl.OP_NO_COMPRESSION
    try:
        context.set_ciphers(ciphers or DEFAULT_CIPHERS)
    except ssl.SSLError:
        raise ConfigError(f"--ssl-ciphers {ciphers}: OpenSSL finds no cipher it supports in "
                          "this list (TLS 1.3 suites are not set here)") from None
    load_cert_chain(context, certfile, keyfile, password)
    if verify_mode != ssl.CERT_NONE:
        if not ca_certs:
            raise ConfigError(f"--ssl-cert-reqs {cert_reqs} needs --ssl-ca-certs FILE")
        load_ca_certs(context, ca_certs)
        context.verify_mode = verify_mode
    context.set_alpn_protocols(alpn_protocols(http1))
    return context


def ssl_context_for(config: ServerConfig) -> ssl.SSLContext:
    """:func:`make_ssl_context` for ``config`` (which must have a ``certfile``), the key's
    password read from ``ssl_keyfile_password_file`` when given."""
    if config.certfile is None:
        raise ConfigError("TLS needs --certfile and --keyfile")
    return make_ssl_context(
        config.certfile, config.keyfile, config.http1, ca_certs=config.ssl_ca_certs,
        cert_reqs=config.ssl_cert_reqs, min_version=config.ssl_min_version,
        ciphers=config.ssl_ciphers, password=keyfile_password(config))


def keyfile_password(config: ServerConfig) -> str | bytes | None:
    """The keyfile's password: ``ssl_keyfile_password``, or the first line of
    ``ssl_keyfile_password_file`` (its line end not included); None when neither is set."""
    path = config.ssl_keyfile_password_file
    if path is None:
        return config.ssl_keyfile_password
    which = "ssl-keyfile-password-file"
    content = _read(which, path)
    line = content.split(b"\n", 1)[0].rstrip(b"\r")
    if not line:
        raise TLSFileError(which, path, "its first line is empty: it must be the password")
    return line


def load_cert_chain(context: ssl.SSLContext, certfile: str, keyfile: str | None,
                    password: str | bytes | None = None) -> None:
    """``context.load_cert_chain`` that never prompts and explains its failures."""
    try:
        context.load_cert_chain(certfile, keyfile, password=password or _refuse_pass_phrase)
    except _PassPhraseNeeded:
        raise _encrypted(certfile, keyfile) from None
    except OSError as e:  # ssl.SSLError included
        raise diagnose(certfile, keyfile, e, password_given=bool(password)) from None


def load_ca_certs(context: ssl.SSLContext, ca_certs: str) -> None:
    """``context.load_verify_locations(ca_certs)``, its failures in words."""
    which = "ssl-ca-certs"
    content = _read(which, ca_certs)
    try:
        context.load_verify_locations(cafile=ca_certs)
    except OSError as e:  # ssl.SSLError included
        if not _CERTIFICATE.search(content):
            raise TLSFileError(which, ca_certs, "holds no PEM certificate (no '-----BEGIN "
                               "CERTIFICATE-----' line)") from None
        why = _ssl_reason(e)
        raise TLSFileError(which, ca_certs, "its certificates cannot be decoded (" + (
            f"OpenSSL: {why})" if why else "a damaged PEM block)")) from None


def _encrypted(certfile: str, keyfile: str | None) -> TLSFileError:
    which, path = ("keyfile", keyfile) if keyfile else ("certfile", certfile)
    return TLSFileError(which, path, "the private key is encrypted (password-protected), "
                        "which the server cannot use without its password: give "
                        "--ssl-keyfile-password-file FILE (or decrypt it with `openssl pkey "
                        f"-in {path} -out plain-key.pem` and give that file)")


def _read(which: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TLSFileError(which, path, f"cannot read it: {e.strerror or e}") from None


def _ssl_reason(error: OSError) -> str:
    """OpenSSL's words without the ``(_ssl.c:NNNN)`` tail; empty when they only say "PEM lib"
    (the undecodable-PEM catch-all, which tells a user nothing)."""
    text = str(error.args[1]) if len(error.args) > 1 else str(error)
    text = _SSL_SOURCE.sub("", text)
    return "" if text.endswith("] PEM lib") else text


def diagnose(certfile: str, keyfile: str | None, error: OSError,
             password_given: bool = False) -> TLSFileError:
    """Why OpenSSL refused the pair (``error``; ``password_given``: with a password for the
    key): which file is wrong, in words."""
    try:
        cert_pem = _read("certfile", certfile)
        key_which, key_path = ("keyfile", keyfile) if keyfile else ("certfile", certfile)
        key_pem = _read(key_which, key_path) if keyfile else cert_pem
    except TLSFileError as e:
        return e
    cert_has_cert = _CERTIFICATE.search(cert_pem) is not None
    key_has_key = _PRIVATE_KEY.search(key_pem) is not None
    if keyfile and not cert_has_cert and not key_has_key and _PRIVATE_KEY.search(cert_pem) \
            and _CERTIFICATE.search(key_pem):
        return TLSFileError("certfile", certfile, "holds a private key, and the keyfile "
                            f"{keyfile} holds the certificate: the two files are swapped")
    if not cert_has_cert:
        return TLSFileError("certfile", certfile, "holds a private key, not a certificate"
                            if _PRIVATE_KEY.search(cert_pem) else
                            "is not a PEM certificate (no '-----BEGIN CERTIFICATE-----' line)")
    if not key_has_key:
        return TLSFileError(key_which, key_path, "holds a certificate, not a private key"
                            if keyfile and _CERTIFICATE.search(key_pem) else
                            "has no PEM private key (no '-----BEGIN PRIVATE KEY-----' line)")
    if _ENCRYPTED_KEY.search(key_pem):
        if password_given:
            return TLSFileError(key_which, key_path, "the password given does not decrypt "
                                "this private key (wrong password)")
        return _encrypted(certfile, keyfile)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=certfile)
    except ssl.SSLError as e:
        why = _ssl_reason(e)
        return TLSFileError("certfile", certfile, "its certificate cannot be decoded ("
                            + (f"OpenSSL: {why})" if why else "a damaged PEM block)"))
    if getattr(error, "reason", None) == "KEY_VALUES_MISMATCH":
        return TLSFileError(key_which, key_path, "this private key does not belong to the "
                            f"certificate in {certfile} (key values mismatch)")
    why = _ssl_reason(error)
    return TLSFileError(key_which, key_path, "its private key cannot be decoded (" + (
        f"OpenSSL: {why})" if why else
        "a damaged PEM block, or a key type OpenSSL does not support)"))
