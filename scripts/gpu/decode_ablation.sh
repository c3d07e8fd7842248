#!/usr/bin/env bash
# Batch-1 decode with each decode-path option of the CUDA backend turned off in
# turn, in one GPU session, so every figure has a baseline from the same run:
#   OUT=DIR scripts/gpu/decode_ablation.sh PACKED_DIR [VARIANT ...]
# PACKED_DIR is a folder made by scripts/pack-device.sh (its `run` script).
# Variants (default: all of them, in this order):
#   default     every option on
#   nocombine   TANDEM_CUDA_FUSED_COMBINE=0 (the separate split-combine kernel)
#   noswiglu    TANDEM_CUDA_FUSED_SWIGLU=0 (SwiGLU as its own kernel)
#   noprefetch  TANDEM_CUDA_GEMV_PREFETCH=0 (one batch of weight loads in flight)
#   norope      TANDEM_CUDA_FUSED_ROPE=0 (RoPE + KV write as its own kernel)
#   nopdl       TANDEM_CUDA_PDL=0
#   splitsN     TANDEM_CUDA_DECODE_SPLITS=N (at most N key splits in decode attention)
#   session3    the four above off (session 3's kernels, with the greedy fast path)
# Each writes DIR/VARIANT/e2e_summary.jsonl; DIR/ablation.txt has one line each.
set -u
packed=${1:?usage: decode_ablation.sh PACKED_DIR [VARIANT ...]}
shift
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(default nocombine noswiglu noprefetch norope nopdl session3)
out=${OUT:-/tmp/ablation}
mkdir -p "$out"
for v in "${variants[@]}"; do
  case $v in
    default) env=() ;;
    nocombine) env=(TANDEM_CUDA_FUSED_COMBINE=0) ;;
    noswiglu) env=(TANDEM_CUDA_FUSED_SWIGLU=0) ;;
    noprefetch) env=(TANDEM_CUDA_GEMV_PREFETCH=0) ;;
    norope) env=(TANDEM_CUDA_FUSED_ROPE=0) ;;
    nopdl) env=(TANDEM_CUDA_PDL=0) ;;
    splits*) env=(TANDEM_CUDA_DECODE_SPLITS=${v#splits}) ;;
    session3) env=(TANDEM_CUDA_FUSED_COMBINE=0 TANDEM_CUDA_FUSED_SWIGLU=0 TANDEM_CUDA_GEMV_PREFETCH=0
                   TANDEM_CUDA_FUSED_ROPE=0) ;;
    *) echo "decode_ablation: unknown variant $v" >&2; exit 2 ;;
  esac
  env "${env[@]}" OUT="$out/$v" "$packed/run" e2e > "$out/$v.log" 2>&1
  python3 - "$out/$v/e2e_summary.jsonl" "$v" <<'PY' | tee -a "$out/ablation.txt"
import json, sys
try:
    rows = [json.loads(l) for l in open(sys.argv[1])]
except OSError:
    rows = []
if not rows:
    print(f"{sys.argv[2]:<11} FAILED (see {sys.argv[2]}.log)")
for r in rows:
    print(f"{sys.argv[2]:<11} {r['model']:<34} {r['decode_tok_s']:8.1f} tok/s  {100 * (r['roofline_fraction'] or 0):5.1f}% of "
          f"{r['roofline_tok_s']:.0f}  (copy {r['copy_gbs']} GB/s)")
PY
done
