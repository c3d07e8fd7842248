#!/usr/bin/env bash
# Why one kernel of a batch-1 decode step is slow: Nsight Compute on one
# instance (graphs off, so ncu sees each launch), with warp stall reasons
# (e.g. "no instruction": code fetched cold) and per-SASS-instruction samples.
#   OUT=DIR scripts/gpu/ncu_kernel.sh TANDEM CONFIG.json KERNEL_REGEX [SKIP] [NAME]
# SKIP: launches of that kernel to pass first (default 40: into the second
# decode step for a per-layer kernel of a 32-layer model). Extra environment
# (TANDEM_CUDA_*) passes through. Writes DIR/ncu_NAME.{txt,stalls.txt,raw.csv,sass.csv.xz}
# and prints the stall reasons, largest first. Session 8 found the decode
# attention's fixed cost this way (docs/cuda-decode.md).
set -u
tandem=$1 cfg=$2 regex=$3 skip=${4:-40} name=${5:-$(echo "$3" | tr -c 'A-Za-z0-9_\n' '_')}
out=${OUT:-/tmp/ncu}
mkdir -p "$out"
ncu=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
[ -n "$ncu" ] || { echo "ncu_kernel: not run (no ncu)" | tee "$out/ncu_$name.txt"; exit 0; }
rep=/tmp/ncu_$name
rm -f $rep.ncu-rep
ids=$(seq -s ' ' 100 611)
TANDEM_CUDA_GRAPHS=0 timeout 240 "$ncu" -o $rep --kernel-name "regex:$regex" --launch-skip "$skip" --launch-count 1 \
  --section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats \
  --section SourceCounters --section MemoryWorkloadAnalysis \
  "$tandem" generate --model "$cfg" --load-format dummy --device cuda --prompt-ids "$ids" --max-tokens 3 \
  --ignore-eos > "$out/ncu_${name}_run.log" 2>&1 || { echo "ncu run failed"; tail -5 "$out/ncu_${name}_run.log"; exit 0; }
"$ncu" -i $rep.ncu-rep --page details > "$out/ncu_$name.txt" 2>&1
"$ncu" -i $rep.ncu-rep --page raw --csv > "$out/ncu_$name.raw.csv" 2>&1
"$ncu" -i $rep.ncu-rep --page source --csv --print-source sass 2>/dev/null | xz -9 > "$out/ncu_$name.sass.csv.xz"
python3 - "$out/ncu_$name.raw.csv" <<'PY' | tee "$out/ncu_$name.stalls.txt"
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
if len(rows) < 3:
    sys.exit("no metrics in " + sys.argv[1])
names, units, values = rows[0], rows[1], rows[2]
get = dict(zip(names, values))
print("kernel:", get.get("Kernel Name", "?")[:100])
print("duration:", get.get("gpu__time_duration.sum", "?"), units[names.index("gpu__time_duration.sum")] if "gpu__time_duration.sum" in names else "")
stalls = []
for n, v in get.items():
    if "issue_stalled" in n and n.endswith("_per_warp_active.pct"):
        try:
            stalls.append((float(v.replace(",", "")), n))
        except ValueError:
            pass
for v, n in sorted(stalls, reverse=True)[:12]:
    print(f"{v:8.2f}%  {n}")
PY
