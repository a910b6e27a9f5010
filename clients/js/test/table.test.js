// groupSegment and decodeSegment against the table groupcast's Rust rule and the generated Events
// handler are tested with too (tests/fixtures/group-segments.json): every row, both directions.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { groupSegment, decodeSegment, isValidSegment, GroupcastError } from '../index.js';

const table = JSON.parse(readFileSync(new URL('../../../tests/fixtures/group-segments.json', import.meta.url), 'utf8'));

test('the shared table is there and big enough to stress the rule', () => {
  assert.ok(table.cases.length >= 40, `${table.cases.length} cases`);
});

for (const c of table.cases) {
  const label = `${JSON.stringify(c.group).slice(0, 40)} (${c.note})`;
  if (c.segment === null) {
    test(`a name the table gives no segment is refused with a GroupcastError: ${label}`, () => {
      assert.throws(() => groupSegment(c.group), (e) => e instanceof GroupcastError && e.field === 'group' && /empty|too-long/.test(e.rule));
    });
  } else {
    test(`the table's segment is groupSegment's, and decodes back to the group: ${label}`, () => {
      assert.equal(groupSegment(c.group), c.segment);
      assert.ok(isValidSegment(c.segment), c.segment);
      assert.equal(decodeSegment(c.segment), c.group);
    });
  }
}

test('no two groups of the table share a segment', () => {
  const owner = new Map();
  for (const c of table.cases.filter((x) => x.segment !== null)) {
    assert.equal(owner.get(c.segment), undefined, `${owner.get(c.segment)} and ${c.group} share ${c.segment}`);
    owner.set(c.segment, c.group);
  }
});
