// The official aws-amplify Events client (events.connect from aws-amplify/data) against the local
// stack's Events endpoint, as a wire-format check (driven by tests/events_amplify.rs).
// Usage: node events-check.mjs NODE_MODULES_DIR ENDPOINT API_KEY
// Subscribes to /live/team-a/* (own group) and /live/team-b/* (foreign), prints one JSON line per
// thing that happens ({ready}, {refused}, {data}), and exits after the first data message.
import { createRequire } from 'node:module';
import { join } from 'node:path';

const [modules, endpoint, apiKey] = process.argv.slice(2);
const require = createRequire(join(modules, 'noop.js'));
globalThis.WebSocket = require('ws').WebSocket;
const { Amplify } = require('aws-amplify');
const { events } = require('aws-amplify/data');

Amplify.configure({
  API: { Events: { endpoint, region: 'us-east-1', defaultAuthMode: 'apiKey', apiKey } },
});
const say = (o) => console.log(JSON.stringify(o));
const own = await events.connect('/live/team-a/*');
const ownSub = own.subscribe({
  next: (data) => {
    say({ data: data.event });
    process.exit(0);
  },
  error: (e) => say({ ownError: JSON.stringify(e) }),
});
await ownSub.ready;
const foreign = await events.connect('/live/team-b/*');
const foreignSub = foreign.subscribe({
  next: (data) => say({ leaked: data.event }),
  error: () => {},
});
try {
  await foreignSub.ready;
  say({ foreignAdmitted: true });
} catch (e) {
  say({ refused: String(e?.message ?? e) });
}
say({ ready: true });
setTimeout(() => process.exit(2), 15000);
