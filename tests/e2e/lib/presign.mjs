// The IoT MQTT-over-WSS URL, SigV4-presigned with identity-pool credentials (used by the suite's
// subscribers and by examples/web/serve.mjs for the page).
import { SignatureV4 } from '@smithy/signature-v4';
import { createHash, createHmac } from 'node:crypto';

/// A SigV4-presigned `wss://…/mqtt` URL, as AWS IoT requires for MQTT over WebSocket with IAM: the
/// service is `iotdevicegateway`, and a session token is appended after signing, not signed
/// (https://docs.aws.amazon.com/iot/latest/developerguide/protocols.html#mqtt-ws).
export async function presignIot({ url, region, accessKeyId, secretAccessKey, sessionToken }) {
  class Sha256 {
    constructor(secret) {
      this.h = secret ? createHmac('sha256', secret) : createHash('sha256');
    }
    update(d) {
      this.h.update(d);
    }
    async digest() {
      return new Uint8Array(this.h.digest());
    }
  }
  const u = new URL(url);
  const signer = new SignatureV4({ service: 'iotdevicegateway', region, credentials: { accessKeyId, secretAccessKey }, sha256: Sha256, uriEscapePath: true });
  const signed = await signer.presign(
    { method: 'GET', protocol: 'wss:', hostname: u.hostname, port: Number(u.port) || undefined, path: u.pathname, headers: { host: u.host }, query: {} },
    { expiresIn: 3600 },
  );
  const q = new URLSearchParams(signed.query);
  if (sessionToken) q.set('X-Amz-Security-Token', sessionToken);
  return `${u.protocol}//${u.host}${u.pathname}?${q}`;
}

