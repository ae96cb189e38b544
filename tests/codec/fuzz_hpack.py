"""Long-running differential fuzzer for the HPACK decoders (atheris); run by hand, not by pytest.

    python tests/codec/fuzz_hpack.py -runs=500000 -rss_limit_mb=512 -max_len=512

Each input is split into a few control octets (table limits, raw/text) and up to two field
blocks, decoded in sequence by ``hpack.Decoder`` (the reference), the pure twin and the compiled
decoder; any difference in results, field classes or exception classes is a crash. Half of the
inputs are mutations of a valid block (so decoding gets past the first octets). The compiled
decoder's own memory is bounded by ``-rss_limit_mb``. Prints the number of inputs and outcomes.
"""
from __future__ import annotations

import collections
import os
import sys
import types

import atheris

with atheris.instrument_imports():
    import hpack

if "kyoukai_h2fast" not in sys.modules:   # import the twins without the server package
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "kyoukai_h2fast")
    package = types.ModuleType("kyoukai_h2fast")
    package.__path__ = [here]
    sys.modules["kyoukai_h2fast"] = package
from kyoukai_h2fast import _switch  # noqa: E402

PURE, COMPILED = _switch.pure("hpack"), _switch.compiled("hpack")
assert COMPILED is not None, "build the compiled module first"
_seed_encoder = hpack.Encoder()
SEEDS = [_seed_encoder.encode([(":method", "GET"), (":path", "/x"), ("user-agent", "fuzz/1"),
                               ("cookie", "a=" + "b" * 30), ("x-custom", "v" * i)])
         for i in range(4)]
counts: collections.Counter = collections.Counter()


def outcome(decoder, block: bytes, raw: bool):
    try:
        return "ok", [(type(x), x[0], x[1]) for x in decoder.decode(block, raw=raw)]
    except Exception as err:  # noqa: BLE001 - the class is the result
        return "error", type(err)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    allowed = fdp.ConsumeIntInRange(0, 8192)
    list_size = fdp.ConsumeIntInRange(0, 70000)
    raw = fdp.ConsumeBool()
    if fdp.ConsumeBool():
        base = bytearray(SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)])
        for _ in range(fdp.ConsumeIntInRange(1, 4)):
            at = fdp.ConsumeIntInRange(0, len(base))
            cut = fdp.ConsumeIntInRange(0, 3)
            base[at:at + cut] = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 3))
        blocks = [bytes(base), fdp.ConsumeBytes(fdp.remaining_bytes())]
    else:
        first = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, fdp.remaining_bytes()))
        blocks = [first, fdp.ConsumeBytes(fdp.remaining_bytes())]
    decoders = [hpack.Decoder(), PURE.Decoder(), COMPILED.Decoder()]
    for d in decoders:
        d.max_allowed_table_size = allowed
        d.max_header_list_size = list_size
    for block in blocks:
        results = [outcome(d, block, raw) for d in decoders]
        if not all(r == results[0] for r in results[1:]):
            raise AssertionError(f"decoders disagree on {block.hex()}: {results}")
        counts[results[0][0] if results[0][0] == "ok" else results[0][1].__name__] += 1
        if results[0][0] == "error":
            break
    counts["inputs"] += 1
    if counts["inputs"] % REPORT_EVERY == 0 or counts["inputs"] == RUNS:
        print(f"fuzz_hpack: {dict(counts)}", file=sys.stderr, flush=True)


RUNS = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("-runs=")), -1)
REPORT_EVERY = 100_000


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
