// Starts the project's AppSync Events emulator (tests/e2e/events-emulator.mjs) for the Rust
// subscriber test (emulator.rs), with the handler `provisioner render` produced from
// tests/e2e/e2e.toml. Prints one JSON line {realtimeUrl, httpUrl, host}, then serves until its
// standard input closes (the test process ends or drops it).
//
// Usage: node emulator.mjs API_KEY        (GROUPCAST_PROVISIONER: the provisioner binary)
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const { renderHandlers, startEmulator } = await import(pathToFileURL(path.join(repo, 'tests', 'e2e', 'events-emulator.mjs')).href);

const apiKey = process.argv[2];
// The Lambda authorizer stand-in, as tests/e2e/isolation.e2e.test.js has it: groupcast's authorizer
// writes handlerContext {sub, groups: JSON text}.
const LAMBDA_TOKENS = {
  'opaque-token-dave': { isAuthorized: true, handlerContext: { sub: 'dave', groups: JSON.stringify(['admins']) } },
};
const emu = await startEmulator({
  handlers: renderHandlers(path.join(repo, 'tests', 'e2e', 'e2e.toml')),
  apiKey,
  lambdaAuthorizer: (token) => LAMBDA_TOKENS[token] ?? { isAuthorized: false },
});
process.stdout.write(JSON.stringify({ realtimeUrl: emu.realtimeUrl, httpUrl: emu.httpUrl, host: emu.host }) + '\n');
process.stdin.resume();
process.stdin.on('end', async () => {
  await emu.close();
  process.exit(0);
});
