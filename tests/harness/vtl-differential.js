'use strict';
// The simulator's side of the VTL differential test (provisioner/tests/suite/vtl.rs): runs the isolation
// harness's test files that render VTL (graphql.test.js, property.test.js, tools.test.js, and any later one that
// requires lib/vtl) and records every template render they make
// through amplify-appsync-simulator's VelocityTemplate (via lib/vtl.js) — the template text, the context the
// simulator built ($ctx.arguments/source/result/identity, $util.authType()), its outcome and the $extensions calls
// — so the Rust interpreter can be run on exactly the same cases. Nothing is judged here; the harness's own
// assertions are the harness's business (`npm test`), and failures of them are ignored.
//
// Then it renders harness.toml and feeds both templates pairs random callers and arguments (fast-check, seeded):
// every auth mode, groups claims and Lambda resolverContext.groups of any JSON shape, publisher-like IAM ARNs,
// prefixes, onlyGroups and publish arguments of the schema's types.
//
// It also gives the filter evaluator's side: every filter the templates set, and one filter per operator, against
// probe messages, with the harness's model of AppSync's enhanced filtering (lib/filters.js: matches, limitViolations).
//
// Usage: GROUPCAST_PROVISIONER=<provisioner binary> node harness/vtl-differential.js > records.json
// Output: {"templates": [text, …], "records": [{file, test, template (index), context, sim}, …],
//          "filterChecks": [{filter, valid, messages: [{message, matches}, …]}, …]}.
process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = '1';
const Module = require('node:module');
const path = require('node:path');
const { VelocityTemplate } = require('amplify-appsync-simulator');
const { matches, limitViolations } = require('./lib/filters');

// Every harness test file that renders VTL (it requires lib/vtl), so new corpora join the comparison unasked.
const fs = require('node:fs');
const FILES = fs
  .readdirSync(__dirname)
  .filter((f) => f.endsWith('.test.js') && /require\(['"]\.\/lib\/vtl['"]\)/.test(fs.readFileSync(path.join(__dirname, f), 'utf8')))
  .sort();
// $util.autoId() returns this in both engines, so results compare exactly (a valid v4 UUID: the harness checks).
const AUTO_ID = '00000000-0000-4000-8000-000000000000';

const templates = [];
const templateIndex = new Map();
const records = [];
let current = { file: null, test: null };

const plain = (v) => (v === undefined ? null : JSON.parse(JSON.stringify(v)));

// Record around the simulator's render: CapturingTemplate (lib/vtl.js) inherits it and overrides only
// buildRenderContext, which we wrap per call to see the final render context.
const originalRender = VelocityTemplate.prototype.render;
VelocityTemplate.prototype.render = function render(ctxValues, requestContext, info) {
  const text = String(this.template.content);
  if (!templateIndex.has(text)) {
    templateIndex.set(text, templates.length);
    templates.push(text);
  }
  const calls = { setSubscriptionFilter: [], setSubscriptionInvalidationFilter: [], invalidateSubscriptions: [] };
  let rc = null;
  const build = this.buildRenderContext;
  this.buildRenderContext = (...a) => {
    rc = build.apply(this, a);
    rc.util.autoId = () => AUTO_ID;
    const ext = rc.extensions || {};
    for (const name of Object.keys(calls)) {
      const inner = ext[name];
      ext[name] = (...args) => {
        calls[name].push(plain(args[0]));
        return inner ? inner(...args) : '';
      };
    }
    rc.extensions = ext;
    return rc;
  };
  let out;
  let thrown;
  try {
    out = originalRender.call(this, ctxValues, requestContext, info);
  } catch (e) {
    thrown = e;
  } finally {
    this.buildRenderContext = build;
  }
  let sim;
  if (thrown) {
    sim = { kind: 'threw', errorType: thrown.errorType || null, message: String(thrown.message) };
  } else if (out.hadException || (out.errors && out.errors.length)) {
    const e = out.errors[out.errors.length - 1];
    sim = e
      ? { kind: 'error', errorType: e.errorType || null, message: (e.extensions && e.extensions.message) || e.message }
      : { kind: 'exception' }; // a JavaScript exception inside the engine, no $util error recorded
  } else {
    sim = { kind: 'ok', result: plain(out.result), isReturn: !!out.isReturn };
  }
  sim.extensions = calls;
  let authType = null;
  try {
    authType = rc ? String(rc.util.authType()) : null;
  } catch {
    authType = null;
  }
  records.push({
    file: current.file,
    test: current.test,
    template: templateIndex.get(text),
    context: {
      arguments: plain(ctxValues.arguments),
      source: plain(ctxValues.source),
      result: plain(ctxValues.result),
      stash: plain(ctxValues.stash || {}),
      identity: rc ? plain(rc.context.identity) : null,
      authType,
    },
    sim,
  });
  if (thrown) throw thrown;
  return out;
};

// The test files register tests with node:test; run each body at once instead, ignoring its verdict.
const pending = [];
function fakeTest(name, opts, fn) {
  const body = typeof opts === 'function' ? opts : fn;
  if (typeof body !== 'function') return;
  const t = { name, diagnostic() {}, skip() {}, todo() {}, plan() {}, test: fakeTest, mock: { fn: () => () => {} } };
  pending.push(async () => {
    current = { file: current.file, test: name };
    try {
      await body(t);
    } catch {
      // The harness's assertions are judged by `npm test`, not here.
    }
  });
}
fakeTest.test = fakeTest;
fakeTest.describe = (name, fn) => fn && fn();
fakeTest.it = fakeTest;
fakeTest.skip = () => {};
fakeTest.todo = () => {};
fakeTest.before = () => {};
fakeTest.after = () => {};
fakeTest.beforeEach = () => {};
fakeTest.afterEach = () => {};

const originalLoad = Module._load;
Module._load = function load(request, ...rest) {
  if (request === 'node:test' || request === 'test') return fakeTest;
  return originalLoad.call(this, request, ...rest);
};

// Probe messages for a filter: each group it names (and strangers, case variants) on topics around its prefixes,
// and the malformed shapes a payload could take.
function probes(filter) {
  const groups = new Set(['zz', 'ADMINS', 'g1']);
  const topics = new Set(['chat/1', 'a/', '*x', 'other', '']);
  for (const e of filter.filterGroup || []) {
    for (const c of e.filters || []) {
      const vals = Array.isArray(c.value) ? c.value : [c.value];
      if (c.fieldName === 'groups') vals.slice(0, 4).forEach((g) => groups.add(g));
      if (c.fieldName === 'topic' && typeof c.value === 'string') [c.value, `${c.value}x`, c.value.slice(0, -1)].forEach((t) => topics.add(t));
    }
  }
  const gs = [...groups];
  const out = [];
  for (const topic of topics) {
    for (const g of gs) out.push({ topic, groups: [g] });
    out.push({ topic, groups: gs.slice(0, 3) }, { topic, groups: [] }, { topic, groups: gs[0] }, { topic });
  }
  out.push({ groups: gs }, { topic: null, groups: gs }, { topic: 7, groups: gs });
  return out;
}

// One filter per operator, on scalars, strings and lists, with messages that sit on each side of it.
const c1 = (fieldName, operator, value) => ({ filterGroup: [{ filters: [{ fieldName, operator, value }] }] });
const OPERATOR_FILTERS = [
  c1('n', 'eq', 5), c1('s', 'eq', 'a'), c1('n', 'ne', 5), c1('n', 'lt', 5), c1('n', 'le', 5), c1('n', 'gt', 5), c1('n', 'ge', 5),
  c1('s', 'lt', 'b'), c1('s', 'ge', 'b'), c1('s', 'contains', 'b'), c1('l', 'contains', 'b'), c1('s', 'notContains', 'b'),
  c1('l', 'notContains', 'b'), c1('s', 'beginsWith', 'a'), c1('s', 'in', ['a', 'b']), c1('n', 'in', [1, 5]),
  c1('s', 'notIn', ['a', 'b']), c1('n', 'between', [1, 5]), c1('s', 'between', ['a', 'c']), c1('l', 'containsAny', ['b', 'x']),
  c1('x.y', 'eq', 1), c1('s', 'EQ', 'a'), c1('s', 'in', [1, 2, 3, 4, 5, 6]),
  { filterGroup: [{ filters: [{ fieldName: 'n', operator: 'gt', value: 1 }, { fieldName: 's', operator: 'eq', value: 'a' }] }, { filters: [{ fieldName: 'l', operator: 'contains', value: 'z' }] }] },
];
const OPERATOR_MESSAGES = [
  {}, { n: 5 }, { n: 4 }, { n: 6 }, { n: 1 }, { n: 5.5 }, { n: '5' }, { n: null }, { s: 'a' }, { s: 'A' }, { s: 'b' }, { s: 'abc' }, { s: 'c' },
  { s: 'ba' }, { s: '' }, { s: 5 }, { l: ['a', 'b'] }, { l: ['B'] }, { l: [] }, { l: 'b' }, { l: ['z'] }, { x: { y: 1 } }, { x: { y: '1' } },
  { x: 1 }, { n: 2, s: 'a' }, { n: 2, s: 'b', l: ['z'] },
];

function filterChecks(recs) {
  const seen = new Map();
  for (const r of recs) {
    for (const f of [...r.sim.extensions.setSubscriptionFilter, ...r.sim.extensions.setSubscriptionInvalidationFilter]) {
      if (f && typeof f === 'object') seen.set(JSON.stringify(f), { filter: f, messages: probes(f) });
    }
  }
  for (const f of OPERATOR_FILTERS) seen.set(JSON.stringify(f), { filter: f, messages: OPERATOR_MESSAGES });
  return [...seen.values()].map(({ filter, messages }) => ({
    filter,
    valid: limitViolations(filter).length === 0,
    messages: messages.map((message) => {
      let m;
      try {
        m = matches(filter, message);
      } catch {
        m = false; // the model throws on a malformed filter; AppSync would reject it, so nothing is delivered
      }
      return { message, matches: m };
    }),
  }));
}

const RANDOM_SEED = 20261126;
const RANDOM_RUNS = 200;

function randomCases() {
  const fc = require('fast-check');
  const vtl = require('./lib/vtl');
  const { render } = require('./lib/render');
  const M = vtl.MODES;
  const text = fc.oneof(
    fc.constantFrom('admins', 'Admins', 'team-a', '', ' ', 'a"b', "it's", 'back\\slash', '$ctx.args', '#set($x = 1)', '\u0430dmins', 'é', 'chat/', 'p'.repeat(257)),
    fc.string({ maxLength: 6 }),
  );
  const json = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    text,
    fc.array(text, { maxLength: 4 }),
    fc.array(fc.oneof(text, fc.integer(), fc.constant(null), fc.array(text, { maxLength: 2 })), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom('0', 'length', 'g'), text, { maxKeys: 2 }),
  );
  const claim = fc.option(json, { nil: undefined });
  const withGroups = (base, g) => ({ ...base, ...(g === undefined ? {} : { 'cognito:groups': g }) });
  const PUBLISHER = 'arn:aws:sts::123456789012:assumed-role/harness-publisher/';
  const arn = fc.oneof(
    fc.constantFrom(`${PUBLISHER}lambda`, PUBLISHER, 'arn:aws:iam::123456789012:user/ci-publisher', 'arn:aws:sts::123456789012:assumed-role/ops-publisher/x', 'arn:aws:iam::123456789012:role/harness-publisher'),
    text.map((t) => `${PUBLISHER}${t}`),
    text,
  );
  const caller = fc.oneof(
    claim.map((g) => ({ mode: M.COGNITO, claims: withGroups({ iss: 'https://cognito-idp.us-east-1.amazonaws.com/p', sub: 's', 'cognito:username': 'u' }, g) })),
    claim.map((g) => ({ mode: M.OIDC, claims: withGroups({ iss: 'https://idp.example.invalid', sub: 's' }, g) })),
    fc.option(fc.oneof(json, json.map((v) => JSON.stringify(v)), text), { nil: undefined }).map((g) => ({ mode: M.LAMBDA, resolverContext: g === undefined ? {} : { groups: g } })),
    fc.record({ userArn: fc.option(arn, { nil: undefined }), cognitoIdentityPoolId: fc.option(text, { nil: undefined }) }).map((iam) => ({ mode: M.IAM, iam: { username: 'AROA:x', ...iam } })),
    fc.constant({ mode: M.API_KEY }),
  );
  const subscribeArgs = fc.record({ prefix: fc.option(text, { nil: undefined }), onlyGroups: fc.option(fc.array(text, { maxLength: 4 }), { nil: undefined }) }, { requiredKeys: [] });
  const publishArgs = fc.record(
    { topic: text, data: fc.constant('{"x":1}'), groups: fc.array(text, { maxLength: 3 }), uuid: fc.option(fc.oneof(fc.uuid(), text), { nil: undefined }) },
    { requiredKeys: ['topic', 'data', 'groups'] },
  );
  const files = render('harness.toml');
  const cases = fc.sample(fc.tuple(caller, subscribeArgs, publishArgs), { seed: RANDOM_SEED, numRuns: RANDOM_RUNS });
  cases.forEach(([who, sub, pub], i) => {
    current = { file: 'random', test: `random case ${i} (seed ${RANDOM_SEED})` };
    vtl.subscribe(files, who, sub);
    vtl.publish(files, who.mode === M.IAM ? who : { mode: M.IAM, iam: { username: 'AROA:x', userArn: `${PUBLISHER}lambda` } }, pub);
  });
}

(async () => {
  for (const f of FILES) {
    current = { file: f, test: null };
    pending.length = 0;
    require(path.join(__dirname, f));
    for (const run of pending.splice(0)) {
      current.file = f;
      await run();
    }
  }
  randomCases();
  process.stdout.write(JSON.stringify({ templates, records, filterChecks: filterChecks(records) }));
})().catch((e) => {
  process.stderr.write(`vtl-differential: ${e.stack || e}\n`);
  process.exit(1);
});
