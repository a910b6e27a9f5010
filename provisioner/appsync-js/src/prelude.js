// The APPSYNC_JS environment a rendered Events handler runs in, set up before the handler module is
// evaluated (src/engine.rs). Its rules are the isolation harness's (tests/harness/lib/handler.js), so
// the engine and Node agree on every case of the adversarial corpus (tests/parity.rs):
// - `util` (built-in-util.html): `unauthorized()` and `error(msg)` end the handler with a rejection
//   (channel-namespace-handlers.html, Error handling); the encoding functions call Rust (src/util.rs)
//   on the text as Java's UTF-8 encoder sees it (an unpaired surrogate is `?`). `util.time.nowEpochSeconds()`
//   (time-helpers-in-util-time-js.html) reads the handler's clock in Rust (src/engine.rs, Clock).
// - `JSON.parse` returns "" for text that is not JSON (runtime-supported-features.html).
// - The String and Array methods AWS does not list throw when called, as in the harness.
// - No code generation from strings (eval, Function constructors), as the harness's V8 context.
// - `console.log` / `console.error` lines are collected for the caller (the handler's reasons).
// Returns the function that seals the engine's handles (see its comment at the end).
(function (native) {
  'use strict';
  const g = globalThis;
  const uncurry = (f) => Function.prototype.call.bind(f);
  const parse = JSON.parse;
  const stringify = JSON.stringify;
  const replace = uncurry(String.prototype.replace);
  const join = uncurry(Array.prototype.join);
  const push = uncurry(Array.prototype.push);
  const LONE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
  const javaText = (s) => replace(String(s), LONE, '?');

  class Rejection {
    constructor(kind, message) {
      this.kind = kind;
      this.message = message;
    }
  }
  const isRejection = (e) => e instanceof Rejection;

  g.util = {
    unauthorized: () => {
      throw new Rejection('unauthorized', 'Unauthorized');
    },
    error: (message) => {
      throw new Rejection('error', String(message));
    },
    urlEncode: (s) => native.urlEncode(javaText(s)),
    urlDecode: (s) => native.urlDecode(javaText(s)),
    base64Encode: (s) => native.base64Encode(javaText(s)),
    base64Decode: (s) => native.base64Decode(javaText(s)),
    time: { nowEpochSeconds: () => native.nowEpochSeconds() },
  };

  const logs = [];
  const log = (...a) => {
    push(logs, join(a, ' '));
  };
  g.console = { log, error: log };

  JSON.parse = function (text) {
    try {
      return parse(text);
    } catch (e) {
      return '';
    }
  };

  // Methods AWS does not list for APPSYNC_JS: the harness's list (lib/handler.js, UNLISTED).
  for (const m of ['charCodeAt', 'codePointAt', 'includes', 'localeCompare', 'match', 'matchAll', 'normalize', 'padEnd', 'padStart', 'repeat', 'search', 'substring', 'substr', 'at'])
    String.prototype[m] = function () { throw new Error('String.prototype.' + m + ' is not available in APPSYNC_JS'); };
  for (const m of ['includes', 'at'])
    Array.prototype[m] = function () { throw new Error('Array.prototype.' + m + ' is not available in APPSYNC_JS'); };
  for (const m of ['fromCharCode', 'fromCodePoint'])
    String[m] = function () { throw new Error('String.' + m + ' is not available in APPSYNC_JS'); };
  Array.isArray = function () { throw new Error('Array.isArray is not available in APPSYNC_JS'); };

  // No code generation from strings.
  const refused = function Function() {
    throw new EvalError('code generation from strings is not available in APPSYNC_JS');
  };
  refused.prototype = Function.prototype;
  g.eval = refused;
  for (const f of [function () {}, async function () {}, function* () {}, async function* () {}]) {
    Object.defineProperty(Object.getPrototypeOf(f), 'constructor', { value: refused, writable: false, configurable: false });
  }
  g.Function = refused;

  const wellFormed = (s) => replace(String(s), LONE, '\ufffd');
  const engine = {
    // The ctx crosses as JSON text, so its objects are the handler realm's own.
    parseCtx: (text) => parse(text),
    // The returned value as JSON text, or undefined for undefined.
    stringify: (v) => stringify(v),
    // A thrown value as {kind, message}: kind is unauthorized, error or runtime.
    classify: (e) => {
      if (isRejection(e)) return { kind: e.kind, message: wellFormed(e.message) };
      let message;
      try {
        message = String(e && e.message);
      } catch (_) {
        message = 'an error whose message cannot be read';
      }
      return { kind: 'runtime', message: wellFormed(message) };
    },
    // The lines logged since the last call, as well-formed text.
    takeLogs: () => {
      const out = [];
      for (const line of logs) push(out, wellFormed(line));
      logs.length = 0;
      return out;
    },
    onSubscribe: undefined,
    onPublish: undefined,
  };
  // Called by the engine once the handler module is evaluated: keeps its exports beside the helpers
  // above, frozen, under a global the handler cannot overwrite. The handler could read it, and gain
  // nothing: the helpers decide nothing the handler cannot decide by itself, and the limits and the
  // checks of what onPublish returns are in Rust.
  return (key, onSubscribe, onPublish) => {
    engine.onSubscribe = onSubscribe;
    engine.onPublish = onPublish;
    Object.defineProperty(g, key, { value: Object.freeze(engine), enumerable: false, writable: false, configurable: false });
  };
})
