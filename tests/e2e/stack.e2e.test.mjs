// The isolation promise held against `provisioner dev` by third-party clients, end to end
// (issue 11, "Third-party clients, end to end"): a user never receives a message addressed to
// groups they are not in, on any transport.
//
// - Stack: `provisioner dev --config stack.toml` on ephemeral 127.0.0.1 ports, a temporary state
//   directory, TLS from its own CA (lib/stack.mjs).
// - Subscribers: one process per user (lib/subscriber.mjs) with the official clients: aws-amplify
//   6.22.1's Events client (`events.connect`) and GraphQL subscription client (`generateClient`),
//   authenticated with ID tokens from `provisioner dev token`, and `mqtt` over WSS with a URL
//   presigned with the user's identity-pool credentials, after `provisioner iot grant` attached
//   the user's groups' policies.
// - Publisher: the real `groupcast publish` CLI, configured by the stack's outputs file only.
//
// Nothing is skipped: a transport the stack does not serve fails these tests.
import test from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startStack, identityCredentials, iotGrant, iotWssUrl, publish, request } from './lib/stack.mjs';
import { startUser, until } from './lib/clients.mjs';

// groupcast::group_segment of each group (docs/publishing.md): Team_B becomes x--Team-5fB.
const SEGMENT = { 'team-a': 'team-a', 'team-b': 'team-b', Team_B: 'x--Team-5fB', admins: 'admins' };
const ALL_GROUPS = Object.keys(SEGMENT);
const USERS = {
  alice: ['team-a'],
  bob: ['team-b'],
  carol: ['team-a', 'Team_B'], // two groups, one whose name needs encoding
  mallory: [], // in no group: every subscription is refused
};
const MIXED = 500;

/// Every subscription of a user: for each transport, one per own group (admitted), one to a
/// foreign group and one wildcard (both refused). `groups` is what an admitted one may carry.
function plan(user, groups, identityId) {
  const foreign = ALL_GROUPS.find((g) => !groups.includes(g) && g !== 'admins');
  const subs = [];
  let n = 0;
  const iot = (id, topic, admitted, gs) => subs.push({ id, transport: 'iot', topic, clientId: `${identityId}-${n++}`, admitted, groups: gs });
  for (const g of groups) {
    subs.push({ id: `${user}/events/${g}`, transport: 'events', channel: `/live/${SEGMENT[g]}/*`, admitted: true, groups: [g] });
    iot(`${user}/iot/${g}`, `groupcast/${SEGMENT[g]}/#`, true, [g]);
  }
  if (groups.length) subs.push({ id: `${user}/graphql/mine`, transport: 'graphql', variables: { onlyGroups: groups }, admitted: true, groups });
  else subs.push({ id: `${user}/graphql/mine`, transport: 'graphql', variables: {}, admitted: false }); // no groups: refused
  subs.push({ id: `${user}/events/foreign`, transport: 'events', channel: `/live/${SEGMENT[foreign]}/*`, admitted: false });
  subs.push({ id: `${user}/events/wildcard`, transport: 'events', channel: '/live/*', admitted: false });
  subs.push({ id: `${user}/graphql/foreign`, transport: 'graphql', variables: { onlyGroups: [foreign] }, admitted: false });
  subs.push({ id: `${user}/graphql/wildcard`, transport: 'graphql', variables: { onlyGroups: ['*'] }, admitted: false });
  iot(`${user}/iot/foreign`, `groupcast/${SEGMENT[foreign]}/#`, false);
  iot(`${user}/iot/wildcard`, 'groupcast/#', false);
  iot(`${user}/iot/root-wildcard`, '#', false);
  // Someone else's client id: the policy admits `{own identity id}` and `{own identity id}-*` only.
  if (groups.length) subs.push({ id: `${user}/iot/other-client`, transport: 'iot', topic: `groupcast/${SEGMENT[groups[0]]}/#`, clientId: 'us-east-1:00000000-0000-4000-8000-000000000000-x', admitted: false });
  return subs;
}

let stack;
const users = {};
const plans = {};
const published = []; // {id, topic, groups, data}

test.before(async () => {
  stack = await startStack();
  assert.ok(stack.amplifyOutputs, `provisioner dev wrote the frontend outputs ${stack.amplifyOutputsFile}`);
  for (const [user, groups] of Object.entries(USERS)) {
    const token = await stack.token(user, groups);
    const creds = await identityCredentials(stack, token);
    await iotGrant(stack, creds.identityId, groups);
    plans[user] = plan(user, groups, creds.identityId);
    // Two processes per user: the subscriptions the stack must admit, and those it must refuse.
    // On a refused GraphQL subscription Amplify closes its shared socket and reconnects
    // (subscriber.mjs), which must not make an admitted subscription miss messages.
    const iot = { url: iotWssUrl(stack.outputs), region: 'us-east-1', ...creds };
    const strip = (subs) => subs.map(({ admitted, groups: _g, ...s }) => s);
    const admitted = await startUser(stack, { user, token, iot, subscriptions: strip(plans[user].filter((s) => s.admitted)) });
    const refused = await startUser(stack, { user: `${user} (refused)`, token, iot, subscriptions: strip(plans[user].filter((s) => !s.admitted)) });
    users[user] = {
      status: (id) => admitted.status(id) ?? refused.status(id),
      get messages() {
        return [...admitted.messages, ...refused.messages];
      },
      stderr: () => admitted.stderr() + refused.stderr(),
      close: async () => {
        await admitted.close();
        await refused.close();
      },
    };
  }
});

test.after(async () => {
  for (const u of Object.values(users)) await u.close();
  if (stack) await stack.stop();
});

test('every transport admits each user to their own groups and refuses foreign and wildcard subscriptions', () => {
  for (const [user, subs] of Object.entries(plans)) {
    for (const s of subs) {
      const answer = users[user].status(s.id);
      const where = `${s.id} (${s.channel || s.topic || JSON.stringify(s.variables)}): ${JSON.stringify(answer)}\n${users[user].stderr().slice(-1500)}`;
      assert.equal(answer.status, s.admitted ? 'ready' : 'refused', where);
    }
  }
});

/// `n` messages to random non-empty subsets of every group (admins included: nobody here is in
/// it), on two topics, each published on every configured transport.
function mixedMessages(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    let groups = ALL_GROUPS.filter(() => Math.random() < 0.4);
    if (groups.length === 0) groups = [ALL_GROUPS[i % ALL_GROUPS.length]];
    out.push({ id: randomUUID(), topic: i % 3 === 0 ? 'ops/alerts' : 'news', groups, data: { n: i, text: `message ${i}`, quoted: '"é" \\' } });
  }
  return out;
}

test(`the groupcast CLI publishes ${MIXED} mixed messages on every transport, each (group, transport) delivered`, async () => {
  const messages = mixedMessages(MIXED);
  let next = 0;
  const failures = [];
  // Four publishes at a time: the machine has two cores shared with the stack and six subscribers.
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < messages.length) {
        const m = messages[next++];
        const { code, deliveries, stderr } = await publish(stack, m);
        const transports = new Set(deliveries.map((d) => d.transport));
        if (code !== 0 || !['events', 'graphql', 'iot'].every((t) => transports.has(t)) || deliveries.some((d) => d.outcome.status !== 'delivered' || d.message_id !== m.id)) {
          failures.push(`${m.id} ${JSON.stringify(m.groups)}: exit ${code} ${JSON.stringify(deliveries)} ${stderr}`);
        }
        published.push(m);
      }
    }),
  );
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${MIXED} publishes were not delivered on events, graphql and iot`);
});

test('every user receives exactly the messages of their groups, on every transport, and nothing leaks', async () => {
  assert.equal(published.length, MIXED, 'the publish test ran first');
  const byId = new Map(published.map((m) => [m.id, m]));
  // What each admitted subscription must receive: every message addressed to one of its groups.
  const expected = new Map();
  for (const subs of Object.values(plans)) {
    for (const s of subs) {
      if (!s.admitted) continue;
      expected.set(s.id, new Set(published.filter((m) => m.groups.some((g) => s.groups.includes(g))).map((m) => m.id)));
    }
  }
  const distinct = (user, subId) => new Set(users[user].messages.filter((o) => o.id === subId).map((o) => o.message && o.message.id));
  await until(
    () => Object.entries(plans).every(([user, subs]) => subs.every((s) => !s.admitted || distinct(user, s.id).size >= expected.get(s.id).size)),
    'every admitted subscription to receive its messages',
    { ms: 60000, detail: () => Object.entries(plans).flatMap(([u, subs]) => subs.filter((s) => s.admitted).map((s) => `${s.id}: ${distinct(u, s.id).size}/${expected.get(s.id).size}`)).join('\n') },
  );
  await new Promise((r) => setTimeout(r, 1000)); // a quiet period, so a late extra delivery still fails
  for (const [user, subs] of Object.entries(plans)) {
    const mine = USERS[user];
    for (const o of users[user].messages) {
      const s = subs.find((x) => x.id === o.id);
      const m = byId.get(o.message && o.message.id);
      assert.ok(m, `${user} received, on ${o.id}, something that was never published: ${JSON.stringify(o)}`);
      // The isolation property, on every single delivery.
      assert.ok(s.admitted, `${user} received ${m.id} on the refused subscription ${o.id}`);
      assert.ok(m.groups.some((g) => mine.includes(g)), `${user} (${JSON.stringify(mine)}) received ${m.id} addressed to ${JSON.stringify(m.groups)}`);
      assert.ok(m.groups.some((g) => s.groups.includes(g)), `${o.id} received ${m.id} addressed to ${JSON.stringify(m.groups)}`);
      // The envelope arrives intact.
      assert.deepEqual({ topic: o.message.topic, data: o.message.data }, { topic: m.topic, data: m.data }, `${o.id}: ${m.id} intact`);
      if (s.transport === 'iot') {
        const [, seg] = o.topic.split('/');
        assert.ok(s.groups.some((g) => SEGMENT[g] === seg) && m.groups.some((g) => SEGMENT[g] === seg), `${o.id}: ${m.id} arrived on ${o.topic}`);
        assert.equal(o.topic, `groupcast/${seg}/${m.topic}`);
      }
    }
    for (const s of subs.filter((x) => x.admitted)) {
      assert.deepEqual([...distinct(user, s.id)].sort(), [...expected.get(s.id)].sort(), `${s.id} received exactly the messages of ${JSON.stringify(s.groups)}`);
    }
  }
  assert.equal(users.mallory.messages.length, 0, 'mallory, in no group, received nothing');
});

test('a subscriber cannot publish: a member of team-a posting to /live/team-a is refused and nothing is delivered', async () => {
  const token = await stack.token('carol', USERS.carol);
  const forged = randomUUID();
  const before = users.alice.messages.length;
  const body = JSON.stringify({ channel: '/live/team-a/news', events: [JSON.stringify({ id: forged, topic: 'news', data: {}, groups: ['team-a'] })] });
  const res = await request(stack, `https://${stack.outputs.events.httpHost}/event`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: token }, body });
  assert.equal(res.status, 401, `a Cognito user publishing gets 401: ${res.text}`);
  assert.equal(JSON.parse(res.text).errors[0].errorType, 'UnauthorizedException');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(users.alice.messages.length, before, 'nothing reached team-a');
});

test('a token whose payload was altered (alice claiming team-b) is refused by every transport', async () => {
  const token = await stack.token('alice', ['team-a']);
  const [h, p, sig] = token.split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  claims['cognito:groups'] = ['team-b'];
  const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`;
  await assert.rejects(identityCredentials(stack, forged), /Cognito identity/, 'no identity-pool credentials for a forged token');
  const u = await startUser(stack, {
    user: 'forger',
    token: forged,
    iot: { url: iotWssUrl(stack.outputs), region: 'us-east-1', accessKeyId: 'none', secretAccessKey: 'none' },
    subscriptions: [
      { id: 'forger/events', transport: 'events', channel: '/live/team-b/*' },
      { id: 'forger/graphql', transport: 'graphql', variables: { onlyGroups: ['team-b'] } },
    ],
  });
  try {
    assert.equal(u.status('forger/events').status, 'refused', JSON.stringify(u.status('forger/events')));
    assert.equal(u.status('forger/graphql').status, 'refused', JSON.stringify(u.status('forger/graphql')));
  } finally {
    await u.close();
  }
});

test('a publisher with a wrong secret key is refused on every transport and nothing is delivered', async () => {
  const real = stack.publisherCredentials;
  stack.publisherCredentials = () => ({ ...real(), secretAccessKey: 'wrong-secret-key-0000000000000000000000' });
  const before = Object.values(users).reduce((n, u) => n + u.messages.length, 0);
  try {
    const { code, deliveries } = await publish(stack, { id: randomUUID(), topic: 'news', groups: ['team-a'], data: { forged: true } });
    assert.equal(code, 2, `exit 2: not delivered ${JSON.stringify(deliveries)}`);
    assert.ok(deliveries.length >= 3 && deliveries.every((d) => d.outcome.status === 'failed'), JSON.stringify(deliveries));
  } finally {
    stack.publisherCredentials = real;
  }
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(Object.values(users).reduce((n, u) => n + u.messages.length, 0), before, 'no subscriber received anything');
});
