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
