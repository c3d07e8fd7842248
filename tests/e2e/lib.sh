# Helpers for the server's shell-level tests: start a server on a free port,
# wait until it is healthy, stop it. Source this file.
# start_server LOGFILE BINARY ARGS... -> sets SERVER_PID and PORT.
start_server() {
  local log=$1; shift
  "$@" --port 0 >"$log" 2>&1 &
  SERVER_PID=$!
  PORT=""
  for _ in $(seq 1 200); do
    PORT=$(sed -n 's/.*listening on http:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$log" | head -1)
    [ -n "$PORT" ] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "server exited early:"; cat "$log"; return 1; fi
    sleep 0.05
  done
  [ -n "$PORT" ] || { echo "server did not report its port"; cat "$log"; return 1; }
  for _ in $(seq 1 ${HEALTH_WAIT_STEPS:-1200}); do
    if curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "server exited:"; cat "$log"; return 1; fi
    sleep 0.05
  done
  echo "server not healthy:"; cat "$log"; return 1
}

# stop_server: SIGTERM, wait, and return the server's exit code.
stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  local rc=0
  wait "$SERVER_PID" || rc=$?
  return $rc
}

# need_node_modules: installs the pinned OpenAI client if setup.sh has not.
need_node_modules() {
  local dir=$1
  if [ ! -f "$dir/node_modules/openai/package.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --silent) || { echo "npm ci failed in $dir"; return 1; }
  fi
}

# Every request body a test recorded (TANDEM_RECORD_BODIES) must be in the fuzz
# corpus, so the corpus stays seeded from the e2e tests. TANDEM_UPDATE_CORPUS=1
# copies the missing ones in. Usage: check_bodies_in_corpus BODIES_DIR CORPUS_DIR
check_bodies_in_corpus() {
  local missing=0 f
  for f in "$1"/*; do
    if [ ! -f "$2/$(basename "$f")" ]; then
      missing=$((missing + 1))
      [ -n "${TANDEM_UPDATE_CORPUS:-}" ] && cp "$f" "$2/"
    fi
  done
  if [ $missing -gt 0 ] && [ -z "${TANDEM_UPDATE_CORPUS:-}" ]; then
    echo "FAIL: $missing request bodies of this test are not in $2;"
    echo "      rerun with TANDEM_UPDATE_CORPUS=1 and commit the new files"
    exit 1
  fi
}

# Skips the test (exit 77) unless both tiny trained models have FILE in models/.
# Usage: need_tiny_models ROOT FILE
need_tiny_models() {
  local m
  for m in tandem-tiny-general tandem-tiny-coder; do
    [ -f "$1/models/$m/$2" ] || { echo "models/$m missing: skipped"; exit 77; }
  done
}
