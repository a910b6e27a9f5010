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
// The authorizer's resolverContext is {sub, groups} (functions/groupcast-auth/src/authorizer.rs); `sub` is
// given unless a case leaves it out.
const lambda = (resolverContext) => ({ mode: vtl.MODES.LAMBDA, resolverContext: { sub: 'sub-3', ...resolverContext } });
const lambdaRaw = (resolverContext) => ({ mode: vtl.MODES.LAMBDA, resolverContext });
/// The user id a caller's subscription is keyed on: the `sub` claim, or resolverContext.sub.
const userIdOf = (caller) => (caller.claims ? caller.claims.sub : caller.resolverContext.sub);
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
  checkInvalidation(r, caller, args, [...userGroups, ...extra]);
  return r;
}

/// Every admitted subscription sets exactly one invalidation filter, within AppSync's limits, that a revoke
/// closes iff it names this subscriber AND one of the groups this subscription receives: never for another
/// user (case variants, prefixes, look-alikes), never for a group it does not receive.
function checkInvalidation(r, caller, args, groupsSeen) {
  assert.equal(r.invalidationFilters.length, 1, `the template called setSubscriptionInvalidationFilter ${r.invalidationFilters.length} times; exactly once is required`);
  assert.deepEqual(r.misuse, [], 'an extension was called where AppSync does not allow it');
  assert.deepEqual(limitViolations(r.invalidationFilter), [], 'the invalidation filter breaks AppSync limits');
  const me = userIdOf(caller);
  const userGroups = caller.claims ? caller.claims['cognito:groups'] : JSON.parse(caller.resolverContext.groups);
  const receives = new Set(args.onlyGroups || userGroups);
  const others = [`${me}x`, me.slice(0, -1), me.toUpperCase() === me ? me.toLowerCase() : me.toUpperCase(), ` ${me}`, 'someone-else', ''];
  const call = (userId, groups) => ({ subscriptionField: 'subscribe', payload: { userId, groups } });
  for (const g of new Set([...groupsSeen, 'admins', 'team-a', '\u0430dmins'])) {
    const closes = vtl.invalidates(r, call(me, [g]));
    assert.equal(closes, receives.has(g), `revoke(${JSON.stringify(me)}, [${JSON.stringify(g)}]) ${closes ? 'closed' : 'left open'} a subscription to ${JSON.stringify([...receives].slice(0, 5))}`);
    for (const other of others.filter((o) => o !== me)) {
      assert.equal(vtl.invalidates(r, call(other, [g])), false, `LEAK: revoke for ${JSON.stringify(other)} closed ${JSON.stringify(me)}'s subscription`);
    }
  }
  assert.equal(vtl.invalidates(r, call(me, [...receives])), true, 'a revoke naming all its groups closes it');
  assert.equal(vtl.invalidates(r, { subscriptionField: 'other', payload: { userId: me, groups: [...receives] } }), false, 'another field');
  assert.equal(vtl.invalidates(r, call(me, [])), false, 'a revoke naming no group closes nothing');
  assert.equal(vtl.invalidates(r, { subscriptionField: 'subscribe', payload: { groups: [...receives] } }), false, 'a payload without userId closes nothing');
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
  // Who is the caller: a subscription must be revocable, so it needs the subscriber's user id.
  ['Cognito token without a sub claim', { mode: vtl.MODES.COGNITO, claims: { iss: ISS, 'cognito:groups': ['admins'] } }, {}, { reject: /no usable user id/ }],
  ['Cognito token with an empty sub', cognito(['admins'], { sub: '' }), {}, { reject: /no usable user id/ }],
  ['Cognito token with a blank sub', cognito(['admins'], { sub: '  ' }), {}, { reject: /no usable user id/ }],
  ['Cognito token with a numeric sub', cognito(['admins'], { sub: 7 }), {}, { reject: /no usable user id/ }],
  ['Cognito token with a list as sub', cognito(['admins'], { sub: ['sub-1'] }), {}, { reject: /no usable user id/ }],
  ['Cognito token with a sub over 256 characters', cognito(['admins'], { sub: long(257) }), {}, { reject: /no usable user id/ }],
  ['Cognito token with a sub of exactly 256 characters', cognito(['admins'], { sub: long(256) }), {}, { entries: 1 }],
  ['Cognito token whose sub looks like VTL and JSON', cognito(['admins'], { sub: '$ctx.identity"},{"x":"' }), {}, { entries: 1 }],
  ['OIDC token without a sub claim', { mode: vtl.MODES.OIDC, claims: { iss: 'https://idp.example.invalid', 'cognito:groups': ['admins'] } }, {}, { reject: /no usable user id/ }],
  ['Lambda authorizer context without sub', lambdaRaw({ groups: '["admins"]' }), {}, { reject: /no usable user id/ }],
  ['Lambda authorizer context with an empty sub', lambda({ sub: '', groups: '["admins"]' }), {}, { reject: /no usable user id/ }],
  ['Lambda authorizer sub only under another key', lambdaRaw({ userId: 'sub-3', groups: '["admins"]' }), {}, { reject: /no usable user id/ }],
  ['Lambda authorizer sub as a claim name (cognito:username)', lambdaRaw({ 'cognito:username': 'alice', groups: '["admins"]' }), {}, { reject: /no usable user id/ }],
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

test('schema: publish and revoke are IAM only; Message and subscribe carry the subscriber modes', () => {
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
  assert.deepEqual(directives(field('Mutation', 'revoke')), ['aws_iam'], 'revoke is IAM only');
  assert.deepEqual(field('Mutation', 'revoke').arguments.map((a) => a.name.value), ['userId', 'groups']);
  assert.deepEqual(directives(type('Revocation')), ['aws_iam'], 'subscribers cannot read a revocation');
  assert.ok(!sub.directives[0].arguments[0].value.values.some((v) => v.value === 'revoke'), 'revoke is no message: subscribers never receive it');
  const smallDoc = parse(APPSYNC_PRELUDE + small['graphql/schema.graphql']);
  assert.deepEqual(directives(smallDoc.definitions.find((d) => d.name && d.name.value === 'Message')), ['aws_iam', 'aws_cognito_user_pools']);
});

// Revocation (docs/isolation.md, "Revocation"): the revoke mutation closes exactly the subscriptions of the
// named user that include a named group (https://docs.aws.amazon.com/appsync/latest/devguide/aws-appsync-real-time-invalidation.html).
const rv = (over = {}) => ({ userId: 'sub-1', groups: ['team-a'], ...over });
const revokeCorpus = [
  // Who may revoke: exactly who may publish (one shared check).
  ['a Cognito user revoking another user', cognito(['team-a']), rv({ userId: 'sub-2' }), /Unauthorized/],
  ['a Cognito user revoking themself', cognito(['team-a']), rv(), /Unauthorized/],
  ['an OIDC user', oidc({ 'cognito:groups': ['team-a'] }), rv(), /Unauthorized/],
  ['an API key', { mode: vtl.MODES.API_KEY }, rv(), /Unauthorized/],
  ['a Lambda-authorized caller', lambda({ groups: '["team-a"]' }), rv(), /Unauthorized/],
  ['an IAM role whose name extends the publisher\'s', iamAs('arn:aws:sts::123456789012:assumed-role/harness-publisher-evil/x'), rv(), /Unauthorized/],
  ['the publisher role\'s prefix with an empty session name', iamAs(PUBLISHER), rv(), /Unauthorized/],
  ['the publisher role\'s prefix with a session holding a slash', iamAs(`${PUBLISHER}a/b`), rv(), /Unauthorized/],
  ['another IAM user', iamAs('arn:aws:iam::123456789012:user/someone'), rv(), /Unauthorized/],
  ['an end user\'s Cognito identity-pool session', iamAs('arn:aws:sts::123456789012:assumed-role/acme-identity-pool-auth/CognitoIdentityCredentials', { cognitoIdentityPoolId: 'us-east-1:0c9d9c1e-0000-4000-8000-000000000000' }), rv(), /Unauthorized/],
  ['an identity-pool session on the publisher role itself', iamAs(`${PUBLISHER}CognitoIdentityCredentials`, { cognitoIdentityPoolId: 'us-east-1:0c9d9c1e-0000-4000-8000-000000000000' }), rv(), /Unauthorized/],
  ['an IAM caller without userArn', iamAs(undefined), rv(), /Unauthorized/],
  // What may be revoked.
  ['an empty user id', iam, rv({ userId: '' }), /userId: must be/],
  ['a blank user id', iam, rv({ userId: '   ' }), /userId: must be/],
  ['a null user id', iam, rv({ userId: null }), /userId: must be/],
  ['a numeric user id', iam, rv({ userId: 7 }), /userId: must be/],
  ['a list as user id', iam, rv({ userId: ['sub-1'] }), /userId: must be/],
  ['a user id over 256 characters', iam, rv({ userId: long(257) }), /userId: must be/],
  ['no groups', iam, rv({ groups: [] }), /groups: name at least one group/],
  ['groups that are not a list', iam, rv({ groups: 'team-a' }), /groups: name at least one group/],
  ['an empty group name', iam, rv({ groups: ['team-a', ''] }), /every group is a string/],
  ['a group name that is not a string', iam, rv({ groups: ['team-a', 7] }), /every group is a string/],
  ['a group name over 256 characters', iam, rv({ groups: [long(257)] }), /every group is a string/],
];
for (const [name, caller, args, reason] of revokeCorpus) {
  test(`revoke: ${name} is refused, and nothing is invalidated`, () => {
    const r = vtl.revoke(files, caller, args);
    assert.equal(r.rejected, true, `revoked: ${JSON.stringify(r.invalidations)}`);
    assert.match(r.message, reason);
  });
}

/// Subscribes `caller` and returns the admitted subscription (failing the test on a rejection).
const sub = (caller, args = {}) => {
  const r = vtl.subscribe(files, caller, args);
  assert.equal(r.rejected, false, r.message);
  return r;
};
/// Runs revoke as the publisher and returns its one invalidateSubscriptions call.
const revokeCall = (userId, groups, caller = iam) => {
  const r = vtl.revoke(files, caller, { userId, groups });
  assert.equal(r.rejected, false, r.message);
  assert.deepEqual(r.misuse, []);
  assert.equal(r.invalidations.length, 1, 'exactly one invalidateSubscriptions call');
  assert.deepEqual(r.result, { userId, groups }, 'the mutation returns what it revoked');
  return r.invalidations[0];
};

for (const [name, caller] of [
  ['the publisher role\'s session', iam],
  ['an extra publisher role\'s session', iamAs('arn:aws:sts::123456789012:assumed-role/ops-publisher/deploy')],
  ['the extra publisher IAM user', iamAs('arn:aws:iam::123456789012:user/ci-publisher')],
]) {
  test(`revoke: ${name} invalidates the subscribe field with {userId, groups}`, () => {
    assert.deepEqual(revokeCall('sub-1', ['team-a', 'Team_B'], caller), { subscriptionField: 'subscribe', payload: { userId: 'sub-1', groups: ['team-a', 'Team_B'] } });
  });
}

test('revoke: a revoke for group X closes A\'s subscriptions that include X, and leaves A\'s Y-only subscription and B\'s alone', () => {
  const A = (claims) => cognito(['X', 'Y'], { sub: 'user-a', ...claims });
  const aAll = sub(A());
  const aX = sub(A(), { onlyGroups: ['X'] });
  const aY = sub(A(), { onlyGroups: ['Y'] });
  const aYprefixed = sub(A(), { onlyGroups: ['Y'], prefix: 'chat/' });
  const bAll = sub(cognito(['X', 'Y'], { sub: 'user-b' }));
  const bX = sub(cognito(['X'], { sub: 'user-b' }), { onlyGroups: ['X'] });
  const call = revokeCall('user-a', ['X']);
  assert.equal(vtl.invalidates(aAll, call), true, 'A\'s subscription to X and Y is closed');
  assert.equal(vtl.invalidates(aX, call), true, 'A\'s subscription to X is closed');
  assert.equal(vtl.invalidates(aY, call), false, 'A keeps Y: the Y-only subscription stays');
  assert.equal(vtl.invalidates(aYprefixed, call), false, 'A keeps Y with a prefix too');
  assert.equal(vtl.invalidates(bAll, call), false, 'LEAK: a revoke for A closed B\'s subscription');
  assert.equal(vtl.invalidates(bX, call), false, 'LEAK: a revoke for A closed B\'s X subscription');
  // A then leaves Y as well: the Y-only subscription closes.
  assert.equal(vtl.invalidates(aY, revokeCall('user-a', ['Y'])), true);
  // Revoking B closes only B's.
  const forB = revokeCall('user-b', ['X', 'Y']);
  assert.deepEqual([aAll, aX, aY, bAll, bX].map((s) => vtl.invalidates(s, forB)), [false, false, false, true, true]);
});

test('revoke: the same user id under every subscriber mode is closed by one revoke; other ids never are', () => {
  const subs = [
    sub(cognito(['team-a'], { sub: 'u-1' })),
    sub(oidc({ sub: 'u-1', 'cognito:groups': ['team-a'] })),
    sub(lambda({ sub: 'u-1', groups: '["team-a"]' })),
  ];
  for (const s of subs) assert.equal(vtl.invalidates(s, revokeCall('u-1', ['team-a'])), true);
  for (const other of ['u-10', 'U-1', 'u-', 'u-1 ', ' u-1', 'u\u20111', '*', '$ctx.identity.sub']) {
    for (const s of subs) assert.equal(vtl.invalidates(s, revokeCall(other, ['team-a'])), false, `LEAK: revoke for ${JSON.stringify(other)} closed u-1's subscription`);
  }
});

test('revoke: group names are compared exactly: case variants, look-alikes and wildcards close nothing', () => {
  const s = sub(cognito(['admins', 'Team_B'], { sub: 'u-1' }));
  for (const g of ['Admins', 'ADMINS', '\u0430dmins', 'admins ', 'admin', '*', 'team-b', 'x--Team-5fB', 'Team_B\u200b']) {
    assert.equal(vtl.invalidates(s, revokeCall('u-1', [g])), false, `revoke of ${JSON.stringify(g)} closed a subscription to admins and Team_B`);
  }
  assert.equal(vtl.invalidates(s, revokeCall('u-1', ['nothing', 'Team_B'])), true, 'any one revoked group suffices');
});

test('revoke: a subscription to 200 groups is closed by a revoke of its last group, within AppSync\'s filter limits', () => {
  const s = sub(cognito(groupsN(200), { sub: 'u-1' }), { prefix: 'chat/' });
  assert.equal(s.invalidationFilter.filterGroup.length, 10);
  assert.deepEqual(limitViolations(s.invalidationFilter), []);
  for (const g of ['g0', 'g19', 'g20', 'g199']) assert.equal(vtl.invalidates(s, revokeCall('u-1', [g])), true, g);
  assert.equal(vtl.invalidates(s, revokeCall('u-1', ['g200'])), false);
  assert.equal(vtl.invalidates(s, revokeCall('u-2', ['g199'])), false);
});

test('revoke: the invalidation filter never delivers messages, and publish invalidates nothing', () => {
  const s = sub(cognito(['team-a'], { sub: 'u-1' }));
  const m = vtl.publish(files, iam, msg({ groups: ['team-a'] }));
  assert.equal(m.rejected, false, m.message);
  assert.deepEqual(m.invalidations, [], 'publish called invalidateSubscriptions');
  assert.equal(vtl.invalidates(s, { subscriptionField: 'subscribe', payload: m.message }), false, 'a published message (no userId) closes no subscription');
});
