"""The command line's user errors that need more than one word: an app whose import fails
(one line, exit 2, then the app's own traceback). Each case runs the real ``python -m kyoukai_h2fast`` of this
tree, on the compiled build and the pure twins.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from serverproc import ROOT

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
