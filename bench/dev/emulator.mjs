// The Events baseline of bench/dev/run.sh: starts the Node fixture the local stack replaces
// (tests/e2e/events-emulator.mjs, the Node fixture itself, not a copy: plain HTTP and ws, JWTs decoded
// and not verified, API-key publisher, the rendered handler run by the isolation harness's loader)
// on the bench config, and prints one JSON line with its URLs. Runs until killed.
// Usage: GROUPCAST_PROVISIONER=target/…/provisioner node bench/dev/emulator.mjs CONFIG API_KEY
import path from 'node:path';
import { renderHandlers, startEmulator } from '../../tests/e2e/events-emulator.mjs';

const [config, apiKey] = process.argv.slice(2);
const emulator = await startEmulator({ handlers: renderHandlers(path.resolve(config)), apiKey });
console.log(JSON.stringify({ port: emulator.port, httpUrl: emulator.httpUrl, realtimeUrl: emulator.realtimeUrl }));
