// Types of @groupcast/channels (index.js): groupcast's group → channel rule for web frontends.

/** The marker every encoded segment starts with (`x--`); unencoded segments never hold `--`. */
export const ENCODED_PREFIX: 'x--';
/** Characters in one AppSync Events channel segment (and one namespace name): 50. */
export const SEGMENT_MAX_CHARS: 50;
/** Segments in an AppSync Events channel path, the namespace included: 5. */
export const CHANNEL_MAX_SEGMENTS: 5;
/** Segments a groupcast topic may have: 3. */
export const TOPIC_MAX_SEGMENTS: 3;
/** Bytes in one IoT topic name or filter, UTF-8: 256. */
export const IOT_TOPIC_MAX_BYTES: 256;
/** Forward slashes in one IoT topic name or filter: 7. */
export const IOT_TOPIC_MAX_SLASHES: 7;
/** Bytes in one MQTT client id on IoT Core: 128. */
export const IOT_CLIENT_ID_MAX_BYTES: 128;

/** Which rule an argument broke. */
export type GroupcastRule =
  | 'not-a-string'
  | 'empty'
  | 'too-long'
  | 'lone-surrogate'
  | 'segment'
  | 'segments'
  | 'prefix'
  | 'iot-bytes'
  | 'iot-slashes'
  | 'identity-id'
  | 'client-id-suffix'
  | 'endpoint'
  | 'authorizer-name'
  | 'token-key-name'
  | 'token';

/** The error every function here throws. */
export class GroupcastError extends Error {
  readonly name: 'GroupcastError';
  /** The argument at fault: `group`, `topic`, `events.namespace`, `iot.topic_prefix`, `identityId`, `suffix`, `endpoint`, `authorizerName`, `tokenKeyName` or `token`. */
  readonly field: string;
  /** The rule it broke. */
  readonly rule: GroupcastRule;
  constructor(field: string, rule: GroupcastRule, message: string);
}

/** Whether `s` is a valid AppSync Events channel segment: 1–50 of [A-Za-z0-9-], alphanumeric at both ends. */
export function isValidSegment(s: unknown): s is string;

/**
 * The channel segment and IoT topic level of a group (groupcast::group_segment).
 * `team-a` → `team-a`, `Team_B` → `x--Team-5fB`, `é` → `x---c3-a9`.
 * @throws {GroupcastError} empty name, encoding over 50 characters, unpaired surrogate, not a string.
 */
export function groupSegment(group: string): string;

/** The group a segment stands for, or null when no group maps to it (groupcast::decode_segment). */
export function decodeSegment(segment: string): string | null;

/**
 * The AppSync Events channel `/{namespace}/{groupSegment(group)}/{topic}`. `topic` is 1–3 segments;
 * the last may be `*` to subscribe to every topic below it.
 * @throws {GroupcastError} naming `events.namespace`, `group` or `topic`.
 */
export function eventsChannel(namespace: string, group: string, topic: string): string;

/**
 * The IoT Core topic `{prefix}/{groupSegment(group)}/{topic}`. `topic` is 1–3 segments; the last may
 * be `#` to subscribe to every topic below it. At most 256 UTF-8 bytes and 7 `/`.
 * @throws {GroupcastError} naming `iot.topic_prefix`, `group` or `topic`.
 */
export function iotTopic(prefix: string, group: string, topic: string): string;

/**
 * The MQTT client id the groupcast IoT policy lets this Cognito identity connect with: the identity
 * id, or `${identityId}-${suffix}` for one of several connections. `suffix`: [A-Za-z0-9_-]+.
 * @throws {GroupcastError} naming `identityId` or `suffix`.
 */
export function iotClientId(identityId: string, suffix?: string): string;

/** The token key name groupcast's provisioner gives the IoT custom authorizer: `groupcast-token`. */
export const IOT_TOKEN_KEY_NAME: 'groupcast-token';

/** What {@link iotCustomAuthUrl} needs. */
export interface IotCustomAuthUrlOptions {
  /** The IoT data endpoint host (outputs `iot.dataEndpoint`); a leading `wss://` is allowed. */
  endpoint: string;
  /** The custom authorizer's name (outputs `iot.customAuthorizer`). */
  authorizerName: string;
  /** The user's ID or access token (a JWT); a leading `Bearer ` is dropped. */
  token: string;
  /** The authorizer's token key name: [a-z0-9-]+, default `groupcast-token`. */
  tokenKeyName?: string;
}

/**
 * The WebSocket URL for MQTT over WebSocket through groupcast's IoT custom authorizer
 * (`iot.auth = "custom-authorizer"`):
 * `wss://{endpoint}/mqtt?x-amz-customauthorizer-name={authorizerName}&{tokenKeyName}={token}`.
 * @throws {GroupcastError} naming `endpoint`, `authorizerName`, `tokenKeyName` or `token`.
 */
export function iotCustomAuthUrl(options: IotCustomAuthUrlOptions): string;
