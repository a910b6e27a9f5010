//! GraphQL pubsub: one mutation per message carrying all its groups, every returned field
//! selected, `errors` typed, and one report entry per (message, group).

use groupcast::graphql::PUBLISH_MUTATION;
use groupcast::{Authorizer, Outcome, PublishOptions, Publisher, Transport};
use serde_json::json;

use crate::server::{Reply, Server};
use crate::{creds, fast_retries, msg};

/// Echoes the mutation's variables back as `data.publish`, as AppSync's NONE resolver does.
fn echo(req: &crate::server::Captured) -> Reply {
    let v = &req.json()["variables"];
    Reply::ok(
        json!({"data": {"publish": {"topic": v["topic"], "data": v["data"], "groups": v["groups"], "uuid": v["uuid"]}}}),
    )
}

fn publisher(server: &Server, auth: Authorizer) -> Publisher {
    Publisher::builder()
        .graphql(format!("{}/graphql", server.base))
        .region("us-east-1")
        .authorizer(auth)
        .retry_policy(fast_retries())
        .build()
        .unwrap()
}

#[tokio::test]
async fn one_mutation_carries_all_groups_and_selects_every_field() {
    let server = Server::start(|req, _| echo(req)).await;
    let m = msg("chat/room-1", &["a", "Team_B", "c"], json!({"text": "hi"}));
    let report = publisher(&server, Authorizer::api_key("da2-gql"))
        .publish(&m)
        .await
        .unwrap();

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1, "one mutation per message");
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", "/graphql"));
    assert_eq!(r.header("x-api-key"), Some("da2-gql"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({
            "query": PUBLISH_MUTATION,
            "operationName": "Publish",
            "variables": {"topic": "chat/room-1", "data": "{\"text\":\"hi\"}", "groups": ["a", "Team_B", "c"], "uuid": m.id().to_string()}
        })
    );
    // Subscribers receive only what the mutation selects: all four fields of the returned type.
    assert!(
        PUBLISH_MUTATION.ends_with("{ topic data groups uuid } }"),
        "{PUBLISH_MUTATION}"
    );

    let groups: Vec<(&str, Transport)> = report
        .deliveries
        .iter()
        .map(|d| (d.group.as_str(), d.transport))
        .collect();
    assert_eq!(
        groups,
        [
            ("a", Transport::Graphql),
            ("Team_B", Transport::Graphql),
            ("c", Transport::Graphql)
        ]
    );
    for d in &report.deliveries {
        assert_eq!(
            d.outcome,
            Outcome::Delivered {
                identifier: Some(m.id().to_string())
            }
        );
    }
}

#[tokio::test]
async fn graphql_errors_fail_every_group_of_the_message_with_the_typed_error() {
    let server = Server::start(|_, _| {
        Reply::ok(json!({"data": {"publish": null}, "errors": [{"errorType": "Unauthorized", "message": "Not Authorized to access publish on type Mutation"}]}))
    })
    .await;
    let report = publisher(&server, Authorizer::api_key("k"))
        .publish(&msg("t", &["a", "b"], json!(1)))
        .await
        .unwrap();
    assert_eq!(report.deliveries.len(), 2);
    for d in &report.deliveries {
        assert_eq!(
            d.outcome,
            Outcome::Failed {
                error: "graphql: Unauthorized: Not Authorized to access publish on type Mutation"
                    .into(),
                retryable: false
            }
        );
    }
    assert_eq!(server.requests().len(), 1, "GraphQL errors are not retried");
}

#[tokio::test]
async fn a_400_with_errors_is_a_typed_graphql_error() {
    let server = Server::start(|_, _| {
        Reply::Json(
            400,
            r#"{"errors":[{"errorType":"ValidationError","message":"bad query"}]}"#.into(),
        )
    })
    .await;
    let report = publisher(&server, Authorizer::api_key("k"))
        .publish(&msg("t", &["a"], json!(1)))
        .await
        .unwrap();
    assert_eq!(
        report.deliveries[0].outcome,
        Outcome::Failed {
            error: "graphql: ValidationError: bad query".into(),
            retryable: false
        }
    );
}

#[tokio::test]
async fn iam_graphql_requests_are_signed_for_appsync() {
    let server = Server::start(|req, _| echo(req)).await;
    let report = publisher(&server, Authorizer::iam(creds(None)))
        .publish(&msg("t", &["a"], json!(1)))
        .await
        .unwrap();
    assert!(report.is_complete());
    let r = &server.requests()[0];
    let auth = r.header("authorization").unwrap();
    assert!(auth.contains("/us-east-1/appsync/aws4_request, SignedHeaders=accept;content-type;host;x-amz-date, Signature="), "{auth}");
    assert_eq!(r.header("x-amz-security-token"), None);
}

#[tokio::test]
async fn the_subscription_payload_limit_is_checked_before_sending() {
    let server = Server::start(|req, _| echo(req)).await;
    let p = publisher(&server, Authorizer::api_key("k"));
    // The payload is {"topic","data","groups","uuid"} with data as JSON text: find its overhead.
    let base = serde_json::to_vec(&groupcast::graphql::Published::of(&msg(
        "t",
        &["a"],
        json!(""),
    )))
    .unwrap()
    .len();
    let at = msg("t", &["a"], json!("x".repeat(240_000 - base)));
    assert_eq!(
        serde_json::to_vec(&groupcast::graphql::Published::of(&at))
            .unwrap()
            .len(),
        240_000
    );
    assert!(p.publish(&at).await.unwrap().is_complete());
    let over = msg("t", &["a"], json!("x".repeat(240_001 - base)));
    let err = p
        .publish_all(&[over], &PublishOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("240001 bytes"), "{err}");
    assert_eq!(server.requests().len(), 1);
}
