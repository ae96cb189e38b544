"""Benchmarks: WSGI environ construction per request, compiled vs its pure twin.

Run: ``python -m pytest bench/test_bench_environ.py --benchmark-only``. Each group builds the
environ of one workload (see bench/test_bench_headers.py) from the per-connection base, the
way the server does once per request. Target: compiled >= 5x the pure twin.
"""
from __future__ import annotations

import io
import sys

import pytest

from kyoukai_h2fast import _switch
from kyoukai_h2fast.wsgi.environ import make_base_environ
from test_bench_headers import WORKLOADS

BASE = make_base_environ(url_scheme="https", server_addr=("127.0.0.1", 8443),
                         peer_addr=("127.0.0.1", 51234), multithread=True, errors=sys.stderr)


@pytest.mark.parametrize("impl", ["compiled", "pure"])
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_build_environ(benchmark, workload, impl):
    benchmark.group = f"environ {workload}"
    module = _switch.compiled("environ") if impl == "compiled" else _switch.pure("environ")
    if module is None:
        pytest.fail("kyoukai_h2fast._environ_c is not built")
    block = WORKLOADS[workload]
    body = io.BytesIO()
    env = module.build_environ(BASE, block, body)
    assert env["wsgi.input"] is body and env["REQUEST_METHOD"] in ("GET", "POST")
    benchmark(module.build_environ, BASE, block, body)
