"""Run the real server (the ``kyoukai-h2fast`` CLI) in a subprocess for tests.

``ServerProcess`` starts ``python -m kyoukai_h2fast APP --port 0 ...`` with the compiled modules
or the pure twins (``impl``), waits for its "serving ... on URL" log line, and exposes the URL,
the pid (for RSS and signals) and the log. The log line also says which extensions the server
actually runs, and that is checked, so a broken build cannot pass as "compiled".
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SERVING = re.compile(r"serving (\w+) app on (\S+) .*extensions: (\w+)\)")


class ServerProcess:
    def __init__(self, app: str | None, impl: str | None = None, tls=None, args=(),
                 env=None, pass_fds=(), prefix=()) -> None:
        """``pass_fds``: file descriptors the server inherits (``--fd``, LISTEN_FDS);
        ``prefix``: a command the server's command line is appended to (e.g. a shell that
        sets LISTEN_PID to its own pid, then execs it)."""
        if impl is None:
            impl = "pure" if os.environ.get("KYOUKAI_H2FAST_NO_EXTENSIONS", "") not in ("", "0") \
                else "compiled"
        self.app = app
        self.impl = impl
        self.tls = tls  # a (certfile, keyfile) pair or None
        self.args = list(args)
        self.lines: list[str] = []
        self._lock = threading.Lock()
        cmd = [sys.executable, "-m", "kyoukai_h2fast"]
        if app:
            cmd.append(app)
        cmd += ["--host", "127.0.0.1", "--port", "0", "--log-level", "info"]
        if tls:
            cmd += ["--certfile", tls[0], "--keyfile", tls[1]]
        cmd += self.args
        full_env = dict(os.environ)
        full_env.pop("KYOUKAI_H2FAST_NO_EXTENSIONS", None)
        if impl == "pure":
            full_env["KYOUKAI_H2FAST_NO_EXTENSIONS"] = "1"
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.update(env or {})
        self.cmd = cmd = [*prefix, *cmd]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, pass_fds=pass_fds)
        self.url = None
        self.port = None
        self.extensions = None
        ready = threading.Event()
        self._reader = threading.Thread(target=self._read, args=(ready,), daemon=True)
        self._reader.start()
        if not ready.wait(30) or self.url is None:
            self.stop()
            raise RuntimeError(f"server did not start: {self.cmd}\n{self.log}")
        expected = "pure" if impl == "pure" else "compiled"
        if self.extensions != expected:
            self.stop()
            raise AssertionError(f"server runs extensions: {self.extensions}, wanted {expected}"
                                 f" (is the package built? pip install -e .)\n{self.log}")

    def _read(self, ready: threading.Event) -> None:
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line)
            if self.url is None:
                m = _SERVING.search(line)
                if m:
                    self.url, self.extensions = m.group(2), m.group(3)
                    # (None on a Unix socket: the URL is unix:PATH)
                    self.port = (int(self.url.rsplit(":", 1)[1])
                                 if self.url.startswith("http") else None)
                    ready.set()
        ready.set()

    @property
    def log(self) -> str:
        with self._lock:
            return "".join(self.lines)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def peak_rss_kib(self) -> int:
        """The server's peak resident set size so far (VmHWM)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmHWM")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig=signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        return rc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
