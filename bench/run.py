#!/usr/bin/env python3
"""End-to-end HTTP/2 benchmark: kyoukai_h2fast against its peers, side by side, in one run.

``python bench/run.py [--quick] [--servers a,b] [--workloads x,y] [--repeats N]
[--duration S] [--warmup S] [--loop auto|uvloop|asyncio] [--out DIR] [--no-install] [--list]``

Owns the plan and the loop: it checks the tools (h2load, nghttpd, openssl), prepares the peers'
venv (:mod:`peers`), a self-signed certificate, the static site and the upload file, then for
N rounds over every server × workload, one server at a time: start a fresh server process
pinned to core 0, wait until it answers, warm it up with count-based h2load runs (in round 1
they grow until they last about ``--warmup`` seconds and give the server's rate), one measured
h2load run pinned to core 1 (:mod:`measure`) sized to last about ``--duration`` seconds, stop
it. Rounds alternate their order, so slow drift of a shared machine hits every server alike. It then
computes medians, min/max and the kyoukai_h2fast ÷ peer ratios and hands everything to
:mod:`report`, which writes ``<stamp>.*`` and replaces ``latest.*`` only for a complete run.

The kyoukai_h2fast variants run on uvloop (a dependency on CPython outside Windows); when this
interpreter has no uvloop, ``--loop auto`` runs them on asyncio and says so (loudly, and in the
report, which then does not replace ``latest.*``); ``--loop uvloop`` stops before running
anything. Exit codes: 0 complete run, report written and copied to ``latest.*``; 1 report
written under its timestamp only (partial run: a cell failed or was not measured, no charts, a
loop or build other than planned); 2 bad arguments; 3 a required tool or uvloop is missing.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import measure  # noqa: E402
import peers  # noqa: E402
import report  # noqa: E402
from apps import write_static_site  # noqa: E402

BENCH_DIR = peers.BENCH_DIR
UPLOAD_SIZE = 1024 * 1024
APT_HINT = "apt-get install -y nghttp2-client nghttp2-server"


@dataclasses.dataclass(frozen=True)
class Workload:
    label: str
    path: str = "/"
    connections: int = 10
    streams: int = 10
    tls: bool = False
    headers: int = 0          # extra request headers (HPACK-heavy)
    upload: int = 0           # POST a body of this many bytes to /echo (-d); 0: GET
    h1: bool = False          # HTTP/1.1 (h2load --h1; streams = requests pipelined)
    # an ASGI app in bench/ ("module:attribute"): only servers that run ASGI apps
    # (ServerSpec.app_argv) take part, serving it; "": the server's own app
    app: str = ""
    chart: str = "rps"        # the figure its throughput chart panel shows (report.FIGURES)

    @property
    def protocol(self) -> str:
        """What h2load must report as the application protocol."""
        return "http/1.1" if self.h1 else "h2" if self.tls else "h2c"

    def h2load_args(self, upload_files: dict) -> list[str]:
        args = ["--h1"] if self.h1 else []
        args += ["-c", str(self.connections), "-m", str(self.streams)]
        for i in range(self.headers):
            args += ["-H", f"x-bench-header-{i:02d}: value-{i:02d}-abcdefghijklmnopqrstuvwxyz"]
        if self.upload:
            args += ["-d", upload_files[self.upload]]
        return args


WORKLOADS = {
    "get-c10-m1": Workload("GET /, 10 connections × 1 stream, h2c", streams=1),
    "get-c10-m10": Workload("GET /, 10 connections × 10 streams, h2c"),
    "get-c100-m10": Workload("GET /, 100 connections × 10 streams, h2c", connections=100),
    "headers30": Workload("GET / with 30 extra request headers, 10 × 10, h2c", headers=30),
    "upload-1mib": Workload("POST /echo 1 MiB body echoed, 10 × 1, h2c", path="/echo",
                            streams=1, upload=UPLOAD_SIZE),
    "post-1mib-c4": Workload("POST /echo 1 MiB body echoed, 4 × 1, h2c", path="/echo",
                             connections=4, streams=1, upload=UPLOAD_SIZE),
    "post-64mib-c1": Workload("POST /echo 64 MiB body echoed, 1 × 1, h2c (MB/s)",
                              path="/echo", connections=1, streams=1, upload=64 * UPLOAD_SIZE,
                              chart="mb_per_s"),
    "download-4mib": Workload("GET /download 4 MiB, 10 × 1, h2c", path="/download", streams=1),
    "tls-get-c10-m10": Workload("GET /, 10 × 10, TLS 1.3 + ALPN h2", tls=True),
    "tls-get-c10-m1": Workload("GET /, 10 × 1, TLS 1.3 + ALPN h2", streams=1, tls=True),
    "h1-get-c10": Workload("GET /, 10 keep-alive HTTP/1.1 connections, 1 request in flight "
                           "each (h2load --h1)", streams=1, h1=True),
    "asgi-get-c10-m10": Workload("ASGI app: GET /, 10 × 10, h2c", app="apps:asgi_app"),
    "asgi-get-c10-m1": Workload("ASGI app: GET /, 10 × 1, h2c", streams=1, app="apps:asgi_app"),
    "asgi-h1-get-c10": Workload("ASGI app: GET /, 10 keep-alive HTTP/1.1 connections, 1 "
                                "request in flight each (h2load --h1)", streams=1, h1=True,
                                app="apps:asgi_app"),
    "fastapi-json-c10-m1": Workload("FastAPI app: GET /json, 10 × 1, h2c", path="/json",
                                    streams=1, app="fastapi_app:app"),
}
MAIN_WORKLOAD = "get-c10-m10"
QUICK_WORKLOADS = ["get-c10-m10", "get-c10-m1", "tls-get-c10-m10", "tls-get-c10-m1",
                   "post-1mib-c4", "post-64mib-c1"]
FIGURE_KEYS = list(report.FIGURES)


def log(msg: str) -> None:
    print(msg, flush=True)


# --- environment ----------------------------------------------------------------------------

def tool_version(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else None


def machine_info() -> dict:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                       "?")
    except OSError:
        pass
    mem = 0.0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) / 1024 / 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu_model": cpu, "cpus": os.cpu_count(), "memory_gib": round(mem, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "python_executable": sys.executable, "loadavg_before": _loadavg()}


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def make_certificate(directory: str) -> peers.TLSFiles:
    """A self-signed P-256 certificate for 127.0.0.1/localhost (key in PKCS#8, as granian
    requires)."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return peers.TLSFiles(cert, key)


# --- statistics -----------------------------------------------------------------------------

def run_figures(raw: dict, cpu: float, peak_rss: int, latencies: list[float]) -> dict:
    succeeded = raw.get("succeeded", 0)
    duration = raw["elapsed_s"]
    figures = {
        "rps": succeeded / duration,
        "p50_ms": measure.percentile(latencies, 50) * 1e3 if latencies else None,
        "p99_ms": measure.percentile(latencies, 99) * 1e3 if latencies else None,
        "mb_per_s": raw.get("data_bytes", 0) / duration / 1e6,        # response bodies
        "wire_mb_per_s": raw.get("traffic_bytes", 0) / duration / 1e6,  # + headers, frames
        "cpu_s_per_10k": cpu / succeeded * 1e4 if succeeded else None,
        "peak_rss_mib": peak_rss / 1024 / 1024,
        # CPU the server got ÷ wall time: well below 1 for a one-thread server means it was
        # waiting (on the client, or on a core that something else on the machine was using)
        "server_cpu_util": cpu / duration,
    }
    return figures


def summarize(values: list) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def compute_ratios(results: dict) -> dict:
    """ratios[workload][kyoukai id][peer id][figure] = kyoukai median ÷ peer median."""
    ratios: dict = {}
    servers = results["servers"]
    kyoukai = [s for s in servers if servers[s]["family"] == "kyoukai_h2fast"]
    others = [s for s in servers if servers[s]["family"] != "kyoukai_h2fast"]
    for wid in results["workloads"]:
        table = {}
        for kid in kyoukai:
            kstats = results["cells"].get(kid, {}).get(wid, {}).get("stats")
            if not kstats:
                continue
            row = {}
            for pid in others:
                pstats = results["cells"].get(pid, {}).get(wid, {}).get("stats")
                if not pstats:
                    continue
                row[pid] = {}
                for f in FIGURE_KEYS:
                    k, p = (kstats.get(f) or {}).get("median"), (pstats.get(f) or {}).get("median")
                    row[pid][f] = k / p if k is not None and p else None
            if row:
                table[kid] = row
        ratios[wid] = table
    return ratios


# --- the loop ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Cell:
    """One server × workload: its measured runs so far, or why it cannot be measured."""

    spec: object
    wid: str
    closed: dict | None = None      # final cell when it cannot be (further) measured
    rate: float | None = None       # req/s found by the warm-up; sizes the measured runs
    count: int = 0                  # requests per measured run
    runs: list = dataclasses.field(default_factory=list)
    problems: list = dataclasses.field(default_factory=list)


def plan_cells(specs: list, workload_ids: list[str], ctx: dict, results: dict) -> list[Cell]:
    """Cells to measure; the ones that cannot be (not installed, unsupported) are final."""
    cells = []
    for spec in specs:
        final = results["cells"].setdefault(spec.id, {})
        missing = [p for p in spec.needs if not ctx["peer_env"]["versions"].get(p)]
        why = "; ".join(f"{p}: {ctx['peer_env']['errors'].get(p, 'not installed')}"
                        for p in missing)
        if missing:
            log(f"  {spec.id}: not installed ({why})")
        for wid in workload_ids:
            if missing:
                final[wid] = {"status": "not installed", "detail": why}
            elif WORKLOADS[wid].tls and not spec.tls:
                final[wid] = {"status": "unsupported", "detail": "no TLS with ALPN h2"}
            elif WORKLOADS[wid].h1 and not spec.h1:
                final[wid] = {"status": "unsupported", "detail": "not run on HTTP/1.1"}
            elif not WORKLOADS[wid].h1 and not spec.h2:
                final[wid] = {"status": "unsupported", "detail": "HTTP/1.1 only"}
            elif WORKLOADS[wid].app and spec.app_argv is None:
                final[wid] = {"status": "unsupported", "detail": "serves no ASGI app"}
            elif spec.app_only and not WORKLOADS[wid].app:
                final[wid] = {"status": "unsupported", "detail": "ASGI workloads only"}
            elif wid in spec.skip:
                final[wid] = {"status": "unsupported", "detail": spec.skip[wid]}
            else:
                cells.append(Cell(spec, wid))
    return cells


def calibrate(args, url, wl: Workload, cap: int | None, ctx: dict, record: dict,
              problems: list) -> float | None:
    """Warm-up: count-based h2load runs growing until one lasts about ``warmup`` seconds.

    Returns the server's rate on this workload (succeeded requests/s of the last warm-up run),
    which sizes the measured runs to about ``duration`` seconds; None when it failed.
    """
    target = max(ctx["warmup"], 0.2)
    count = wl.connections * wl.streams * 2
    rate = None
    for _ in range(8):
        if cap:
            count = min(count, cap)
        raw, cmd = measure.run_h2load(args, url, count, None, timeout=max(60.0, target * 20))
        record["h2load"].append({"warmup": True, "command": shlex.join(cmd),
                                 "error": raw.get("error"), "elapsed_s": raw.get("elapsed_s"),
                                 "succeeded": raw.get("succeeded")})
        if "error" in raw or not raw.get("succeeded") or not raw.get("elapsed_s"):
            problems.append("warm-up: " + raw.get("error", f"{raw.get('succeeded', 0)} of "
                                                  f"{count} requests succeeded"))
            return None
        rate = raw["succeeded"] / raw["elapsed_s"]
        if raw["elapsed_s"] >= 0.8 * target or (cap and count >= cap):
            break
        count = int(min(count * 10, max(count * 2, rate * target * 1.1)))
    return rate


def measure_round(cell: Cell, r: int, ctx: dict, results: dict) -> None:
    """Round ``r`` of a cell on a fresh server process: start, warm up, one measured run, stop.

    Round 0 also finds the server's rate (:func:`calibrate`); later rounds warm up with one
    shorter run at that rate.
    """
    spec, wid, wl = cell.spec, cell.wid, WORKLOADS[cell.wid]
    port = measure.free_port()
    tls = ctx["tls"] if wl.tls else None
    argv = spec.app_argv(port, tls, wl.app) if wl.app else spec.argv(port, tls)
    log_path = os.path.join(ctx["tmp"], f"{spec.id}-{wid}-{r}.log")
    base = f"{'https' if wl.tls else 'http'}://127.0.0.1:{port}"
    record = {"server": spec.id, "workload": wid, "round": r, "env": spec.env,
              "cwd": BENCH_DIR, "h2load": []}
    results["runs"].append(record)
    prefix = f"  [{r + 1}/{ctx['repeats']}] {spec.id:36s} {wid:16s}"
    try:
        server = measure.ServerProcess(argv, spec.env, BENCH_DIR, log_path)
    except OSError as e:
        record["start_error"] = str(e)
        log(f"{prefix} did not start: {e}")
        cell.closed = {"status": "did not start", "detail": f"{type(e).__name__}: {e}"}
        return
    record["command"] = shlex.join(server.command)
    ready, why, seconds = server.wait_ready(base + "/", h1=wl.h1)
    record["ready_seconds"] = round(seconds, 3)
    if not ready:
        detail = f"{why}; log: {server.log_tail()}"
        record["stop"] = server.stop()
        log(f"{prefix} did not start: {why}")
        if r == 0:
            cell.closed = {"status": "did not start", "detail": detail}
        else:
            cell.problems.append(f"round {r + 1}: did not start: {detail}")
        return
    expected_protocol = wl.protocol
    url = base + wl.path
    args = wl.h2load_args(ctx["upload_files"])
    cap = (spec.max_requests_per_connection * wl.connections
           if spec.max_requests_per_connection else None)
    try:
        if cell.rate is None:
            cell.rate = calibrate(args, url, wl, cap, ctx, record, cell.problems)
            if cell.rate is None:
                cell.closed = {"status": "failed",
                               "detail": "; ".join(dict.fromkeys(cell.problems))[:1000]}
                log(f"{prefix} FAILED: {cell.closed['detail'][:200]}")
                return
            cell.count = max(wl.connections * wl.streams, round(cell.rate * ctx["duration"]))
            cell.count = min(cell.count, cap) if cap else cell.count
        elif ctx["warmup"] > 0:
            warm_count = max(wl.connections * wl.streams * 2,
                             round(cell.rate * ctx["warmup"] / 2))
            warm_count = min(warm_count, cap) if cap else warm_count
            warm, cmd = measure.run_h2load(args, url, warm_count, None,
                                           timeout=max(60.0, ctx["warmup"] * 20))
            record["h2load"].append({"warmup": True, "command": shlex.join(cmd),
                                     "error": warm.get("error")})
        record["requests_per_run"] = cell.count
        lat_file = os.path.join(ctx["tmp"], f"{spec.id}-{wid}-{r}.lat")
        load_before = _loadavg()
        sampler = measure.TreeSampler(server.pid).start()
        raw, cmd = measure.run_h2load(args, url, cell.count, lat_file,
                                      timeout=max(60.0, ctx["duration"] * 10))
        sampler.stop()
        entry = {"repeat": r, "command": shlex.join(cmd), "server_pids": sampler.pids,
                 "loadavg_before": load_before}
        record["h2load"].append(entry)
        if "error" in raw:
            cell.problems.append(f"round {r + 1}: {raw['error']}")
            entry["error"] = raw["error"]
            log(f"{prefix} error: {raw['error'][:200]}")
            return
        latencies = measure.latencies_from_log(lat_file)
        try:
            os.unlink(lat_file)
        except OSError:
            pass
        figures = run_figures(raw, sampler.cpu, sampler.peak_rss, latencies)
        entry.update(raw=raw, figures=figures, server_cpu_s=sampler.cpu)
        bad = raw.get("failed", 0) + raw.get("errored", 0) + raw.get("timeout", 0)
        non2xx = sum(v for k, v in raw.get("status", {}).items() if k != "2xx")
        if raw.get("protocol") != expected_protocol:
            cell.problems.append(f"negotiated {raw.get('protocol')!r}, not {expected_protocol}")
        elif not raw.get("succeeded"):
            cell.problems.append(f"round {r + 1}: no request succeeded "
                                 f"({raw.get('started', 0)} started)")
        else:
            cell.runs.append(figures)
            if figures["rps"] > cell.rate:   # warm-up underestimated: size later runs anew
                cell.rate = figures["rps"]
                cell.count = max(wl.connections * wl.streams,
                                 round(cell.rate * ctx["duration"]))
                cell.count = min(cell.count, cap) if cap else cell.count
        if bad or non2xx:
            cell.problems.append(f"round {r + 1}: {raw.get('failed', 0)} failed, "
                                 f"{raw.get('errored', 0)} errored, {non2xx} non-2xx "
                                 f"of {raw.get('done', 0)} done")
        log(f"{prefix} {figures['rps']:>10,.0f} req/s p50 {_ms(figures['p50_ms'])} "
            f"p99 {_ms(figures['p99_ms'])} cpu/10k {_num(figures['cpu_s_per_10k'])} "
            f"rss {figures['peak_rss_mib']:.0f} MiB"
            + (f" [{bad} failed/errored, {non2xx} non-2xx]" if bad or non2xx else ""))
    finally:
        record["stop"] = server.stop()
        record["log_tail"] = server.log_tail(5)


def finish_cell(cell: Cell) -> dict:
    if cell.closed:
        return cell.closed
    runs = cell.runs
    stats = {f: summarize([r.get(f) for r in runs]) for f in runs[0]} if runs else {}
    status = "ok" if runs and not cell.problems else ("errors" if runs else "failed")
    return {"status": status, "stats": stats, "runs": len(runs),
            "requests_per_run": cell.count, "warmup_rate": cell.rate,
            "detail": "; ".join(dict.fromkeys(cell.problems))[:1000]}


def _ms(value):
    return f"{value:.2f}ms" if value is not None else "-"


def _num(value):
    return f"{value:.2f}" if value is not None else "-"


# --- CLI --------------------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="bench/run.py", description="End-to-end HTTP/2 benchmark of kyoukai_h2fast "
        "against hypercorn, gunicorn, uvicorn, granian and nghttpd, in one run.")
    p.add_argument("--quick", action="store_true",
                   help=f"{len(peers.QUICK_SERVERS)} servers × {', '.join(QUICK_WORKLOADS)}, "
                        "3 runs of about 1.5 s (under 3 minutes)")
    p.add_argument("--servers", help="comma-separated server ids (see --list)")
    p.add_argument("--workloads", help="comma-separated workload ids (see --list)")
    p.add_argument("--repeats", type=int, help="measured runs per server and workload "
                   "(default 3)")
    p.add_argument("--duration", type=float, help="about this many seconds per measured run "
                   "(count-based h2load runs sized from the warm-up rate; default 4, --quick 1.5)")
    p.add_argument("--warmup", type=float, help="about this many seconds of warm-up before "
                   "each workload (default 1, --quick 0.5)")
    p.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                   help="event loop of the kyoukai_h2fast variants documented with uvloop "
                        "(default auto: uvloop, or asyncio with a warning when uvloop is not "
                        "installed; the '-asyncio' variants always use asyncio)")
    p.add_argument("--out", default=os.path.join(BENCH_DIR, "results"),
                   help="report directory (default bench/results; use bench/scratch for "
                        "throw-away runs, it is git-ignored)")
    p.add_argument("--venv", default=peers.DEFAULT_VENV, help="peers' virtual environment "
                   "(default bench/.venv-peers)")
    p.add_argument("--no-install", action="store_true",
                   help="do not create the venv or install peers; use what is there")
    p.add_argument("--list", action="store_true", help="list server and workload ids, exit")
    args = p.parse_args(argv)
    for name in ("repeats", "duration", "warmup"):
        value = getattr(args, name)
        if value is not None and value <= 0 and not (name == "warmup" and value == 0):
            p.error(f"--{name} must be positive")
    args.repeats = args.repeats or 3
    args.duration = args.duration or (1.5 if args.quick else 4.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 1.0)
    return p, args


def select(p, text: str | None, known: list[str], default: list[str], what: str) -> list[str]:
    if not text:
        return default
    chosen = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [x for x in chosen if x not in known]
    if unknown:
        p.error(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return chosen


def main(argv=None) -> int:
    t_start = time.monotonic()
    p, args = parse_args(argv)
    site_dummy = {"htdocs": "", "mime_types": ""}
    all_ids = [s.id for s in peers.all_servers(args.venv, site_dummy, "")]
    if args.list:
        print("servers:  " + ", ".join(all_ids))
        print("quick:    " + ", ".join(peers.QUICK_SERVERS))
        for wid, wl in WORKLOADS.items():
            print(f"workload  {wid:16s} {wl.label}")
        return 0
    # (a baseline checkout in KYOUKAI_BENCH_BASELINE: its variants join a --quick run too)
    quick_ids = peers.QUICK_SERVERS + [i for i in all_ids if i.startswith("baseline-")]
    server_ids = select(p, args.servers, all_ids,
                        quick_ids if args.quick else all_ids, "servers")
    workload_ids = select(p, args.workloads, list(WORKLOADS),
                          QUICK_WORKLOADS if args.quick else list(WORKLOADS), "workloads")

    missing = [t for t in ("h2load", "nghttpd", "openssl") if shutil.which(t) is None]
    if missing:
        print(f"run.py: missing {', '.join(missing)}; install with:\n  {APT_HINT}"
              + ("\n  apt-get install -y openssl" if "openssl" in missing else ""),
              file=sys.stderr)
        return 3
    kyoukai_loop, loop_note = peers.kyoukai_loop(args.loop)
    if kyoukai_loop is None:
        print(f"run.py: --loop uvloop: {loop_note}", file=sys.stderr)
        return 3
    if loop_note and kyoukai_loop != peers.DOCUMENTED_LOOP:
        log(f"WARNING: the kyoukai_h2fast variants documented with uvloop run on "
            f"{kyoukai_loop}: {loop_note}. This run will not replace latest.*.")
    for gap in report.known_gaps():  # (said now, not after minutes of measuring)
        log(f"WARNING: {gap}. This run will be partial: it will not replace latest.* and "
            "will exit 1.")

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    tmp = tempfile.mkdtemp(prefix="kyoukai-bench-")
    try:
        log(f"kyoukai_h2fast end-to-end benchmark {stamp}: {len(server_ids)} servers × "
            f"{len(workload_ids)} workloads, {args.repeats} × {args.duration:g} s")
        peer_env = peers.ensure_peer_venv(args.venv, install=not args.no_install, log=log)
        builds = {b: peers.kyoukai_build_info(b) for b in ("compiled", "pure")}
        for b in builds.values():
            log(f"kyoukai_h2fast {b['requested']}: extensions: {b.get('extensions')} "
                f"({'ok' if b.get('ok') else 'MISMATCH'}) from {b.get('package_dir')}")
        site = write_static_site(os.path.join(tmp, "site"))
        hyp_conf = peers.write_hypercorn_config(tmp)
        specs = {s.id: s for s in peers.all_servers(args.venv, site, hyp_conf, kyoukai_loop)}
        upload_files = {}
        for size in sorted({w.upload for w in WORKLOADS.values() if w.upload}):
            upload_files[size] = os.path.join(tmp, f"upload-{size}.bin")
            with open(upload_files[size], "wb") as f:
                f.write(bytes(range(256)) * (size // 256))
        tls = make_certificate(tmp)
        versions = {"kyoukai_h2fast": (builds["compiled"].get("version_output") or "?")
                    .splitlines()[0].split()[-1],
                    "h2load": tool_version(["h2load", "--version"]),
                    "nghttpd": tool_version(["nghttpd", "--version"]),
                    "openssl": tool_version(["openssl", "version"]),
                    **{f"{k} (peers venv)": v for k, v in peer_env["versions"].items()}}
        try:
            import uvloop
            versions["uvloop (kyoukai_h2fast)"] = uvloop.__version__
        except ImportError:
            versions["uvloop (kyoukai_h2fast)"] = None
        results = {
            "meta": {"timestamp": stamp, "command": shlex.join(["python", "bench/run.py",
                                                                  *(argv or sys.argv[1:])]),
                     "quick": args.quick, "repeats": args.repeats,
                     "duration_s": args.duration, "warmup_s": args.warmup,
                     "pinning": "taskset" if measure.HAVE_TASKSET else "none (no taskset)",
                     "machine": machine_info(), "versions": versions,
                     "kyoukai_builds": builds, "peer_env": peer_env,
                     "main_workload": MAIN_WORKLOAD, "kyoukai_loop": kyoukai_loop,
                     "loop_note": loop_note,
                     # a narrowed run never replaces latest.* (see report.incomplete_reasons)
                     "subset": bool(args.servers or args.workloads)},
            "workloads": {w: {**dataclasses.asdict(WORKLOADS[w]), "label": WORKLOADS[w].label}
                          for w in workload_ids},
            "servers": {}, "cells": {}, "runs": [],
        }
        for sid in server_ids:
            s = specs[sid]
            results["servers"][sid] = {"label": s.label, "family": s.family,
                                       "interface": s.interface, "build": s.build,
                                       "loop": s.loop, "planned_loop": s.planned_loop,
                                       "notes": s.notes}
        ctx = {"tmp": tmp, "tls": tls, "upload_files": upload_files, "peer_env": peer_env,
               "repeats": args.repeats, "duration": args.duration, "warmup": args.warmup}
        cells = plan_cells([specs[sid] for sid in server_ids], workload_ids, ctx, results)
        for r in range(args.repeats):   # rounds; alternate order so drift hits all alike
            log(f"round {r + 1}/{args.repeats}")
            for cell in (cells if r % 2 == 0 else cells[::-1]):
                if not cell.closed:
                    measure_round(cell, r, ctx, results)
        for cell in cells:
            results["cells"][cell.spec.id][cell.wid] = final = finish_cell(cell)
            stats = final.get("stats") or {}
            if stats:
                log(f"{cell.spec.id:36s} {cell.wid:16s} median {stats['rps']['median']:>10,.0f}"
                    f" req/s ({stats['rps']['min']:,.0f}–{stats['rps']['max']:,.0f}) "
                    f"cpu/10k {_num((stats['cpu_s_per_10k'] or {}).get('median'))} "
                    f"[{final['status']}]")
            else:
                log(f"{cell.spec.id:36s} {cell.wid:16s} {final['status']}: "
                    f"{final.get('detail', '')[:150]}")
        results["ratios"] = compute_ratios(results)
        meta = results["meta"]
        meta["loadavg_after"] = _loadavg()
        meta["wall_seconds"] = time.monotonic() - t_start
        # sets meta["exit_code"]: 0 for a complete run, else 1 (a run where no kyoukai_h2fast
        # cell was measured is never complete)
        written = report.write_report(results, args.out, stamp)
        if not meta["charts"]:
            log(f"WARNING: NO CHARTS were drawn: {meta['charts_note']}")
        if written["incomplete"]:
            log("WARNING: partial run: latest.* NOT updated; this run's report is "
                f"{', '.join(written['paths'].values())}. Why:")
            for reason in written["incomplete"]:
                log(f"  - {reason}")
        else:
            log(f"wrote {', '.join(written['paths'].values())} and updated "
                f"{', '.join(written['latest'])} in {time.monotonic() - t_start:.0f} s")
        main_ratios = results["ratios"].get(MAIN_WORKLOAD, {})
        for kid, row in main_ratios.items():
            log(f"{kid} req/s ÷ peer on {MAIN_WORKLOAD}: " + ", ".join(
                f"{pid} {r['rps']:.2f}×" for pid, r in row.items() if r.get("rps")))
        return meta["exit_code"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("run.py: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
