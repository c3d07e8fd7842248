#!/usr/bin/env bash
# deploy/tandem.service passes `systemd-analyze verify` with ExecStart pointing
# at the binary just built (so the check that the command exists is real), and
# without any warning about the unit (unknown keys are only warnings).
set -euo pipefail
tandem=$(readlink -f "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze not found (Debian package 'systemd', installed by scripts/setup.sh): skipped"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s#/usr/local/bin/tandem#$tandem#" "$root/deploy/tandem.service" > "$tmp/tandem.service"
grep -q "ExecStart=$tandem serve" "$tmp/tandem.service"
set +e
out=$(SYSTEMD_LOG_LEVEL=info systemd-analyze verify "$tmp/tandem.service" 2>&1)
rc=$?
set -e
echo "$out"
if [ $rc -ne 0 ]; then echo "FAIL: systemd-analyze verify exited $rc"; exit 1; fi
if grep -q "tandem.service" <<<"$out"; then echo "FAIL: systemd-analyze reported problems in the unit"; exit 1; fi
# The check must be able to fail: a missing binary is an error.
sed "s#/usr/local/bin/tandem#$tmp/missing/tandem#" "$root/deploy/tandem.service" > "$tmp/bad.service"
if systemd-analyze verify "$tmp/bad.service" >/dev/null 2>&1; then
  echo "FAIL: systemd-analyze accepted a unit whose binary does not exist"; exit 1
fi
echo "deploy/tandem.service: ok"
