#!/usr/bin/env bash
# `tandem serve` with the real engine on the CPU, serving the two tiny trained
# models in models/ on one port: greedy completions (plain = streamed = each of
# n choices), both models at once, /tokenize round trip, pages freed, drain.
# Outputs are checked for self-consistency and determinism here; against HF's
# greedy outputs in tests/e2e/e2e_real_models.sh. TANDEM_DEVICE=cuda runs it on the GPU.
set -euo pipefail
tandem=$(readlink -f "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/e2e/lib.sh"
need_tiny_models "$root" config.json
tmp=$(mktemp -d)
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$tmp"' EXIT
start_server "$tmp/server.log" "$tandem" serve --device "${TANDEM_DEVICE:-cpu}" --max-model-len 256 \
  --model general="$root/models/tandem-tiny-general" --model coder="$root/models/tandem-tiny-coder"
python3 - "http://127.0.0.1:$PORT" <<'PY'
import json, sys, threading, urllib.request
base = sys.argv[1]

def post(path, body, stream=False):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            data = r.read().decode()
            return r.status, data
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()

def complete(model, prompt, **kw):
    s, d = post("/v1/completions", dict(model=model, prompt=prompt, temperature=0, max_tokens=12, **kw))
    assert s == 200, (s, d)
    return json.loads(d)

def stream_text(model, prompt):
    s, d = post("/v1/completions", dict(model=model, prompt=prompt, temperature=0, max_tokens=12, stream=True))
    assert s == 200 and d.endswith("data: [DONE]\n\n"), d[-100:]
    return "".join(json.loads(l[6:])["choices"][0]["text"] for l in d.split("\n") if l.startswith("data: {"))

models = json.loads(urllib.request.urlopen(base + "/v1/models").read())
assert {m["id"]: m["max_model_len"] for m in models["data"]} == {"general": 256, "coder": 256}, models
for model, prompt in [("general", "Once upon a time"), ("coder", "def fibonacci(n):")]:
    r = complete(model, prompt)
    text = r["choices"][0]["text"]
    assert r["usage"]["completion_tokens"] >= 1 and text, r
    assert complete(model, prompt)["choices"][0]["text"] == text, "greedy is deterministic"
    assert stream_text(model, prompt) == text, "streamed text equals the plain text"
    n2 = complete(model, prompt, n=2)
    assert [c["text"] for c in n2["choices"]] == [text, text], n2
    toks = json.loads(post("/tokenize", {"model": model, "prompt": prompt})[1])["tokens"]
    assert json.loads(post("/detokenize", {"model": model, "tokens": toks})[1])["prompt"].endswith(prompt)
    ids = complete(model, toks)
    assert ids["choices"][0]["text"] == text, "token-id prompt gives the same text"
    print(f"{model}: {prompt!r} -> {text!r}")
# Both models at once.
out = {}
ts = [threading.Thread(target=lambda m=m: out.__setitem__(m, complete(m, "Hello")["choices"][0]["text"]))
      for m in ("general", "coder")]
[t.start() for t in ts]; [t.join() for t in ts]
assert out["general"] == complete("general", "Hello")["choices"][0]["text"]
# Chat through the model's template: deterministic, streamed = plain, and the
# prompt the server counts is the template's rendering as /tokenize sees it.
msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Write a loop."}]
for model in ("general", "coder"):
    s, d = post("/v1/chat/completions", {"model": model, "messages": msgs, "temperature": 0, "max_tokens": 10})
    assert s == 200, (s, d)
    r = json.loads(d)
    content = r["choices"][0]["message"]["content"]
    s2, d2 = post("/v1/chat/completions", {"model": model, "messages": msgs, "temperature": 0, "max_tokens": 10, "stream": True})
    streamed = "".join(json.loads(l[6:])["choices"][0]["delta"].get("content", "")
                       for l in d2.split("\n") if l.startswith("data: {"))
    assert streamed == content, (streamed, content)
    tok = json.loads(post("/tokenize", {"model": model, "messages": msgs})[1])
    assert tok["count"] == r["usage"]["prompt_tokens"], (tok["count"], r["usage"])
    print(f"{model} chat: {content!r}")
s, d = post("/v1/completions", {"model": "general", "prompt": [100] * 300})
assert s == 400 and "maximum context length is 256" in d, d
metrics = urllib.request.urlopen(base + "/metrics").read().decode()
for m in ("general", "coder"):
    assert f'tandem_kv_pages_used{{model="{m}"}} 0\n' in metrics, metrics
print("real models: ok")
PY
stop_server || { echo "FAIL: exit code after SIGTERM"; exit 1; }
echo "serve_real_models: ok"
