'use strict';
// End to end: "a user never receives a message addressed to groups they are not in", over the wire.
// The REAL publish library (functions/groupcast/examples/publish.rs, configured by GROUPCAST_* only)
// publishes over HTTP to a local AppSync Events emulator (./events-emulator.mjs) that runs the REAL
// Events handler rendered by `provisioner render` from ./e2e.toml, and fans events out to real
// WebSocket subscribers speaking AppSync's realtime protocol.
//
// Trust the emulator places in callers (see its header): Cognito JWTs here are UNSIGNED test tokens the
// emulator decodes without verifying (verification is tested in functions/groupcast-auth); the API-key
// publisher stands in for the IAM publisher (the emulator gives it a `userArn`; SigV4 is not checked).
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const { execFile, execFileSync } = require('node:child_process');
const WebSocket = require('ws');

const REPO = path.resolve(__dirname, '..', '..');
const API_KEY = 'da2-e2etestpublisherkey';
const STEP_MS = 5000; // bound on every wait for the wire

// Users. Cognito users carry `cognito:groups`; dave and nobody come through the Lambda authorizer.
const USERS = {
  alice: { auth: 'cognito', groups: ['team-a'] },
  bob: { auth: 'cognito', groups: ['team-b'] },
  carol: { auth: 'cognito', groups: ['team-a', 'Team_B'] },
  mallory: { auth: 'cognito', groups: null },
  eve: { auth: 'cognito', groups: ['team-b'] },
  dave: { auth: 'lambda', groups: ['admins'] },
  nobody: { auth: 'lambda', groups: undefined }, // the authorizer admits the token but gives no groups
};
// The Lambda authorizer: handlerContext as groupcast's authorizer writes it (templates/README.md).
const LAMBDA_TOKENS = {
  'opaque-token-dave': { isAuthorized: true, handlerContext: { sub: 'dave', groups: JSON.stringify(['admins']) } },
  'opaque-token-nobody': { isAuthorized: true, handlerContext: { sub: 'nobody' } },
};

// [user, subscription id, channel, admitted?]
const SUBSCRIPTIONS = [
  ['alice', 'alice-team-a', '/live/team-a/*', true],
  ['alice', 'alice-team-b', '/live/team-b/*', false],
  ['alice', 'alice-all', '/live/*', false],
  ['alice', 'alice-ns', '/live', false],
  ['bob', 'bob-team-b', '/live/team-b/*', true],
  ['bob', 'bob-team-a', '/live/team-a/*', false],
  ['bob', 'bob-Team_B', '/live/x--Team-5fB/*', false], // team-b is not Team_B
  ['carol', 'carol-team-a', '/live/team-a/*', true],
  ['carol', 'carol-Team_B', '/live/x--Team-5fB/*', true],
  ['carol', 'carol-raw-Team_B', '/live/Team_B/*', false], // the raw name is not a channel segment
  ['carol', 'carol-team-b', '/live/team-b/*', false],
  ['mallory', 'mallory-team-a', '/live/team-a/*', false],
  ['mallory', 'mallory-all', '/live/*', false],
  ['mallory', 'mallory-admins', '/live/admins/ops/alerts', false],
  ['eve', 'eve-all', '/live/*', false],
  ['eve', 'eve-team-a', '/live/team-a/*', false],
  ['eve', 'eve-ns', '/live', false],
  ['eve', 'eve-Team_B', '/live/x--Team-5fB/*', false],
  ['eve', 'eve-prefix', '/live/team*', false],
  ['eve', 'eve-team-a-news', '/live/team-a/news', false],
  ['eve', 'eve-team-b-news', '/live/team-b/news', true], // exact channel, no wildcard
  ['dave', 'dave-admins', '/live/admins/*', true],
  ['dave', 'dave-team-a', '/live/team-a/*', false],
  ['nobody', 'nobody-team-a', '/live/team-a/*', false],
];

// The messages the publish example sends, and who must receive each through which subscription.
const MESSAGES = [
  { key: 'm1', topic: 'news', groups: ['team-a'], data: { n: 1, text: 'for team-a' } },
  { key: 'm2', topic: 'news', groups: ['team-b', 'Team_B'], data: { n: 2, text: 'for team-b and Team_B', nested: { q: '"quoted" \\ é' } } },
  { key: 'm3', topic: 'ops/alerts', groups: ['admins'], data: { n: 3, text: 'for admins' } },
];
// groupcast::group_segment of each group here (docs/publishing.md: Team_B becomes x--Team-5fB).
const SEGMENT = { 'team-a': 'team-a', 'team-b': 'team-b', Team_B: 'x--Team-5fB', admins: 'admins' };
const EXPECTED = {
  alice: ['alice-team-a m1'],
  bob: ['bob-team-b m2'],
  carol: ['carol-Team_B m2', 'carol-team-a m1'],
  mallory: [],
  eve: ['eve-team-b-news m2'],
  dave: ['dave-admins m3'],
  nobody: [],
};

const b64url = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
/// An unsigned (alg "none") Cognito ID token: the emulator trusts it, by design.
function cognitoJwt(name, groups) {
  const claims = { sub: `sub-${name}`, 'cognito:username': name, iss: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_E2eTest01', token_use: 'id', exp: Math.floor(Date.now() / 1000) + 3600 };
  if (groups) claims['cognito:groups'] = groups;
  return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`;
}
const tokenOf = (name) => (USERS[name].auth === 'cognito' ? cognitoJwt(name, USERS[name].groups) : `opaque-token-${name}`);

/// Waits until `pred()` holds, polling; fails with `what` after STEP_MS.
async function until(pred, what) {
  const end = Date.now() + STEP_MS;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${STEP_MS} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/// A realtime client: connects with the AppSync subprotocols, waits for connection_ack, records every message.
async function connect(emu, auth) {
  const ws = new WebSocket(emu.realtimeUrl, ['aws-appsync-event-ws', `header-${b64url({ host: emu.host, ...auth })}`]);
  const messages = [];
  ws.on('message', (raw) => messages.push(JSON.parse(String(raw))));
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no WebSocket open within ${STEP_MS} ms`)), STEP_MS);
    ws.once('open', () => (clearTimeout(t), resolve()));
    ws.once('error', (e) => (clearTimeout(t), reject(e)));
  });
  assert.equal(ws.protocol, 'aws-appsync-event-ws', 'the server selects the aws-appsync-event-ws subprotocol');
  ws.send(JSON.stringify({ type: 'connection_init' }));
  await until(() => messages.some((m) => m.type === 'connection_ack'), 'connection_ack');
  assert.equal(messages.find((m) => m.type === 'connection_ack').connectionTimeoutMs, 300000);
  const subscribe = async (id, channel) => {
    ws.send(JSON.stringify({ type: 'subscribe', id, channel, authorization: { host: emu.host, ...auth } }));
    await until(() => messages.some((m) => m.id === id && /^subscribe_/.test(m.type)), `the answer to subscribe ${id} ${channel}`);
    return messages.find((m) => m.id === id && /^subscribe_/.test(m.type));
  };
  return { ws, messages, subscribe, data: () => messages.filter((m) => m.type === 'data') };
}

/// The publish example's binary: $GROUPCAST_PUBLISH_EXAMPLE, else built once with cargo.
function publishBinary() {
  if (process.env.GROUPCAST_PUBLISH_EXAMPLE) return process.env.GROUPCAST_PUBLISH_EXAMPLE;
  try {
    execFileSync('cargo', ['build', '-q', '-p', 'groupcast', '--example', 'publish'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], timeout: 900000 });
  } catch (e) {
    throw new Error(`cargo build -p groupcast --example publish failed:\n${e.stderr || e.message}`);
  }
  const target = process.env.CARGO_TARGET_DIR ? path.resolve(REPO, process.env.CARGO_TARGET_DIR) : path.join(REPO, 'target');
  const bin = path.join(target, 'debug', 'examples', 'publish');
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing after cargo build; set GROUPCAST_PUBLISH_EXAMPLE`);
  return bin;
}

/// Runs the publish example; returns {code, report, stderr}. Only the GROUPCAST_* variables below configure it.
function runPublish(bin, emu, msg, apiKey = API_KEY) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GROUPCAST_') && !k.startsWith('AWS_')));
  Object.assign(env, {
    GROUPCAST_EVENTS_URL: emu.httpUrl,
    GROUPCAST_EVENTS_NAMESPACE: 'live',
    GROUPCAST_AUTH: 'api-key',
    GROUPCAST_API_KEY: apiKey,
    GROUPCAST_TRANSPORTS: 'events',
    GROUPCAST_DEADLINE_MS: '4000',
  });
  const args = ['--topic', msg.topic, ...msg.groups.flatMap((g) => ['--group', g]), '--data', JSON.stringify(msg.data)];
  return new Promise((resolve, reject) => {
    execFile(bin, args, { env, timeout: 30000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(new Error(`publish example: ${err.message}\n${stderr}`));
      let report = null;
      try {
        report = JSON.parse(stdout);
      } catch {
        return reject(new Error(`publish example printed no JSON report (exit ${err ? err.code : 0}):\n${stdout}\n${stderr}`));
      }
      resolve({ code: err ? err.code : 0, report, stderr });
    });
  });
}

let emu;
let bin;
const clients = {};
const reports = {};
const subAnswers = {};

test.before(async () => {
  bin = publishBinary();
  const { renderHandlers, startEmulator } = await import('./events-emulator.mjs');
  const handlers = renderHandlers(path.join(__dirname, 'e2e.toml'));
  assert.match(handlers.live, /export function onSubscribe/, 'the rendered live handler checks subscriptions');
  emu = await startEmulator({ handlers, apiKey: API_KEY, lambdaAuthorizer: (token) => LAMBDA_TOKENS[token] ?? { isAuthorized: false } });
  for (const name of Object.keys(USERS)) clients[name] = await connect(emu, { Authorization: tokenOf(name) });
});

test.after(async () => {
  for (const c of Object.values(clients)) c.ws.terminate();
  if (emu) await emu.close();
});

test('subscribe: the rendered handler admits each user to channels of their own groups only', async () => {
  // Every subscription is made before any is judged, so a wrongly admitted one is also there for the delivery test.
  for (const [user, id, channel] of SUBSCRIPTIONS) subAnswers[id] = await clients[user].subscribe(id, channel);
  for (const [user, id, channel, admitted] of SUBSCRIPTIONS) {
    const answer = subAnswers[id];
    if (admitted) {
      assert.equal(answer.type, 'subscribe_success', `${user} on ${channel} must be admitted: ${JSON.stringify(answer)}`);
    } else {
      assert.equal(answer.type, 'subscribe_error', `${user} on ${channel} must be refused: ${JSON.stringify(answer)}`);
      assert.ok(Array.isArray(answer.errors) && answer.errors[0].errorType, `subscribe_error for ${id} carries errors[{errorType}]`);
    }
  }
  // Refusals by the handler itself (not by channel syntax) are `Unauthorized`, AppSync's type for util.unauthorized().
  for (const id of ['alice-all', 'alice-ns', 'bob-Team_B', 'mallory-team-a', 'eve-team-a', 'dave-team-a', 'nobody-team-a']) {
    assert.equal(subAnswers[id].errors[0].errorType, 'Unauthorized', `${id}: ${JSON.stringify(subAnswers[id])}`);
  }
  // The publisher's own key does not make a subscriber: it carries no groups.
  const pub = await connect(emu, { 'x-api-key': API_KEY });
  clients.publisherKey = pub;
  const answer = await pub.subscribe('key-team-a', '/live/team-a/*');
  assert.equal(answer.type, 'subscribe_error', `the API key on /live/team-a/* must be refused: ${JSON.stringify(answer)}`);
});

test('publish: the groupcast example reports every (message, group) delivered', async () => {
  for (const msg of MESSAGES) {
    const { code, report, stderr } = await runPublish(bin, emu, msg);
    assert.equal(code, 0, `publish ${msg.key} exits 0: ${JSON.stringify(report)} ${stderr}`);
    assert.equal(report.deliveries.length, msg.groups.length, `one delivery per group for ${msg.key}`);
    assert.deepEqual(report.deliveries.map((d) => d.group), msg.groups, `${msg.key}: the report names each group, in order`);
    const ids = new Set(report.deliveries.map((d) => d.message_id));
    assert.equal(ids.size, 1, `${msg.key}: one message id across its groups`);
    for (const d of report.deliveries) {
      assert.equal(d.transport, 'events');
      assert.equal(d.outcome.status, 'delivered', `${msg.key} to ${d.group}: ${JSON.stringify(d.outcome)}`);
      assert.match(d.outcome.identifier, /^[0-9a-f-]{36}$/, `${msg.key} to ${d.group}: the emulator's event identifier`);
    }
    reports[msg.key] = report;
  }
  // One event per (message, group) on that group's channel: /live/{group_segment}/{topic}. (A message's
  // channels are published concurrently, so their order is not fixed.)
  assert.deepEqual(
    emu.published.map((p) => p.channel).sort(),
    ['/live/team-a/news', '/live/team-b/news', '/live/x--Team-5fB/news', '/live/admins/ops/alerts'].sort(),
  );
});

test('deliver: each subscriber receives exactly the messages of its groups, envelopes intact', async () => {
  assert.equal(Object.keys(reports).length, MESSAGES.length, 'the publish test ran first');
  const keyOf = Object.fromEntries(MESSAGES.map((m) => [reports[m.key].deliveries[0].message_id, m.key]));
  const total = Object.values(EXPECTED).reduce((n, l) => n + l.length, 0);
  const received = () => Object.keys(USERS).reduce((n, u) => n + clients[u].data().length, 0);
  await until(() => received() >= total, `${total} data messages`);
  await new Promise((r) => setTimeout(r, 300)); // a quiet period, so a late extra delivery still fails the test
  const channelOf = Object.fromEntries(SUBSCRIPTIONS.map(([, id, channel]) => [id, channel]));
  for (const user of Object.keys(USERS)) {
    const got = [];
    for (const m of clients[user].data()) {
      assert.equal(typeof m.event, 'string', `${user}: a data message's event is JSON text`);
      const env = JSON.parse(m.event);
      const msg = MESSAGES.find((x) => x.key === keyOf[env.id]);
      assert.ok(msg, `${user} received an event of no published message: ${m.event}`);
      assert.deepEqual(env, { id: env.id, topic: msg.topic, data: msg.data, groups: msg.groups }, `${user}: envelope of ${msg.key} intact`);
      assert.deepEqual(Object.keys(env), ['id', 'topic', 'data', 'groups']);
      // The isolation property, checked on every delivery: the channel's group is one of the user's.
      const segment = channelOf[m.id].split('/')[2];
      const mine = (USERS[user].groups || []).filter((g) => msg.groups.includes(g) && SEGMENT[g] === segment);
      assert.ok(mine.length > 0, `${user} (groups ${JSON.stringify(USERS[user].groups)}) received ${msg.key} addressed to ${JSON.stringify(msg.groups)} on ${channelOf[m.id]}`);
      assert.ok(subAnswers[m.id] && subAnswers[m.id].type === 'subscribe_success', `${user} received on a refused subscription ${m.id} (${segment})`);
      got.push(`${m.id} ${msg.key}`);
    }
    assert.deepEqual(got.sort(), [...EXPECTED[user]].sort(), `${user} received exactly ${JSON.stringify(EXPECTED[user])}`);
  }
  assert.equal(clients.publisherKey.data().length, 0, 'the API-key connection received nothing');
});

test('a subscriber cannot publish: onPublish admits IAM callers only, and nothing is broadcast', async () => {
  const before = emu.published.length;
  const body = JSON.stringify({ channel: '/live/team-a/news', events: [JSON.stringify({ id: 'forged', topic: 'news', data: {}, groups: ['team-a'] })] });
  const res = await fetch(emu.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json', Authorization: tokenOf('carol') }, body, signal: AbortSignal.timeout(STEP_MS) });
  assert.equal(res.status, 401, 'a Cognito member of team-a publishing to team-a gets 401');
  const answer = await res.json();
  assert.equal(answer.errors[0].errorType, 'UnauthorizedException');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(emu.published.length, before, 'nothing was broadcast');
  assert.ok(Object.values(clients).every((c) => c.data().every((m) => JSON.parse(m.event).id !== 'forged')), 'no subscriber received the forged event');
});

test('a wrong API key: the example reports each group failed and nothing is broadcast', async () => {
  const before = emu.published.length;
  const { code, report } = await runPublish(bin, emu, MESSAGES[0], 'da2-wrong');
  assert.equal(code, 1, 'exit 1: not delivered');
  assert.equal(report.deliveries.length, 1);
  assert.equal(report.deliveries[0].outcome.status, 'failed');
  assert.equal(report.deliveries[0].outcome.retryable, false, '401 is not retried');
  assert.equal(emu.published.length, before, 'nothing was broadcast');
});
