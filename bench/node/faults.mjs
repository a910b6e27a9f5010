// The fault scenario's baseline (see BENCHMARKS.md, "Under injected faults"): a Node publisher
// written the way AWS documents publishing to AppSync Events over HTTP, with no retries.
//
// For each group's channel `/live/{group}/orders`, the messages' envelopes `{id,topic,data,groups}`
// go in requests of at most 5 events, each request signed with SigV4 exactly as publish.mjs does
// (@smithy/signature-v4 + @aws-crypto/sha256-js, then the global fetch), at most --concurrency
// requests in flight. A request counts its `successful` entries as delivered; an HTTP error, a
// network error or a `failed` entry is reported failed. Prints one JSON line: the counts, the wall
// time, and the (channel, id) of every event it reported delivered, for the sink to check.
//
// Usage: node faults.mjs --url http://127.0.0.1:PORT/event [--messages 1000] [--groups g0,g1]
//          [--concurrency 32]

import { parseArgs } from "node:util";
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";

const { values: opt } = parseArgs({
  options: {
    url: { type: "string" },
    messages: { type: "string", default: "1000" },
    groups: { type: "string", default: "g0,g1,g2,g3,g4" },
    concurrency: { type: "string", default: "32" },
    topic: { type: "string", default: "orders" },
    namespace: { type: "string", default: "live" },
  },
});
if (!opt.url) {
  console.error("--url is required, e.g. --url http://127.0.0.1:8080/event");
  process.exit(2);
}
const endpoint = new URL(opt.url);
const groups = opt.groups.split(",");
const signer = new SignatureV4({
  credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" },
  region: "us-east-1",
  service: "appsync",
  sha256: Sha256,
});

// Every (channel, [ids], [events]) request, 5 events at most, in message order per channel.
// Fixed ids, the same as groupcast-bench's: the same bytes meet the same seeded faults.
const messages = Array.from({ length: Number(opt.messages) }, (_, n) => ({
  id: `13130000-0000-4000-8000-${String(n).padStart(12, "0")}`, topic: opt.topic, data: { n }, groups,
}));
const requests = [];
for (const group of groups) {
  const channel = `/${opt.namespace}/${group}/${opt.topic}`;
  for (let i = 0; i < messages.length; i += 5) {
    const batch = messages.slice(i, i + 5);
    requests.push({ channel, ids: batch.map((m) => m.id), events: batch.map((m) => JSON.stringify(m)) });
  }
}

const delivered = [];
let failed = 0;
async function send({ channel, ids, events }) {
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
  try {
    const signed = await signer.sign(request);
    const response = await fetch(endpoint, { method: "POST", headers: signed.headers, body: signed.body });
    const result = await response.json();
    if (response.status !== 200 || !Array.isArray(result.successful)) {
      failed += events.length;
      return;
    }
    for (const s of result.successful) delivered.push([channel, ids[s.index]]);
    failed += events.length - result.successful.length;
  } catch {
    failed += events.length;
  }
}

const start = performance.now();
let next = 0;
const worker = async () => {
  while (next < requests.length) await send(requests[next++]);
};
await Promise.all(Array.from({ length: Number(opt.concurrency) }, worker));
const wall = (performance.now() - start) / 1000;
const events = messages.length * groups.length;
console.log(JSON.stringify({
  publisher: "node (as AWS documents it, no retries)",
  events,
  delivered: delivered.length,
  reported_failed: failed,
  neither_or_both: events - delivered.length - failed,
  wall_s: Math.round(wall * 1000) / 1000,
  delivered_ids: delivered,
}));
