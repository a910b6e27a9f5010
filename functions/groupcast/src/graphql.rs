//! The AppSync GraphQL pubsub transport: the `publish` mutation and its response.
//!
//! One mutation per message carries all its groups; the subscription's enhanced filter
//! (`groups containsAny <caller's groups>`) does the per-group fan-out, so the mutation's result
//! stands for every (message, group). The mutation selects every field of the returned type,
//! because subscribers receive only the fields the mutation selected.

use serde::Deserialize;

use crate::error::{Error, GraphqlError};
use crate::limits::GRAPHQL_SUBSCRIPTION_PAYLOAD_MAX_BYTES;
use crate::message::Message;

/// The mutation groupcast sends. Its selection set is every field of the returned type.
pub const PUBLISH_MUTATION: &str = "mutation Publish($topic: String!, $data: AWSJSON!, $groups: [String!]!, $uuid: String!) { publish(topic: $topic, data: $data, groups: $groups, uuid: $uuid) { topic data groups uuid } }";

/// The fields subscribers receive, as the mutation returns them (`data` is AWSJSON: JSON text).
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct Published {
    /// The topic.
    pub topic: String,
    /// The payload as JSON text.
    pub data: String,
    /// The groups.
    pub groups: Vec<String>,
    /// The message id.
    pub uuid: String,
}

impl Published {
    /// What the mutation for `msg` returns and subscribers receive.
    pub fn of(msg: &Message) -> Self {
        Published {
            topic: msg.topic().to_owned(),
            data: msg.data().to_string(),
            groups: msg.groups().to_vec(),
            uuid: msg.id().to_string(),
        }
    }
}

/// The headers of an IAM-signed GraphQL request (all of them are signed).
pub(crate) fn iam_headers() -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert("accept", http::HeaderValue::from_static("application/json"));
    headers.insert(
        "content-type",
        http::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    headers
}

/// The request body `{"query", "operationName", "variables"}` for `msg`.
pub(crate) fn body(msg: &Message) -> Vec<u8> {
    let p = Published::of(msg);
    serde_json::to_vec(&serde_json::json!({
        "query": PUBLISH_MUTATION,
        "operationName": "Publish",
        "variables": {"topic": p.topic, "data": p.data, "groups": p.groups, "uuid": p.uuid},
    }))
    .expect("JSON serializes")
}

/// The mutation `Publisher::revoke` sends: it closes the `subscribe` subscriptions of `userId`
/// that include any of `groups` (`vtl/Mutation.revoke.*.vtl.tera`).
pub const REVOKE_MUTATION: &str = "mutation Revoke($userId: String!, $groups: [String!]!) { revoke(userId: $userId, groups: $groups) { userId groups } }";

/// The request body of the `revoke` mutation.
pub(crate) fn revoke_body(user: &str, groups: &[String]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "query": REVOKE_MUTATION,
        "operationName": "Revoke",
        "variables": {"userId": user, "groups": groups},
    }))
    .expect("JSON serializes")
}

/// What `revoke` returns: the user and groups it revoked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Revocation {
    user_id: String,
    groups: Vec<String>,
}

#[derive(Deserialize)]
struct RevokeResponse {
    #[serde(default)]
    data: Option<RevokeData>,
    #[serde(default)]
    errors: Option<Vec<GraphqlError>>,
}

#[derive(Deserialize)]
struct RevokeData {
    #[serde(default)]
    revoke: Option<Revocation>,
}

/// Checks a `revoke` response: it must echo the user and groups asked for, or the service did
/// something other than what was asked and the revocation is not confirmed.
///
/// # Errors
/// [`Error::Graphql`] when the response has `errors`; [`Error::Protocol`] when it is not a
/// GraphQL response, `revoke` is null or it names another user or other groups.
pub(crate) fn parse_revoke_response(
    body: &[u8],
    user: &str,
    groups: &[String],
) -> Result<(), Error> {
    let r: RevokeResponse = serde_json::from_slice(body).map_err(|e| {
        Error::Protocol(format!(
            "GraphQL response: {e}: {}",
            crate::retry::snippet(&String::from_utf8_lossy(body))
        ))
    })?;
    if let Some(errors) = r.errors.filter(|e| !e.is_empty()) {
        return Err(Error::Graphql(errors));
    }
    match r.data.and_then(|d| d.revoke) {
        Some(v) if v.user_id == user && v.groups == groups => Ok(()),
        Some(v) => Err(Error::Protocol(format!(
            "GraphQL revoke answered for user {:?} and groups {:?}, not the ones asked for",
            v.user_id, v.groups
        ))),
        None => Err(Error::Protocol(
            "GraphQL response has neither errors nor data.revoke".into(),
        )),
    }
}

/// Checks the subscription payload of `msg` against the 240 KB limit.
pub(crate) fn check(field: &str, msg: &Message) -> Result<(), Error> {
    let size = serde_json::to_vec(&Published::of(msg))
        .expect("JSON serializes")
        .len();
    if size > GRAPHQL_SUBSCRIPTION_PAYLOAD_MAX_BYTES {
        return Err(Error::invalid(
            field,
            format!(
                "as a GraphQL subscription payload ({{topic,data,groups,uuid}}) it is {size} bytes; \
                 AppSync allows at most {GRAPHQL_SUBSCRIPTION_PAYLOAD_MAX_BYTES} \
                 (limits::GRAPHQL_SUBSCRIPTION_PAYLOAD_MAX_BYTES)"
            ),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    data: Option<ResponseData>,
    #[serde(default)]
    errors: Option<Vec<GraphqlError>>,
}

#[derive(Deserialize)]
struct ResponseData {
    #[serde(default)]
    publish: Option<Published>,
}

/// The mutation's result: the returned `uuid` as the identifier.
///
/// # Errors
/// [`Error::Graphql`] when the response has `errors`; [`Error::Protocol`] when it is not a
/// GraphQL response or `publish` is null.
pub(crate) fn parse_response(body: &[u8]) -> Result<Option<String>, Error> {
    let r: Response = serde_json::from_slice(body).map_err(|e| {
        Error::Protocol(format!(
            "GraphQL response: {e}: {}",
            crate::retry::snippet(&String::from_utf8_lossy(body))
        ))
    })?;
    if let Some(errors) = r.errors.filter(|e| !e.is_empty()) {
        return Err(Error::Graphql(errors));
    }
    match r.data.and_then(|d| d.publish) {
        Some(p) => Ok(Some(p.uuid)),
        None => Err(Error::Protocol(
            "GraphQL response has neither errors nor data.publish".into(),
        )),
    }
}

/// Parses a GraphQL error body returned with a non-2xx status, when it is one.
pub(crate) fn errors_in(body: &[u8]) -> Option<Vec<GraphqlError>> {
    serde_json::from_slice::<Response>(body)
        .ok()?
        .errors
        .filter(|e| !e.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_carries_all_groups_and_the_data_as_json_text() {
        let m = Message::builder("t/a")
            .data(serde_json::json!({"k": [1, "x"]}))
            .groups(["a", "B_c"])
            .build()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body(&m)).unwrap();
        assert_eq!(v["query"], PUBLISH_MUTATION);
        assert_eq!(
            v["variables"],
            serde_json::json!({
                "topic": "t/a", "data": "{\"k\":[1,\"x\"]}", "groups": ["a", "B_c"], "uuid": m.id().to_string()
            })
        );
    }

    #[test]
    fn parses_success_and_typed_errors() {
        let ok = br#"{"data":{"publish":{"topic":"t","data":"{}","groups":["a"],"uuid":"u1"}}}"#;
        assert_eq!(parse_response(ok).unwrap().as_deref(), Some("u1"));
        let err = br#"{"data":{"publish":null},"errors":[{"errorType":"Unauthorized","message":"Not Authorized"}]}"#;
        match parse_response(err).unwrap_err() {
            Error::Graphql(e) => assert_eq!(e[0].error_type.as_deref(), Some("Unauthorized")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_response(br#"{"data":{"publish":null}}"#),
            Err(Error::Protocol(_))
        ));
    }
}
