"""tools/check_dist.py's artefact checks fail loudly: a wheel without a compiled module, a .pxd,
a .pyi stub or py.typed, or with sources, and an sdist without the Cython sources, are refused
(the full check, which builds, repairs and installs, is its own CI step: it takes minutes)."""
from __future__ import annotations

import io
import os
import sys
import tarfile
import zipfile

import pytest

from tests.helpers.serverproc import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import check_dist  # noqa: E402

MODULES = ["_frames_c", "_hpack_c"]
GOOD_WHEEL = ["kyoukai_h2fast/__init__.py", "kyoukai_h2fast/__init__.pxd",
              "kyoukai_h2fast/py.typed", "kyoukai_h2fast/http1/protocol.py",
              "kyoukai_h2fast/workers.py",
              "kyoukai_h2fast/_frames_c.cpython-311-x86_64-linux-gnu.so",
              "kyoukai_h2fast/_frames_c.pxd", "kyoukai_h2fast/_frames_c.pyi",
              "kyoukai_h2fast/_hpack_c.cpython-311-x86_64-linux-gnu.so",
              "kyoukai_h2fast/_hpack_c.pxd", "kyoukai_h2fast/_hpack_c.pyi"]


def wheel(tmp_path, names) -> str:
    path = tmp_path / "k-0.1-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name in names:
            z.writestr(name, b"")
    return str(path)


def sdist(tmp_path, names) -> str:
    path = tmp_path / "k-0.1.tar.gz"
    with tarfile.open(path, "w:gz") as t:
        for name in names:
            info = tarfile.TarInfo("k-0.1/" + name)
            t.addfile(info, io.BytesIO(b""))
    return str(path)


def test_the_expected_modules_are_the_checkouts_pyx_files():
    package = os.path.join(ROOT, "src", "kyoukai_h2fast")
    expected = sorted(
        os.path.relpath(os.path.join(d, os.path.splitext(n)[0]), package).replace(os.sep, "/")
        for d, _, names in os.walk(package) for n in names if n.endswith(".pyx"))
    assert check_dist.compiled_modules(ROOT) == expected
    assert "websocket/_frames_c" in expected        # a module in a subpackage counts too


def test_a_module_in_a_subpackage_is_checked_at_its_path(tmp_path):
    names = GOOD_WHEEL + ["kyoukai_h2fast/websocket/__init__.py",
                          "kyoukai_h2fast/websocket/_frames_c.cpython-311-x86_64-linux-gnu.so",
                          "kyoukai_h2fast/websocket/_frames_c.pxd",
                          "kyoukai_h2fast/websocket/_frames_c.pyi"]
    modules = MODULES + ["websocket/_frames_c"]
    check_dist.check_wheel(wheel(tmp_path, names), modules)
    with pytest.raises(check_dist.Failed, match="no kyoukai_h2fast/websocket/_frames_c.pxd"):
        check_dist.check_wheel(wheel(tmp_path, [n for n in names if not n.endswith(
            "websocket/_frames_c.pxd")]), modules)


def test_a_complete_wheel_passes(tmp_path):
    check_dist.check_wheel(wheel(tmp_path, GOOD_WHEEL), MODULES)


def test_the_expected_package_files_are_every_subpackage_of_the_checkout():
    sources = check_dist.package_sources(ROOT)
    packages = {os.path.dirname(n) for n in sources if n.endswith("/__init__.py")}
    on_disk = {os.path.relpath(folder, ROOT).replace(os.sep, "/")
               for folder, _, files in os.walk(os.path.join(ROOT, "kyoukai_h2fast"))
               if "__init__.py" in files}
    assert packages == on_disk and "kyoukai_h2fast/http2/h2engine" in packages
    assert {"kyoukai_h2fast/py.typed", "kyoukai_h2fast/_engine_c.pyi",
            "kyoukai_h2fast/http2/h2engine/engine.py"} <= set(sources)


def test_a_wheel_or_sdist_without_a_subpackage_is_refused(tmp_path):
    sources = check_dist.package_sources(ROOT)
    complete = sorted(set(GOOD_WHEEL) | set(sources))
    check_dist.check_wheel(wheel(tmp_path, complete), MODULES, sources)
    without = [n for n in complete if not n.startswith("kyoukai_h2fast/http2/h2engine/")]
    with pytest.raises(check_dist.Failed, match="package files missing .*h2engine"):
        check_dist.check_wheel(wheel(tmp_path, without), MODULES, sources)
    good_sdist = ["setup.py", "pyproject.toml", "README.md", "tools/smoke_installed.py",
                  *(f"src/kyoukai_h2fast/{m}.{e}" for m in MODULES for e in ("pyx", "pxd"))]
    check_dist.check_sdist(sdist(tmp_path, good_sdist + sources), MODULES, sources)
    with pytest.raises(check_dist.Failed, match="package files missing .*connection/base.py"):
        check_dist.check_sdist(sdist(tmp_path, good_sdist + [
            n for n in sources if n != "kyoukai_h2fast/connection/base.py"]), MODULES, sources)


@pytest.mark.parametrize("change, message", [
    (lambda n: [x for x in n if not x.endswith(".so") or "_hpack_c" not in x],
     "no compiled kyoukai_h2fast/_hpack_c"),
    (lambda n: [x for x in n if x != "kyoukai_h2fast/_frames_c.pxd"],
     "no kyoukai_h2fast/_frames_c.pxd"),
    (lambda n: [x for x in n if x != "kyoukai_h2fast/_hpack_c.pyi"],
     "no kyoukai_h2fast/_hpack_c.pyi"),
    (lambda n: [x for x in n if x != "kyoukai_h2fast/py.typed"], "missing kyoukai_h2fast/py.typed"),
    (lambda n: n + ["kyoukai_h2fast/_frames_c.pyx"], "should not be in the wheel"),
    (lambda n: n + ["kyoukai_h2fast/_frames_c.c"], "should not be in the wheel"),
    (lambda n: n + ["tests/test_x.py"], "should not be in the wheel"),
], ids=["no-so", "no-pxd", "no-pyi", "no-py.typed", "pyx", "c", "tests"])
def test_a_wrong_wheel_is_refused(tmp_path, change, message):
    with pytest.raises(check_dist.Failed, match=message):
        check_dist.check_wheel(wheel(tmp_path, change(GOOD_WHEEL)), MODULES)


def test_sdist_needs_the_cython_sources_and_no_binaries(tmp_path):
    good = ["setup.py", "pyproject.toml", "README.md", "tools/smoke_installed.py",
            *(f"src/kyoukai_h2fast/{m}.{e}" for m in MODULES for e in ("pyx", "pxd"))]
    check_dist.check_sdist(sdist(tmp_path, good), MODULES)
    with pytest.raises(check_dist.Failed, match="no src/kyoukai_h2fast/_hpack_c.pyx"):
        check_dist.check_sdist(sdist(tmp_path, [n for n in good if not n.endswith(
            "_hpack_c.pyx")]), MODULES)
    with pytest.raises(check_dist.Failed, match="should not be in the sdist"):
        check_dist.check_sdist(sdist(tmp_path, good + ["src/kyoukai_h2fast/_hpack_c.c"]),
                               MODULES)
