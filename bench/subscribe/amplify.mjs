// The baseline of the subscriber benchmark: the official aws-amplify Events client
// (`events.connect` from aws-amplify/data), configured with an API key against the local load
// generator, holding one subscription per group channel `/live/g{k}/*` on its one shared
// WebSocket, counting `--messages` deliveries. Prints one JSON line measured as the groupcast
// subscriber measures itself (bench/subscribe/src/bin/subscriber.rs): process CPU and wall time
// from "every subscription ready" to the last message, and the peak RSS (VmHWM).
//
// Usage: node amplify.mjs --endpoint https://127.0.0.1:PORT/event --groups 1000 --messages 300000
// Amplify derives the realtime URL itself: for a custom domain it appends `/realtime` and always
// uses wss:// (appsyncUrl.mjs), so the load generator serves TLS; NODE_EXTRA_CA_CERTS trusts it.
// Node 20 has no global WebSocket: `ws`, the WebSocket client for Node, stands in for it.
import { readFileSync } from 'node:fs';
import { WebSocket } from 'ws';

globalThis.WebSocket = WebSocket;
const { Amplify } = await import('aws-amplify');
const { events } = await import('aws-amplify/data');

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, v, i, all) => (i % 2 === 0 ? [...pairs, [v.replace(/^--/, ''), all[i + 1]]] : pairs), []),
);
const groups = Number(args.groups ?? 1000);
const messages = Number(args.messages ?? 300000);

Amplify.configure({
  API: { Events: { endpoint: args.endpoint, region: 'us-east-1', defaultAuthMode: 'apiKey', apiKey: 'da2-bench' } },
});

const peakRssKib = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);

let received = 0;
let checksum = 0;
let first = 0;
let cpu0 = null;
let done;
const finished = new Promise((resolve) => (done = resolve));
const t0 = performance.now();
const readies = [];
for (let k = 0; k < groups; k++) {
  const channel = await events.connect(`/live/g${k}/*`);
  const sub = channel.subscribe({
    next: (data) => {
      if (received === 0) first = performance.now();
      checksum += data.event.data.n;
      received += 1;
      if (received === messages) done();
    },
    error: (e) => {
      console.error('subscription error', e);
      process.exit(1);
    },
  });
  readies.push(sub.ready);
}
await Promise.all(readies);
const subscribeS = (performance.now() - t0) / 1000;
cpu0 = process.cpuUsage();
await finished;
const wallS = (performance.now() - first) / 1000;
const cpu = process.cpuUsage(cpu0);
console.log(
  JSON.stringify({
    client: 'amplify',
    messages: received,
    checksum,
    subscribe_s: subscribeS,
    wall_s: wallS,
    cpu_s: (cpu.user + cpu.system) / 1e6,
    peak_rss_kib: peakRssKib(),
  }),
);
process.exit(0);
