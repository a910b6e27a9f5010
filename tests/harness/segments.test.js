'use strict';
// The Events handler's JavaScript copy of groupcast::group_segment against the table the Rust test
// (functions/groupcast/tests/segment_table.rs) checks too: both must map every name alike.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { render } = require('./lib/render');
const { load } = require('./lib/handler');

const table = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'group-segments.json'), 'utf8'));
const handler = render('harness.toml')['events/live.js'];
const { groupSegment } = load(handler);
// The same handler with an encoder that keeps more punctuation and writes lower-case hex: the bytes read back
// from util.urlEncode must not depend on those choices.
const lenient = load(handler, { urlEncode: 'lenient' }).groupSegment;

test('segments: the table is big enough to stress the rule', () => {
  assert.ok(table.cases.length >= 40, `${table.cases.length} cases`);
});

for (const c of table.cases) {
  test(`segments: ${JSON.stringify(c.group).slice(0, 40)} (${c.note})`, () => {
    assert.equal(groupSegment(c.group), c.segment);
    assert.equal(lenient(c.group), c.segment, 'with a lenient util.urlEncode');
  });
}

test('segments: every segment is a valid channel segment without wildcards, and no two groups share one', () => {
  const seen = new Map();
  for (const c of table.cases.filter((x) => x.segment !== null)) {
    assert.match(c.segment, /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?$/, c.group);
    assert.equal(seen.get(c.segment), undefined, `${JSON.stringify(seen.get(c.segment))} and ${JSON.stringify(c.group)} share ${c.segment}`);
    seen.set(c.segment, c.group);
  }
});

test('segments: names no Rust string can hold (lone surrogates) and non-strings have no segment', () => {
  for (const g of ['\ud800', 'a\udc00', '\ud83d', 'x\ud83dy', null, undefined, 7, ['admins'], { toString: () => 'admins' }]) {
    assert.equal(groupSegment(g), null, JSON.stringify(String(g)));
  }
});
