"""Bad values of the TLS options (``--ssl-*``) and of the HTTP/2 keep-alive options: one line
naming the option and why, exit code 2, before anything is served; a password never shows in
the output. Most cases run ``main()`` in this process (fast: nothing is served when the values
are bad); one runs the real command line. Also the API: ``make_ssl_context`` with a password.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from kyoukai_h2fast.config import ServerConfig
from kyoukai_h2fast.errors import ConfigError
from kyoukai_h2fast.process.cli import main
from kyoukai_h2fast.server.tls import TLSFileError, make_ssl_context
from tests.helpers.serverproc import ROOT

pytestmark = pytest.mark.timeout(60)

PREFIX = "kyoukai-h2fast: error: "
PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("tls-options")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    out = {}

    def put(name: str, data: bytes) -> None:
        out[name] = str(d / name)
        (d / name).write_bytes(data)

    put("ca.pem", ca.cert_pem.bytes())
    put("cert.pem", cert.cert_chain_pems[0].bytes())
    put("key.pem", cert.private_key_pem.bytes())
    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), None)
    put("encrypted-key.pem", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSWORD.encode())))
    put("password.txt", PASSWORD.encode() + b"\r\nsecond line ignored\n")
    put("wrong-password.txt", b"not it\n")
    put("empty.txt", b"\n")
    put("garbage.pem", b"this is no certificate\n")
    out["missing"] = str(d / "missing.pem")
    out["dir"] = str(d)
    return out


def _error(capsys, *argv: str) -> str:
    """Run the CLI with ``argv``; it must fail: its one stderr line (without the prefix)."""
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0][len(PREFIX):]


def _fill(text: str, files: dict) -> str:
    """``text`` with each ``{name}`` replaced by the path of that file."""
    return re.sub(r"\{([\w.-]+)\}", lambda m: files[m.group(1)], text)


def _tls(files: dict, key: str = "key.pem") -> list[str]:
    return ["--certfile", files["cert.pem"], "--keyfile", files[key], "--port", "0"]


# (extra arguments with {placeholders} of files) -> the error line, formatted alike
CASES = {
    "ca-missing": (["--ssl-ca-certs", "{missing}", "--ssl-cert-reqs", "required"],
                   "--ssl-ca-certs {missing}: cannot read it: No such file or directory"),
    "ca-directory": (["--ssl-ca-certs", "{dir}", "--ssl-cert-reqs", "optional"],
                     "--ssl-ca-certs {dir}: cannot read it: Is a directory"),
    "ca-not-pem": (["--ssl-ca-certs", "{garbage.pem}", "--ssl-cert-reqs", "required"],
                   "--ssl-ca-certs {garbage.pem}: holds no PEM certificate (no '-----BEGIN "
                   "CERTIFICATE-----' line)"),
    "reqs-without-ca": (["--ssl-cert-reqs", "required"],
                        "--ssl-cert-reqs required needs --ssl-ca-certs FILE (the CA "
                        "certificates that issue the client certificates)"),
    "ca-without-reqs": (["--ssl-ca-certs", "{ca.pem}"],
                        "--ssl-ca-certs is only used to verify client certificates: give "
                        "--ssl-cert-reqs optional or required"),
    "bad-reqs": (["--ssl-cert-reqs", "sometimes"],
                 "argument --ssl-cert-reqs: invalid choice: 'sometimes' (choose from 'none', "
                 "'optional', 'required')"),
    "bad-version": (["--ssl-min-version", "1.1"],
                    "argument --ssl-min-version: invalid choice: '1.1' (choose from '1.2', "
                    "'1.3')"),
    "bad-ciphers": (["--ssl-ciphers", "NO-SUCH-CIPHER"],
                    "--ssl-ciphers NO-SUCH-CIPHER: OpenSSL finds no cipher it supports in "
                    "this list (TLS 1.3 suites are not set here)"),
    "password-file-missing": (["--ssl-keyfile-password-file", "{missing}"],
                              "--ssl-keyfile-password-file {missing}: cannot read it: No such "
                              "file or directory"),
    "password-file-empty": (["--ssl-keyfile-password-file", "{empty.txt}"],
                            "--ssl-keyfile-password-file {empty.txt}: its first line is "
                            "empty: it must be the password"),
    "both-passwords": (["--ssl-keyfile-password", "x", "--ssl-keyfile-password-file",
                        "{password.txt}"],
                       "give --ssl-keyfile-password or --ssl-keyfile-password-file, not both"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_tls_option_is_one_line(capsys, files, case):
    extra, expected = CASES[case]
    argv = _tls(files) + [_fill(arg, files) for arg in extra]
    assert _error(capsys, *argv) == _fill(expected, files)


@pytest.mark.parametrize("password", [["--ssl-keyfile-password-file", "{wrong-password.txt}"],
                                      ["--ssl-keyfile-password", "not it"]],
                         ids=["file", "inline"])
def test_wrong_password_names_the_keyfile_and_never_shows_the_password(capsys, files, password):
    argv = _tls(files, "encrypted-key.pem") + [_fill(arg, files) for arg in password]
    line = _error(capsys, *argv)
    assert line == (f"--keyfile {files['encrypted-key.pem']}: the password given does not "
                    "decrypt this private key (wrong password)")
    assert "not it" not in line


def test_encrypted_key_without_password_says_which_option_to_give(capsys, files):
    line = _error(capsys, *_tls(files, "encrypted-key.pem"))
    assert line.startswith(f"--keyfile {files['encrypted-key.pem']}: the private key is "
                           "encrypted (password-protected), which the server cannot use without "
                           "its password: give --ssl-keyfile-password-file FILE")


@pytest.mark.parametrize("option, value", [
    ("--ssl-ca-certs", "{ca.pem}"), ("--ssl-cert-reqs", "optional"),
    ("--ssl-min-version", "1.3"), ("--ssl-ciphers", "ECDHE+AESGCM"),
    ("--ssl-keyfile-password-file", "{password.txt}")])
def test_tls_options_without_tls_are_an_error(capsys, files, option, value):
    line = _error(capsys, "--port", "0", option, _fill(value, files))
    assert line == f"{option} needs TLS: give --certfile and --keyfile"


@pytest.mark.parametrize("args, expected", [
    (["--http2-ping-interval", "-1"], "http2-ping-interval must be >= 0 seconds, got -1.0"),
    (["--http2-ping-interval", "nan"], "http2-ping-interval must be >= 0 seconds, got nan"),
    (["--http2-ping-timeout", "0"], "http2-ping-timeout must be > 0 seconds, got 0.0"),
    (["--http2-ping-timeout", "soon"], "argument --http2-ping-timeout: invalid float value: "
                                       "'soon'"),
])
def test_bad_ping_option_is_one_line(capsys, args, expected):
    assert _error(capsys, "--port", "0", *args) == expected


def test_the_real_command_line_exits_2(files):
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-m", "kyoukai_h2fast", *_tls(files),
                          "--ssl-ca-certs", files["missing"], "--ssl-cert-reqs", "required"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"{PREFIX}--ssl-ca-certs {files['missing']}: cannot read it: No such file or directory"]


# ---- the API ---------------------------------------------------------------------------------

def test_make_ssl_context_opens_an_encrypted_key_with_its_password(files):
    context = make_ssl_context(files["cert.pem"], files["encrypted-key.pem"],
                               password=PASSWORD)
    assert context.minimum_version.name == "TLSv1_2"
    with pytest.raises(TLSFileError) as caught:
        make_ssl_context(files["cert.pem"], files["encrypted-key.pem"], password="nope")
    assert caught.value.which == "keyfile" and "wrong password" in caught.value.reason


def test_password_file_first_line_without_its_line_end(files):
    from kyoukai_h2fast.server.tls import keyfile_password, ssl_context_for
    config = ServerConfig(certfile=files["cert.pem"], keyfile=files["encrypted-key.pem"],
                          ssl_keyfile_password_file=files["password.txt"]).validate()
    assert keyfile_password(config) == PASSWORD.encode()
    assert ssl_context_for(config) is not None


def test_the_password_is_not_in_the_configs_repr(files):
    config = ServerConfig(certfile=files["cert.pem"], keyfile=files["encrypted-key.pem"],
                          ssl_keyfile_password=PASSWORD).validate()
    assert PASSWORD not in repr(config)


@pytest.mark.parametrize("changes, message", [
    ({"ssl_cert_reqs": "always"}, "--ssl-cert-reqs must be none, optional or required"),
    ({"ssl_min_version": "1.1"}, "--ssl-min-version must be 1.2 or 1.3"),
    ({"http2_ping_interval": "5"}, "http2-ping-interval must be >= 0 seconds"),
])
def test_config_validation_of_api_values(files, changes, message):
    with pytest.raises(ConfigError, match=message):
        ServerConfig(certfile=files["cert.pem"], keyfile=files["key.pem"], **changes).validate()
