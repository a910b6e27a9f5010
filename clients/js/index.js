// @groupcast/channels: the names a browser subscribes to, computed exactly as groupcast does in Rust.
//
// A user in group `Team_B` listens on `/live/x--Team-5fB/...` (Events) or `gc/x--Team-5fB/...` (IoT):
// the group → segment rule (groupcast::group_segment, functions/groupcast/src/group.rs; README "The
// group rule") lives here in JavaScript so a frontend never hand-encodes a group. Every function
// throws a GroupcastError (an Error with `field` and `rule`) where Rust returns an error, with
// Rust's text where Rust has one. No dependencies; runs in browsers and Node ≥ 20.
//
// Tests (`node --test clients/js/`): the shared table tests/fixtures/group-segments.json, and a
// property test against the Rust rule (cargo example `segments`).

/** A marker that unencoded segments can never hold (they hold no `--`). */
export const ENCODED_PREFIX = 'x--';
// AWS limits, as groupcast::limits has them. Channel segments: 1-50 of [A-Za-z0-9-], alphanumeric at both
// ends, at most 5 per channel path, a subscribe path may end in `*`
// (https://docs.aws.amazon.com/appsync/latest/eventapi/event-api-concepts.html,
// https://docs.aws.amazon.com/appsync/latest/eventapi/channel-namespaces.html). IoT topics: at most 256
// UTF-8 bytes and 7 `/`, `$` topics reserved; client ids at most 128 bytes
// (https://docs.aws.amazon.com/general/latest/gr/iot-core.html).

/** Characters in one AppSync Events channel segment (and one namespace name). groupcast::limits. */
export const SEGMENT_MAX_CHARS = 50;
/** Segments in an AppSync Events channel path, the namespace included. groupcast::limits. */
export const CHANNEL_MAX_SEGMENTS = 5;
/** Segments a groupcast topic may have: what the namespace and the group segment leave. */
export const TOPIC_MAX_SEGMENTS = CHANNEL_MAX_SEGMENTS - 2;
/** Bytes in one IoT topic name or filter, UTF-8. groupcast::limits::IOT_TOPIC_MAX_BYTES. */
export const IOT_TOPIC_MAX_BYTES = 256;
/** Forward slashes in one IoT topic name or filter. groupcast::limits::IOT_TOPIC_MAX_SLASHES. */
export const IOT_TOPIC_MAX_SLASHES = 7;
/** Bytes in one MQTT client id on IoT Core. */
export const IOT_CLIENT_ID_MAX_BYTES = 128;

const TOPIC_RULE =
  "1 to 3 segments joined by '/', each 1-50 characters of [A-Za-z0-9-] starting and ending with a letter or digit";
const NAMESPACE_RULE = '1-50 characters of [A-Za-z0-9-], alphanumeric at both ends';
const PREFIX_RULE =
  "an IoT topic prefix is one or more non-empty levels joined by '/', without '+', '#', '*', '?' or a leading '$'";
const IDENTITY_RULE = 'must be a Cognito identity id: <region>:<uuid>, at most 55 characters';
const SEGMENT = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?$/;
const HEX = '0123456789abcdef';

/** The error every function here throws: `field` names the argument, `rule` the rule it broke. */
export class GroupcastError extends Error {
  constructor(field, rule, message) {
    super(message);
    this.name = 'GroupcastError';
    this.field = field;
    this.rule = rule;
  }
}

/**
 * Whether `s` is a valid AppSync Events channel segment: 1–50 of [A-Za-z0-9-], alphanumeric at
 * both ends (groupcast::is_valid_segment).
 */
export function isValidSegment(s) {
  return typeof s === 'string' && SEGMENT.test(s);
}

// Rust's `{:?}` of a string, for printable text: JSON's quoting agrees with it there.
function quote(s) {
  return JSON.stringify(s);
}

// The index of the first UTF-16 surrogate without its partner, or -1. No Rust string holds one, so no
// group can be named so, and the string has no UTF-8 bytes to encode.
function loneSurrogateAt(s) {
  for (let i = 0; i < s.length; i += 1) {
    const u = s.charCodeAt(i);
    if (u >= 0xd800 && u <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i += 1;
      else return i;
    } else if (u >= 0xdc00 && u <= 0xdfff) {
      return i;
    }
  }
  return -1;
}

function isAlnumByte(b) {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

/**
 * The channel segment and IoT topic level of a group (groupcast::group_segment): a name that is
 * already a valid segment and holds no `--` maps to itself; any other becomes `x--` + its UTF-8
 * bytes, letters and digits kept, every other byte `-` + two lowercase hex digits.
 * Throws a GroupcastError (field `group`) for an empty name, a name whose encoding exceeds 50
 * characters, a string with an unpaired surrogate, or a non-string.
 */
export function groupSegment(group) {
  if (typeof group !== 'string') {
    throw new GroupcastError('group', 'not-a-string', `group name must be a string, not ${group === null ? 'null' : typeof group}`);
  }
  if (group.length === 0) {
    throw new GroupcastError('group', 'empty', 'group name is empty: a group needs at least one character');
  }
  if (isValidSegment(group) && !group.includes('--')) {
    return group;
  }
  const lone = loneSurrogateAt(group);
  if (lone >= 0) {
    throw new GroupcastError(
      'group',
      'lone-surrogate',
      `group ${quote(group)} has an unpaired UTF-16 surrogate at index ${lone}: it is not Unicode text, so it has no UTF-8 bytes to encode and no group can be named so`,
    );
  }
  let out = ENCODED_PREFIX;
  for (const b of new TextEncoder().encode(group)) {
    out += isAlnumByte(b) ? String.fromCharCode(b) : `-${HEX[b >> 4]}${HEX[b & 0xf]}`;
  }
  if (out.length > SEGMENT_MAX_CHARS) {
    throw new GroupcastError(
      'group',
      'too-long',
      `group ${quote(group)} cannot be mapped to a channel segment: its encoded form is ${out.length} characters and a segment holds at most ${SEGMENT_MAX_CHARS}; names of letters, digits and inner single hyphens map to themselves, other characters cost 3 per UTF-8 byte`,
    );
  }
  return out;
}

/**
 * The group a segment stands for, or null when no group maps to it (groupcast::decode_segment):
 * the inverse of groupSegment, accepting only the canonical encoding.
 */
export function decodeSegment(segment) {
  if (!isValidSegment(segment)) return null;
  if (!segment.startsWith(ENCODED_PREFIX)) return segment.includes('--') ? null : segment;
  const rest = segment.slice(ENCODED_PREFIX.length);
  const bytes = [];
  for (let i = 0; i < rest.length; i += 1) {
    if (rest[i] !== '-') {
      bytes.push(rest.charCodeAt(i));
      continue;
    }
    const hex = rest.slice(i + 1, i + 3);
    if (!/^[0-9a-f]{2}$/.test(hex)) return null;
    bytes.push(parseInt(hex, 16));
    i += 2;
  }
  let group;
  // ignoreBOM: a group may begin with U+FEFF, and TextDecoder would otherwise drop it.
  try {
    group = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(new Uint8Array(bytes));
  } catch {
    return null;
  }
  try {
    return groupSegment(group) === segment ? group : null;
  } catch {
    return null;
  }
}

// The topic rule of groupcast::validate_topic, plus, when `wildcard` is given, that one final level
// (`topic` itself or what follows its last `/`) may be that wildcard, for subscribing.
function checkTopic(topic, wildcard, max = TOPIC_MAX_SEGMENTS) {
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new GroupcastError('topic', 'empty', `invalid topic: must not be empty: ${TOPIC_RULE}`);
  }
  const segments = topic.split('/');
  if (segments.length > max) {
    const rule = max === TOPIC_MAX_SEGMENTS
      ? TOPIC_RULE
      : `in a time-sliced namespace the epoch segment takes one of the channel's ${CHANNEL_MAX_SEGMENTS} segments, so a topic has at most ${max} (limits::EPOCH_TOPIC_MAX_SEGMENTS), a final '*' included`;
    throw new GroupcastError('topic', 'segments', `invalid topic: ${quote(topic)} has ${segments.length} segments: ${rule}`);
  }
  const bad = segments.find((s, i) => !isValidSegment(s) && !(i === segments.length - 1 && s === wildcard));
  if (bad !== undefined) {
    const hint = wildcard ? ` (or a final '${wildcard}' to subscribe to every topic below)` : '';
    throw new GroupcastError('topic', 'segment', `invalid topic: ${quote(topic)} has the segment ${quote(bad)}: ${TOPIC_RULE}${hint}`);
  }
}

/**
 * The AppSync Events channel of a group's topic: `/{namespace}/{groupSegment(group)}/{topic}`.
 * `namespace` is a namespace name (1–50 of [A-Za-z0-9-], alphanumeric at both ends); `topic` is 1–3
 * valid segments, the last of which may be `*` to subscribe to every topic below (`jobs/*`, or `*`
 * for all of the group's topics): a channel has at most 5 segments, the `*` included, as the
 * generated handler counts them. Throws a GroupcastError naming the field.
 *
 * In a time-sliced namespace (outputs `events.namespaces[].epochSeconds`), pass `{ epochSeconds }`:
 * the channel is `/{namespace}/{segment}/t{epoch}/{topic}` with `epoch` the one given, or the current
 * one of this machine's clock; `topic` then has at most 2 segments (EPOCH_TOPIC_MAX_SEGMENTS).
 * `epochSeconds` absent, null or 0 means no epochs. To stay subscribed across epochs, use
 * {@link keepSubscribed}.
 */
export function eventsChannel(namespace, group, topic, { epochSeconds, epoch } = {}) {
  if (!isValidSegment(namespace)) {
    throw new GroupcastError(
      'events.namespace',
      'segment',
      `invalid events.namespace: ${quote(namespace)} is not a namespace name: ${NAMESPACE_RULE}`,
    );
  }
  const segment = groupSegment(group);
  if (!epochsOn(epochSeconds) && epoch === undefined) {
    checkTopic(topic, '*');
    return `/${namespace}/${segment}/${topic}`;
  }
  checkTopic(topic, '*', EPOCH_TOPIC_MAX_SEGMENTS);
  const n = epoch === undefined ? epochAt(Date.now() / 1000, epochSeconds) : epoch;
  if (epochsOn(epochSeconds)) checkEpochSeconds(epochSeconds);
  return `/${namespace}/${segment}/${epochSegment(n)}/${topic}`;
}

function utf8Length(s) {
  return new TextEncoder().encode(s).length;
}

/**
 * The IoT Core topic of a group's topic: `{prefix}/{groupSegment(group)}/{topic}`. `prefix` is the
 * deployment's topic prefix (non-empty levels, no `+ # * ?`, no leading `$`); `topic` is 1–3 valid
 * segments, the last of which may be MQTT's `#` to subscribe to every topic below. The whole topic
 * is at most 256 UTF-8 bytes with at most 7 `/`, IoT Core's limits. Throws a GroupcastError.
 */
export function iotTopic(prefix, group, topic) {
  const badPrefix =
    typeof prefix !== 'string' ||
    prefix.length === 0 ||
    prefix.startsWith('$') ||
    prefix.split('/').some((l) => l.length === 0) ||
    /[+#*?\0]/.test(prefix);
  if (badPrefix) {
    throw new GroupcastError('iot.topic_prefix', 'prefix', `invalid iot.topic_prefix: ${quote(prefix)}: ${PREFIX_RULE}`);
  }
  const segment = groupSegment(group);
  checkTopic(topic, '#');
  const full = `${prefix}/${segment}/${topic}`;
  const bytes = utf8Length(full);
  if (bytes > IOT_TOPIC_MAX_BYTES) {
    throw new GroupcastError(
      'topic',
      'iot-bytes',
      `invalid topic: IoT topic ${quote(full)} is ${bytes} bytes; IoT Core allows at most ${IOT_TOPIC_MAX_BYTES} (limits::IOT_TOPIC_MAX_BYTES)`,
    );
  }
  const slashes = full.split('/').length - 1;
  if (slashes > IOT_TOPIC_MAX_SLASHES) {
    throw new GroupcastError(
      'topic',
      'iot-slashes',
      `invalid topic: IoT topic ${quote(full)} has ${slashes} '/'; IoT Core allows at most ${IOT_TOPIC_MAX_SLASHES} (limits::IOT_TOPIC_MAX_SLASHES)`,
    );
  }
  return full;
}

// The client id rule is templates/iot/group-policy.json.tera's: `iot:Connect` on
// `client/${cognito-identity.amazonaws.com:sub}` and `client/${cognito-identity.amazonaws.com:sub}-*`
// (https://docs.aws.amazon.com/iot/latest/developerguide/cog-iot-policies.html); a second connection with a
// client id in use disconnects the first
// (https://docs.aws.amazon.com/iot-device-defender/latest/devguide/audit-chk-conflicting-client-ids.html).
// The identity id check is groupcast_auth::grant::validate_identity_id's.
/**
 * The MQTT client id a user's IoT connection must use: their Cognito identity id, or the identity
 * id + `-` + a suffix so one user can hold several connections (tabs, devices) at once: the group
 * policy allows `client/${cognito-identity.amazonaws.com:sub}` and `…:sub}-*`, and a second
 * connection with an id already in use disconnects the first. `suffix` is 1+ characters of
 * [A-Za-z0-9_-] (e.g. `crypto.randomUUID()`), the whole id at most 128 bytes. Throws a GroupcastError.
 */
export function iotClientId(identityId, suffix) {
  const [region, id, ...more] = typeof identityId === 'string' ? identityId.split(':') : [];
  const okIdentity =
    typeof identityId === 'string' &&
    identityId.length <= 55 &&
    more.length === 0 &&
    /^[a-z0-9-]+$/.test(region ?? '') &&
    /^[0-9A-Fa-f-]+$/.test(id ?? '');
  if (!okIdentity) {
    throw new GroupcastError('identityId', 'identity-id', `identityId ${quote(identityId ?? null)}: ${IDENTITY_RULE}`);
  }
  if (suffix === undefined || suffix === null) return identityId;
  const max = IOT_CLIENT_ID_MAX_BYTES - identityId.length - 1;
  if (typeof suffix !== 'string' || !/^[A-Za-z0-9_-]+$/.test(suffix) || suffix.length > max) {
    throw new GroupcastError(
      'suffix',
      'client-id-suffix',
      `client id suffix ${quote(suffix)}: must be 1-${max} characters of [A-Za-z0-9_-], so that the client id stays within IoT Core's ${IOT_CLIENT_ID_MAX_BYTES} bytes`,
    );
  }
  return `${identityId}-${suffix}`;
}

// IoT custom authorizer mode (`iot.auth = "custom-authorizer"`): no identity pool, no SigV4. A browser
// opens MQTT over WebSocket to `wss://{endpoint}/mqtt` naming the authorizer and carrying the token in
// query parameters, since a browser WebSocket cannot set headers: `x-amz-customauthorizer-name` and the
// authorizer's token key name (https://docs.aws.amazon.com/iot/latest/developerguide/custom-auth.html,
// "MQTT over WebSockets"). groupcast's authorizer is created unsigned (signingDisabled), so no
// `x-amz-customauthorizer-signature`. The iot-authorizer reads the same key
// (GROUPCAST_IOT_TOKEN_KEY, default `groupcast-token`; its rule: [a-z0-9-]+).

/** The token key name groupcast's provisioner gives the custom authorizer. */
export const IOT_TOKEN_KEY_NAME = 'groupcast-token';
// CreateAuthorizer `authorizerName`: 1-128 of [\w=,@-]
// (https://docs.aws.amazon.com/iot/latest/apireference/API_CreateAuthorizer.html).
const AUTHORIZER_NAME = /^[A-Za-z0-9_=,@-]{1,128}$/;
const HOST = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]{1,5})?$/;

/**
 * The WebSocket URL for MQTT over WebSocket through groupcast's IoT custom authorizer:
 * `wss://{endpoint}/mqtt?x-amz-customauthorizer-name={authorizerName}&{tokenKeyName}={token}`, every
 * value percent-encoded. `endpoint` is the outputs' `iot.dataEndpoint` (a host name, `wss://` allowed),
 * `authorizerName` the outputs' `iot.customAuthorizer`, `token` the user's ID or access token (JWT).
 * Throws a GroupcastError naming `endpoint`, `authorizerName`, `token` or `tokenKeyName`.
 */
export function iotCustomAuthUrl({ endpoint, authorizerName, token, tokenKeyName = IOT_TOKEN_KEY_NAME } = {}) {
  const host = typeof endpoint === 'string' ? endpoint.replace(/^wss:\/\//, '').replace(/\/(mqtt)?$/, '') : endpoint;
  if (typeof host !== 'string' || !HOST.test(host)) {
    throw new GroupcastError('endpoint', 'endpoint', `endpoint ${quote(endpoint ?? null)}: must be the IoT data endpoint's host name (iot.dataEndpoint), e.g. abc123-ats.iot.us-east-1.amazonaws.com`);
  }
  if (typeof authorizerName !== 'string' || !AUTHORIZER_NAME.test(authorizerName)) {
    throw new GroupcastError('authorizerName', 'authorizer-name', `authorizerName ${quote(authorizerName ?? null)}: must be 1-128 characters of [A-Za-z0-9_=,@-] (iot.customAuthorizer in the outputs)`);
  }
  if (typeof tokenKeyName !== 'string' || !/^[a-z0-9-]+$/.test(tokenKeyName)) {
    throw new GroupcastError('tokenKeyName', 'token-key-name', `tokenKeyName ${quote(tokenKeyName ?? null)}: must be a lowercase header name ([a-z0-9-]+), the authorizer's token key name`);
  }
  const bare = typeof token === 'string' ? token.trim().replace(/^Bearer\s+/, '') : '';
  if (!bare || /\s/.test(bare) || bare.split('.').length !== 3) {
    throw new GroupcastError('token', 'token', 'token: must be a JWT (header.payload.signature), the user\'s ID or access token');
  }
  const q = (s) => encodeURIComponent(s);
  return `wss://${host}/mqtt?x-amz-customauthorizer-name=${q(authorizerName)}&${q(tokenKeyName)}=${q(bare)}`;
}

// Time-sliced Events channels ("epochs", issue 14): the JavaScript copy of groupcast::epoch
// (functions/groupcast/src/epoch.rs), tested against the same table (tests/fixtures/epoch-segments.json).
// AppSync Events cannot close a subscription from the server, so a namespace with `epoch_seconds = P`
// puts the epoch N = floor(unix seconds / P) in every channel, `/{namespace}/{group}/t{N}/{topic}`, and its
// onSubscribe admits only epochs near the server's clock: a subscriber re-subscribes (and is re-checked
// against its groups) every period. `keepSubscribed` does that rotation for a browser.

/** The shortest epoch in seconds (groupcast::limits::EPOCH_SECONDS_MIN). */
export const EPOCH_SECONDS_MIN = 2;
/** The longest epoch in seconds, a day (groupcast::limits::EPOCH_SECONDS_MAX). */
export const EPOCH_SECONDS_MAX = 86400;
/** Digits an epoch number may have in a segment (groupcast::epoch::MAX_DIGITS): exact in a JS number. */
export const EPOCH_MAX_DIGITS = 15;
/** Segments a topic may have in a time-sliced namespace: the epoch segment takes one (limits::EPOCH_TOPIC_MAX_SEGMENTS). */
export const EPOCH_TOPIC_MAX_SEGMENTS = TOPIC_MAX_SEGMENTS - 1;
const EPOCH_SEGMENT = /^t(0|[1-9][0-9]{0,14})$/;

// groupcast::epoch::check_period, with Rust's text.
function checkEpochSeconds(epochSeconds) {
  if (!Number.isInteger(epochSeconds) || epochSeconds < EPOCH_SECONDS_MIN || epochSeconds > EPOCH_SECONDS_MAX) {
    throw new GroupcastError(
      'epochSeconds',
      'epoch-seconds',
      `epoch_seconds is ${quote(epochSeconds ?? null)}: an epoch lasts ${EPOCH_SECONDS_MIN}-${EPOCH_SECONDS_MAX} seconds (limits::EPOCH_SECONDS_MIN/MAX); subscribers re-subscribe once per epoch, so below 60 costs many re-subscriptions`,
    );
  }
}

function checkTime(field, t) {
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) {
    throw new GroupcastError(field, 'time', `${field} ${quote(t ?? null)}: must be a finite, non-negative number`);
  }
}

/** The epoch `unixSeconds` falls in for a period of `epochSeconds`: floor(unixSeconds / epochSeconds) (groupcast::epoch::epoch_at). */
export function epochAt(unixSeconds, epochSeconds) {
  checkEpochSeconds(epochSeconds);
  checkTime('unixSeconds', unixSeconds);
  return Math.floor(Math.floor(unixSeconds) / epochSeconds);
}

/** The channel segment of epoch `n`: `t{n}` (groupcast::epoch::segment). */
export function epochSegment(n) {
  if (!Number.isSafeInteger(n) || n < 0 || String(n).length > EPOCH_MAX_DIGITS) {
    throw new GroupcastError('epoch', 'epoch', `epoch ${quote(n ?? null)}: must be a whole number 0-${'9'.repeat(EPOCH_MAX_DIGITS)}`);
  }
  return `t${n}`;
}

/** The epoch a channel segment names, or null when it is no epoch segment: `t` + decimal, no leading zeros, at most 15 digits (groupcast::epoch::parse_segment). */
export function parseEpochSegment(s) {
  if (typeof s !== 'string') return null;
  const m = EPOCH_SEGMENT.exec(s);
  return m ? Number(m[1]) : null;
}

// groupcast::epoch::grace, in milliseconds: half the period, at most 30 s.
function graceMillis(epochSeconds) {
  return Math.min(epochSeconds * 500, 30000);
}

/**
 * The epochs a subscriber holds at `unixMillis`: the current one and the next, and the previous one during
 * the first half of the current one (at most 30 s), for a publisher whose clock is slightly behind.
 * Ascending (groupcast::epoch::window).
 */
export function epochWindow(unixMillis, epochSeconds) {
  checkEpochSeconds(epochSeconds);
  checkTime('unixMillis', unixMillis);
  const periodMs = epochSeconds * 1000;
  const t = Math.floor(unixMillis);
  const n = Math.floor(t / periodMs);
  const out = [];
  if (n > 0 && t % periodMs < graceMillis(epochSeconds)) out.push(n - 1);
  out.push(n, n + 1);
  return out;
}

/** When {@link epochWindow} next changes after `unixMillis`: the end of the grace, or the next epoch's start (groupcast::epoch::next_change_millis). */
export function epochNextChange(unixMillis, epochSeconds) {
  checkEpochSeconds(epochSeconds);
  checkTime('unixMillis', unixMillis);
  const periodMs = epochSeconds * 1000;
  const t = Math.floor(unixMillis);
  const start = t - (t % periodMs);
  const graceEnd = start + graceMillis(epochSeconds);
  return t < graceEnd ? graceEnd : start + periodMs;
}

// Whether an `{ epochSeconds }` option turns epochs on: absent, null and 0 mean off, as
// GROUPCAST_EVENTS_EPOCH_SECONDS=0 does.
function epochsOn(epochSeconds) {
  return epochSeconds !== undefined && epochSeconds !== null && epochSeconds !== 0;
}

/**
 * Keeps one logical channel subscribed across epochs. Calls `subscribe(channel)` (which returns an
 * unsubscribe function, or a promise of one, and throws or rejects when the service refuses) for every
 * epoch of {@link epochWindow}, and at each of the window's changes ({@link epochNextChange}) subscribes
 * to the new epochs first, waits until they are in place, and only then unsubscribes the dropped ones, so
 * nothing published in between is missed. A message is published to exactly one epoch, so none arrives
 * twice. Without `epochSeconds` (absent, null or 0) it subscribes to the plain channel once.
 *
 * A refused subscription (e.g. the user was removed from the group, or this clock is off by more than an
 * epoch) ends the whole rotation, every channel unsubscribed, and is reported to `onError(error, channel)`
 * (default: console.error): the removed member stops receiving, as groupcast intends.
 *
 * `now`, `setTimer` and `clearTimer` default to Date.now, setTimeout and clearTimeout (a test passes a
 * fake clock). Returns `stop()`, which unsubscribes everything and resolves when done.
 * Throws a GroupcastError (before subscribing anything) for a bad namespace, group, topic or period.
 */
export function keepSubscribed({
  namespace,
  group,
  topic,
  epochSeconds,
  subscribe,
  now = Date.now,
  setTimer = setTimeout,
  clearTimer = clearTimeout,
  onError,
} = {}) {
  if (typeof subscribe !== 'function') {
    throw new GroupcastError('subscribe', 'function', 'subscribe must be a function(channel) returning an unsubscribe function or a promise of one');
  }
  const on = epochsOn(epochSeconds);
  // Every input checked before anything is subscribed.
  if (on) eventsChannel(namespace, group, topic, { epochSeconds, epoch: 0 });
  else eventsChannel(namespace, group, topic);
  const channelOf = (n) => (on ? eventsChannel(namespace, group, topic, { epochSeconds, epoch: n }) : eventsChannel(namespace, group, topic));

  const held = new Map(); // epoch (or 'plain') -> { channel, unsubscribe: Promise<function> }
  let stopped = false;
  let timer = null;

  const release = (key) => {
    const h = held.get(key);
    held.delete(key);
    return h.unsubscribe.then((u) => u(), () => {}).then(() => {}, () => {});
  };
  const stop = () => {
    stopped = true;
    if (timer !== null) clearTimer(timer);
    timer = null;
    return Promise.all([...held.keys()].map(release)).then(() => {});
  };
  const fail = (error, channel) => {
    if (stopped) return;
    stop();
    if (onError) onError(error, channel);
    else console.error(`groupcast keepSubscribed: ${channel} was refused, the subscription ended:`, error);
  };
  // Subscribes to `key`'s channel; resolves to whether the service took it.
  const open = (key) => {
    const channel = channelOf(key);
    let p;
    try {
      p = Promise.resolve(subscribe(channel));
    } catch (e) {
      p = Promise.reject(e);
    }
    const unsubscribe = p.then((u) => {
      if (typeof u !== 'function') {
        throw new GroupcastError('subscribe', 'function', `subscribe(${quote(channel)}) gave no unsubscribe function`);
      }
      return u;
    });
    held.set(key, { channel, unsubscribe });
    return unsubscribe.then(() => true, (error) => {
      fail(error, channel);
      return false;
    });
  };

  const tick = async () => {
    timer = null;
    if (stopped) return;
    const t = now();
    const want = epochWindow(t, epochSeconds);
    const ok = await Promise.all(want.filter((n) => !held.has(n)).map(open));
    // New epochs in place before any old one goes.
    if (stopped || ok.includes(false)) return;
    await Promise.all([...held.keys()].filter((n) => !want.includes(n)).map(release));
    if (stopped) return;
    timer = setTimer(tick, Math.max(0, epochNextChange(t, epochSeconds) - now()));
  };

  if (on) tick();
  else open('plain');
  return stop;
}
