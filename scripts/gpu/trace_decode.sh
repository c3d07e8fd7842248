#!/usr/bin/env bash
# Timeline of batch-1 decode steps as they really run (CUDA graphs replayed,
# PDL overlap, L2 state carried between kernels), from Nsight Systems with
# graph nodes traced one by one; profile_decode.sh times each kernel alone.
#   OUT=DIR scripts/gpu/trace_decode.sh TANDEM CONFIG.json [NAME]
# TANDEM: the tandem binary; CONFIG.json: a model config (random weights,
# --load-format dummy, prompt ids: no tokenizer). Extra environment (e.g.
# TANDEM_CUDA_ATTN_EARLY=0) passes through. Writes DIR/trace_NAME.txt: per
# kernel name the time of the last full decode step (calls, sum, mean), the
# step's wall time and the time no kernel ran. Says "not run" without nsys.
set -u
tandem=$1 cfg=$2 name=${3:-$(basename "$2" .json)}
out=${OUT:-/tmp/trace}
mkdir -p "$out"
nsys=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
if [ -z "$nsys" ]; then echo "trace_decode: not run (no nsys on this machine)" | tee "$out/trace_$name.txt"; exit 0; fi
ids=$(seq -s ' ' 100 611)
rep=/tmp/trace_$name
rm -f $rep.nsys-rep $rep.sqlite
timeout 300 "$nsys" profile -o $rep --trace cuda --cuda-graph-trace node --sample none --cpuctxsw none \
  "$tandem" generate --model "$cfg" --load-format dummy --device cuda --prompt-ids "$ids" --max-tokens 24 \
  --ignore-eos --format json > /tmp/trace_$name.log 2>&1 || { echo "nsys failed"; tail -5 /tmp/trace_$name.log; exit 0; }
"$nsys" stats --report cuda_gpu_trace --format csv --output /tmp/trace_$name $rep.nsys-rep > /dev/null 2>&1
csv=$(ls /tmp/trace_${name}_cuda_gpu_trace*.csv 2>/dev/null | head -1)
[ -n "$csv" ] || { echo "trace_decode: nsys stats wrote no csv"; exit 0; }
python3 - "$csv" "$out/trace_$name.txt" <<'PY'
import csv, sys, collections
rows = []
for r in csv.DictReader(open(sys.argv[1])):
    name = r.get("Name", "")
    if not r.get("Start (ns)") or "[CUDA mem" in name: continue
    rows.append((int(r["Start (ns)"]), int(r["Duration (ns)"]), name))
rows.sort()
starts = [i for i, (_, _, k) in enumerate(rows) if "embedding" in k]
if len(starts) < 3:
    open(sys.argv[2], "w").write("fewer than 3 steps in the trace\n"); sys.exit()
out = []
for a, b in ((starts[-3], starts[-2]), (starts[-2], starts[-1])):
    step = rows[a:b]
    t0 = step[0][0]; t1 = rows[b][0]
    busy, end = 0, t0
    for s, d, _ in step:  # union of kernel intervals
        if s + d > end:
            busy += s + d - max(s, end); end = s + d
    by = collections.OrderedDict()
    for s, d, k in step:
        short = k.replace("(anonymous namespace)::", "").replace("tandem::cuda::", "").split("(")[0][:90]
        c = by.setdefault(short, [0, 0]); c[0] += 1; c[1] += d
    out.append(f"step: {len(step)} kernels, wall {(t1 - t0) / 1e3:.1f} us (embedding to embedding), "
               f"some kernel running {busy / 1e3:.1f} us, none {(t1 - t0 - busy) / 1e3:.1f} us")
    for k, (n, d) in sorted(by.items(), key=lambda kv: -kv[1][1]):
        out.append(f"  {d / 1e3:9.1f} us  {n:4d} x {d / n / 1e3:7.2f} us  {k}")
# One middle layer as it ran: from the 10th attention kernel to the 11th.
step = rows[starts[-2]:starts[-1]]
att = [i for i, (_, _, k) in enumerate(step) if "attention" in k and "combine" not in k]
if len(att) > 11:
    a, b = att[10], att[11]
    # Back up to the q/k/v GEMV (and a prefetch) that precede the attention.
    while a > 0 and "attention" not in step[a - 1][2] and "gemv" not in step[a - 1][2]: a -= 1
    if a > 0 and "gemv" in step[a - 1][2]: a -= 1
    t0 = step[a][0]
    out.append("one layer (start, duration, gap after the previous kernel ended, us):")
    prev_end = None
    for s, d, k in step[a:b + 1]:
        short = k.replace("(anonymous namespace)::", "").replace("tandem::cuda::", "").split("(")[0][:80]
        gap = "" if prev_end is None else f"{(s - prev_end) / 1e3:+7.2f}"
        out.append(f"  {(s - t0) / 1e3:8.2f} {d / 1e3:7.2f} {gap:>8}  {short}")
        prev_end = s + d
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
