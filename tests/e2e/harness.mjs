// Shared by the openai-client e2e tests: a fetch that records every request
// body (TANDEM_RECORD_BODIES, named by SHA-1, checked against the fuzz corpus by
// the shell side) and a tiny runner that counts failures.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

const recordDir = process.env.TANDEM_RECORD_BODIES;

export const recordingFetch = async (url, init) => {
  const body = init?.body;
  if (recordDir && typeof body === "string") {
    fs.writeFileSync(path.join(recordDir, crypto.createHash("sha1").update(body).digest("hex")), body);
  }
  return fetch(url, init);
};

let failures = 0;
export async function test(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
  }
}

// Prints the verdict and exits 1 when any test failed.
export function finish() {
  console.log(failures ? `${failures} failed` : "all passed");
  process.exit(failures ? 1 : 0);
}
