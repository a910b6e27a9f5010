'use strict';
// The Events namespace handler against the adversarial corpus: onSubscribe must admit a caller only to
// /{namespace}/{segment of one of their groups}/..., and onPublish only IAM callers on group channels. The
// handler runs as rendered, in a bare V8 context with APPSYNC_JS's `util`, and passes the APPSYNC_JS lint.
const test = require('node:test');
const assert = require('node:assert/strict');
const { render } = require('./lib/render');
const { load, eventsCtx } = require('./lib/handler');
const { lintHandler } = require('./lib/lint');

const files = render('harness.toml');
const live = load(files['events/live.js']);
const open = load(files['events/open.js']);

const cognito = (groups) => ({ sub: 's1', username: 'alice', issuer: 'https://cognito-idp.us-east-1.amazonaws.com/p', groups, claims: { 'cognito:groups': groups }, sourceIp: ['1.2.3.4'], defaultAuthStrategy: 'ALLOW' });
const cognitoWithout = () => ({ sub: 's1', username: 'alice', issuer: 'https://cognito-idp.us-east-1.amazonaws.com/p', claims: {}, sourceIp: ['1.2.3.4'] });
const lambda = (handlerContext) => ({ handlerContext });
const lambdaGroups = (groups) => lambda({ sub: 's1', groups: JSON.stringify(groups) });
const oidc = (claims) => ({ sub: 's2', issuer: 'https://idp.example.invalid', claims });
const iam = { accountId: '123456789012', userArn: 'arn:aws:sts::123456789012:assumed-role/publisher/x', username: 'AROA:x', sourceIp: ['1.2.3.4'] };

// [attack, identity, channel, expected: true (admitted) or a RegExp the rejection reason must match]
const corpus = [
  // Channel shapes.
  ['channel /ns without a group segment', cognito(['team-a']), '/live', /no group segment/],
  ['channel /ns/ with an empty group segment', cognito(['team-a']), '/live/', /no group segment/],
  ['channel /ns/* (every group)', cognito(['team-a']), '/live/*', /wildcard/],
  ['channel /ns/*/x', cognito(['team-a']), '/live/*/x', /wildcard/],
  ['channel /ns/a* (prefix wildcard)', cognito(['a', 'ab']), '/live/a*', /wildcard/],
  ['channel /ns/team-a* by a team-a member', cognito(['team-a']), '/live/team-a*', /wildcard/],
  ['channel /ns/*team-a', cognito(['team-a']), '/live/*team-a', /wildcard/],
  ['a 6-segment channel', cognito(['team-a']), '/live/team-a/b/c/d/e', /more than 5 segments/],
  ['a 5-segment channel of an own group', cognito(['team-a']), '/live/team-a/b/c/d', true],
  ['a trailing wildcard under an own group', cognito(['team-a']), '/live/team-a/*', true],
  ['a wildcard in the middle of the topic', cognito(['team-a']), '/live/team-a/*/x', /segment 2 is not/],
  ['an empty segment before the group', cognito(['team-a']), '/live//team-a', /segment 1 is not/],
  ['an empty topic segment', cognito(['team-a']), '/live/team-a//x', /segment 2 is not/],
  ['another namespace on this handler', cognito(['team-a']), '/jobs/team-a', /not in namespace live/],
  ['no channel path', cognito(['team-a']), null, /channel path is missing/],
  ['the raw group name instead of its segment', cognito(['Team_B']), '/live/Team_B', /segment 1 is not/],
  ['a segment with a dot-dot', cognito(['team-a']), '/live/../team-a', /segment 1 is not/],
  ['channel without the leading slash', cognito(['team-a']), 'live/team-a/x', true],
  // Membership.
  ['another group\'s channel', cognito(['team-a']), '/live/team-b', /in no group whose segment is team-b/],
  ['a case variant of an own group', cognito(['team-a']), '/live/Team-a', /in no group whose segment/],
  ['a Cyrillic look-alike member asking for admins', cognito(['\u0430dmins']), '/live/admins', /in no group whose segment/],
  ['a Cyrillic look-alike member on their own channel', cognito(['\u0430dmins']), '/live/x---d0-b0dmins', true],
  ['a fullwidth look-alike member asking for ADMIN', cognito(['ＡＤＭＩＮ']), '/live/ADMIN', /in no group whose segment/],
  ['a member of group * on its encoded channel', cognito(['*']), '/live/x---2a', true],
  ['a non-member of group * on its encoded channel', cognito(['team-a']), '/live/x---2a', /in no group whose segment/],
  ['a group literally named like an encoding (x---2a)', cognito(['x---2a']), '/live/x---2a', /in no group whose segment/],
  ['a member of Team_B on its encoded channel', cognito(['Team_B']), '/live/x--Team-5fB', true],
  ['a member of team_b asking for Team_B', cognito(['team_b']), '/live/x--Team-5fB', /in no group whose segment/],
  ['names with quotes and backslashes', cognito(['quo"te', 'back\\slash']), '/live/x--quo-22te/x', true],
  ['a quote member asking for the unquoted name', cognito(['quo"te']), '/live/quote', /in no group whose segment/],
  ['names with # $ / +', cognito(['#', '$aws', 'a/b', 'a+b']), '/live/a', /in no group whose segment/],
  ['a member of a/b on its encoded channel', cognito(['a/b']), '/live/x--a-2fb', true],
  ['a group name longer than a segment, truncated', cognito(['z'.repeat(51)]), `/live/${'z'.repeat(50)}`, /in no group whose segment/],
  ['a prefix of an own group name', cognito(['team-abc']), '/live/team-a', /in no group whose segment/],
  // Identities.
  ['Cognito groups null', cognito(null), '/live/team-a', /not a list/],
  ['Cognito groups empty', cognito([]), '/live/team-a', /in no group/],
  ['Cognito identity without groups', cognitoWithout(), '/live/team-a', /has no groups/],
  ['Cognito groups holding a number', cognito(['team-a', 5]), '/live/team-a', /not a string/],
  ['Cognito groups as a string', cognito('team-a'), '/live/team-a', /not a list/],
  ['API key caller (no identity)', null, '/live/team-a', /no caller identity/],
  ['IAM caller subscribing', iam, '/live/team-a', /has no groups/],
  ['Lambda authorizer context without groups', lambda({ sub: 's1' }), '/live/team-a', /no handlerContext.groups/],
  ['Lambda authorizer context null', lambda(null), '/live/team-a', /no handlerContext.groups/],
  ['Lambda groups empty list', lambdaGroups([]), '/live/team-a', /in no group/],
  ['Lambda groups that are not JSON', lambda({ groups: 'team-a' }), '/live/team-a', /runtime error/],
  ['Lambda groups as a JSON string', lambda({ groups: '"team-a"' }), '/live/team-a', /not a list/],
  ['Lambda groups as an array-like object', lambda({ groups: '{"0":"team-a","length":1}' }), '/live/team-a', /not a list/],
  ['Lambda groups nested', lambda({ groups: '[["team-a"]]' }), '/live/team-a', /not a string/],
  ['Lambda groups as a real array, not text', lambda({ groups: ['team-a'] }), '/live/team-a', /not JSON text/],
  ['Lambda groups holding null', lambda({ groups: '[null]' }), '/live/team-a', /not a string/],
  ['Lambda groups with a lone surrogate', lambda({ groups: '["\\ud800"]' }), '/live/x---ed-a0-80', /in no group whose segment/],
  ['Lambda context with a __proto__ key', lambda(JSON.parse('{"__proto__":{"groups":"[\\"team-a\\"]"}}')), '/live/team-a', /no handlerContext.groups/],
  ['Lambda context plus forged Cognito groups', { handlerContext: { groups: '["team-b"]' }, groups: ['team-a'] }, '/live/team-a', /in no group whose segment/],
  ['Lambda groups of a member', lambdaGroups(['team-b', 'team-a']), '/live/team-a/chat', true],
  ['OIDC caller with groups in the configured claim', oidc({ roles: ['team-a'] }), '/live/team-a', true],
  ['OIDC caller with groups in another claim', oidc({ groups: ['team-a'] }), '/live/team-a', /has no groups/],
  ['OIDC claim as a space-separated string', oidc({ roles: 'team-a team-b' }), '/live/team-a', /not a list/],
];

for (const [attack, identity, path, expected] of corpus) {
  test(`events onSubscribe: ${attack}`, () => {
    const r = live.subscribe(eventsCtx({ path, identity }));
    if (expected === true) {
      assert.equal(r.allowed, true, `refused: ${r.reason}`);
    } else {
      assert.equal(r.allowed, false, `ADMITTED ${JSON.stringify(path)}`);
      assert.match(r.reason, expected, `refused for another reason: ${r.reason}`);
    }
  });
}

const events = [{ id: 'e1', payload: { topic: 'x', data: {} } }];
const publishCorpus = [
  ['an IAM publisher on a group channel', iam, '/live/team-a/chat', true],
  ['a Cognito user publishing', cognito(['team-a']), '/live/team-a/chat', /only AWS_IAM/],
  ['a Lambda-authorized caller publishing', lambdaGroups(['team-a']), '/live/team-a/chat', /only AWS_IAM/],
  ['an API key publishing', null, '/live/team-a', /only AWS_IAM/],
  ['IAM publishing to /ns/*', iam, '/live/*', /wildcard/],
  ['IAM publishing to /ns/a/*', iam, '/live/team-a/*', /publish channels hold no wildcard/],
  ['IAM publishing to /ns', iam, '/live', /no group segment/],
  ['IAM publishing to a raw group name', iam, '/live/Team_B', /segment 1 is not/],
];
for (const [attack, identity, path, expected] of publishCorpus) {
  test(`events onPublish: ${attack}`, () => {
    const r = live.publish(eventsCtx({ path, identity, operation: 'PUBLISH', events }));
    if (expected === true) {
      assert.equal(r.allowed, true, `refused: ${r.reason}`);
      assert.deepEqual(r.value, events, 'onPublish must forward the events unchanged');
    } else {
      assert.equal(r.allowed, false, `PUBLISHED to ${JSON.stringify(path)}`);
      assert.match(r.reason, expected, `refused for another reason: ${r.reason}`);
    }
  });
}

test('events: a namespace with group_check = false has no onSubscribe, only the publish guard', () => {
  assert.equal(open.hasOnSubscribe, false);
  assert.equal(live.hasOnSubscribe, true);
  assert.equal(open.publish(eventsCtx({ path: '/open/team-a', identity: cognito(['team-a']), operation: 'PUBLISH', events })).allowed, false);
});

test('events: every rendered handler passes the APPSYNC_JS lint (@aws-appsync/eslint-plugin recommended)', async () => {
  for (const name of Object.keys(files).filter((f) => f.startsWith('events/'))) {
    assert.deepEqual(await lintHandler(files[name]), [], `${name} uses something APPSYNC_JS lacks`);
    assert.ok(files[name].length <= 32768, `${name} is over the 32 KB namespace code limit`);
  }
});
