'use strict';
// Evaluates a rendered Events handler (APPSYNC_JS) in a fresh V8 context, with `util` as @aws-appsync/utils
// defines it for Event handlers: `util.unauthorized()` and `util.error(msg, type)` end the handler with an
// error (AppSync answers subscribe_error / publish_error). The context has no Node globals (no Buffer,
// TextEncoder, require), and the String methods APPSYNC_JS lacks throw, so the handler cannot lean on them.
const vm = require('node:vm');

const IMPORT = "import { util } from '@aws-appsync/utils';";

class Rejection {
  constructor(kind, message, type) {
    this.kind = kind;
    this.message = message;
    this.type = type;
  }
}

function load(source) {
  const count = source.split(IMPORT).length - 1;
  if (count !== 1) throw new Error(`handler must import util exactly once as \`${IMPORT}\` (found ${count})`);
  if (/\bimport\b[^;]*from/.test(source.replace(IMPORT, ''))) throw new Error('handler imports something besides util');
  const body = source.replace(IMPORT, '').replace(/^export function /gm, 'function ');
  if (/\bexport\b/.test(body.replace(/\/\/.*$/gm, ''))) throw new Error('handler exports something besides functions');
  const logs = [];
  const util = {
    unauthorized: () => {
      throw new Rejection('unauthorized', 'Unauthorized', 'UnauthorizedException');
    },
    error: (message, type) => {
      throw new Rejection('error', String(message), type);
    },
  };
  const sandbox = { util, console: { log: (...a) => logs.push(a.join(' ')) } };
  const context = vm.createContext(sandbox, { codeGeneration: { strings: false, wasm: false } });
  // Methods the eslint plugin lists as unimplemented in APPSYNC_JS.
  vm.runInContext(
    `for (const m of ['charCodeAt','localeCompare','matchAll','padEnd','padStart','repeat','search','normalize'])
       String.prototype[m] = function () { throw new Error('String.prototype.' + m + ' is not available in APPSYNC_JS'); };
     String.fromCharCode = String.fromCodePoint = function () { throw new Error('String.fromCharCode is not available in APPSYNC_JS'); };`,
    context,
  );
  const exported = vm.runInContext(
    `${body}\n;({ onSubscribe: typeof onSubscribe === 'function' ? onSubscribe : undefined,
                  onPublish: typeof onPublish === 'function' ? onPublish : undefined,
                  groupSegment: typeof groupSegment === 'function' ? groupSegment : undefined })`,
    context,
    { timeout: 2000 },
  );
  const call = (fn, ctx) => {
    logs.length = 0;
    try {
      const value = fn(JSON.parse(JSON.stringify(ctx)));
      return { allowed: true, value, logs: [...logs] };
    } catch (e) {
      if (e instanceof Rejection) return { allowed: false, kind: e.kind, message: e.message, logs: [...logs], reason: logs.join(' | ') };
      // Any other runtime error (bad JSON in handlerContext, a TypeError) fails the operation: closed.
      return { allowed: false, kind: 'runtime', message: String(e && e.message), logs: [...logs], reason: `runtime error: ${e && e.message}` };
    }
  };
  return {
    hasOnSubscribe: !!exported.onSubscribe,
    groupSegment: exported.groupSegment,
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
