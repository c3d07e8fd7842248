#!/usr/bin/env python3
"""Golden fixtures for the CPU (and CUDA) engine: tiny random-weight checkpoints
of every supported variant, with Hugging Face transformers as the oracle.

Runs on the GPU machine (python3 + torch + transformers, no network):

    python3 scripts/gpu/make_model_fixtures.py OUT_DIR
    # then, at the repo root, commit the archive it prints:
    #   fixtures/models/golden_models.tar.xz

For each variant it writes OUT_DIR/<variant>/ with config.json (keys as
published repos write them), generation_config.json, model.safetensors (or
shards + model.safetensors.index.json) and reference.json:

    {"variant", "prompts": [{"prompt_ids", "greedy_ids",
      "steps": [{"top_ids": [5], "top_logprobs": [5]}],   # per generated token
      "logits_prompt": [V],   # logits at the prompt's last position
      "logits_last": [V]}]}   # logits at the last position of prompt + greedy_ids[:-1]

The reference runs HF's model in float32 on CPU (no TF32) on exactly the
values stored in the checkpoint (fp16/bf16 values upcast). HF transformers on
that machine cannot run AWQ/GPTQ checkpoints, so for those this script packs
int4 weights itself and the reference runs HF's dense model on weights that an
INDEPENDENT dequantizer (written from FORMATS.md, reading the packed tensors
back from the written file) produces; the packer's inputs are then checked
against it. Greedy continuations come from a full forward pass per step (no KV
cache), argmax of the last position.
"""

import argparse
import io
import json
import math
import os
import shutil
import struct
import sys
import tarfile
import tempfile

import numpy as np
import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

VOCAB = 256
HIDDEN = 128
INTER = 256
LAYERS = 2
HEADS = 4
KV_HEADS = 2
GEN_TOKENS = 16
PROMPT_LENGTHS = (5, 12)
TOP_K = 5

# ---------------------------------------------------------------- variants

VARIANTS = [
    # name, architecture, dtype, extra
    dict(name="llama_f32_rope_linear", arch="LlamaForCausalLM", dtype="float32",
         rope_linear=2.0),
    dict(name="llama_bf16_tied_sharded", arch="LlamaForCausalLM", dtype="bfloat16",
         tied=True, shards=2),
    dict(name="llama_f16_untied", arch="LlamaForCausalLM", dtype="float16"),
    dict(name="mistral_f16_window8", arch="MistralForCausalLM", dtype="float16",
         window=8),
    dict(name="qwen2_bf16_bias_window_disabled", arch="Qwen2ForCausalLM", dtype="bfloat16",
         window=4, tied=True),
    dict(name="qwen2_f32_bias_untied", arch="Qwen2ForCausalLM", dtype="float32"),
    dict(name="awq_g32_llama", arch="LlamaForCausalLM", dtype="float16",
         quant=dict(method="awq", group=32)),
    dict(name="awq_g64_qwen2", arch="Qwen2ForCausalLM", dtype="float16", tied=False,
         quant=dict(method="awq", group=64)),
    dict(name="awq_g128_mistral_old_quant_config", arch="MistralForCausalLM", dtype="float16",
         window=8, quant=dict(method="awq", group=128, old_file=True)),
    dict(name="gptq_v1_sym_g32", arch="LlamaForCausalLM", dtype="float16",
         quant=dict(method="gptq", group=32, fmt="gptq", sym=True, act_order=False)),
    dict(name="gptq_v1_asym_actorder_g32", arch="LlamaForCausalLM", dtype="float16",
         quant=dict(method="gptq", group=32, fmt="gptq", sym=False, act_order=True)),
    dict(name="gptq_v2_asym_actorder_g64_qwen2", arch="Qwen2ForCausalLM", dtype="float16",
         quant=dict(method="gptq", group=64, fmt="gptq_v2", sym=False, act_order=True)),
    dict(name="gptq_v2_sym_g128_old_quantize_config", arch="LlamaForCausalLM", dtype="float16",
         quant=dict(method="gptq", group=128, fmt="gptq_v2", sym=True, act_order=False, old_file=True)),
]

MODEL_TYPE = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral", "Qwen2ForCausalLM": "qwen2"}

# ---------------------------------------------------------------- safetensors (own writer/reader)

ST_DTYPE = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4}


def to_bytes(arr, st_dtype):
    """Little-endian bytes of a float/int numpy array in a safetensors dtype."""
    if st_dtype == "F32":
        return np.ascontiguousarray(arr, dtype="<f4").tobytes()
    if st_dtype == "F16":
        return np.ascontiguousarray(arr, dtype="<f2").tobytes()
    if st_dtype == "BF16":
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).to(torch.bfloat16)
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    if st_dtype == "I32":
        return np.ascontiguousarray(arr, dtype="<i4").tobytes()
    raise ValueError(st_dtype)


def write_safetensors(path, tensors):
    """tensors: list of (name, st_dtype, numpy array). Data 8-byte aligned."""
    header, blobs, offset = {}, [], 0
    for name, dt, arr in tensors:
        b = to_bytes(arr, dt)
        pad = (-offset) % 8
        if pad:
            blobs.append(b"\0" * pad)
            offset += pad
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-(8 + len(h))) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """name -> numpy array (BF16 returned as float32)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b0, b1 = e["data_offsets"]
        raw = data[base + b0: base + b1]
        shape = tuple(e["shape"])
        dt = e["dtype"]
        if dt == "F32":
            a = np.frombuffer(raw, dtype="<f4").reshape(shape)
        elif dt == "F16":
            a = np.frombuffer(raw, dtype="<f2").reshape(shape).astype(np.float32)
        elif dt == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            a = u.view(np.float32).reshape(shape)
        elif dt == "I32":
            a = np.frombuffer(raw, dtype="<i4").reshape(shape)
        else:
            raise ValueError(dt)
        out[name] = a
    return out


def read_checkpoint(folder):
    idx = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    out = {}
    for fn in files:
        out.update(read_safetensors(os.path.join(folder, fn)))
    return out

# ---------------------------------------------------------------- random values (exact in fp16/bf16)


def pow2_scale(k):
    """A power of two near 1 / (8.9 sqrt(k)): randint(-15, 15) * it has std ~ 1/sqrt(k)."""
    return 2.0 ** -round(math.log2(8.9 * math.sqrt(k)))


def rand_weight(rng, n, k):
    return rng.integers(-15, 16, size=(n, k)).astype(np.float32) * pow2_scale(k)


def rand_norm(rng, n):
    return (1.0 + rng.integers(-4, 5, size=(n,)) / 32.0).astype(np.float32)


def rand_bias(rng, n):
    return (rng.integers(-8, 9, size=(n,)) / 64.0).astype(np.float32)

# ---------------------------------------------------------------- int4 packers (FORMATS.md)

AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]  # nibble i holds column 8c + AWQ_ORDER[i]


def pack_awq(vals):
    """vals int [R, C] in 0..15 -> int32 [R, C/8]; packed along columns with the AWQ interleave."""
    r, c = vals.shape
    words = np.zeros((r, c // 8), dtype=np.uint32)
    for i in range(8):
        words |= (vals[:, AWQ_ORDER[i]::8].astype(np.uint32) & 0xF) << np.uint32(4 * i)
    return words.view(np.int32)


def pack_gptq_qweight(q):
    """q int [K, N] -> int32 [K/8, N]; row r nibble j holds k = 8r + j."""
    k, n = q.shape
    words = np.zeros((k // 8, n), dtype=np.uint32)
    for j in range(8):
        words |= (q[j::8, :].astype(np.uint32) & 0xF) << np.uint32(4 * j)
    return words.view(np.int32)


def pack_gptq_qzeros(z):
    """z int [G, N] -> int32 [G, N/8]; word c nibble j holds column 8c + j."""
    g, n = z.shape
    words = np.zeros((g, n // 8), dtype=np.uint32)
    for j in range(8):
        words |= (z[:, j::8].astype(np.uint32) & 0xF) << np.uint32(4 * j)
    return words.view(np.int32)

# ---------------------------------------------------------------- independent dequantizers (FORMATS.md)

AWQ_REV = [0, 4, 1, 5, 2, 6, 3, 7]  # column 8c + j sits in nibble AWQ_REV[j]


def nibble_at(words, shift):
    return (words.astype(np.int64) >> shift) & 0xF


def dequant_awq(qweight, qzeros, scales, group):
    """W[k, n] = (q[k, n] - z[k / G, n]) * s[k / G, n]; returns HF layout [N, K]."""
    k, n8 = qweight.shape
    n = n8 * 8
    w = np.zeros((k, n), dtype=np.float64)
    for col in range(n):
        c, j = divmod(col, 8)
        q = nibble_at(qweight[:, c], 4 * AWQ_REV[j])              # [K]
        z = nibble_at(qzeros[:, c], 4 * AWQ_REV[j])               # [K/G]
        s = scales[:, col].astype(np.float64)                     # [K/G]
        g = np.arange(k) // group
        w[:, col] = (q - z[g]) * s[g]
    return w.T.astype(np.float32)


def dequant_gptq(qweight, qzeros, scales, g_idx, fmt):
    """v1: W = (q - (z_stored + 1)) * s[g_idx[k]]; v2: W = (q - z) * s[g_idx[k]]."""
    k8, n = qweight.shape
    k = k8 * 8
    cols = np.arange(n)
    # zeros[g, col]: word col / 8 of row g, nibble col % 8 (sequential).
    zeros = (qzeros[:, cols // 8].astype(np.int64) >> (4 * (cols % 8))) & 0xF
    if fmt == "gptq":
        zeros = zeros + 1
    w = np.zeros((k, n), dtype=np.float64)
    for row in range(k):
        q = nibble_at(qweight[row // 8, :], 4 * (row % 8))        # [N]
        g = int(g_idx[row])
        w[row, :] = (q - zeros[g, :]) * scales[g, :].astype(np.float64)
    return w.T.astype(np.float32)

# ---------------------------------------------------------------- building one variant


def linear_shapes(cfg_head_dim):
    q_size, kv_size = HEADS * cfg_head_dim, KV_HEADS * cfg_head_dim
    return {
        "self_attn.q_proj": (q_size, HIDDEN), "self_attn.k_proj": (kv_size, HIDDEN),
        "self_attn.v_proj": (kv_size, HIDDEN), "self_attn.o_proj": (HIDDEN, q_size),
        "mlp.gate_proj": (INTER, HIDDEN), "mlp.up_proj": (INTER, HIDDEN), "mlp.down_proj": (HIDDEN, INTER),
    }


def make_quant_linear(rng, n, k, q):
    """Random int4 layer. Returns (tensors to store, expected dense W [N, K] from the generating values)."""
    group = q["group"]
    groups = k // group
    qv = rng.integers(0, 16, size=(k, n))
    base = pow2_scale(k) * 15.0 / 7.5  # (q - z) spans ~[-8, 7]: keep std ~ 1/sqrt(k)
    scales = (base * rng.choice([0.75, 0.875, 1.0, 1.125, 1.25], size=(groups, n))).astype(np.float16)
    if q["method"] == "awq":
        z = rng.integers(0, 16, size=(groups, n))
        gk = np.arange(k) // group
        w = (qv - z[gk]) * scales.astype(np.float64)[gk]
        return ([("qweight", "I32", pack_awq(qv)), ("qzeros", "I32", pack_awq(z)),
                 ("scales", "F16", scales)], w.T)
    # GPTQ
    if q["act_order"]:
        perm = rng.permutation(k)                 # order the rows were quantized in
        g_idx = np.empty(k, dtype=np.int32)
        g_idx[perm] = np.arange(k) // group
    else:
        g_idx = (np.arange(k) // group).astype(np.int32)
    if q["sym"]:
        z = np.full((groups, n), 8)
    elif q["fmt"] == "gptq":
        z = rng.integers(1, 16, size=(groups, n))  # v1 stores z - 1, so z = 0 cannot be written
    else:
        z = rng.integers(0, 16, size=(groups, n))
    stored = z - 1 if q["fmt"] == "gptq" else z
    w = (qv - z[g_idx]) * scales.astype(np.float64)[g_idx]
    return ([("qweight", "I32", pack_gptq_qweight(qv)), ("qzeros", "I32", pack_gptq_qzeros(stored)),
             ("scales", "F16", scales), ("g_idx", "I32", g_idx)], w.T)


def config_json(v):
    arch = v["arch"]
    head_dim = HIDDEN // HEADS
    c = {
        "architectures": [arch], "model_type": MODEL_TYPE[arch],
        "vocab_size": VOCAB, "hidden_size": HIDDEN, "intermediate_size": INTER,
        "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
        "hidden_act": "silu", "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
        "rope_theta": 1000000.0 if arch == "Qwen2ForCausalLM" else 10000.0,
        "tie_word_embeddings": bool(v.get("tied", False)),
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": v["dtype"],
        "attention_dropout": 0.0, "initializer_range": 0.02, "use_cache": True,
    }
    if arch == "LlamaForCausalLM":
        c["attention_bias"] = False
        c["mlp_bias"] = False
        c["rope_scaling"] = {"type": "linear", "factor": v["rope_linear"]} if "rope_linear" in v else None
    if arch == "MistralForCausalLM":
        c["sliding_window"] = v.get("window")
        c["head_dim"] = head_dim
    if arch == "Qwen2ForCausalLM":
        c["sliding_window"] = v.get("window", 4096)
        c["use_sliding_window"] = False
        c["max_window_layers"] = LAYERS
    return c


def quant_json(q):
    if q["method"] == "awq":
        if q.get("old_file"):
            return {"zero_point": True, "q_group_size": q["group"], "w_bit": 4, "version": "GEMM"}
        return {"quant_method": "awq", "bits": 4, "group_size": q["group"], "zero_point": True,
                "version": "gemm"}
    d = {"bits": 4, "group_size": q["group"], "desc_act": q["act_order"], "sym": q["sym"],
         "damp_percent": 0.01, "true_sequential": True, "checkpoint_format": q["fmt"]}
    if not q.get("old_file"):
        d["quant_method"] = "gptq"
    return d


def build_variant(v, out_dir, seed):
    rng = np.random.default_rng(seed)
    folder = os.path.join(out_dir, v["name"])
    os.makedirs(folder, exist_ok=True)
    st_dt = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}[v["dtype"]]
    cfg = config_json(v)
    q = v.get("quant")
    head_dim = HIDDEN // HEADS
    tensors = []           # (name, st dtype, array) as stored
    expected_dense = {}    # name -> W [N, K] the packer meant (int4 layers)

    def add(name, arr, dt=st_dt):
        tensors.append((name, dt, arr))

    # Embedding and head: std ~1 so logits spread widely (large top-2 margins).
    add("model.embed_tokens.weight", rng.integers(-15, 16, size=(VOCAB, HIDDEN)).astype(np.float32) / 8.0)
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        add(p + "input_layernorm.weight", rand_norm(rng, HIDDEN))
        add(p + "post_attention_layernorm.weight", rand_norm(rng, HIDDEN))
        for lname, (n, k) in linear_shapes(head_dim).items():
            full = p + lname
            if v["arch"] == "Qwen2ForCausalLM" and lname in ("self_attn.q_proj", "self_attn.k_proj",
                                                             "self_attn.v_proj"):
                add(full + ".bias", rand_bias(rng, n), "F16" if q else st_dt)
            if q:
                parts, w = make_quant_linear(rng, n, k, q)
                for part, dt, arr in parts:
                    add(full + "." + part, arr, dt)
                expected_dense[full] = w
            else:
                add(full + ".weight", rand_weight(rng, n, k))
    add("model.norm.weight", rand_norm(rng, HIDDEN))
    if not cfg["tie_word_embeddings"]:
        add("lm_head.weight", rng.integers(-15, 16, size=(VOCAB, HIDDEN)).astype(np.float32) / 8.0)

    if q and not q.get("old_file"):
        cfg["quantization_config"] = quant_json(q)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if q and q.get("old_file"):
        name = "quant_config.json" if q["method"] == "awq" else "quantize_config.json"
        with open(os.path.join(folder, name), "w") as f:
            json.dump(quant_json(q), f, indent=2)
    with open(os.path.join(folder, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": 2, "do_sample": False}, f, indent=2)

    shards = v.get("shards", 1)
    if shards == 1:
        write_safetensors(os.path.join(folder, "model.safetensors"), tensors)
    else:
        per = (len(tensors) + shards - 1) // shards
        weight_map = {}
        for s in range(shards):
            fn = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            part = tensors[s * per:(s + 1) * per]
            write_safetensors(os.path.join(folder, fn), part)
            for name, _, _ in part:
                weight_map[name] = fn
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=2)

    # Dense fp32 state dict for HF, from the FILE (values exactly as stored).
    stored = read_checkpoint(folder)
    sd = {}
    for name, arr in stored.items():
        if name.endswith((".qweight", ".qzeros", ".scales", ".g_idx")):
            continue
        sd[name] = torch.from_numpy(np.array(arr, dtype=np.float32))
    if q:
        for prefix, want in expected_dense.items():
            if q["method"] == "awq":
                w = dequant_awq(stored[prefix + ".qweight"], stored[prefix + ".qzeros"],
                                stored[prefix + ".scales"], q["group"])
            else:
                w = dequant_gptq(stored[prefix + ".qweight"], stored[prefix + ".qzeros"],
                                 stored[prefix + ".scales"], stored[prefix + ".g_idx"], q["fmt"])
            err = float(np.max(np.abs(w - want.astype(np.float32))))
            if err > 1e-6:
                raise SystemExit(f"{v['name']}: {prefix}: packer and dequantizer disagree (max err {err})")
            sd[prefix + ".weight"] = torch.from_numpy(w)
    if cfg["tie_word_embeddings"]:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    return folder, cfg, sd


def hf_model(cfg, sd):
    """The HF model in float32 (eager attention) from a config.json without quantization."""
    ref_cfg = {k: val for k, val in cfg.items() if k != "quantization_config"}
    ref_cfg["torch_dtype"] = "float32"
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(ref_cfg, f)
        config = AutoConfig.from_pretrained(tmp)
    try:
        model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    except TypeError:
        config._attn_implementation = "eager"
        model = AutoModelForCausalLM.from_config(config)
    model = model.float().eval()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if "rotary_emb" not in m]
    if missing or unexpected:
        raise SystemExit(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    if cfg["tie_word_embeddings"]:
        assert torch.equal(model.lm_head.weight, model.model.embed_tokens.weight)
    # The settings the fixtures exist to test must have reached HF's model.
    dim = HIDDEN // HEADS
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    scaling = cfg.get("rope_scaling")
    if scaling:
        inv = inv / scaling["factor"]
    rotary = getattr(model.model, "rotary_emb", None)
    hf_inv = getattr(rotary, "inv_freq", None)
    if hf_inv is None:
        print("warning: model.model.rotary_emb.inv_freq not found; rope scaling not cross-checked")
    elif not torch.allclose(hf_inv.float().cpu(), inv, rtol=1e-6, atol=0):
        raise SystemExit(f"rope inv_freq differs from the config's intent: {hf_inv[:4]} vs {inv[:4]}")
    hf_window = getattr(config, "sliding_window", None)
    want_window = cfg.get("sliding_window") if cfg["architectures"][0] == "MistralForCausalLM" else None
    layer_types = getattr(config, "layer_types", None)
    all_full = layer_types is not None and all(t == "full_attention" for t in layer_types)
    if hf_window != want_window and not (want_window is None and all_full):
        raise SystemExit(f"HF sliding_window {hf_window} (layer_types {layer_types}), expected {want_window}")
    return model, config


@torch.no_grad()
def last_logits(model, ids):
    out = model(input_ids=torch.tensor([ids], dtype=torch.long), use_cache=False)
    return out.logits[0, -1].double()


@torch.no_grad()
def reference_for(model, prompt):
    seq = list(prompt)
    steps, greedy = [], []
    logits_prompt = None
    logits_step = None
    for step in range(GEN_TOKENS):
        logits_step = last_logits(model, seq)
        if step == 0:
            logits_prompt = logits_step
        lp = torch.log_softmax(logits_step, dim=-1)
        top = torch.topk(lp, TOP_K)
        tok = int(torch.argmax(logits_step))
        steps.append({"top_ids": [int(x) for x in top.indices],
                      "top_logprobs": [round(float(x), 6) for x in top.values]})
        greedy.append(tok)
        seq.append(tok)
    return {
        "prompt_ids": list(prompt), "greedy_ids": greedy, "steps": steps,
        "logits_prompt": [float(f"{x:.7g}") for x in logits_prompt.tolist()],
        "logits_last": [float(f"{x:.7g}") for x in logits_step.tolist()],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", help="folder for the variant folders (created)")
    ap.add_argument("--archive", default=None,
                    help="tar.xz to write (default: <repo>/fixtures/models/golden_models.tar.xz)")
    ap.add_argument("--only", default=None, help="comma-separated variant names")
    args = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))
    torch.backends.cuda.matmul.allow_tf32 = False
    os.makedirs(args.out_dir, exist_ok=True)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    archive = args.archive or os.path.join(repo, "fixtures", "models", "golden_models.tar.xz")
    only = set(args.only.split(",")) if args.only else None

    manifest = {"torch": torch.__version__, "transformers": transformers.__version__,
                "gen_tokens": GEN_TOKENS, "variants": []}
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    print(f"{'variant':44s} {'min margin':>10s} {'ties<0.05':>9s} {'logit range':>11s}")
    for vi, v in enumerate(VARIANTS):
        if only and v["name"] not in only:
            continue
        folder, cfg, sd = build_variant(v, args.out_dir, seed=1000 + vi)
        model, hf_cfg = hf_model(cfg, sd)
        window = getattr(hf_cfg, "sliding_window", None)
        prng = np.random.default_rng(2000 + vi)
        prompts = [[1] + [int(x) for x in prng.integers(3, VOCAB, size=n - 1)] for n in PROMPT_LENGTHS]
        refs = [reference_for(model, p) for p in prompts]
        margins = [s["top_logprobs"][0] - s["top_logprobs"][1] for r in refs for s in r["steps"]]
        lr = max(r["logits_prompt"]) - min(r["logits_prompt"])
        with open(os.path.join(folder, "reference.json"), "w") as f:
            json.dump({"variant": v["name"], "hf_sliding_window": window,
                       "hf_layer_types": getattr(hf_cfg, "layer_types", None),
                       "reference_dtype": "float32", "prompts": refs}, f)
        manifest["variants"].append(v["name"])
        print(f"{v['name']:44s} {min(margins):10.4f} {sum(m < 0.05 for m in margins):9d} {lr:11.3f}"
              f"   window={window} greedy[0]={refs[0]['greedy_ids'][:8]}")
    with open(os.path.join(args.out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)

    os.makedirs(os.path.dirname(archive), exist_ok=True)
    with tarfile.open(archive, "w:xz", preset=9) as tar:
        for name in ["manifest.json"] + manifest["variants"]:
            tar.add(os.path.join(args.out_dir, name), arcname=os.path.join("golden_models", name))
    print(f"wrote {archive} ({os.path.getsize(archive) / 1024:.0f} KiB); commit it")


if __name__ == "__main__":
    main()
