#!/usr/bin/env python3
"""Smoke test of an *installed* kyoukai_h2fast (a wheel or an sdist install), run outside the
source tree: cibuildwheel's ``test-command`` and ``tools/check_dist.py`` run it.

Checks, failing loudly (exit 1, one line per failure) on the first problem:

1. ``python -m kyoukai_h2fast --version`` says ``extensions: compiled``, and so does the
   ``kyoukai-h2fast`` console script installed next to this interpreter;
2. the installed package holds a compiled module and its ``.pxd`` for every hot path, every
   module of every subpackage of the source tree this script comes from (when it is there),
   and no ``.pyx``/``.c`` source;
3. the demo app serves on a free port: ``GET /`` over HTTP/2 (h2c prior knowledge) and over
   HTTP/1.1, ``POST /echo`` of 1 MiB byte for byte;
4. SIGTERM stops it with exit code 0.

Needs httpx (``httpx[http2]``) or curl for the HTTP/2 request; HTTP/1.1 uses the stdlib.
"""
from __future__ import annotations

import glob
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

SERVING = re.compile(r"serving (\w+) app on (\S+) .*extensions: (\w+)\)")


def fail(message: str) -> None:
    print(f"smoke_installed: FAILED: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def check_version(cwd: str) -> None:
    done = subprocess.run([sys.executable, "-m", "kyoukai_h2fast", "--version"], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    print(done.stdout.strip())
    if done.returncode != 0 or "extensions: compiled" not in done.stdout.splitlines():
        fail(f"--version does not say 'extensions: compiled': {done.stdout!r} {done.stderr!r}")
    script = shutil.which("kyoukai-h2fast", path=os.path.dirname(sys.executable))
    if script is None:
        fail(f"no kyoukai-h2fast console script next to {sys.executable}")
    done = subprocess.run([script, "--version"], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    if done.returncode != 0 or "extensions: compiled" not in done.stdout.splitlines():
        fail(f"kyoukai-h2fast --version: {done.stdout!r} {done.stderr!r}")


def check_files(cwd: str) -> str:
    code = ("import kyoukai_h2fast, os; from kyoukai_h2fast import _switch; "
            "print(os.path.dirname(kyoukai_h2fast.__file__)); "
            "print(*[_switch.HOT_PATHS[n][0] "
            "for n in _switch.MODULES])")
    package, modules = subprocess.run([sys.executable, "-c", code], cwd=cwd,
                                      capture_output=True, text=True, timeout=60,
                                      check=True).stdout.strip().splitlines()
    if os.path.abspath(package).startswith(os.path.abspath(os.path.dirname(__file__) + "/..")):
        fail(f"imported the source tree ({package}), not the installed package")
    for module in modules.split():           # kyoukai_h2fast[.sub]._name_c
        stem = os.path.join(package, *module.split(".")[1:])
        if not glob.glob(stem + ".*.so") + glob.glob(stem + ".*.pyd"):
            fail(f"no compiled module {module} in {package}")
        if not os.path.exists(stem + ".pxd"):
            fail(f"no {module}.pxd in {package} (Cython users cimport it)")
    sources = [p for ext in ("pyx", "c")
               for p in glob.glob(os.path.join(package, "**", f"*.{ext}"), recursive=True)]
    if sources:
        fail(f"sources shipped in the installed package: {sources}")
    tree = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "kyoukai_h2fast")
    expected = _package_files(tree) if os.path.isdir(tree) else []
    missing = [name for name in expected if not os.path.exists(os.path.join(package, name))]
    if missing:
        fail(f"package files of the source tree not installed: {missing[:10]}")
    print(f"installed package {package}: compiled modules and .pxd files present, "
          f"{len(expected)} package files of the source tree present, no sources")
    return package


def _package_files(tree: str) -> list[str]:
    """Every ``.py``/``.pyi`` file and ``py.typed`` under ``tree``, relative to it."""
    found = []
    for folder, dirs, files in os.walk(tree):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        found += [os.path.relpath(os.path.join(folder, name), tree) for name in files
                  if name.endswith((".py", ".pyi")) or name == "py.typed"]
    return sorted(found)


def serve_demo(cwd: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "kyoukai_h2fast", "--host", "127.0.0.1",
                             "--port", "0"], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if SERVING.search(line):
                found.set()
        found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not found.wait(60):
            fail("the demo did not start within 60 s:\n" + "".join(lines))
        match = next((SERVING.search(x) for x in lines if SERVING.search(x)), None)
        if match is None:
            fail("the demo exited before serving:\n" + "".join(lines))
        url, extensions = match.group(2), match.group(3)
        if extensions != "compiled":
            fail(f"the demo serves with extensions: {extensions}")
        check_http2(url)
        check_http11(url)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        if code != 0:
            fail(f"SIGTERM: exit code {code}\n" + "".join(lines))
        print(f"demo served {url} over HTTP/2 and HTTP/1.1, stopped cleanly")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def check_http2(url: str) -> None:
    try:
        import httpx
    except ImportError:
        httpx = None
    if httpx is not None:
        with httpx.Client(http1=False, http2=True, timeout=30) as client:
            r = client.get(url + "/")
            if r.http_version != "HTTP/2" or not r.text.startswith("Hello"):
                fail(f"HTTP/2 GET /: {r.http_version} {r.status_code} {r.text[:80]!r}")
        return
    curl = shutil.which("curl")
    if curl is None:
        fail("neither httpx nor curl is available for the HTTP/2 request")
    out = subprocess.run([curl, "-sS", "--http2-prior-knowledge", "-w", "\n%{http_version}",
                          url + "/"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0 or not out.stdout.endswith("\n2"):
        fail(f"HTTP/2 GET / with curl: {out.stdout[-80:]!r} {out.stderr!r}")


def check_http11(url: str) -> None:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", "/")
        r = conn.getresponse()
        text = r.read()
        if r.status != 200 or not text.startswith(b"Hello") or r.version != 11:
            fail(f"HTTP/1.1 GET /: {r.status} {text[:80]!r}")
        payload = os.urandom(1 << 20)
        conn.request("POST", "/echo", body=payload,
                      headers={"Content-Type": "application/octet-stream"})
        r = conn.getresponse()
        if r.status != 200 or r.read() != payload:
            fail("HTTP/1.1 POST /echo did not echo 1 MiB byte for byte")
    finally:
        conn.close()


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kyoukai-smoke-") as cwd:
        check_version(cwd)
        check_files(cwd)
        serve_demo(cwd)
    print(f"smoke_installed: all good ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
