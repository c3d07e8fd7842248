#!/usr/bin/env bash
# scripts/gpu/trace_summary.py (the timeline summary of trace_decode.sh, which
# runs only on the GPU machine) on a made-up trace whose answer is known:
# 4 decode steps of embedding, 3 layers (q/k/v GEMV overlapping the kernel
# before by 1 us, attention, o, SwiGLU gate|up, down, 0.5 us apart), lm head,
# sampling. Each layer adds 7 + 10.5 + 8.5 + 26.5 + 17.5 us, a step 338.5 us.
set -u
cd "$(dirname "$0")/../.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir/trace.csv" <<'PY'
import csv, sys
rows, t = [], 0
def kernel(name, us, gap_us=0.5):
    global t
    t += int(gap_us * 1000)
    rows.append((t, int(us * 1000), name, "128x1x1", "512x1x1", 64, 73728, 0))
    t += int(us * 1000)
gemv = "void tandem::cuda::(anonymous namespace)::int4_gemv_v2_kernel<__half, __half, 1, true, 4, {}>(uint4 const*)"
for step in range(4):
    kernel("tandem::cuda::(anonymous namespace)::embedding_kernel(int const*)", 3)
    for layer in range(3):
        kernel(gemv.format("false"), 8, -1)
        kernel("void tandem::cuda::(anonymous namespace)::attention_decode_kernel<__half, 128>(AttnKernelParams, int)", 10)
        kernel(gemv.format("false"), 8)
        kernel(gemv.format("true"), 26)
        kernel(gemv.format("false"), 17)
    kernel("nvjet_sm90_hsh_256x8_64x6_2x1_v_bz_TNT", 97)
    kernel("tandem::cuda::(anonymous namespace)::sample_kernel(SampleParams)", 27)
with open(sys.argv[1], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["Start (ns)", "Duration (ns)", "Name", "grid", "block", "regs", "smem", "graph_node"])
    w.writerows(rows)
PY
python3 scripts/gpu/trace_summary.py "$dir/trace.csv" "$dir/summary.txt" > /dev/null || { echo "FAIL: trace_summary.py exited $?"; exit 1; }
failed=0
expect() {  # regex, what
  grep -Eq -- "$1" "$dir/summary.txt" || { echo "FAIL: no line matching '$1' ($2)"; failed=1; }
}
expect '^step: 18 kernels, wall 338\.5 us' "kernels and wall time of a step"
expect '^ +79\.5 +3 +26\.50  gemv gate_up$' "gate|up's share of the wall time"
expect '^ +21\.0 +3 +7\.00  gemv qkv$' "q/k/v overlapping the kernel before by 1 us"
expect '^ +52\.5 +3 +17\.50  gemv down$' "down's share"
expect '^ +31\.5 +3 +10\.50  attention$' "attention's share"
expect '^ +97\.5 +1 +97\.50  nvjet' "the lm head"
expect '^ +[0-9.]+ +[0-9.]+ +-1\.00  void int4_gemv_v2_kernel.*128x1x1 x 512x1x1, 64 regs, 72 KiB smem$' \
  "the layer listing with gaps and launch shapes"
# Fewer than three steps: said, not a crash.
head -n 20 "$dir/trace.csv" > "$dir/short.csv"
python3 scripts/gpu/trace_summary.py "$dir/short.csv" "$dir/short.txt" > /dev/null &&
  grep -q 'fewer than 3 steps' "$dir/short.txt" || { echo "FAIL: a short trace is not reported as such"; failed=1; }
[ $failed = 0 ] && echo "trace summary: as expected"
[ $failed = 0 ] || { echo "--- summary:"; cat "$dir/summary.txt"; }
exit $failed
