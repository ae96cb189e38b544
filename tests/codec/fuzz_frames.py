"""atheris fuzzer for the frame buffer (run by hand, not collected by pytest).

    python tests/codec/fuzz_frames.py -atheris_runs=200000          # or -max_total_time=600

Each input picks server/client, a SETTINGS_MAX_FRAME_SIZE and a chunking, then runs both
twins and h2's ``FrameBuffer``: they must yield equal frames and raise the same class (see
``test_frames.expected_outcome``), keep under one maximum-size frame buffered, and agree with
``scan_frames``. Any difference raises AssertionError, which atheris reports with the input.
"""
from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

with atheris.instrument_imports():
    import h2.frame_buffer  # noqa: F401 - instrumented for coverage guidance
    import hyperframe.frame  # noqa: F401

    from kyoukai_h2fast.codec import _frames_py
from kyoukai_h2fast import _switch
from tests.codec.test_frames import PREFACE  # noqa: E402
from tests.codec.test_frames_fuzz import check_outcome  # noqa: E402

_COMPILED = _switch.compiled("frames")
IMPLEMENTATIONS = [_frames_py] + ([_COMPILED] if _COMPILED else [])
RUNS = 0


def test_one_input(raw: bytes) -> None:
    global RUNS
    RUNS += 1
    provider = atheris.FuzzedDataProvider(raw)
    server = provider.ConsumeBool()
    preface = provider.ConsumeBool()
    max_frame_size = provider.PickValueInList([0, 1, 8, 100, 16384])
    cuts = [provider.ConsumeIntInRange(0, 4096) for _ in range(provider.ConsumeIntInRange(0, 6))]
    data = (PREFACE if preface else b"") + provider.ConsumeBytes(provider.remaining_bytes())
    for impl in IMPLEMENTATIONS:
        check_outcome(impl, data, cuts, server, max_frame_size)


if __name__ == "__main__":
    print("implementations:", [m.__name__ for m in IMPLEMENTATIONS])
    atheris.Setup(sys.argv, test_one_input)
    try:
        atheris.Fuzz()
    finally:
        print("inputs run:", RUNS)
