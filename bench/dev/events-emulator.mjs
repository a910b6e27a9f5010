// Copied from tests/e2e/events-emulator.mjs at commit 0960d11 (main), the Node Events fixture the local
// stack replaces: the Events baseline of bench/dev/run.sh. Unchanged but for the three module paths.
// A local AppSync Events emulator for the end-to-end test: HTTP `POST /event` and WebSocket
// `/event/realtime` on one 127.0.0.1 port, speaking the wire protocol of
// /work/shared/reference/aws-protocols.md §1-2, and running the namespace handlers that
// `provisioner render` produced (evaluated with the isolation harness's APPSYNC_JS loader,
// tests/harness/lib/handler.js, so both see the same `util`).
//
// What it emulates, and what it does not (it is a test peer, not AppSync):
// - Auth. API key (`x-api-key`): the one trusted publisher. AppSync would require IAM (SigV4) for
//   the namespace's publish modes; the emulator does not check SigV4, so it gives the API-key caller
//   the identity an IAM caller has (`userArn`, ...) and lets the handler's IAM-only check decide.
//   `Authorization: <JWT>`: a Cognito user. The emulator TRUSTS the token (it decodes, never verifies:
//   signature and expiry checks are tested in functions/groupcast-auth); `cognito:groups` becomes
//   `ctx.identity.groups` (null when absent, as AppSync gives). `Authorization: <other token>`: the
//   Lambda authorizer given to startEmulator, whose `handlerContext` becomes
//   `ctx.identity.handlerContext` (groupcast's authorizer writes `{sub, groups: JSON text}`).
// - Handlers. `onSubscribe` runs once per subscribe (a rejection is `subscribe_error`), `onPublish`
//   once per publish request (a rejection is HTTP 401/403); the events it returns are broadcast.
// - Fan-out. A subscription receives a publish when its channel equals the publish channel, or ends
//   in `/*` and the publish channel lies strictly below the part before it.
// - Not emulated: SigV4, publishing over the WebSocket (answered with publish_error), the 24 h
//   connection limit, quotas and throttling, data sources, per-message IAM signatures.
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
const { WebSocketServer } = createRequire(new URL('../../tests/package.json', import.meta.url))('ws');

const require = createRequire(import.meta.url);
const { load, eventsCtx } = require('../../tests/harness/lib/handler.js');
const { render } = require('../../tests/harness/lib/render.js');

const SUBPROTOCOL = 'aws-appsync-event-ws';
const CONNECTION_TIMEOUT_MS = 300000;
const ID_RE = /^[a-zA-Z0-9-_+]{1,128}$/;
const SEGMENT_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?$/;
const MAX_SEGMENTS = 5;
const MAX_EVENTS = 5;

/// Renders `config` with `provisioner render` (H3's tests/harness/lib/render.js) and returns
/// {namespace: handler source} for every rendered `events/{namespace}.js`.
export function renderHandlers(configPath) {
  const files = render(configPath);
  const handlers = {};
  for (const [name, text] of Object.entries(files)) {
    const m = /^events\/([^/]+)\.js$/.exec(name);
    if (m) handlers[m[1]] = text;
  }
  if (Object.keys(handlers).length === 0) throw new Error(`provisioner render ${configPath}: no events/*.js handler rendered`);
  return handlers;
}

/// The segments of a channel path, or null when AppSync would refuse it. A subscription may end in
/// a `*` segment; a publish may not.
function channelSegments(path, { wildcardTail }) {
  if (typeof path !== 'string') return null;
  let p = path.startsWith('/') ? path.slice(1) : path;
  if (p.endsWith('/')) p = p.slice(0, -1);
  const segs = p.split('/');
  if (segs.length < 1 || segs.length > MAX_SEGMENTS) return null;
  const ok = segs.every((s, i) => SEGMENT_RE.test(s) || (wildcardTail && i === segs.length - 1 && i > 0 && s === '*'));
  return ok ? segs : null;
}

/// Whether a subscription's channel receives a publish to `pub` (both as segment arrays).
function matches(sub, pub) {
  if (sub[sub.length - 1] === '*') {
    const prefix = sub.slice(0, -1);
    return pub.length > prefix.length && prefix.every((s, i) => s === pub[i]);
  }
  return sub.length === pub.length && sub.every((s, i) => s === pub[i]);
}

/// The payload of a JWT, decoded without verification (see the header: the emulator trusts it), or null.
function jwtClaims(token) {
  const raw = String(token).replace(/^Bearer\s+/i, '');
  const parts = raw.split('.');
  if (parts.length !== 3) return null;
  try {
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    return claims && typeof claims === 'object' && !Array.isArray(claims) ? claims : null;
  } catch {
    return null;
  }
}

/// Starts the emulator. Options:
/// - `handlers`: {namespace: rendered handler source}; every namespace of the API (others are refused).
/// - `apiKey`: the publisher's key.
/// - `lambdaAuthorizer(token)`: returns {isAuthorized, handlerContext}, for non-JWT Authorization tokens.
/// - `kaIntervalMs`: keep-alive period (AppSync: 60 s).
/// Returns {port, httpUrl, realtimeUrl, host, published, close()}; `published` logs every accepted publish.
export async function startEmulator({ handlers, apiKey, lambdaAuthorizer = null, kaIntervalMs = 60000 }) {
  const namespaces = new Map(Object.entries(handlers).map(([ns, src]) => [ns, load(src)]));
  // A session of the publisher role e2e.toml implies (`{project}-publisher`): the handler admits only it.
  const publisherArn = 'arn:aws:sts::123456789012:assumed-role/e2e-publisher/e2e-emulator';
  const published = [];
  const connections = new Set();

  // The caller's identity for an auth object / headers, or {error} (aws-protocols.md §1 auth headers, §3 ctx.identity).
  async function authenticate(auth) {
    if (!auth || typeof auth !== 'object') return { error: 'no authorization' };
    const key = auth['x-api-key'];
    const token = auth.Authorization ?? auth.authorization;
    if (typeof key === 'string') {
      if (key !== apiKey) return { error: 'invalid API key' };
      // Stand-in for the trusted IAM publisher: the identity fields AppSync fills for AWS_IAM.
      return { mode: 'AWS_IAM', identity: { accountId: '123456789012', userArn: publisherArn, username: 'AROAE2E:e2e-emulator', sourceIp: ['127.0.0.1'], cognitoIdentityPoolId: null, cognitoIdentityId: null, cognitoIdentityAuthType: null, cognitoIdentityAuthProvider: null } };
    }
    if (typeof token === 'string' && token !== '') {
      const claims = jwtClaims(token);
      if (claims) {
        const groups = Array.isArray(claims['cognito:groups']) ? claims['cognito:groups'] : null;
        return { mode: 'AMAZON_COGNITO_USER_POOLS', identity: { sub: claims.sub, username: claims['cognito:username'] ?? claims.username ?? claims.sub, groups, issuer: claims.iss, claims, sourceIp: ['127.0.0.1'], defaultAuthStrategy: 'ALLOW' } };
      }
      if (lambdaAuthorizer) {
        const r = await lambdaAuthorizer(token);
        if (!r || r.isAuthorized !== true) return { error: 'the Lambda authorizer denied the token' };
        return { mode: 'AWS_LAMBDA', identity: { handlerContext: r.handlerContext ?? {} } };
      }
    }
    return { error: 'no valid x-api-key or Authorization' };
  }

  // Runs onPublish and broadcasts what it returns; returns {status, body} for HTTP.
  async function publish(auth, channel, events) {
    const who = await authenticate(auth);
    if (who.error) return { status: 401, body: { errors: [{ errorType: 'UnauthorizedException', message: who.error }] } };
    const segs = channelSegments(channel, { wildcardTail: false });
    if (!segs) return { status: 400, body: { errors: [{ errorType: 'BadRequestException', message: `invalid channel ${JSON.stringify(channel)}` }] } };
    const ns = namespaces.get(segs[0]);
    if (!ns) return { status: 404, body: { errors: [{ errorType: 'NotFoundException', message: `no namespace ${segs[0]}` }] } };
    if (!Array.isArray(events) || events.length < 1 || events.length > MAX_EVENTS) {
      return { status: 400, body: { errors: [{ errorType: 'BadRequestException', message: `events: 1 to ${MAX_EVENTS} JSON strings` }] } };
    }
    const input = [];
    for (const e of events) {
      let payload;
      try {
        payload = typeof e === 'string' ? JSON.parse(e) : undefined;
      } catch {
        payload = undefined;
      }
      if (payload === undefined) return { status: 400, body: { errors: [{ errorType: 'BadRequestException', message: 'each event must be a string of valid JSON' }] } };
      input.push({ id: randomUUID(), payload });
    }
    const path = '/' + segs.join('/');
    const r = ns.publish(eventsCtx({ path, identity: who.identity, operation: 'PUBLISH', events: input }));
    if (!r.allowed) {
      const status = r.kind === 'error' ? 403 : 401;
      return { status, body: { errors: [{ errorType: r.kind === 'error' ? r.type || 'MessageProcessingError' : 'UnauthorizedException', message: r.message }] } };
    }
    const known = new Map(input.map((e, index) => [e.id, index]));
    const out = (Array.isArray(r.value) ? r.value : []).filter((e) => e && !Object.hasOwn(e, 'error'));
    for (const e of out) if (!known.has(e.id)) return { status: 500, body: { errors: [{ errorType: 'MessageProcessingError', message: `onPublish returned unknown event id ${e.id}` }] } };
    for (const e of out) {
      const text = JSON.stringify(e.payload);
      published.push({ channel: path, event: text });
      for (const conn of connections) {
        for (const [subId, sub] of conn.subs) {
          if (matches(sub, segs)) conn.send({ type: 'data', id: subId, event: text });
        }
      }
    }
    return { status: 200, body: { failed: [], successful: input.map((e, index) => ({ identifier: e.id, index })) } };
  }

  const server = createServer((req, res) => {
    const reply = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST' || req.url !== '/event') return reply(404, { errors: [{ errorType: 'NotFound', message: `${req.method} ${req.url}` }] });
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return reply(400, { errors: [{ errorType: 'BadRequestException', message: 'body is not JSON' }] });
      }
      const auth = { 'x-api-key': req.headers['x-api-key'], Authorization: req.headers.authorization };
      if (auth['x-api-key'] === undefined) delete auth['x-api-key'];
      const r = await publish(auth, body && body.channel, body && body.events);
      reply(r.status, r.body);
    });
  });

  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  server.on('upgrade', (req, socket, head) => {
    const offered = String(req.headers['sec-websocket-protocol'] || '').split(',').map((s) => s.trim());
    if (req.url !== '/event/realtime' || !offered.includes(SUBPROTOCOL)) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, offered));
  });

  async function onConnection(ws, offered) {
    const conn = {
      subs: new Map(),
      send: (msg) => ws.readyState === ws.OPEN && ws.send(JSON.stringify(msg)),
    };
    const header = offered.find((p) => p.startsWith('header-'));
    let connAuth = null;
    try {
      connAuth = header ? JSON.parse(Buffer.from(header.slice('header-'.length), 'base64url').toString('utf8')) : null;
    } catch {
      connAuth = null;
    }
    const who = await authenticate(connAuth);
    if (who.error) {
      conn.send({ type: 'connection_error', errors: [{ errorType: 'UnauthorizedException', message: who.error }] });
      ws.close(1008, 'Unauthorized');
      return;
    }
    connections.add(conn);
    const ka = setInterval(() => conn.send({ type: 'ka' }), kaIntervalMs);
    ka.unref();
    ws.on('close', () => {
      clearInterval(ka);
      connections.delete(conn);
    });
    ws.on('message', async (raw) => {
      let msg;
      try {
        msg = JSON.parse(String(raw));
      } catch {
        return conn.send({ type: 'error', errors: [{ errorType: 'MessageProcessingError', message: 'not JSON' }] });
      }
      if (msg.type === 'connection_init') return conn.send({ type: 'connection_ack', connectionTimeoutMs: CONNECTION_TIMEOUT_MS });
      if (msg.type === 'subscribe') return conn.send(await subscribe(conn, msg, connAuth));
      if (msg.type === 'unsubscribe') {
        if (!conn.subs.delete(msg.id)) return conn.send({ type: 'unsubscribe_error', id: msg.id, errors: [{ errorType: 'UnknownOperationError', message: 'no such subscription' }] });
        return conn.send({ type: 'unsubscribe_success', id: msg.id });
      }
      if (msg.type === 'publish') {
        return conn.send({ type: 'publish_error', id: msg.id, errors: [{ errorType: 'UnsupportedOperation', message: 'the emulator publishes over HTTP only' }] });
      }
      return conn.send({ type: 'error', errors: [{ errorType: 'UnknownOperationError', message: `unknown type ${msg.type}` }] });
    });
  }

  // Authenticates the subscribe message (its own `authorization`, else the connection's), runs
  // onSubscribe, and registers the subscription only when everything admits it.
  async function subscribe(conn, msg, connAuth) {
    const fail = (errorType, message) => ({ type: 'subscribe_error', id: msg.id, errors: [{ errorType, message }] });
    if (typeof msg.id !== 'string' || !ID_RE.test(msg.id)) return fail('SubscriptionProcessingError', 'id must match ^[a-zA-Z0-9-_+]{1,128}$');
    if (conn.subs.has(msg.id)) return fail('SubscriptionProcessingError', `id ${msg.id} is already in use`);
    const who = await authenticate(msg.authorization ?? connAuth);
    if (who.error) return fail('UnauthorizedException', who.error);
    const segs = channelSegments(msg.channel, { wildcardTail: true });
    if (!segs) return fail('SubscriptionProcessingError', `invalid channel ${JSON.stringify(msg.channel)}`);
    const ns = namespaces.get(segs[0]);
    if (!ns) return fail('SubscriptionProcessingError', `no namespace ${segs[0]}`);
    const r = ns.subscribe(eventsCtx({ path: '/' + segs.join('/'), identity: who.identity, operation: 'SUBSCRIBE' }));
    if (!r.allowed) return fail(r.kind === 'unauthorized' ? 'Unauthorized' : 'SubscriptionProcessingError', r.reason || r.message);
    conn.subs.set(msg.id, segs);
    return { type: 'subscribe_success', id: msg.id };
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    port,
    host: `127.0.0.1:${port}`,
    httpUrl: `http://127.0.0.1:${port}/event`,
    realtimeUrl: `ws://127.0.0.1:${port}/event/realtime`,
    published,
    close: () =>
      new Promise((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
