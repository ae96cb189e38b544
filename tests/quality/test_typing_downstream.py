"""A user's code type-checks against kyoukai_h2fast as Python imports it (the compiled build in
CI): ``py.typed``, the selector modules and the ``.pyi`` stubs of the compiled modules give
mypy real types for ``kyoukai_h2fast.hpack``, ``.frames``, ``.codec.headers`` and
``.wsgi.environ``.

A small downstream file is checked with ``mypy --strict`` (errors reported for that file only)
and then run, so the calls it makes are the ones that work; a file with wrong calls must fail
the check with the errors expected, so this test can fail. Skipped when mypy is not installed
(the test extra installs it).
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
import textwrap

import pytest

import kyoukai_h2fast

pytestmark = pytest.mark.timeout(300)

GOOD = '''
from typing import TYPE_CHECKING

from kyoukai_h2fast.wsgi.environ import build_environ, make_base_environ
from kyoukai_h2fast.frames import FrameBuffer, parse_frame_header, ping_frame, settings_frame
from kyoukai_h2fast.codec.headers import response_headers, validate_request_headers
from kyoukai_h2fast.hpack import Decoder, Encoder

fields: list[tuple[str, str]] = Decoder().decode(b"\\x82\\x86\\x84")
raw = Decoder().decode(bytearray(b"\\x82"), raw=True)
block: bytes = Encoder().encode([(":status", "200"), ("content-type", "text/plain")])

buffer = FrameBuffer(server=False)
buffer.max_frame_size = 16384
buffer.add_data(settings_frame({4: 65535}) + ping_frame(b"12345678"))
kinds = [frame.type for frame in buffer]
length, ftype, flags, stream_id = parse_frame_header(ping_frame(b"12345678", ack=True))

request = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/a?b=1"),
           (b":authority", b"example.org")]
content_length: int = validate_request_headers(request)
response: list[tuple[bytes, bytes]] = response_headers("200 OK", [("content-type", "text/plain")])
base = make_base_environ(url_scheme="http", server_addr=("127.0.0.1", 80),
                         peer_addr=("127.0.0.1", 5000), multithread=False, errors=None)
environ = build_environ(base, request, None)
path: str = environ["PATH_INFO"]

if TYPE_CHECKING:  # (mypy's reveal_type; not a builtin at run time)
    reveal_type(Decoder().decode(b""))
    reveal_type(raw)
    reveal_type(length)
assert fields == [(":method", "GET"), (":scheme", "http"), (":path", "/")], fields
assert kinds == [4, 6] and (length, ftype, flags, stream_id) == (8, 6, 1, 0)
assert content_length == -1 and response[0] == (b":status", b"200") and path == "/a"
print("ran")
'''

WRONG = '''
from kyoukai_h2fast.frames import ping_frame
from kyoukai_h2fast.codec.headers import response_headers
from kyoukai_h2fast.hpack import Decoder

Decoder().decode("not bytes")
ping_frame(12345678)
count: str = len(response_headers("200 OK", []))
Decoder().decode(b"", raw=True, huffman=False)
'''


def _package_parent() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(kyoukai_h2fast.__file__)))


def _mypy(tmp_path, source: str) -> subprocess.CompletedProcess:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    path = tmp_path / "downstream.py"
    path.write_text(textwrap.dedent(source))
    env = dict(os.environ)
    # The package Python imports: from site-packages mypy finds it on its own; an editable
    # install (an import hook mypy cannot follow) or a source checkout is given by its folder.
    where = _package_parent()
    site = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
    if os.path.realpath(where) not in site:
        env["MYPYPATH"] = where
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", str(path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)


def test_a_downstream_file_type_checks_and_runs(tmp_path):
    done = _mypy(tmp_path, GOOD)
    out = done.stdout + done.stderr
    notes = [line.replace("builtins.", "") for line in out.splitlines()
             if "Revealed type" in line]
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert not errors, out
    assert len(notes) == 3, out
    assert '"list[tuple[str, str]]"' in notes[0], notes        # decoded text fields
    assert "HeaderTuple" in notes[1], notes                    # raw: hpack's HeaderTuple
    assert '"int"' in notes[2], notes
    # The same calls work, on the build this process imports.
    ran = subprocess.run([sys.executable, str(tmp_path / "downstream.py")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=_package_parent()))
    assert ran.returncode == 0 and ran.stdout.strip() == "ran", ran.stdout + ran.stderr


def test_wrong_calls_fail_the_check(tmp_path):
    done = _mypy(tmp_path, WRONG)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    lines = out.splitlines()
    expected = {
        6: 'No overload variant of "decode" of "Decoder" matches argument type "str"',
        7: 'Argument 1 to "ping_frame" has incompatible type "int"',
        8: 'Incompatible types in assignment (expression has type "int"',
        9: 'No overload variant of "decode" of "Decoder" matches argument types',
    }
    for line_number, message in expected.items():
        assert any(f"downstream.py:{line_number}:" in line and message in line
                   for line in lines), f"line {line_number}: no {message!r} in\n{out}"
