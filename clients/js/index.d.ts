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
  | 'token'
  | 'epoch-seconds'
  | 'epoch'
  | 'time'
  | 'function';

/** The error every function here throws. */
export class GroupcastError extends Error {
  readonly name: 'GroupcastError';
  /** The argument at fault: `group`, `topic`, `events.namespace`, `iot.topic_prefix`, `identityId`, `suffix`, `endpoint`, `authorizerName`, `tokenKeyName`, `token`, `epochSeconds`, `epoch`, `unixSeconds`, `unixMillis` or `subscribe`. */
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

/** Epoch options of {@link eventsChannel}. */
export interface EpochOptions {
  /** The namespace's epoch (outputs `events.namespaces[].epochSeconds`): 2–86400; absent, null or 0 = no epochs. */
  epochSeconds?: number | null;
  /** The epoch to name (default: the current one of this machine's clock). */
  epoch?: number;
}

/**
 * The AppSync Events channel `/{namespace}/{groupSegment(group)}/{topic}`. `topic` is 1–3 segments;
 * the last may be `*` to subscribe to every topic below it. With `{ epochSeconds }` (a time-sliced
 * namespace): `/{namespace}/{segment}/t{epoch}/{topic}`, `topic` at most 2 segments.
 * @throws {GroupcastError} naming `events.namespace`, `group`, `topic`, `epochSeconds` or `epoch`.
 */
export function eventsChannel(namespace: string, group: string, topic: string, options?: EpochOptions): string;

/** The shortest epoch in seconds: 2. */
export const EPOCH_SECONDS_MIN: 2;
/** The longest epoch in seconds: 86400. */
export const EPOCH_SECONDS_MAX: 86400;
/** Digits an epoch number may have in a segment: 15. */
export const EPOCH_MAX_DIGITS: 15;
/** Segments a topic may have in a time-sliced namespace: 2. */
export const EPOCH_TOPIC_MAX_SEGMENTS: 2;

/** floor(unixSeconds / epochSeconds) (groupcast::epoch::epoch_at). @throws {GroupcastError} `epochSeconds`, `unixSeconds`. */
export function epochAt(unixSeconds: number, epochSeconds: number): number;
/** `t{n}` (groupcast::epoch::segment). @throws {GroupcastError} `epoch`. */
export function epochSegment(n: number): string;
/** The epoch a segment names, or null when it is no epoch segment (groupcast::epoch::parse_segment). */
export function parseEpochSegment(s: string): number | null;
/** The epochs a subscriber holds at `unixMillis`, ascending (groupcast::epoch::window). */
export function epochWindow(unixMillis: number, epochSeconds: number): number[];
/** When {@link epochWindow} next changes after `unixMillis` (groupcast::epoch::next_change_millis). */
export function epochNextChange(unixMillis: number, epochSeconds: number): number;

/** What {@link keepSubscribed} needs. */
export interface KeepSubscribedOptions<T = unknown> {
  namespace: string;
  group: string;
  topic: string;
  /** The namespace's epoch; absent, null or 0 = one plain channel. */
  epochSeconds?: number | null;
  /** Subscribes to one channel: an unsubscribe function, or a promise of one; throws or rejects when refused. */
  subscribe: (channel: string) => (() => T) | Promise<() => T>;
  /** Milliseconds since the epoch (default Date.now). */
  now?: () => number;
  /** Default setTimeout. */
  setTimer?: (fn: () => void, ms: number) => unknown;
  /** Default clearTimeout. */
  clearTimer?: (handle: any) => void;
  /** A refusal: the rotation has ended, every channel unsubscribed (default: console.error). */
  onError?: (error: unknown, channel: string) => void;
}

/**
 * Keeps one logical channel subscribed across epochs: every epoch of the window, new ones subscribed
 * before dropped ones are unsubscribed. Returns `stop()`, which unsubscribes everything.
 * @throws {GroupcastError} for a bad namespace, group, topic, period or `subscribe`.
 */
export function keepSubscribed<T = unknown>(options: KeepSubscribedOptions<T>): () => Promise<void>;

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
