'use strict';
// The Done-when of the isolation work: the harness fails when any single check is removed from the templates.
// Runs tests/harness/mutate.mjs over every fenced check and every listed policy mutation (about two minutes).
const test = require('node:test');
const assert = require('node:assert/strict');

test('mutation: removing any single check from the templates makes the harness fail', { timeout: 15 * 60 * 1000 }, async () => {
  const { mutate, report } = await import('./mutate.mjs');
  const results = await mutate();
  console.log(report(results));
  assert.ok(results.length >= 25, `only ${results.length} mutations found: did the check: fences go?`);
  for (const must of [
    'Subscription.subscribe:not-member',
    'Subscription.subscribe:user-id',
    'Subscription.subscribe:invalidation-user',
    'Subscription.subscribe:invalidation-groups',
    'Subscription.subscribe:set-invalidation-filter',
    '_publisher-principals:publish-principal',
    'Mutation.revoke:revoke-invalidate',
    'Mutation.revoke:revoke-user',
    'handler:wildcard',
    'handler:subscribe-epoch',
    'handler:publish-epoch',
    'handler:epoch-segment',
    'handler:epoch-window',
    'handler:epoch-clock',
    'iot:connect-as-self',
  ]) {
    assert.ok(results.some((r) => r.name === must), `mutation ${must} is missing`);
  }
  const survivors = results.filter((r) => !r.caught);
  assert.deepEqual(survivors.map((r) => r.name), [], `mutants the harness did not catch:\n${report(survivors)}`);
});
