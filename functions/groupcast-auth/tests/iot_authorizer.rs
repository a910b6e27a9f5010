//! `groupcast_auth::iot_authorizer` with a membership source that changes between invocations:
//! IoT re-invokes the authorizer with the connection's *original* token at every refresh
//! (https://docs.aws.amazon.com/iot/latest/developerguide/custom-auth-lambda.html), so only a
//! source that reads current membership can take a group away before the token expires.
#![cfg(feature = "iot-authorizer")]

mod support;

use std::sync::Mutex;

use base64::Engine as _;
use groupcast_auth::iot_authorizer::{DEFAULT_TOKEN_KEY, Rules, handle, policy_allows};
use groupcast_auth::iot_policy::PolicyTemplate;
use groupcast_auth::jwt::{JwtConfig, Verifier};
use groupcast_auth::membership::{Membership, MembershipError};
use serde_json::{Value, json};
use support::{JwksServer, TestKey, id_claims, jwks, now_secs};

const ARN: &str = "arn:aws:iot:us-east-1:123456789012:";

/// A directory whose answer the test changes, standing in for the issuer's group membership.
struct Directory {
    groups: Mutex<Vec<String>>,
    down: Mutex<bool>,
}

impl Membership for Directory {
    async fn current_groups(&self, user: &str) -> Result<Vec<String>, MembershipError> {
        if *self.down.lock().unwrap() {
            return Err(MembershipError::UserDisabled {
                user: user.to_owned(),
            });
        }
        Ok(self.groups.lock().unwrap().clone())
    }
}

fn request(token: &str) -> Value {
    json!({
        "signatureVerified": false,
        "protocols": ["tls", "mqtt"],
        "protocolData": {"mqtt": {
            "username": "u", "clientId": "5f1c2e7a-user",
            "password": base64::engine::general_purpose::STANDARD.encode(token),
        }},
    })
}

#[tokio::test]
async fn a_refresh_after_removal_drops_the_group_although_the_token_still_names_it() {
    let key = TestKey::rs256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let verifier = Verifier::new(JwtConfig::new(server.issuer(), vec!["app".into()])).unwrap();
    let groups = ["team-a".to_owned(), "admins".to_owned()];
    // The group policy as the provisioner renders it for the Lambda (GROUPCAST_IOT_POLICY).
    let policy =
        PolicyTemplate::parse(include_str!("fixtures/iot-authorizer-policy.json")).unwrap();
    let rules = Rules::new(&groups, policy, 300, DEFAULT_TOKEN_KEY).unwrap();
    let directory = Directory {
        groups: Mutex::new(groups.to_vec()),
        down: Mutex::new(false),
    };
    // The token says admins, and keeps saying it for an hour.
    let token = key.sign(&id_claims(&server.issuer(), "app", &["team-a", "admins"]));
    let receive = |r: &aws_lambda_events::event::iot::IoTCoreCustomAuthorizerResponse, g: &str| {
        let docs: Vec<_> = r.policy_documents.iter().flatten().cloned().collect();
        policy_allows(&docs, "iot:Receive", &format!("{ARN}topic/groupcast/{g}/m"))
    };

    let connect = handle(
        &verifier,
        &rules,
        Some(&directory),
        request(&token),
        now_secs(),
    )
    .await;
    assert!(connect.is_authenticated);
    assert!(receive(&connect, "admins") && receive(&connect, "team-a"));

    // Removed from admins: the refresh with the same token no longer grants it.
    *directory.groups.lock().unwrap() = vec!["team-a".to_owned()];
    let refresh = handle(
        &verifier,
        &rules,
        Some(&directory),
        request(&token),
        now_secs(),
    )
    .await;
    assert!(refresh.is_authenticated);
    assert!(receive(&refresh, "team-a"));
    assert!(!receive(&refresh, "admins"));

    // Removed from everything: the refresh ends the connection.
    directory.groups.lock().unwrap().clear();
    let refresh = handle(
        &verifier,
        &rules,
        Some(&directory),
        request(&token),
        now_secs(),
    )
    .await;
    assert!(!refresh.is_authenticated);
    assert!(refresh.policy_documents.is_empty());

    // The source failing refuses (fail closed), it never falls back to the token's claims.
    *directory.groups.lock().unwrap() = groups.to_vec();
    *directory.down.lock().unwrap() = true;
    let refresh = handle(
        &verifier,
        &rules,
        Some(&directory),
        request(&token),
        now_secs(),
    )
    .await;
    assert!(!refresh.is_authenticated);
}
