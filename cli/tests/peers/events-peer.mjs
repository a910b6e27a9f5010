// The `watch` tests' peer: the project's AppSync Events emulator (tests/e2e/events-emulator.mjs)
// running the `live` namespace handler that `provisioner render` makes from tests/e2e/e2e.toml,
// on 127.0.0.1 at a free port.
//
// Usage: node events-peer.mjs API_KEY. Prints one JSON line {"port": N} once listening, and stops
// when its stdin closes (the test process exited), so no peer outlives the tests. The provisioner
// binary comes from $GROUPCAST_PROVISIONER (tests/harness/lib/render.js).
//
// Trust (the emulator's header says more): Cognito JWTs are decoded, not verified; the API key is
// the publisher, standing in for IAM; a Lambda authorizer stand-in admits `opaque-token-dave` with
// the group `admins`.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..', '..');
const { renderHandlers, startEmulator } = await import(path.join(repo, 'tests', 'e2e', 'events-emulator.mjs'));

const apiKey = process.argv[2];
if (!apiKey) {
  console.error('usage: node events-peer.mjs API_KEY');
  process.exit(2);
}
const LAMBDA_TOKENS = {
  'opaque-token-dave': { isAuthorized: true, handlerContext: { sub: 'dave', groups: JSON.stringify(['admins']) } },
};
const handlers = renderHandlers(path.join(repo, 'tests', 'e2e', 'e2e.toml'));
const emu = await startEmulator({
  handlers,
  apiKey,
  lambdaAuthorizer: (token) => LAMBDA_TOKENS[token] ?? { isAuthorized: false },
});
process.stdout.write(JSON.stringify({ port: emu.port }) + '\n');
process.stdin.resume();
process.stdin.on('end', async () => {
  await emu.close();
  process.exit(0);
});
