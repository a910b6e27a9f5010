#!/usr/bin/env node
// Serves the page (examples/web) against a running `provisioner dev`, on 127.0.0.1 only.
//
//   node examples/web/serve.mjs --outputs .groupcast-dev/groupcast.outputs.json \
//     --config examples/groupcast.toml [--user alice=team-a --user bob=team-b] [--port 8080]
//
// At start it bundles src/app.js with esbuild (nothing fetched at run time: the bundle, the page
// and the stack's outputs are all served from here), then, for each --user, mints an ID token
// with `provisioner dev token`, gets the user's identity-pool credentials from the stack, attaches
// their groups' IoT policies (`provisioner iot grant`, as the iot-grant function does on AWS) and
// presigns the IoT WebSocket URL. Tokens are minted here, once, rather than by an endpoint the
// browser could call for any user and group: the page can only be who the command line said.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const { openStack, identityCredentials, iotGrant, iotWssUrl, CONFIG } = await import(path.join(REPO, 'tests', 'e2e', 'lib', 'stack.mjs'));
const { bundle } = await import('./build.mjs');
const { presignIot } = await import(path.join(REPO, 'tests', 'e2e', 'lib', 'presign.mjs'));

const { values } = parseArgs({
  options: {
    outputs: { type: 'string' },
    config: { type: 'string' },
    'state-dir': { type: 'string' },
    user: { type: 'string', multiple: true },
    port: { type: 'string', default: '8080' },
  },
});
if (!values.outputs) {
  console.error('serve.mjs: --outputs FILE is required (the outputs file `provisioner dev` wrote)');
  process.exit(1);
}
const outputsFile = path.resolve(values.outputs);
const users = (values.user && values.user.length ? values.user : ['alice=team-a', 'bob=team-b']).map((spec) => {
  const [name, groups = ''] = spec.split('=');
  if (!name) throw new Error(`--user ${spec}: expected NAME=GROUP[,GROUP…]`);
  return { name, groups: groups.split(',').filter(Boolean) };
});

const stack = openStack({ config: path.resolve(values.config || CONFIG), stateDir: path.resolve(values['state-dir'] || path.dirname(outputsFile)), outputsFile });
if (!stack.amplifyOutputs) throw new Error(`no frontend outputs at ${stack.amplifyOutputsFile}`);
const namespace = stack.outputs.events.namespaces[0].name;
const allGroups = [...new Set(users.flatMap((u) => u.groups))];
const sessions = {};
for (const u of users) {
  const token = await stack.token(u.name, u.groups);
  const creds = await identityCredentials(stack, token);
  await iotGrant(stack, creds.identityId, u.groups);
  // A group this user is not in, to show the refusal: another user's, else a fixed name.
  const foreign = allGroups.find((g) => !u.groups.includes(g)) || 'not-my-group';
  sessions[u.name] = {
    token,
    groups: u.groups,
    foreign,
    namespace,
    iot: { url: await presignIot({ url: iotWssUrl(stack.outputs), region: 'us-east-1', ...creds }), clientId: creds.identityId, topicPrefix: stack.outputs.iot.topicPrefix },
  };
}
const appJs = await bundle();
const routes = {
  '/': ['text/html; charset=utf-8', readFileSync(path.join(HERE, 'index.html'))],
  '/app.js': ['text/javascript; charset=utf-8', appJs],
  '/amplify_outputs.json': ['application/json', JSON.stringify(stack.amplifyOutputs)],
  '/users.json': ['application/json', JSON.stringify(users.map((u) => u.name))],
};
for (const [name, s] of Object.entries(sessions)) routes[`/session/${encodeURIComponent(name)}.json`] = ['application/json', JSON.stringify(s)];

const server = createServer((req, res) => {
  const route = routes[new URL(req.url, 'http://127.0.0.1').pathname];
  if (!route || req.method !== 'GET') {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    return;
  }
  res.writeHead(200, { 'content-type': route[0], 'cache-control': 'no-store' }).end(route[1]);
});
server.listen(Number(values.port), '127.0.0.1', () => {
  console.log(`serving http://127.0.0.1:${server.address().port}/ (users: ${users.map((u) => `${u.name}=${u.groups.join(',')}`).join(' ')})`);
});
process.on('SIGINT', () => server.close(() => process.exit(0)));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
