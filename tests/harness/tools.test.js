'use strict';
// The harness's own evaluators, checked against the rules AWS documents, so a passing corpus means
// something: filter operators and limits, toSubscriptionFilter, $extensions capture, policy matching.
const test = require('node:test');
const assert = require('node:assert/strict');
const { limitViolations, matches, toSubscriptionFilter } = require('./lib/filters');
const { allows, globMatch } = require('./lib/policy');
const vtl = require('./lib/vtl');

const msg = { topic: 'chat/room1', groups: ['a', 'b'], uuid: 'u', n: 5 };
const f = (...entries) => ({ filterGroup: entries.map((filters) => ({ filters })) });
const c = (fieldName, operator, value) => ({ fieldName, operator, value });

test('tools: filter operators follow the enhanced-filtering guide (AND within an entry, OR across)', () => {
  assert.equal(matches(f([c('groups', 'containsAny', ['x', 'b'])]), msg), true);
  assert.equal(matches(f([c('groups', 'containsAny', ['x', 'B'])]), msg), false, 'case sensitive');
  assert.equal(matches(f([c('groups', 'containsAny', ['a']), c('topic', 'beginsWith', 'chat/')]), msg), true);
  assert.equal(matches(f([c('groups', 'containsAny', ['a']), c('topic', 'beginsWith', 'news/')]), msg), false, 'AND');
  assert.equal(matches(f([c('topic', 'beginsWith', 'news/')], [c('groups', 'contains', 'a')]), msg), true, 'OR');
  assert.equal(matches(f([c('topic', 'beginsWith', '*')]), msg), false, 'beginsWith is literal');
  assert.equal(matches(f([c('topic', 'eq', 'chat/room1')]), msg), true);
  assert.equal(matches(f([c('topic', 'ne', 'chat/room1')]), msg), false);
  assert.equal(matches(f([c('n', 'between', [1, 5])]), msg), true);
  assert.equal(matches(f([c('n', 'in', [1, 2])]), msg), false);
  assert.equal(matches(f([c('missing', 'containsAny', ['a'])]), msg), false, 'a missing field matches nothing');
  assert.equal(matches(f([c('groups', 'containsAny', ['a'])]), { ...msg, groups: [] }), false, 'a message with no groups reaches no one');
});

test('tools: filter limits are AppSync\'s', () => {
  const groups = (n) => Array.from({ length: n }, (_, i) => `g${i}`);
  assert.deepEqual(limitViolations(f([c('groups', 'containsAny', groups(20))])), []);
  assert.match(limitViolations(f([c('groups', 'containsAny', groups(21))])).join(), /containsAny has 21 values/);
  assert.match(limitViolations(f(...groups(11).map((g) => [c('groups', 'containsAny', [g])]))).join(), /11 filters/);
  assert.match(limitViolations(f(['a', 'b', 'c', 'd', 'e', 'f'].map((k) => c(k, 'eq', 1)))).join(), /6 conditions/);
  assert.match(limitViolations(f([c('topic', 'beginsWith', 'p'.repeat(257))])).join(), /257 characters/);
  assert.match(limitViolations(f([c('topic', 'in', ['a', 'b', 'c'])], [c('topic', 'in', ['a', 'b', 'c', 'd'])], [c('x', 'in', [1, 2, 3, 4])])).join(), /11 filters \(in expanded\)/);
  assert.match(limitViolations({ filterGroup: [] }).join(), /empty/);
  assert.match(limitViolations(undefined).join(), /no filterGroup/);
  assert.match(limitViolations(f([c('topic', 'like', 'x')])).join(), /not an AppSync operator/);
});

test('tools: toSubscriptionFilter turns {field: {op: value}} maps and or/and lists into filter groups', () => {
  assert.deepEqual(toSubscriptionFilter({ groups: { containsAny: ['a'] }, topic: { beginsWith: 'c' } }), f([c('groups', 'containsAny', ['a']), c('topic', 'beginsWith', 'c')]));
  assert.deepEqual(toSubscriptionFilter({ or: [{ topic: { eq: 'a' } }, { topic: { eq: 'b' } }] }), f([c('topic', 'eq', 'a')], [c('topic', 'eq', 'b')]));
  assert.deepEqual(toSubscriptionFilter({ topic: { eq: 'a', beginsWith: 'b' } }), f([c('topic', 'eq', 'a')], [c('topic', 'beginsWith', 'b')]));
  assert.deepEqual(toSubscriptionFilter({ topic: { eq: 'a' }, uuid: { eq: 'u' } }, ['uuid']), f([c('topic', 'eq', 'a')]));
});

test('tools: $extensions.setSubscriptionFilter is captured from response templates only, and renders nothing', () => {
  const response = `#set($f = $util.transform.toSubscriptionFilter({"groups": {"containsAny": $ctx.identity.claims.get("cognito:groups")}}))
$extensions.setSubscriptionFilter($f)
$util.toJson(null)`;
  const files = { 'graphql/Subscription.subscribe.request.vtl': '{"version":"2018-05-29","payload":{}}', 'graphql/Subscription.subscribe.response.vtl': response };
  const caller = { mode: vtl.MODES.COGNITO, claims: { iss: 'https://cognito-idp.x', sub: 's', 'cognito:groups': ['a', 'b'] } };
  const r = vtl.subscribe(files, caller, {});
  assert.equal(r.rejected, false, r.message);
  assert.equal(r.filterCalls, 1);
  assert.deepEqual(r.filter, f([c('groups', 'containsAny', ['a', 'b'])]));
  const misplaced = vtl.subscribe({ ...files, 'graphql/Subscription.subscribe.request.vtl': '$extensions.setSubscriptionFilter({})\n{"version":"2018-05-29","payload":{}}' }, caller, {});
  assert.deepEqual(misplaced.misuse, ['setSubscriptionFilter called outside a subscription response template']);
  const none = vtl.subscribe({ ...files, 'graphql/Subscription.subscribe.response.vtl': '$util.toJson(null)' }, caller, {});
  assert.equal(none.filterCalls, 0, 'a template without the call is seen as unfiltered');
});

test('tools: policy matching uses * and ? wildcards, literal + and #, and policy variables', () => {
  assert.equal(globMatch('topic/a/*', 'topic/a/b/c'), true, '* spans /');
  assert.equal(globMatch('topic/a/*', 'topic/a'), false);
  assert.equal(globMatch('topic/?', 'topic/x'), true);
  assert.equal(globMatch('topic/?', 'topic/xy'), false);
  assert.equal(globMatch('topicfilter/a/+', 'topicfilter/a/b'), false, '+ is literal');
  assert.equal(globMatch('topicfilter/a/#', 'topicfilter/a/#'), true);
  assert.equal(globMatch('topicfilter/a/#', 'topicfilter/a/b'), false, '# is literal');
  assert.equal(globMatch('IoT:Publish', 'iot:publish', true), true, 'actions are case-insensitive');
  const doc = { Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: 'client/${cognito-identity.amazonaws.com:sub}' }] };
  assert.equal(allows(doc, 'iot:Connect', 'client/me', { 'cognito-identity.amazonaws.com:sub': 'me' }), true);
  assert.equal(allows(doc, 'iot:Connect', 'client/${cognito-identity.amazonaws.com:sub}', {}), false, 'unresolved variables match nothing');
  const deny = { Statement: [...doc.Statement, { Effect: 'Deny', Action: 'iot:*', Resource: '*' }] };
  assert.equal(allows(deny, 'iot:Connect', 'client/me', { 'cognito-identity.amazonaws.com:sub': 'me' }), false, 'an explicit Deny wins');
});
