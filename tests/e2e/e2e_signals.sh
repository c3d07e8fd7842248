#!/usr/bin/env bash
# SIGTERM drains: the listener closes, a running stream finishes with [DONE],
# a new request on an open keep-alive connection gets 503, and the process
# exits 0; past --drain-timeout it exits 0 anyway. Idle keep-alive connections
# are closed after --idle-timeout. Usage: e2e_signals.sh TEST_SERVER [TANDEM]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
tmp=$(mktemp -d)
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# --- drain lets a running stream finish ----------------------------------------
TANDEM_ECHO_STEP_US=5000 start_server "$tmp/s1.log" "$1" --model a=echo --idle-timeout 0.5
python3 - "$PORT" "$SERVER_PID" <<'PY'
import json, os, signal, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])

def post(sock, body):
    b = json.dumps(body).encode()
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(b)).encode() + b"\r\n\r\n" + b)

# A keep-alive connection that has served one request.
ka = socket.create_connection(("127.0.0.1", port))
post(ka, {"model": "a", "prompt": "x", "max_tokens": 1})
first = ka.recv(65536)
assert b"200 OK" in first and b"keep-alive" in first, first
# A long stream (200 tokens x 5 ms).
st = socket.create_connection(("127.0.0.1", port))
post(st, {"model": "a", "prompt": "drain", "max_tokens": 200, "ignore_eos": True, "stream": True, "temperature": 0})
data = st.recv(65536)
assert b"200 OK" in data, data
os.kill(pid, signal.SIGTERM)
time.sleep(0.2)
# The listener is closed: new connections are refused.
try:
    socket.create_connection(("127.0.0.1", port), timeout=1).close()
    raise SystemExit("FAIL: connect succeeded while draining")
except ConnectionRefusedError:
    pass
# The open keep-alive connection gets 503 and is closed.
post(ka, {"model": "a", "prompt": "x", "max_tokens": 1})
resp = ka.recv(65536)
assert resp.startswith(b"HTTP/1.1 503") and b"Connection: close" in resp, resp
# The running stream completes.
st.settimeout(10)
while not data.endswith(b"0\r\n\r\n"):
    more = st.recv(65536)
    if not more:
        break
    data += more
assert b"data: [DONE]" in data, data[-200:]
text = "".join(json.loads(l[6:])["choices"][0]["text"] for l in data.decode().split("\n")
               if l.startswith("data: {"))
assert len(text) == 200, len(text)
print("drain: stream finished, 503 while draining, listener closed")
PY
rc=0; wait "$SERVER_PID" || rc=$?
[ $rc = 0 ] || fail "exit code $rc after drain"
grep -q 'drained; exiting' "$tmp/s1.log" || fail "no drain log line"

# --- drain timeout ----------------------------------------------------------------
TANDEM_ECHO_STEP_US=5000 start_server "$tmp/s2.log" "$1" --model a=echo --drain-timeout 0.3
curl -sN "http://127.0.0.1:$PORT/v1/completions" \
  -d '{"model":"a","prompt":"x","max_tokens":2000,"ignore_eos":true,"stream":true}' > "$tmp/cut" &
curl_pid=$!
sleep 0.3
t0=$(date +%s%N)
rc=0; stop_server || rc=$?
elapsed_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
wait $curl_pid || true
[ $rc = 0 ] || fail "exit code $rc after drain timeout"
[ $elapsed_ms -lt 3000 ] || fail "drain timeout took ${elapsed_ms} ms"
grep -q 'drain timeout: closing 1 unfinished' "$tmp/s2.log" || fail "no drain-timeout log line"
grep -q 'data: \[DONE\]' "$tmp/cut" && fail "a cut stream must not end with [DONE]"

# --- idle keep-alive timeout ----------------------------------------------------------
start_server "$tmp/s3.log" "$1" --model a=echo --idle-timeout 0.3
python3 - "$PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
assert b"200 OK" in s.recv(65536)
time.sleep(0.8)
s.settimeout(2)
assert s.recv(100) == b"", "idle connection was not closed"
# A slow client that never finishes its headers is cut off too.
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
time.sleep(0.8)
s.settimeout(2)
assert s.recv(100) == b"", "half-sent request was not timed out"
print("idle timeout ok")
PY
stop_server || fail "exit code after idle test"
echo "e2e_signals: ok"
