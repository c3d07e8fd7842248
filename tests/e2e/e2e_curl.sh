#!/usr/bin/env bash
# Raw HTTP with curl against the test server: SSE framing byte for byte,
# keep-alive reuse, /tokenize and /detokenize, 413, /health, JSON logs, and
# /metrics through `promtool check metrics`. Usage: e2e_curl.sh TEST_SERVER [TANDEM]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
tmp=$(mktemp -d)
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

start_server "$tmp/server.log" "$1" --model a=echo --model b=echo --log-format json --max-body 64KiB
base="http://127.0.0.1:$PORT"

# --- SSE framing -------------------------------------------------------------
curl -sN -D "$tmp/h" -o "$tmp/sse" "$base/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model":"a","prompt":"abc","max_tokens":3,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}'
grep -qi '^content-type: text/event-stream' "$tmp/h" || fail "SSE content type"
grep -qi '^transfer-encoding: chunked' "$tmp/h" || fail "SSE not chunked"
python3 - "$tmp/sse" <<'PY'
import json, sys
raw = open(sys.argv[1], "rb").read().decode()
assert raw.endswith("data: [DONE]\n\n"), repr(raw[-40:])
events = raw.split("\n\n")
assert events[-1] == "", "stream must end with a blank line"
events = events[:-1]
for e in events:
    assert e.startswith("data: ") and "\n" not in e, f"bad event framing: {e!r}"
payloads = [json.loads(e[6:]) for e in events[:-1]]
text = "".join(p["choices"][0]["text"] for p in payloads if p["choices"])
assert text == "abc", text
assert payloads[-1]["choices"] == [] and payloads[-1]["usage"]["completion_tokens"] == 3, payloads[-1]
assert all(p["usage"] is None for p in payloads[:-1])
assert payloads[-2]["choices"][0]["finish_reason"] == "length"
print(f"SSE framing ok: {len(events)} events")
PY

# Chat stream: role first, [DONE] last, no usage chunk unless asked.
curl -sN "$base/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model":"b","messages":[{"role":"user","content":"Hi"}],"max_tokens":2,"temperature":0,"stream":true}' > "$tmp/chat"
python3 - "$tmp/chat" <<'PY'
import json, sys
events = open(sys.argv[1]).read().split("\n\n")[:-1]
assert events[-1] == "data: [DONE]"
p = [json.loads(e[6:]) for e in events[:-1]]
assert p[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
assert "usage" not in p[-1]
assert "".join(c["choices"][0]["delta"].get("content", "") for c in p) == "us"
print("chat SSE ok")
PY

# An error during a stream arrives as an error event, then [DONE].
curl -sN "$base/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model":"a","prompt":"__fail_request__","stream":true}' > "$tmp/err"
grep -q '^data: {"error":' "$tmp/err" || fail "no error event in a failed stream: $(cat "$tmp/err")"
tail -c 14 "$tmp/err" | grep -q 'data: \[DONE\]' || fail "failed stream not ended by [DONE]"

# --- keep-alive: two requests, one connection ---------------------------------
curl -sv "$base/health" "$base/v1/models" -o /dev/null -o /dev/null 2> "$tmp/v"
grep -q 'Re-using existing connection' "$tmp/v" || fail "keep-alive connection not reused"

# --- tokenize / detokenize -----------------------------------------------------
tok=$(curl -sf "$base/tokenize" -d '{"model":"a","prompt":"hi"}')
[ "$tok" = '{"count":3,"max_model_len":2048,"tokens":[256,104,105]}' ] || fail "tokenize: $tok"
tok=$(curl -sf "$base/tokenize" -d '{"model":"a","messages":[{"role":"user","content":"x"}],"add_generation_prompt":false}')
[ "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["count"])' "$tok")" = 9 ] || fail "chat tokenize: $tok"
detok=$(curl -sf "$base/detokenize" -d '{"model":"b","tokens":[256,104,105]}')
[ "$detok" = '{"prompt":"<s>hi"}' ] || fail "detokenize: $detok"

# --- limits and status codes -----------------------------------------------------
head -c 70000 /dev/zero | tr '\0' 'x' > "$tmp/big"
code=$(curl -s -o "$tmp/413" -w '%{http_code}' "$base/v1/completions" --data-binary @"$tmp/big")
[ "$code" = 413 ] || fail "oversized body: HTTP $code"
grep -q 'larger than the limit of 65536 bytes' "$tmp/413" || fail "413 body: $(cat "$tmp/413")"
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/completions" -d 'not json')
[ "$code" = 400 ] || fail "invalid JSON: HTTP $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/completions" -d '{"model":"b","prompt":"x","top_p":7}')
[ "$code" = 400 ] || fail "top_p out of range: HTTP $code"
reply=$(python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",int(sys.argv[1])));
s.sendall(b"GARBAGE\r\n\r\n"); print(s.recv(200).decode().split("\r\n")[0])' "$PORT")
[ "$reply" = "HTTP/1.1 400 Bad Request" ] || fail "malformed HTTP: $reply"
health=$(curl -sf "$base/health")
grep -q '"status":"ok"' <<<"$health" || fail "health: $health"

# --- metrics ---------------------------------------------------------------------
curl -sf -D "$tmp/mh" "$base/metrics" > "$tmp/metrics"
grep -qi '^content-type: text/plain; version=0.0.4' "$tmp/mh" || fail "metrics content type"
for family in tandem_requests_total tandem_prompt_tokens_total tandem_generation_tokens_total \
    tandem_time_to_first_token_seconds_bucket tandem_time_per_output_token_seconds_bucket \
    tandem_e2e_request_latency_seconds_bucket tandem_num_requests_running tandem_num_requests_waiting \
    tandem_kv_pages_used tandem_kv_pages_capacity tandem_preemptions_total tandem_prefix_cache_hit_ratio \
    process_resident_memory_bytes; do
  grep -q "^$family{\?" "$tmp/metrics" || fail "metric $family missing"
done
grep -q '^tandem_requests_total{model="a",outcome="error"} 1$' "$tmp/metrics" || fail "error not counted"
if command -v promtool >/dev/null; then
  promtool check metrics < "$tmp/metrics" || fail "promtool check metrics"
  echo "promtool check metrics: ok"
else
  echo "promtool not found (Debian package 'prometheus', installed by scripts/setup.sh)"; exit 1
fi

# --- JSON logs: every line one object; request lines carry their fields -----------
stop_server
python3 - "$tmp/server.log" <<'PY'
import json, sys
n = 0
refused = set()
for line in open(sys.argv[1]):
    j = json.loads(line)
    assert {"ts", "level", "msg"} <= j.keys(), j
    if j.get("event") == "request":
        assert {"id", "model", "status", "outcome", "prompt_tokens", "output_tokens", "latency_ms"} <= j.keys(), j
        n += 1
        refused.add((j["status"], j["outcome"], j["model"], j["path"]))
        assert j["id"] != "-", j
assert n >= 7, n  # 3 streams + the refused ones below
# Refused requests are logged like the others (the 413 and the malformed one by the HTTP layer).
for want in [(413, "body_too_large", "-", "/v1/completions"), (400, "invalid", "-", "/v1/completions"),
             (400, "invalid", "b", "/v1/completions"), (400, "malformed", "-", "-")]:
    assert want in refused, (want, refused)
print(f"JSON logs ok ({n} request lines)")
PY
echo "e2e_curl: ok"
