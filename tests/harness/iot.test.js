'use strict';
// The IoT group policies and the publisher IAM policy, evaluated with AWS's documented matching rules
// (lib/policy.js): a subscriber connects only as their own identity, subscribes to and receives only their
// groups' topics, and never publishes; the publisher may publish and nothing else.
const test = require('node:test');
const assert = require('node:assert/strict');
const { render, renderText, configText } = require('./lib/render');
const { allows, sizeWithoutWhitespace } = require('./lib/policy');
const { load } = require('./lib/handler');

const files = render('harness.toml');
const { groupSegment } = load(files['events/live.js']);
const configured = ['admins', 'team-a', 'Team_B', '*', '#', '+', 'a/b', 'a+b', 'quo"te', 'back\\slash', '$aws', '\u0430dmins', 'ＡＤＭＩＮ', 'x--a', 'a--b', '${iot:ClientId}', '?'];
const PREFIX = 'groupcast';
const ARN = 'arn:aws:iot:us-east-1:123456789012:';
const ME = 'us-east-1:11111111-2222-3333-4444-555555555555';
const vars = { 'cognito-identity.amazonaws.com:sub': ME };

const policies = Object.entries(files).filter(([f]) => f.startsWith('iot/'));
const byLevel = new Map(policies.map(([f, text]) => {
  const doc = JSON.parse(text);
  const sub = doc.Statement.find((s) => s.Action === 'iot:Subscribe');
  const level = sub.Resource.slice(`${ARN}topicfilter/${PREFIX}/`.length, -2);
  return [level, { file: f, text, doc }];
}));

test('iot: one policy per configured group, at the group\'s segment, within 2048 characters', () => {
  assert.deepEqual([...byLevel.keys()].sort(), configured.map(groupSegment).sort());
  for (const [level, p] of byLevel) {
    assert.ok(sizeWithoutWhitespace(p.text) <= 2048, `${p.file}: ${sizeWithoutWhitespace(p.text)} characters`);
    assert.deepEqual(p.doc.Statement.map((s) => [s.Effect, s.Action]), [['Allow', 'iot:Connect'], ['Allow', 'iot:Subscribe'], ['Allow', 'iot:Receive']], p.file);
    assert.ok(!/[*?+#$]/.test(level), `${p.file}: level ${level}`);
  }
});

for (const group of configured) {
  const level = groupSegment(group);
  const others = configured.filter((g) => g !== group).map(groupSegment);
  test(`iot policy for ${JSON.stringify(group)}: own topics only, connect as self, never publish`, () => {
    const p = byLevel.get(level);
    assert.ok(p, `no policy for ${group}`);
    const can = (action, resource) => allows(p.doc, action, ARN + resource, vars);
    // Connect.
    assert.equal(can('iot:Connect', `client/${ME}`), true, 'connect as own identity id');
    assert.equal(can('iot:Connect', 'client/us-east-1:99999999-0000-0000-0000-000000000000'), false, 'ATTACK: connect as another identity');
    assert.equal(can('iot:Connect', 'client/*'), false, 'ATTACK: connect with client id *');
    assert.equal(can('iot:Connect', `client/${ME}x`), false, 'ATTACK: connect with a longer client id (no dash)');
    assert.equal(can('iot:Connect', `client/${ME}-tab-2`), true, 'a second connection: own identity id, a dash, a suffix');
    assert.equal(can('iot:Connect', `client/${ME}-`), true, 'own identity id and a dash');
    assert.equal(can('iot:Connect', 'client/us-east-1:99999999-0000-0000-0000-000000000000-tab'), false, 'ATTACK: another identity\'s id with a suffix');
    assert.equal(can('iot:Connect', `client/x${ME}`), false, 'ATTACK: own identity id after a prefix');
    assert.equal(can('iot:Connect', `client/${ME.slice(0, -1)}-x`), false, 'ATTACK: a prefix of own identity id with a suffix');
    assert.equal(allows(p.doc, 'iot:Connect', `${ARN}client/${ME}`, {}), false, 'a missing policy variable must match nothing');
    // Subscribe and receive on own topics.
    assert.equal(can('iot:Subscribe', `topicfilter/${PREFIX}/${level}/#`), true);
    assert.equal(can('iot:Subscribe', `topicfilter/${PREFIX}/${level}/chat`), true);
    assert.equal(can('iot:Receive', `topic/${PREFIX}/${level}/chat`), true);
    // Wider filters and other groups.
    for (const f of ['#', `${PREFIX}/#`, `${PREFIX}/+`, `${PREFIX}/+/chat`, `${PREFIX}/+/#`, `${PREFIX}/${level}`, `${PREFIX}/${level}x/#`, `${PREFIX}/*`, `+/${level}/#`]) {
      assert.equal(can('iot:Subscribe', `topicfilter/${f}`), false, `ATTACK: subscribe to ${f}`);
    }
    for (const o of others) {
      assert.equal(can('iot:Subscribe', `topicfilter/${PREFIX}/${o}/#`), false, `ATTACK: subscribe to group ${o}`);
      assert.equal(can('iot:Receive', `topic/${PREFIX}/${o}/chat`), false, `ATTACK: receive group ${o}`);
    }
    // Never publish or retain.
    for (const action of ['iot:Publish', 'iot:RetainPublish', 'iot:UpdateThingShadow']) {
      assert.equal(can(action, `topic/${PREFIX}/${level}/chat`), false, `ATTACK: ${action} on own topic`);
    }
  });
}

test('iot: every ARN uses the partition of the project\'s region (aws-cn in China, aws-us-gov in GovCloud)', () => {
  for (const [region, partition] of [['cn-north-1', 'aws-cn'], ['us-gov-west-1', 'aws-us-gov'], ['eu-west-1', 'aws']]) {
    const r = renderText(configText('small.toml').replace('region = "eu-west-1"', `region = "${region}"`));
    assert.equal(r.ok, true, r.stderr);
    const docs = Object.entries(r.files).filter(([f]) => f.startsWith('iot/'));
    assert.equal(docs.length, 2);
    for (const [f, text] of docs) {
      const resources = JSON.parse(text).Statement.flatMap((st) => [].concat(st.Resource));
      for (const res of resources) assert.ok(res.startsWith(`arn:${partition}:iot:${region}:210987654321:`), `${f}: ${res}`);
    }
  }
});

test('iot: a topic prefix with a wildcard or MQTT character is refused before any policy is written', () => {
  for (const bad of ['*', 'group*', 'a/#', 'a/+', '$aws', 'a?', '']) {
    const r = renderText(configText('small.toml').replace('topic_prefix = "org/live"', `topic_prefix = ${JSON.stringify(bad)}`));
    assert.equal(r.ok, false, `rendered with topic_prefix ${JSON.stringify(bad)}`);
    assert.match(r.stderr, /topic_prefix/);
  }
});

test('publisher IAM policy: publish (and GraphQL revoke) on the configured transports, nothing else', () => {
  const doc = JSON.parse(files['iam/publisher-policy.json']);
  const acct = 'arn:aws:appsync:us-east-1:123456789012:apis/abcdefghijklmnopqrstuvwxyz';
  const can = (action, resource) => allows(doc, action, resource);
  for (const ns of ['live', 'jobs', 'open']) assert.equal(can('appsync:EventPublish', `${acct}/channelNamespace/${ns}`), true, ns);
  assert.equal(can('appsync:EventPublish', `${acct}/channelNamespace/other`), false, 'ATTACK: publish to an unconfigured namespace');
  assert.equal(can('appsync:EventSubscribe', `${acct}/channelNamespace/live`), false, 'ATTACK: the publisher subscribes');
  assert.equal(can('appsync:EventConnect', acct), false, 'ATTACK: the publisher connects a WebSocket');
  assert.equal(can('appsync:GraphQL', `${acct}/types/Mutation/fields/publish`), true);
  assert.equal(can('appsync:GraphQL', `${acct}/types/Mutation/fields/revoke`), true, 'the publisher revokes (docs/isolation.md, Revocation)');
  for (const f of ['types/Subscription/fields/subscribe', 'types/Query/fields/groupcastVersion', 'types/Mutation/fields/other', 'types/Mutation/fields/publishX', 'types/Mutation/fields/revokeX', 'types/Mutation/fields/revoke/x']) {
    assert.equal(can('appsync:GraphQL', `${acct}/${f}`), false, `ATTACK: GraphQL ${f}`);
  }
  assert.equal(can('iot:Publish', `${ARN}topic/${PREFIX}/team-a/chat`), true);
  for (const r of [`${ARN}topic/other/x`, `${ARN}topic/${PREFIX}`, `${ARN}topic/$aws/things/x/shadow/update`]) {
    assert.equal(can('iot:Publish', r), false, `ATTACK: publish to ${r}`);
  }
  for (const a of ['iot:Subscribe', 'iot:Receive', 'iot:Connect', 'appsync:CreateApi', 'iam:PassRole']) {
    assert.equal(can(a, `${ARN}topic/${PREFIX}/x`) || can(a, `${acct}/channelNamespace/live`), false, `ATTACK: ${a}`);
  }
  for (const s of doc.Statement) {
    assert.equal(s.Effect, 'Allow');
    assert.ok(!String(s.Action).includes('*'), `wildcard action ${s.Action}`);
  }
});
