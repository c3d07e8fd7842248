#!/usr/bin/env bash
# `tandem --version` names the version and the compiled backends; unknown commands fail.
set -euo pipefail
tandem=$1
out=$("$tandem" --version)
echo "$out"
grep -q '^tandem [0-9]' <<<"$out"
grep -q '^backends: cpu' <<<"$out"
if "$tandem" no-such-command 2>/dev/null; then echo "unknown command exited 0"; exit 1; fi
