#!/usr/bin/env python3
"""Single-threaded encode throughput (MB/s of UTF-8 input) of Hugging Face
`tokenizers`, on the same texts and in the same way as Tandem's
bench/tokenizer_bench.cpp: each text split at "\\n\\n" into chunks, one
encode(chunk, add_special_tokens=False) call per chunk, one warm-up pass, best
of --repeat timed passes. SentencePiece folders (tokenizer.model only) use the
`sentencepiece` package when it is installed.

Run from the repository root on the GPU machine (carry .cache/data/tokenizers):
    python3 scripts/gpu/bench_hf_tokenizers.py --repeat 5 \
        .cache/data/tokenizers/{qwen2_5,llama3,mistral,deepseek_v3,llama2-spm} \
        -- bench/data/prose.txt bench/data/code.txt
"""
import os
import sys
import time

# One thread: tokenizers' Rayon pool would otherwise parallelize batch calls.
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"


def load(folder):
    tj = os.path.join(folder, "tokenizer.json")
    if os.path.exists(tj):
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(tj)
        return lambda s: tok.encode(s, add_special_tokens=False).ids
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor()
    sp.Load(os.path.join(folder, "tokenizer.model"))
    return sp.EncodeAsIds


def main(argv):
    repeat = 5
    if len(argv) > 2 and argv[1] == "--repeat":
        repeat = int(argv[2])
        argv = argv[:1] + argv[3:]
    if "--" not in argv:
        sys.exit(__doc__)
    sep = argv.index("--")
    folders, files = argv[1:sep], argv[sep + 1:]
    try:
        import tokenizers
        version = tokenizers.__version__
    except ImportError:
        version = "not installed"
    print(f"tokenizers {version}, python {sys.version.split()[0]}")
    print(f"{'tokenizer':<14} {'text':<10} {'MB':>10} {'tokens':>10} {'MB/s':>10} {'cpu MB/s':>10}")
    for folder in folders:
        try:
            encode = load(folder)
        except ImportError as e:
            print(f"{os.path.basename(folder):<14} skipped: {e}")
            continue
        for path in files:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", errors="replace")
            chunks = text.split("\n\n")
            nbytes = sum(len(c.encode("utf-8")) for c in chunks)
            ntok = sum(len(encode(c)) for c in chunks)  # warm-up
            best = best_cpu = float("inf")
            for _ in range(repeat):
                c0 = time.process_time()
                t0 = time.perf_counter()
                n = 0
                for c in chunks:
                    n += len(encode(c))
                best = min(best, time.perf_counter() - t0)
                best_cpu = min(best_cpu, time.process_time() - c0)
                assert n == ntok
            name = os.path.basename(os.path.normpath(folder))
            stem = os.path.splitext(os.path.basename(path))[0]
            print(f"{name:<14} {stem:<10} {nbytes / 1e6:>10.3f} {ntok:>10} {nbytes / 1e6 / best:>10.2f} {nbytes / 1e6 / best_cpu:>10.2f}")


if __name__ == "__main__":
    main(sys.argv)
