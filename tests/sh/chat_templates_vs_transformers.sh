#!/usr/bin/env bash
# The chat-template fixture rendered by transformers 5.17 itself on the GPU machine
# (scripts/gpu/make_template_fixtures.py --oracle transformers), checked with the
# same fixture test that checks the committed jinja2-replica fixture.
set -euo pipefail
tests=$(dirname "$1")/tests/tandem_tokenizer_tests
[ -x "$tests" ] || { echo "tandem_tokenizer_tests not built"; exit 1; }
out=$(TANDEM_CHAT_FIXTURE=fixtures/chat_templates/renders.transformers.json.gz \
  "$tests" --gtest_filter='ChatTemplateFixture.*' 2>&1)
echo "$out"
grep -q "oracle: transformers" <<<"$out"
grep -q "68 of 68" <<<"$out"
