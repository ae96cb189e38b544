"""Build script: compiles every ``src/kyoukai_h2fast/**/*.pyx`` into the module of the same path
(``src/kyoukai_h2fast/_hpack_c.pyx`` -> ``kyoukai_h2fast._hpack_c``,
``src/kyoukai_h2fast/websocket/_frames_c.pyx`` -> ``kyoukai_h2fast.websocket._frames_c``).

Environment switches (read here and, for the runtime choice, in ``kyoukai_h2fast/_switch.py``):

* ``KYOUKAI_H2FAST_NO_EXTENSIONS=1`` builds a pure-Python install (no compiler needed).
* ``KYOUKAI_H2FAST_ONLY=_hpack_c,_frames_c`` (development) builds only the named modules, e.g.
  ``KYOUKAI_H2FAST_ONLY=_hpack_c python setup.py build_ext --inplace`` (a module in a
  subpackage by its dotted name under the package: ``websocket._frames_c``).
* ``KYOUKAI_H2FAST_DEBUG_BUILD=1`` builds with line tracing, bounds checks and
  ``cython -a`` annotation (HTML next to the sources) for profiling and coverage.
"""
import glob
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
NO_EXTENSIONS = os.environ.get("KYOUKAI_H2FAST_NO_EXTENSIONS", "") not in ("", "0")
DEBUG_BUILD = os.environ.get("KYOUKAI_H2FAST_DEBUG_BUILD", "") not in ("", "0")


def module_name(source):
    """``src/kyoukai_h2fast/websocket/_frames_c.pyx`` -> ``kyoukai_h2fast.websocket._frames_c``."""
    relative = os.path.relpath(os.path.splitext(source)[0], "src")
    return ".".join(relative.split(os.sep))


def extensions():
    if NO_EXTENSIONS:
        print("kyoukai_h2fast: building pure Python (KYOUKAI_H2FAST_NO_EXTENSIONS set)")
        return []
    from Cython.Build import cythonize

    sources = sorted(glob.glob(os.path.join("src", "kyoukai_h2fast", "**", "*.pyx"),
                               recursive=True))
    only = os.environ.get("KYOUKAI_H2FAST_ONLY")  # development: rebuild one module quickly
    if only:
        names = only.split(",")
        sources = [s for s in sources if module_name(s).partition(".")[2] in names]
    macros = [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")] if DEBUG_BUILD else []
    cflags = ["-O0", "-g"] if DEBUG_BUILD else ["-O3"]
    exts = [
        Extension(
            module_name(src),
            [src],
            define_macros=macros,
            extra_compile_args=cflags,
        )
        for src in sources
    ]
    directives = {
        "language_level": 3,
        "embedsignature": True,
        "boundscheck": DEBUG_BUILD,
        "wraparound": False,
        "initializedcheck": DEBUG_BUILD,
        "cdivision": True,
        "linetrace": DEBUG_BUILD,
        "profile": DEBUG_BUILD,
        "warn.unused": False,
    }
    print(f"kyoukai_h2fast: building {len(exts)} compiled extension(s)"
          + (" (debug build)" if DEBUG_BUILD else ""))
    return cythonize(
        exts,
        include_path=[os.path.join(HERE, "src")],
        compiler_directives=directives,
        annotate=DEBUG_BUILD,
        quiet=True,
        nthreads=0 if sys.platform == "win32" else os.cpu_count() or 1,
    )


class build_py_with_pxd(build_py):
    """Ship the ``.pxd`` declarations inside the package (subpackages included), next to the
    compiled modules, so Cython users can ``cimport kyoukai_h2fast._hpack_c`` (or
    ``kyoukai_h2fast.websocket._frames_c``) from an installed wheel (the
    ``.pyx``/``.c`` sources stay in the sdist only)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads src/ directly
        src = os.path.join(HERE, "src")
        for pxd in sorted(glob.glob(os.path.join(src, "kyoukai_h2fast", "**", "*.pxd"),
                                    recursive=True)):
            target = os.path.join(self.build_lib, os.path.relpath(pxd, src))
            self.mkpath(os.path.dirname(target))
            self.copy_file(pxd, target)


setup(ext_modules=extensions(), cmdclass={"build_py": build_py_with_pxd})
