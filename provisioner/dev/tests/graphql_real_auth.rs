//! The GraphQL endpoint with the stack's real authenticator (core: local ID tokens, SigV4 with the
//! publisher's key pair): groupcast's IAM publisher publishes and `Publisher::revoke` revokes, as
//! they would against AppSync; subscribers hold tokens minted by the local issuer.

use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use groupcast::subscribe::graphql::GraphqlSubscriber;
use groupcast::subscribe::{SubscribeError, Subscription, SubscriptionEvent};
use groupcast::{Authorizer, Message, Publisher, RevokeOutcome, StaticToken, Transport};
use groupcast_dev::auth::Authenticator;
use groupcast_dev::identity::{Issuer, publisher_credentials, user_sub};
use groupcast_dev::log::DecisionLog;
use groupcast_dev::system::{AuthMode, GraphqlSystem, System};
use groupcast_dev::{Ports, Stack};
use serde_json::json;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/graphql");
const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

fn system() -> System {
    let mut templates = std::collections::BTreeMap::new();
    let mut schema = String::new();
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        if name == "schema.graphql" {
            schema = text;
        } else {
            templates.insert(name, text);
        }
    }
    System {
        project: "acme-live".into(),
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        graphql: Some(GraphqlSystem {
            name: "acme-live".into(),
            schema,
            templates,
            auth_modes: vec![AuthMode::Cognito, AuthMode::Iam],
            groups_claim: "cognito:groups".into(),
        }),
        ..System::default()
    }
}

async fn active(sub: &mut Subscription) {
    loop {
        match tokio::time::timeout(WAIT, sub.next_event()).await {
            Ok(Some(SubscriptionEvent::Active)) => return,
            Ok(Some(SubscriptionEvent::State(_))) => {}
            other => panic!("expected the subscription to become active, got {other:?}"),
        }
    }
}

async fn only(sub: &mut Subscription, topic: &str) {
    match tokio::time::timeout(WAIT, sub.next_message()).await {
        Ok(Some(Ok(m))) => assert_eq!(m.envelope.topic, topic),
        other => panic!("expected {topic}, got {other:?}"),
    }
    if let Ok(Some(extra)) = tokio::time::timeout(QUIET, sub.next_message()).await {
        panic!("received more than {topic}: {extra:?}");
    }
}

#[tokio::test]
async fn publisher_revoke_closes_the_revoked_users_subscription_to_that_group_and_nothing_else() {
    let dir = std::env::temp_dir().join(format!("groupcast-dev-graphql-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let system = Arc::new(system());
    let issuer = Arc::new(
        Issuer::load_or_create(&dir, "https://127.0.0.1:4514/us-east-1_Local", "client").unwrap(),
    );
    let auth = Authenticator::new(system.clone(), issuer.clone(), &dir).unwrap();
    let keys = publisher_credentials(&dir).unwrap();
    let (log, decisions) = DecisionLog::capture();
    let stack = Arc::new(Stack {
        system,
        auth,
        log,
        tls: None,
        state_dir: dir.clone(),
        ports: Ports::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(groupcast_dev::graphql::serve(listener, stack));

    let token = |user: &str, groups: &[&str]| {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        issuer
            .mint(user, &groups, Duration::from_secs(3600))
            .unwrap()
    };
    let subscriber = |t: String| {
        GraphqlSubscriber::builder()
            .url(&url)
            .authorizer(Authorizer::token(StaticToken(t)))
            .build()
            .unwrap()
    };
    // Alice (team-a, team-y): two subscriptions on one connection; Dave (team-a).
    let alice = subscriber(token("alice", &["team-a", "team-y"]));
    let mut alice_a = alice
        .subscribe("", Some(&["team-a".to_string()]))
        .await
        .unwrap();
    let mut alice_y = alice
        .subscribe("", Some(&["team-y".to_string()]))
        .await
        .unwrap();
    let dave = subscriber(token("dave", &["team-a"]));
    let mut dave_all = dave.subscribe("", None).await.unwrap();
    for s in [&mut alice_a, &mut alice_y, &mut dave_all] {
        active(s).await;
    }

    let publisher = Publisher::builder()
        .graphql(&url)
        .graphql_authorizer(Authorizer::iam(Credentials::new(
            keys.access_key_id,
            keys.secret_access_key,
            None,
            None,
            "local",
        )))
        .region("us-east-1")
        .build()
        .unwrap();
    let publish = |topic: &'static str, group: &'static str| {
        let publisher = publisher.clone();
        async move {
            let m = Message::builder(topic)
                .data(json!({}))
                .groups([group])
                .build()
                .unwrap();
            let r = publisher.publish(&m).await.unwrap();
            assert!(r.is_complete(), "{r:?}");
        }
    };
    publish("t/a-before", "team-a").await;
    only(&mut alice_a, "t/a-before").await;
    only(&mut dave_all, "t/a-before").await;

    let report = publisher
        .revoke(&user_sub("alice"), &["team-a"])
        .await
        .unwrap();
    let graphql = report
        .transports
        .iter()
        .find(|t| t.transport == Transport::Graphql)
        .unwrap();
    assert_eq!(graphql.outcome, RevokeOutcome::Invalidated, "{report:?}");
    match tokio::time::timeout(WAIT, alice_a.next_message()).await {
        Ok(Some(Err(SubscribeError::Invalidated { .. }))) => {}
        other => panic!("expected alice's team-a subscription to be invalidated, got {other:?}"),
    }

    publish("t/a-after", "team-a").await;
    publish("t/y-after", "team-y").await;
    only(&mut dave_all, "t/a-after").await;
    only(&mut alice_y, "t/y-after").await;
    let log = decisions.lock().unwrap().clone();
    assert!(
        log.iter()
            .any(|d| d["action"] == "invalidate" && d["outcome"] == "admitted"),
        "{log:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_users_token_cannot_publish_or_revoke_and_a_forged_token_cannot_connect() {
    let dir = std::env::temp_dir().join(format!("groupcast-dev-graphql-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let system = Arc::new(system());
    let issuer = Arc::new(
        Issuer::load_or_create(&dir, "https://127.0.0.1:4514/us-east-1_Local", "client").unwrap(),
    );
    let stack = Arc::new(Stack {
        auth: Authenticator::new(system.clone(), issuer.clone(), &dir).unwrap(),
        system,
        log: DecisionLog::capture().0,
        tls: None,
        state_dir: dir.clone(),
        ports: Ports::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(groupcast_dev::graphql::serve(listener, stack));
    let alice = issuer
        .mint("alice", &["team-a".to_string()], Duration::from_secs(3600))
        .unwrap();
    let client = reqwest::Client::new();
    for body in [
        json!({"query": groupcast::graphql::PUBLISH_MUTATION, "variables": {
            "topic": "t", "data": "{}", "groups": ["team-a"], "uuid": uuid::Uuid::new_v4().to_string()}}),
        json!({"query": groupcast::graphql::REVOKE_MUTATION, "variables": {
            "userId": user_sub("bob"), "groups": ["team-a"]}}),
    ] {
        let r: serde_json::Value = client
            .post(&url)
            .header("authorization", &alice)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["errors"][0]["errorType"], "Unauthorized", "{r}");
    }
    // A token signed by another key: the connection is refused for good.
    let other_dir = dir.join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let forger = Issuer::load_or_create(
        &other_dir,
        "https://127.0.0.1:4514/us-east-1_Local",
        "client",
    )
    .unwrap();
    let forged = forger
        .mint(
            "mallory",
            &["team-a".to_string()],
            Duration::from_secs(3600),
        )
        .unwrap();
    let mallory = GraphqlSubscriber::builder()
        .url(&url)
        .authorizer(Authorizer::token(StaticToken(forged)))
        .build()
        .unwrap();
    let mut sub = mallory.subscribe("", None).await.unwrap();
    loop {
        match tokio::time::timeout(WAIT, sub.next_event()).await {
            Ok(Some(SubscriptionEvent::State(_))) => {}
            Ok(Some(SubscriptionEvent::PartEnded {
                error: SubscribeError::Connection(m),
                ..
            })) => {
                assert!(m.contains("connection refused"), "{m}");
                break;
            }
            other => panic!("expected the connection to be refused, got {other:?}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_iam_signed_connection_is_admitted_and_its_subscription_refused_as_the_schema_says() {
    // The connection authenticates with any of the API's modes (IAM signs POST …/graphql/connect
    // with body {}); the subscription field is @aws_cognito_user_pools only.
    let dir = std::env::temp_dir().join(format!("groupcast-dev-graphql-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let system = Arc::new(system());
    let issuer = Arc::new(
        Issuer::load_or_create(&dir, "https://127.0.0.1:4514/us-east-1_Local", "client").unwrap(),
    );
    let (log, decisions) = DecisionLog::capture();
    let stack = Arc::new(Stack {
        auth: Authenticator::new(system.clone(), issuer, &dir).unwrap(),
        system,
        log,
        tls: None,
        state_dir: dir.clone(),
        ports: Ports::default(),
    });
    let keys = publisher_credentials(&dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(groupcast_dev::graphql::serve(listener, stack));
    let s = GraphqlSubscriber::builder()
        .url(&url)
        .region("us-east-1")
        .authorizer(Authorizer::iam(Credentials::new(
            keys.access_key_id,
            keys.secret_access_key,
            None,
            None,
            "local",
        )))
        .build()
        .unwrap();
    let mut sub = s.subscribe("", None).await.unwrap();
    match tokio::time::timeout(WAIT, sub.next_message()).await {
        Ok(Some(Err(SubscribeError::Unauthorized { .. }))) => {}
        other => panic!("expected the start to be refused as Unauthorized, got {other:?}"),
    }
    let log = decisions.lock().unwrap().clone();
    assert!(
        log.iter()
            .any(|d| d["action"] == "connect" && d["outcome"] == "admitted"),
        "the SigV4-signed connection was not admitted: {log:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
