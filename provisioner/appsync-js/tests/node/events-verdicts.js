'use strict';
// Node's side of the engine parity test (../parity.rs): renders the harness's configs with the
// provisioner (tests/harness/lib/render.js), runs every case of the Events handler's adversarial
// corpus (tests/harness/lib/events-corpus.js) and a set of probes through the harness's own handler
// runner (tests/harness/lib/handler.js), and prints, as JSON on stdout, the handler sources and one
// record per case: its inputs, the ctx Node built, and Node's verdict. The Rust test replays each
// case in the embedded engine and compares.
const fs = require('node:fs');
const path = require('node:path');

const HARNESS = path.resolve(__dirname, '..', '..', '..', '..', 'tests', 'harness');
const { render } = require(path.join(HARNESS, 'lib', 'render'));
const { load, eventsCtx } = require(path.join(HARNESS, 'lib', 'handler'));
const C = require(path.join(HARNESS, 'lib', 'events-corpus'));
const SEGMENTS = require(path.join(HARNESS, '..', 'fixtures', 'group-segments.json')).cases;
const EPOCH_TABLE = require(path.join(HARNESS, '..', 'fixtures', 'epoch-segments.json'));
const SUPPORTED = require(path.join(HARNESS, 'appsync-js-supported.json'));

const IMPORT = "import { util } from '@aws-appsync/utils';";

// Probes: small handlers that expose, through what onPublish returns, the behaviours the rendered
// handler relies on: util.urlEncode, JSON.parse, and which String/Array methods throw.
const PROBES = {
  'probe/util.js': `${IMPORT}
export function onPublish(ctx) {
  const p = ctx.events[0].payload;
  let out = null;
  if (p.op === 'urlEncode') out = util.urlEncode(p.arg);
  if (p.op === 'urlEncodeLone') out = [util.urlEncode('a\\ud800b'), util.urlEncode('\\udc00'), util.urlEncode('\\ud83d\\ude00\\ud83d')];
  if (p.op === 'jsonParse') out = JSON.parse(p.arg);
  if (p.op === 'error') util.error(p.arg);
  if (p.op === 'unauthorized') util.unauthorized();
  return [{ id: 'p', payload: { out: out } }];
}
`,
  'probe/methods.js': `${IMPORT}
export function onPublish(ctx) {
  const p = ctx.events[0].payload;
  let out = null;
  if (p.on === 'string') out = 'abcab'[p.method]('a');
  if (p.on === 'array' && p.noArgs) out = ['b', 'a', 'c'][p.method]();
  if (p.on === 'array' && !p.noArgs) out = ['a', 'b', 'a'][p.method]((x) => x === 'a');
  if (p.on === 'String') out = String[p.method](65);
  if (p.on === 'Array') out = Array[p.method]([]);
  return [{ id: 'p', payload: { out: out } }];
}
`,
};

const files = render('harness.toml');
const handlers = {
  'harness/events/live.js': files['events/live.js'],
  'harness/events/open.js': files['events/open.js'],
  'modes/events/live.js': render('modes.toml')['events/live.js'],
  ...Object.fromEntries(Object.entries(render('epochs.toml')).filter(([f]) => f.startsWith('events/')).map(([f, t]) => [`epochs/${f}`, t])),
  ...PROBES,
};
const loaded = Object.fromEntries(Object.entries(handlers).map(([name, source]) => [name, load(source)]));

const cases = [];
// input.now: the server's clock for util.time.nowEpochSeconds() (unix seconds), or absent for the real clock.
function add(name, handler, op, input) {
  const { now, ...rest } = input;
  const ctx = eventsCtx({ ...rest, operation: op === 'publish' ? 'PUBLISH' : 'SUBSCRIBE' });
  loaded[handler].setNow(now === undefined ? () => Math.floor(Date.now() / 1000) : now);
  const r = op === 'publish' ? loaded[handler].publish(ctx) : loaded[handler].subscribe(ctx);
  const node = { allowed: r.allowed, kind: r.kind || null, message: r.message === undefined ? null : r.message, logs: r.logs };
  if (op === 'publish' && r.allowed) node.value = r.value === undefined ? null : r.value;
  cases.push({ name, handler, op, input: { path: input.path === undefined ? null : input.path, identity: input.identity === undefined ? null : input.identity, events: input.events || null, now: now === undefined ? null : now }, ctx, node });
}

const LIVE = 'harness/events/live.js';
for (const [attack, identity, path] of C.corpus) add(`onSubscribe: ${attack}`, LIVE, 'subscribe', { path, identity });
for (const [attack, identity, path] of C.publishCorpus) add(`onPublish: ${attack}`, LIVE, 'publish', { path, identity, events: C.events });
for (const [attack, identity] of C.modesCorpus) add(`onSubscribe, Cognito-only namespace: ${attack}`, 'modes/events/live.js', 'subscribe', { path: '/live/team-a', identity });
add('onPublish, another project: its publisher', 'modes/events/live.js', 'publish', { path: '/live/team-a', identity: C.iamCaller('arn:aws:sts::210987654321:assumed-role/modes-publisher/x'), events: C.events });
add('onPublish, another project: this project\'s publisher', 'modes/events/live.js', 'publish', { path: '/live/team-a', identity: C.iam, events: C.events });
add('group_check = false: no onSubscribe', 'harness/events/open.js', 'subscribe', { path: '/open/anything', identity: C.cognito(['team-a']) });
add('group_check = false: a Cognito user publishing', 'harness/events/open.js', 'publish', { path: '/open/team-a', identity: C.cognito(['team-a']), events: C.events });
add('group_check = false: the publisher', 'harness/events/open.js', 'publish', { path: '/open/team-a', identity: C.iam, events: C.events });
for (const text of C.badLambdaGroupTexts) add(`onSubscribe: Lambda groups text ${JSON.stringify(text)}`, LIVE, 'subscribe', { path: '/live/team-a', identity: C.lambda({ groups: text }) });
// The group -> segment table, through the handler: each member on their group's segment (admitted
// exactly when the name has one), and via the Lambda authorizer's JSON text.
for (const { group, segment } of SEGMENTS) {
  const channel = `/live/${segment === null ? 'team-a' : segment}`;
  add(`segment table, Cognito member of ${JSON.stringify(group)} on ${channel}`, LIVE, 'subscribe', { path: channel, identity: C.cognito([group]) });
  add(`segment table, Lambda member of ${JSON.stringify(group)} on ${channel}`, LIVE, 'subscribe', { path: channel, identity: C.lambdaGroups([group]) });
  add(`segment table, team-a member on ${channel}`, LIVE, 'subscribe', { path: channel, identity: C.cognito(['team-a']) });
}

// Time-sliced channels (epochs.toml): the epoch attacks with the server's clock of each case, and the shared epoch
// table through the handler of each period.
const EPOCH_LIVE = 'epochs/events/live.js';
for (const [attack, identity, path, now] of C.epochCorpus) add(`epochs onSubscribe: ${attack}`, EPOCH_LIVE, 'subscribe', { path, identity, now });
for (const [attack, identity, path, now] of C.epochPublishCorpus) add(`epochs onPublish: ${attack}`, EPOCH_LIVE, 'publish', { path, identity, events: C.events, now });
const BY_PERIOD = { 300: 'live', 2: 'fast', 60: 'minute', 86400: 'daily' };
for (const c of EPOCH_TABLE.epochs) {
  const ns = BY_PERIOD[c.period];
  for (const n of [c.epoch - 2, c.epoch - 1, c.epoch, c.epoch + 1, c.epoch + 2].filter((x) => x >= 0)) {
    add(`epoch table, ${ns} at ${c.unix}: t${n}`, `epochs/events/${ns}.js`, 'subscribe', { path: `/${ns}/team-a/t${n}/x`, identity: C.cognito(['team-a']), now: c.unix });
  }
}
for (const c of EPOCH_TABLE.segments) {
  const now = c.epoch === null || !Number.isSafeInteger(c.epoch * C.EPOCH_P) ? C.EPOCH_NOW : c.epoch * C.EPOCH_P;
  add(`epoch table, segment ${JSON.stringify(c.segment)}`, EPOCH_LIVE, 'subscribe', { path: `/live/team-a/${c.segment}/x`, identity: C.cognito(['team-a']), now });
}
add('epochs: the namespace without epochs, a topic named like an epoch', 'epochs/events/plain.js', 'subscribe', { path: `/plain/team-a/t${C.EPOCH_N}`, identity: C.cognito(['team-a']), now: C.EPOCH_NOW });
add('epochs: the namespace without epochs, no epoch', 'epochs/events/plain.js', 'subscribe', { path: '/plain/team-a/chat', identity: C.cognito(['team-a']), now: C.EPOCH_NOW });

// Probes.
const probe = (name, handler, payload) => add(`probe: ${name}`, handler, 'publish', { path: '/live/team-a', identity: null, events: [{ id: 'p', payload }] });
const texts = [...new Set([...SEGMENTS.map((c) => c.group), ' ', 'a b+c', '~!\'()', '%41', 'ü€😀', '\u0000\u001f\u007f', 'x--y', ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i))])];
for (const t of texts) probe(`util.urlEncode(${JSON.stringify(t)})`, 'probe/util.js', { op: 'urlEncode', arg: t });
for (const arg of [5, null, true, ['a', 'b'], { a: 1 }]) probe(`util.urlEncode(${JSON.stringify(arg)})`, 'probe/util.js', { op: 'urlEncode', arg });
probe('util.urlEncode of unpaired surrogates', 'probe/util.js', { op: 'urlEncodeLone' });
for (const arg of ['team-a', '', '[', '["a"', 'null', '{}', '[1,"x"]', ' [1] ', '"s"', 'NaN', '1e400', '{"__proto__":{"x":1}}']) {
  probe(`JSON.parse(${JSON.stringify(arg)})`, 'probe/util.js', { op: 'jsonParse', arg });
}
for (const arg of ['bad input', 7]) probe(`util.error(${JSON.stringify(arg)})`, 'probe/util.js', { op: 'error', arg });
probe('util.unauthorized()', 'probe/util.js', { op: 'unauthorized' });
const UNLISTED_PROBES = ['charCodeAt', 'codePointAt', 'includes', 'localeCompare', 'match', 'matchAll', 'normalize', 'padEnd', 'padStart', 'repeat', 'search', 'substring', 'substr', 'at'];
for (const method of [...new Set([...SUPPORTED.methods.string, ...UNLISTED_PROBES])]) probe(`'abcab'.${method}('a')`, 'probe/methods.js', { on: 'string', method });
// sort() takes no arguments in APPSYNC_JS (its comparator would make the order engine-defined).
for (const method of [...new Set([...SUPPORTED.methods.array, 'includes', 'at'])]) {
  const noArgs = SUPPORTED.methods.noArguments.includes(method);
  probe(noArgs ? `['b', 'a', 'c'].${method}()` : `['a', 'b', 'a'].${method}(x => x === 'a')`, 'probe/methods.js', { on: 'array', method, noArgs });
}
for (const method of ['fromCharCode', 'fromCodePoint', 'raw']) probe(`String.${method}(65)`, 'probe/methods.js', { on: 'String', method });
probe('Array.isArray([])', 'probe/methods.js', { on: 'Array', method: 'isArray' });

fs.writeSync(1, JSON.stringify({ handlers, cases }));
