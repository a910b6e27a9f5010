//! `Publisher::revoke` on the wire: the IAM-signed GraphQL `revoke` mutation, the iot-grant
//! function's sync through the Lambda Invoke API (SigV4 service `lambda`, re-verified by
//! botocore), Events reported as not supported, and failures reported per transport.

use aws_credential_types::provider::SharedCredentialsProvider;
use groupcast::revoke::EVENTS_BOUND;
use groupcast::{Authorizer, Publisher, RevokeOutcome, Transport};
use serde_json::json;

use crate::server::{Captured, Reply, Server};
use crate::sigv4::botocore_verify;
use crate::{creds, fast_retries};

const GRANT: &str = "acme-live-iot-grant";
const INVOKE_PATH: &str = "/2015-03-31/functions/acme-live-iot-grant/invocations";

/// Answers the revoke mutation by echoing its variables, and the grant function with a report.
fn peer(req: &Captured, _n: usize) -> Reply {
    if req.target == "/graphql" {
        let v = &req.json()["variables"];
        Reply::ok(json!({"data": {"revoke": {"userId": v["userId"], "groups": v["groups"]}}}))
    } else if req.target == INVOKE_PATH {
        Reply::ok(json!({"user": req.json()["sync"]["user"], "detached": ["acme-live-team-a"]}))
    } else {
        Reply::Json(404, r#"{"message":"no such path"}"#.into())
    }
}

fn publisher(server: &Server, token: Option<&str>) -> Publisher {
    Publisher::builder()
        .events(&server.base, "live")
        .graphql(format!("{}/graphql", server.base))
        .iot(&server.base, "groupcast")
        .iot_grant_function(GRANT)
        .lambda_endpoint(&server.base)
        .region("eu-west-1")
        .credentials(SharedCredentialsProvider::new(creds(token)))
        .retry_policy(fast_retries())
        .build()
        .unwrap()
}

#[tokio::test]
async fn in_a_time_sliced_namespace_events_reports_that_access_expires_within_two_epochs_and_sends_nothing()
 {
    let server = Server::start(peer).await;
    let publisher = Publisher::builder()
        .events(&server.base, "live")
        .events_epoch_seconds(300)
        .graphql(format!("{}/graphql", server.base))
        .region("eu-west-1")
        .credentials(SharedCredentialsProvider::new(creds(None)))
        .retry_policy(fast_retries())
        .build()
        .unwrap();
    let report = publisher.revoke("user-a", &["team-a"]).await.unwrap();
    let events = &report.transports[0];
    assert_eq!(events.transport, Transport::Events);
    assert_eq!(events.attempts, 0, "nothing is sent to Events");
    assert_eq!(
        events.outcome,
        RevokeOutcome::Expires {
            within_seconds: 600,
            bound: groupcast::revoke::events_epoch_bound("live", 300)
        }
    );
    assert!(report.is_complete(), "{report:?}");
    assert!(
        server.requests().iter().all(|r| r.target == "/graphql"),
        "only the GraphQL revoke was sent"
    );
}

#[tokio::test]
async fn revoke_invalidates_on_graphql_syncs_iot_and_reports_events_as_not_supported() {
    let server = Server::start(peer).await;
    let report = publisher(&server, None)
        .revoke("user-a", &["team-a", "Team_B"])
        .await
        .unwrap();
    assert_eq!(report.user, "user-a");
    assert_eq!(report.groups, ["team-a", "Team_B"]);
    let by: Vec<(Transport, &RevokeOutcome, u32)> = report
        .transports
        .iter()
        .map(|t| (t.transport, &t.outcome, t.attempts))
        .collect();
    assert_eq!(
        by,
        [
            (
                Transport::Events,
                &RevokeOutcome::NotSupported {
                    bound: EVENTS_BOUND.into()
                },
                0
            ),
            (Transport::Graphql, &RevokeOutcome::Invalidated, 1),
            (
                Transport::Iot,
                &RevokeOutcome::Synced {
                    response: json!({"user": "user-a", "detached": ["acme-live-team-a"]})
                },
                1
            ),
        ]
    );
    assert!(
        !report.is_complete(),
        "Events cannot revoke: the report must not say complete"
    );
    assert_eq!(report.failures().count(), 0);

    let requests = server.requests();
    assert_eq!(requests.len(), 2, "nothing is sent for Events");
    let gql = requests.iter().find(|r| r.target == "/graphql").unwrap();
    let body = gql.json();
    assert_eq!(body["query"], groupcast::graphql::REVOKE_MUTATION);
    assert_eq!(body["operationName"], "Revoke");
    assert_eq!(
        body["variables"],
        json!({"userId": "user-a", "groups": ["team-a", "Team_B"]})
    );
    let invoke = requests.iter().find(|r| r.target == INVOKE_PATH).unwrap();
    assert_eq!(invoke.method, "POST");
    assert_eq!(invoke.json(), json!({"sync": {"user": "user-a"}}));
}

#[tokio::test]
async fn botocore_verifies_the_revoke_signatures_as_appsync_and_lambda() {
    let server = Server::start(peer).await;
    for token in [None, Some("IQoJb3JpZ2luX2VjE/session+token==")] {
        let r = publisher(&server, token)
            .revoke("us-east-1_x|sub é", &["team-a"])
            .await
            .unwrap();
        assert_eq!(r.failures().count(), 0, "{r:?}");
    }
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    let results = botocore_verify(&requests);
    for (r, v) in requests.iter().zip(&results) {
        assert_eq!(v["ok"], true, "{} {}: {v}", r.method, r.target);
        assert_eq!(v["region"], "eu-west-1");
        let want = if r.target == INVOKE_PATH {
            "lambda"
        } else {
            "appsync"
        };
        assert_eq!(v["service"], want, "{}", r.target);
    }
    // A tampered invocation (another user) no longer verifies.
    let mut tampered = requests
        .iter()
        .find(|r| r.target == INVOKE_PATH)
        .unwrap()
        .clone();
    tampered.body = br#"{"sync":{"user":"someone-else"}}"#.to_vec();
    assert_eq!(botocore_verify(&[tampered])[0]["ok"], false);
}

#[tokio::test]
async fn failures_are_reported_per_transport_and_retried_like_publishing() {
    // GraphQL: 503 twice, then the mutation's own error (a non-publisher caller). IoT: the
    // function fails (200 with X-Amz-Function-Error).
    let server = Server::start(|req, n| {
        if req.target == "/graphql" {
            if n < 2 {
                Reply::Json(503, r#"{"message":"busy"}"#.into())
            } else {
                Reply::ok(json!({"data": {"revoke": null}, "errors": [{"errorType": "Unauthorized", "message": "Not Authorized"}]}))
            }
        } else {
            Reply::JsonWith(
                200,
                vec![("X-Amz-Function-Error".into(), "Unhandled".into())],
                r#"{"errorType":"SyncFailed","errorMessage":"cognito is down"}"#.into(),
            )
        }
    })
    .await;
    let p = publisher(&server, None);
    let opts = groupcast::PublishOptions {
        transports: Some(vec![Transport::Graphql]),
        ..Default::default()
    };
    let r = p.revoke_with("u", &["g"], &opts).await.unwrap();
    let t = &r.transports[0];
    assert_eq!(t.attempts, 3, "two 503s retried, then a final answer");
    match &t.outcome {
        RevokeOutcome::Failed { error, retryable } => {
            assert!(error.contains("Unauthorized"), "{error}");
            assert!(!retryable);
        }
        other => panic!("{other:?}"),
    }
    let opts = groupcast::PublishOptions {
        transports: Some(vec![Transport::Iot]),
        ..Default::default()
    };
    let r = p.revoke_with("u", &["g"], &opts).await.unwrap();
    match &r.transports[0].outcome {
        RevokeOutcome::Failed { error, .. } => {
            assert!(
                error.contains("acme-live-iot-grant failed (Unhandled)")
                    && error.contains("cognito is down"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        r.transports[0].attempts, 1,
        "a function error is not retried"
    );
}

#[tokio::test]
async fn a_mutation_answer_for_another_user_is_not_taken_as_success() {
    let server = Server::start(|_, _| {
        Reply::ok(json!({"data": {"revoke": {"userId": "someone-else", "groups": ["g"]}}}))
    })
    .await;
    let p = Publisher::builder()
        .graphql(format!("{}/graphql", server.base))
        .region("eu-west-1")
        .credentials(SharedCredentialsProvider::new(creds(None)))
        .build()
        .unwrap();
    let r = p.revoke("u", &["g"]).await.unwrap();
    assert!(
        matches!(&r.transports[0].outcome, RevokeOutcome::Failed { error, .. } if error.contains("not the ones asked for")),
        "{r:?}"
    );
}

#[tokio::test]
async fn iot_without_a_grant_function_and_graphql_without_iam_fail_without_sending() {
    let server = Server::start(peer).await;
    let p = Publisher::builder()
        .graphql(format!("{}/graphql", server.base))
        .iot(&server.base, "groupcast")
        .graphql_authorizer(Authorizer::api_key("da2-key"))
        .region("eu-west-1")
        .credentials(SharedCredentialsProvider::new(creds(None)))
        .build()
        .unwrap();
    let r = p.revoke("u", &["g"]).await.unwrap();
    for t in &r.transports {
        match &t.outcome {
            RevokeOutcome::Failed { error, retryable } => {
                assert!(!retryable);
                let want = match t.transport {
                    Transport::Graphql => "IAM-only",
                    _ => "no iot-grant function",
                };
                assert!(error.contains(want), "{error}");
            }
            other => panic!("{}: {other:?}", t.transport),
        }
        assert_eq!(t.attempts, 0);
    }
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn invalid_input_is_refused_before_anything_is_sent() {
    let server = Server::start(peer).await;
    let p = publisher(&server, None);
    let none: [&str; 0] = [];
    for (user, groups, field) in [
        ("", vec!["g"], "user"),
        ("  ", vec!["g"], "user"),
        ("u", none.to_vec(), "groups"),
        ("u", vec!["g", ""], "groups[1]"),
    ] {
        let e = p.revoke(user, &groups).await.unwrap_err().to_string();
        assert!(e.starts_with(&format!("invalid {field}:")), "{e}");
    }
    assert!(server.requests().is_empty());
}

#[test]
fn a_function_name_that_would_change_the_path_is_refused() {
    for bad in ["a/b", "a?x", "a b", "", "é"] {
        let e = Publisher::builder()
            .iot("127.0.0.1:1", "groupcast")
            .iot_grant_function(bad)
            .region("eu-west-1")
            .credentials(SharedCredentialsProvider::new(creds(None)))
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("iot_grant.function"), "{bad:?}: {e}");
    }
}

#[test]
fn the_outputs_lambdas_section_names_the_grant_function() {
    let outputs = groupcast::Outputs::from_json(
        &json!({"version": 1, "region": "eu-west-1",
                "iot": {"dataEndpoint": "127.0.0.1:1", "topicPrefix": "groupcast", "policyNamePattern": "p-{group}"},
                "lambdas": {"iot-grant": {"functionName": "acme-live-iot-grant", "roleArn": "arn:aws:iam::123456789012:role/r"}}})
        .to_string(),
    )
    .unwrap();
    let b = Publisher::builder()
        .outputs(&outputs)
        .credentials(SharedCredentialsProvider::new(creds(None)));
    assert!(b.build().is_ok());
    let e = Publisher::builder()
        .outputs(&outputs)
        .lambda_endpoint("not a url at all")
        .credentials(SharedCredentialsProvider::new(creds(None)))
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("lambda.endpoint"), "{e}");
}
