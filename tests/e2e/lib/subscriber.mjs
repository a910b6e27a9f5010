// One end user, in their own process (as a real app is): the official aws-amplify clients (Events
// `events.connect`, GraphQL `generateClient`) configured from the stack's amplify_outputs.json with
// the user's ID token, and `mqtt` over WSS with a SigV4-presigned URL signed with the user's
// identity-pool credentials. Run by clients.mjs with one JSON argument:
//   {amplifyOutputs, token, iot: {url, region, identityId, accessKeyId, secretAccessKey, sessionToken},
//    subscriptions: [{id, transport: 'events', channel} | {id, transport: 'graphql', variables}
//                    | {id, transport: 'iot', topic, clientId}
//                    | {id, transport: 'events-epochs', namespace, group, topic, authMode?}]}
// and prints JSON lines: {id, status: 'ready'} | {id, status: 'refused', error} | {id, message}.
// 'events-epochs' is a time-sliced namespace's logical channel kept subscribed by @groupcast/channels'
// keepSubscribed (clients/js) with the period from amplify_outputs.json
// (`custom.groupcast.events.namespaces[].epochSeconds`), as docs/subscribing.md shows; it also prints
// {id, subscribed: channel} and {id, unsubscribed: channel} at each rotation, its messages carry
// `channel` (the epoch channel they came on), and `ready` comes once the first window is in place.
// With authMode 'lambda' the token goes to the Lambda authorizer (Amplify's `authToken`); one process
// holds one Events connection, so a process uses one auth mode for its Events subscriptions.
// NODE_EXTRA_CA_CERTS (set by the parent) makes Node trust the stack's CA. It exits when stdin ends.
import { readFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import mqtt from 'mqtt';
import { presignIot } from './presign.mjs';
import { keepSubscribed, epochWindow } from '../../../clients/js/index.js';

// Node 20 has no global WebSocket; Amplify's realtime providers use the global one.
globalThis.WebSocket = WebSocket;
const { Amplify } = await import('aws-amplify');
const { events, generateClient } = await import('aws-amplify/data');
const { Hub } = await import('aws-amplify/utils');
const { decodeJWT } = await import('@aws-amplify/core');

const spec = JSON.parse(process.argv[2]);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const errorText = (e) => (e && (e.errors ? JSON.stringify(e.errors) : e.message)) || String(e);

const outputs = JSON.parse(readFileSync(spec.amplifyOutputs, 'utf8'));
const jwt = decodeJWT(spec.token);
// The token provider hands Amplify the locally minted token (no Cognito sign-in: the issuer is
// local); the credentials provider answers nothing, so Amplify never calls the real Cognito
// identity service for an identity pool the outputs may name.
Amplify.configure(outputs, {
  Auth: {
    tokenProvider: { getTokens: async () => ({ idToken: jwt, accessToken: jwt }) },
    credentialsProvider: { getCredentialsAndIdentityId: async () => undefined, clearCredentialsAndIdentityId: () => {} },
  },
});

// GraphQL readiness: Amplify announces each start_ack on the Hub's `api` channel with the
// subscription's variables (api-graphql AWSWebSocketProvider, CONTROL_MSG.SUBSCRIPTION_ACK).
const graphqlPending = new Map();
Hub.listen('api', ({ payload }) => {
  if (payload.event !== 'Subscription ack') return;
  const key = JSON.stringify(payload.data && payload.data.variables);
  const id = graphqlPending.get(key);
  if (id) {
    graphqlPending.delete(key);
    say({ id, status: 'ready' });
  }
});

const SUBSCRIPTION = `subscription Subscribe($prefix: String, $onlyGroups: [String!]) {
  subscribe(prefix: $prefix, onlyGroups: $onlyGroups) { topic data groups uuid }
}`;

const clients = [];
for (const sub of spec.subscriptions) {
  if (sub.transport === 'events') {
    try {
      const channel = await events.connect(sub.channel);
      const s = channel.subscribe({
        next: (data) => say({ id: sub.id, message: data.event }),
        error: (e) => say({ id: sub.id, status: 'refused', error: errorText(e) }),
      });
      s.ready.then(() => say({ id: sub.id, status: 'ready' })).catch((e) => say({ id: sub.id, status: 'refused', error: errorText(e) }));
      clients.push(channel);
    } catch (e) {
      say({ id: sub.id, status: 'refused', error: `connect: ${errorText(e)}` });
    }
  } else if (sub.transport === 'events-epochs') {
    clients.push({ close: keepEpochs(sub) });
  } else if (sub.transport === 'graphql') {
    // One GraphQL subscription at a time, each answered before the next: on an `Unauthorized`
    // subscription error Amplify closes the shared WebSocket to reconnect with fresh tokens
    // (api-graphql AWSWebSocketProvider, isAuthError), which would disturb a sibling subscribing
    // at that moment. After a refusal, a pause lets that close finish.
    await new Promise((answered) => {
      graphqlPending.set(JSON.stringify(sub.variables), sub.id);
      const client = generateClient();
      const off = Hub.listen('api', ({ payload }) => {
        if (payload.event === 'Subscription ack' && JSON.stringify(payload.data && payload.data.variables) === JSON.stringify(sub.variables)) {
          off();
          answered();
        }
      });
      client.graphql({ query: SUBSCRIPTION, variables: sub.variables, authMode: 'userPool' }).subscribe({
        next: ({ data }) => {
          const m = data.subscribe;
          say({ id: sub.id, message: { id: m.uuid, topic: m.topic, data: typeof m.data === 'string' ? JSON.parse(m.data) : m.data, groups: m.groups } });
        },
        error: (e) => {
          graphqlPending.delete(JSON.stringify(sub.variables));
          say({ id: sub.id, status: 'refused', error: errorText(e) });
          off();
          setTimeout(answered, 500);
        },
      });
    });
  } else if (sub.transport === 'iot') {
    // One MQTT connection per subscription: AWS IoT may close a connection whose subscribe the
    // policy denies, and that must not hide what the other subscriptions receive.
    try {
      const url = await presignIot(spec.iot);
      const client = mqtt.connect(url, { clientId: sub.clientId, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 8000, clean: true });
      clients.push(client);
      let settled = false;
      const refuse = (why) => {
        if (!settled) {
          settled = true;
          say({ id: sub.id, status: 'refused', error: why });
        }
      };
      client.on('error', (e) => refuse(`mqtt: ${e.message}`));
      client.on('close', () => refuse('mqtt: connection closed before SUBACK'));
      client.on('message', (topic, payload) => {
        let message;
        try {
          message = JSON.parse(payload.toString('utf8'));
        } catch {
          message = { unparsable: payload.toString('utf8') };
        }
        say({ id: sub.id, message, topic });
      });
      client.on('connect', () => {
        client.subscribe(sub.topic, { qos: 1 }, (err, granted) => {
          if (settled) return;
          if (err) return refuse(`SUBACK: ${err.message}`);
          // SUBACK 0x80 is the refusal (MQTT 3.1.1 §3.9.3).
          if (!granted || granted.some((g) => g.qos === 128)) return refuse(`SUBACK: ${JSON.stringify(granted)}`);
          settled = true;
          say({ id: sub.id, status: 'ready' });
        });
      });
    } catch (e) {
      say({ id: sub.id, status: 'refused', error: `presign/connect: ${errorText(e)}` });
    }
  } else {
    say({ id: sub.id, status: 'refused', error: `unknown transport ${sub.transport}` });
  }
}

/// One logical channel of a time-sliced namespace, rotated by keepSubscribed over Amplify's Events
/// client. Returns keepSubscribed's stop().
function keepEpochs(sub) {
  const ns = ((outputs.custom && outputs.custom.groupcast && outputs.custom.groupcast.events && outputs.custom.groupcast.events.namespaces) || []).find((n) => n.name === sub.namespace);
  const epochSeconds = ns && ns.epochSeconds;
  if (!epochSeconds) {
    say({ id: sub.id, status: 'refused', error: `amplify_outputs.json names no epochSeconds for namespace ${sub.namespace}` });
    return () => {};
  }
  // 'ready' once every channel of the first window is subscribed.
  let pending = epochWindow(Date.now(), epochSeconds).length;
  let stop = null;
  let ended = false;
  const refuse = (error, channel) => {
    if (ended) return;
    ended = true;
    say({ id: sub.id, status: 'refused', error: errorText(error), channel });
  };
  stop = keepSubscribed({
    namespace: sub.namespace,
    group: sub.group,
    topic: sub.topic,
    epochSeconds,
    subscribe: async (channel) => {
      const auth = sub.authMode === 'lambda' ? { authMode: 'lambda', authToken: spec.token } : undefined;
      const ch = await events.connect(channel, auth);
      let live = false;
      await new Promise((resolve, reject) => {
        const s = ch.subscribe({
          next: (data) => say({ id: sub.id, message: data.event, channel }),
          error: (e) => {
            // Before ready this is the refusal keepSubscribed reports; after, the rotation ends here.
            if (!live) return reject(e);
            refuse(e, channel);
            if (stop) stop();
          },
        }, auth);
        s.ready.then(() => ((live = true), resolve()), reject);
      });
      say({ id: sub.id, subscribed: channel });
      if (--pending === 0) say({ id: sub.id, status: 'ready' });
      return () => {
        say({ id: sub.id, unsubscribed: channel });
        ch.close();
      };
    },
    onError: refuse,
  });
  return stop;
}

process.stdin.resume();
process.stdin.on('end', () => {
  Promise.all(clients.map((c) => (c.close || c.end).call(c))).finally(() => process.exit(0));
});
