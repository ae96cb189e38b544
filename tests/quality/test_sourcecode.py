"""The source tree passes its linters and the type checker (as uvloop's test_sourcecode does).

* ruff over ``kyoukai_h2fast``, ``tests``, ``bench``, ``tools``, ``src/tools`` and ``setup.py``
  (rules and exceptions in ``pyproject.toml`` ``[tool.ruff]``);
* mypy over the package (``[tool.mypy]``: every function annotated, stubs for the compiled
  modules);
* cython-lint over ``src/`` (``[tool.cython-lint]``).

Each fails on any finding and prints the findings. A test is skipped only when its tool is not
installed; ``pip install -e '.[test]'`` installs all three (CI does).
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUFF_PATHS = ["kyoukai_h2fast", "tests", "bench", "tools", os.path.join("src", "tools"),
              "setup.py"]

pytestmark = pytest.mark.timeout(300)


def _run(module: str, *args: str) -> subprocess.CompletedProcess:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]')")
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=240)


def _report(tool: str, done: subprocess.CompletedProcess) -> str:
    return f"{tool} found problems (exit {done.returncode}):\n{done.stdout}{done.stderr}"


def test_ruff():
    done = _run("ruff", "-m", "ruff", "check", "--output-format", "concise", "--no-cache",
                *RUFF_PATHS)
    assert done.returncode == 0, _report("ruff", done)


def test_mypy():
    done = _run("mypy", "-m", "mypy")             # files and options: pyproject.toml
    assert done.returncode == 0, _report("mypy", done)


def test_cython_lint():
    done = _run("cython_lint", "-c",
                "import sys; from cython_lint.cython_lint import main; sys.exit(main())",
                os.path.join(ROOT, "src"))
    assert done.returncode == 0, _report("cython-lint", done)
