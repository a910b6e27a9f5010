// The Node.js baseline of groupcast's publisher Lambda, for the cold-start benchmark
// (bench/lambda/run.sh). It does the same publish as the Rust function: the message envelope
// {id, topic, data, groups} posted with Amplify's `events.post` (AppSync Events over HTTP, API key)
// to /{namespace}/{group}/{topic} for each group.
//
// Runtime loop: a minimal client of the Lambda Runtime API (GET .../invocation/next, POST
// .../response or .../error) over Node's global fetch, as the managed Node.js runtime does.
// `aws-lambda-ric` is not used: it builds a native addon and is not what the managed runtime
// loads.
import { randomUUID } from 'node:crypto';
import { Amplify } from 'aws-amplify';
import { events } from 'aws-amplify/data';

const namespace = process.env.GROUPCAST_EVENTS_NAMESPACE;
Amplify.configure({
  API: {
    Events: {
      endpoint: `${process.env.GROUPCAST_EVENTS_URL}/event`,
      region: process.env.AWS_REGION,
      defaultAuthMode: 'apiKey',
      apiKey: process.env.GROUPCAST_API_KEY,
    },
  },
});

async function handler(event) {
  const id = randomUUID();
  const envelope = { id, topic: event.topic, data: event.data ?? null, groups: event.groups };
  const results = await Promise.all(
    event.groups.map(async (group) => {
      const failed = await events.post(`/${namespace}/${group}/${event.topic}`, envelope);
      return { group, status: failed ? 'failed' : 'delivered' };
    }),
  );
  return { complete: results.every((r) => r.status === 'delivered'), messages: [{ id, topic: event.topic, transports: { events: results } }] };
}

const api = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime`;
for (;;) {
  const next = await fetch(`${api}/invocation/next`);
  const requestId = next.headers.get('lambda-runtime-aws-request-id');
  const event = await next.json();
  try {
    const body = JSON.stringify(await handler(event));
    await fetch(`${api}/invocation/${requestId}/response`, { method: 'POST', body });
  } catch (e) {
    const body = JSON.stringify({ errorType: e.name, errorMessage: e.message });
    await fetch(`${api}/invocation/${requestId}/error`, { method: 'POST', body });
  }
}
