// Debian's chromium, driven by puppeteer-core, confined to 127.0.0.1: every host name but
// 127.0.0.1 resolves to nothing, background networking is off, and certificate errors are ignored
// only for the public keys the local stack's servers present (--ignore-certificate-errors-spki-list),
// so the browser trusts the stack and nothing else it has not always trusted.
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { createHash } from 'node:crypto';
import puppeteer from 'puppeteer-core';

/// The chromium binary: $GROUPCAST_CHROMIUM, else Debian's /usr/bin/chromium (.ci/run installs it).
export function chromiumPath() {
  const bin = process.env.GROUPCAST_CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(bin)) throw new Error(`no chromium at ${bin}: apt-get install chromium (.ci/run pins it) or set GROUPCAST_CHROMIUM`);
  return bin;
}

/// base64(SHA-256(SubjectPublicKeyInfo)) of the certificate the TLS server at host:port presents,
/// checked against `ca` (PEM) first, so only the stack's own key is ever listed.
export function spkiHash(hostPort, ca) {
  const [host, port] = hostPort.split(':');
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port: Number(port), ca, servername: host === '127.0.0.1' ? undefined : host, checkServerIdentity: () => undefined }, () => {
      const der = s.getPeerX509Certificate().publicKey.export({ type: 'spki', format: 'der' });
      s.end();
      resolve(createHash('sha256').update(der).digest('base64'));
    });
    s.once('error', reject);
  });
}

/// Launches chromium trusting the given SPKI hashes; returns {browser, close()}.
export async function launch(spkiHashes) {
  const profile = mkdtempSync(path.join(tmpdir(), 'groupcast-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    userDataDir: profile,
    args: [
      ...(process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : []),
      `--ignore-certificate-errors-spki-list=${spkiHashes.join(',')}`,
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-default-apps',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-dev-shm-usage',
    ],
  });
  return {
    browser,
    close: async () => {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
