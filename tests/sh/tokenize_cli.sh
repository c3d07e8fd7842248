#!/usr/bin/env bash
# `tandem tokenize` / `tandem detokenize`: ids on one line, special tokens only
# with --add-special-tokens, exact round trip, clear errors with nonzero exit.
set -euo pipefail
tandem=$1
t=.cache/data/tokenizers
if [ ! -f "$t/llama3/tokenizer.json" ]; then echo "no tokenizer data (run scripts/fetch_data.sh): skipped"; exit 77; fi

out=$(printf 'Hello world' | "$tandem" tokenize --tokenizer "$t/llama3")
[ "$out" = "9906 1917" ] || { echo "plain ids: got '$out'"; exit 1; }
out=$(printf 'Hello world' | "$tandem" tokenize --tokenizer "$t/llama3/tokenizer.json" --add-special-tokens)
[ "$out" = "128000 9906 1917" ] || { echo "with special tokens: got '$out'"; exit 1; }

text=$'  Tabs\tand CRLF\r\nemoji 🦙 中文 <|im_start|>\n'
for name in qwen2_5 llama3 mistral deepseek_v3 llama2-spm; do
  ids=$(printf '%s' "$text" | "$tandem" tokenize --tokenizer "$t/$name")
  back=$(printf '%s' "$ids" | "$tandem" detokenize --tokenizer "$t/$name"; printf x)
  back=${back%x}
  # SentencePiece-style decoders drop the one leading space the encoder added, so the text comes back whole.
  [ "$back" = "$text" ] || { echo "$name round trip: got '$back'"; exit 1; }
done

# Invalid UTF-8 is encoded as U+FFFD.
a=$(printf 'ab\xffcd' | "$tandem" tokenize --tokenizer "$t/qwen2_5")
b=$(printf 'ab\xef\xbf\xbdcd' | "$tandem" tokenize --tokenizer "$t/qwen2_5")
[ "$a" = "$b" ] || { echo "invalid UTF-8: '$a' vs '$b'"; exit 1; }

# Errors: missing tokenizer, bad id.
if err=$(printf 'x' | "$tandem" tokenize --tokenizer /nonexistent 2>&1); then echo "missing tokenizer exited 0"; exit 1; fi
grep -q "/nonexistent" <<<"$err" || { echo "error does not name the path: $err"; exit 1; }
if err=$(printf '1 2 banana' | "$tandem" detokenize --tokenizer "$t/llama3" 2>&1); then echo "bad id exited 0"; exit 1; fi
grep -q "'banana' is not a token id" <<<"$err" || { echo "bad id message: $err"; exit 1; }
if err=$(printf '999999999' | "$tandem" detokenize --tokenizer "$t/llama3" 2>&1); then echo "out of range id exited 0"; exit 1; fi
if "$tandem" tokenize 2>/dev/null </dev/null; then echo "missing --tokenizer exited 0"; exit 1; fi
echo "tokenize CLI: ok"
