#!/usr/bin/env python3
"""Greedy golden outputs of the two committed tiny models, for the server's
end-to-end test (tests/e2e/e2e_real_models.sh): Hugging Face transformers is
the oracle, `tandem serve` on the CPU must reproduce it token for token.

Runs where torch + transformers are installed (the GPU machine; the forward
passes themselves run on its CPU in float32, which is what the CPU engine is
compared with):

    python3 scripts/gpu/make_server_fixtures.py fixtures/server/greedy_tiny.json

Prompts are encoded and outputs decoded with the `tokenizers` library over the
model's tokenizer.json (what `tandem serve` implements); transformers'
AutoTokenizer only renders the chat template (apply_chat_template). It is not
used to encode: transformers 5 gives the Qwen2 folder a byte-level tokenizer
class that neither encodes nor decodes as its tokenizer.json does.

The committed fixture was made by the first version of this script, which
encoded and decoded with AutoTokenizer; scripts/gpu/redecode_server_fixture.mjs
then decoded its texts again from the token ids with tokenizer.json and turned
the coder's prompts (encoded differently by AutoTokenizer) into token-id
prompts, which stay exact: they are the ids HF's model saw.

For each candidate prompt (completions as text and as token ids, chat messages
rendered by the model's own chat template through apply_chat_template) it runs
MAX_TOKENS greedy steps, each a full forward pass without KV cache, and keeps
the prompt only if every step's top-1 logit beats the runner-up by at least
MIN_MARGIN: a near-tie would let a 1e-6 difference flip the token, and the
test must not depend on luck. Prompts whose continuation hits EOS are kept
with finish_reason "stop" (the EOS id is the last token, as the server counts
it). Rejected candidates are listed with the reason.

Output (JSON):
  {"generator", "torch", "transformers", "max_tokens", "min_margin",
   "models": {"general": "models/tandem-tiny-general", ...},
   "completions": [CASE], "chat": [CASE], "rejected": [{"model", "input", "reason"}]}
  CASE = {"model", "prompt" (text or ids) | "messages", "rendered" (chat only),
          "prompt_ids", "token_ids", "token_strs" (decode([id]) each, special
          tokens kept), "logprobs" (of each chosen token, float32),
          "text" (decode(token_ids), special tokens skipped),
          "text_in_context" (decode(prompt_ids + token_ids) minus decode(prompt_ids)),
          "finish_reason", "min_margin"}
"""

import json
import os
import sys

import tokenizers
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

MAX_TOKENS = 24
MIN_MARGIN = 1e-3  # logits; the CPU engine matches HF to ~1e-6 on these models
KEEP = {"text": 3, "ids": 1, "chat": 2}  # accepted cases per model and kind
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = {"general": "models/tandem-tiny-general", "coder": "models/tandem-tiny-coder"}

TEXT_PROMPTS = {
    "general": ["Once upon a time", "The president said that", "In the morning, the", "It was a dark and stormy night",
                "The history of the world", "He looked at her and said", "Science is the", "A hacker is"],
    "coder": ["def fibonacci(n):", "import os\nimport sys\n\ndef main():", "class Stack:\n    def __init__(self):",
              "for i in range(10):", "# Read a file and count its lines\n", "def add(a, b):\n    return",
              "if __name__ == '__main__':", "x = ["],
}
ID_PROMPTS = {  # sent to the server as token ids (HF's encoding of the text)
    "general": ["The quick brown fox jumps over", "When the war was over,", "Nothing is certain but"],
    "coder": ["def main():\n    args =", "while True:\n    line =", "return self."],
}
CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me a story."}],
    [{"role": "system", "content": "You write Python."}, {"role": "user", "content": "Write a loop."},
     {"role": "assistant", "content": "for i in range(3): print(i)"}, {"role": "user", "content": "Now a function."}],
    [{"role": "user", "content": "Hello! How are you today?"}],
]


class Tok:
    """tokenizer.json for ids and text; AutoTokenizer for the chat template only."""

    def __init__(self, path):
        self.raw = tokenizers.Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
        self.auto = AutoTokenizer.from_pretrained(path, local_files_only=True)

    def encode(self, text, add_special_tokens):
        return self.raw.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids, skip_special_tokens):
        return self.raw.decode(ids, skip_special_tokens=skip_special_tokens)

    def render(self, messages):
        return self.auto.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def load(name):
    path = os.path.join(ROOT, MODELS[name])
    tok = Tok(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager",
                                                     local_files_only=True)
    except TypeError:  # transformers 4.x spells it torch_dtype
        model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="eager",
                                                     local_files_only=True)
    model.eval()
    eos = model.config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    return tok, model, eos_ids


@torch.no_grad()
def greedy(model, prompt_ids, eos_ids):
    ids = list(prompt_ids)
    out, logprobs, margin = [], [], float("inf")
    for _ in range(MAX_TOKENS):
        logits = model(torch.tensor([ids])).logits[0, -1].float()
        top2 = torch.topk(logits, 2)
        margin = min(margin, float(top2.values[0] - top2.values[1]))
        nxt = int(top2.indices[0])
        logprobs.append(float(torch.log_softmax(logits, -1)[nxt]))
        out.append(nxt)
        ids.append(nxt)
        if nxt in eos_ids:
            return out, logprobs, margin, "stop"
    return out, logprobs, margin, "length"


def make_case(tok, model, eos_ids, name, prompt_ids):
    token_ids, logprobs, margin, finish = greedy(model, prompt_ids, eos_ids)
    full = tok.decode(prompt_ids + token_ids, skip_special_tokens=True)
    head = tok.decode(prompt_ids, skip_special_tokens=True)
    return {
        "model": name, "prompt_ids": prompt_ids, "token_ids": token_ids,
        "token_strs": [tok.decode([t], skip_special_tokens=False) for t in token_ids],
        "logprobs": logprobs, "text": tok.decode(token_ids, skip_special_tokens=True),
        "text_in_context": full[len(head):] if full.startswith(head) else None,
        "finish_reason": finish, "min_margin": margin,
    }


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_server_fixtures.py OUT.json")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    doc = {"generator": "scripts/gpu/make_server_fixtures.py", "torch": torch.__version__,
           "transformers": transformers.__version__, "tokenizers": tokenizers.__version__, "max_tokens": MAX_TOKENS, "min_margin": MIN_MARGIN,
           "models": MODELS, "completions": [], "chat": [], "rejected": []}

    def consider(kind, case, where, key, value):
        kept = sum(1 for c in doc[where] if c["model"] == case["model"] and c["kind"] == kind)
        if case["min_margin"] < MIN_MARGIN:
            doc["rejected"].append({"model": case["model"], "input": value,
                                    "reason": f"near-tie: top-2 logit margin {case['min_margin']:.2e}"})
        elif kept < KEEP[kind]:
            doc[where].append({"kind": kind, key: value, **case})

    for name in MODELS:
        tok, model, eos_ids = load(name)
        for text in TEXT_PROMPTS[name]:
            ids = tok.encode(text, True)
            consider("text", make_case(tok, model, eos_ids, name, ids), "completions", "prompt", text)
        for text in ID_PROMPTS[name]:
            ids = tok.encode(text, True)
            consider("ids", make_case(tok, model, eos_ids, name, ids), "completions", "prompt", ids)
        for messages in CHATS:
            rendered = tok.render(messages)
            ids = tok.encode(rendered, False)
            case = {"rendered": rendered, **make_case(tok, model, eos_ids, name, ids)}
            consider("chat", case, "chat", "messages", messages)
    with open(sys.argv[1], "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    for c in doc["completions"] + doc["chat"]:
        print(f"{c['model']:8} {c['kind']:5} {c['finish_reason']:6} margin {c['min_margin']:.3f} "
              f"{json.dumps(c.get('prompt', c.get('rendered')))[:50]} -> {json.dumps(c['text'])[:70]}")
    for r in doc["rejected"]:
        print("rejected:", r["model"], json.dumps(r["input"])[:60], r["reason"])


if __name__ == "__main__":
    main()
