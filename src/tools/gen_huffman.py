"""Generate ``src/kyoukai_h2fast/_huffman_table.pxi``: the HPACK Huffman code as C tables.

Owns: turning the static Huffman code of RFC 7541 Appendix B into the two tables the compiled
HPACK module uses, and checking the code on the way (257 symbols, a complete prefix code, EOS =
30 one-bits). The (code, bit length) pairs are read from ``hpack.huffman_constants``, which holds
Appendix B verbatim; only the derived tables are written.

Tables written (all ``static const``, in a verbatim C block of the .pxi):

* ``kh2_huff_code[257]`` / ``kh2_huff_len[257]``: the code (right-aligned) and its length in bits,
  for the encoder.
* ``kh2_huff_decode[256 * 16]``: a nibble state machine for the decoder. A state is an internal
  node of the code tree (0 = root); states are stored pre-multiplied by 16 so that
  ``entry = table[state16 | nibble]``. Bits of an entry:

      0-7    symbol emitted by this transition (valid when EMIT is set)
      8-15   next state (a node number); ``(entry >> 4) & 0xFF0`` is the next ``state16``
      16     EMIT: a symbol was completed inside these 4 bits (at most one, codes are >= 5 bits)
      17     FAIL: these 4 bits complete EOS (RFC 7541 §5.2: a decoding error)

* ``kh2_huff_accept[256]``: 1 when a node may end a string: its path from the root is at most
  7 bits, all ones (RFC 7541 §5.2 padding rule); the root accepts (no padding).

Run from the repository root: ``python src/tools/gen_huffman.py``. The output is committed.
"""
from __future__ import annotations

import os
import sys

from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

EOS = 256
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kyoukai_h2fast",
                   "_huffman_table.pxi")


def check_code(codes: list[int], lengths: list[int]) -> None:
    """Fail loudly unless this is RFC 7541 Appendix B's shape: 257 symbols, complete,
    prefix-free."""
    assert len(codes) == len(lengths) == 257
    assert codes[EOS] == (1 << 30) - 1 and lengths[EOS] == 30, "EOS must be 30 one-bits"
    assert min(lengths) == 5 and max(lengths) == 30
    # Kraft equality: sum 2^-len == 1 means the code is complete (every bit string decodes).
    assert sum(1 << (30 - n) for n in lengths) == 1 << 30, "code is not complete"
    seen = set()
    for code, n in zip(codes, lengths, strict=True):
        assert 0 <= code < (1 << n)
        seen.add((code, n))
    assert len(seen) == 257


def build_tree(codes: list[int], lengths: list[int]) -> tuple[list[list[int]], dict[int, str]]:
    """Binary tree: children[node] = [child0, child1]; a child >= 0 is a node, < 0 is ~symbol."""
    children: list[list[int | None]] = [[None, None]]
    paths = {0: ""}
    for sym, (code, n) in enumerate(zip(codes, lengths, strict=True)):
        node = 0
        for i in range(n - 1, -1, -1):
            bit = (code >> i) & 1
            if i == 0:
                assert children[node][bit] is None, "code is not prefix-free"
                children[node][bit] = ~sym
            else:
                nxt = children[node][bit]
                if nxt is None:
                    nxt = len(children)
                    children.append([None, None])
                    children[node][bit] = nxt
                    paths[nxt] = paths[node] + str(bit)
                assert nxt >= 0, "code is not prefix-free"
                node = nxt
    assert len(children) == 256, "a complete code of 257 symbols has 256 internal nodes"
    assert all(c is not None for pair in children for c in pair)
    return children, paths  # type: ignore[return-value]


def build_decode_table(children: list[list[int]]) -> list[int]:
    table = []
    for node in range(256):
        for nibble in range(16):
            state, emitted, fail = node, None, False
            for i in (3, 2, 1, 0):
                nxt = children[state][(nibble >> i) & 1]
                if nxt < 0:
                    sym = ~nxt
                    if sym == EOS:
                        fail = True
                        state = 0
                        break
                    assert emitted is None, "two symbols in one nibble"
                    emitted = sym
                    state = 0
                else:
                    state = nxt
            entry = (state << 8) | ((emitted or 0) & 0xFF)
            if emitted is not None:
                entry |= 1 << 16
            if fail:
                entry = 1 << 17
            table.append(entry)
    return table


def c_array(ctype: str, name: str, values: list[int], per_line: int, fmt: str) -> str:
    lines = [f"static const {ctype} {name}[{len(values)}] = {{"]
    for i in range(0, len(values), per_line):
        lines.append("    " + ", ".join(fmt.format(v) for v in values[i:i + per_line]) + ",")
    lines.append("};")
    return "\n".join(lines)


def main() -> int:
    codes, lengths = list(REQUEST_CODES), list(REQUEST_CODES_LENGTH)
    check_code(codes, lengths)
    children, paths = build_tree(codes, lengths)
    decode = build_decode_table(children)
    accept = [int(len(paths[n]) <= 7 and set(paths[n]) <= {"1"}) for n in range(256)]
    c_code = "\n".join([
        c_array("uint32_t", "kh2_huff_code", codes, 8, "0x{:08x}u"),
        c_array("uint8_t", "kh2_huff_len", lengths, 16, "{:2d}"),
        c_array("uint32_t", "kh2_huff_decode", decode, 8, "0x{:06x}u"),
        c_array("uint8_t", "kh2_huff_accept", accept, 32, "{}"),
    ])
    body = "\n".join("    " + line if line else "" for line in c_code.splitlines())
    text = ("# Generated by src/tools/gen_huffman.py from RFC 7541 Appendix B. "
            "Do not edit by hand.\n"
            "# HPACK Huffman code tables, included by _hpack_c.pyx. "
            "See src/tools/gen_huffman.py for the\n")
    text += f'''# layout of kh2_huff_decode (a nibble state machine).
from libc.stdint cimport uint8_t, uint32_t

cdef extern from *:
    """
{body}
    """
    const uint32_t kh2_huff_code[257]
    const uint8_t kh2_huff_len[257]
    const uint32_t kh2_huff_decode[4096]
    const uint8_t kh2_huff_accept[256]
'''
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {os.path.normpath(OUT)}: {len(decode)} decode entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
