'use strict';
// The simulator's side of the VTL differential test (provisioner/tests/suite/vtl.rs): runs the isolation
// harness's GraphQL test files (graphql.test.js, property.test.js) and records every template render they make
// through amplify-appsync-simulator's VelocityTemplate (via lib/vtl.js) — the template text, the context the
// simulator built ($ctx.arguments/source/result/identity, $util.authType()), its outcome and the $extensions calls
// — so the Rust interpreter can be run on exactly the same cases. Nothing is judged here; the harness's own
// assertions are the harness's business (`npm test`), and failures of them are ignored.
//
// Usage: GROUPCAST_PROVISIONER=<provisioner binary> node harness/vtl-differential.js > records.json
// Output: {"templates": [text, …], "records": [{file, test, template (index), context, sim}, …]}.
process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = '1';
const Module = require('node:module');
const path = require('node:path');
const { VelocityTemplate } = require('amplify-appsync-simulator');

const FILES = ['graphql.test.js', 'property.test.js'];
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
  process.stdout.write(JSON.stringify({ templates, records }));
})().catch((e) => {
  process.stderr.write(`vtl-differential: ${e.stack || e}\n`);
  process.exit(1);
});
