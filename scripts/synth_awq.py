#!/usr/bin/env python3
"""Random-weight AWQ (GEMM) checkpoint at a published config's exact shapes.

  scripts/synth_awq.py CONFIG.json OUT_DIR [--seed S] [--dense]

--dense writes an unquantized checkpoint instead (linears as `.weight` [N, K]
in the config's torch_dtype, fp16 or bf16), e.g. Qwen2.5-7B-Instruct. Biases
are written where the architecture has them (Qwen2: q/k/v; Llama
attention_bias: q/k/v/o), F16 in AWQ exports.

Writes OUT_DIR/config.json (the given config, AWQ quantization_config kept or
added) and OUT_DIR/model.safetensors with the HF tensor names, shapes and
dtypes of an AutoAWQ GEMM checkpoint. Speed measurements only: the packed
words and fp16 values are drawn from one random pool (small scales, unit norm
weights) so the file is written at disk speed; numbers, not language.
"""
import argparse
import json
import os
import struct

import random

POOL_BYTES = 1 << 26  # 64 MiB of random bytes, sliced for every tensor
F16_POOL = 1 << 20   # fp16 values per value pool


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dense", action="store_true", help="unquantized, in the config's torch_dtype")
    a = ap.parse_args()
    cfg = json.load(open(a.config))
    if a.dense:
        if cfg.get("quantization_config"):
            raise SystemExit(f"{a.config}: --dense wants a config without quantization_config")
        dense_dt = {"bfloat16": "BF16", "float16": "F16"}.get(cfg.get("torch_dtype") or cfg.get("dtype"))
        if dense_dt is None:
            raise SystemExit(f"{a.config}: --dense needs torch_dtype float16 or bfloat16")
        G = 0
    else:
        qc = cfg.get("quantization_config") or {"quant_method": "awq", "bits": 4, "group_size": 128,
                                                "zero_point": True, "version": "gemm"}
        if qc.get("quant_method") != "awq" or qc.get("bits") != 4:
            raise SystemExit(f"{a.config}: quantization_config is not 4-bit AWQ")
        cfg["quantization_config"] = qc
        G = qc["group_size"]
    qkv_bias = cfg.get("model_type") == "qwen2" or bool(cfg.get("attention_bias"))
    o_bias = bool(cfg.get("attention_bias"))
    fdt = dense_dt if a.dense else "F16"
    H, I, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    nh, nkv, V = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["vocab_size"]
    D = cfg.get("head_dim") or H // nh
    rng = random.Random(a.seed)
    pool = rng.randbytes(POOL_BYTES)
    # fp16 pools: small values for embeddings/lm_head, scales ~ 0.002, ones for norms.
    small = struct.pack(f"<{F16_POOL}e", *(rng.gauss(0.0, 0.02) for _ in range(F16_POOL)))
    scales = struct.pack(f"<{F16_POOL}e", *(0.001 + 0.002 * rng.random() for _ in range(F16_POOL)))
    if fdt == "BF16":  # the upper halves of fp32 values
        small = b"".join(struct.pack("<f", rng.gauss(0.0, 0.02))[2:] for _ in range(F16_POOL))

    tensors = []  # (name, dtype, shape, source array, count)

    def add(name, dtype, shape, src):
        tensors.append((name, dtype, shape, src))

    def linear(prefix, K, N, bias=False):
        if a.dense:
            add(prefix + ".weight", fdt, [N, K], small)
        else:
            add(prefix + ".qweight", "I32", [K, N // 8], pool)
            add(prefix + ".qzeros", "I32", [K // G, N // 8], pool)
            add(prefix + ".scales", "F16", [K // G, N], scales)
        if bias:
            add(prefix + ".bias", fdt, [N], small)

    add("model.embed_tokens.weight", fdt, [V, H], small)
    for i in range(L):
        p = f"model.layers.{i}"
        add(p + ".input_layernorm.weight", fdt, [H], None)
        add(p + ".post_attention_layernorm.weight", fdt, [H], None)
        linear(p + ".self_attn.q_proj", H, nh * D, qkv_bias)
        linear(p + ".self_attn.k_proj", H, nkv * D, qkv_bias)
        linear(p + ".self_attn.v_proj", H, nkv * D, qkv_bias)
        linear(p + ".self_attn.o_proj", nh * D, H, o_bias)
        linear(p + ".mlp.gate_proj", H, I)
        linear(p + ".mlp.up_proj", H, I)
        linear(p + ".mlp.down_proj", I, H)
    add("model.norm.weight", fdt, [H], None)
    if not cfg.get("tie_word_embeddings", False):
        add("lm_head.weight", fdt, [V, H], small)

    header, off = {}, 0
    for name, dt, shape, _ in tensors:
        n = prod(shape) * (4 if dt == "I32" else 2)
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    hb = json.dumps(header).encode()
    hb += b" " * (-len(hb) % 8)
    os.makedirs(a.out, exist_ok=True)
    json.dump(cfg, open(os.path.join(a.out, "config.json"), "w"), indent=1)
    ones = struct.pack(f"<{H}e", *([1.0] * H)) if fdt == "F16" else b"\x80\x3f" * H  # bf16 1.0 = 0x3f80
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for k, (name, dt, shape, src) in enumerate(tensors):
            n = prod(shape) * (4 if dt == "I32" else 2)
            if src is None:
                f.write(ones[:n])
                continue
            start = (k * 7919 * 8) % len(src)
            while n > 0:
                take = min(n, len(src) - start)
                f.write(src[start:start + take])
                n -= take
                start = 0
    print(f"wrote {a.out}: {len(tensors)} tensors, {off / 1e9:.2f} GB")


def prod(shape):
    r = 1
    for d in shape:
        r *= d
    return r


if __name__ == "__main__":
    main()
