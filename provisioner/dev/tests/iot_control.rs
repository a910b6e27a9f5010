//! The IoT control plane of the local stack, driven by the real clients: groupcast-auth's grant
//! (what `provisioner iot grant` and the iot-grant function run) through aws-sdk-iot, and the
//! thing calls iot-grant's registry makes, against `iot::control` behind a small HTTP server
//! (the stack's AWS port is the core's; this server hands each request to `control::answer`, the
//! part after authentication). `control::handle`'s own authentication is tested with
//! `Authenticator::fixed`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use aws_sdk_iot::config::{Credentials, Region};
use groupcast_auth::grant::{GrantRules, apply, plan};
use groupcast_dev::auth::{Authenticator, Identity};
use groupcast_dev::aws::AwsRequest;
use groupcast_dev::iot::{control, state};
use groupcast_dev::log::DecisionLog;
use groupcast_dev::system::{AuthMode, IotAuth, IotSystem, System};
use groupcast_dev::{Ports, Stack};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use uuid::Uuid;

const ALICE: &str = "us-east-1:aaaaaaaa-0000-4000-8000-000000000001";

fn stack(auth: Authenticator) -> Arc<Stack> {
    let dir: PathBuf = std::env::temp_dir().join(format!("gc-dev-iotc-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let policies = ["team-a", "team-b"]
        .iter()
        .map(|g| {
            (
                format!("acme-{g}"),
                format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iot:Receive","Resource":"arn:aws:iot:us-east-1:123456789012:topic/groupcast/{g}/*"}}]}}"#),
            )
        })
        .collect();
    Arc::new(Stack {
        system: Arc::new(System {
            project: "acme".into(),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            iot: Some(IotSystem {
                grant_function: None,
                refresh_cap: None,
                topic_prefix: "groupcast".into(),
                policies,
                group_policies: BTreeMap::new(),
                auth: IotAuth::Attachment,
            }),
            ..System::default()
        }),
        auth,
        log: DecisionLog::capture().0,
        tls: None,
        state_dir: dir,
        ports: Ports::default(),
    })
}

/// An HTTP server answering every request with `control::answer`; its URL.
async fn control_server(stack: Arc<Stack>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let stack = stack.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let stack = stack.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes().to_vec())
                                .unwrap_or_default();
                            let aws = AwsRequest {
                                method: parts.method.to_string(),
                                path: parts.uri.path().to_owned(),
                                query: parts.uri.query().unwrap_or("").to_owned(),
                                headers: parts
                                    .headers
                                    .iter()
                                    .filter_map(|(k, v)| {
                                        Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))
                                    })
                                    .collect(),
                                body,
                            };
                            assert!(
                                control::is_iot_control(&aws),
                                "{} {} is not routed to IoT",
                                aws.method,
                                aws.path
                            );
                            let r = control::answer(&stack, &aws, "test");
                            let mut resp = hyper::Response::builder().status(r.status);
                            for (k, v) in r.headers {
                                resp = resp.header(k, v);
                            }
                            Ok::<_, Infallible>(
                                resp.body(Full::new(bytes::Bytes::from(r.body))).unwrap(),
                            )
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn sdk(url: &str) -> aws_sdk_iot::Client {
    let config = aws_sdk_iot::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
        .build();
    aws_sdk_iot::Client::from_conf(config)
}

#[tokio::test]
async fn the_real_grant_through_aws_sdk_iot_attaches_and_detaches_in_the_local_state() {
    let stack = stack(Authenticator::default());
    let client = sdk(&control_server(stack.clone()).await);
    let rules =
        GrantRules::new("acme", "acme-{group}", &["team-a".into(), "team-b".into()]).unwrap();

    let g = plan(&client, &rules, ALICE, &["team-a".into(), "team-b".into()])
        .await
        .unwrap();
    let g = apply(&client, g).await.unwrap();
    assert_eq!(g.attached, ["acme-team-a", "acme-team-b"]);
    assert_eq!(
        state::of(&stack.state_dir).attached(ALICE),
        ["acme-team-a", "acme-team-b"]
    );

    // The user leaves team-b: the next grant detaches exactly that policy.
    let g = plan(&client, &rules, ALICE, &["team-a".into()])
        .await
        .unwrap();
    let g = apply(&client, g).await.unwrap();
    assert_eq!(g.detached, ["acme-team-b"]);
    assert_eq!(g.kept, ["acme-team-a"]);
    assert_eq!(state::of(&stack.state_dir).attached(ALICE), ["acme-team-a"]);

    // Kept across restarts: the file says the same.
    let file: serde_json::Value = serde_json::from_slice(
        &std::fs::read(stack.state_dir.join(state::ATTACHMENTS_FILE)).unwrap(),
    )
    .unwrap();
    assert_eq!(file["targets"][ALICE], serde_json::json!(["acme-team-a"]));
}

#[tokio::test]
async fn attaching_a_policy_that_does_not_exist_is_resource_not_found() {
    let stack = stack(Authenticator::default());
    let client = sdk(&control_server(stack.clone()).await);
    let e = client
        .attach_policy()
        .policy_name("acme-team-z")
        .target(ALICE)
        .send()
        .await
        .unwrap_err();
    use aws_sdk_iot::error::ProvideErrorMetadata;
    assert_eq!(e.code(), Some("ResourceNotFoundException"));
    assert!(state::of(&stack.state_dir).attached(ALICE).is_empty());
}

#[tokio::test]
async fn the_user_to_identity_things_are_created_described_and_updated_through_aws_sdk_iot() {
    use aws_sdk_iot::error::ProvideErrorMetadata;
    use aws_sdk_iot::types::AttributePayload;
    let stack = stack(Authenticator::default());
    let client = sdk(&control_server(stack.clone()).await);
    let e = client
        .describe_thing()
        .thing_name("acme--alice")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ResourceNotFoundException"));
    let payload = |id: &str| {
        AttributePayload::builder()
            .attributes("identityId", id)
            .attributes("groupcastProject", "acme")
            .merge(true)
            .build()
    };
    client
        .create_thing()
        .thing_name("acme--alice")
        .attribute_payload(payload(ALICE))
        .send()
        .await
        .unwrap();
    let t = client
        .describe_thing()
        .thing_name("acme--alice")
        .send()
        .await
        .unwrap();
    assert_eq!(t.attributes.unwrap()["identityId"], ALICE);
    client
        .update_thing()
        .thing_name("acme--alice")
        .attribute_payload(payload("us-east-1:other"))
        .send()
        .await
        .unwrap();
    let t = client
        .describe_thing()
        .thing_name("acme--alice")
        .send()
        .await
        .unwrap();
    let attrs = t.attributes.unwrap();
    assert_eq!(attrs["identityId"], "us-east-1:other");
    assert_eq!(attrs["groupcastProject"], "acme");
}

fn attach_request(authorization: &str) -> AwsRequest {
    AwsRequest {
        method: "PUT".into(),
        path: "/target-policies/acme-team-a".into(),
        query: String::new(),
        headers: BTreeMap::from([("authorization".to_owned(), authorization.to_owned())]),
        body: serde_json::json!({ "target": ALICE })
            .to_string()
            .into_bytes(),
    }
}

#[tokio::test]
async fn only_signed_non_identity_callers_may_attach_policies() {
    let admin = Identity::Iam(groupcast_appsync_js::IamIdentity {
        user_arn: "arn:aws:sts::123456789012:assumed-role/admin/x".into(),
        ..Default::default()
    });
    let end_user = Identity::Iam(groupcast_appsync_js::IamIdentity {
        user_arn: "arn:aws:sts::123456789012:assumed-role/authenticated/alice".into(),
        cognito_identity_id: Some(ALICE.into()),
        ..Default::default()
    });
    let stack = stack(Authenticator::fixed(vec![
        (
            "admin-signature /iot/aws4_request".into(),
            AuthMode::Iam,
            admin,
            "admin".into(),
        ),
        (
            "alice-signature /iot/aws4_request".into(),
            AuthMode::Iam,
            end_user,
            "alice".into(),
        ),
    ]));
    // An identity-pool credential (the end user granting themselves a group) is refused.
    let r = control::handle(&stack, &attach_request("alice-signature /iot/aws4_request"))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    // An unsigned or unknown caller is refused.
    let r = control::handle(&stack, &attach_request("nobody /iot/aws4_request"))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    assert!(state::of(&stack.state_dir).attached(ALICE).is_empty());
    let r = control::handle(&stack, &attach_request("admin-signature /iot/aws4_request"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(state::of(&stack.state_dir).attached(ALICE), ["acme-team-a"]);
    // Another service's signature scope is not IoT's to answer.
    assert!(
        control::handle(&stack, &attach_request("x /lambda/aws4_request"))
            .await
            .is_none()
    );
}
