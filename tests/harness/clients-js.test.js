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

test('clients/js: index.d.ts declares exactly what index.js exports, and a strict TypeScript user compiles against it', async () => {
  const ts = require('typescript');
  const mod = await import(path.join(CLIENT, 'index.js'));
  const dts = fs.readFileSync(path.join(CLIENT, 'index.d.ts'), 'utf8');
  const declared = [...dts.matchAll(/^export (?:const|function|class) ([A-Za-z_]+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(declared, Object.keys(mod).sort());
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'groupcast-dts-'));
  const user = path.join(dir, 'user.ts');
  fs.writeFileSync(user, `
    import { groupSegment, decodeSegment, eventsChannel, iotTopic, iotClientId, isValidSegment, GroupcastError, SEGMENT_MAX_CHARS } from ${JSON.stringify(path.join(CLIENT, 'index.js'))};
    const s: string = groupSegment('Team_B');
    const d: string | null = decodeSegment(s);
    const c: string = eventsChannel('live', 'Team_B', 'comments/*');
    const t: string = iotTopic('groupcast', 'Team_B', 'jobs/#');
    const id: string = iotClientId('us-east-1:0f9a', 'tab-1') + iotClientId('us-east-1:0f9a');
    const max: 50 = SEGMENT_MAX_CHARS;
    const u: unknown = 'x';
    if (isValidSegment(u)) { const n: number = u.length; console.log(n); }
    try { groupSegment(''); } catch (e) { if (e instanceof GroupcastError) { const f: string = e.field; console.log(f, e.rule, e.message); } }
    console.log(s, d, c, t, id, max);
    // @ts-expect-error: a group is a string
    groupSegment(7);
  `);
  const program = ts.createProgram([user], {
    strict: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022, allowJs: false, skipLibCheck: false, types: [],
  });
  const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  fs.rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(diagnostics, []);
});
