// The local stack as a third party sees it: starts `provisioner dev` on ephemeral 127.0.0.1 ports
// with a temporary state directory, reads the endpoints from the outputs file it writes, mints
// tokens with `provisioner dev token`, gets a user's Cognito identity-pool credentials from the
// stack's AWS port, grants IoT policies with `provisioner iot grant`, and publishes with the real
// `groupcast publish`. Everything the suite and the browser test need from the stack goes through
// here; every detail of the contract that could still move (docs/dev.md, DEV-CONTRACT.md) is in one
// small function below, named for what it decides.
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import https from 'node:https';
import http from 'node:http';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CONFIG = path.join(REPO, 'tests', 'e2e', 'stack.toml');
const START_MS = 20000; // bound on `provisioner dev` becoming ready (the target is 1 s)

/// The provisioner binary: $GROUPCAST_PROVISIONER (scripts/test.sh exports it), else target/debug.
export function provisionerBin() {
  const bin = process.env.GROUPCAST_PROVISIONER || path.join(process.env.CARGO_TARGET_DIR || path.join(REPO, 'target'), 'debug', 'provisioner');
  if (!existsSync(bin)) throw new Error(`no provisioner binary at ${bin}: build it (cargo build -p provisioner) or set GROUPCAST_PROVISIONER`);
  return bin;
}

/// The `groupcast` CLI (cli/): $GROUPCAST_CLI, else the `groupcast` beside the provisioner (one target dir).
export function groupcastBin() {
  const bin = process.env.GROUPCAST_CLI || path.join(path.dirname(provisionerBin()), 'groupcast');
  if (!existsSync(bin)) throw new Error(`no groupcast CLI at ${bin}: build it (cargo build -p groupcast-cli) or set GROUPCAST_CLI`);
  return bin;
}

/// A function binary built beside the provisioner (one target dir: `authorizer`, `iot-authorizer`,
/// `iot-grant`), for `provisioner dev --authorizer-bin` and the like, so a run with
/// GROUPCAST_PROVISIONER pointing elsewhere than target/ finds them too.
export function siblingBin(name) {
  const bin = path.join(path.dirname(provisionerBin()), name);
  if (!existsSync(bin)) throw new Error(`no ${name} binary at ${bin}: build it (cargo build -p ${name})`);
  return bin;
}

/// An environment without the caller's AWS_* and GROUPCAST_* settings, so nothing here can reach a
/// real account by accident; `extra` is added.
export function cleanEnv(extra = {}) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GROUPCAST_') && !k.startsWith('AWS_')));
  // No proxy may route a 127.0.0.1 request elsewhere.
  for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY', 'all_proxy']) delete env[k];
  env.NO_PROXY = '127.0.0.1,localhost';
  // The SDK default chain must find nothing on disk or IMDS: credentials are always explicit here.
  env.AWS_CONFIG_FILE = '/dev/null';
  env.AWS_SHARED_CREDENTIALS_FILE = '/dev/null';
  env.AWS_EC2_METADATA_DISABLED = 'true';
  return Object.assign(env, extra);
}

function run(bin, args, { env, input, timeout = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile(bin, args, { env, timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(new Error(`${path.basename(bin)} ${args.join(' ')}: ${err.message}\n${stderr}`));
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin.end(input);
  });
}

// ---- the contract's details, one function each ----------------------------------------------

/// The `provisioner dev` arguments: the config, every port ephemeral (`--ports NAME=0,…`: the bound
/// ports go to the outputs), the state directory, and the two outputs files in it.
function devArgs(config, stateDir) {
  return [
    '--config', config, 'dev',
    '--state-dir', stateDir,
    '--ports', 'events=0,graphql=0,iot_wss=0,iot_mqtt=0,aws=0',
    '--outputs', path.join(stateDir, 'outputs.json'),
    '--amplify-outputs', path.join(stateDir, 'amplify_outputs.json'),
  ];
}

/// Where `provisioner dev` wrote its outputs (the `apply` format plus `dev`), or null while it has not.
function outputsPath(stateDir) {
  const p = path.join(stateDir, 'outputs.json');
  return existsSync(p) ? p : null;
}

/// The frontend outputs (`amplify_outputs.json`, Amplify Gen 2 shape) beside the outputs file.
function amplifyOutputsPath(outputs, outputsFile) {
  const named = outputs.dev && (outputs.dev.amplify_outputs || outputs.dev.amplifyOutputs);
  return named ? path.resolve(path.dirname(outputsFile), named) : path.join(path.dirname(outputsFile), 'amplify_outputs.json');
}

/// The stack's CA certificate (PEM), which every client trusts (NODE_EXTRA_CA_CERTS, SSL_CERT_FILE).
function caPath(outputs) {
  const d = outputs.dev || {};
  const p = d.ca_path || d.caPath;
  if (!p) throw new Error('outputs: dev.ca_path is missing');
  return p;
}

/// The publisher's IAM key pair (state dir `credentials.json`, or inline in the outputs).
function publisherCredentials(outputs, stateDir) {
  const c = (outputs.dev && outputs.dev.credentials) || path.join(stateDir, 'credentials.json');
  const creds = typeof c === 'string' ? JSON.parse(readFileSync(c, 'utf8')) : c;
  const accessKeyId = creds.access_key_id || creds.accessKeyId || creds.AccessKeyId;
  const secretAccessKey = creds.secret_access_key || creds.secretAccessKey || creds.SecretAccessKey;
  if (!accessKeyId || !secretAccessKey) throw new Error(`publisher credentials ${JSON.stringify(c)}: no access_key_id/secret_access_key`);
  return { accessKeyId, secretAccessKey, sessionToken: creds.session_token || creds.sessionToken };
}

/// The emulated AWS APIs' origin (Cognito identity, IoT control plane): the outputs' `dev.urls.aws`.
/// (The issuer is the configured user pool's URL, which only names the pool: nothing is served there.)
function awsOrigin(outputs) {
  const aws = outputs.dev && outputs.dev.urls && outputs.dev.urls.aws;
  if (!aws) throw new Error('outputs: dev.urls.aws is missing');
  return new URL(aws).origin;
}

/// `provisioner dev token` for a user and groups: sets the user's groups in the stack's directory
/// and prints the ID token alone on stdout.
function tokenArgs(config, stateDir, user, groups) {
  return ['--config', config, 'dev', 'token', '--state-dir', stateDir, '--user', user, '--groups', groups.join(',')];
}

/// The IoT MQTT-over-WSS URL before signing: `wss://{dataEndpoint}/mqtt`.
export function iotWssUrl(outputs) {
  const ep = outputs.iot && outputs.iot.dataEndpoint;
  if (!ep) throw new Error('outputs: iot.dataEndpoint is missing (IoT not served?)');
  const base = /^wss?:\/\//.test(ep) ? ep : `wss://${ep}`;
  return new URL('/mqtt', base).toString();
}

// ---- starting and using the stack -------------------------------------------------------------

/// Starts `provisioner dev` and waits until its outputs exist and its Events port accepts TCP.
/// Returns the stack handle; `stop()` ends the process (its PID only) and removes the state dir.
/// `args` are more `provisioner dev` flags (e.g. `--authorizer-bin`, see {@link siblingBin}).
export async function startStack({ config = CONFIG, args = [] } = {}) {
  const bin = provisionerBin();
  const stateDir = mkdtempSync(path.join(tmpdir(), 'groupcast-e2e-'));
  const child = spawn(bin, [...devArgs(config, stateDir), ...args], { env: cleanEnv({ RUST_LOG: process.env.RUST_LOG || 'info' }), stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  let exited = null;
  child.on('exit', (code, signal) => (exited = { code, signal }));
  const stop = async () => {
    if (exited === null) {
      child.kill('SIGINT');
      const t = setTimeout(() => exited === null && child.kill('SIGKILL'), 3000);
      await new Promise((r) => (exited !== null ? r() : child.once('exit', r)));
      clearTimeout(t);
    }
    rmSync(stateDir, { recursive: true, force: true });
  };
  const end = Date.now() + START_MS;
  let file = null;
  let outputs = null;
  for (;;) {
    if (exited !== null) throw new Error(`provisioner dev exited (${JSON.stringify(exited)}) before it was ready:\n${log}`);
    if (Date.now() > end) {
      await stop();
      throw new Error(`provisioner dev was not ready within ${START_MS} ms (no outputs file or no Events port):\n${log}`);
    }
    file = file ?? outputsPath(stateDir);
    if (file && !outputs) {
      try {
        outputs = JSON.parse(readFileSync(file, 'utf8'));
      } catch {
        outputs = null; // written but not complete yet
      }
    }
    if (outputs && outputs.events && (await accepts(`https://${outputs.events.httpHost}`))) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return openStack({ config, stateDir, outputsFile: file, outputs, log: () => log, stop });
}

/// A handle on a running stack from its outputs file (what `examples/web/serve.mjs` uses): `config`
/// and `stateDir` are those `provisioner dev` runs with (tokens are minted from the state dir).
export function openStack({ config = CONFIG, stateDir, outputsFile, outputs = JSON.parse(readFileSync(outputsFile, 'utf8')), log = () => '', stop = async () => {} }) {
  const bin = provisionerBin();
  const amplifyFile = amplifyOutputsPath(outputs, outputsFile);
  return {
    stateDir,
    config,
    outputs,
    outputsFile,
    amplifyOutputsFile: amplifyFile,
    amplifyOutputs: existsSync(amplifyFile) ? JSON.parse(readFileSync(amplifyFile, 'utf8')) : null,
    ca: caPath(outputs),
    awsOrigin: awsOrigin(outputs),
    log,
    stop,
    /// An ID token for `user` in `groups`, from the local issuer.
    async token(user, groups) {
      const { code, stdout, stderr } = await run(bin, tokenArgs(config, stateDir, user, groups), { env: cleanEnv() });
      const jwt = stdout.split(/\s+/).find((w) => /^[\w-]+\.[\w-]+\.[\w-]+$/.test(w));
      if (code !== 0 || !jwt) throw new Error(`provisioner dev token --user ${user}: exit ${code}, no JWT printed:\n${stdout}\n${stderr}`);
      return jwt;
    },
    publisherCredentials: () => publisherCredentials(outputs, stateDir),
  };
}

/// Whether `url`'s host:port accepts a TCP connection now.
function accepts(url) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port || 443) });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/// Calls one Cognito Identity action (JSON 1.1) on the stack's AWS port, as the AWS SDKs do:
/// https://docs.aws.amazon.com/cognitoidentity/latest/APIReference/API_GetCredentialsForIdentity.html
/// (a public API: no credentials, the login token authenticates).
async function cognitoIdentity(stack, action, body) {
  const { status, text } = await request(stack, `${stack.awsOrigin}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `AWSCognitoIdentityService.${action}` },
    body: JSON.stringify(body),
  });
  if (status !== 200) throw new Error(`Cognito identity ${action}: HTTP ${status} ${text}`);
  return JSON.parse(text);
}

/// One HTTPS request to the stack, trusting its CA only (this process started before the CA
/// existed, so NODE_EXTRA_CA_CERTS cannot name it). Returns {status, headers, text}.
export function request(stack, url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    // Plain HTTP only for the transports' own Rust tests, which serve without TLS.
    const plain = url.startsWith('http://');
    const req = (plain ? http : https).request(url, { method, headers, ...(plain ? {} : { ca: readFileSync(stack.ca) }), timeout: 10000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within 10 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/// The identity pool the stack serves: the frontend outputs' `auth.identity_pool_id` (Amplify's
/// name), else the outputs' `dev.identity_pool_id`. (Locally it is derived from the project, not
/// the config's `iot.identity_pool_id`, which names the AWS pool.)
function identityPoolId(stack) {
  const id = (stack.amplifyOutputs && stack.amplifyOutputs.auth && stack.amplifyOutputs.auth.identity_pool_id) || (stack.outputs.dev && (stack.outputs.dev.identity_pool_id || stack.outputs.dev.identityPoolId));
  if (!id) throw new Error(`no identity pool id: neither ${stack.amplifyOutputsFile} auth.identity_pool_id nor the outputs' dev.identity_pool_id`);
  return id;
}

/// The login provider name for a user pool token: its issuer without the scheme, as Cognito
/// names providers (`cognito-idp.{region}.amazonaws.com/{pool}` on AWS; the local issuer here).
function loginProvider(token) {
  const iss = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')).iss;
  return String(iss).replace(/^https?:\/\//, '');
}

/// A user's identity id and identity-pool credentials for their ID token: GetId, then
/// GetCredentialsForIdentity, with the user pool as the login provider
/// (https://docs.aws.amazon.com/cognitoidentity/latest/APIReference/API_GetId.html, `Logins`).
export async function identityCredentials(stack, token) {
  const Logins = { [loginProvider(token)]: token };
  const { IdentityId } = await cognitoIdentity(stack, 'GetId', { IdentityPoolId: identityPoolId(stack), Logins });
  const { Credentials } = await cognitoIdentity(stack, 'GetCredentialsForIdentity', { IdentityId, Logins });
  return { identityId: IdentityId, accessKeyId: Credentials.AccessKeyId, secretAccessKey: Credentials.SecretKey, sessionToken: Credentials.SessionToken };
}

/// `provisioner iot grant` against the stack's AWS port, as the publisher principal: attaches
/// exactly these groups' IoT policies to the identity.
export async function iotGrant(stack, identityId, groups) {
  const c = stack.publisherCredentials();
  const env = cleanEnv({ AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey, AWS_REGION: 'us-east-1', SSL_CERT_FILE: stack.ca });
  if (c.sessionToken) env.AWS_SESSION_TOKEN = c.sessionToken;
  const args = ['iot', 'grant', '--config', stack.config, '--endpoint-url', stack.awsOrigin, '--identity-id', identityId, '--groups', groups.join(',')];
  const { code, stdout, stderr } = await run(provisionerBin(), args, { env });
  if (code !== 0) throw new Error(`provisioner iot grant ${identityId} ${groups}: exit ${code}\n${stdout}\n${stderr}`);
}

/// `groupcast publish` (the real CLI) against the stack: GROUPCAST_OUTPUTS = its outputs file, the
/// publisher's IAM key, the stack's CA. Returns {code, deliveries (the JSON lines), stderr}.
export async function publish(stack, { topic, groups, data, transports, id }) {
  const c = stack.publisherCredentials();
  const env = cleanEnv({
    GROUPCAST_OUTPUTS: stack.outputsFile,
    GROUPCAST_AUTH: 'iam',
    GROUPCAST_DEADLINE_MS: '8000',
    AWS_ACCESS_KEY_ID: c.accessKeyId,
    AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
    AWS_REGION: 'us-east-1',
    // rustls-native-certs (the CLI's roots) reads SSL_CERT_FILE: only the stack's CA is trusted.
    SSL_CERT_FILE: stack.ca,
  });
  if (c.sessionToken) env.AWS_SESSION_TOKEN = c.sessionToken;
  const args = ['publish', '--format', 'json', '--topic', topic, ...groups.flatMap((g) => ['--group', g]), '--data', JSON.stringify(data)];
  if (transports) args.push('--transport', transports.join(','));
  if (id) args.push('--id', id);
  const { code, stdout, stderr } = await run(groupcastBin(), args, { env });
  const deliveries = stdout.split('\n').filter((l) => l.trim()).map((l) => {
    try {
      return JSON.parse(l);
    } catch {
      throw new Error(`groupcast publish printed a line that is not JSON: ${l}\n${stderr}`);
    }
  });
  return { code, deliveries, stderr };
}

/// Cognito's AdminRemoveUserFromGroup on the stack's AWS port, signed (SigV4, service `cognito-idp`)
/// with the publisher's keys: the removal an administrator makes
/// (https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_AdminRemoveUserFromGroup.html,
/// JSON 1.1 with `X-Amz-Target: AWSCognitoIdentityProviderService.AdminRemoveUserFromGroup`).
export async function removeFromGroup(stack, { userPoolId, user, group }) {
  const { SignatureV4 } = await import('@smithy/signature-v4');
  const { createHash, createHmac } = await import('node:crypto');
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
  const u = new URL(stack.awsOrigin);
  const body = JSON.stringify({ UserPoolId: userPoolId, Username: user, GroupName: group });
  const signer = new SignatureV4({ service: 'cognito-idp', region: stack.outputs.region || 'us-east-1', credentials: stack.publisherCredentials(), sha256: Sha256 });
  const signed = await signer.sign({
    method: 'POST',
    protocol: 'https:',
    hostname: u.hostname,
    port: Number(u.port) || undefined,
    path: '/',
    headers: { host: u.host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AWSCognitoIdentityProviderService.AdminRemoveUserFromGroup' },
    body,
  });
  const { status, text } = await request(stack, `${stack.awsOrigin}/`, { method: 'POST', headers: signed.headers, body });
  if (status !== 200) throw new Error(`AdminRemoveUserFromGroup ${user} ${group}: HTTP ${status} ${text}`);
}
