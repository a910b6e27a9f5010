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
function checkTopic(topic, wildcard) {
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new GroupcastError('topic', 'empty', `invalid topic: must not be empty: ${TOPIC_RULE}`);
  }
  const segments = topic.split('/');
  if (segments.length > TOPIC_MAX_SEGMENTS) {
    throw new GroupcastError('topic', 'segments', `invalid topic: ${quote(topic)} has ${segments.length} segments: ${TOPIC_RULE}`);
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
 */
export function eventsChannel(namespace, group, topic) {
  if (!isValidSegment(namespace)) {
    throw new GroupcastError(
      'events.namespace',
      'segment',
      `invalid events.namespace: ${quote(namespace)} is not a namespace name: ${NAMESPACE_RULE}`,
    );
  }
  const segment = groupSegment(group);
  checkTopic(topic, '*');
  return `/${namespace}/${segment}/${topic}`;
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
