// Baseline publisher for groupcast's benchmark (see BENCHMARKS.md).
//
// Publishes 5-event batches to an AppSync Events HTTP endpoint, signing every request with SigV4
// the way AWS documents an IAM-authorized AppSync call from Node.js: `SignatureV4` from
// @smithy/signature-v4 with `Sha256` from @aws-crypto/sha256-js, an `HttpRequest` from
// @smithy/protocol-http, then the global `fetch`. It does the same work per request as the Rust
// publisher: build 5 envelopes `{id,topic,data,groups}` (fresh UUID v4 each), serialize the
// body, sign, POST, parse `{successful, failed}`. Prints one JSON line with the figures.
//
// Usage: node publish.mjs --url http://127.0.0.1:PORT/event [--concurrency 64] [--duration 10]
//          [--warmup 2] [--data-bytes 100] [--hash js|node]

import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { Sha256 } from "@aws-crypto/sha256-js";
import { Hash } from "@smithy/hash-node";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";

const { values: opt } = parseArgs({
  options: {
    url: { type: "string" },
    concurrency: { type: "string", default: "64" },
    duration: { type: "string", default: "10" },
    warmup: { type: "string", default: "2" },
    "data-bytes": { type: "string", default: "100" },
    namespace: { type: "string", default: "bench" },
    group: { type: "string", default: "readers" },
    topic: { type: "string", default: "load/test" },
    region: { type: "string", default: "us-east-1" },
    hash: { type: "string", default: "js" },
  },
});
if (!opt.url) {
  console.error("--url is required, e.g. --url http://127.0.0.1:8080/event");
  process.exit(2);
}
const endpoint = new URL(opt.url);
const concurrency = Number(opt.concurrency);
const durationMs = Number(opt.duration) * 1000;
const warmupMs = Number(opt.warmup) * 1000;
const EVENTS_PER_REQUEST = 5;

// @smithy/hash-node's Hash takes the algorithm first; SignatureV4 constructs `new sha256(secret)`.
class NodeSha256 extends Hash {
  constructor(secret) {
    super("sha256", secret);
  }
}

// Fixed static credentials, the same as the Rust publisher's: nothing is sent beyond 127.0.0.1.
const signer = new SignatureV4({
  credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" },
  region: opt.region,
  service: "appsync",
  sha256: opt.hash === "node" ? NodeSha256 : Sha256,
});

const channel = `/${opt.namespace}/${opt.group}/${opt.topic}`;
const data = { text: "x".repeat(Number(opt["data-bytes"])) };
const groups = [opt.group];

async function publishOnce() {
  const events = [];
  for (let i = 0; i < EVENTS_PER_REQUEST; i++) {
    events.push(JSON.stringify({ id: randomUUID(), topic: opt.topic, data, groups }));
  }
  const request = new HttpRequest({
    method: "POST",
    protocol: endpoint.protocol,
    hostname: endpoint.hostname,
    port: endpoint.port ? Number(endpoint.port) : undefined,
    path: endpoint.pathname,
    headers: {
      accept: "application/json, text/javascript",
      "content-encoding": "amz-1.0",
      "content-type": "application/json; charset=UTF-8",
      host: endpoint.host,
    },
    body: JSON.stringify({ channel, events }),
  });
  const signed = await signer.sign(request);
  const response = await fetch(endpoint, { method: "POST", headers: signed.headers, body: signed.body });
  const result = await response.json();
  if (response.status !== 200 || !Array.isArray(result.successful)) {
    throw new Error(`status ${response.status}: ${JSON.stringify(result)}`);
  }
  return result.successful.length;
}

async function run(ms) {
  const deadline = performance.now() + ms;
  let requests = 0;
  let events = 0;
  let errors = 0;
  let firstError;
  const worker = async () => {
    while (performance.now() < deadline) {
      try {
        // Await first: `events += await ...` would read `events` before the await and lose updates.
        const n = await publishOnce();
        events += n;
        requests += 1;
      } catch (err) {
        errors += 1;
        firstError ??= String(err);
      }
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { seconds: (performance.now() - start) / 1000, requests, events, errors, firstError };
}

if (warmupMs > 0) await run(warmupMs);
const r = await run(durationMs);
console.log(
  JSON.stringify({
    publisher: opt.hash === "node" ? "node (hash-node)" : "node",
    concurrency,
    duration_s: Number(r.seconds.toFixed(3)),
    requests: r.requests,
    events: r.events,
    errors: r.errors,
    first_error: r.firstError ?? null,
    requests_per_s: Math.round(r.requests / r.seconds),
    events_per_s: Math.round(r.events / r.seconds),
  }),
);
