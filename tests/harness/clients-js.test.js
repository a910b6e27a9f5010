'use strict';
// The frontend helper (clients/js, what browsers compute their channels with) and the generated Events
// handler (what AppSync enforces subscriptions with) must map every group name alike: a browser that
// computed another segment than the handler would be refused from its own group's channel. Both run here
// on the same seeded random names, the shared table and strings no Rust string can hold.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { render, REPO } = require('./lib/render');
const { load } = require('./lib/handler');

const CLIENT = path.join(REPO, 'clients', 'js');
const table = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'group-segments.json'), 'utf8'));
const handlers = Object.entries(render(path.join(REPO, 'examples', 'groupcast.toml'))).filter(([p]) => p.startsWith('events/'));

// The helper's answer in the handler's terms: the segment, or null where the helper throws.
function helperSegment(groupSegment, g) {
  try {
    return groupSegment(g);
  } catch (e) {
    if (e && e.name === 'GroupcastError') return null;
    throw e;
  }
}

test('clients/js: the bundled example renders Events handlers that carry the group rule', () => {
  assert.ok(handlers.length >= 1, 'no events/*.js in the bundled example');
  for (const [file, code] of handlers) assert.equal(typeof load(code).groupSegment, 'function', file);
});

for (const [file, code] of handlers) {
  test(`clients/js: groupSegment and ${file}'s groupSegment agree on 3,000 seeded random names, the table and lone surrogates`, async () => {
    const { groupSegment } = await import(path.join(CLIENT, 'index.js'));
    const { names } = await import(path.join(CLIENT, 'test', 'random.js'));
    const handler = load(code);
    const lenient = load(code, { urlEncode: 'lenient' });
    // Random names with a lone surrogate spliced in: the handler must refuse them as the helper does.
    const lone = names(99, 300).map((n, i) => n + ['\ud800', '\udfff', '\ud83d'][i % 3] + n.slice(0, 2));
    const all = [...names(11, 3000), ...table.cases.map((c) => c.group), ...lone];
    const mismatches = [];
    let refused = 0;
    for (const g of all) {
      const want = helperSegment(groupSegment, g);
      if (want === null) refused += 1;
      for (const [how, h] of [['java', handler], ['lenient', lenient]]) {
        const got = h.groupSegment(g);
        if (got !== want) mismatches.push(`${JSON.stringify(g)} (${how} urlEncode): handler ${JSON.stringify(got)}, clients/js ${JSON.stringify(want)}`);
      }
    }
    assert.deepEqual(mismatches.slice(0, 20), []);
    assert.ok(refused >= lone.length && refused < all.length / 2, `${refused} of ${all.length} refused`);
  });
}
