#!/usr/bin/env bash
# Per-kernel GPU time of one batch-1 decode step under Nsight Compute (each
# kernel timed alone, so launch gaps and PDL overlap are not in it: the sum
# against the step time from `generate` shows what the gaps and the host cost).
# Run from a folder holding tandem, lib/, CONFIG.json and tok/NAME/ (see
# serve_budget_h100.sh):  OUT=DIR profile_decode.sh CONFIG.json TOKNAME
# Writes DIR/profile_<config>.txt (kernels of the last decode step, grouped by name).
set -u
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=$PWD/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
cfg=$1; tok=$2; name=$(basename $cfg .json)
dir=/tmp/prof_$name; rm -rf $dir; mkdir -p $dir; cp $cfg $dir/config.json
for f in tokenizer.json tokenizer_config.json; do
  if [ -e tok/$tok/$f.xz ]; then python3 -c "import lzma,sys;open(sys.argv[2],'wb').write(lzma.open(sys.argv[1]).read())" tok/$tok/$f.xz $dir/$f
  else cp tok/$tok/$f $dir/$f; fi
done
ids=$(seq -s ' ' 100 611)
TANDEM_CUDA_GRAPHS=0 timeout 240 ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv --log-file /tmp/prof_$name.csv \
  ./tandem generate --model $dir --load-format dummy --prompt-ids "$ids" --max-tokens 3 --ignore-eos --device cuda \
  > /tmp/prof_$name.out 2>&1 || { echo "ncu failed"; tail -5 /tmp/prof_$name.out; }
python3 - /tmp/prof_$name.csv "$OUT/profile_$name.txt" <<'PY'
import csv, sys, collections
rows = []
with open(sys.argv[1]) as f:
    lines = [l for l in f if l.startswith('"')]
for r in csv.DictReader(lines):
    if r.get("Metric Name") != "gpu__time_duration.sum": continue
    v = float(r["Metric Value"].replace(",", ""))
    unit = r["Metric Unit"]
    us = v / 1000 if unit in ("nsecond", "ns") else (v * 1000 if unit in ("msecond", "ms") else v)
    rows.append((r["Kernel Name"], us))
# The last decode step starts at the last embedding launch.
start = max(i for i, (k, _) in enumerate(rows) if "embedding" in k)
step = rows[start:]
by = collections.OrderedDict()
for k, us in step:
    short = k.replace("(anonymous namespace)::", "").replace("tandem::cuda::", "").split("(")[0][:90]
    c = by.setdefault(short, [0, 0.0]); c[0] += 1; c[1] += us
total = sum(us for _, us in step)
out = [f"kernels in the last decode step: {len(step)}, sum of kernel times {total:.1f} us"]
for k, (n, us) in sorted(by.items(), key=lambda kv: -kv[1][1]):
    out.append(f"{us:9.1f} us {100*us/total:5.1f}%  {n:4d} x {us/n:7.2f} us  {k}")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
