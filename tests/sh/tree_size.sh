#!/usr/bin/env bash
# The tracked tree travels to the GPU machine (64 MiB limit with the build); keep it under 40 MiB.
set -euo pipefail
limit=$((40 * 1024 * 1024))
if ! git rev-parse --git-dir >/dev/null 2>&1; then echo "not a git checkout: skipped"; exit 77; fi
total=$(git ls-files -z | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s+=$1} END {print s+0}')
echo "tracked tree: $total bytes (limit $limit)"
if [ "$total" -gt "$limit" ]; then
  echo "FAIL: tracked tree is over 40 MiB; largest files:"
  git ls-files -z | xargs -0 -r du -b -- | sort -n | tail -10
  exit 1
fi
