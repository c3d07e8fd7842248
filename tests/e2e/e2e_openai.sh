#!/usr/bin/env bash
# The official OpenAI node client against the test server (two echo models,
# API key from TANDEM_API_KEY). Also checks that every request body the test
# sends is in the fuzz corpus (tests/fuzz/corpus), so the corpus stays seeded
# from the e2e tests. Usage: e2e_openai.sh TEST_SERVER [TANDEM]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$here/lib.sh"
command -v node >/dev/null || { echo "node not found: skipped"; exit 77; }
need_node_modules "$here"
tmp=$(mktemp -d)
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$tmp"' EXIT
TANDEM_API_KEY=e2e-key start_server "$tmp/server.log" "$1" --model a=echo --model b=echo
mkdir "$tmp/bodies"
TANDEM_RECORD_BODIES="$tmp/bodies" node "$here/openai_e2e.mjs" "http://127.0.0.1:$PORT" e2e-key "$here/golden_echo.json"
stop_server
grep -q 'request id=cmpl-' "$tmp/server.log"
check_bodies_in_corpus "$tmp/bodies" "$root/tests/fuzz/corpus"
echo "e2e_openai: ok ($(ls "$tmp/bodies" | wc -l) request bodies, all in the fuzz corpus)"
