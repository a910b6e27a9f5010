'use strict';
// The APPSYNC_JS allow-list check (lib/appsync-js.js) against code that uses what AWS does not list: each
// snippet must be refused with a message naming the construct, and AWS's own documented examples accepted.
const test = require('node:test');
const assert = require('node:assert/strict');
const { checkAppsyncJs, SUPPORTED } = require('./lib/appsync-js');

const wrap = (body) => `import { util } from '@aws-appsync/utils';\nexport function onSubscribe(ctx) {\n  const s = ctx.info.channel.path;\n  const a = ctx.events;\n${body}\n}\n`;

// [what, code, message the refusal must match]
const refused = [
  ['String.prototype.codePointAt', wrap('  return s.codePointAt(0);'), /\.codePointAt\(\) is not on the supported/],
  ['String.prototype.charCodeAt', wrap('  return s.charCodeAt(0);'), /\.charCodeAt\(\) is not on the supported/],
  ['String.prototype.includes', wrap("  return s.includes('*');"), /\.includes\(\) is not on the supported/],
  ['Array.prototype.includes', wrap("  return a.includes('x');"), /\.includes\(\) is not on the supported/],
  ['Array.isArray', wrap('  return Array.isArray(a);'), /Array\.isArray is not supported/],
  ['String.fromCharCode', wrap('  return String.fromCharCode(65);'), /String\.fromCharCode is not supported/],
  ['try/catch', wrap('  try { JSON.parse(s); } catch (e) { util.unauthorized(); }'), /try\/catch\/finally is not supported/],
  ['throw', wrap("  throw new Error('x');"), /throw is not supported/],
  ['a classic for loop', wrap('  for (let i = 0; i < 3; i = i + 1) { console.log(i); }'), /for\(;;\) loops is not supported/],
  ['while', wrap('  while (a.length) { a.pop(); }'), /while loops is not supported/],
  ['do-while', wrap('  do { a.pop(); } while (a.length);'), /do-while loops is not supported/],
  ['continue', wrap('  for (const x of a) { if (x) { continue; } }'), /continue is not supported/],
  ['++', wrap('  let i = 0;\n  i++;'), /the \+\+ \/ -- operators is not supported/],
  ['--', wrap('  let i = 0;\n  --i;'), /the \+\+ \/ -- operators is not supported/],
  ['~', wrap('  return ~s.length;'), /the ~ operator is not supported/],
  ['in', wrap("  return 'groups' in ctx.identity;"), /the in operator is not supported/],
  ['instanceof', wrap('  return a instanceof Object;'), /the instanceof operator is not supported/],
  ['loose equality', wrap('  return s == 1;'), /the == operator is not supported/],
  ['a regular expression literal', wrap('  return s.replace(/x/g, "");'), /regular expression literals are not supported/],
  ['new', wrap('  return new Date();'), /new \(constructors\) is not supported/],
  ['the conditional operator', wrap('  return s ? 1 : 2;'), /the conditional operator \?: is not supported/],
  ['a function expression', wrap('  return a.map(function (x) { return x; });'), /function expressions is not supported/],
  ['a labeled statement', wrap('  outer: for (const x of a) { break outer; }'), /labeled statements is not supported/],
  ['destructuring', wrap('  const { identity } = ctx;\n  return identity;'), /destructuring is not supported/],
  ['a default parameter', 'export function onPublish(ctx = {}) { return ctx.events; }', /default parameters is not supported/],
  ['an async function', 'export async function onPublish(ctx) { return ctx.events; }', /async functions and generators are not supported/],
  ['an unlisted global', wrap('  return parseInt(s, 10);'), /the global parseInt is not supported/],
  ['globalThis', wrap('  return globalThis.x;'), /globalThis\.x is not supported/],
  ['an unlisted Math function', wrap('  return Math.abs(-1);'), /Math\.abs is not supported/],
  ['an unlisted util function', wrap('  return util.autoId();'), /util\.autoId is not supported/],
  ['an unlisted util.time helper', wrap('  return util.time.nowISO8601();'), /util\.time\.nowISO8601 is not supported/],
  ['calling the util.time namespace', wrap('  return util.time();'), /util\.time is a namespace, not a function/],
  ['a computed util.time helper', wrap("  return util.time['nowEpochSeconds']();"), /only calls of declared functions and of listed methods/],
  ['Object.getPrototypeOf', wrap('  return Object.getPrototypeOf(a);'), /Object\.getPrototypeOf is not supported/],
  ['.constructor', wrap('  return s.constructor;'), /\.constructor is not supported/],
  ['Function.prototype.call', wrap('  return s.slice.call(s, 1);'), /\.call is not supported/],
  ['a computed method call', wrap("  return s['slice'](1);"), /only calls of declared functions and of listed methods/],
  ['sort with a comparator', wrap('  return a.sort((x, y) => x - y);'), /\.sort\(\) takes no arguments/],
  ['an arrow function stored in a variable', wrap('  const f = (x) => x;\n  return f(1);'), /arrow function is supported only as the callback/],
  ['passing a declared function as an argument', 'function ok(x) { return x; }\nexport function onPublish(ctx) { return ctx.events.filter(ok); }', /passing the function ok as an argument/],
  ['direct recursion', 'function f(n) { return f(n); }\nexport function onPublish(ctx) { return f(ctx); }', /recursive calls are not supported: f -> f/],
  ['mutual recursion', 'function f(n) { return g(n); }\nfunction g(n) { return f(n); }\nexport function onPublish(ctx) { return f(ctx); }', /recursive calls are not supported: f -> g -> f/],
  ['an import besides util', "import { runtime } from '@aws-appsync/utils';\nexport function onPublish(ctx) { return ctx.events; }", /import of runtime/],
  ['an export besides the handlers', 'export function helper(ctx) { return ctx; }', /exports only the functions/],
  ['a getter', wrap('  return { get x() { return 1; } };'), /only plain `key: value` object properties/],
  ['a class', 'class A {}\nexport function onPublish(ctx) { return ctx.events; }', /classes is not supported/],
];

for (const [what, code, message] of refused) {
  test(`appsync-js: ${what} is refused`, () => {
    const problems = checkAppsyncJs(code);
    assert.ok(problems.some((p) => message.test(p)), `not refused as ${message}: ${JSON.stringify(problems)}`);
  });
}

test('appsync-js: AWS\'s documented handler examples pass', () => {
  const examples = [
    'export function onPublish(ctx) {\n  return ctx.events\n}',
    "import { util } from '@aws-appsync/utils';\nexport function onSubscribe(ctx) {\n  if (ctx.info.channel.path.startsWith('/admin/')) {\n    util.unauthorized();\n  }\n}",
    'export function onPublish(ctx) {\n  return ctx.events.map((e) => ({ id: e.id, payload: { ...e.payload, msg: `Hello ${e.payload.name}` } }));\n}',
    "import { util } from '@aws-appsync/utils';\nexport function onSubscribe(ctx) {\n  if (Math.floor(util.time.nowEpochSeconds() / 300) > 0) {\n    return;\n  }\n  util.unauthorized();\n}",
    "export function onPublish(ctx) {\n  const out = [];\n  for (const e of ctx.events) {\n    if (Object.hasOwn(e.payload, 'x') && !Number.isNaN(e.payload.x)) {\n      out.push(e);\n    }\n  }\n  switch (out.length) {\n    case 0:\n      return null;\n    default:\n      break;\n  }\n  return out;\n}",
  ];
  for (const code of examples) assert.deepEqual(checkAppsyncJs(code), [], code);
});

test('appsync-js: the allow-list is data with its sources', () => {
  assert.ok(SUPPORTED.sources.includes('https://docs.aws.amazon.com/appsync/latest/eventapi/runtime-supported-features.html'));
  for (const unlisted of ['codePointAt', 'charCodeAt', 'includes', 'padStart', 'at']) {
    assert.equal(SUPPORTED.methods.string.includes(unlisted) || SUPPORTED.methods.array.includes(unlisted), false, unlisted);
  }
  assert.equal(Object.hasOwn(SUPPORTED.globals.namespaces, 'Array'), false, 'Array is not a listed global');
});
