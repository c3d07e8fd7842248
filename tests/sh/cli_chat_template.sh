#!/usr/bin/env bash
# `tandem chat-template` prints exactly transformers' render (from the committed
# fixture) for real tokenizer folders, with messages as an array or as an object
# with tools; bad input fails with a one-line error.
set -euo pipefail
tandem=$1
fixture=fixtures/chat_templates/renders.json.gz
data=.cache/data/tokenizers
if [ ! -f "$fixture" ] || [ ! -d "$data/qwen2_5" ]; then echo "fixture or data cache absent"; exit 77; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Writes messages.json (array or object form), expected.txt and gen.flag for one fixture case.
python3 - "$fixture" "$tmp" <<'PY'
import gzip, json, sys
fx = json.load(gzip.open(sys.argv[1], "rt", encoding="utf-8"))
out = sys.argv[2]
want = {("tokenizer-qwen2_5", "system_multi_gen"), ("tokenizer-qwen2_5", "tools_calls"),
        ("tokenizer-deepseek_v3", "system_multi_nogen"), ("tokenizer-llama3", "spaces_unicode")}
for t in fx["templates"]:
    for c in t["cases"]:
        if (t["name"], c["id"]) not in want or "expected" not in c:
            continue
        name = t["name"].split("-", 1)[1] + "." + c["id"]
        doc = c["messages"] if "tools" not in c else {"messages": c["messages"], "tools": c["tools"]}
        json.dump(doc, open(f"{out}/{name}.json", "w"), ensure_ascii=False)
        open(f"{out}/{name}.expected", "w", encoding="utf-8", newline="").write(c["expected"])
        open(f"{out}/{name}.gen", "w").write("1" if c["add_generation_prompt"] else "")
PY

n=0
for expected in "$tmp"/*.expected; do
  base=${expected%.expected}
  folder=${base##*/}; folder=${folder%%.*}
  flag=(); [ -s "$base.gen" ] && flag=(--add-generation-prompt)
  "$tandem" chat-template --tokenizer "$data/$folder" --messages "$base.json" "${flag[@]}" >"$base.got"
  cmp "$base.got" "$expected" || { echo "mismatch for ${base##*/}"; diff "$base.got" "$expected" | head; exit 1; }
  n=$((n + 1))
done
[ "$n" -eq 4 ] || { echo "expected 4 cases from the fixture, found $n"; exit 1; }
echo "4 renders byte-identical"

# The file path forms of --tokenizer work too.
echo '[{"role": "user", "content": "x"}]' >"$tmp/one.json"
a=$("$tandem" chat-template --tokenizer "$data/qwen2_5/tokenizer_config.json" --messages "$tmp/one.json")
b=$("$tandem" chat-template --tokenizer "$data/qwen2_5/tokenizer.json" --messages "$tmp/one.json")
[ "$a" = "$b" ] && [ -n "$a" ]

# A folder without chat_template: the ChatML default and a warning on stderr.
out=$("$tandem" chat-template --tokenizer "$data/mistral" --messages "$tmp/one.json" --add-generation-prompt 2>"$tmp/err")
[ "$out" = $'<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant' ] || { echo "default template: got '$out'"; exit 1; }
grep -q "no chat_template" "$tmp/err"

expect_fail() {  # expect_fail WHAT-IN-STDERR ARGS...
  local what=$1; shift
  if "$tandem" chat-template "$@" >"$tmp/out" 2>"$tmp/err"; then echo "exited 0: $*"; exit 1; fi
  grep -q "$what" "$tmp/err" || { echo "stderr lacks '$what':"; cat "$tmp/err"; exit 1; }
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || { echo "error is not one line:"; cat "$tmp/err"; exit 1; }
}
expect_fail "cannot open" --tokenizer "$data/qwen2_5" --messages "$tmp/missing.json"
echo '{"messages": [' >"$tmp/bad.json"
expect_fail "not valid JSON" --tokenizer "$data/qwen2_5" --messages "$tmp/bad.json"
echo '{"role": "user"}' >"$tmp/obj.json"
expect_fail "must hold an array" --tokenizer "$data/qwen2_5" --messages "$tmp/obj.json"
expect_fail "tokenizer_config.json" --tokenizer "$tmp/nowhere" --messages "$tmp/one.json"
# A template's raise_exception becomes the error message.
mkdir "$tmp/raiser"
echo '{"chat_template": "{{ raise_exception(\"only one turn, please\") }}"}' >"$tmp/raiser/tokenizer_config.json"
expect_fail "only one turn, please" --tokenizer "$tmp/raiser" --messages "$tmp/one.json"
echo '{"chat_template": "{% include \"x\" %}"}' >"$tmp/raiser/tokenizer_config.json"
expect_fail "unsupported tag" --tokenizer "$tmp/raiser" --messages "$tmp/one.json"
echo ok
