#!/usr/bin/env python3
"""Writes tests/tokenizer/data/unicode_cases.json: Python's answers for
(1) invalid UTF-8 -> bytes.decode("utf-8", "replace") and (2) NFC, on
deterministic random inputs, which the C++ unicode helpers must reproduce.
Run from the repository root: python3 scripts/gen/make_unicode_test_data.py
"""
import json
import random
import unicodedata

r = random.Random(7)
TRICKY = [0x00, 0x41, 0x7F, 0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xED, 0xEF, 0xF0, 0xF4, 0xF5,
          0xFF, 0x9F, 0xA0, 0x8F, 0x90]
VALID = ["é", "€", "𝄞", "🦙", "中", "a", " "]
invalid = []
for _ in range(400):
    b = bytearray()
    for _ in range(r.randint(1, 12)):
        k = r.random()
        if k < 0.5:
            b.append(r.choice(TRICKY))
        elif k < 0.8:
            b += r.choice(VALID).encode()
        else:
            s = r.choice(VALID).encode()
            b += s[:r.randint(1, len(s))]  # truncated sequence
    invalid.append({"in": b.hex(), "out": b.decode("utf-8", "replace").encode().hex()})

MARKS = [0x300, 0x301, 0x302, 0x303, 0x308, 0x30A, 0x323, 0x327, 0x331, 0x338, 0x345, 0x35C, 0x5B4, 0x93C, 0x94D,
         0x3099, 0x309A, 0x1DCE, 0x20DD]
BASES = "aeoucnsAEOUCNSzωαΩ" + "\u3046\u304b\u30cf\u1100\u1161\u11a8\uac00\u0915\u05d0\u212b\u2126\ufb01\u1e9b\u00c5\u01d5"
nfc = []
for _ in range(400):
    s = "".join(r.choice(BASES) + "".join(chr(r.choice(MARKS)) for _ in range(r.randint(0, 3)))
                for _ in range(r.randint(1, 6)))
    nfc.append({"in": s, "out": unicodedata.normalize("NFC", s)})

with open("tests/tokenizer/data/unicode_cases.json", "w", encoding="utf-8") as f:
    json.dump({"unicode_version": unicodedata.unidata_version, "invalid_utf8": invalid, "nfc": nfc}, f,
              ensure_ascii=False, indent=0)
