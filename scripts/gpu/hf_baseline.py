#!/usr/bin/env python3
"""PyTorch baseline for batch-1 decode: HF transformers, fp16, static KV cache,
random weights built from a config.json directly on the GPU (no checkpoint).

  python3 hf_baseline.py CONFIG.json OUT.json [--prompt 512] [--new 128]

Greedy generate() of --new tokens after a --prompt-token prompt; decode tok/s =
(new - 1) / (time of new tokens - time of 1 token), CUDA-synchronized, after a
warm-up. Eager mode (no torch.compile). Any quantization_config is dropped:
the model is fp16, as HF runs it without AWQ kernels.
"""
import argparse
import json
import time

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("out")
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--new", type=int, default=128)
    a = ap.parse_args()
    d = json.load(open(a.config))
    d.pop("quantization_config", None)
    model_type = d.pop("model_type")
    d["torch_dtype"] = "float16"
    cfg = AutoConfig.for_model(model_type, **d)
    torch.manual_seed(0)
    t0 = time.time()
    torch.set_default_dtype(torch.float16)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg)
    model = model.half().eval()
    # Eager: recent transformers compile the forward for a static cache on their
    # own (minutes of torch.compile); this baseline is the plain PyTorch path.
    model.generation_config.disable_compile = True
    torch.cuda.synchronize()
    build_s = time.time() - t0
    ids = torch.randint(100, 30000, (1, a.prompt), device="cuda")

    def gen(n):
        torch.cuda.synchronize()
        t = time.time()
        with torch.inference_mode():
            out = model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                 cache_implementation="static", pad_token_id=0, disable_compile=True)
        torch.cuda.synchronize()
        assert out.shape[1] == a.prompt + n, out.shape
        return time.time() - t

    gen(4)  # warm-up
    t1 = min(gen(1) for _ in range(2))
    tn = gen(a.new)
    tps = (a.new - 1) / (tn - t1)
    res = {"transformers": transformers.__version__, "torch": torch.__version__,
           "device": torch.cuda.get_device_name(), "model_type": model_type,
           "prompt": a.prompt, "new_tokens": a.new, "build_seconds": build_s,
           "seconds_1": t1, "seconds_new": tn, "decode_tokens_per_second": tps,
           "mode": "eager, fp16, static cache, greedy"}
    json.dump(res, open(a.out, "w"), indent=1)
    print(f"HF transformers {transformers.__version__} ({res['mode']}): decode {tps:.1f} tok/s "
          f"(1 token {t1:.3f}s, {a.new} tokens {tn:.3f}s)")


if __name__ == "__main__":
    main()
