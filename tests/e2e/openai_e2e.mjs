// End-to-end tests of the OpenAI-compatible server with the official `openai`
// client (pinned in package.json). Usage: node openai_e2e.mjs BASE_URL API_KEY GOLDEN.json
// Serves two models, "a" and "b". With TANDEM_RECORD_BODIES=DIR, every request
// body sent is written to DIR/<sha1> (the fuzz corpus is seeded from these).
import OpenAI from "openai";
import { finish, recordingFetch, test } from "./harness.mjs";
import assert from "node:assert/strict";
import fs from "node:fs";

const [baseURL, apiKey, goldenPath] = process.argv.slice(2);
const golden = JSON.parse(fs.readFileSync(goldenPath, "utf8"));

const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, fetch: recordingFetch, maxRetries: 0 });

async function expectError(promise, status, param, needle) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `not an APIError: ${e}`);
    assert.equal(e.status, status, `status ${e.status}: ${e.message}`);
    if (param !== undefined) assert.equal(e.param, param, `param: ${e.param}`);
    if (needle) assert.ok(e.message.includes(needle), `message lacks '${needle}': ${e.message}`);
    assert.ok(e.error && typeof e.error.type === "string", "error body has a type");
    return e;
  }
  assert.fail(`expected HTTP ${status}`);
}

async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

await test("models list reports max_model_len", async () => {
  const models = await client.models.list();
  const ids = models.data.map((m) => m.id).sort();
  assert.deepEqual(ids, ["a", "b"]);
  for (const m of models.data) {
    assert.equal(m.object, "model");
    assert.equal(m.max_model_len, 2048);
  }
});

for (const g of golden.completions) {
  await test(`completions greedy golden: ${JSON.stringify(g.prompt)} max_tokens=${g.max_tokens}`, async () => {
    const r = await client.completions.create({
      model: "a", prompt: g.prompt, max_tokens: g.max_tokens, temperature: 0, stop: g.stop,
      ignore_eos: g.ignore_eos,
    });
    assert.match(r.id, /^cmpl-/);
    assert.equal(r.object, "text_completion");
    assert.equal(r.model, "a");
    assert.ok(Number.isInteger(r.created));
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].text, g.text);
    assert.equal(r.choices[0].finish_reason, g.finish_reason);
    assert.deepEqual(r.usage, {
      prompt_tokens: g.prompt_tokens, completion_tokens: g.completion_tokens,
      total_tokens: g.prompt_tokens + g.completion_tokens,
    });
  });
}

await test("completions: every prompt form", async () => {
  const list = await client.completions.create({ model: "b", prompt: ["xy", "zw"], max_tokens: 2, temperature: 0 });
  assert.deepEqual(list.choices.map((c) => [c.index, c.text]), [[0, "xy"], [1, "zw"]]);
  const ids = await client.completions.create({ model: "b", prompt: [72, 105], max_tokens: 2, temperature: 0 });
  assert.equal(ids.choices[0].text, "Hi");
  assert.equal(ids.usage.prompt_tokens, 2);
  const idLists = await client.completions.create({ model: "b", prompt: [[72, 105], [79, 75]], max_tokens: 2, temperature: 0 });
  assert.deepEqual(idLists.choices.map((c) => c.text), ["Hi", "OK"]);
  assert.equal(idLists.usage.prompt_tokens, 4);
});

await test("completions: n, seed and sampling parameters", async () => {
  const params = {
    model: "a", prompt: "seeded", max_tokens: 8, temperature: 0.8, top_p: 0.9, n: 3, seed: 7,
    presence_penalty: 0.5, frequency_penalty: 0.5, user: "e2e", top_k: 20, min_p: 0.05,
    repetition_penalty: 1.1, min_tokens: 2, stop_token_ids: [0], skip_special_tokens: true,
  };
  const r1 = await client.completions.create(params);
  const r2 = await client.completions.create(params);
  assert.equal(r1.choices.length, 3);
  assert.deepEqual(r1.choices.map((c) => c.index), [0, 1, 2]);
  assert.deepEqual(r1.choices.map((c) => c.text), r2.choices.map((c) => c.text), "same seed, same text");
  assert.notEqual(r1.choices[0].text, r1.choices[1].text, "choices differ when sampling");
  // The echo engine allows EOS after one pass over the 6 prompt bytes: 7 tokens per choice.
  assert.equal(r1.usage.completion_tokens, 21);
  assert.ok(r1.choices.every((c) => c.finish_reason === "stop" && c.text.length === 6));
});

await test("completions: logprobs object", async () => {
  const r = await client.completions.create({ model: "a", prompt: "abc", max_tokens: 3, temperature: 0, logprobs: 2 });
  const lp = r.choices[0].logprobs;
  assert.deepEqual(lp.tokens, ["a", "b", "c"]);
  assert.equal(lp.token_logprobs.length, 3);
  assert.ok(lp.token_logprobs.every((x) => typeof x === "number" && x <= 0));
  assert.equal(lp.top_logprobs.length, 3);
  assert.ok(lp.top_logprobs.every((t) => Object.keys(t).length === 2));
  assert.equal(lp.top_logprobs[0]["a"], lp.token_logprobs[0]);
  assert.deepEqual(lp.text_offset, [0, 1, 2]);
});

await test("completions: streaming equals non-streaming, include_usage", async () => {
  const chunks = await collect(await client.completions.create({
    model: "a", prompt: "Hello", max_tokens: 20, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  }));
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, { prompt_tokens: 6, completion_tokens: 6, total_tokens: 12 });
  const body = chunks.slice(0, -1);
  assert.ok(body.every((c) => c.usage === null && c.object === "text_completion" && c.id === last.id));
  assert.equal(body.map((c) => c.choices[0].text).join(""), "Hello");
  assert.equal(body[body.length - 1].choices[0].finish_reason, "stop");
  assert.ok(body.slice(0, -1).every((c) => c.choices[0].finish_reason === null));
});

await test("completions: streaming n=2 with logprobs, no usage chunk by default", async () => {
  const chunks = await collect(await client.completions.create({
    model: "b", prompt: "xyz", max_tokens: 3, temperature: 0, n: 2, stream: true, logprobs: 1,
  }));
  const text = { 0: "", 1: "" };
  const finish = {};
  for (const c of chunks) {
    assert.equal(c.usage, undefined);
    for (const ch of c.choices) {
      text[ch.index] += ch.text;
      if (ch.finish_reason) finish[ch.index] = ch.finish_reason;
      if (ch.text) assert.equal(ch.logprobs.tokens.join(""), ch.text);
    }
  }
  assert.deepEqual(text, { 0: "xyz", 1: "xyz" });
  assert.deepEqual(finish, { 0: "length", 1: "length" });
});

for (const g of golden.chat) {
  await test("chat: greedy golden", async () => {
    const r = await client.chat.completions.create({ model: "a", messages: g.messages, max_tokens: g.max_tokens, temperature: 0 });
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.object, "chat.completion");
    assert.equal(r.choices[0].message.role, "assistant");
    assert.equal(r.choices[0].message.content, g.content);
    assert.equal(r.choices[0].finish_reason, g.finish_reason);
    assert.equal(r.usage.prompt_tokens, g.prompt_tokens);
    assert.equal(r.usage.completion_tokens, g.completion_tokens);
  });
}

await test("chat: roles, text parts, max_completion_tokens", async () => {
  const r = await client.chat.completions.create({
    model: "b", temperature: 0, max_completion_tokens: 4,
    messages: [
      { role: "system", content: "S" },
      { role: "user", content: [{ type: "text", text: "Q" }, { type: "text", text: "R" }] },
      { role: "assistant", content: "A" },
      { role: "tool", content: "T", tool_call_id: "call_1" },
      { role: "user", content: "U" },
    ],
  });
  // ChatML prompt bytes without specials: "system\nS\nuser\nQR\n..."; greedy echoes them.
  assert.equal(r.choices[0].message.content, "syst");
  assert.equal(r.choices[0].finish_reason, "length");
});

await test("chat: streaming with include_usage and logprobs", async () => {
  const chunks = await collect(await client.chat.completions.create({
    model: "a", messages: [{ role: "user", content: "Hi" }], max_tokens: 4, temperature: 0, stream: true,
    stream_options: { include_usage: true }, logprobs: true, top_logprobs: 2,
  }));
  assert.equal(chunks[0].choices[0].delta.role, "assistant");
  assert.ok(chunks.every((c) => c.object === "chat.completion.chunk"));
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.completion_tokens, 4);
  let content = "";
  const tokens = [];
  for (const c of chunks.slice(0, -1)) {
    for (const ch of c.choices) {
      content += ch.delta.content ?? "";
      if (ch.logprobs) {
        for (const t of ch.logprobs.content) {
          tokens.push(t.token);
          assert.equal(t.top_logprobs.length, 2);
          assert.deepEqual(t.bytes, [...Buffer.from(t.token)]);
        }
      }
    }
  }
  assert.equal(content, "user");
  assert.deepEqual(tokens, ["u", "s", "e", "r"]);
  const fin = chunks[chunks.length - 2].choices[0];
  assert.equal(fin.finish_reason, "length");
});

await test("chat: non-streaming logprobs.content[] and n=2", async () => {
  const r = await client.chat.completions.create({
    model: "b", messages: [{ role: "user", content: "Yo" }], max_tokens: 2, temperature: 0, n: 2, logprobs: true,
  });
  assert.equal(r.choices.length, 2);
  for (const ch of r.choices) {
    assert.equal(ch.message.content, "us");
    assert.deepEqual(ch.logprobs.content.map((t) => t.token), ["u", "s"]);
    assert.ok(ch.logprobs.content.every((t) => Array.isArray(t.top_logprobs) && t.top_logprobs.length === 0));
  }
});

await test("stop strings across models at once", async () => {
  const [a, b] = await Promise.all([
    client.completions.create({ model: "a", prompt: "one two three", max_tokens: 30, temperature: 0, stop: [" t"] }),
    client.completions.create({ model: "b", prompt: "four five", max_tokens: 30, temperature: 0, stop: "ve" }),
  ]);
  assert.equal(a.choices[0].text, "one");
  assert.equal(b.choices[0].text, "four fi");
  assert.equal(a.choices[0].finish_reason, "stop");
});

await test("errors: unknown model 404 lists served models", async () => {
  await expectError(client.completions.create({ model: "nope", prompt: "x" }), 404, "model", "Served models: a, b");
});
await test("errors: out-of-range values name the field and limit", async () => {
  await expectError(client.completions.create({ model: "a", prompt: "x", temperature: 3 }), 400, "temperature", "[0, 2]");
  await expectError(client.completions.create({ model: "a", prompt: "x", n: 0 }), 400, "n", "[1, 128]");
  await expectError(client.chat.completions.create({ model: "a", messages: [] }), 400, "messages");
  await expectError(client.completions.create({ model: "a", prompt: "x", max_tokens: 5000 }), 400, "max_tokens",
    "maximum context length is 2048 tokens");
});
await test("errors: unsupported parameters are refused by name", async () => {
  await expectError(client.chat.completions.create({
    model: "a", messages: [{ role: "user", content: "x" }],
    response_format: { type: "json_schema", json_schema: { name: "s", schema: { type: "object" } } },
  }), 400, "response_format", "not supported");
  await expectError(client.chat.completions.create({
    model: "a", messages: [{ role: "user", content: "x" }],
    tools: [{ type: "function", function: { name: "f", parameters: {} } }],
  }), 400, "tools", "not supported");
  await expectError(client.completions.create({ model: "a", prompt: "x", suffix: "y" }), 400, "suffix");
});
await test("errors: a failing request fails alone", async () => {
  await expectError(client.completions.create({ model: "a", prompt: "__fail_request__" }), 500, undefined, "injected");
  const ok = await client.completions.create({ model: "a", prompt: "fine", max_tokens: 4, temperature: 0 });
  assert.equal(ok.choices[0].text, "fine");
});
await test("errors: wrong API key is 401", async () => {
  const bad = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: "wrong-key", fetch: recordingFetch, maxRetries: 0 });
  await expectError(bad.models.list(), 401);
});

finish();
