#!/usr/bin/env python3
"""Instruction counts of each kernel in a scripts/gpu/sass.sh dump: total static
SASS instructions, the opcode mix, and the same for the innermost loop body
(the last backward branch's range), which is where a GEMV spends its issue slots.

  python3 scripts/gpu/sass_mix.py DUMP.txt [--top N]
"""
import collections
import re
import sys

INSTR = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)([^;]*);")
TARGET = re.compile(r"BRA\S*\s+(?:`\(\.L_x_\d+\)|0x([0-9a-f]+))")


def parse(lines):
    kernels, name, body = [], None, []
    for line in lines:
        if "Function : " in line:
            if name:
                kernels.append((name, body))
            name, body = line.split("Function : ", 1)[1].strip(), []
            continue
        m = INSTR.search(line)
        if m and name:
            body.append((int(m.group(1), 16), m.group(3), m.group(4), line))
    if name:
        kernels.append((name, body))
    return kernels


def loops(body):
    """(start, end) address ranges of backward branches with a numeric target."""
    out = []
    for addr, op, rest, line in body:
        if not op.startswith("BRA"):
            continue
        m = re.search(r"0x([0-9a-f]+)", rest)
        if m and int(m.group(1), 16) <= addr:
            out.append((int(m.group(1), 16), addr))
    return out


def main():
    path = sys.argv[1]
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 25
    for name, body in parse(open(path, errors="replace")):
        ops = collections.Counter(op.split(".")[0] for _, op, _, _ in body)
        print(f"== {name}\n   {len(body)} instructions")
        print("   " + ", ".join(f"{o} {c}" for o, c in ops.most_common(top)))
        for start, end in sorted(loops(body), key=lambda r: r[1] - r[0], reverse=True)[:6]:
            inner = [op.split(".")[0] for a, op, _, _ in body if start <= a <= end]
            mix = collections.Counter(inner)
            print(f"   loop 0x{start:x}-0x{end:x}: {len(inner)} instr: " +
                  ", ".join(f"{o} {c}" for o, c in mix.most_common(top)))


if __name__ == "__main__":
    main()
