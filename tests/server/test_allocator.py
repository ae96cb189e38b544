"""The serving process's C allocator (kyoukai_h2fast.server.allocator): request-sized buffers are
reused instead of being faulted in again for every request, and a user's own malloc settings
win."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kyoukai_h2fast.server import allocator as memory

pytestmark = pytest.mark.skipif(memory._mallopt is None, reason="needs glibc (mallopt)")

# A request's buffers, 200 times: four 256 KiB reads, the 1 MiB body joined from them, two
# 512 KiB output chunks, all freed at the end; prints the minor page faults per request.
# argv[1] == "tune": after tune_allocator().
_PROBE = """
import resource, sys
from kyoukai_h2fast.server import allocator as memory
tuned = memory.tune_allocator() if sys.argv[1] == "tune" else None
junk = [bytes(300_000) for _ in range(3)]   # the heap has a top chunk to grow from
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def request():
    reads = [bytearray(256 << 10) for _ in range(4)]
    body = bytearray(1 << 20)
    out = [bytearray(512 << 10) for _ in range(2)]
    for buffer in reads + [body] + out:
        buffer[::4096] = b"x" * len(range(0, len(buffer), 4096))   # touch every page
    del reads, body, out
for _ in range(20):
    request()
before = faults()
for _ in range(200):
    request()
print(tuned, (faults() - before) / 200)
"""


def _probe(mode: str, **env) -> tuple[str, float]:
    full_env = {k: v for k, v in os.environ.items()
                if k != "GLIBC_TUNABLES" and not k.startswith("MALLOC_")}
    full_env.update(env)
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], env=full_env, check=True,
                         capture_output=True, text=True, timeout=60).stdout.split()
    return out[0], float(out[1])


def test_tuned_allocator_reuses_request_sized_buffers():
    _, untuned = _probe("plain")
    tuned_flag, tuned = _probe("tune")
    assert tuned_flag == "True"
    assert untuned > 200          # glibc's default: each 1 MiB buffer faulted in again
    assert tuned < 5              # tuned: the heap keeps it


def test_a_users_malloc_settings_are_left_alone():
    flag, _ = _probe("tune", GLIBC_TUNABLES="glibc.malloc.trim_threshold=131072")
    assert flag == "False"
    flag, _ = _probe("tune", MALLOC_ARENA_MAX="2")
    assert flag == "False"
