#!/usr/bin/env bash
# The GPU-machine scripts cannot run here (no GPU); at least every one must
# parse, so a session's one device call does not die on a typo.
set -u
cd "$(dirname "$0")/../.."
failed=0
for f in scripts/*.sh scripts/gpu-check scripts/gpu/*.sh; do
  if ! bash -n "$f" 2> /tmp/gpu_scripts_syntax.err; then
    echo "FAIL: $f does not parse: $(cat /tmp/gpu_scripts_syntax.err)"
    failed=1
  fi
done
[ $failed = 0 ] && echo "gpu scripts: all parse"
exit $failed
