#!/usr/bin/env bash
# `tandem bench` is in the command table, documents its flags, and refuses bad
# input with a one-line error and a nonzero exit (no server needed).
set -euo pipefail
tandem=$1
"$tandem" --help | grep -q '^  bench '
help=$("$tandem" bench --help)
for flag in --base-url --model --mix --num-prompts --request-rate --burstiness --max-concurrency \
            --input-len --output-len --range-ratio --dataset --endpoint --tokenizer --seed --api-key \
            --slo --json --sweep-rates --chart --timeout; do
  grep -q -- "$flag" <<<"$help" || { echo "bench --help lacks $flag"; exit 1; }
done
if out=$("$tandem" bench --model m --burstiness 0 2>&1); then echo "bad --burstiness exited 0"; exit 1; fi
grep -q -- '--burstiness must be a positive number' <<<"$out" || { echo "unexpected: $out"; exit 1; }
[ "$(wc -l <<<"$out")" -eq 1 ] || { echo "error is not one line: $out"; exit 1; }
echo ok
