'use strict';
// The IAM documents of the bundled example (templates/iam), evaluated with AWS's documented matching rules
// (lib/policy.js): each role may do its job and nothing near it. The identity pool role connects only as the
// caller's own identity (or that id plus "-suffix"), subscribes and receives only under the topic prefix and
// never publishes; the publisher's role is exactly the publisher policy plus its logs (plus EventConnect only
// for a WebSocket publisher); iot-grant reads only this project's policies and resolves identities only in the
// configured pool; the deployer touches only the project's roles, policies and authorizer.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { render, renderText, REPO } = require('./lib/render');
const { allows } = require('./lib/policy');

const EXAMPLE = path.join(REPO, 'examples', 'groupcast.toml');
// The bundled example with its optional identity pool role on (commented out there: the role must exist first).
const exampleText = (edit = (t) => t) => {
  const text = fs.readFileSync(EXAMPLE, 'utf8').replace('# authenticated_role_name', 'authenticated_role_name');
  assert.notEqual(text, fs.readFileSync(EXAMPLE, 'utf8'));
  return edit(text);
};
const rendered = renderText(exampleText());
assert.ok(rendered.ok, rendered.stderr);
const files = rendered.files;
const json = (f) => {
  assert.ok(files[f], `${f} was not rendered`);
  return JSON.parse(files[f]);
};

const ACCT = '123456789012';
const IOT = `arn:aws:iot:us-east-1:${ACCT}:`;
const ME = 'us-east-1:11111111-2222-3333-4444-555555555555';
const OTHER = 'us-east-1:99999999-0000-0000-0000-000000000000';
const POOL = 'us-east-1:0f6d3c2a-1b2c-4d5e-8f90-123456789abc';
const vars = { 'cognito-identity.amazonaws.com:sub': ME };
const logGroup = (fn) => `arn:aws:logs:us-east-1:${ACCT}:log-group:/aws/lambda/${fn}`;

test('iam: the bundled example as shipped renders every IAM document, the identity pool role\'s too', () => {
  const shipped = render(EXAMPLE);
  assert.deepEqual(
    Object.keys(files).filter((f) => f.startsWith('iam/') && !(f in shipped)),
    [],
  );
});

test('iam: the bundled example renders every IAM document as JSON', () => {
  const iam = Object.keys(files).filter((f) => f.startsWith('iam/')).sort();
  assert.deepEqual(iam, [
    'iam/appsync-logs-role-policy.json',
    'iam/appsync-logs-trust.json',
    'iam/authorizer-role-policy.json',
    'iam/deployer-policy.json',
    'iam/identity-pool-iot-policy.json',
    'iam/iot-grant-role-policy.json',
    'iam/lambda-trust.json',
    'iam/publisher-policy.json',
    'iam/publisher-role-policy.json',
  ]);
  for (const f of iam) {
    const doc = json(f);
    assert.equal(doc.Version, '2012-10-17', f);
    for (const s of doc.Statement) {
      assert.equal(s.Effect, 'Allow', `${f}: ${s.Sid}`);
      for (const a of [s.Action].flat()) assert.ok(!a.includes('*'), `${f}: wildcard action ${a}`);
    }
  }
});

test('iam: only Lambda (in this account) and AppSync assume the roles', () => {
  const lambda = json('iam/lambda-trust.json').Statement;
  assert.deepEqual(lambda.map((s) => [s.Principal, s.Action, s.Condition]), [
    [{ Service: 'lambda.amazonaws.com' }, 'sts:AssumeRole', { StringEquals: { 'aws:SourceAccount': ACCT } }],
  ]);
  const appsync = json('iam/appsync-logs-trust.json').Statement;
  assert.deepEqual(appsync.map((s) => [s.Principal, s.Action]), [[{ Service: 'appsync.amazonaws.com' }, 'sts:AssumeRole']]);
});

test('iam: the identity pool role connects as its own identity, reads the prefix, never publishes', () => {
  const doc = json('iam/identity-pool-iot-policy.json');
  const can = (action, resource, v = vars) => allows(doc, action, IOT + resource, v);
  assert.equal(can('iot:Connect', `client/${ME}`), true, 'connect as own identity id');
  assert.equal(can('iot:Connect', `client/${ME}-tab2`), true, 'a second connection of the same user');
  assert.equal(can('iot:Connect', `client/${OTHER}`), false, 'ATTACK: connect as another identity');
  assert.equal(can('iot:Connect', `client/${OTHER}-${ME}`), false, 'ATTACK: another identity with my id as suffix');
  assert.equal(can('iot:Connect', `client/${ME}x`), false, 'ATTACK: my id with a suffix but no separator');
  assert.equal(can('iot:Connect', 'client/*'), false, 'ATTACK: client id *');
  assert.equal(can('iot:Connect', `client/${ME}`, {}), false, 'a missing policy variable must match nothing');
  assert.equal(can('iot:Subscribe', 'topicfilter/groupcast/team-a/#'), true);
  assert.equal(can('iot:Receive', 'topic/groupcast/team-a/chat'), true);
  for (const f of ['#', 'other/#', 'groupcastx/#', '+/team-a/#', '$aws/things/x/shadow/update']) {
    assert.equal(can('iot:Subscribe', `topicfilter/${f}`), false, `ATTACK: subscribe to ${f}`);
    assert.equal(can('iot:Receive', `topic/${f}`), false, `ATTACK: receive ${f}`);
  }
  for (const a of ['iot:Publish', 'iot:RetainPublish', 'iot:UpdateThingShadow', 'iot:AttachPolicy']) {
    assert.equal(can(a, 'topic/groupcast/team-a/chat') || can(a, '*'), false, `ATTACK: ${a}`);
  }
});

test('iam: the publisher role is the publisher policy plus its own logs, without EventConnect by default', () => {
  const publish = json('iam/publisher-policy.json').Statement;
  const role = json('iam/publisher-role-policy.json');
  assert.deepEqual(role.Statement.slice(0, publish.length), publish, 'the publish statements drifted');
  assert.deepEqual(role.Statement.slice(publish.length).map((s) => s.Sid), ['GroupcastLogGroup', 'GroupcastLogEvents']);
  const api = `arn:aws:appsync:us-east-1:${ACCT}:apis/abcdefghijklmnopqrstuvwxyz`;
  assert.equal(allows(role, 'appsync:EventPublish', `${api}/channelNamespace/live`), true);
  assert.equal(allows(role, 'appsync:EventConnect', api), false, 'ATTACK: an HTTP publisher holds EventConnect');
  assert.equal(allows(role, 'appsync:EventSubscribe', `${api}/channelNamespace/live`), false, 'ATTACK: the publisher subscribes');
  assert.equal(allows(role, 'logs:PutLogEvents', `${logGroup('acme-live-publisher')}:log-stream:x`), true);
  assert.equal(allows(role, 'logs:CreateLogGroup', logGroup('acme-live-publisher')), true);
  for (const other of ['acme-live-iot-grant', 'acme-live-publisherx', 'someone-else']) {
    assert.equal(allows(role, 'logs:PutLogEvents', `${logGroup(other)}:log-stream:x`), false, `ATTACK: writes ${other}'s logs`);
    assert.equal(allows(role, 'logs:CreateLogGroup', logGroup(other)), false, `ATTACK: creates ${other}'s log group`);
  }
});

test('iam: a WebSocket publisher (publisher.websocket = true) may connect to the Event API and nothing else', () => {
  const r = renderText(exampleText((t) => t.replace('# websocket = false', 'websocket = true')));
  assert.ok(r.ok, r.stderr);
  const role = JSON.parse(r.files['iam/publisher-role-policy.json']);
  const apis = `arn:aws:appsync:us-east-1:${ACCT}:apis/`;
  assert.equal(allows(role, 'appsync:EventConnect', `${apis}abcdefghijklmnopqrstuvwxyz`), true);
  assert.equal(allows(role, 'appsync:EventConnect', `${apis}x/channelNamespace/live`), true, 'before apply the API id is *');
  assert.equal(allows(role, 'appsync:EventConnect', `arn:aws:appsync:eu-west-1:${ACCT}:apis/x`), false, 'ATTACK: another region');
  assert.equal(allows(role, 'appsync:EventSubscribe', `${apis}x/channelNamespace/live`), false, 'ATTACK: the publisher subscribes');
  assert.equal(r.files['iam/publisher-policy.json'], files['iam/publisher-policy.json'], 'the shared publisher policy changed');
});

test('iam: the publisher may invoke exactly the iot-grant function (revoke), and without [iot] no function at all', () => {
  const fn = (name, region = 'us-east-1', acct = ACCT) => `arn:aws:lambda:${region}:${acct}:function:${name}`;
  for (const f of ['iam/publisher-policy.json', 'iam/publisher-role-policy.json']) {
    const doc = json(f);
    assert.equal(allows(doc, 'lambda:InvokeFunction', fn('acme-live-iot-grant')), true, f);
    for (const other of [
      fn('acme-live-publisher'), fn('acme-live-authorizer'), fn('acme-live-iot-grantx'), fn('other-iot-grant'),
      fn('acme-live-iot-grant:prod'), fn('acme-live-iot-grant', 'eu-west-1'), fn('acme-live-iot-grant', 'us-east-1', '999999999999'),
    ]) {
      assert.equal(allows(doc, 'lambda:InvokeFunction', other), false, `ATTACK: ${f} invokes ${other}`);
    }
    for (const a of ['lambda:InvokeAsync', 'lambda:UpdateFunctionCode', 'lambda:GetFunction', 'lambda:InvokeFunctionUrl']) {
      assert.equal(allows(doc, a, fn('acme-live-iot-grant')), false, `ATTACK: ${f} may ${a}`);
    }
  }
  const r = renderText(exampleText((t) => t.slice(0, t.indexOf('[iot]')) + t.slice(t.indexOf('[publisher]'))));
  assert.ok(r.ok, r.stderr);
  for (const f of ['iam/publisher-policy.json', 'iam/publisher-role-policy.json']) {
    const doc = JSON.parse(r.files[f]);
    assert.deepEqual(doc.Statement.filter((s) => JSON.stringify(s).includes('lambda:')), [], `${f} without [iot]`);
    assert.equal(allows(doc, 'lambda:InvokeFunction', fn('acme-live-iot-grant')), false, `${f} without [iot]`);
  }
});

test('iam: iot-grant reads only this project\'s IoT policies and resolves identities only in the configured pool', () => {
  const doc = json('iam/iot-grant-role-policy.json');
  const can = (a, r) => allows(doc, a, r);
  assert.equal(can('iot:ListTargetsForPolicy', `${IOT}policy/acme-live-admins`), true);
  // The grant reads a policy (its ARN, then its ownership tag) before attaching it.
  assert.equal(can('iot:GetPolicy', `${IOT}policy/acme-live-admins`), true);
  assert.equal(can('iot:ListTagsForResource', `${IOT}policy/acme-live-admins`), true);
  assert.equal(can('iot:ListTagsForResource', `${IOT}policy/acme-live-x--Team-5fB`), true);
  for (const p of ['other-admins', 'admins', 'acme-admins']) {
    assert.equal(can('iot:ListTargetsForPolicy', `${IOT}policy/${p}`), false, `ATTACK: reads policy ${p}`);
  }
  const pool = `arn:aws:cognito-identity:us-east-1:${ACCT}:identitypool/${POOL}`;
  assert.equal(can('cognito-identity:GetId', pool), true);
  assert.equal(can('cognito-identity:GetId', `arn:aws:cognito-identity:us-east-1:${ACCT}:identitypool/us-east-1:00000000-0000-0000-0000-000000000000`), false, 'ATTACK: another pool');
  // IoT authorizes attachments against their target, which for a Cognito identity has no ARN: "*" is the only
  // scope AWS offers, the grant code enforces the project's policies.
  assert.equal(can('iot:AttachPolicy', '*'), true);
  for (const a of ['iot:CreatePolicy', 'iot:DeletePolicy', 'iot:CreatePolicyVersion', 'iot:Publish', 'iot:Connect', 'iam:PassRole', 'cognito-identity:GetCredentialsForIdentity']) {
    assert.equal(can(a, `${IOT}policy/acme-live-admins`) || can(a, pool) || can(a, '*'), false, `ATTACK: ${a}`);
  }
  assert.equal(can('logs:PutLogEvents', `${logGroup('acme-live-iot-grant')}:log-stream:x`), true);
  // Current groups from the configured user pool only (issue 14), and the user -> identity things of this
  // project only.
  const userPool = (id) => `arn:aws:cognito-idp:us-east-1:${ACCT}:userpool/${id}`;
  const configuredPool = doc.Statement.find((s) => s.Sid === 'GroupcastReadCurrentGroups').Resource;
  assert.match(configuredPool, /:userpool\/us-east-1_/);
  assert.equal(can('cognito-idp:AdminListGroupsForUser', configuredPool), true);
  assert.equal(can('cognito-idp:AdminGetUser', configuredPool), true);
  assert.equal(can('cognito-idp:AdminListGroupsForUser', userPool('us-east-1_Other1')), false, 'ATTACK: another user pool');
  for (const a of ['cognito-idp:AdminAddUserToGroup', 'cognito-idp:AdminUpdateUserAttributes', 'cognito-idp:ListUsers']) {
    assert.equal(can(a, configuredPool), false, `ATTACK: ${a}`);
  }
  const thing = (n) => `${IOT}thing/${n}`;
  assert.equal(can('iot:CreateThing', thing('groupcast_acme-live_0a1b2c3d-0000-4000-8000-00000000000a')), true);
  assert.equal(can('iot:UpdateThing', thing('groupcast_acme-live_x')), true);
  assert.equal(can('iot:CreateThing', thing('groupcast_acme-live-other_x')), false, 'ATTACK: another project\'s mapping');
  assert.equal(can('iot:CreateThing', thing('device-1')), false, 'ATTACK: someone else\'s thing');
  assert.equal(can('iot:DeleteThing', thing('groupcast_acme-live_x')), false);
});

test('iam: the authorizer and AppSync\'s logging role write logs and nothing else', () => {
  const auth = json('iam/authorizer-role-policy.json');
  assert.deepEqual(auth.Statement.flatMap((s) => [s.Action].flat()).sort(), ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents']);
  assert.equal(allows(auth, 'logs:PutLogEvents', `${logGroup('acme-live-authorizer')}:log-stream:x`), true);
  assert.equal(allows(auth, 'logs:PutLogEvents', `${logGroup('acme-live-publisher')}:log-stream:x`), false, 'ATTACK: another function\'s logs');
  const logs = json('iam/appsync-logs-role-policy.json');
  const appsyncGroup = `arn:aws:logs:us-east-1:${ACCT}:log-group:/aws/appsync/apis/abc`;
  assert.equal(allows(logs, 'logs:PutLogEvents', `${appsyncGroup}:log-stream:x`), true);
  assert.equal(allows(logs, 'logs:CreateLogGroup', appsyncGroup), true);
  assert.equal(allows(logs, 'logs:PutLogEvents', `${logGroup('acme-live-publisher')}:log-stream:x`), false, 'ATTACK: Lambda logs');
  assert.equal(allows(logs, 'logs:DeleteLogGroup', appsyncGroup), false);
});

test('iam: with groups_source = "user-pool" the authorizer reads current groups of that pool only', () => {
  const r = renderText(exampleText((t) => t.replace('result_ttl_seconds = 300\n', 'result_ttl_seconds = 300\ngroups_source = "user-pool"\n')));
  assert.ok(r.ok, r.stderr);
  const auth = JSON.parse(r.files['iam/authorizer-role-policy.json']);
  const pool = (id) => `arn:aws:cognito-idp:us-east-1:${ACCT}:userpool/${id}`;
  assert.equal(allows(auth, 'cognito-idp:AdminListGroupsForUser', pool('us-east-1_AbCdEf123')), true);
  assert.equal(allows(auth, 'cognito-idp:AdminGetUser', pool('us-east-1_AbCdEf123')), true);
  assert.equal(allows(auth, 'cognito-idp:AdminListGroupsForUser', pool('us-east-1_Other1')), false, 'ATTACK: another user pool');
  for (const a of ['cognito-idp:AdminAddUserToGroup', 'cognito-idp:AdminRemoveUserFromGroup', 'cognito-idp:ListUsers', 'cognito-idp:AdminUpdateUserAttributes', 'cognito-idp:AdminInitiateAuth']) {
    assert.equal(allows(auth, a, pool('us-east-1_AbCdEf123')), false, `ATTACK: ${a}`);
  }
  assert.equal(allows(auth, 'logs:PutLogEvents', `${logGroup('acme-live-authorizer')}:log-stream:x`), true);
  // Without the key: logs only, as above.
  assert.equal(allows(json('iam/authorizer-role-policy.json'), 'cognito-idp:AdminListGroupsForUser', pool('us-east-1_AbCdEf123')), false);
});

test('iam: the deployer touches only the project\'s roles, IoT policies, authorizer and identity pool', () => {
  const doc = json('iam/deployer-policy.json');
  const can = (a, r) => allows({ Statement: doc.Statement.filter((s) => !s.Condition) }, a, r);
  const role = (n) => `arn:aws:iam::${ACCT}:role/${n}`;
  for (const n of ['acme-live-publisher', 'acme-live-authorizer', 'acme-live-iot-grant', 'acme-live-appsync-logs']) {
    assert.equal(can('iam:CreateRole', role(n)), true, n);
    assert.equal(can('iam:PutRolePolicy', role(n)), true, n);
  }
  for (const n of ['admin', 'acme-live-publisherx', 'other-publisher']) {
    assert.equal(can('iam:CreateRole', role(n)), false, `ATTACK: creates role ${n}`);
    assert.equal(can('iam:PutRolePolicy', role(n)), false, `ATTACK: writes role ${n}'s policy`);
  }
  assert.equal(can('iam:PutRolePolicy', role('acme-live-identity-auth')), true, 'the identity pool role\'s IoT policy');
  assert.equal(can('iam:PutRolePolicy', role('service-role/acme-live-identity-auth')), true, 'the same role under a path');
  assert.equal(can('iam:CreateRole', role('acme-live-identity-auth')), false, 'ATTACK: the user\'s role is never created or deleted');
  assert.equal(can('iam:DeleteRole', role('acme-live-identity-auth')), false, 'ATTACK: the user\'s role is never created or deleted');
  for (const a of ['iam:AttachRolePolicy', 'iam:CreatePolicy', 'iam:CreateUser', 'iam:PutUserPolicy']) {
    assert.equal(can(a, role('acme-live-publisher')) || can(a, '*'), false, `ATTACK: ${a}`);
  }
  // PassRole: the logging role, to AppSync only.
  const pass = doc.Statement.filter((s) => [s.Action].flat().includes('iam:PassRole'));
  assert.deepEqual(pass.map((s) => [s.Resource, s.Condition]), [
    [[role('acme-live-appsync-logs')], { StringEquals: { 'iam:PassedToService': 'appsync.amazonaws.com' } }],
  ]);
  const fn = (n) => `arn:aws:lambda:us-east-1:${ACCT}:function:${n}`;
  assert.equal(can('lambda:AddPermission', fn('acme-live-authorizer')), true);
  assert.equal(can('lambda:AddPermission', fn('acme-live-publisher')), false, 'ATTACK: invoke permission on another function');
  assert.equal(can('lambda:UpdateFunctionCode', fn('acme-live-authorizer')), false);
  assert.equal(can('iot:CreatePolicy', `${IOT}policy/acme-live-admins`), true);
  assert.equal(can('iot:DeletePolicy', `${IOT}policy/other-admins`), false, 'ATTACK: deletes another project\'s policy');
  assert.equal(can('cognito-identity:DescribeIdentityPool', `arn:aws:cognito-identity:us-east-1:${ACCT}:identitypool/${POOL}`), true);
  assert.equal(can('appsync:DeleteApi', `arn:aws:appsync:us-east-1:${ACCT}:apis/x`), true);
  assert.equal(can('appsync:DeleteApi', `arn:aws:appsync:eu-west-1:${ACCT}:apis/x`), false, 'ATTACK: another region');
});
