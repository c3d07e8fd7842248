#!/usr/bin/env bash
# Batch-1 decode under each setting of the CUDA backend's decode-path switches in
# turn, in one GPU session, so every figure has a baseline from the same run:
#   OUT=DIR scripts/gpu/decode_ablation.sh PACKED_DIR [VARIANT ...]
# PACKED_DIR is a folder made by scripts/pack-device.sh (its `run` script).
# Variants (default: all of them, in this order); each sets all five switches:
#   default     what CudaBackendOptions defaults to: RoPE + KV write fused into the
#               attention, the attention's early loads, the merge by the last
#               split block, the GEMV's scales loaded with its weights, no GEMV
#               half-ring, norms and SwiGLU fused into the GEMVs of inputs up to 4096 wide (session 11)
#   session4    the default of session 4: no early loads, the combine kernel
#   early       session4 + the early loads (TANDEM_CUDA_ATTN_EARLY)
#   combine     session4 + the merge by the last split block (TANDEM_CUDA_FUSED_COMBINE)
#   session3    none of them (the kernels of session 3, with the greedy fast path)
#   prefetch    default + the GEMV half-ring reload (TANDEM_CUDA_GEMV_PREFETCH=1)
#   ringN[sM][pK]  default + the GEMV's shared-memory ring of N rounds (TANDEM_CUDA_GEMV_RING=N),
#               only on layers of at most M MiB of packed weights (..._RING_MAX_MB=M),
#               at most K warps along K a block (TANDEM_CUDA_GEMV_MAX_PARTS=K)
#   partsK      default with at most K warps along K a GEMV block
#   norope      default without the fused RoPE (TANDEM_CUDA_FUSED_ROPE=0)
#   noswiglu    default without the fused SwiGLU (TANDEM_CUDA_FUSED_SWIGLU=0)
#   nopdl       default with TANDEM_CUDA_PDL=0
#   splitsN     default with TANDEM_CUDA_DECODE_SPLITS=N (at most N key splits)
#   nosa        default with TANDEM_CUDA_GEMV_SCALE_AHEAD=0 (a round's scales load after its weights)
#   sync        default with TANDEM_CUDA_UPLOAD_SYNC=1 (a stream sync after each host-to-device copy)
#   nooverlap   default with TANDEM_OVERLAP_STEPS=0 (the engine reads a step's tokens before queuing the next)
#   norms       default with TANDEM_CUDA_FUSED_NORMS=1 (RMSNorm, residual add and SwiGLU inside the decode GEMVs
#               at every width; the default fuses them for inputs up to 4096 wide)
#   nonorms     default with TANDEM_CUDA_FUSED_NORMS=0 (separate norm and SwiGLU kernels at every width)
#   nolean      default with TANDEM_CUDA_ATTN_LEAN_TAIL=0 (the attention reloads the new K/V row from L2, merges 8 splits a load batch)
# Settings combine with +, e.g. nooverlap+sync.
# Each writes DIR/VARIANT/e2e_summary.jsonl; DIR/ablation.txt has one line each.
set -u
packed=${1:?usage: decode_ablation.sh PACKED_DIR [VARIANT ...]}
shift
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(default session4 early combine session3 prefetch norope noswiglu nopdl)
out=${OUT:-/tmp/ablation}
mkdir -p "$out"
for v in "${variants[@]}"; do
  rope=1 swiglu=1 combine=1 prefetch=0 early=1 extra=()
  # A variant may combine settings: nooverlap+sync.
  IFS=+ read -r -a parts <<< "$v"
  for part in "${parts[@]}"; do
    case $part in
      default) ;;
      session4) combine=0 early=0 ;;
      early) combine=0 ;;
      combine) early=0 ;;
      session3) rope=0 swiglu=0 combine=0 early=0 ;;
      prefetch) prefetch=1 ;;
      norope) rope=0 ;;
      noswiglu) swiglu=0 ;;
      nopdl) extra+=(TANDEM_CUDA_PDL=0) ;;
      nosa) extra+=(TANDEM_CUDA_GEMV_SCALE_AHEAD=0) ;;
      sync) extra+=(TANDEM_CUDA_UPLOAD_SYNC=1) ;;
      nooverlap) extra+=(TANDEM_OVERLAP_STEPS=0) ;;
      norms) extra+=(TANDEM_CUDA_FUSED_NORMS=1) ;;
      nonorms) extra+=(TANDEM_CUDA_FUSED_NORMS=0) ;;
      nolean) extra+=(TANDEM_CUDA_ATTN_LEAN_TAIL=0) ;;
      splits*) extra+=(TANDEM_CUDA_DECODE_SPLITS=${part#splits}) ;;
      parts[1-8]) extra+=(TANDEM_CUDA_GEMV_MAX_PARTS=${part#parts}) ;;
      ring*)
        [[ $part =~ ^ring([0-9])(s([0-9]+))?(p([1-8]))?$ ]] || { echo "decode_ablation: bad variant $part" >&2; exit 2; }
        extra+=(TANDEM_CUDA_GEMV_RING=${BASH_REMATCH[1]})
        [ -n "${BASH_REMATCH[3]}" ] && extra+=(TANDEM_CUDA_GEMV_RING_MAX_MB=${BASH_REMATCH[3]})
        [ -n "${BASH_REMATCH[5]}" ] && extra+=(TANDEM_CUDA_GEMV_MAX_PARTS=${BASH_REMATCH[5]}) ;;
      *) echo "decode_ablation: unknown variant $part" >&2; exit 2 ;;
    esac
  done
  env=(TANDEM_CUDA_FUSED_ROPE=$rope TANDEM_CUDA_FUSED_SWIGLU=$swiglu TANDEM_CUDA_FUSED_COMBINE=$combine
       TANDEM_CUDA_GEMV_PREFETCH=$prefetch TANDEM_CUDA_ATTN_EARLY=$early "${extra[@]}")
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
