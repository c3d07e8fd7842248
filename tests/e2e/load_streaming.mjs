// Bounded loopback load test: CLIENTS concurrent streaming clients split over
// two models; every request must complete with the right text and [DONE], no
// 5xx; afterwards /metrics must show zero KV pages in use and the server's RSS
// must have grown by less than 64 MiB (TANDEM_RSS_GROWTH_MIB). A second round
// aborts half the clients mid-stream and checks that their pages come back and
// the aborts are counted.
// Usage: node load_streaming.mjs BASE_URL [CLIENTS]
import http from "node:http";
import assert from "node:assert/strict";

const base = new URL(process.argv[2]);
const CLIENTS = Number(process.argv[3] || 1000);
const MAX_TOKENS = 24;
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: base.hostname, port: base.port, method, path, agent,
      headers: body ? { "Content-Type": "application/json" } : {} }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (data += d));
      res.on("end", () => resolve({ status: res.statusCode, body: data }));
    });
    req.on("error", reject);
    if (body) req.write(JSON.stringify(body));
    req.end();
  });
}

async function metrics() {
  const r = await request("GET", "/metrics");
  const m = new Map();
  for (const line of r.body.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

// Greedy echo of the prompt bytes (the echo engine's rule), cyclic.
function expected(prompt, n) {
  let s = "";
  for (let j = 0; j < n; j++) s += prompt[j % prompt.length];
  return s;
}

// One streaming client. abortAfterFirst: destroy the socket after the first text chunk.
function stream(i, abortAfterFirst) {
  const model = i % 2 ? "b" : "a";
  const prompt = `load-${i}-`;
  // Clients that will leave ask for a long stream, so they cannot finish first.
  const body = JSON.stringify({ model, prompt, max_tokens: abortAfterFirst ? 1500 : MAX_TOKENS, temperature: 0, ignore_eos: true,
    stream: true, stream_options: { include_usage: true } });
  return new Promise((resolve) => {
    const req = http.request({ host: base.hostname, port: base.port, method: "POST", path: "/v1/completions",
      agent: abortAfterFirst ? false : agent,
      headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) } }, (res) => {
      let buf = "", text = "", done = false, usage = null, finish = null;
      res.setEncoding("utf8");
      res.on("data", (d) => {
        buf += d;
        let k;
        while ((k = buf.indexOf("\n\n")) >= 0) {
          const ev = buf.slice(0, k);
          buf = buf.slice(k + 2);
          if (!ev.startsWith("data: ")) return resolve({ ok: false, why: `bad frame ${ev}` });
          const payload = ev.slice(6);
          if (payload === "[DONE]") { done = true; continue; }
          const j = JSON.parse(payload);
          if (j.error) return resolve({ ok: false, why: j.error.message });
          if (j.usage) usage = j.usage;
          for (const c of j.choices) {
            text += c.text;
            if (c.finish_reason) finish = c.finish_reason;
          }
          if (abortAfterFirst && text.length > 0) {
            req.destroy();
            return resolve({ ok: true, aborted: true, status: res.statusCode });
          }
        }
      });
      res.on("end", () => {
        const want = expected(prompt, MAX_TOKENS);
        const ok = res.statusCode === 200 && done && text === want && finish === "length" &&
          usage?.completion_tokens === MAX_TOKENS;
        resolve({ ok, status: res.statusCode, why: ok ? "" : `status ${res.statusCode} done=${done} text=${text} finish=${finish}` });
      });
      res.on("error", () => resolve({ ok: abortAfterFirst, status: res.statusCode, why: "response error" }));
    });
    req.on("error", (e) => resolve({ ok: false, why: `request error ${e.message}` }));
    req.end(body);
  });
}

async function waitIdle(label) {
  const t0 = Date.now();
  let m;
  for (;;) {
    m = await metrics();
    const used = ["a", "b"].map((x) => m.get(`tandem_kv_pages_used{model="${x}"}`));
    const running = ["a", "b"].map((x) => m.get(`tandem_num_requests_running{model="${x}"}`));
    if (used.every((u) => u === 0) && running.every((r) => r === 0)) break;
    if (Date.now() - t0 > 10000) assert.fail(`${label}: pages still in use after 10 s: ${used} running ${running}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return m;
}

function count5xx(m) {
  let n = 0;
  for (const [k, v] of m) if (/^tandem_http_responses_total\{code="5/.test(k)) n += v;
  return n;
}

// RSS growth allowed over the warm-up baseline. Sanitizer builds raise it
// (CMake sets TANDEM_RSS_GROWTH_MIB): ASan holds freed blocks in a 256 MiB
// quarantine and adds shadow memory, so its RSS says nothing about leaks
// (LeakSanitizer checks those at exit).
const rssGrowthMiB = Number(process.env.TANDEM_RSS_GROWTH_MIB || 64);

// Warm-up, then the baseline RSS.
await Promise.all(Array.from({ length: 50 }, (_, i) => stream(i, false)));
const m0 = await waitIdle("warm-up");
const rss0 = m0.get("process_resident_memory_bytes");

let t0 = Date.now();
const results = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => stream(i, false)));
const bad = results.filter((r) => !r.ok);
const m1 = await waitIdle("full run");
const rss1 = m1.get("process_resident_memory_bytes");
console.log(`round 1: ${CLIENTS} streams in ${Date.now() - t0} ms; failed ${bad.length}; ` +
  `RSS ${(rss0 / 2 ** 20).toFixed(1)} -> ${(rss1 / 2 ** 20).toFixed(1)} MiB`);
if (bad.length) console.log(bad.slice(0, 5));
assert.equal(bad.length, 0, "every stream completes correctly");
assert.equal(count5xx(m1), 0, "no 5xx");
assert.ok(rss1 - rss0 < rssGrowthMiB * 2 ** 20, `RSS grew by ${((rss1 - rss0) / 2 ** 20).toFixed(1)} MiB (limit ${rssGrowthMiB})`);

// Round 2: half the clients leave after their first chunk.
const abortedBefore = ["a", "b"].reduce((s, x) => s + m1.get(`tandem_requests_total{model="${x}",outcome="aborted"}`), 0);
t0 = Date.now();
const r2 = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => stream(i + CLIENTS, i % 2 === 0)));
const bad2 = r2.filter((r) => !r.ok);
let m2 = await waitIdle("abort run");
// Pages are freed on the engine thread; the request is counted a moment later,
// when its last event reaches the connection's strand.
const aborted = (m) => ["a", "b"].reduce((s, x) => s + m.get(`tandem_requests_total{model="${x}",outcome="aborted"}`), 0);
for (let t = 0; aborted(m2) - abortedBefore < CLIENTS / 2 && t < 200; t++) {
  await new Promise((r) => setTimeout(r, 50));
  m2 = await metrics();
}
const abortedAfter = aborted(m2);
console.log(`round 2: ${CLIENTS} streams (${CLIENTS / 2} aborted mid-stream) in ${Date.now() - t0} ms; ` +
  `failed ${bad2.length}; aborts counted ${abortedAfter - abortedBefore}; pages back to 0`);
if (bad2.length) console.log(bad2.slice(0, 5));
assert.equal(bad2.length, 0, "the clients that stay complete correctly");
assert.equal(abortedAfter - abortedBefore, CLIENTS / 2, "every mid-stream disconnect aborts its request");
assert.equal(count5xx(m2), 0, "no 5xx");
const rss2 = m2.get("process_resident_memory_bytes");
assert.ok(rss2 - rss0 < rssGrowthMiB * 2 ** 20, `RSS grew by ${((rss2 - rss0) / 2 ** 20).toFixed(1)} MiB (limit ${rssGrowthMiB})`);
console.log(`load: ok (RSS after both rounds ${(rss2 / 2 ** 20).toFixed(1)} MiB)`);
agent.destroy();
