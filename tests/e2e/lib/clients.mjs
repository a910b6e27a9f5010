// The parent's side of subscriber.mjs: starts one process per user, collects what it prints, and
// waits for every subscription to be answered (ready or refused).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanEnv } from './stack.mjs';

const SUBSCRIBER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'subscriber.mjs');
export const STEP_MS = 15000; // bound on every wait for the wire

/// Waits until `pred()` holds, polling; fails naming `what` (and `detail()`) after `ms`.
export async function until(pred, what, { ms = STEP_MS, detail = () => '' } = {}) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${detail() ? `\n${detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/// Starts `user`'s subscriber process with `subscriptions` (see subscriber.mjs) and waits until
/// each is answered. Returns {status(id), messages, lines, stderr(), close()}.
export async function startUser(stack, { user, token, iot, subscriptions }) {
  const spec = { amplifyOutputs: stack.amplifyOutputsFile, token, iot, subscriptions };
  const child = spawn(process.execPath, [SUBSCRIBER, JSON.stringify(spec)], {
    cwd: path.dirname(SUBSCRIBER),
    env: cleanEnv({ NODE_EXTRA_CA_CERTS: stack.ca }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const statuses = new Map();
  const messages = [];
  const lines = []; // every line, in order (rotations of 'events-epochs' subscriptions included)
  let stderr = '';
  let buf = '';
  let exited = null;
  child.on('exit', (code, signal) => (exited = { code, signal }));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!line.trim()) continue;
      const o = JSON.parse(line);
      lines.push({ at: Date.now(), ...o });
      if (o.status && !statuses.has(o.id)) statuses.set(o.id, o);
      if (o.message !== undefined) messages.push(o);
    }
  });
  const ids = subscriptions.map((s) => s.id);
  await until(() => exited !== null || ids.every((id) => statuses.has(id)), `${user}'s subscriptions to be answered`, {
    detail: () => `answered: ${JSON.stringify([...statuses.values()])}\nstderr: ${stderr.slice(-2000)}`,
  });
  if (exited !== null && !ids.every((id) => statuses.has(id))) throw new Error(`${user}'s subscriber exited ${JSON.stringify(exited)}:\n${stderr}`);
  return {
    user,
    status: (id) => statuses.get(id),
    messages,
    lines,
    stderr: () => stderr,
    close: async () => {
      if (exited !== null) return;
      child.stdin.end();
      const t = setTimeout(() => exited === null && child.kill('SIGKILL'), 3000);
      await new Promise((r) => (exited !== null ? r() : child.once('exit', r)));
      clearTimeout(t);
    },
  };
}
