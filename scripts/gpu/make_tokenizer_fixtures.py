#!/usr/bin/env python3
"""Generates the tokenizer oracle fixtures with Hugging Face `tokenizers` /
`transformers` (and the `sentencepiece` package for a bare tokenizer.model).

Runs on the GPU machine (no network). From the repository root:

    python3 scripts/gpu/make_tokenizer_fixtures.py \
        --tokenizers .cache/data/tokenizers --out fixtures/tokenizer

It needs only the tokenizer folders (carry `.cache/data/tokenizers`). Texts are
generated here, deterministically from --seed (the same seed gives the same
texts on any machine and Python 3 version); --corpus FILE adds slices of real
text as one more category.

Output, per tokenizer NAME: OUT/NAME.jsonl.gz. Line 1 is a header
{"tokenizer", "seed", "versions", "special_source", "notes"}; every other line
is one case:
    {"cat", "text", "ids", "ids_special", "decode", "decode_skip"}
 - ids:          tokenizers' Tokenizer.encode(text, add_special_tokens=False).ids
 - ids_special:  transformers' tokenizer(text)["input_ids"] (special tokens
                 added as transformers adds them), from AutoTokenizer, else the
                 generic PreTrainedTokenizerFast, whichever first agrees with
                 `tokenizers` on the plain ids of every text (header
                 special_source says which); tokenizers' own
                 encode(add_special_tokens=True) when neither does (the reasons
                 are in the header's notes)
 - decode:       tokenizers' decode(ids_special, skip_special_tokens=False)
 - decode_skip:  tokenizers' decode(ids_special, skip_special_tokens=True)
 - ids_special_tokenizers: only where it differs from ids_special
For the SentencePiece folder (no tokenizer.json) the oracle is the
`sentencepiece` package with the semantics documented in
src/tokenizer/spm_tokenizer.h (special piece strings split out first, each
other part encoded with the dummy prefix, BOS prepended).
"""
import argparse
import gzip
import json
import os
import random
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# ---------------------------------------------------------------- text material

WORDS = """the of and to in is was that for it with as his on be at by had are but
from or have an they which one you were her all she there would their we him been
has when who will more no if out so said what up its about into than them can only
other new some could time these two may then do first any my now such like our over
man me even most made after also did many before must through back years where much
your way well down should because each just those people how too little state good
very make world still own see men work long get here between both life being under
never day same another know while last might us great old year off come since against
go came right used take three house however himself world's don't it's they'll we've
I'm you're isn't couldn't Mr. Dr. U.S. e.g. i.e. naïve café résumé coöperate façade
jalapeño Zürich São Paulo Ångström fiancée über déjà vu""".split()
PUNCT = [".", ",", ";", ":", "!", "?", "...", " -", " —", " (", ")", "\"", "'", "’", "“", "”"]

CODE = {
    "python": [
        "def {f}({a}, {b}=None):\n    \"\"\"{w}.\"\"\"\n    if {b} is None:\n        {b} = []\n    return [{a} * 2 for {a} in range({n})]\n",
        "class {C}({C}Base):\n    def __init__(self, {a}: int) -> None:\n        self._{a} = {a}  # {w}\n",
        "for {a}, {b} in enumerate({f}()):\n\tprint(f\"{{{a}}}: {{{b}!r}}\")\n",
        "import os, sys\nfrom typing import Optional\n\n{C} = {{'{a}': {n}, \"{b}\": [{n}, {n}]}}\n",
        "try:\n    {f}()\nexcept (KeyError, ValueError) as e:\n    raise RuntimeError('{w}') from e\n",
        "@decorator(\"{w}\")\nasync def {f}(*args, **kwargs):\n    await asyncio.sleep(0.{n})\n    return lambda {a}: {a} ** 2\n",
    ],
    "c": [
        "#include <stdio.h>\n\nint {f}(const char *{a}, size_t {b}) {{\n    for (size_t i = 0; i < {b}; ++i) {{\n        if ({a}[i] == '\\n') return (int)i;\n    }}\n    return -1; /* {w} */\n}}\n",
        "static inline uint32_t {f}(uint32_t {a}) {{ return ({a} << {n}) | ({a} >> (32 - {n})); }}\n",
        "template <typename T>\nstd::vector<T> {f}(const std::vector<T>& {a}) {{\n  std::vector<T> {b}({a}.rbegin(), {a}.rend());\n  return {b};  // {w}\n}}\n",
        "#define {C}_MAX(x, y) ((x) > (y) ? (x) : (y))\nstruct {C} {{ int {a}; float {b}[{n}]; }};\n",
        "while (*{a}++ != '\\0') {{\n\t{b} += {a}->next ? 1 : 0;\n}}\r\n",
    ],
    "javascript": [
        "const {f} = async ({a}, {b} = {{}}) => {{\n  const res = await fetch(`/api/${{{a}}}`);\n  return res.json(); // {w}\n}};\n",
        "function {f}({a}) {{\n    return {a}.map(x => x * {n}).filter(Boolean).reduce((s, x) => s + x, 0);\n}}\n",
        "export default class {C} extends React.Component {{\n  render() {{ return <div className=\"{a}\">{{this.props.{b}}}</div>; }}\n}}\n",
        "let {a} = {{ \"{b}\": [{n}, null, true], '{w}': undefined }};\nconsole.log(JSON.stringify({a}, null, 2));\n",
    ],
    "rust": [
        "fn {f}<'a>({a}: &'a str, {b}: usize) -> Option<&'a str> {{\n    {a}.get(..{b}).filter(|s| !s.is_empty())\n}}\n",
        "#[derive(Debug, Clone, PartialEq)]\npub struct {C} {{\n    pub {a}: Vec<u8>,\n    {b}: HashMap<String, i64>,\n}}\n",
        "impl {C} {{\n    pub fn new() -> Self {{ Self {{ {a}: vec![0u8; {n}], ..Default::default() }} }}\n}}\n",
        "match {a} {{\n    Some(x) if x > {n} => println!(\"{{}}\", x),\n    _ => unreachable!(\"{w}\"),\n}}\n",
    ],
    "go_sql_shell": [
        "func ({a} *{C}) {f}(ctx context.Context) (int, error) {{\n\tif {a} == nil {{\n\t\treturn 0, errors.New(\"{w}\")\n\t}}\n\treturn {n}, nil\n}}\n",
        "SELECT {a}, COUNT(*) AS n FROM {b} WHERE {a} <> '{w}' GROUP BY {a} HAVING n > {n} ORDER BY n DESC;\n",
        "#!/bin/bash\nset -euo pipefail\nfor f in *.{a}; do\n  grep -q '{w}' \"$f\" && echo \"$f\" >> {b}.log\ndone\n",
        "<html>\n  <body class=\"{a}\">\n    <p id='{b}'>{w} &amp; more&nbsp;</p>\n  </body>\n</html>\n",
        "{{\"{a}\": {n}, \"{b}\": [1.5e-3, -2, \"{w}\"], \"nested\": {{\"k\": null}}}}\n",
    ],
}

CJK = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坏兴刻欢半ひらがなカタカナ漢字日本語の文章です。한국어 문장입니다"
ARABIC = "السلام عليكم ورحمة الله وبركاته هذا نص عربي للاختبار مع أرقام ٠١٢٣٤٥٦٧٨٩ وعلامات ترقيم، ؛ ؟ مُحَمَّد الْعَرَبِيَّة"
HEBREW = "שלום עולם זהו טקסט בעברית לבדיקה עם ניקוד: בְּרֵאשִׁית בָּרָא אֱלֹהִים אֵת הַשָּׁמַיִם וְאֵת הָאָרֶץ"
DEVANAGARI = "नमस्ते दुनिया यह हिन्दी में एक परीक्षण वाक्य है। संस्कृत: धर्मक्षेत्रे कुरुक्षेत्रे समवेता युयुत्सवः ०१२३४५६७८९ क्षत्रिय ज्ञान"
EMOJI = ["😀", "😂", "🦙", "👍🏽", "👨‍👩‍👧‍👦", "👩🏻‍💻", "🏳️‍🌈", "🇺🇸", "🇯🇵", "🇩🇪", "🇫🇷", "❤️", "✨", "🔥", "🤖",
         "🧑🏿‍🚀", "👁️‍🗨️", "🏴‍☠️", "🫠", "🥲", "☕", "⌚", "©️", "#️⃣", "🈯", "🀄"]
COMBINING_BASES = "aeiouAEIOUnscgzy"
COMBINING_MARKS = ["\u0300", "\u0301", "\u0302", "\u0303", "\u0308", "\u030A", "\u0327", "\u0323",
                   "\u0331", "\u0338", "\u20DD", "\u0345", "\u035C"]
DECOMPOSED = ["e\u0301", "A\u030A", "n\u0303", "u\u0308", "c\u0327", "\u1100\u1161", "\u1100\u1161\u11A8",
              "\u0041\u0308\u0304", "o\u0323\u0302", "\u212B", "\u2126", "\uFB01", "\u00C5"]
MATH = "∀x∈ℝ: ∃y ≤ x² ∑_{i=1}^{n} i = n(n+1)/2 ∫₀^∞ e^{-x²} dx = √π/2 ≠ ≈ ∞ ∂ ∇ ⊂ ⊆ ∪ ∩ ⇒ ⇔ ¬ ∧ ∨ ⊕ ⊗ α β γ δ ε θ λ μ π σ φ ω Ω ℵ₀ 𝔸 𝕏 𝒩 ½ ¾ ⅓ ‰ ± × ÷"
SPECIAL_STRINGS = ["<s>", "</s>", "<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>",
                   "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
                   "<|reserved_special_token_5|>", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>",
                   "<｜User｜>", "<｜Assistant｜>", "<|EOT|>", "<think>", "</think>", "<tool_call>",
                   "<|fim_prefix|>", "<｜tool▁calls▁begin｜>", "[INST]", "[/INST]", "<<SYS>>", "<|im_start",
                   "<|", "|>", "<s", "s>"]


def prose(r, n_words=None):
    n = n_words or r.randint(3, 60)
    out = []
    for i in range(n):
        w = r.choice(WORDS)
        if i == 0 or r.random() < 0.08:
            w = w[:1].upper() + w[1:]
        if r.random() < 0.03:
            w = w.upper()
        out.append(w)
        if r.random() < 0.12:
            out[-1] += r.choice(PUNCT)
    s = " ".join(out)
    return s + r.choice([".", "!", "?", "", "\n", ".\n\n"])


def ident(r):
    return r.choice(["x", "i", "data", "buf", "node", "count", "user_id", "tmpVal", "HTTPServer", "parse_json",
                     "self", "ctx", "résumé", "_private", "__dunder__", "camelCaseName", "snake_case_name"])


def code(r, lang):
    t = r.choice(CODE[lang])
    s = t.format(f=ident(r), a=ident(r), b=ident(r), C=r.choice(["Parser", "Node", "Vec3", "HTTPClient", "Foo"]),
                 w=prose(r, r.randint(1, 6)).strip(), n=r.randint(0, 99999))
    if r.random() < 0.3:
        s = s.replace("    ", "\t")
    if r.random() < 0.2:
        s = s.replace("\n", "\r\n")
    return s * r.randint(1, 2)


def numbers(r):
    parts = []
    for _ in range(r.randint(1, 8)):
        k = r.randint(0, 9)
        if k == 0:
            parts.append(str(r.randint(0, 10 ** r.randint(1, 15))))
        elif k == 1:
            parts.append(f"{r.uniform(-1e6, 1e6):.{r.randint(0, 6)}f}")
        elif k == 2:
            parts.append(f"{r.randint(1, 9)}.{r.randint(0, 99)}e{r.choice(['+', '-', ''])}{r.randint(0, 300)}")
        elif k == 3:
            parts.append(f"{r.randint(0, 999):,}".replace(",", r.choice([",", ".", " ", "'"])) + f",{r.randint(0, 999):03d}")
        elif k == 4:
            parts.append(f"0x{r.getrandbits(32):08X}")
        elif k == 5:
            parts.append(f"{r.randint(1, 31)}/{r.randint(1, 12)}/{r.randint(1900, 2100)}")
        elif k == 6:
            parts.append(f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}")
        elif k == 7:
            parts.append("".join(r.choice("0123456789") for _ in range(r.randint(1, 40))))
        elif k == 8:
            parts.append(f"+1 ({r.randint(200, 999)}) {r.randint(100, 999)}-{r.randint(1000, 9999)}")
        else:
            parts.append(r.choice(["١٢٣", "٤٥٦٫٧", "१२३४", "一二三", "①②③", "Ⅻ", "½", "²³", "𝟙𝟚𝟛", "٣.١٤"]))
    return r.choice([" ", ", ", " + ", "\n", " and ", ""]).join(parts)


def whitespace(r):
    pieces = []
    for _ in range(r.randint(1, 8)):
        pieces.append(r.choice(["", "word", "a", "the end", "x=1", "¿qué?", "漢字", "🦙"]))
        pieces.append("".join(r.choice([" ", "  ", "\n", "\u00A0", "\u3000", "\u2009", "\u200B", "\v", "\f"])
                              for _ in range(r.randint(1, 12))))
    s = "".join(pieces)
    return s if s else "   "


def tabs_crlf(r):
    lines = [r.choice(["\t" * r.randint(0, 4), " " * r.randint(0, 8), ""]) + prose(r, r.randint(0, 8)).strip()
             for _ in range(r.randint(1, 8))]
    return r.choice(["\r\n", "\n", "\r", "\r\n\r\n", "\t\r\n"]).join(lines) + r.choice(["", "\r\n", "\t", "\r"])


def sample(r, alphabet, lo, hi):
    """A run of `alphabet`'s words or characters with spaces and punctuation."""
    words = alphabet.split()
    if len(words) > 3 and r.random() < 0.5:
        return " ".join(r.choice(words) for _ in range(r.randint(lo, hi)))
    chars = [c for c in alphabet if not c.isspace()]
    out = []
    for _ in range(r.randint(lo, hi)):
        out.append("".join(r.choice(chars) for _ in range(r.randint(1, 6))))
    return r.choice(["", " ", "，", "、"]).join(out) + r.choice(["", "。", ".", "！", "\n"])


def emoji(r):
    out = []
    for _ in range(r.randint(1, 10)):
        out.append(r.choice(EMOJI) * r.randint(1, 3))
        if r.random() < 0.4:
            out.append(r.choice([" ", "", " love ", "!", "\n", "ok"]))
    return "".join(out)


def combining(r):
    out = []
    for _ in range(r.randint(1, 12)):
        if r.random() < 0.5:
            out.append(r.choice(DECOMPOSED))
        else:
            out.append(r.choice(COMBINING_BASES) + "".join(r.choice(COMBINING_MARKS) for _ in range(r.randint(1, 3))))
        if r.random() < 0.3:
            out.append(r.choice([" ", "word", "."]))
    return "".join(out)


def math(r):
    toks = MATH.split()
    return " ".join(r.choice(toks) for _ in range(r.randint(1, 20))) + r.choice(["", " = 0", "\n"])


def specials(r):
    out = []
    for _ in range(r.randint(1, 6)):
        out.append(r.choice(SPECIAL_STRINGS))
        out.append(r.choice(["", " ", "\n", " hello", "world ", prose(r, r.randint(1, 5)), "  ", "\t"]))
    return "".join(out)


def mixed(r):
    gens = [lambda: prose(r), lambda: numbers(r), lambda: emoji(r), lambda: sample(r, CJK, 1, 6),
            lambda: code(r, "python"), lambda: specials(r), lambda: math(r), lambda: whitespace(r)]
    return "".join(r.choice(gens)() for _ in range(r.randint(2, 4)))


CATEGORIES = {
    "prose": lambda r: prose(r),
    "prose_long": lambda r: "\n\n".join(prose(r, r.randint(40, 120)) for _ in range(r.randint(1, 4))),
    "code_python": lambda r: code(r, "python"),
    "code_c_cpp": lambda r: code(r, "c"),
    "code_javascript": lambda r: code(r, "javascript"),
    "code_rust": lambda r: code(r, "rust"),
    "code_go_sql_shell_html_json": lambda r: code(r, "go_sql_shell"),
    "numbers": numbers,
    "whitespace": whitespace,
    "tabs_crlf": tabs_crlf,
    "cjk": lambda r: sample(r, CJK, 1, 20),
    "arabic": lambda r: sample(r, ARABIC, 1, 15),
    "hebrew": lambda r: sample(r, HEBREW, 1, 15),
    "devanagari": lambda r: sample(r, DEVANAGARI, 1, 15),
    "emoji": emoji,
    "combining": combining,
    "math": math,
    "special_tokens": specials,
    "mixed": mixed,
    "edge": lambda r: r.choice(["", " ", "\n", "a", "'s", "'S", "I'M", "ſ", "'ll've", "don'T", "​", "\ufeff", "\u00ad",
                                "\x00", "\x7f", "\x1b[31m", "<0x41>", "\u2581", "\u2581\u2581x", "Ġ", "ĠĠ", "\ud7a3", "\U0010fffd",
                                "\u0378", "\ue000", "a\u0300\u0301", "\u1e9b\u0323"]) * r.randint(1, 3),
}


def make_texts(seed, per_category, corpus_files):
    cases = []
    for cat, gen in CATEGORIES.items():
        r = random.Random(f"{seed}:{cat}")
        for _ in range(per_category):
            cases.append((cat, gen(r)))
    for path in corpus_files:
        data = open(path, encoding="utf-8", errors="replace").read()
        r = random.Random(f"{seed}:corpus:{os.path.basename(path)}")
        for _ in range(per_category):
            start = r.randrange(max(1, len(data) - 2000))
            cases.append(("corpus", data[start:start + r.randint(20, 1500)]))
    return cases

# ---------------------------------------------------------------- oracles


def versions():
    v = {"python": sys.version.split()[0]}
    for mod in ("tokenizers", "transformers", "sentencepiece"):
        try:
            v[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - absent modules are recorded, not fatal
            v[mod] = None
    return v


def load_transformers(folder, notes):
    """transformers tokenizers for `folder`: AutoTokenizer (the class named in
    tokenizer_config.json) and the generic PreTrainedTokenizerFast (v5:
    TokenizersBackend, which takes tokenizer.json as it is and applies
    add_bos_token / add_eos_token). Model-specific classes may rebuild the
    pipeline from vocab and merges; for a real model folder (with config.json)
    transformers picks the class by model type instead."""
    out = []
    try:
        import transformers
        from transformers import AutoTokenizer
    except Exception as e:  # noqa: BLE001
        notes.append(f"transformers not importable: {type(e).__name__}: {e}")
        return out
    for label, loader in (("AutoTokenizer", lambda: AutoTokenizer.from_pretrained(folder, local_files_only=True)),
                          ("PreTrainedTokenizerFast",
                           lambda: transformers.PreTrainedTokenizerFast.from_pretrained(folder, local_files_only=True))):
        try:
            out.append((label, loader()))
        except Exception as e:  # noqa: BLE001
            notes.append(f"transformers {label} could not load the folder: {type(e).__name__}: {e}")
    return out


def hf_fixture(folder, texts):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    notes = []
    rows = []
    for cat, text in texts:
        rows.append({"cat": cat, "text": text, "ids": tok.encode(text, add_special_tokens=False).ids,
                     "ids_special_tokenizers": tok.encode(text, add_special_tokens=True).ids})
    # The first transformers tokenizer whose plain ids agree with `tokenizers`
    # on every text supplies ids_special.
    source, special = "tokenizers", None
    for label, hf in load_transformers(folder, notes):
        plain_disagree = 0
        candidate = []
        for row in rows:
            if hf(row["text"], add_special_tokens=False)["input_ids"] != row["ids"]:
                plain_disagree += 1
            candidate.append(hf(row["text"], add_special_tokens=True)["input_ids"])
        if plain_disagree:
            notes.append(f"transformers {label} ({type(hf).__name__}): plain ids differ from tokenizers' "
                         f"on {plain_disagree} of {len(rows)} texts; not used")
            continue
        source, special = f"transformers:{label}:{type(hf).__name__}", candidate
        break
    for i, row in enumerate(rows):
        tk_special = row.pop("ids_special_tokenizers")
        row["ids_special"] = special[i] if special is not None else tk_special
        if special is not None and special[i] != tk_special:
            row["ids_special_tokenizers"] = tk_special
        row["decode"] = tok.decode(row["ids_special"], skip_special_tokens=False)
        row["decode_skip"] = tok.decode(row["ids_special"], skip_special_tokens=True)
    return rows, source, notes


def spm_fixture(folder, texts):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor()
    sp.Load(os.path.join(folder, "tokenizer.model"))
    specials = {sp.IdToPiece(i): i for i in range(sp.GetPieceSize()) if sp.IsControl(i) or sp.IsUnknown(i)}
    special_ids = set(specials.values())
    patterns = sorted(specials, key=len, reverse=True)

    def encode(text):
        # Leftmost-longest split at the special pieces' strings (as the C++ does).
        ids, i, start = [], 0, 0
        while i < len(text):
            hit = next((p for p in patterns if p and text.startswith(p, i)), None)
            if hit is None:
                i += 1
                continue
            if i > start:
                ids += sp.EncodeAsIds(text[start:i])
            ids.append(specials[hit])
            i = start = i + len(hit)
        if start < len(text):
            ids += sp.EncodeAsIds(text[start:])
        return ids

    def decode(ids, skip):
        out, run = [], []
        for i in ids:
            if i in special_ids:
                if run:
                    out.append(sp.DecodeIds(run))
                    run = []
                if not skip:
                    out.append(sp.IdToPiece(i))
            else:
                run.append(i)
        if run:
            out.append(sp.DecodeIds(run))
        return "".join(out)

    rows = []
    for cat, text in texts:
        ids = encode(text)
        special = [sp.bos_id()] + ids
        rows.append({"cat": cat, "text": text, "ids": ids, "ids_special": special,
                     "decode": decode(special, False), "decode_skip": decode(special, True)})
    return rows, "sentencepiece", []


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizers", default=".cache/data/tokenizers", help="folder of tokenizer folders")
    ap.add_argument("--names", default="qwen2_5,llama3,mistral,deepseek_v3,llama2-spm")
    ap.add_argument("--out", default="fixtures/tokenizer")
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument("--per-category", type=int, default=110)
    ap.add_argument("--corpus", nargs="*", default=[], help="optional UTF-8 text files")
    args = ap.parse_args()

    texts = make_texts(args.seed, args.per_category, args.corpus)
    os.makedirs(args.out, exist_ok=True)
    vers = versions()
    print(f"versions: {vers}; {len(texts)} texts per tokenizer", flush=True)
    failed = []
    for name in args.names.split(","):
        folder = os.path.join(args.tokenizers, name)
        try:
            if os.path.exists(os.path.join(folder, "tokenizer.json")):
                rows, source, notes = hf_fixture(folder, texts)
            elif os.path.exists(os.path.join(folder, "tokenizer.model")):
                rows, source, notes = spm_fixture(folder, texts)
            else:
                raise FileNotFoundError(f"no tokenizer.json or tokenizer.model in {folder}")
        except Exception as e:  # noqa: BLE001 - report every tokenizer, then fail
            print(f"FAILED {name}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            failed.append(name)
            continue
        path = os.path.join(args.out, f"{name}.jsonl.gz")
        header = {"tokenizer": name, "seed": args.seed, "per_category": args.per_category,
                  "versions": vers, "special_source": source, "notes": notes}
        # No name and mtime=0 keep the file byte-identical across runs and paths.
        with open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
            gz.write((json.dumps(header, ensure_ascii=False) + "\n").encode("utf-8"))
            for row in rows:
                gz.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass"))
        print(f"wrote {path}: {len(rows)} cases, special ids from {source}; "
              f"{os.path.getsize(path)} bytes" + (f"; notes: {notes}" if notes else ""), flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
