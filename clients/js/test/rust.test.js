// groupSegment against groupcast::group_segment itself, on seeded random names: the Rust rule runs
// as the `segments` example of the groupcast crate (functions/groupcast/examples/segments.rs), which
// reads a JSON array of names and prints each result. Needs cargo (the workspace's toolchain); a
// missing toolchain fails the test saying so. CARGO_TARGET_DIR is honoured.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { groupSegment, iotClientId, GroupcastError } from '../index.js';
import { names, rng } from './random.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

function rust(groups) {
  try {
    const out = execFileSync('cargo', ['run', '-q', '--locked', '-p', 'groupcast', '--example', 'segments'], {
      cwd: REPO,
      input: JSON.stringify(groups),
      maxBuffer: 64 * 1024 * 1024,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return JSON.parse(out.toString('utf8'));
  } catch (e) {
    throw new Error(`cargo run -p groupcast --example segments failed (the property test runs the Rust rule):\n${e.stderr || e.message}`);
  }
}

function js(group) {
  try {
    return { segment: groupSegment(group), error: null, message: null };
  } catch (e) {
    if (!(e instanceof GroupcastError)) throw e;
    return { segment: null, error: e.rule, message: e.message };
  }
}

// Rust's `{:?}` of a string and JSON.stringify agree on printable ASCII; elsewhere the texts may
// quote the name differently, so only the rule is compared there.
const PRINTABLE = /^[\x20-\x7e]*$/;

test('groupSegment agrees with the Rust group_segment on 4,000 seeded random names, errors included', () => {
  const groups = names(7, 4000);
  const expected = rust(groups);
  assert.equal(expected.length, groups.length);
  const mismatches = [];
  for (let i = 0; i < groups.length; i += 1) {
    const r = expected[i];
    const j = js(groups[i]);
    assert.equal(r.group, groups[i], 'the Rust example read the name back unchanged');
    const same = r.segment === j.segment && r.error === j.error && (!PRINTABLE.test(groups[i]) || r.message === j.message);
    if (!same) mismatches.push(`${JSON.stringify(groups[i])}: rust ${JSON.stringify(r)}, js ${JSON.stringify(j)}`);
  }
  assert.deepEqual(mismatches, []);
  const kinds = new Set(expected.map((r) => (r.segment === null ? r.error : r.segment === r.group ? 'itself' : 'encoded')));
  assert.deepEqual([...kinds].sort(), ['empty', 'encoded', 'itself', 'too-long'], 'the names reach every branch of the rule');
});

// iotClientId against groupcast::iot::client_id (the `client_ids` example), on seeded pairs: valid
// identity ids with suffixes drawn from the random names, and broken identity ids.
function rustClientIds(pairs) {
  try {
    const out = execFileSync('cargo', ['run', '-q', '--locked', '-p', 'groupcast', '--example', 'client_ids'], {
      cwd: REPO,
      input: JSON.stringify(pairs),
      maxBuffer: 64 * 1024 * 1024,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return JSON.parse(out.toString('utf8'));
  } catch (e) {
    throw new Error(`cargo run -p groupcast --example client_ids failed (the property test runs the Rust rule):\n${e.stderr || e.message}`);
  }
}

test('iotClientId agrees with the Rust iot::client_id on 2,000 seeded identity id and suffix pairs', () => {
  const next = rng(11);
  const suffixes = names(13, 2000);
  const ids = ['us-east-1:0f9a8b7c-1234-4d5e-8f90-abcdef012345', 'eu-west-1:6F1C2C1E-8F0C-4B7E-9C7A-0A1B2C3D4E5F'];
  const pairs = suffixes.map((s, i) => {
    const r = next();
    const id = r < 0.8 ? ids[i % 2] : r < 0.9 ? s : `${ids[0]}${s}`;
    return [id, next() < 0.1 ? null : s];
  });
  const expected = rustClientIds(pairs);
  assert.equal(expected.length, pairs.length);
  const mismatches = [];
  for (let i = 0; i < pairs.length; i += 1) {
    const [id, suffix] = pairs[i];
    let j;
    try {
      j = { clientId: iotClientId(id, suffix), field: null, message: null };
    } catch (e) {
      if (!(e instanceof GroupcastError)) throw e;
      j = { clientId: null, field: e.field, message: e.message };
    }
    const r = expected[i];
    const printable = PRINTABLE.test(id) && (suffix === null || PRINTABLE.test(suffix));
    const same = r.clientId === j.clientId && r.field === j.field && (!printable || r.message === j.message);
    if (!same) mismatches.push(`${JSON.stringify(pairs[i])}: rust ${JSON.stringify(r)}, js ${JSON.stringify(j)}`);
  }
  assert.deepEqual(mismatches, []);
  const kinds = new Set(expected.map((r) => r.field ?? 'ok'));
  assert.deepEqual([...kinds].sort(), ['identityId', 'ok', 'suffix'], 'the pairs reach every branch of the rule');
});
