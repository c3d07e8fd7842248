#!/usr/bin/env bash
# `tandem generate --prompt-ids-file`: every prompt through one engine at once,
# one line per prompt in input order, equal to each prompt generated alone (greedy).
set -euo pipefail
tandem=$1
model=models/tandem-tiny-general
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '1 415 1514 1676\n1 330 1179 302 272 1526\n1 415\n1 22557 28725 910 349 264 1369 302 272 2952 1587 28723\n' > "$work/prompts.txt"
"$tandem" generate --model "$model" --prompt-ids-file "$work/prompts.txt" --max-tokens 12 --temperature 0 \
  --ignore-eos --format ids --device cpu > "$work/batch.txt"
[ "$(wc -l < "$work/batch.txt")" -eq 4 ] || { echo "expected 4 output lines"; cat "$work/batch.txt"; exit 1; }
n=0
while IFS= read -r line; do
  n=$((n + 1))
  alone=$("$tandem" generate --model "$model" --prompt-ids "$line" --max-tokens 12 --temperature 0 \
    --ignore-eos --format ids --device cpu)
  batched=$(sed -n "${n}p" "$work/batch.txt")
  if [ "$alone" != "$batched" ]; then
    echo "prompt $n: batched '$batched' != alone '$alone'"; exit 1
  fi
done < "$work/prompts.txt"
# Bad input names the file and line.
printf '1 2\n1 x\n' > "$work/bad.txt"
if "$tandem" generate --model "$model" --prompt-ids-file "$work/bad.txt" 2> "$work/err.txt"; then
  echo "bad prompt file accepted"; exit 1
fi
grep -q "bad.txt:2" "$work/err.txt" || { echo "error does not name the line:"; cat "$work/err.txt"; exit 1; }
echo "batched generate equals each prompt alone"
