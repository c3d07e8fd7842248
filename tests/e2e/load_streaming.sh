#!/usr/bin/env bash
# Load test (loopback, bounded): 1,000 concurrent streaming clients against two
# echo models, then 1,000 more of which half disconnect mid-stream. See
# load_streaming.mjs for what is checked. CLIENTS overrides the count.
# Usage: load_streaming.sh TEST_SERVER [TANDEM]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
command -v node >/dev/null || { echo "node not found: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$tmp"' EXIT
# Room for every client: no request may be refused (429) in this test.
TANDEM_ECHO_STEP_US=${TANDEM_ECHO_STEP_US:-10000} start_server "$tmp/server.log" "$1" \
  --model a=echo --model b=echo --max-num-seqs 1024 --max-queue 2048 --log-format json
node "$here/load_streaming.mjs" "http://127.0.0.1:$PORT" "${CLIENTS:-1000}"
stop_server || { echo "FAIL: server exit code"; exit 1; }
echo "load_streaming: ok"
