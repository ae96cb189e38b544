"""The report of a run: JSON (everything), Markdown tables, PNG charts, ``latest.*`` copies.

Owns the presentation only: it reads the results dict built by ``run.py`` (``results["cells"]``:
one entry per server x workload with a status and, when measured, median/min/max of every
figure; ``results["ratios"]``) and writes ``<stamp>.json``, ``<stamp>.md``, ``<stamp>-rps.png``,
``<stamp>-latency.png``. Nothing here computes a measurement, so nothing in the report is
hand-edited or re-derived.

``latest.*`` (the report the README shows) is replaced only by a complete run
(:func:`incomplete_reasons` is empty): a whole ``--quick`` or full run (not narrowed by
``--servers``/``--workloads``), every planned cell measured without errors, the kyoukai_h2fast
variants on the loop they are documented with, both builds as requested, and the charts drawn.
Any other run keeps its timestamped files only, and says so at the top of its Markdown; so
``latest.json``, ``latest.md`` and ``latest-*.png`` always come from one complete run. Without
matplotlib the Markdown says that no chart was drawn (it never points at an older chart).
"""
from __future__ import annotations

import json
import math
import os
import shutil

__all__ = ["write_report", "incomplete_reasons", "known_gaps", "throughput_figure", "FIGURES",
           "THROUGHPUT_AXES", "HEADLINE_VARIANTS", "COMPLETE_STATUSES", "NO_CHARTS"]

# kyoukai_h2fast variants given a summary table (when they were measured)
HEADLINE_VARIANTS = ["kyoukai-compiled-wsgi-inline", "kyoukai-compiled-async"]

# Cell statuses of a complete run ("unsupported": a server without TLS on a TLS workload).
COMPLETE_STATUSES = ("ok", "unsupported")
NO_CHARTS = "matplotlib is not installed (pip install matplotlib, or pip install -e '.[bench]')"

# figure key -> (column title, format, better)
FIGURES = {
    "rps": ("req/s", "{:,.0f}", "higher"),
    "p50_ms": ("p50 ms", "{:.2f}", "lower"),
    "p99_ms": ("p99 ms", "{:.2f}", "lower"),
    "mb_per_s": ("body MB/s", "{:,.2f}", "higher"),
    "cpu_s_per_10k": ("CPU s/10k req", "{:.2f}", "lower"),
    "peak_rss_mib": ("peak RSS MiB", "{:.1f}", "lower"),
}


# figure key -> the x axis of a throughput chart panel showing it
THROUGHPUT_AXES = {
    "rps": "requests/s (median, bars: min–max)",
    "mb_per_s": "body MB/s (median, bars: min–max)",
}


def throughput_figure(workload: dict) -> str:
    """The figure a workload's panel of the throughput chart shows: its ``chart`` (``run.py``
    sets ``mb_per_s`` for the 64 MiB upload, whose req/s is a handful), else requests/s."""
    return workload.get("chart") or "rps"


def known_gaps() -> list[str]:
    """What will keep a run from being complete, known before it starts (``run.py`` says so
    before measuring anything): no matplotlib, so no charts."""
    return [f"no charts: {NO_CHARTS}"] if _matplotlib_missing() else []


def _fmt(value, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return pattern.format(value)


def _spread(stat: dict | None, pattern: str) -> str:
    if not stat:
        return "-"
    med = _fmt(stat.get("median"), pattern)
    if stat.get("n", 0) > 1:
        return f"{med} ({_fmt(stat.get('min'), pattern)}–{_fmt(stat.get('max'), pattern)})"
    return med


def _ratio(value) -> str:
    return "-" if value is None else f"{value:.2f}×"


def _server_label(results: dict, sid: str) -> str:
    return results["servers"][sid]["label"]


def incomplete_reasons(results: dict) -> list[str]:
    """Why this run must not replace ``latest.*`` (empty: a complete run)."""
    meta = results["meta"]
    reasons = []
    for (sid, wid), cell in _cells(results):
        if cell.get("status") not in COMPLETE_STATUSES:
            detail = str(cell.get("detail") or "")[:120]
            reasons.append(f"{sid} × {wid}: {cell.get('status')}"
                           + (f" ({detail})" if detail else ""))
    for sid, server in results["servers"].items():
        if server.get("family") == "kyoukai_h2fast" and server.get("planned_loop") \
                and server.get("loop") != server["planned_loop"]:
            reasons.append(f"{sid} ran on {server.get('loop')}, not {server['planned_loop']}: "
                           f"{meta.get('loop_note') or 'loop fallback'}")
    if meta.get("subset"):
        reasons.append("servers or workloads narrowed with --servers/--workloads: only a "
                       "whole --quick or full run replaces latest.*")
    for build in meta.get("kyoukai_builds", {}).values():
        if not build.get("ok"):
            reasons.append(f"kyoukai_h2fast {build.get('requested')} build: --version says "
                           f"extensions: {build.get('extensions')}")
    if meta.get("charts") is False:
        reasons.append(f"no charts: {meta.get('charts_note') or NO_CHARTS}")
    return reasons


def _markdown(results: dict, files: dict) -> str:
    meta = results["meta"]
    out = [f"# kyoukai_h2fast end-to-end benchmark — {meta['timestamp']}", ""]
    incomplete = meta.get("incomplete") or []
    if incomplete:
        out += ["**Partial run: this report did not replace `latest.md`.** Why:", ""]
        out += [f"* {reason}" for reason in incomplete] + [""]
    out.append(f"Command: `{meta['command']}` (exit status {meta.get('exit_code', '?')}; "
               f"{meta['wall_seconds']:.0f} s wall)")
    m = meta["machine"]
    out += ["", f"Machine: {m['cpu_model']}, {m['cpus']} CPUs, {m['memory_gib']} GiB, "
            f"{m['kernel']}; Python {m['python']}; load average before/after: "
            f"{m['loadavg_before']} / {meta.get('loadavg_after', '?')}.",
            f"Pinning: servers on core 0, h2load on core 1 ({meta['pinning']}). Each figure is the "
            f"median of {meta['repeats']} count-based h2load runs of about "
            f"{meta['duration_s']:g} s, each on a fresh server process after a warm-up (sized "
            f"from the rate of about {meta['warmup_s']:g} s of warm-up runs in round 1); the "
            "runs are taken in rounds over all servers, alternating their order; ranges in "
            "parentheses are min–max over the runs.", ""]
    out.append("Versions: " + ", ".join(f"{k} {v or 'not installed'}"
                                        for k, v in meta["versions"].items()) + ".")
    for build in meta["kyoukai_builds"].values():
        verdict = "OK" if build.get("ok") else "**MISMATCH**"
        out.append(f"kyoukai_h2fast `{build['requested']}` variant: `--version` says "
                   f"`extensions: {build.get('extensions')}` ({verdict}); package at "
                   f"`{build.get('package_dir')}`.")
    out += ["", "Ratios are kyoukai_h2fast ÷ peer, measured side by side in this run: for req/s "
            "and MB/s above 1 means kyoukai_h2fast is faster; for latency, CPU and RSS below 1 "
            "means kyoukai_h2fast uses less.", ""]
    if files.get("rps_png"):
        out += [f"![req/s]({files['rps_png']})", "", f"![latency]({files['latency_png']})", ""]
    else:
        out += [f"**No chart: none was drawn for this run** "
                f"({meta.get('charts_note') or NO_CHARTS}).", ""]

    problems = [(sid, wid, cell) for (sid, wid), cell in _cells(results)
                if cell["status"] not in ("ok", "not planned")]
    main = meta["main_workload"]
    ratios = results["ratios"]
    headline = [k for k in HEADLINE_VARIANTS if k in results["servers"]]
    for kid in headline:
        rows = [(wid, ratios.get(wid, {}).get(kid)) for wid in results["workloads"]]
        rows = [(wid, row) for wid, row in rows if row]
        peer_ids = [p for p in results["servers"] if any(p in row for _, row in rows)]
        if not rows or not peer_ids:
            continue
        out += [f"## Summary: {_server_label(results, kid)} req/s ÷ peer req/s", "",
                "| workload | " + " | ".join(_server_label(results, p) for p in peer_ids)
                + " |", "| --- |" + " ---: |" * len(peer_ids)]
        for wid, row in rows:
            out.append(f"| {wid} | " + " | ".join(_ratio(row.get(p, {}).get("rps"))
                                                  for p in peer_ids) + " |")
        out.append("")
    for kid in headline:
        peers = ratios.get(main, {}).get(kid)
        if not peers:
            continue
        out += [f"## Every figure on {main}: {_server_label(results, kid)} ÷ peer", "",
                "| peer | " + " | ".join(FIGURES[f][0] for f in FIGURES) + " |",
                "| --- |" + " ---: |" * len(FIGURES)]
        for pid, figs in peers.items():
            out.append(f"| {_server_label(results, pid)} | "
                       + " | ".join(_ratio(figs.get(f)) for f in FIGURES) + " |")
        out.append("")
    out += ["## Per workload", ""]
    for wid, wl in results["workloads"].items():
        rows = [(sid, results["cells"].get(sid, {}).get(wid)) for sid in results["servers"]]
        rows = [(sid, c) for sid, c in rows if c and c["status"] != "not planned"]
        if not rows:
            continue
        out += [f"### {wid}: {wl['label']}", "",
                "| server | status | " + " | ".join(FIGURES[f][0] for f in FIGURES) + " |",
                "| --- | --- |" + " ---: |" * len(FIGURES)]
        for sid, cell in rows:
            stats = cell.get("stats", {})
            out.append(f"| {_server_label(results, sid)} | {cell['status']} | "
                       + " | ".join(_spread(stats.get(f), FIGURES[f][1]) for f in FIGURES)
                       + " |")
        table = ratios.get(wid) or {}
        peer_ids = sorted({p for peers in table.values() for p in peers},
                          key=list(results["servers"]).index)
        if table and peer_ids:
            out += ["", "req/s ratio (kyoukai_h2fast ÷ peer):", "",
                    "| kyoukai_h2fast | " + " | ".join(_server_label(results, p)
                                                       for p in peer_ids) + " |",
                    "| --- |" + " ---: |" * len(peer_ids)]
            for kid, peers in table.items():
                out.append(f"| {_server_label(results, kid)} | " + " | ".join(
                    _ratio(peers.get(p, {}).get("rps")) for p in peer_ids) + " |")
        out.append("")
    if problems:
        out += ["## Not measured or with errors", "", "| server | workload | status | detail |",
                "| --- | --- | --- | --- |"]
        for sid, wid, cell in problems:
            detail = str(cell.get("detail", "")).replace("|", "\\|").replace("\n", " ⏎ ")[:400]
            out.append(f"| {_server_label(results, sid)} | {wid} | {cell['status']} | {detail} |")
        out.append("")
    out += ["## Servers", "", "| id | server | interface | notes |", "| --- | --- | --- | --- |"]
    for sid, s in results["servers"].items():
        out.append(f"| {sid} | {s['label']} | {s['interface']} | {s['notes']} |")
    out += ["", "Exact server and h2load commands are in the JSON file "
            f"(`{files['json']}`), key `runs`.", ""]
    return "\n".join(out)


def _cells(results: dict):
    for sid, per in results["cells"].items():
        for wid, cell in per.items():
            yield (sid, wid), cell


def _color(server: dict) -> str:
    if server["family"] == "kyoukai_h2fast":
        return "#1f77b4" if server.get("build") == "compiled" else "#9ecae1"
    return "#555555" if server["family"] == "ceiling" else "#ff7f0e"


def _charts(results: dict, rps_path: str, latency_path: str) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    workloads = [wid for wid in results["workloads"]
                 if any(results["cells"].get(s, {}).get(wid, {}).get("stats")
                        for s in results["servers"])]
    if not workloads:
        return False
    servers = list(results["servers"])
    cols = min(2, len(workloads))
    rows = math.ceil(len(workloads) / cols)

    def panel_height():
        return 0.32 * len(servers) + 1.0

    for kind, path in (("rps", rps_path), ("latency", latency_path)):
        fig, axes = plt.subplots(rows, cols, figsize=(7.5 * cols, panel_height() * rows),
                                 squeeze=False)
        for ax in axes.flat[len(workloads):]:
            ax.axis("off")
        for ax, wid in zip(axes.flat, workloads, strict=False):
            labels, colors, ys = [], [], []
            for i, sid in enumerate(servers):
                labels.append(results["servers"][sid]["label"])
                colors.append(_color(results["servers"][sid]))
                ys.append(len(servers) - 1 - i)
            cells = [results["cells"].get(sid, {}).get(wid, {}) for sid in servers]
            if kind == "rps":
                key = throughput_figure(results["workloads"][wid])
                med = [c.get("stats", {}).get(key, {}).get("median", 0) or 0 for c in cells]
                lo = [m - (c.get("stats", {}).get(key, {}).get("min", m) or m)
                      for m, c in zip(med, cells, strict=False)]
                hi = [(c.get("stats", {}).get(key, {}).get("max", m) or m) - m
                      for m, c in zip(med, cells, strict=False)]
                ax.barh(ys, med, color=colors, xerr=[lo, hi], capsize=2)
                ax.set_xlabel(THROUGHPUT_AXES[key])
                top = max(med) if any(med) else 1
                for y, m, h, c in zip(ys, med, hi, cells, strict=False):
                    text = FIGURES[key][1].format(m) if c.get("stats") else c.get("status", "")
                    ax.text(m + h + top * 0.01, y, text, va="center", fontsize=7)
                ax.set_xlim(0, top * 1.25)
            else:
                p50 = [c.get("stats", {}).get("p50_ms", {}).get("median") for c in cells]
                p99 = [c.get("stats", {}).get("p99_ms", {}).get("median") for c in cells]
                ax.barh([y + 0.2 for y in ys], [v or 0 for v in p99], height=0.4,
                        color=colors, alpha=0.45, label="p99")
                ax.barh([y - 0.2 for y in ys], [v or 0 for v in p50], height=0.4,
                        color=colors, label="p50")
                ax.set_xscale("log")
                ax.set_xlabel("latency ms (log scale; solid p50, light p99)")
                for y, a, b, c in zip(ys, p50, p99, cells, strict=False):
                    if a:
                        ax.text(b or a, y, f" {a:.1f} / {b:.1f}", va="center", fontsize=7)
                    else:
                        ax.text(0.5, y, c.get("status", ""), va="center", fontsize=7,
                                transform=ax.get_yaxis_transform())
            ax.set_yticks(ys)
            ax.set_yticklabels(labels, fontsize=8)
            ax.set_title(f"{wid}: {results['workloads'][wid]['label']}", fontsize=9)
            ax.grid(axis="x", alpha=0.3)
        from matplotlib.patches import Patch
        legend = [Patch(color=_color({"family": "kyoukai_h2fast", "build": "compiled"}),
                        label="kyoukai_h2fast compiled"),
                  Patch(color=_color({"family": "kyoukai_h2fast", "build": "pure"}),
                        label="kyoukai_h2fast pure"),
                  Patch(color=_color({"family": "peer"}), label="peers (Python servers)"),
                  Patch(color=_color({"family": "ceiling"}), label="nghttpd (C, static)")]
        fig.legend(handles=legend, loc="lower center", ncol=4, fontsize=8, frameon=False)
        fig.suptitle(f"kyoukai_h2fast vs peers — {'throughput' if kind == 'rps' else 'latency'}"
                     f" ({results['meta']['timestamp']}, {results['meta']['machine']['cpus']}"
                     " CPUs, server on core 0, h2load on core 1)", fontsize=10)
        fig.tight_layout(rect=(0, 0.06 if rows == 1 else 0.03, 1, 1))
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return True


def write_report(results: dict, out_dir: str, stamp: str, *, draw=None) -> dict:
    """Write ``<stamp>.*``, and ``latest.*`` only for a complete run (see the module docstring).

    ``draw(results, rps_path, latency_path) -> bool`` draws the charts (default: matplotlib;
    False when it cannot). Sets ``results["meta"]`` ``files``, ``charts``, ``incomplete``,
    ``latest_updated`` and ``exit_code`` (0 complete, 1 partial). Returns
    ``{"paths": {kind: path}, "latest": [paths] or [], "incomplete": [reasons]}``.
    """
    draw = draw or _charts
    meta = results["meta"]
    os.makedirs(out_dir, exist_ok=True)
    files = {"json": f"{stamp}.json", "md": f"{stamp}.md",
             "rps_png": f"{stamp}-rps.png", "latency_png": f"{stamp}-latency.png"}
    paths = {k: os.path.join(out_dir, v) for k, v in files.items()}
    try:
        meta["charts"] = bool(draw(results, paths["rps_png"], paths["latency_png"]))
    except ImportError:
        meta["charts"] = False
    if not meta["charts"]:
        meta["charts_note"] = (NO_CHARTS if _matplotlib_missing()
                               else "nothing was measured to chart")
        for key in ("rps_png", "latency_png"):
            files.pop(key)
            paths.pop(key)
    meta["incomplete"] = incomplete_reasons(results)
    meta["latest_updated"] = not meta["incomplete"]
    meta["exit_code"] = 1 if meta["incomplete"] else 0  # run.py's exit status
    meta["files"] = files
    with open(paths["json"], "w") as f:
        json.dump(results, f, indent=1, sort_keys=False, default=str)
    with open(paths["md"], "w") as f:
        f.write(_markdown(results, files))
    latest = []
    if meta["latest_updated"]:
        # latest.* copies (their Markdown points at the latest-* charts)
        latest_files = {k: v.replace(stamp, "latest", 1) for k, v in files.items()}
        for key, name in latest_files.items():
            target = os.path.join(out_dir, name)
            if key == "md":
                with open(target, "w") as f:
                    f.write(_markdown(results, latest_files))
            else:
                shutil.copyfile(paths[key], target)
            latest.append(target)
    return {"paths": paths, "latest": latest, "incomplete": meta["incomplete"]}


def _matplotlib_missing() -> bool:
    import importlib.util
    return importlib.util.find_spec("matplotlib") is None
