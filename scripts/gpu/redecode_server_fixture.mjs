// Settles the text fields of a fixture from make_server_fixtures.py with the
// Hugging Face `tokenizers` library (npm package `tokenizers`, the same Rust
// code as Python's) over each model's tokenizer.json, which is what `tandem
// serve` implements. Needed for fixtures made before the generator used
// tokenizer.json itself: transformers 5's AutoTokenizer picks a byte-level
// tokenizer class for the Qwen2 folder (models/tandem-tiny-coder) and then
// neither encodes nor decodes as its tokenizer.json does.
// - text, token_strs, text_in_context: decoded again from the token ids;
// - a text or chat case whose prompt_ids differ from tokenizer.json's encoding
//   becomes a token-id completions case (the ids are what HF's model saw);
//   `source` keeps the text or the messages it came from.
// Usage (tokenizers installed where node finds it):
//   node scripts/gpu/redecode_server_fixture.mjs RAW.json fixtures/server/greedy_tiny.json
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.cwd(), "x.js"));
const { Tokenizer } = require("tokenizers");
const tokenizersVersion = require("tokenizers/package.json").version;
const [inPath, outPath] = process.argv.slice(2);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const doc = JSON.parse(fs.readFileSync(inPath, "utf8"));
const tok = {};
for (const [name, dir] of Object.entries(doc.models)) tok[name] = Tokenizer.fromFile(path.join(root, dir, "tokenizer.json"));

const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
async function settle(c) {
  const t = tok[c.model];
  const input = c.kind === "chat" ? c.rendered : c.prompt;
  let moved = false;
  if (typeof input === "string") {
    const ids = (await t.encode(input, null, { addSpecialTokens: c.kind !== "chat" })).getIds();
    if (!same(ids, c.prompt_ids)) {
      c.source = c.kind === "chat" ? { messages: c.messages, rendered: c.rendered } : { text: c.prompt };
      c.kind = "ids";
      c.prompt = c.prompt_ids;
      delete c.messages;
      delete c.rendered;
      moved = true;
    }
  }
  c.text = await t.decode(c.token_ids, true);
  c.token_strs = [];
  for (const id of c.token_ids) c.token_strs.push(await t.decode([id], false));
  const full = await t.decode([...c.prompt_ids, ...c.token_ids], true);
  const head = await t.decode(c.prompt_ids, true);
  c.text_in_context = full.startsWith(head) ? full.slice(head.length) : null;
  return moved;
}

const completions = [];
for (const c of [...doc.completions, ...doc.chat]) {
  const moved = await settle(c);
  if (c.kind !== "chat") completions.push(c);
  if (moved) console.log(`${c.model}: ${JSON.stringify(c.source).slice(0, 60)} -> token-id case`);
}
doc.completions = completions;
doc.chat = doc.chat.filter((c) => c.kind === "chat");
doc.decoded_by = `tokenizers (npm) ${tokenizersVersion} over each model's tokenizer.json`;
doc.provenance = "token ids and logprobs: HF transformers greedy, float32 on the GPU machine's CPU " +
  `(torch ${doc.torch}, transformers ${doc.transformers}); texts: decoded again by ${doc.decoded_by} ` +
  "(scripts/gpu/redecode_server_fixture.mjs)";
fs.writeFileSync(outPath, JSON.stringify(doc, null, 1) + "\n");
console.log(`${doc.completions.length} completions, ${doc.chat.length} chat cases -> ${outPath}`);
