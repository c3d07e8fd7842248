// Greedy outputs of `tandem serve` (CPU, the two tiny trained models in
// models/) against Hugging Face transformers' greedy outputs, recorded by
// scripts/gpu/make_server_fixtures.py in fixtures/server/greedy_tiny.json,
// through the official `openai` client: text, finish_reason, token counts,
// each token (the logprobs' token strings) and its logprob, plain and streamed;
// the prompt's token ids through /tokenize. The expected text is
// `text_in_context`: the generated ids decoded after the prompt, so a first
// "▁word" token keeps its space, as vLLM's and OpenAI's completions do.
// Usage: node real_models_e2e.mjs BASE_URL FIXTURE.json
import OpenAI from "openai";
import { finish, recordingFetch, test } from "./harness.mjs";
import assert from "node:assert/strict";
import fs from "node:fs";

const [baseURL, fixturePath] = process.argv.slice(2);
const fixture = JSON.parse(fs.readFileSync(fixturePath, "utf8"));
// fp16 weights computed in fp32 on both sides; the CPU engine matches HF's
// logits to ~1e-6, so 1e-3 on a logprob is loose yet catches any wrong token.
const kLogprobTolerance = 1e-3;

const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: "none", fetch: recordingFetch, maxRetries: 0 });

async function tokenize(body) {
  const r = await recordingFetch(`${baseURL}/tokenize`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  assert.equal(r.status, 200);
  return (await r.json()).tokens;
}

function checkLogprobs(g, strs, logprobs) {
  assert.deepEqual(strs, g.token_strs, "each generated token");
  assert.equal(logprobs.length, g.logprobs.length);
  logprobs.forEach((lp, i) => {
    assert.ok(Math.abs(lp - g.logprobs[i]) < kLogprobTolerance, `token ${i}: logprob ${lp} vs HF ${g.logprobs[i]}`);
  });
}

const name = (g) => `${g.model} ${g.kind} ${JSON.stringify(g.prompt ?? g.messages.at(-1).content).slice(0, 40)}`;
assert.ok(fixture.completions.length >= 6 && fixture.chat.length >= 2, "the fixture has cases");

for (const g of fixture.completions) {
  const request = { model: g.model, prompt: g.prompt, max_tokens: fixture.max_tokens, temperature: 0 };
  await test(`completions ${name(g)}`, async () => {
    if (typeof g.prompt === "string") {
      assert.deepEqual(await tokenize({ model: g.model, prompt: g.prompt }), g.prompt_ids, "prompt ids = HF's");
    }
    const r = await client.completions.create({ ...request, logprobs: 1 });
    const c = r.choices[0];
    assert.equal(c.text, g.text_in_context);
    assert.equal(c.finish_reason, g.finish_reason);
    assert.deepEqual(r.usage, {
      prompt_tokens: g.prompt_ids.length, completion_tokens: g.token_ids.length,
      total_tokens: g.prompt_ids.length + g.token_ids.length,
    });
    checkLogprobs(g, c.logprobs.tokens, c.logprobs.token_logprobs);
  });
  await test(`completions streamed ${name(g)}`, async () => {
    let text = "";
    let finish = null;
    for await (const chunk of await client.completions.create({ ...request, stream: true })) {
      text += chunk.choices[0].text;
      finish = chunk.choices[0].finish_reason ?? finish;
    }
    assert.equal(text, g.text_in_context);
    assert.equal(finish, g.finish_reason);
  });
}

for (const g of fixture.chat) {
  const request = { model: g.model, messages: g.messages, max_tokens: fixture.max_tokens, temperature: 0 };
  await test(`chat ${name(g)}`, async () => {
    assert.deepEqual(await tokenize({ model: g.model, messages: g.messages, add_generation_prompt: true }),
      g.prompt_ids, "the chat template's prompt ids = HF's apply_chat_template");
    const r = await client.chat.completions.create({ ...request, logprobs: true, top_logprobs: 1 });
    const c = r.choices[0];
    assert.equal(c.message.content, g.text_in_context);
    assert.equal(c.finish_reason, g.finish_reason);
    assert.equal(r.usage.prompt_tokens, g.prompt_ids.length);
    assert.equal(r.usage.completion_tokens, g.token_ids.length);
    checkLogprobs(g, c.logprobs.content.map((t) => t.token), c.logprobs.content.map((t) => t.logprob));
  });
  await test(`chat streamed ${name(g)}`, async () => {
    let text = "";
    for await (const chunk of await client.chat.completions.create({ ...request, stream: true })) {
      text += chunk.choices[0]?.delta?.content ?? "";
    }
    assert.equal(text, g.text_in_context);
  });
}

finish();
