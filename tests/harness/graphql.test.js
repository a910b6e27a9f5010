'use strict';
// The GraphQL pubsub templates against the adversarial corpus: the subscribe VTL must reject every caller it
// cannot prove entitled, and every subscription it admits must carry a filter within AppSync's limits that
// delivers exactly the messages of the caller's chosen groups. Each test is named after the attack it tries.
const test = require('node:test');
const assert = require('node:assert/strict');
const { parse, buildASTSchema } = require('graphql');
const { render } = require('./lib/render');
const vtl = require('./lib/vtl');
const { limitViolations, matches } = require('./lib/filters');
const { authorized, intended, probes } = require('./lib/oracle');

const files = render('harness.toml');
const small = render('small.toml');

const ISS = 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123';
const cognito = (groups, extra = {}) => ({
  mode: vtl.MODES.COGNITO,
  claims: { iss: ISS, sub: 'sub-1', 'cognito:username': 'alice', ...(groups === undefined ? {} : { 'cognito:groups': groups }), ...extra },
});
const oidc = (claims) => ({ mode: vtl.MODES.OIDC, claims: { iss: 'https://idp.example.invalid', sub: 'sub-2', ...claims } });
const lambda = (resolverContext) => ({ mode: vtl.MODES.LAMBDA, resolverContext });
const groupsN = (n) => Array.from({ length: n }, (_, i) => `g${i}`);
const long = (n) => 'p'.repeat(n);

/// Subscribes and checks the outcome: a rejection whose message matches `reject`, or an admitted
/// subscription whose filter is valid and delivers exactly what the oracle says for every probe message.
function check(t, rendered, caller, args, expect) {
  const r = vtl.subscribe(rendered, caller, args);
  if (expect.reject) {
    assert.equal(r.rejected, true, `admitted (filter ${JSON.stringify(r.filter)}); expected a rejection matching ${expect.reject}`);
    assert.match(r.message, expect.reject, `rejected for another reason: ${r.message}`);
    return r;
  }
  assert.equal(r.rejected, false, `rejected: ${r.message}`);
  assert.equal(r.filterCalls, 1, `the template called setSubscriptionFilter ${r.filterCalls} times; exactly once is required`);
  assert.deepEqual(limitViolations(r.filter), [], 'the filter breaks AppSync limits');
  if (expect.entries !== undefined) assert.equal(r.filter.filterGroup.length, expect.entries, 'filterGroup entries');
  const conditions = args.prefix ? 2 : 1;
  for (const e of r.filter.filterGroup) assert.equal(e.filters.length, conditions, `each entry: groups containsAny${args.prefix ? ' AND topic beginsWith' : ''}`);
  const userGroups = caller.claims ? caller.claims['cognito:groups'] : JSON.parse(caller.resolverContext.groups);
  const extra = [...(expect.strangers || []), ...(args.onlyGroups || [])];
  for (const m of [...probes(userGroups, args, extra), ...(expect.messages || [])]) {
    const got = matches(r.filter, m);
    if (got && !authorized(userGroups, m)) assert.fail(`LEAK: message for ${JSON.stringify(m.groups)} on ${JSON.stringify(m.topic)} reached a user in ${JSON.stringify(userGroups.slice(0, 5))}`);
    assert.equal(got, intended(userGroups, args, m), `message for ${JSON.stringify(m.groups)} on ${JSON.stringify(m.topic)}: delivered=${got}`);
  }
  return r;
}

const corpus = [
  // Who is the caller?
  ['no groups claim at all', cognito(undefined), {}, { reject: /the caller has no groups/ }],
  ['groups claim is an empty list', cognito([]), {}, { reject: /in no group/ }],
  ['groups claim is a string, not a list', cognito('admins'), {}, { reject: /not a list/ }],
  ['groups claim holds a number', cognito(['admins', 7]), {}, { reject: /not a group name/ }],
  ['groups claim holds an empty name', cognito(['admins', '']), {}, { reject: /not a group name/ }],
  ['groups claim is null', cognito(null), {}, { reject: /the caller has no groups/ }],
  ['Cognito token with groups only in another claim', cognito(undefined, { groups: ['admins'] }), {}, { reject: /the caller has no groups/ }],
  ['OIDC token with groups in another claim', oidc({ groups: ['admins'] }), {}, { reject: /the caller has no groups/ }],
  ['OIDC token with groups in the claim', oidc({ 'cognito:groups': ['admins'] }), {}, { entries: 1 }],
  ['API key caller (no identity)', { mode: vtl.MODES.API_KEY }, {}, { reject: /subscribers do not use API Key Authorization/ }],
  ['IAM caller subscribing', { mode: vtl.MODES.IAM }, {}, { reject: /subscribers do not use IAM Authorization/ }],
  ['Lambda authorizer context without groups', lambda({ sub: 'x' }), {}, { reject: /the caller has no groups/ }],
  ['Lambda authorizer groups under the claim name instead of groups', lambda({ 'cognito:groups': '["admins"]' }), {}, { reject: /the caller has no groups/ }],
  ['Lambda authorizer groups as a real list, not JSON text', lambda({ groups: ['admins'] }), {}, { reject: /resolverContext.groups is not JSON text/ }],
  ['Lambda authorizer groups that are not JSON', lambda({ groups: 'admins' }), {}, { reject: /./ }],
  ['Lambda authorizer groups JSON object, not list', lambda({ groups: '{"0":"admins","length":1}' }), {}, { reject: /not a list/ }],
  ['Lambda authorizer groups nested list', lambda({ groups: '[["admins"]]' }), {}, { reject: /not a group name/ }],
  ['Lambda authorizer groups empty list', lambda({ groups: '[]' }), {}, { reject: /in no group/ }],
  // onlyGroups
  ['empty onlyGroups', cognito(['admins']), { onlyGroups: [] }, { reject: /give at least one group/ }],
  ['onlyGroups entry the user lacks', cognito(['users']), { onlyGroups: ['admins'] }, { reject: /not a member of the group admins/ }],
  ['onlyGroups mixes an own and a foreign group', cognito(['users']), { onlyGroups: ['users', 'admins'] }, { reject: /not a member/ }],
  ['onlyGroups case variant (Admins for admins)', cognito(['admins']), { onlyGroups: ['Admins'] }, { reject: /not a member/ }],
  ['onlyGroups upper-case variant', cognito(['team-a']), { onlyGroups: ['TEAM-A'] }, { reject: /not a member/ }],
  ['onlyGroups Cyrillic look-alike', cognito(['admins']), { onlyGroups: ['\u0430dmins'] }, { reject: /not a member/ }],
  ['onlyGroups fullwidth look-alike', cognito(['ADMIN']), { onlyGroups: ['ＡＤＭＩＮ'] }, { reject: /not a member/ }],
  ['onlyGroups zero-width-space variant', cognito(['admins']), { onlyGroups: ['admins\u200b'] }, { reject: /not a member/ }],
  ['onlyGroups trailing-space variant', cognito(['admins']), { onlyGroups: ['admins '] }, { reject: /not a member/ }],
  ['onlyGroups decomposed-accent variant', cognito(['caf\u00e9']), { onlyGroups: ['cafe\u0301'] }, { reject: /not a member/ }],
  ['onlyGroups wildcard *', cognito(['admins']), { onlyGroups: ['*'] }, { reject: /not a member/ }],
  ['onlyGroups VTL reference text', cognito(['admins']), { onlyGroups: ['$ctx.identity.claims'] }, { reject: /not a member/ }],
  ['onlyGroups empty string', cognito(['admins']), { onlyGroups: [''] }, { reject: /not a member/ }],
  // Names that attack quoting and matching: admitted, but only their own messages arrive.
  ['user in a Cyrillic look-alike group gets none of admins', cognito(['\u0430dmins']), {}, { strangers: ['admins'] }],
  ['user in a case variant group gets none of the other case', cognito(['Admins']), {}, { strangers: ['admins', 'ADMINS'] }],
  ['names with quotes and backslashes', cognito(['quo"te', "it's", 'back\\slash', '\\"']), {}, { strangers: ['quo', 'quote', 'back', 'slash', '"', '\\'] }],
  ['names with # $ * / +', cognito(['#', '$aws', '*', 'a/b', 'a+b']), {}, { strangers: ['admins', 'a', 'b', 'ab', '**', '#/'] }],
  ['names that look like VTL', cognito(['$ctx.identity', '#set($x = 1)', '${util}']), {}, { strangers: ['1', 'x', 'util'] }],
  ['names that look like JSON', cognito(['"],"x":["', '{"a":1}']), { onlyGroups: ['"],"x":["'] }, { strangers: ['x', 'a'] }],
  // Sizes: 10, 11, 20, 21, 200, 201 groups.
  ['10 groups', cognito(groupsN(10)), {}, { entries: 1 }],
  ['11 groups', cognito(groupsN(11)), {}, { entries: 1 }],
  ['20 groups', cognito(groupsN(20)), {}, { entries: 1 }],
  ['21 groups', cognito(groupsN(21)), {}, { entries: 2 }],
  ['200 groups', cognito(groupsN(200)), { prefix: 'chat/' }, { entries: 10 }],
  ['201 groups without onlyGroups', cognito(groupsN(201)), {}, { reject: /at most 200 groups/ }],
  ['201 groups choosing 200 with onlyGroups', cognito(groupsN(201)), { onlyGroups: groupsN(201).slice(1) }, { entries: 10 }],
  ['onlyGroups with 201 entries', cognito(groupsN(201)), { onlyGroups: groupsN(201) }, { reject: /at most 200 groups/ }],
  ['onlyGroups with duplicates collapses them', cognito(groupsN(200)), { onlyGroups: [...groupsN(200), ...groupsN(200)] }, { entries: 10 }],
  ['a group name over 256 characters (OIDC)', cognito([long(257)]), {}, { reject: /longer than 256/ }],
  ['a group name of exactly 256 characters', cognito([long(256)]), {}, { entries: 1 }],
  // Prefixes.
  ['prefix ""', cognito(['admins']), { prefix: '' }, { entries: 1 }],
  ['prefix "*" is literal, not a wildcard', cognito(['admins']), { prefix: '*' }, { messages: [{ topic: 'news', groups: ['admins'] }, { topic: '*news', groups: ['admins'] }] }],
  ['prefix of 256 characters', cognito(['admins']), { prefix: long(256) }, { entries: 1 }],
  ['prefix of 300 characters', cognito(['admins']), { prefix: long(300) }, { reject: /prefix: at most 256/ }],
  ['prefix with 21 groups applies to every entry', cognito(groupsN(21)), { prefix: 'a/' }, { entries: 2 }],
  // Good callers.
  ['Lambda authorizer groups as JSON text', lambda({ groups: '["team-a","Team_B"]' }), { prefix: 'x' }, { entries: 1 }],
  ['onlyGroups narrows to one own group', cognito(['admins', 'team-a']), { onlyGroups: ['team-a'] }, { strangers: ['admins'] }],
];

for (const [name, caller, args, expect] of corpus) {
  test(`subscribe: ${name}`, (t) => check(t, files, caller, args, expect));
}

test('subscribe: more groups than the configured maximum (3) are refused', (t) => {
  check(t, small, cognito(groupsN(4)), {}, { reject: /at most 3 groups/ });
  check(t, small, cognito(groupsN(4)), { onlyGroups: groupsN(3) }, { entries: 1 });
});

test('subscribe: a mode the API\'s subscribers do not use is refused, whatever groups it carries (small.toml: Cognito only)', (t) => {
  check(t, small, oidc({ 'cognito:groups': ['team-a'] }), {}, { reject: /subscribers do not use Open ID Connect Authorization/ });
  check(t, small, lambda({ groups: '["team-a"]' }), {}, { reject: /subscribers do not use Lambda Authorization/ });
  check(t, small, cognito(['team-a']), {}, { entries: 1 });
});

// Publishing. Only the configured publisher principals publish (harness.toml: the harness-publisher role's
// sessions, the IAM user ci-publisher, the role ops/ops-publisher's sessions).
const PUBLISHER = 'arn:aws:sts::123456789012:assumed-role/harness-publisher/';
const iamAs = (userArn, extra = {}) => ({ mode: vtl.MODES.IAM, iam: { username: 'AROAEXAMPLE:x', userArn, ...extra } });
const iam = iamAs(`${PUBLISHER}publisher-lambda`);
const UUID = '0b6e2f3a-8c1d-4e5f-9a7b-3c2d1e0f4a5b';
const msg = (over = {}) => ({ topic: 'chat/1', data: '{"x":1}', groups: ['team-a'], uuid: UUID, ...over });
const publishCorpus = [
  ['a message with no groups', iam, msg({ groups: [] }), /needs at least one group/],
  ['a message with an empty group name', iam, msg({ groups: ['team-a', ''] }), /every group is a string/],
  ['a message with a group name over 256 characters', iam, msg({ groups: [long(257)] }), /every group is a string/],
  ['a message with an empty topic', iam, msg({ topic: '' }), /topic: must be a non-empty/],
  ['a message with a blank topic', iam, msg({ topic: '   ' }), /topic: must be a non-empty/],
  ['a message whose uuid is not a UUID', iam, msg({ uuid: 'client-chosen' }), /uuid: must be a UUID/],
  ['a message whose uuid is empty', iam, msg({ uuid: '' }), /uuid: must be a UUID/],
  ['a message whose uuid has a suffix', iam, msg({ uuid: `${UUID}x` }), /uuid: must be a UUID/],
  ['a message whose uuid has no hyphens', iam, msg({ uuid: UUID.replace(/-/g, '') }), /uuid: must be a UUID/],
  ['a Cognito user publishing', cognito(['team-a']), msg(), /Unauthorized/],
  ['an API key publishing', { mode: vtl.MODES.API_KEY }, msg(), /Unauthorized/],
  ['a Lambda-authorized caller publishing', lambda({ groups: '["team-a"]' }), msg(), /Unauthorized/],
  ['an IAM role whose name extends the publisher\'s (harness-publisher-evil)', iamAs('arn:aws:sts::123456789012:assumed-role/harness-publisher-evil/x'), msg(), /Unauthorized/],
  ['an IAM role named like the publisher with a suffix', iamAs('arn:aws:sts::123456789012:assumed-role/harness-publisherx/x'), msg(), /Unauthorized/],
  ['the publisher role\'s prefix with an empty session name', iamAs(PUBLISHER), msg(), /Unauthorized/],
  ['the publisher role\'s prefix with a session holding a slash', iamAs(`${PUBLISHER}a/b`), msg(), /Unauthorized/],
  ['the publisher role in another account', iamAs('arn:aws:sts::999999999999:assumed-role/harness-publisher/x'), msg(), /Unauthorized/],
  ['the publisher role\'s ARN itself, not a session', iamAs('arn:aws:iam::123456789012:role/harness-publisher'), msg(), /Unauthorized/],
  ['an IAM user whose name extends the extra user\'s', iamAs('arn:aws:iam::123456789012:user/ci-publisher2'), msg(), /Unauthorized/],
  ['another IAM user', iamAs('arn:aws:iam::123456789012:user/someone'), msg(), /Unauthorized/],
  ['an end user\'s Cognito identity-pool session', iamAs('arn:aws:sts::123456789012:assumed-role/acme-identity-pool-auth/CognitoIdentityCredentials', { cognitoIdentityPoolId: 'us-east-1:0c9d9c1e-0000-4000-8000-000000000000', cognitoIdentityId: 'us-east-1:11111111-2222-3333-4444-555555555555' }), msg(), /Unauthorized/],
  ['an identity-pool session on the publisher role itself', iamAs(`${PUBLISHER}CognitoIdentityCredentials`, { cognitoIdentityPoolId: 'us-east-1:0c9d9c1e-0000-4000-8000-000000000000' }), msg(), /Unauthorized/],
  ['an IAM caller without userArn', iamAs(undefined), msg(), /Unauthorized/],
];
for (const [name, caller, args, reason] of publishCorpus) {
  test(`publish: ${name} is refused`, () => {
    const r = vtl.publish(files, caller, args);
    assert.equal(r.rejected, true, `published: ${JSON.stringify(r.message)}`);
    assert.match(r.message, reason);
  });
}

for (const [name, caller] of [
  ['the publisher role\'s session', iam],
  ['another session of the publisher role', iamAs(`${PUBLISHER}i-0123`)],
  ['an extra publisher role\'s session (its path is not in assumed-role ARNs)', iamAs('arn:aws:sts::123456789012:assumed-role/ops-publisher/deploy')],
  ['the extra publisher IAM user', iamAs('arn:aws:iam::123456789012:user/ci-publisher')],
]) {
  test(`publish: ${name} publishes, keeping its uuid`, () => {
    const r = vtl.publish(files, caller, msg());
    assert.equal(r.rejected, false, r.message);
    assert.deepEqual(r.message, msg(), 'the message, its uuid included, is returned as published');
    assert.deepEqual(r.misuse, []);
  });
}

test('publish: an upper-case UUID is kept as sent', () => {
  const r = vtl.publish(files, iam, msg({ uuid: UUID.toUpperCase() }));
  assert.equal(r.rejected, false, r.message);
  assert.equal(r.message.uuid, UUID.toUpperCase());
});

test('publish: without a uuid, the server mints one', () => {
  for (const args of [msg({ uuid: undefined }), msg({ uuid: null })]) {
    const r = vtl.publish(files, iam, args);
    assert.equal(r.rejected, false, r.message);
    assert.match(r.message.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.deepEqual({ ...r.message, uuid: null }, { ...args, uuid: null });
  }
});

test('publish then subscribe: a published message reaches only subscribers of its groups', () => {
  const m = vtl.publish(files, iam, msg({ groups: ['team-a', 'Team_B'] })).message;
  const member = vtl.subscribe(files, cognito(['Team_B']), {});
  const other = vtl.subscribe(files, cognito(['team-b', 'TEAM-A']), {});
  assert.equal(matches(member.filter, m), true);
  assert.equal(matches(other.filter, m), false, 'LEAK: team-b/TEAM-A received a message for team-a/Team_B');
});

// The schema.
const APPSYNC_PRELUDE = `
scalar AWSJSON
directive @aws_iam on FIELD_DEFINITION | OBJECT
directive @aws_cognito_user_pools(cognito_groups: [String]) on FIELD_DEFINITION | OBJECT
directive @aws_oidc on FIELD_DEFINITION | OBJECT
directive @aws_lambda on FIELD_DEFINITION | OBJECT
directive @aws_api_key on FIELD_DEFINITION | OBJECT
directive @aws_subscribe(mutations: [String]) on FIELD_DEFINITION
`;
const directives = (node) => node.directives.map((d) => d.name.value);

test('schema: publish is IAM only; Message and subscribe carry the subscriber modes', () => {
  const doc = parse(APPSYNC_PRELUDE + files['graphql/schema.graphql']);
  buildASTSchema(doc);
  const type = (n) => doc.definitions.find((d) => d.name && d.name.value === n);
  const field = (t, f) => type(t).fields.find((x) => x.name.value === f);
  assert.deepEqual(directives(field('Mutation', 'publish')), ['aws_iam']);
  assert.deepEqual(directives(type('Message')), ['aws_iam', 'aws_cognito_user_pools', 'aws_oidc', 'aws_lambda']);
  const sub = field('Subscription', 'subscribe');
  assert.deepEqual(directives(sub), ['aws_subscribe', 'aws_cognito_user_pools', 'aws_oidc', 'aws_lambda']);
  assert.deepEqual(sub.directives[0].arguments[0].value.values.map((v) => v.value), ['publish']);
  assert.deepEqual(sub.arguments.map((a) => a.name.value), ['prefix', 'onlyGroups']);
  assert.deepEqual(type('Message').fields.map((f) => f.name.value), ['topic', 'data', 'groups', 'uuid']);
  const smallDoc = parse(APPSYNC_PRELUDE + small['graphql/schema.graphql']);
  assert.deepEqual(directives(smallDoc.definitions.find((d) => d.name && d.name.value === 'Message')), ['aws_iam', 'aws_cognito_user_pools']);
});
