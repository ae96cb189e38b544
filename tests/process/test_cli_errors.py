"""The command line's user errors that need more than one word: an app whose import fails
(one line, exit 2, then the app's own traceback) and bad TLS files (one line naming the file
at fault and why, exit 2: missing, unreadable, swapped, mismatched, not a key, not a
certificate, damaged, encrypted). Each case runs the real ``python -m kyoukai_h2fast`` of this
tree, on the compiled build and the pure twins.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import termios

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from tests.helpers.serverproc import ROOT

pytestmark = pytest.mark.timeout(120)

PREFIX = "kyoukai-h2fast: error: "


def run_cli(impl: str, *args, cwd=ROOT, timeout=60) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)  # this tree, also from another directory
    env.pop("KYOUKAI_H2FAST_NO_EXTENSIONS", None)
    if impl == "pure":
        env["KYOUKAI_H2FAST_NO_EXTENSIONS"] = "1"
    return subprocess.run([sys.executable, "-m", "kyoukai_h2fast", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


# ---- an app whose import fails -----------------------------------------------------------------

@pytest.fixture
def app_dir(tmp_path):
    pkg = tmp_path / "pkgx"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .views import app\n")
    (pkg / "views.py").write_text(
        "def make_app():\n"
        "    return undefined_helper()\n"
        "\n"
        "app = make_app()\n")
    (tmp_path / "bad_syntax.py").write_text("def app(environ, start_response:\n    pass\n")
    (tmp_path / "needs_dep.py").write_text("import no_such_dependency_xyz\napp = None\n")
    (tmp_path / "lazy_attr.py").write_text(
        "def __getattr__(name):\n"
        "    raise RuntimeError(f'cannot build {name}')\n")
    return tmp_path


def _traceback_below(out: subprocess.CompletedProcess, first_line: str) -> list[str]:
    assert out.returncode == 2, out
    lines = out.stderr.rstrip("\n").splitlines()
    assert lines[0] == PREFIX + first_line
    return lines[1:]


def test_app_import_error_prints_one_line_then_the_app_traceback(impl, app_dir):
    out = run_cli(impl, "pkgx:app", cwd=app_dir)
    below = _traceback_below(
        out, "cannot import 'pkgx': NameError: name 'undefined_helper' is not defined")
    text = "\n".join(below)
    assert below[0] == "Traceback (most recent call last):"
    # every frame of the app, innermost last, with its source line
    assert f'File "{app_dir / "pkgx" / "__init__.py"}", line 1, in <module>' in text
    assert f'File "{app_dir / "pkgx" / "views.py"}", line 4, in <module>' in text
    assert f'File "{app_dir / "pkgx" / "views.py"}", line 2, in make_app' in text
    assert "return undefined_helper()" in text
    assert below[-1] == "NameError: name 'undefined_helper' is not defined"
    # and nothing of the CLI or the import machinery
    assert "kyoukai_h2fast" not in text and "importlib" not in text


def test_app_syntax_error_shows_file_line_and_caret(impl, app_dir):
    out = run_cli(impl, "bad_syntax:app", cwd=app_dir)
    assert out.returncode == 2, out
    first, *below = out.stderr.rstrip("\n").splitlines()
    assert first.startswith(PREFIX + "cannot import 'bad_syntax': SyntaxError: ")
    assert below[0] == f'  File "{app_dir / "bad_syntax.py"}", line 1'
    assert "def app(environ, start_response:" in below[1]
    assert below[2].strip() == "^" and below[-1].startswith("SyntaxError: ")
    assert "kyoukai_h2fast" not in "\n".join(below)


def test_missing_dependency_of_the_app_points_at_its_import_line(impl, app_dir):
    out = run_cli(impl, "needs_dep:app", cwd=app_dir)
    below = _traceback_below(out, "cannot import 'needs_dep': ModuleNotFoundError: "
                                  "No module named 'no_such_dependency_xyz'")
    assert f'File "{app_dir / "needs_dep.py"}", line 1, in <module>' in "\n".join(below)
    assert below[-1] == "ModuleNotFoundError: No module named 'no_such_dependency_xyz'"


def test_missing_app_module_is_one_line_only(impl, app_dir):
    out = run_cli(impl, "no_such_module_xyz:app", cwd=app_dir)
    assert _traceback_below(out, "cannot import 'no_such_module_xyz': ModuleNotFoundError: "
                                 "No module named 'no_such_module_xyz'") == []


def test_app_attribute_that_raises_shows_its_traceback(impl, app_dir):
    out = run_cli(impl, "lazy_attr:app", cwd=app_dir)
    below = _traceback_below(out, "cannot get 'app' from 'lazy_attr': RuntimeError: "
                                  "cannot build app")
    assert f'File "{app_dir / "lazy_attr.py"}", line 2, in __getattr__' in "\n".join(below)
    assert "kyoukai_h2fast" not in "\n".join(below)


# ---- bad TLS files -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pems(tmp_path_factory):
    """Good and bad certificate/key files, made here."""
    d = tmp_path_factory.mktemp("pems")
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    other = ca.issue_cert("other.example")
    files = {}

    def put(name: str, data: bytes) -> str:
        path = d / name
        path.write_bytes(data)
        files[name] = str(path)
        return str(path)

    cert_pem = leaf.cert_chain_pems[0].bytes()
    key_pem = leaf.private_key_pem.bytes()
    put("cert.pem", cert_pem)
    put("key.pem", key_pem)
    put("other-key.pem", other.private_key_pem.bytes())
    put("garbage.pem", b"this is not PEM at all\n")
    put("damaged-cert.pem", b"-----BEGIN CERTIFICATE-----\nAAAAbm90IGEgY2VydA==\n"
                            b"-----END CERTIFICATE-----\n")
    put("damaged-key.pem", b"-----BEGIN PRIVATE KEY-----\nAAAAbm90IGEga2V5\n"
                           b"-----END PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(key_pem, password=None)
    encryption = serialization.BestAvailableEncryption(b"secret pass phrase")
    put("encrypted-pkcs8.pem", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    put("encrypted-traditional.pem", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, encryption))
    put("combined.pem", key_pem + cert_pem)
    files["missing.pem"] = str(d / "missing.pem")
    files["directory"] = str(d)
    return files


# (certfile, keyfile) -> (the flag at fault, the file it names, words of the reason)
TLS_CASES = {
    "swapped": (("key.pem", "cert.pem"), "certfile", "key.pem",
                "holds a private key, and the keyfile {keyfile} holds the certificate: "
                "the two files are swapped"),
    "mismatched-key": (("cert.pem", "other-key.pem"), "keyfile", "other-key.pem",
                       "this private key does not belong to the certificate in {certfile} "
                       "(key values mismatch)"),
    "key-is-garbage": (("cert.pem", "garbage.pem"), "keyfile", "garbage.pem",
                       "has no PEM private key (no '-----BEGIN PRIVATE KEY-----' line)"),
    "key-is-a-certificate": (("cert.pem", "cert.pem"), "keyfile", "cert.pem",
                             "holds a certificate, not a private key"),
    "key-damaged": (("cert.pem", "damaged-key.pem"), "keyfile", "damaged-key.pem",
                    "its private key cannot be decoded (a damaged PEM block, or a key type "
                    "OpenSSL does not support)"),
    "cert-is-garbage": (("garbage.pem", "key.pem"), "certfile", "garbage.pem",
                        "is not a PEM certificate (no '-----BEGIN CERTIFICATE-----' line)"),
    "cert-is-a-key": (("other-key.pem", "key.pem"), "certfile", "other-key.pem",
                      "holds a private key, not a certificate"),
    "cert-damaged": (("damaged-cert.pem", "key.pem"), "certfile", "damaged-cert.pem",
                     "its certificate cannot be decoded (a damaged PEM block)"),
    "cert-missing": (("missing.pem", "key.pem"), "certfile", "missing.pem",
                     "cannot read it: No such file or directory"),
    "key-missing": (("cert.pem", "missing.pem"), "keyfile", "missing.pem",
                    "cannot read it: No such file or directory"),
    "cert-unreadable": (("directory", "key.pem"), "certfile", "directory",
                        "cannot read it: Is a directory"),
    "key-encrypted-pkcs8": (("cert.pem", "encrypted-pkcs8.pem"), "keyfile",
                            "encrypted-pkcs8.pem", "the private key is encrypted "
                            "(password-protected), which the server cannot use"),
    "key-encrypted-traditional": (("cert.pem", "encrypted-traditional.pem"), "keyfile",
                                  "encrypted-traditional.pem", "the private key is encrypted "
                                  "(password-protected), which the server cannot use"),
}


@pytest.mark.parametrize("case", list(TLS_CASES))
def test_bad_tls_files_name_the_file_and_why_in_one_line_exit_2(impl, pems, case):
    (cert, key), flag, culprit, reason = TLS_CASES[case]
    certfile, keyfile = pems[cert], pems[key]
    out = run_cli(impl, "--certfile", certfile, "--keyfile", keyfile, "--port", "0")
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    expected = f"{PREFIX}--{flag} {pems[culprit]}: " + reason.format(certfile=certfile,
                                                                     keyfile=keyfile)
    assert lines[0].startswith(expected), (lines[0], expected)
    assert "PEM lib" not in lines[0] and "_ssl.c" not in lines[0]


def test_make_ssl_context_error_says_which_file_for_api_users(pems):
    from kyoukai_h2fast.server.component import make_ssl_context
    from kyoukai_h2fast.server.tls import TLSFileError

    with pytest.raises(TLSFileError) as caught:
        make_ssl_context(pems["key.pem"], pems["cert.pem"])
    assert (caught.value.which, caught.value.path) == ("certfile", pems["key.pem"])
    assert str(caught.value).startswith(f"certfile {pems['key.pem']}: holds a private key")
    assert isinstance(caught.value, ValueError)  # a ConfigError
    # the good pair, and a combined file without keyfile, load
    assert make_ssl_context(pems["cert.pem"], pems["key.pem"]) is not None
    assert make_ssl_context(pems["combined.pem"]) is not None


def _controlling_terminal(slave_fd: int):
    def setup():
        os.setsid()
        fcntl.ioctl(slave_fd, termios.TIOCSCTTY, 0)
    return setup


def test_encrypted_key_never_prompts_for_a_pass_phrase_on_a_terminal(impl, pems):
    """With a terminal, OpenSSL would ask "Enter PEM pass phrase:" and the server would hang."""
    master, slave = os.openpty()
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("KYOUKAI_H2FAST_NO_EXTENSIONS", None)
    if impl == "pure":
        env["KYOUKAI_H2FAST_NO_EXTENSIONS"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kyoukai_h2fast", "--certfile", pems["cert.pem"],
         "--keyfile", pems["encrypted-pkcs8.pem"], "--port", "0"],
        cwd=ROOT, env=env, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=_controlling_terminal(slave), text=True)
    os.close(slave)
    try:
        _, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        os.set_blocking(master, False)
        try:
            shown = os.read(master, 4096)
        except BlockingIOError:
            shown = b""
        pytest.fail(f"the CLI hung on the encrypted key; the terminal shows {shown!r}")
    finally:
        os.close(master)
    assert proc.returncode == 2
    assert stderr.startswith(f"{PREFIX}--keyfile {pems['encrypted-pkcs8.pem']}: the private "
                             "key is encrypted")
