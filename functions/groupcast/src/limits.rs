//! Every AWS limit groupcast enforces, in one place.
//!
//! AWS writes sizes as "KB" without saying whether it means 1,000 or 1,024 bytes. AppSync drops an
//! oversize event *silently*, so where the unit is ambiguous we take the smaller reading (decimal):
//! anything groupcast accepts is then within the limit under either reading, and anything larger
//! is a [`crate::Error::Invalid`] before a byte is sent.
//!
//! Sources: the AppSync quotas page, the Events guide and the IoT Core quotas page; each constant
//! names its own. `../shared/reference/aws-protocols.md` §1, §8, §9 and §10 quote them.

/// Events per AppSync Events HTTP publish request (not adjustable). *AppSync quotas.*
pub const EVENTS_PER_PUBLISH: usize = 5;
/// Bytes in one AppSync event (the event's JSON text). "240 KB", read as decimal. *Events concepts.*
pub const EVENT_MAX_BYTES: usize = 240_000;
/// Bytes in one AppSync Events HTTP publish request body. "1.2 MB", read as decimal. *AppSync quotas.*
pub const EVENTS_REQUEST_MAX_BYTES: usize = 1_200_000;
/// Publish messages per second on one AppSync Events WebSocket connection. *AppSync quotas.*
pub const EVENTS_WS_PUBLISHES_PER_SECOND: usize = 25;

/// Characters in one channel segment (and in a namespace name). *Events guide, channel paths.*
pub const CHANNEL_SEGMENT_MAX_CHARS: usize = 50;
/// Segments in a channel path, the namespace included. *Events guide, channel paths.*
pub const CHANNEL_MAX_SEGMENTS: usize = 5;
/// The shortest epoch of a time-sliced namespace (`[[events.namespaces]] epoch_seconds`), in seconds.
/// groupcast's own choice, not AWS's: subscribers re-subscribe once per epoch, and clocks that
/// disagree by more than an epoch refuse each other's channels (crate::epoch).
pub const EPOCH_SECONDS_MIN: u64 = 2;
/// The longest epoch, in seconds: a day, the longest an Events connection lives anyway
/// (*Events guide, WebSocket protocol*: connections last up to 24 hours).
pub const EPOCH_SECONDS_MAX: u64 = 86_400;
/// Segments a groupcast topic may have: a channel is `/{namespace}/{group}/{topic…}`, so the topic
/// gets what the namespace and the group segment leave of [`CHANNEL_MAX_SEGMENTS`].
pub const TOPIC_MAX_SEGMENTS: usize = CHANNEL_MAX_SEGMENTS - 2;
/// Segments a topic may have in a time-sliced namespace: the epoch segment takes one more.
pub const EPOCH_TOPIC_MAX_SEGMENTS: usize = TOPIC_MAX_SEGMENTS - 1;

/// Bytes in one GraphQL subscription payload (the mutation's returned selection). *AppSync quotas.*
pub const GRAPHQL_SUBSCRIPTION_PAYLOAD_MAX_BYTES: usize = 240_000;
/// Filters (OR'ed entries) in one `filterGroup`. *GraphQL enhanced filtering.*
pub const FILTER_GROUP_MAX_FILTERS: usize = 10;
/// Conditions (unique field names, AND'ed) in one filter. *GraphQL enhanced filtering.*
pub const FILTER_MAX_CONDITIONS: usize = 5;
/// Values in one `containsAny` condition. *GraphQL enhanced filtering.*
pub const FILTER_CONTAINS_ANY_MAX_VALUES: usize = 20;
/// Characters in one string value of a filter. *GraphQL enhanced filtering.*
pub const FILTER_VALUE_MAX_CHARS: usize = 256;
/// Values in one `in` or `notIn` condition. *GraphQL enhanced filtering.*
pub const FILTER_IN_MAX_VALUES: usize = 5;
/// Levels of a nested `fieldName` (`a.b.c` is 3). *GraphQL enhanced filtering.*
pub const FILTER_FIELD_MAX_LEVELS: usize = 5;
/// Unique `$extensions.invalidateSubscriptions` calls in one request. *AppSync `$extensions`.*
pub const INVALIDATE_SUBSCRIPTIONS_MAX_CALLS: usize = 5;
/// Groups one GraphQL subscription can be filtered on: 10 entries of 20 `containsAny` values.
pub const SUBSCRIPTION_MAX_GROUPS: usize =
    FILTER_GROUP_MAX_FILTERS * FILTER_CONTAINS_ANY_MAX_VALUES;

/// Bytes in one IoT Core MQTT payload. "128 KB", read as decimal. *IoT Core quotas.*
pub const IOT_PAYLOAD_MAX_BYTES: usize = 128_000;
/// Bytes in one IoT topic name, UTF-8. *IoT Core quotas.*
pub const IOT_TOPIC_MAX_BYTES: usize = 256;
/// Forward slashes in one IoT topic name or filter. *IoT Core quotas.*
pub const IOT_TOPIC_MAX_SLASHES: usize = 7;
/// Characters in an IoT policy document, whitespace excluded. *IoT Core quotas.*
pub const IOT_POLICY_MAX_CHARS: usize = 2048;
/// Versions one IoT policy can hold. *IoT Core quotas.*
pub const IOT_POLICY_MAX_VERSIONS: usize = 5;
/// IoT policies attached to one Cognito identity or certificate. *IoT Core quotas.*
pub const IOT_POLICIES_PER_TARGET: usize = 10;

/// Characters in a Cognito group name. *Cognito `CreateGroup` API reference.*
pub const COGNITO_GROUP_NAME_MAX_CHARS: usize = 128;
/// Bytes in a Lambda authorizer's `handlerContext`. *Events guide, Lambda authorization.*
pub const HANDLER_CONTEXT_MAX_BYTES: usize = 5_000_000;
/// Characters of APPSYNC_JS code in one channel namespace. *AppSync quotas.*
pub const NAMESPACE_CODE_MAX_CHARS: usize = 32_768;
/// Seconds a Lambda authorizer result may be cached. *AppSync API reference.*
pub const AUTHORIZER_TTL_MAX_SECONDS: u64 = 3_600;
