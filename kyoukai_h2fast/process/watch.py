"""``--reload``: a watcher process that runs the server as its child and restarts it when a
``.py`` file changes (development).

The watcher never imports the app: it starts ``python -m kyoukai_h2fast`` with the same
arguments (and ``--no-reload``) as a child process, watches the ``--reload-dir`` directories
(default: the current one) with watchfiles, and on a change of a ``.py`` file stops the child
gracefully (SIGTERM: in-flight requests finish, as on any stop; SIGKILL after
``--shutdown-timeout`` and a grace) and starts a new one, which imports the new code. So
nothing of the old code survives a restart, and a child that fails (a syntax error in the
file just saved, an app that raises at import) costs one log line: the watcher waits for the
next change and starts it again.

Ignored (:class:`SourceFilter`): files other than ``*.py``, and anything under a directory
(below a watched one) that is hidden (``.git``, ``.venv``, ``.tox``, ``.mypy_cache``...),
``__pycache__``, ``node_modules``, ``build``, ``dist``, ``site-packages``, ``*.egg-info``, or a
virtual environment of any name (it has a ``pyvenv.cfg``).

SIGTERM/SIGINT stop the child and then the watcher (exit 0); SIGHUP is passed to the child
(its graceful in-process reload). The port is bound by each child anew: with ``--port 0``
every restart gets another port. Needs watchfiles (``pip install 'kyoukai_h2fast[reload]'``).
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from types import FrameType

__all__ = ["SourceFilter", "Watcher", "run_watcher", "IGNORED_DIRS"]

log = logging.getLogger("kyoukai_h2fast.watch")

#: Directory names whose contents never restart the server (hidden ones too: ``.*``).
IGNORED_DIRS = frozenset({"__pycache__", "node_modules", "build", "dist", "site-packages",
                          "venv", "htmlcov"})
#: Seconds past the shutdown timeout before a child that does not stop is killed.
_KILL_GRACE = 2.0
#: How often (ms) the watcher looks at its child while no file changes.
_POLL_MS = 300


class SourceFilter:
    """watchfiles' filter: True for a ``.py`` file under ``roots`` outside ignored
    directories (see the module docstring)."""

    def __init__(self, roots: Iterable[str]) -> None:
        self.roots = tuple(sorted({os.path.realpath(r) for r in roots}, key=len, reverse=True))
        self._venv: dict[str, bool] = {}

    def __call__(self, change: object, path: str) -> bool:
        if not path.endswith(".py"):
            return False
        name = os.path.basename(path)
        if name.startswith(".#"):  # an editor's lock file
            return False
        real = os.path.realpath(os.path.dirname(path))
        root = next((r for r in self.roots if real == r or real.startswith(r + os.sep)), None)
        if root is None:
            return True
        current = root
        for part in os.path.relpath(real, root).split(os.sep):
            if part == ".":
                continue
            if part.startswith(".") or part in IGNORED_DIRS or part.endswith(".egg-info"):
                return False
            current = os.path.join(current, part)
            if self._is_venv(current):
                return False
        return True

    def _is_venv(self, directory: str) -> bool:
        found = self._venv.get(directory)
        if found is None:
            found = self._venv[directory] = os.path.isfile(os.path.join(directory,
                                                                        "pyvenv.cfg"))
        return found


class Watcher:
    """Runs ``command`` as a child and restarts it when a source file under ``dirs``
    changes."""

    def __init__(self, command: Sequence[str], dirs: Sequence[str],
                 shutdown_timeout: float) -> None:
        self.command = list(command)
        self.dirs = list(dirs)
        self.shutdown_timeout = shutdown_timeout
        self.child: subprocess.Popen | None = None
        self._reported = False
        self._stop = threading.Event()

    def run(self) -> int:
        import watchfiles
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        log.info("reload: watching %s for changes of .py files (watcher pid %d)",
                 ", ".join(self.dirs), os.getpid())
        try:
            self._start()
            for changes in watchfiles.watch(*self.dirs, watch_filter=SourceFilter(self.dirs),
                                            stop_event=self._stop, yield_on_timeout=True,
                                            rust_timeout=_POLL_MS, debounce=400, step=50,
                                            raise_interrupt=False):
                if self._stop.is_set():
                    break
                if changes:
                    self._restart(sorted({path for _, path in changes}))
                else:
                    self._check_child()
        finally:
            self._stop_child()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            if self.child is not None and self.child.poll() is None:
                self.child.send_signal(signal.SIGHUP)
            return
        self._stop.set()

    def _start(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self.child = subprocess.Popen(self.command)
        self._reported = False

    def _check_child(self) -> None:
        """One line when the child exited by itself (its own error said why)."""
        child = self.child
        if child is not None and not self._reported and child.poll() is not None:
            self._reported = True
            log.error("reload: the server exited (code %s); waiting for a change to a .py "
                      "file", child.returncode)

    def _restart(self, paths: list[str]) -> None:
        shown = ", ".join(_short(p) for p in paths[:3])
        more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
        log.info("reload: %s%s changed; restarting the server", shown, more)
        self._stop_child()
        if not self._stop.is_set():
            self._start()

    def _stop_child(self) -> None:
        child = self.child
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(self.shutdown_timeout + _KILL_GRACE)
        except subprocess.TimeoutExpired:
            log.warning("reload: the server (pid %d) did not stop; killing it", child.pid)
            child.kill()
            child.wait()


def _short(path: str) -> str:
    """``path`` relative to the current directory when it is below it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def check_reload_dirs(dirs: Sequence[str]) -> list[str]:
    """The directories to watch (default: the current one), absolute; ValueError naming a
    missing one."""
    checked = []
    for directory in dirs or [os.getcwd()]:
        if not os.path.isdir(directory):
            why = "not a directory" if os.path.exists(directory) else "no such directory"
            raise ValueError(f"--reload-dir {directory}: {why}")
        checked.append(os.path.abspath(directory))
    return checked


def run_watcher(argv: Sequence[str], dirs: Sequence[str], shutdown_timeout: float) -> int:
    """``--reload``: run the server given by ``argv`` (the command line's arguments) under a
    :class:`Watcher`; returns the exit code."""
    from .cli import UsageError
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        raise UsageError("--reload needs watchfiles: pip install 'kyoukai_h2fast[reload]'") \
            from None
    try:
        watched = check_reload_dirs(dirs)
    except ValueError as e:
        raise UsageError(str(e)) from None
    command = [sys.executable, "-m", "kyoukai_h2fast", *argv, "--no-reload"]
    return Watcher(command, watched, shutdown_timeout).run()
