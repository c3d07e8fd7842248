#!/usr/bin/env bash
# Timeline of batch-1 decode steps as they really run (CUDA graphs replayed,
# PDL overlap, L2 state carried between kernels); profile_decode.sh times each
# kernel alone.
#   OUT=DIR scripts/gpu/trace_decode.sh TANDEM CONFIG.json [NAME]
# TANDEM: the tandem binary; CONFIG.json: a model config (random weights,
# --load-format dummy, prompt ids: no tokenizer). Extra environment (e.g.
# TANDEM_CUDA_ATTN_EARLY=0) passes through. Writes DIR/trace_NAME.txt: per
# kernel name the time of the last full decode step (calls, sum, mean), the
# step's wall time and the time no kernel ran, and one layer kernel by kernel.
# The trace comes from Nsight Systems (graph nodes traced one by one) where
# nsys exists, else from the project's CUPTI injection library
# (bench/cuda/kernel_trace.cpp; TRACER=path, default lib/ next to TANDEM, as
# scripts/pack-device.sh packs it), which also records each kernel's grid,
# block, registers and shared memory. Says "not run" with neither.
set -u
tandem=$1 cfg=$2 name=${3:-$(basename "$2" .json)}
out=${OUT:-/tmp/trace}
mkdir -p "$out"
nsys=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
tracer=${TRACER:-$(dirname "$tandem")/lib/libtandem_kernel_trace.so}
ids=$(seq -s ' ' 100 611)
gen=("$tandem" generate --model "$cfg" --load-format dummy --device cuda --prompt-ids "$ids" --max-tokens 24
     --ignore-eos --format json)
if [ -n "$nsys" ]; then
  rep=/tmp/trace_$name
  rm -f $rep.nsys-rep $rep.sqlite /tmp/trace_${name}_cuda_gpu_trace*.csv
  timeout 300 "$nsys" profile -o $rep --trace cuda --cuda-graph-trace node --sample none --cpuctxsw none \
    "${gen[@]}" > /tmp/trace_$name.log 2>&1 || { echo "nsys failed"; tail -5 /tmp/trace_$name.log; exit 0; }
  "$nsys" stats --report cuda_gpu_trace --format csv --output /tmp/trace_$name $rep.nsys-rep > /dev/null 2>&1
  csv=$(ls /tmp/trace_${name}_cuda_gpu_trace*.csv 2>/dev/null | head -1)
elif [ -f "$tracer" ]; then
  csv=$out/kernels_$name.csv
  rm -f "$csv"
  LD_LIBRARY_PATH=$(dirname "$tracer")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} CUDA_INJECTION64_PATH=$tracer \
    TANDEM_KERNEL_TRACE=$csv timeout 300 "${gen[@]}" > "$out/trace_$name.log" 2>&1 ||
    { echo "traced run failed"; tail -5 "$out/trace_$name.log"; exit 0; }
  grep -o '"decode_tokens_per_second": *[0-9.]*' "$out/trace_$name.log" | head -1  # traced: a little slower
else
  echo "trace_decode: not run (no nsys and no $tracer)" | tee "$out/trace_$name.txt"; exit 0
fi
[ -n "$csv" ] && [ -s "$csv" ] || { echo "trace_decode: no kernel trace written"; exit 0; }
python3 - "$csv" "$out/trace_$name.txt" <<'PY'
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
# One middle layer as it ran: from the 10th attention kernel to the 11th.
step = rows[starts[-2]:starts[-1]]
att = [i for i, (_, _, k, _) in enumerate(step) if "attention" in k and "combine" not in k]
if len(att) > 11:
    a, b = att[10], att[11]
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
PY
