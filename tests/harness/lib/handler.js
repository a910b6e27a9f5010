'use strict';
// Evaluates a rendered Events handler (APPSYNC_JS) in a fresh V8 context, with `util` as AWS documents it for
// Event handlers: `util.unauthorized()` and `util.error(msg, type)` end the handler with an error (AppSync
// answers subscribe_error / publish_error; channel-namespace-handlers.html), and `util.urlEncode(s)` returns
// `s` as application/x-www-form-urlencoded UTF-8 text (built-in-util.html). `JSON.parse` returns "" for text
// that is not JSON, as runtime-supported-features.html documents, instead of throwing.
//
// The context has no Node globals (no Buffer, TextEncoder, require), and the methods AWS does not list as
// supported throw when called, so a handler that leans on them fails here as well as in the static check
// (lib/appsync-js.js). The ctx crosses into the context as JSON text, so its objects are the context's own.
//
// Options, to show that the handler does not depend on details AWS leaves open:
//   urlEncode: 'java' (default; java.net.URLEncoder: keeps A-Za-z0-9 . - * _, space as +, %XX upper case,
//              an unpaired surrogate as ?) or 'lenient' (keeps more punctuation, %xx lower case).
//   jsonParse: 'aws' (default; "" on bad input) or 'throws' (ECMAScript's SyntaxError).
//   now:       what `util.time.nowEpochSeconds()` returns (seconds since 1970-01-01T00:00:00Z, time-helpers-in-util-time-js.html):
//              a number, or a function giving one; default the real clock. The loaded handler's setNow(v) changes it
//              between calls, so epoch tests (time-sliced channels, groupcast::epoch) choose the server's time.
const vm = require('node:vm');

const IMPORT = "import { util } from '@aws-appsync/utils';";

class Rejection {
  constructor(kind, message, type) {
    this.kind = kind;
    this.message = message;
    this.type = type;
  }
}

/// java.net.URLEncoder.encode(s, UTF_8): the application/x-www-form-urlencoded encoding AppSync's
/// util.urlEncode documents.
function urlEncodeJava(s) {
  let out = '';
  for (const ch of String(s)) {
    if (/^[A-Za-z0-9.*_-]$/.test(ch)) out += ch;
    else if (ch === ' ') out += '+';
    else {
      const cp = ch.codePointAt(0);
      const bytes = cp >= 0xd800 && cp <= 0xdfff ? Buffer.from('?') : Buffer.from(ch, 'utf8');
      for (const b of bytes) out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
    }
  }
  return out;
}

/// An encoder that keeps more characters unencoded and writes lower-case hex: what a different but
/// still form-urlencoding implementation might do.
function urlEncodeLenient(s) {
  return urlEncodeJava(s)
    .replace(/%([0-9A-F]{2})/g, (m, h) => {
      const c = String.fromCharCode(parseInt(h, 16));
      return "!'()~".includes(c) ? c : `%${h.toLowerCase()}`;
    });
}

// Methods AWS does not list for APPSYNC_JS; calling one in the handler throws.
const UNLISTED = `
  for (const m of ['charCodeAt','codePointAt','includes','localeCompare','match','matchAll','normalize','padEnd','padStart','repeat','search','substring','substr','at'])
    String.prototype[m] = function () { throw new Error('String.prototype.' + m + ' is not available in APPSYNC_JS'); };
  for (const m of ['includes','at'])
    Array.prototype[m] = function () { throw new Error('Array.prototype.' + m + ' is not available in APPSYNC_JS'); };
  for (const m of ['fromCharCode','fromCodePoint'])
    String[m] = function () { throw new Error('String.' + m + ' is not available in APPSYNC_JS'); };
  Array.isArray = function () { throw new Error('Array.isArray is not available in APPSYNC_JS'); };
`;

const realClock = () => Math.floor(Date.now() / 1000);

function load(source, { urlEncode = 'java', jsonParse = 'aws', now = realClock } = {}) {
  const count = source.split(IMPORT).length - 1;
  if (count !== 1) throw new Error(`handler must import util exactly once as \`${IMPORT}\` (found ${count})`);
  if (/\bimport\b[^;]*from/.test(source.replace(IMPORT, ''))) throw new Error('handler imports something besides util');
  const body = source.replace(IMPORT, '').replace(/^export function /gm, 'function ');
  if (/\bexport\b/.test(body.replace(/\/\/.*$/gm, ''))) throw new Error('handler exports something besides functions');
  const logs = [];
  let clock = now;
  const util = {
    unauthorized: () => {
      throw new Rejection('unauthorized', 'Unauthorized', 'UnauthorizedException');
    },
    error: (message, type) => {
      throw new Rejection('error', String(message), type);
    },
    urlEncode: urlEncode === 'lenient' ? urlEncodeLenient : urlEncodeJava,
    time: { nowEpochSeconds: () => (typeof clock === 'function' ? clock() : clock) },
  };
  const sandbox = { util, console: { log: (...a) => logs.push(a.join(' ')) } };
  const context = vm.createContext(sandbox, { codeGeneration: { strings: false, wasm: false } });
  vm.runInContext(
    `const __parse = JSON.parse;
     globalThis.__ctx = (text) => __parse(text);
     ${jsonParse === 'aws' ? 'JSON.parse = function (text) { try { return __parse(text); } catch (e) { return ""; } };' : ''}
     ${UNLISTED}`,
    context,
  );
  const exported = vm.runInContext(
    `${body}\n;({ onSubscribe: typeof onSubscribe === 'function' ? onSubscribe : undefined,
                  onPublish: typeof onPublish === 'function' ? onPublish : undefined,
                  groupSegment: typeof groupSegment === 'function' ? groupSegment : undefined,
                  parseEpochSegment: typeof parseEpochSegment === 'function' ? parseEpochSegment : undefined,
                  serverEpoch: typeof serverEpoch === 'function' ? serverEpoch : undefined })`,
    context,
    { timeout: 2000 },
  );
  const call = (fn, ctx) => {
    logs.length = 0;
    try {
      const value = fn(context.__ctx(JSON.stringify(ctx)));
      return { allowed: true, value: value === undefined ? value : JSON.parse(JSON.stringify(value)), logs: [...logs] };
    } catch (e) {
      if (e instanceof Rejection) return { allowed: false, kind: e.kind, message: e.message, logs: [...logs], reason: logs.join(' | ') };
      // Any other runtime error (a TypeError, an unlisted method) fails the operation: closed.
      return { allowed: false, kind: 'runtime', message: String(e && e.message), logs: [...logs], reason: `runtime error: ${e && e.message}` };
    }
  };
  return {
    hasOnSubscribe: !!exported.onSubscribe,
    groupSegment: exported.groupSegment,
    parseEpochSegment: exported.parseEpochSegment,
    serverEpoch: exported.serverEpoch,
    setNow: (v) => {
      clock = v;
    },
    subscribe: (ctx) => (exported.onSubscribe ? call(exported.onSubscribe, ctx) : { allowed: true, logs: [], reason: 'no onSubscribe' }),
    publish: (ctx) => (exported.onPublish ? call(exported.onPublish, ctx) : { allowed: true, value: ctx.events, logs: [] }),
  };
}

/// The `ctx` AppSync Events passes a handler (aws-protocols.md §3).
function eventsCtx({ path, identity, operation = 'SUBSCRIBE', events }) {
  const segments = typeof path === 'string' ? path.split('/').filter((s) => s !== '') : [];
  return {
    identity,
    info: { channel: { path, segments }, channelNamespace: { name: segments[0] }, operation },
    request: { headers: {}, domainName: null },
    stash: {},
    events: events || null,
    error: null,
    result: null,
  };
}

module.exports = { load, eventsCtx };
