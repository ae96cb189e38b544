"""The server's TLS context (RFC 9113 §9.2) and clear errors for bad certificate/key files.

:func:`make_ssl_context` builds the context: TLS 1.2 or later, ALPN ``h2``, no compression,
AEAD ciphers with ephemeral key exchange for TLS 1.2. When the files cannot be loaded it raises
:class:`TLSFileError` naming the file at fault and why, in one line, instead of OpenSSL's
``[SSL] PEM lib (_ssl.c:3905)``: a file that is missing or unreadable, a certificate file
without a certificate, a key file without a private key, the two files swapped, an encrypted
(password-protected) key, a key that does not belong to the certificate, a damaged PEM block.

The files are first loaded as they are; they are only inspected after OpenSSL refused them, so
the heuristics here can never reject a pair that works. An encrypted key never makes OpenSSL
prompt for a pass phrase on the terminal (the server would hang at start): it is an error.
"""
from __future__ import annotations

import re
import ssl
from typing import NoReturn

from ..errors import ConfigError

__all__ = ["make_ssl_context", "alpn_protocols", "TLSFileError"]

_CERTIFICATE = re.compile(rb"-----BEGIN (?:TRUSTED |X509 )?CERTIFICATE-----")
_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:(?:RSA|EC|DSA|ENCRYPTED) )?PRIVATE KEY-----")
_ENCRYPTED_KEY = re.compile(rb"-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: *4, *ENCRYPTED")
_SSL_SOURCE = re.compile(r"\s*\(_ssl\.c:\d+\)$")


class TLSFileError(ConfigError):
    """A certificate or key file that cannot serve TLS: ``which`` file (``"certfile"`` or
    ``"keyfile"``), its ``path``, and the ``reason`` in words."""

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


def make_ssl_context(certfile: str, keyfile: str | None = None,
                     http1: bool = True) -> ssl.SSLContext:
    """A server TLS context for HTTP/2 (RFC 9113 §9.2): TLS >= 1.2, ALPN ``h2`` (then
    ``http/1.1`` when ``http1``), no compression, AEAD ciphers with ephemeral key exchange
    for TLS 1.2.

    ``keyfile`` None: the private key is in ``certfile``. Raises :class:`TLSFileError` when
    the files cannot be used (see the module docstring).
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    load_cert_chain(context, certfile, keyfile)
    context.set_alpn_protocols(alpn_protocols(http1))
    return context


def load_cert_chain(context: ssl.SSLContext, certfile: str, keyfile: str | None) -> None:
    """``context.load_cert_chain`` that never prompts and explains its failures."""
    try:
        context.load_cert_chain(certfile, keyfile, password=_refuse_pass_phrase)
    except _PassPhraseNeeded:
        raise _encrypted(certfile, keyfile) from None
    except OSError as e:  # ssl.SSLError included
        raise diagnose(certfile, keyfile, e) from None


def _encrypted(certfile: str, keyfile: str | None) -> TLSFileError:
    which, path = ("keyfile", keyfile) if keyfile else ("certfile", certfile)
    return TLSFileError(which, path, "the private key is encrypted (password-protected), "
                        f"which the server cannot use: decrypt it with `openssl pkey -in {path} "
                        "-out plain-key.pem` and give that file")


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


def diagnose(certfile: str, keyfile: str | None, error: OSError) -> TLSFileError:
    """Why OpenSSL refused the pair (``error``): which file is wrong, in words."""
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
