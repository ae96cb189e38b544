"""Run the pytest-benchmark microbenchmarks and write their ratios as a Markdown table.

    python bench/micro_summary.py                 # runs bench/test_bench_*.py (pinned to core 0)
    python bench/micro_summary.py --json FILE     # summarise an existing --benchmark-json file

Writes ``bench/results/micro-<stamp>.md`` / ``.json`` (medians and spreads; the raw samples
stay in the ignored ``bench/scratch/``) and ``micro-latest.*``. Every ratio is
reference median ÷ variant median from the same run (above 1: the variant is faster). The
reference is the library we replace: ``hpack`` for HPACK, hyperframe's parse loop for frames,
``h2``'s pure-Python validation for headers, the pure twin for the environ builder, and the
``websockets`` library's sans-IO core for the WebSocket codec and connection.
"""
from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")

#: (group prefix, reference variant, target speed-up of the compiled variant, what it means)
TARGETS = [
    ("decode", "hpack", 20.0, "HPACK decode vs hpack"),
    ("encode", "hpack", 10.0, "HPACK encode vs hpack"),
    ("parse", "reference", 20.0, "frame parsing vs hyperframe"),
    ("serialize", "reference", None, "frame serialization vs hyperframe"),
    ("environ", "pure", 5.0, "environ vs its pure twin"),
    ("validate", "h2", None, "header validation vs h2"),
    ("response_headers", "h2", None, "response headers vs h2"),
    ("ws ", "reference", None, "WebSocket codec and connection vs websockets"),
]
_KNOWN = ("compiled", "pure", "hpack", "h2", "reference")


def variant_of(bench: dict) -> str:
    name = bench["name"]
    if not name.startswith("test_"):
        return name  # the frame benchmarks name their runners
    params = bench.get("params") or {}
    if isinstance(params.get("impl"), str) and not params["impl"].startswith("UNSERIAL"):
        return params["impl"]
    for token in str(bench.get("param", "")).split("-"):
        if token in _KNOWN:
            return token
    return name


def summarise(data: dict) -> str:
    medians: dict[str, dict[str, float]] = collections.defaultdict(dict)
    for bench in data["benchmarks"]:
        medians[bench["group"]][variant_of(bench)] = bench["stats"]["median"]
    lines = [
        "| benchmark | reference | reference µs | compiled µs | compiled ÷ reference | "
        "pure twin ÷ reference | target |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for group, variants in medians.items():
        prefix, ref_name, target, _ = next(t for t in TARGETS if group.startswith(t[0]))
        ref = variants.get(ref_name)
        if ref is None:
            continue
        for variant, median in variants.items():
            if not variant.startswith("compiled"):
                continue
            suffix = variant[len("compiled"):]
            pure = variants.get("pure" + suffix)
            speedup = ref / median
            label = group + (f" ({suffix.lstrip('-')})" if suffix else "")
            met = "" if target is None else (
                f"≥ {target:g}×: {'met' if speedup >= target else 'NOT met'}")
            pure_cell = f"{ref / pure:.2f}×" if pure else "–"
            lines.append(f"| {label} | {ref_name} | {ref * 1e6:,.2f} | {median * 1e6:,.2f} | "
                         f"{speedup:.1f}× | {pure_cell} | {met} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="an existing pytest-benchmark JSON file to summarise")
    args = parser.parse_args()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    os.makedirs(RESULTS, exist_ok=True)
    scratch = os.path.join(HERE, "scratch")
    os.makedirs(scratch, exist_ok=True)
    json_path = args.json or os.path.join(scratch, f"micro-raw-{stamp}.json")
    command = [sys.executable, "-m", "pytest", os.path.join(HERE), "--benchmark-only", "-q",
               "-p", "no:cacheprovider", f"--benchmark-json={json_path}"]
    if not args.json:
        if shutil.which("taskset"):
            command = ["taskset", "-c", "0"] + command
        print("running:", " ".join(command), flush=True)
        if subprocess.run(command).returncode != 0:
            print("micro_summary: the benchmarks failed", file=sys.stderr)
            return 1
    with open(json_path) as f:
        data = json.load(f)
    machine = data.get("machine_info", {})
    header = (
        f"# Microbenchmarks — {stamp}\n\n"
        f"Command: `python bench/micro_summary.py` (pytest-benchmark, {len(data['benchmarks'])}"
        f" benchmarks, medians; pinned to core 0 with taskset when available).\n"
        f"Machine: {machine.get('cpu', {}).get('brand_raw', platform.processor())}, "
        f"Python {platform.python_version()}. Ratios are reference ÷ variant from this one "
        "run: above 1 the variant is faster.\n\n")
    report = header + summarise(data) + "\n"
    out = os.path.join(RESULTS, f"micro-{stamp}.md")
    for path in (out, os.path.join(RESULTS, "micro-latest.md")):
        with open(path, "w") as f:
            f.write(report)
    compact = {  # the figures without pytest-benchmark's raw samples (which run to 100s of MB)
        "stamp": stamp, "machine_info": machine, "commit_info": data.get("commit_info"),
        "benchmarks": [{"group": b["group"], "name": b["name"], "param": b.get("param"),
                        "variant": variant_of(b),
                        "stats": {k: b["stats"][k] for k in
                                  ("min", "max", "mean", "median", "stddev", "iqr", "rounds")}}
                       for b in data["benchmarks"]],
    }
    for path in (os.path.join(RESULTS, f"micro-{stamp}.json"),
                 os.path.join(RESULTS, "micro-latest.json")):
        with open(path, "w") as f:
            json.dump(compact, f, indent=1)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
