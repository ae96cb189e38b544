"""``bench/run.py``'s report: a failed or partial run never replaces the committed
``bench/results/latest.*``; missing charts are said, never hidden behind older ones; the
kyoukai_h2fast variants are not hard-wired to a loop that may be missing.

Drives ``bench/report.py`` (``write_report``) and ``bench/peers.py`` (``kyoukai_loop``,
``all_servers``) directly, on results shaped as ``run.py`` builds them.
"""
from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "bench")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", os.path.join(BENCH,
                                                                               f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


report = _load("report")
peers = _load("peers")

STAMP = "20990101T000000Z"
PNG = b"\x89PNG\r\n\x1a\n fake chart"


def _stats(rps: float) -> dict:
    values = {"rps": rps, "p50_ms": 1.0, "p99_ms": 5.0, "mb_per_s": 1.0, "cpu_s_per_10k": 0.5,
              "peak_rss_mib": 40.0}
    return {k: {"median": v, "min": v, "max": v, "n": 3} for k, v in values.items()}


@pytest.fixture
def results() -> dict:
    """A complete --quick-like run: two servers, two workloads, every cell ok."""
    build = {"ok": True, "extensions": "compiled", "package_dir": "/x", "requested": "compiled"}
    return {
        "meta": {"timestamp": STAMP, "command": "python bench/run.py --quick", "quick": True,
                 "repeats": 3, "duration_s": 1.5, "warmup_s": 0.5, "pinning": "taskset",
                 "machine": {"cpu_model": "cpu", "cpus": 2, "memory_gib": 1, "kernel": "k",
                             "python": "3.11", "loadavg_before": "0"},
                 "versions": {"h2load": "1"}, "main_workload": "get-c10-m10",
                 "kyoukai_builds": {"compiled": build, "pure": {**build, "requested": "pure",
                                                                "extensions": "pure"}},
                 "kyoukai_loop": "uvloop", "loop_note": "", "subset": False,
                 "wall_seconds": 100.0, "loadavg_after": "0"},
        "workloads": {"get-c10-m10": {"label": "GET /"}, "tls-get-c10-m10": {"label": "TLS"}},
        "servers": {
            "kyoukai-compiled-wsgi-inline": {"label": "kyoukai inline", "family": "kyoukai_h2fast",
                                             "interface": "WSGI", "build": "compiled",
                                             "loop": "uvloop", "planned_loop": "uvloop",
                                             "notes": ""},
            "gunicorn": {"label": "gunicorn", "family": "peer", "interface": "WSGI",
                         "build": "", "loop": "", "planned_loop": "", "notes": ""},
        },
        "cells": {
            "kyoukai-compiled-wsgi-inline": {"get-c10-m10": {"status": "ok",
                                                             "stats": _stats(20000)},
                                             "tls-get-c10-m10": {"status": "ok",
                                                                 "stats": _stats(15000)}},
            "gunicorn": {"get-c10-m10": {"status": "ok", "stats": _stats(2000)},
                         "tls-get-c10-m10": {"status": "unsupported",
                                             "detail": "no TLS with ALPN h2"}},
        },
        "ratios": {"get-c10-m10": {"kyoukai-compiled-wsgi-inline": {"gunicorn": {"rps": 10.0}}},
                   "tls-get-c10-m10": {}},
        "runs": [],
    }


def _draw(results, rps_path, latency_path) -> bool:
    for path in (rps_path, latency_path):
        with open(path, "wb") as f:
            f.write(PNG)
    return True


def _no_matplotlib(results, rps_path, latency_path) -> bool:
    return False  # what report._charts returns when matplotlib cannot be imported


@pytest.fixture
def committed(tmp_path) -> dict:
    """A results directory holding a committed latest.* set; returns {name: bytes}."""
    files = {"latest.json": b'{"committed": true}', "latest.md": b"# committed report\n",
             "latest-rps.png": b"committed rps chart", "latest-latency.png": b"committed lat"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return files


def _latest_now(directory) -> dict:
    return {name: (directory / name).read_bytes() for name in
            ("latest.json", "latest.md", "latest-rps.png", "latest-latency.png")}


def test_complete_run_replaces_latest_with_its_own_files(tmp_path, committed, results):
    written = report.write_report(results, str(tmp_path), STAMP, draw=_draw)
    assert written["incomplete"] == [] and results["meta"]["exit_code"] == 0
    now = _latest_now(tmp_path)
    assert now["latest-rps.png"] == PNG and now["latest-latency.png"] == PNG
    assert json.loads(now["latest.json"])["meta"]["latest_updated"] is True
    md = now["latest.md"].decode()
    assert "![req/s](latest-rps.png)" in md and "Partial run" not in md
    assert (tmp_path / f"{STAMP}.md").read_text().count(f"![req/s]({STAMP}-rps.png)") == 1


@pytest.mark.parametrize("breakage", [
    "kyoukai-failed", "kyoukai-not-started", "peer-not-installed", "peer-errors", "loop-fallback",
    "build-mismatch", "subset"])
def test_failed_or_partial_run_never_replaces_latest(tmp_path, committed, results, breakage):
    cells, meta = results["cells"], results["meta"]
    kyoukai = "kyoukai-compiled-wsgi-inline"
    if breakage == "kyoukai-failed":
        cells[kyoukai]["get-c10-m10"] = {"status": "failed", "detail": "warm-up: h2load: "
                                         "0 of 200 requests succeeded"}
    elif breakage == "kyoukai-not-started":
        cells[kyoukai] = {w: {"status": "did not start", "detail": "--loop uvloop: uvloop is "
                              "not installed"} for w in cells[kyoukai]}
    elif breakage == "peer-not-installed":
        cells["gunicorn"]["get-c10-m10"] = {"status": "not installed", "detail": "pip failed"}
    elif breakage == "peer-errors":
        cells["gunicorn"]["get-c10-m10"]["status"] = "errors"
    elif breakage == "loop-fallback":
        results["servers"][kyoukai]["loop"] = "asyncio"
        meta["loop_note"] = "uvloop is not installed"
    elif breakage == "build-mismatch":
        meta["kyoukai_builds"]["compiled"].update(ok=False, extensions="pure")
    elif breakage == "subset":
        meta["subset"] = True
    written = report.write_report(results, str(tmp_path), STAMP, draw=_draw)
    assert _latest_now(tmp_path) == committed  # byte for byte
    assert written["latest"] == [] and written["incomplete"]
    assert results["meta"]["exit_code"] == 1
    # the run's own report is written, says it is partial and why, first thing
    md = (tmp_path / f"{STAMP}.md").read_text()
    assert md.splitlines()[2].startswith("**Partial run: this report did not replace")
    for reason in written["incomplete"]:
        assert f"* {reason}" in md
    saved = json.loads((tmp_path / f"{STAMP}.json").read_text())
    assert saved["meta"]["latest_updated"] is False
    assert saved["meta"]["incomplete"] == written["incomplete"]


def test_without_matplotlib_the_report_says_no_chart_and_keeps_latest(
        tmp_path, committed, results, monkeypatch):
    monkeypatch.setattr(report, "_matplotlib_missing", lambda: True)
    written = report.write_report(results, str(tmp_path), STAMP, draw=_no_matplotlib)
    assert _latest_now(tmp_path) == committed  # no stale latest-*.png next to new numbers
    assert not (tmp_path / f"{STAMP}-rps.png").exists()
    md = (tmp_path / f"{STAMP}.md").read_text()
    assert "![" not in md and "png" not in md
    assert "**No chart: none was drawn for this run** (matplotlib is not installed" in md
    assert any(r.startswith("no charts: matplotlib is not installed")
               for r in written["incomplete"])
    assert results["meta"]["charts"] is False


def test_default_chart_drawer_without_matplotlib_is_reported(tmp_path, results, monkeypatch):
    """The real drawer: without matplotlib importable it draws nothing and says why."""
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    monkeypatch.setattr(report, "_matplotlib_missing", lambda: True)
    results_copy = copy.deepcopy(results)
    report.write_report(results_copy, str(tmp_path), STAMP)
    assert results_copy["meta"]["charts"] is False
    assert "No chart" in (tmp_path / f"{STAMP}.md").read_text()
    assert not (tmp_path / "latest.md").exists()


# ---- the loop of the kyoukai_h2fast variants ----------------------------------------------------

def _hide_uvloop(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(peers.importlib.util, "find_spec",
                        lambda name, *a: None if name == "uvloop" else real(name, *a))


def test_missing_uvloop_falls_back_to_asyncio_or_stops_when_uvloop_is_required(monkeypatch):
    assert peers.kyoukai_loop("auto") == ("uvloop", "")  # a dependency: installed here
    _hide_uvloop(monkeypatch)
    loop, note = peers.kyoukai_loop("auto")
    assert loop == "asyncio" and "uvloop is not installed" in note
    loop, note = peers.kyoukai_loop("uvloop")
    assert loop is None and "pip install uvloop" in note
    assert peers.kyoukai_loop("asyncio")[0] == "asyncio"


def test_kyoukai_variants_run_on_the_loop_they_are_given():
    site = {"htdocs": "", "mime_types": ""}
    for loop in ("uvloop", "asyncio"):
        specs = {s.id: s for s in peers.all_servers("/venv", site, "", loop)}
        for sid in ("kyoukai-compiled-async", "kyoukai-compiled-wsgi-inline",
                    "kyoukai-pure-wsgi-inline"):
            argv = specs[sid].argv(4444, None)
            assert argv[argv.index("--loop") + 1] == loop
            assert (specs[sid].loop, specs[sid].planned_loop) == (loop, "uvloop")
        argv = specs["kyoukai-compiled-async-asyncio"].argv(4444, None)
        assert argv[argv.index("--loop") + 1] == "asyncio"


# ---- what a fresh install brings -----------------------------------------------------------------

def test_uvloop_is_a_default_dependency_on_cpython_outside_windows():
    """``bench/run.py`` and ``--loop auto`` expect uvloop after the README's ``pip install .``;
    the ``[uvloop]`` extra stays so old install commands still work."""
    import re

    root = os.path.dirname(BENCH)
    with open(os.path.join(root, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    requirement = ("uvloop>=0.17; sys_platform != 'win32' and "
                   "platform_python_implementation == 'CPython'")
    dependencies = re.search(r"^dependencies = \[(.*?)^\]", text, re.M | re.S).group(1)
    assert f'"{requirement}"' in dependencies
    extras = re.search(r"^\[project\.optional-dependencies\](.*?)^\[", text, re.M | re.S).group(1)
    assert re.search(r"^uvloop = \[", extras, re.M)


# ---- the throughput chart says what it shows (issue 19.16) -----------------------------------

@pytest.fixture
def run_module():
    """``bench/run.py`` as a module; its bare-name imports (``apps``, ``measure``, ``peers``,
    ``report``) and its ``sys.path`` entry are undone afterwards (``tests/apps.py`` is another
    ``apps``)."""
    names = ("apps", "measure", "peers", "report")
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    path = sys.path[:]
    try:
        yield _load("run")
    finally:
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
        sys.path[:] = path


class _Recorder:
    """Stands in for matplotlib: records what each chart panel was given."""

    def __init__(self):
        self.panels = []

    def modules(self) -> dict:
        import types

        recorder = self

        class Axes:
            def __init__(self):
                self.calls = {}
                recorder.panels.append(self.calls)

            def __getattr__(self, name):
                return lambda *args, **kwargs: self.calls.setdefault(name, []).append(args)

            @property
            def flat(self):
                return [self]

        class Grid(list):
            @property
            def flat(self):
                return [ax for row in self for ax in row]

        class Figure:
            def __getattr__(self, name):
                return lambda *args, **kwargs: None

        def subplots(rows, cols, **kwargs):
            return Figure(), Grid([[Axes() for _ in range(cols)] for _ in range(rows)])

        matplotlib = types.ModuleType("matplotlib")
        matplotlib.use = lambda backend: None
        pyplot = types.ModuleType("matplotlib.pyplot")
        pyplot.subplots = subplots
        pyplot.close = lambda fig: None
        patches = types.ModuleType("matplotlib.patches")
        patches.Patch = lambda **kwargs: kwargs
        matplotlib.pyplot, matplotlib.patches = pyplot, patches
        return {"matplotlib": matplotlib, "matplotlib.pyplot": pyplot,
                "matplotlib.patches": patches}


def test_the_64_mib_panel_charts_mb_per_s_as_its_title_says(run_module, results, tmp_path,
                                                            monkeypatch):
    """A workload titled "(MB/s)" is charted in body MB/s (its panel showed requests/s under
    that title); the others in requests/s."""
    workloads = {wid: {**dataclasses.asdict(wl), "label": wl.label}
                 for wid, wl in run_module.WORKLOADS.items()
                 if wid in ("get-c10-m10", "post-64mib-c1")}
    results["workloads"] = workloads
    for per in results["cells"].values():
        stats = _stats(1.5)
        stats["mb_per_s"] = {"median": 612.5, "min": 600.0, "max": 620.0, "n": 3}
        per["post-64mib-c1"] = {"status": "ok", "stats": stats}
        per["get-c10-m10"] = {"status": "ok", "stats": _stats(20000)}
    recorder = _Recorder()
    for name, module in recorder.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    assert report._charts(results, str(tmp_path / "rps.png"), str(tmp_path / "lat.png"))
    throughput = recorder.panels[:len(workloads)]
    by_title = {panel["set_title"][0][0]: panel for panel in throughput}
    for wid, workload in workloads.items():
        panel = by_title[f"{wid}: {workload['label']}"]
        (xlabel,) = panel["set_xlabel"][0]
        (_, values), = [call[:2] for call in panel["barh"]]
        if "(MB/s)" in workload["label"]:
            assert xlabel.startswith("body MB/s") and list(values) == [612.5, 612.5]
        else:
            assert xlabel.startswith("requests/s") and list(values) == [20000, 20000]


def test_run_says_before_measuring_that_without_matplotlib_it_will_be_partial(
        run_module, tmp_path, monkeypatch, capsys):
    """``pip install -e '.[test]'`` has no matplotlib: ``run.py --quick`` says at once that its
    run will be partial (no charts, exit 1), not only after minutes of measuring."""

    class Measuring(Exception):
        pass

    def peers_venv(*args, **kwargs):
        raise Measuring  # what comes first once the run starts
    monkeypatch.setattr(run_module.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(run_module.report, "_matplotlib_missing", lambda: True)
    monkeypatch.setattr(run_module.peers, "ensure_peer_venv", peers_venv)
    with pytest.raises(Measuring):
        run_module.main(["--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert ("WARNING: no charts: matplotlib is not installed (pip install matplotlib, or pip "
            "install -e '.[bench]'). This run will be partial: it will not replace latest.* and "
            "will exit 1.") in out, out
    with open(os.path.join(BENCH, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert "`pip install -e '.[test]'`" not in readme
    assert "pip install -e '.[test,bench]'" in readme
