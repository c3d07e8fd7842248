#!/usr/bin/env python3
"""Expected chat-template renders for Tandem's Jinja interpreter.

For every template (the real templates under the llama.cpp source bundle, the
chat_template of each tokenizer_config.json in the data cache, and the inline
templates of llama.cpp's test-chat-template.cpp) this renders a set of
conversations the way transformers' apply_chat_template does, and writes
fixtures/chat_templates/renders.json.gz:

  {"oracle": "...", "fixed_now": "2024-07-26T13:05:09",
   "templates": [{"name", "source", "origin", "bos_token", "eos_token",
                  "llama_cpp_expected"?,           # inline llama.cpp cases only
                  "cases": [{"id", "messages", "tools"?, "add_generation_prompt",
                             "extra"?, "expected"? | "error"?, "error_kind"?}]}]}

Oracles, tried in order (--oracle auto):
  transformers: transformers.utils.chat_template_utils (render_jinja_template or
                _compile_jinja_template), i.e. the code apply_chat_template runs;
  tokenizer:    apply_chat_template of a PreTrainedTokenizerFast built offline;
  jinja2:       a replica of transformers' environment (ImmutableSandboxedEnvironment,
                trim_blocks, lstrip_blocks, loopcontrols, generation tag, tojson with
                ensure_ascii=False, raise_exception, strftime_now).
strftime_now is pinned to FIXED_NOW so renders are reproducible (for transformers
by replacing chat_template_utils.datetime with a class whose now() is fixed).

When the data cache is absent (e.g. on the GPU machine) the template sources are
taken from the existing fixture, so the script can re-render them with another
oracle. Run from the repository root:
  python3 scripts/gpu/make_template_fixtures.py            # auto oracle
  python3 scripts/gpu/make_template_fixtures.py --oracle transformers --out $OUT/renders.json.gz
A smoke render checks each route (tojson must keep non-ASCII) before it is used.
"""
import argparse
import ast
import datetime
import glob
import gzip
import json
import os
import re
import sys
import traceback

FIXED_NOW = datetime.datetime(2024, 7, 26, 13, 5, 9)
BOS, EOS = "<s>", "</s>"

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name, e.g. Paris"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two numbers",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "number"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        },
    },
]


def conversations():
    """(id, messages, tools, add_generation_prompt, extra) tuples."""
    sys_msg = {"role": "system", "content": "You are a helpful assistant."}
    u1 = {"role": "user", "content": "Hello!"}
    a1 = {"role": "assistant", "content": "Hi there, how can I help?"}
    u2 = {"role": "user", "content": "What is 2 + 2?"}
    out = []
    for gen in (True, False):
        g = "gen" if gen else "nogen"
        out.append((f"user_{g}", [u1], None, gen, None))
        out.append((f"system_multi_{g}", [sys_msg, u1, a1, u2], None, gen, None))
    out.append(("multi_assistant_last", [sys_msg, u1, a1], None, False, None))
    out.append(("spaces_unicode", [
        {"role": "user", "content": "  Grüße, 世界! \"quoted\" <b>&</b>\n\ttab  "},
        {"role": "assistant", "content": "   I am an assistant   "},
        {"role": "user", "content": "emoji 👩‍👩‍👧 and 'single' quotes"},
    ], None, True, None))
    out.append(("empty_content", [
        {"role": "user", "content": ""},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "Again"},
    ], None, True, None))
    out.append(("content_parts", [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "text", "text": "Part one."},
                                     {"type": "text", "text": "Part two."}]},
    ], None, True, None))
    tool_turns = [
        sys_msg,
        {"role": "user", "content": "Weather in Paris, and 3 + 4?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"id": "call_2", "type": "function",
             "function": {"name": "add", "arguments": {"a": 3, "b": 4}}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather",
         "content": "{\"temperature\": 21.5, \"unit\": \"celsius\"}"},
        {"role": "tool", "tool_call_id": "call_2", "name": "add", "content": "7"},
        {"role": "assistant", "content": "It is 21.5 °C in Paris; 3 + 4 = 7."},
        {"role": "user", "content": "Thanks"},
    ]
    out.append(("tools_only_defs", [u2], TOOLS, True, None))
    out.append(("tools_calls", tool_turns, TOOLS, True, None))
    out.append(("tools_calls_no_defs", tool_turns, None, False, None))
    out.append(("tools_string_args", [
        u1,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_9", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_9", "content": "cold"},
    ], TOOLS, True, None))
    out.append(("reasoning", [
        u1,
        {"role": "assistant", "content": "Four.", "reasoning_content": "2+2 is 4"},
        u2,
    ], None, True, {"enable_thinking": False}))
    out.append(("user_assistant_user_extra", [u1, a1, u2], None, True,
                {"date_string": "01 Jan 2025", "enable_thinking": True}))
    return out


# --- template sources -------------------------------------------------------

def unescape_cpp(lit):
    # C++ string literals in test-chat-template.cpp use only simple escapes,
    # which Python's literal syntax reads the same way.
    return ast.literal_eval(lit)


def llama_cpp_inline_cases(path):
    """Inline test cases of llama.cpp's test-chat-template.cpp, read as data."""
    text = open(path, encoding="utf-8").read()
    lit = r'(?:u8)?"(?:[^"\\]|\\.)*"'
    field = lambda name: rf"/\*\s*\.{name}\s*=?\s*\*/\s*((?:U8C\()?(?:{lit}\s*)+\)?)"
    sep = r"\s*,\s*(?://[^\n]*\n\s*)*"  # fields may be separated by // comment lines
    pat = re.compile(
        field("name") + sep + field("template_str") + sep +
        field("expected_output") + sep + field("expected_output_jinja") +
        r"(?:" + sep + field("bos_token") + r")?(?:" + sep + field("eos_token") + r")?", re.S)

    def value(group):
        if group is None:
            return ""
        parts = re.findall(lit, group)
        return "".join(unescape_cpp(p[2:] if p.startswith("u8") else p) for p in parts)

    cases = []
    for m in pat.finditer(text):
        cases.append({
            "name": value(m.group(1)), "template": value(m.group(2)),
            "expected_output": value(m.group(3)), "expected_output_jinja": value(m.group(4)),
            "bos_token": value(m.group(5)), "eos_token": value(m.group(6)),
        })
    return cases


def token_content(tok):
    if isinstance(tok, dict):
        return tok.get("content")
    return tok


def collect_sources(args):
    sources = []
    for path in sorted(glob.glob(os.path.join(args.templates, "*.jinja"))):
        with open(path, encoding="utf-8") as f:
            sources.append({"name": os.path.basename(path)[:-len(".jinja")], "source": f.read(),
                            "origin": "llama-src/models/templates", "bos_token": BOS,
                            "eos_token": EOS})
    for path in sorted(glob.glob(os.path.join(args.tokenizers, "*", "tokenizer_config.json"))):
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
        tmpl = cfg.get("chat_template")
        if isinstance(tmpl, list):
            tmpl = next((t["template"] for t in tmpl if t.get("name") == "default"), None)
        if not tmpl:
            continue
        sources.append({"name": "tokenizer-" + os.path.basename(os.path.dirname(path)),
                        "source": tmpl, "origin": "tokenizers/*/tokenizer_config.json",
                        "bos_token": token_content(cfg.get("bos_token")),
                        "eos_token": token_content(cfg.get("eos_token"))})
    if os.path.exists(args.llama_tests):
        for i, c in enumerate(llama_cpp_inline_cases(args.llama_tests)):
            sources.append({"name": f"llama-test-{i:02d}", "source": c["template"],
                            "origin": "llama-src/tests/test-chat-template.cpp: " + c["name"],
                            "bos_token": c["bos_token"], "eos_token": c["eos_token"],
                            "llama_cpp_expected": c["expected_output_jinja"] or c["expected_output"]})
    return sources


# --- oracles ----------------------------------------------------------------

def jinja2_replica():
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationTag(Extension):
        # transformers' AssistantTracker: {% generation %} renders its body.
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            return nodes.CallBlock(self.call_method("_generation"), [], [], body).set_lineno(lineno)

        def _generation(self, caller):
            return caller()

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return FIXED_NOW.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now

    def render(source, messages, tools, add_generation_prompt, kwargs):
        tmpl = env.from_string(source)
        return tmpl.render(messages=messages, tools=tools, documents=None,
                           add_generation_prompt=add_generation_prompt, **kwargs)

    def render_vars(source, variables):
        return env.from_string(source).render(**variables)

    return ("jinja2 %s replica of transformers' chat-template environment" % jinja2.__version__,
            render, render_vars)


def pin_transformers_clock(ctu):
    """Makes transformers' strftime_now see FIXED_NOW (it calls datetime.now())."""
    real = getattr(ctu, "datetime", None)
    if real is None or not hasattr(real, "now"):
        return False

    class FixedDatetime(real):
        @classmethod
        def now(cls, tz=None):
            return FIXED_NOW

    ctu.datetime = FixedDatetime
    return True


def transformers_oracle():
    import transformers
    from transformers.utils import chat_template_utils as ctu

    if not pin_transformers_clock(ctu):
        raise RuntimeError("cannot pin strftime_now's clock in chat_template_utils")
    compile_fn = getattr(ctu, "_compile_jinja_template", None)

    def render(source, messages, tools, add_generation_prompt, kwargs):
        if hasattr(ctu, "render_jinja_template"):
            out, _ = ctu.render_jinja_template(conversations=[messages], tools=tools,
                                               chat_template=source,
                                               add_generation_prompt=add_generation_prompt,
                                               **kwargs)
            return out[0]
        return compile_fn(source).render(messages=messages, tools=tools, documents=None,
                                         add_generation_prompt=add_generation_prompt, **kwargs)

    def render_vars(source, variables):
        return compile_fn(source).render(**variables)

    if compile_fn is None:
        raise RuntimeError("transformers has no _compile_jinja_template")
    return "transformers %s chat_template_utils" % transformers.__version__, render, render_vars


def tokenizer_oracle():
    """apply_chat_template of a PreTrainedTokenizerFast built offline."""
    import transformers
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast
    from transformers.utils import chat_template_utils as ctu

    if not pin_transformers_clock(ctu):
        raise RuntimeError("cannot pin strftime_now's clock in chat_template_utils")
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>")))

    def render(source, messages, tools, add_generation_prompt, kwargs):
        return tok.apply_chat_template(messages, tools=tools, chat_template=source,
                                       add_generation_prompt=add_generation_prompt,
                                       tokenize=False, **kwargs)

    compile_fn = getattr(ctu, "_compile_jinja_template", None)
    if compile_fn is not None:
        render_vars = lambda source, variables: compile_fn(source).render(**variables)
        label = "transformers %s apply_chat_template" % transformers.__version__
    else:
        _, _, render_vars = jinja2_replica()
        label = ("transformers %s apply_chat_template (snippets: jinja2 replica)"
                 % transformers.__version__)
    return label, render, render_vars


def pick_oracle(name):
    routes = {"transformers": transformers_oracle, "tokenizer": tokenizer_oracle,
              "jinja2": jinja2_replica}
    order = [name] if name != "auto" else ["transformers", "tokenizer", "jinja2"]
    errors = []
    for route in order:
        try:
            label, render, render_vars = routes[route]()
            # A smoke render proves the route works before trusting it for fixtures.
            if render_vars("{{ x|tojson }}", {"x": "é"}) != '"é"':
                raise RuntimeError("tojson is not transformers' (ensure_ascii=False)")
            if render("{{ messages[0]['content'] }}{% if add_generation_prompt %}!{% endif %}",
                      [{"role": "user", "content": "ok"}], None, True, {}) != "ok!":
                raise RuntimeError("smoke render gave a wrong result")
            return label, render, render_vars
        except Exception as e:  # noqa: BLE001 - try the next route
            errors.append(f"{route}: {e!r}")
    sys.exit("no oracle works:\n  " + "\n  ".join(errors))


def error_record(e):
    # raise_exception raises a bare TemplateError; everything else is a
    # subclass (UndefinedError, SecurityError, ...) or a Python error.
    return {"error": str(e),
            "error_kind": "raise_exception" if type(e).__name__ == "TemplateError" else type(e).__name__}


def render_snippets(render_vars):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from template_snippets import SNIPPETS
    out = []
    for name, source, variables in SNIPPETS:
        rec = {"name": name, "source": source, "variables": variables}
        try:
            rec["expected"] = render_vars(source, json.loads(json.dumps(variables)))
        except Exception as e:  # noqa: BLE001 - the error is the expected result
            rec.update(error_record(e))
        out.append(rec)
    return out


def render_case(render, tmpl, case):
    case_id, messages, tools, gen, extra = case
    kwargs = {}
    if tmpl.get("bos_token") is not None:
        kwargs["bos_token"] = tmpl["bos_token"]
    if tmpl.get("eos_token") is not None:
        kwargs["eos_token"] = tmpl["eos_token"]
    if extra:
        kwargs.update(extra)
    rec = {"id": case_id, "messages": messages, "add_generation_prompt": gen}
    if tools is not None:
        rec["tools"] = tools
    if extra:
        rec["extra"] = extra
    try:
        rec["expected"] = render(tmpl["source"], json.loads(json.dumps(messages)),
                                 json.loads(json.dumps(tools)) if tools is not None else None,
                                 gen, kwargs)
    except Exception as e:  # noqa: BLE001 - the error is the expected result
        rec.update(error_record(e))
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--templates", default=".cache/data/llama-src/models/templates")
    ap.add_argument("--tokenizers", default=".cache/data/tokenizers")
    ap.add_argument("--llama-tests", default=".cache/data/llama-src/tests/test-chat-template.cpp")
    ap.add_argument("--out", default="fixtures/chat_templates/renders.json.gz")
    ap.add_argument("--sources", default="fixtures/chat_templates/renders.json.gz",
                    help="fixture to take template sources from when the data cache is absent")
    ap.add_argument("--oracle", default="auto", choices=["auto", "transformers", "tokenizer", "jinja2"])
    args = ap.parse_args()

    sources = collect_sources(args)
    if not sources and os.path.exists(args.sources):
        with gzip.open(args.sources, "rt", encoding="utf-8") as f:
            old = json.load(f)
        keep = ("name", "source", "origin", "bos_token", "eos_token", "llama_cpp_expected")
        sources = [{k: t[k] for k in keep if k in t} for t in old["templates"]]
        print(f"data cache absent: re-rendering {len(sources)} templates from {args.sources}")
    if not sources:
        sys.exit(f"no templates found under {args.templates} and no existing {args.sources}")

    label, render, render_vars = pick_oracle(args.oracle)
    print("oracle:", label)
    cases = conversations()
    templates, num_ok, num_err = [], 0, 0
    for tmpl in sources:
        rec = dict(tmpl)
        if tmpl["origin"].startswith("llama-src/tests"):
            # llama.cpp's own conversation for its inline cases, plus ours.
            conv = [("llama_cpp_conversation", [
                {"role": "system", "content": "You are a helpful assistant"},
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi there"},
                {"role": "user", "content": "Who are you"},
                {"role": "assistant", "content": "   I am an assistant   "},
                {"role": "user", "content": "Another question"}], None, True, None)] + cases[:4]
        else:
            conv = cases
        try:
            rec["cases"] = [render_case(render, tmpl, c) for c in conv]
        except Exception:  # noqa: BLE001 - keep going, report
            traceback.print_exc()
            continue
        for c in rec["cases"]:
            num_ok += "expected" in c
            num_err += "error" in c
        templates.append(rec)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    snippets = render_snippets(render_vars)
    payload = {"oracle": label, "fixed_now": FIXED_NOW.isoformat(), "templates": templates,
               "snippets": snippets}
    # mtime=0 keeps the file byte-identical when nothing changed.
    with open(args.out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9,
                                                    mtime=0) as gz:
        gz.write(json.dumps(payload, ensure_ascii=False).encode("utf-8"))
    print(f"wrote {args.out}: {len(templates)} templates, {num_ok} renders, {num_err} errors, "
          f"{len(snippets)} snippets")


if __name__ == "__main__":
    main()
