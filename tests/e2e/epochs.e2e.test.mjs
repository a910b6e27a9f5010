// Time-sliced Events namespaces (issue 14, EPOCH-CONTRACT.md) held against `provisioner dev` by
// third-party clients, end to end: channels `/{ns}/{group}/t{N}/{topic}` with N = floor(unix s / P),
// the rendered handler admitting only epochs N-1..N+1 of the server's clock, the real publisher
// publishing to t{N}, and subscribers re-subscribing each epoch.
//
// - Stack: `provisioner dev` on a config with one namespace `fast` of epoch_seconds = 2 (the
//   shortest allowed, so that several epoch boundaries pass within seconds).
// - Subscribers: one process per user (lib/subscriber.mjs, transport 'events-epochs'): aws-amplify's
//   Events client (`events.connect`) driven by @groupcast/channels' `keepSubscribed` (clients/js),
//   the period read from amplify_outputs.json, as docs/subscribing.md shows.
// - Revocation: dave and erin subscribe through the real Lambda authorizer (`groups_source =
//   "user-pool"`, Amplify's authMode 'lambda'); an administrator removes dave from the group
//   (AdminRemoveUserFromGroup on the stack's AWS port); his next epoch is refused, and nothing of
//   the group reaches him after 2 P + result_ttl_seconds, while erin keeps receiving.
// - Publisher: the real `groupcast publish` CLI, configured by the stack's outputs file only (which
//   carries `events.namespaces[].epochSeconds`), one numbered message every ~200 ms for ~7 s.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { startStack, publish, removeFromGroup, siblingBin } from './lib/stack.mjs';
import { startUser, until } from './lib/clients.mjs';

const P = 2; // epoch_seconds of the `fast` namespace
const TTL = 1; // the Lambda authorizer's result_ttl_seconds
const POOL = 'us-east-1_E2eTest01';
const RUN_MS = 7500; // publishing time: at least 3 epoch boundaries (and 7 window changes)
const EVERY_MS = 200;

// Events only: the epochs are an Events matter; the rest of the stack is stack.e2e's. Subscribers
// come by Cognito (alice, bob) or by the real Lambda authorizer reading CURRENT groups from the
// stack's user pool (dave, erin: the revocation test).
/// The stack's config: `modes` are the Events API's subscribe auth modes. A Cognito ID token is taken
/// as a user-pool token wherever AMAZON_COGNITO_USER_POOLS is allowed (the stack tries it before the
/// Lambda authorizer), so the revocation test, whose subscribers must go through the authorizer, runs
/// its own stack with AWS_LAMBDA alone.
const config = (modes) => `[project]
name = "e2e-epochs"
region = "us-east-1"
account_id = "123456789012"

[events]
name = "e2e-epochs-events"
connection_auth_modes = ${JSON.stringify([...modes, 'AWS_IAM'])}
default_publish_auth_modes = ["AWS_IAM"]
default_subscribe_auth_modes = ${JSON.stringify(modes)}

[events.auth.cognito]
user_pool_id = "${POOL}"
region = "us-east-1"

[events.auth.iam]

[events.auth.lambda]
authorizer_arn = "arn:aws:lambda:us-east-1:123456789012:function:e2e-epochs-authorizer"
result_ttl_seconds = ${TTL}
groups_source = "user-pool"

[[events.namespaces]]
name = "fast"
epoch_seconds = ${P}
`;

/// Starts `provisioner dev` on config(modes) in a fresh directory; `stop()` also removes the directory.
async function startEpochStack(modes) {
  const dir = mkdtempSync(path.join(tmpdir(), 'groupcast-e2e-epochs-'));
  const file = path.join(dir, 'groupcast.toml');
  writeFileSync(file, config(modes));
  const s = await startStack({ config: file, args: ['--authorizer-bin', siblingBin('authorizer')] });
  const stop = s.stop;
  s.stop = async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return s;
}

const USERS = { alice: 'team-a', bob: 'team-b' };
const epochNow = () => Math.floor(Date.now() / 1000 / P);

let stack;
const users = {};
const published = []; // {id, n, groups}

test.before(async () => {
  stack = await startEpochStack(['AMAZON_COGNITO_USER_POOLS']);
  const ns = stack.outputs.events.namespaces.find((n) => n.name === 'fast');
  assert.equal(ns && ns.epochSeconds, P, `the outputs file carries the namespace's period: ${JSON.stringify(stack.outputs.events.namespaces)}`);
  for (const [user, group] of Object.entries(USERS)) {
    const token = await stack.token(user, [group]);
    users[user] = await startUser(stack, {
      user,
      token,
      subscriptions: [{ id: `${user}/own`, transport: 'events-epochs', namespace: 'fast', group, topic: '*' }],
    });
  }
});

test.after(async () => {
  for (const u of Object.values(users)) await u.close();
  if (stack) await stack.stop();
});

test('keepSubscribed over the official Events client is admitted to its own group in a time-sliced namespace', () => {
  for (const user of Object.keys(USERS)) {
    const s = users[user].status(`${user}/own`);
    assert.equal(s && s.status, 'ready', `${user}: ${JSON.stringify(s)}\n${users[user].stderr().slice(-1500)}`);
    const subscribed = users[user].lines.filter((l) => l.subscribed).map((l) => l.subscribed);
    assert.ok(subscribed.every((c) => /^\/fast\/team-[ab]\/t\d+\/\*$/.test(c)), `${user} subscribed to epoch channels: ${subscribed}`);
  }
});

test('the groupcast CLI publishes a numbered message every 200 ms across at least three epoch boundaries', async () => {
  const firstEpoch = epochNow();
  const end = Date.now() + RUN_MS;
  const failures = [];
  const targets = [['team-a'], ['team-b'], ['team-a', 'team-b']];
  for (let n = 0; Date.now() < end; n++) {
    const started = Date.now();
    const m = { id: randomUUID(), n, topic: 'news', groups: targets[n % targets.length] };
    const { code, deliveries, stderr } = await publish(stack, { ...m, data: { n }, transports: ['events'] });
    if (code !== 0 || deliveries.length === 0 || deliveries.some((d) => d.outcome.status !== 'delivered')) failures.push(`#${n}: exit ${code} ${JSON.stringify(deliveries)} ${stderr}`);
    published.push(m);
    await new Promise((r) => setTimeout(r, Math.max(0, EVERY_MS - (Date.now() - started))));
  }
  assert.deepEqual(failures.slice(0, 3), [], `${failures.length} of ${published.length} publishes failed`);
  assert.ok(epochNow() - firstEpoch >= 3, `publishing spanned epochs ${firstEpoch}..${epochNow()}: at least 3 boundaries`);
});

test('each subscriber receives every message of its group exactly once across the boundaries, and nothing of another group', async () => {
  assert.ok(published.length >= 20, `the publish test ran first (${published.length} messages)`);
  const byId = new Map(published.map((m) => [m.id, m]));
  const mine = (user) => published.filter((m) => m.groups.includes(USERS[user]));
  const got = (user) => users[user].messages.filter((o) => o.id === `${user}/own`);
  await until(() => Object.keys(USERS).every((u) => new Set(got(u).map((o) => o.message.id)).size >= mine(u).length), 'every message of each group to arrive', {
    detail: () => Object.keys(USERS).map((u) => `${u}: ${new Set(got(u).map((o) => o.message.id)).size}/${mine(u).length}`).join('\n'),
  });
  await new Promise((r) => setTimeout(r, 1000)); // a quiet period, so a late duplicate still fails
  for (const user of Object.keys(USERS)) {
    const group = USERS[user];
    for (const o of users[user].messages) {
      const m = byId.get(o.message && o.message.id);
      assert.ok(m, `${user} received something never published: ${JSON.stringify(o)}`);
      assert.ok(m.groups.includes(group), `${user} (${group}) received #${m.n} addressed to ${JSON.stringify(m.groups)}`);
      assert.match(o.channel, new RegExp(`^/fast/${group}/t\\d+/\\*$`), `${user} received #${m.n} on an epoch channel of ${group}`);
      assert.deepEqual(o.message.data, { n: m.n }, `#${m.n} intact`);
    }
    const counts = new Map();
    for (const o of got(user)) counts.set(o.message.id, (counts.get(o.message.id) || 0) + 1);
    const twice = [...counts].filter(([, c]) => c > 1).map(([id]) => byId.get(id).n);
    assert.deepEqual(twice, [], `${user} received these messages more than once`);
    const missing = mine(user).filter((m) => !counts.has(m.id)).map((m) => m.n);
    assert.deepEqual(missing, [], `${user} missed these messages`);
    // The rotation really happened: epoch channels were opened and closed while publishing.
    const closed = users[user].lines.filter((l) => l.unsubscribed).length;
    assert.ok(closed >= 3, `${user}'s keepSubscribed closed ${closed} old epochs (at least 3 expected)`);
    const epochs = new Set(got(user).map((o) => o.channel));
    assert.ok(epochs.size >= 4, `${user} received on ${epochs.size} epoch channels: ${[...epochs]}`);
  }
});

test("the handler refuses a foreign group's epoch channel, a channel without an epoch, and an epoch far from the server's clock", async () => {
  const token = await stack.token('mallory', ['team-a']);
  const n = epochNow();
  const u = await startUser(stack, {
    user: 'mallory',
    token,
    subscriptions: [
      { id: 'foreign/kept', transport: 'events-epochs', namespace: 'fast', group: 'team-b', topic: '*' },
      { id: 'foreign/current', transport: 'events', channel: `/fast/team-b/t${n}/*` },
      { id: 'own/no-epoch', transport: 'events', channel: '/fast/team-a/*' },
      { id: 'own/no-epoch-topic', transport: 'events', channel: '/fast/team-a/news' },
      { id: 'own/far-epoch', transport: 'events', channel: `/fast/team-a/t${n + 5}/*` },
      { id: 'own/past-epoch', transport: 'events', channel: `/fast/team-a/t${n - 5}/*` },
      // The control: the same user, their own group, the current epoch, is admitted.
      { id: 'own/current', transport: 'events', channel: `/fast/team-a/t${n}/*` },
    ],
  });
  try {
    for (const id of ['foreign/kept', 'foreign/current', 'own/no-epoch', 'own/no-epoch-topic', 'own/far-epoch', 'own/past-epoch']) {
      assert.equal(u.status(id).status, 'refused', `${id}: ${JSON.stringify(u.status(id))}`);
    }
    assert.equal(u.status('own/current').status, 'ready', `own/current: ${JSON.stringify(u.status('own/current'))}\n${u.stderr().slice(-1500)}`);
    // keepSubscribed's rotation ended at the refusal: it opened nothing afterwards.
    assert.deepEqual(u.lines.filter((l) => l.id === 'foreign/kept' && l.subscribed), [], 'no foreign epoch channel was ever admitted');
  } finally {
    await u.close();
  }
});

test('a member removed from the group stops receiving within 2 epochs + the authorizer TTL, while a fellow member keeps receiving', async () => {
  const group = 'team-c';
  const members = {};
  const stack = await startEpochStack(['AWS_LAMBDA']);
  for (const user of ['dave', 'erin']) {
    const token = await stack.token(user, [group]);
    members[user] = await startUser(stack, {
      user,
      token,
      subscriptions: [{ id: `${user}/own`, transport: 'events-epochs', namespace: 'fast', group, topic: '*', authMode: 'lambda' }],
    });
  }
  const sent = []; // {id, n, at}
  const send = async (until) => {
    while (Date.now() < until) {
      const started = Date.now();
      const m = { id: randomUUID(), n: sent.length, at: started };
      const { code, deliveries, stderr } = await publish(stack, { id: m.id, topic: 'news', groups: [group], data: { n: m.n }, transports: ['events'] });
      assert.ok(code === 0 && deliveries.every((d) => d.outcome.status === 'delivered'), `#${m.n}: exit ${code} ${JSON.stringify(deliveries)} ${stderr}`);
      sent.push(m);
      await new Promise((r) => setTimeout(r, Math.max(0, EVERY_MS - (Date.now() - started))));
    }
  };
  const ids = (user) => members[user].messages.filter((o) => o.id === `${user}/own`).map((o) => o.message.id);
  try {
    for (const user of ['dave', 'erin']) {
      const s = members[user].status(`${user}/own`);
      assert.equal(s && s.status, 'ready', `${user} subscribed through the Lambda authorizer: ${JSON.stringify(s)}\n${members[user].stderr().slice(-1500)}`);
    }
    // Both members receive before the removal (so the test cannot pass by dave receiving nothing at all).
    await send(Date.now() + 1500);
    await until(() => ids('dave').length >= sent.length && ids('erin').length >= sent.length, 'both members to receive the messages before the removal', {
      detail: () => `dave ${ids('dave').length}, erin ${ids('erin').length} of ${sent.length}`,
    });
    await removeFromGroup(stack, { userPoolId: POOL, user: 'dave', group });
    const removedAt = Date.now();
    const bound = removedAt + 2 * P * 1000 + TTL * 1000;
    await send(bound + 2500);
    await until(() => ids('erin').length >= sent.length, 'erin to receive every message', { detail: () => `erin ${ids('erin').length} of ${sent.length}` });
    await new Promise((r) => setTimeout(r, 1000)); // a quiet period, so a late delivery still fails
    // erin: every message once.
    assert.deepEqual([...ids('erin')].sort(), sent.map((m) => m.id).sort(), 'erin received every message of the group exactly once');
    // dave: his rotation ended with a refusal after the removal, and nothing sent after the bound reached him.
    const refusal = members.dave.lines.find((l) => l.status === 'refused');
    assert.ok(refusal && refusal.at >= removedAt, `dave's keepSubscribed ended with a refusal after the removal: ${JSON.stringify(members.dave.lines.filter((l) => !l.message))}`);
    assert.ok(refusal.at <= bound + 1000, `dave's refusal came ${refusal.at - removedAt} ms after the removal (bound ${bound - removedAt} ms)`);
    const late = sent.filter((m) => m.at > bound && ids('dave').includes(m.id)).map((m) => m.n);
    assert.deepEqual(late, [], `dave received these messages sent more than 2 P + TTL after his removal`);
    assert.ok(sent.some((m) => m.at > bound), 'messages were sent after the bound');
    assert.equal(new Set(ids('dave')).size, ids('dave').length, 'dave received nothing twice');
  } finally {
    for (const u of Object.values(members)) await u.close();
    await stack.stop();
  }
});
