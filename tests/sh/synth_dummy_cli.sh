#!/usr/bin/env bash
# `tandem synth` writes what `tandem plan` counts, loads through the real loader;
# `--load-format dummy` runs from config.json alone (folder or file); serve
# refuses a dummy model without tokenizer files, saying so.
set -euo pipefail
tandem=$1
dir=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
cat > "$dir/small.json" <<'JSON'
{"architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 256,
 "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "vocab_size": 1000, "max_position_embeddings": 1024, "sliding_window": 64, "torch_dtype": "bfloat16",
 "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": true, "version": "gemm"}}
JSON
out=$("$tandem" synth --config "$dir/small.json" --out "$dir/ck" --max-shard-gb 0.0005)
echo "$out"
bytes=$(sed -n 's/.*"bytes": \([0-9]*\).*/\1/p' <<<"$out")
shards=$(sed -n 's/.*"shards": \([0-9]*\).*/\1/p' <<<"$out")
[ "$shards" -gt 1 ] && [ -f "$dir/ck/model.safetensors.index.json" ]
plan=$("$tandem" plan --gpu-budget 8GiB --model a="$dir/ck" --json)
grep -q "\"weight_bytes\": *$bytes[,}]" <<<"$plan" || { echo "plan weight_bytes differs from synth's $bytes: $plan"; exit 1; }
ids="5 6 7 8 9"
from_file=$("$tandem" generate --model "$dir/ck" --device cpu --prompt-ids "$ids" --max-tokens 4 --format json)
grep -q '"num_output_tokens":4' <<<"$from_file"
mkdir "$dir/cfg" && cp "$dir/small.json" "$dir/cfg/config.json"
a=$("$tandem" generate --model "$dir/cfg" --load-format dummy --device cpu --prompt-ids "$ids" --max-tokens 4 --format ids)
b=$("$tandem" generate --model "$dir/small.json" --load-format dummy --device cpu --prompt-ids "$ids" --max-tokens 4 --format ids)
[ "$a" = "$b" ] || { echo "same config, same seed, different tokens: '$a' vs '$b'"; exit 1; }
# The same prepared bytes as the checkpoint's.
wf=$(sed -n 's/.*"weight_bytes":\([0-9]*\).*/\1/p' <<<"$from_file")
wd=$("$tandem" generate --model "$dir/small.json" --load-format dummy --device cpu --prompt-ids "$ids" --max-tokens 1 --format json |
     sed -n 's/.*"weight_bytes":\([0-9]*\).*/\1/p')
[ "$wf" = "$wd" ] || { echo "dummy weight_bytes $wd != checkpoint $wf"; exit 1; }
# Without dummy, a folder of config.json alone is an error naming it.
if "$tandem" generate --model "$dir/cfg" --device cpu --prompt-ids "$ids" 2> "$dir/err"; then exit 1; fi
grep -q "$dir/cfg" "$dir/err"
# serve: dummy weights still need tokenizer files.
if timeout 60 "$tandem" serve --model m="$dir/cfg" --load-format dummy --device cpu --port 0 2> "$dir/serve.err" > /dev/null; then
  echo "serve started without tokenizer files"; exit 1
fi
cat "$dir/serve.err"
grep -q "needs tokenizer files" "$dir/serve.err"
# ... and with them it serves (the tiny model's config and tokenizer, random weights).
src=${TANDEM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}/models/tandem-tiny-general
mkdir "$dir/tiny" && cp "$src/config.json" "$src/tokenizer.json" "$src/tokenizer_config.json" "$dir/tiny/"
"$tandem" serve --model tiny="$dir/tiny" --load-format dummy --device cpu --port 0 > "$dir/serve.log" 2>&1 &
pid=$!
url=""
for _ in $(seq 1 100); do
  url=$(grep -o 'http://127.0.0.1:[0-9]*' "$dir/serve.log" | head -1 || true)
  [ -n "$url" ] && curl -s "$url/health" | grep -q '"status":"ok"' && break
  sleep 0.2
done
resp=$(curl -s "$url/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model": "tiny", "prompt": "Once upon", "max_tokens": 5, "ignore_eos": true}')
kill -TERM $pid; wait $pid || true
pid=""
echo "$resp"
grep -q '"completion_tokens":5' <<<"$resp" || { cat "$dir/serve.log"; exit 1; }
# Bad configs name the field.
echo '{"architectures": ["LlamaForCausalLM"], "vocab_size": 10}' > "$dir/bad.json"
if "$tandem" synth --config "$dir/bad.json" --out "$dir/bad" 2> "$dir/err"; then exit 1; fi
grep -q "bad.json: field 'hidden_size'" "$dir/err"
echo ok
