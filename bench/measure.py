"""Measuring one server: start it pinned, wait until it answers, load it with h2load, stop it.

Owns:

* :class:`ServerProcess`: start a server pinned to core 0 (``taskset -c 0`` when available) in
  its own session, poll until it answers one HTTP/2 request, stop it (SIGTERM, SIGKILL after a
  timeout), keep its log;
* :class:`TreeSampler`: the server's process tree from ``/proc`` - CPU seconds
  (utime+stime of every process, threads included) and peak resident memory (sum of VmRSS over
  the tree, sampled every 50 ms while the load runs);
* :func:`run_h2load` + :func:`parse_h2load`: one count-based h2load run pinned to core 1, its
  summary parsed, and p50/p99 latency computed from its ``--log-file`` (one line per request:
  start time, status, duration in microseconds).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

__all__ = ["ServerProcess", "TreeSampler", "run_h2load", "parse_h2load", "percentile",
           "free_port", "pin"]

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
HAVE_TASKSET = shutil.which("taskset") is not None


def pin(core: int, argv: list[str]) -> list[str]:
    """``taskset -c core argv`` when taskset exists (and the core does), else argv."""
    if HAVE_TASKSET and (os.cpu_count() or 1) > core:
        return ["taskset", "-c", str(core), *argv]
    return list(argv)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- /proc --------------------------------------------------------------------------------

def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def process_tree(root: int) -> list[int]:
    children = _children_map()
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """utime+stime of the processes (all their threads), in seconds."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        ticks += int(fields[11]) + int(fields[12])   # utime, stime (fields 14, 15)
    return ticks / CLK_TCK


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


class TreeSampler:
    """Samples the tree's summed RSS every ``interval`` s between start() and stop()."""

    def __init__(self, root: int, interval: float = 0.05) -> None:
        self.root, self.interval = root, interval
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.pids: list[int] = []
        self.cpu_start = self.cpu_end = 0.0

    def _loop(self) -> None:
        refresh = 0
        while not self._stop.is_set():
            if refresh == 0:
                self.pids = process_tree(self.root)
            refresh = (refresh + 1) % 10
            self.peak_rss = max(self.peak_rss, rss_bytes(self.pids))
            self._stop.wait(self.interval)

    def start(self) -> TreeSampler:
        self.pids = process_tree(self.root)
        self.peak_rss = rss_bytes(self.pids)
        self.cpu_start = cpu_seconds(self.pids)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        pids = process_tree(self.root)
        self.peak_rss = max(self.peak_rss, rss_bytes(pids))
        # a process that exited meanwhile loses its share; servers here keep their workers
        self.cpu_end = cpu_seconds(sorted(set(pids) | set(self.pids)))

    @property
    def cpu(self) -> float:
        return max(0.0, self.cpu_end - self.cpu_start)


# --- server processes -----------------------------------------------------------------------

class ServerProcess:
    """A server started from ``argv`` (pinned to core 0), logging to ``log_path``."""

    def __init__(self, argv: list[str], env_overrides: dict, cwd: str, log_path: str) -> None:
        self.command = pin(0, argv)
        env = os.environ.copy()
        for key, value in env_overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        self.env_overrides = env_overrides
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(self.command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 8) -> str:
        try:
            with open(self.log_path, "rb") as f:
                text = f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def wait_ready(self, url: str, timeout: float = 30.0,
                   h1: bool = False) -> tuple[bool, str, float]:
        """Poll until one h2load request (HTTP/1.1 with ``h1``) succeeds; (ready, reason,
        seconds)."""
        deadline = self.started_at + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False, f"exited with code {self.proc.returncode} during start-up", \
                    time.monotonic() - self.started_at
            try:
                probe = subprocess.run(["h2load", *(["--h1"] if h1 else []), "-n", "1",
                                        "-c", "1", url],
                                       capture_output=True, text=True, timeout=5)
                if re.search(r"\b1 succeeded\b", probe.stdout):
                    return True, "", time.monotonic() - self.started_at
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.1)
        return False, f"did not answer within {timeout:g}s", time.monotonic() - self.started_at

    def stop(self, timeout: float = 10.0) -> dict:
        """SIGTERM, wait, SIGKILL the session if still alive; returns how it ended."""
        result = {"signal": "SIGTERM"}
        t0 = time.monotonic()
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                result["signal"] = "SIGKILL after SIGTERM timeout"
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)   # our own session only
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        else:
            result["signal"] = "already exited"
        try:   # leftovers of the server's own session (workers that outlived the master)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()
        result["exit_code"] = self.proc.returncode
        result["seconds"] = round(time.monotonic() - t0, 3)
        return result


# --- h2load ---------------------------------------------------------------------------------

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def _seconds(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def parse_h2load(stdout: str) -> dict:
    """The figures of an h2load summary (raises ValueError when there is none)."""
    out: dict = {}
    m = re.search(r"finished in ([\d.]+(?:us|ms|s)), ([\d.]+) req/s", stdout)
    if not m:
        raise ValueError("no h2load summary")
    out["elapsed_s"], out["h2load_rps"] = _seconds(m.group(1)), float(m.group(2))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", stdout)
    keys = ("total", "started", "done", "succeeded", "failed", "errored", "timeout")
    out.update({k: int(v) for k, v in zip(keys, m.groups(), strict=True)} if m else {})
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", stdout)
    if m:
        out["status"] = dict(zip(("2xx", "3xx", "4xx", "5xx"), map(int, m.groups()), strict=True))
    m = re.search(r"traffic: \S+ \((\d+)\) total, \S+ \((\d+)\) headers.*?\S+ \((\d+)\) data",
                  stdout)
    if m:
        out["traffic_bytes"], out["header_bytes"], out["data_bytes"] = map(int, m.groups())
    m = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", stdout)
    if m:
        out["latency_min_s"], out["latency_max_s"], out["latency_mean_s"], out["latency_sd_s"] = \
            map(_seconds, m.groups())
    m = re.search(r"Application protocol: (\S+)", stdout)
    out["protocol"] = m.group(1) if m else None
    return out


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an already sorted list."""
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def latencies_from_log(path: str) -> list[float]:
    """Per-request durations (seconds) of 2xx answers in an h2load --log-file, sorted."""
    values = []
    try:
        with open(path, "rb") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[1].startswith(b"2"):
                    values.append(int(parts[2]) / 1e6)
    except OSError:
        return []
    values.sort()
    return values


def run_h2load(args: list[str], url: str, count: int, log_file: str | None,
               timeout: float, stall: float = 10.0) -> tuple[dict, list[str]]:
    """One pinned, count-based h2load run (``-n count``): every request it starts completes or
    fails, none is abandoned mid-flight. A connection silent for ``stall`` seconds is dropped
    (``-N``). Returns (figures or {"error": ...}, command)."""
    cmd = pin(1, ["h2load", "-t", "1", "-n", str(count), "-N", f"{max(1, round(stall))}s",
                  *args])
    if log_file:
        cmd += ["--log-file", log_file]
    cmd.append(url)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"h2load did not finish within {timeout:g}s"}, cmd
    try:
        figures = parse_h2load(done.stdout)
    except ValueError:
        tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
        return {"error": f"h2load exit {done.returncode}: " + " | ".join(tail)}, cmd
    figures["exit_code"] = done.returncode
    return figures, cmd
