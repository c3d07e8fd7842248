#!/usr/bin/env python3
"""Summary of a kernel trace CSV (nsys cuda_gpu_trace, or the project's CUPTI
tracer, bench/cuda/kernel_trace.cpp) of a batch-1 decode run:
    trace_summary.py TRACE.csv SUMMARY.txt
Decode steps run from one embedding kernel to the next. For the last two whole
steps: per kernel name the calls and time, and the step's wall time split over
the kernels (each gets the time from the latest end before it to its own end;
GEMVs named by their place in a layer: q/k/v, attention, o, gate|up, down);
then one middle layer kernel by kernel. Written by scripts/gpu/trace_decode.sh,
tested by tests/sh/trace_summary.sh."""
import csv, sys, collections
rows = []
for r in csv.DictReader(open(sys.argv[1])):
    name = r.get("Name", "")
    if not r.get("Start (ns)") or "[CUDA mem" in name: continue
    shape = f'{r["grid"]} x {r["block"]}, {r["regs"]} regs, {int(r["smem"]) // 1024} KiB smem' if r.get("regs") else ""
    rows.append((int(r["Start (ns)"]), int(r["Duration (ns)"]), name, shape))
rows.sort()
starts = [i for i, (_, _, k, _) in enumerate(rows) if "embedding" in k]
if len(starts) < 3:
    open(sys.argv[2], "w").write("fewer than 3 steps in the trace\n"); sys.exit()
out = []
for a, b in ((starts[-3], starts[-2]), (starts[-2], starts[-1])):
    step = rows[a:b]
    t0 = step[0][0]; t1 = rows[b][0]
    busy, end = 0, t0
    for s, d, _, _ in step:  # union of kernel intervals
        if s + d > end:
            busy += s + d - max(s, end); end = s + d
    by = collections.OrderedDict()
    for s, d, k, _ in step:
        short = k.replace("(anonymous namespace)::", "").replace("tandem::cuda::", "").split("(")[0][:90]
        c = by.setdefault(short, [0, 0]); c[0] += 1; c[1] += d
    out.append(f"step: {len(step)} kernels, wall {(t1 - t0) / 1e3:.1f} us (embedding to embedding), "
               f"some kernel running {busy / 1e3:.1f} us, none {(t1 - t0 - busy) / 1e3:.1f} us")
    for k, (n, d) in sorted(by.items(), key=lambda kv: -kv[1][1]):
        out.append(f"  {d / 1e3:9.1f} us  {n:4d} x {d / n / 1e3:7.2f} us  {k}")
    # The step's wall time split over the kernels: each gets the time from the
    # latest end before it to its own end (what it added to the chain). GEMVs
    # by their place in a layer: q/k/v, attention, o, gate|up, down.
    share = collections.OrderedDict()
    since, end = None, t0
    for s, d, k, _ in step:
        if "attention" in k:
            label, since = "attention" if "combine" not in k else "attention combine", 0
        elif "gemv" in k:
            label = "gemv " + (["o", "gate_up", "down", "qkv"][since] if since is not None and since < 4 else "qkv")
            if since is not None: since += 1
        else:
            label = k.replace("(anonymous namespace)::", "").replace("tandem::cuda::", "").split("(")[0][:60]
        c = share.setdefault(label, [0, 0]); c[0] += 1; c[1] += max(0, s + d - end)
        end = max(end, s + d)
    out.append("  wall time added by each (us, calls, mean):")
    for k, (n, d) in sorted(share.items(), key=lambda kv: -kv[1][1]):
        out.append(f"    {d / 1e3:9.1f} {n:4d} {d / n / 1e3:7.2f}  {k}")
# One middle layer as it ran: from its q/k/v GEMV to the next layer's attention.
step = rows[starts[-2]:starts[-1]]
att = [i for i, (_, _, k, _) in enumerate(step) if "attention" in k and "combine" not in k]
if len(att) >= 3:
    a, b = att[len(att) // 2], att[len(att) // 2 + 1]
    # Back up to the q/k/v GEMV (and a prefetch) that precede the attention.
    while a > 0 and "attention" not in step[a - 1][2] and "gemv" not in step[a - 1][2]: a -= 1
    if a > 0 and "gemv" in step[a - 1][2]: a -= 1
    t0 = step[a][0]
    out.append("one layer (start, duration, gap after the previous kernel ended, us):")
    prev_end = None
    for s, d, k, shape in step[a:b + 1]:
        short = k.replace("(anonymous namespace)::", "").replace("tandem::cuda::", "").split("(")[0][:80]
        gap = "" if prev_end is None else f"{(s - prev_end) / 1e3:+7.2f}"
        out.append(f"  {(s - t0) / 1e3:8.2f} {d / 1e3:7.2f} {gap:>8}  {short}  {shape}")
        prev_end = s + d
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print("\n".join(out))
