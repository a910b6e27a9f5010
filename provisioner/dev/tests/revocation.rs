//! Issue 14, end to end in the local stack: a subscriber removed from a group in the user
//! directory (through the AWS port's `AdminRemoveUserFromGroup`, as on Cognito) and revoked with
//! ONE call, `Publisher::revoke`, stops receiving that group's messages, while a fellow member
//! keeps receiving and the revoked user's other groups keep flowing. Every piece is the stack's
//! real one: the local token issuer and SigV4 verifier (`Authenticator::new`), the AWS port
//! (Cognito user pool + identity pool, IoT control plane, Lambda Invoke), the IoT broker's
//! per-delivery `iot:Receive` check, the GraphQL endpoint's invalidation, and the real iot-grant
//! binary under the emulated Lambda Runtime API (`cargo build -p iot-grant` first).
//!
//! Each test also runs its scenario WITHOUT the revoke call and asserts the revoked user still
//! receives: so the test fails if revocation stops doing anything (it cannot pass vacuously).

mod rendered;
mod support;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use groupcast::subscribe::graphql::GraphqlSubscriber;
use groupcast::subscribe::iot::IotSubscriber;
use groupcast::subscribe::{SubscribeError, Subscription, SubscriptionEvent};
use groupcast::{Authorizer, Message, Publisher, RevokeOutcome, StaticToken, Transport};
use groupcast_dev::auth::{Authenticator, provider_name};
use groupcast_dev::identity::{Directory, Issuer, identity_id, identity_pool_id, user_sub};
use groupcast_dev::log::DecisionLog;
use groupcast_dev::system::{AuthMode, GraphqlSystem, IotAuth, IotSystem, LocalFunction, System};
use groupcast_dev::{Ports, Stack};
use serde_json::{Value, json};
use support::{ACCOUNT, POOL, PREFIX, PROJECT, REGION, binary, groups};

const GRANT_FUNCTION: &str = "acme-live-iot-grant";
const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(500);

/// `iot/{name}.json` as templates/iot/group-policy.json.tera renders it for `group`.
fn rendered_group_policy(group: &str) -> String {
    let arn = format!("arn:aws:iot:{REGION}:{ACCOUNT}:");
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": [
                format!("{arn}client/${{cognito-identity.amazonaws.com:sub}}"),
                format!("{arn}client/${{cognito-identity.amazonaws.com:sub}}-*")]},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": format!("{arn}topicfilter/{PREFIX}/{group}/*")},
            {"Effect": "Allow", "Action": "iot:Receive", "Resource": format!("{arn}topic/{PREFIX}/{group}/*")}
        ]
    })
    .to_string()
}

/// The GraphQL API as `provisioner render` renders it at test time (tests/rendered): Cognito subscribers, IAM publisher, the invalidation filter and `revoke`.
fn graphql_system() -> GraphqlSystem {
    let mut templates = std::collections::BTreeMap::new();
    let mut schema = String::new();
    for entry in std::fs::read_dir(rendered::graphql_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        if name == "schema.graphql" {
            schema = text;
        } else {
            templates.insert(name, text);
        }
    }
    GraphqlSystem {
        name: PROJECT.into(),
        schema,
        templates,
        auth_modes: vec![AuthMode::Cognito, AuthMode::Iam],
        groups_claim: "cognito:groups".into(),
    }
}

/// The iot-grant function as `provisioner dev` configures it for this system (what `provisioner
/// apply` gives the deployed one, with the stack's pools; provisioner/src/commands/dev.rs tests
/// the derivation from the config).
fn grant_function() -> LocalFunction {
    LocalFunction {
        name: GRANT_FUNCTION.into(),
        binary: Some(iot_grant_binary()),
        env: [
            ("GROUPCAST_PROJECT", PROJECT.to_owned()),
            ("GROUPCAST_IOT_GROUPS", r#"["team-a","team-y"]"#.to_owned()),
            (
                "GROUPCAST_IOT_POLICY_PATTERN",
                "acme-live-{group}".to_owned(),
            ),
            ("GROUPCAST_COGNITO_USER_POOL_ID", POOL.to_owned()),
            (
                "GROUPCAST_COGNITO_IDENTITY_POOL_ID",
                identity_pool_id(REGION, PROJECT),
            ),
            ("GROUPCAST_JWT_AUDIENCES", "client".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    }
}

fn iot_system() -> System {
    let iot_groups = ["team-a", "team-y"];
    let mut system = System {
        project: PROJECT.into(),
        region: REGION.into(),
        account_id: ACCOUNT.into(),
        publisher_principals: vec![format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/{PROJECT}-publisher/"
        )],
        iot: Some(IotSystem {
            grant_function: Some(grant_function()),
            refresh_cap: None,
            topic_prefix: PREFIX.into(),
            policies: iot_groups
                .iter()
                .map(|g| (format!("{PROJECT}-{g}"), rendered_group_policy(g)))
                .collect(),
            group_policies: iot_groups
                .iter()
                .map(|g| (g.to_string(), format!("{PROJECT}-{g}")))
                .collect(),
            auth: IotAuth::Attachment,
        }),
        ..System::default()
    };
    system.identity.user_pool_id = Some(POOL.into());
    system.graphql = Some(graphql_system());
    system
}

/// The stack with its real authenticator, serving the AWS port and IoT over plain WSS.
struct IotStack {
    stack: Arc<Stack>,
    issuer: Arc<Issuer>,
    dir: PathBuf,
    aws_url: String,
    iot_url: String,
    graphql_url: String,
    decisions: Arc<Mutex<Vec<Value>>>,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Drop for IotStack {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn iot_stack() -> IotStack {
    let dir = std::env::temp_dir().join(format!("gc-dev-revoke-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let aws = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let wss = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gql = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let graphql_url = format!("http://{}/graphql", gql.local_addr().unwrap());
    let aws_url = format!("http://{}", aws.local_addr().unwrap());
    let iot_url = format!("http://{}", wss.local_addr().unwrap());
    let system = Arc::new(iot_system());
    let issuer = Arc::new(
        Issuer::load_or_create(
            &dir,
            &format!("https://{}/{POOL}", aws.local_addr().unwrap()),
            "client",
        )
        .unwrap(),
    );
    let auth = Authenticator::new(system.clone(), issuer.clone(), &dir).unwrap();
    let (log, decisions) = DecisionLog::capture();
    let stack = Arc::new(Stack {
        system,
        auth,
        log,
        tls: None,
        state_dir: dir.clone(),
        ports: Ports::default(),
    });
    let tasks = vec![
        tokio::spawn(groupcast_dev::aws::serve(aws, stack.clone())),
        tokio::spawn(groupcast_dev::iot::serve_wss(wss, stack.clone())),
        tokio::spawn(groupcast_dev::graphql::serve(gql, stack.clone())),
    ];
    IotStack {
        stack,
        issuer,
        dir,
        aws_url,
        iot_url,
        graphql_url,
        decisions,
        tasks,
    }
}

fn iot_grant_binary() -> PathBuf {
    binary("iot-grant")
}

impl IotStack {
    fn publisher_keys(&self) -> Credentials {
        support::publisher_keys(&self.dir)
    }

    /// The stack's functions as `provisioner dev` starts them ([`groupcast_dev::functions::start`]):
    /// the real iot-grant binary, its AWS calls aimed at the stack's AWS APIs, registered as
    /// `acme-live-iot-grant` so Lambda Invoke on the AWS port reaches it.
    async fn start_iot_grant(&self) -> groupcast_dev::functions::Functions {
        let f = groupcast_dev::functions::start(&self.stack).await.unwrap();
        assert_eq!(f.names, [GRANT_FUNCTION]);
        f
    }

    fn iot_client(&self) -> aws_sdk_iot::Client {
        use aws_sdk_iot::config;
        aws_sdk_iot::Client::from_conf(
            config::Builder::new()
                .behavior_version(config::BehaviorVersion::latest())
                .region(config::Region::new(REGION))
                .credentials_provider(self.publisher_keys())
                .endpoint_url(&self.aws_url)
                .retry_config(config::retry::RetryConfig::disabled())
                .build(),
        )
    }

    /// What iot-grant's grant leaves behind for `user` (docs/isolation.md, IoT attachments):
    /// the user → identity record (thing `groupcast_{project}_{sub}`) and the group policies
    /// attached to the user's identity. Made through aws-sdk-iot against the control plane.
    async fn granted(&self, user: &str, group_list: &[&str]) {
        let iot = self.iot_client();
        let id = identity_id(REGION, user);
        iot.create_thing()
            .thing_name(format!("groupcast_{PROJECT}_{}", user_sub(user)))
            .attribute_payload(
                aws_sdk_iot::types::AttributePayload::builder()
                    .attributes("identityId", &id)
                    .attributes("groupcastProject", PROJECT)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        for g in group_list {
            iot.attach_policy()
                .policy_name(format!("{PROJECT}-{g}"))
                .target(&id)
                .send()
                .await
                .unwrap();
        }
    }

    /// The user's identity-pool credentials, as a frontend gets them: GetId and
    /// GetCredentialsForIdentity with the user's ID token, on the AWS port.
    async fn identity_credentials(&self, user: &str, group_list: &[&str]) -> Credentials {
        use aws_sdk_cognitoidentity::config;
        let client = aws_sdk_cognitoidentity::Client::from_conf(
            config::Builder::new()
                .behavior_version(config::BehaviorVersion::latest())
                .region(config::Region::new(REGION))
                .endpoint_url(&self.aws_url)
                .retry_config(config::retry::RetryConfig::disabled())
                .build(),
        );
        let token = self
            .issuer
            .mint(user, &groups(group_list), Duration::from_secs(3600))
            .unwrap();
        let provider = provider_name(self.issuer.issuer_url());
        let id = client
            .get_id()
            .identity_pool_id(identity_pool_id(REGION, PROJECT))
            .logins(&provider, &token)
            .send()
            .await
            .unwrap();
        let c = client
            .get_credentials_for_identity()
            .identity_id(id.identity_id().unwrap())
            .logins(&provider, &token)
            .send()
            .await
            .unwrap();
        let c = c.credentials().unwrap();
        Credentials::new(
            c.access_key_id().unwrap(),
            c.secret_key().unwrap(),
            c.session_token().map(str::to_owned),
            None,
            "cognito-identity",
        )
    }

    fn subscriber(&self, user: &str, creds: Credentials) -> IotSubscriber {
        IotSubscriber::builder()
            .endpoint(format!("{}/mqtt", self.iot_url.replace("http://", "ws://")))
            .region(REGION)
            .credentials(SharedCredentialsProvider::new(creds))
            .client_id(format!(
                "{}-{}",
                identity_id(REGION, user),
                uuid::Uuid::new_v4()
            ))
            .topic_prefix(PREFIX)
            .build()
            .unwrap()
    }

    fn publisher(&self) -> Publisher {
        Publisher::builder()
            .iot(&self.iot_url, PREFIX)
            .graphql(&self.graphql_url)
            .iot_grant_function(GRANT_FUNCTION)
            .lambda_endpoint(&self.aws_url)
            .credentials(SharedCredentialsProvider::new(self.publisher_keys()))
            .graphql_authorizer(Authorizer::iam(self.publisher_keys()))
            .region(REGION)
            .build()
            .unwrap()
    }

    /// Cognito's `AdminRemoveUserFromGroup` on the AWS port: the removal an administrator makes.
    async fn remove_from_group(&self, user: &str, group: &str) {
        support::remove_from_group(&self.aws_url, &self.dir, user, group).await;
    }
}

async fn active(sub: &mut Subscription) {
    loop {
        match tokio::time::timeout(WAIT, sub.next_event()).await {
            Ok(Some(SubscriptionEvent::Active)) => return,
            Ok(Some(SubscriptionEvent::PartEnded { error, .. })) => panic!("part ended: {error}"),
            Ok(Some(_)) => {}
            other => panic!("expected the subscription to become active, got {other:?}"),
        }
    }
}

/// The `step` of each message `sub` receives until it stays quiet for [`QUIET`].
async fn received(sub: &mut Subscription) -> Vec<String> {
    let mut topics = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(QUIET, sub.next_message()).await {
        match m {
            Ok(m) => topics.push(m.envelope.data["step"].as_str().unwrap_or("?").to_owned()),
            Err(e) => topics.push(format!("error: {e}")),
        }
    }
    topics
}

/// Publishes `step` on topic `news` (the IoT subscription's exact topic) to `group`.
async fn publish(publisher: &Publisher, step: &str, group: &str) {
    let m = Message::builder("news")
        .data(json!({"step": step}))
        .groups([group])
        .build()
        .unwrap();
    let r = publisher.publish(&m).await.unwrap();
    assert!(r.is_complete(), "{r:?}");
}

/// Alice (team-a, team-y) and Dave (team-a) subscribe over IoT; Alice is removed from team-a.
/// With `revoke`, Alice's open session stops receiving team-a (and keeps team-y) right after
/// the one call; Dave keeps receiving team-a. Returns what Alice's team-a subscription received
/// after the removal, and the time the revoke call took.
async fn iot_attachment_scenario(revoke: bool) -> (Vec<String>, Duration) {
    let s = iot_stack().await;
    let _grant = s.start_iot_grant().await;
    let directory = Directory::open(&s.dir);
    directory
        .set_groups("alice", &groups(&["team-a", "team-y"]))
        .unwrap();
    directory.set_groups("dave", &groups(&["team-a"])).unwrap();
    s.granted("alice", &["team-a", "team-y"]).await;
    s.granted("dave", &["team-a"]).await;

    let alice = s.subscriber(
        "alice",
        s.identity_credentials("alice", &["team-a", "team-y"]).await,
    );
    let dave = s.subscriber("dave", s.identity_credentials("dave", &["team-a"]).await);
    let mut alice_a = alice.subscribe_groups(&["team-a"], "news").await.unwrap();
    let mut alice_y = alice.subscribe_groups(&["team-y"], "news").await.unwrap();
    let mut dave_a = dave.subscribe_groups(&["team-a"], "news").await.unwrap();
    for sub in [&mut alice_a, &mut alice_y, &mut dave_a] {
        active(sub).await;
    }
    let publisher = s.publisher();
    publish(&publisher, "before", "team-a").await;
    assert_eq!(received(&mut alice_a).await, ["before"]);
    assert_eq!(received(&mut dave_a).await, ["before"]);

    s.remove_from_group("alice", "team-a").await;
    assert_eq!(directory.groups("alice"), Some(groups(&["team-y"])));
    let started = Instant::now();
    if revoke {
        let report = publisher
            .revoke(&user_sub("alice"), &["team-a"])
            .await
            .unwrap();
        let iot = report
            .transports
            .iter()
            .find(|t| t.transport == Transport::Iot)
            .unwrap_or_else(|| panic!("no IoT entry: {report:?}"));
        match &iot.outcome {
            RevokeOutcome::Synced { response } => {
                assert!(
                    response.to_string().contains("acme-live-team-a"),
                    "{response}"
                )
            }
            other => panic!("expected the IoT sync, got {other:?} in {report:?}"),
        }
    }
    let took = started.elapsed();
    publish(&publisher, "after", "team-a").await;
    publish(&publisher, "after-y", "team-y").await;
    let alice_got = received(&mut alice_a).await;
    assert_eq!(received(&mut dave_a).await, ["after"]);
    assert_eq!(received(&mut alice_y).await, ["after-y"]);
    // Dave's identity kept its attachment: the sync touched only Alice's.
    let attached = s
        .iot_client()
        .list_attached_policies()
        .target(identity_id(REGION, "dave"))
        .send()
        .await
        .unwrap();
    let names: Vec<_> = attached
        .policies()
        .iter()
        .filter_map(|p| p.policy_name())
        .collect();
    assert_eq!(names, ["acme-live-team-a"]);
    if revoke {
        let log = s.decisions.lock().unwrap().clone();
        assert!(
            log.iter()
                .any(|d| d["action"] == "lambda:InvokeFunction" && d["outcome"] == "admitted"),
            "{log:?}"
        );
    }
    alice.close().await;
    dave.close().await;
    (alice_got, took)
}

#[tokio::test]
async fn iot_attachment_mode_a_removed_and_revoked_subscriber_stops_receiving_on_its_open_session_while_a_fellow_member_keeps_receiving()
 {
    let (alice_got, took) = iot_attachment_scenario(true).await;
    assert!(
        alice_got.is_empty(),
        "delivered after revoke: {alice_got:?}"
    );
    eprintln!(
        "IoT attachment mode: revoke (Lambda Invoke → iot-grant sync → detach) took {took:?}"
    );
    assert!(took < WAIT, "revoke took {took:?}");
}

#[tokio::test]
async fn iot_attachment_mode_without_the_revoke_call_the_removed_subscriber_keeps_receiving() {
    // The control for the test above: removal alone does not stop an open IoT session (the
    // attached policy still grants iot:Receive), so that test's silence is revoke's doing.
    let (alice_got, _) = iot_attachment_scenario(false).await;
    assert_eq!(alice_got, ["after"]);
}

/// A GraphQL subscriber holding `user`'s token with the groups the user pool lists NOW (what a
/// sign-in or a token refresh returns).
fn graphql_subscriber(s: &IotStack, user: &str) -> GraphqlSubscriber {
    let current = Directory::open(&s.dir).groups(user).unwrap_or_default();
    let token = s
        .issuer
        .mint(user, &current, Duration::from_secs(3600))
        .unwrap();
    GraphqlSubscriber::builder()
        .url(&s.graphql_url)
        .authorizer(Authorizer::token(StaticToken(token)))
        .build()
        .unwrap()
}

/// Alice (team-a, team-y) and Dave (team-a) subscribe over GraphQL; Alice is removed from
/// team-a, then (if `revoke`) revoked. Returns what Alice's team-a subscription got after the
/// removal and how long from the start of the revoke call until the invalidation reached her.
async fn graphql_scenario(revoke: bool) -> (Vec<String>, Duration) {
    let s = iot_stack().await;
    let _grant = s.start_iot_grant().await;
    let directory = Directory::open(&s.dir);
    directory
        .set_groups("alice", &groups(&["team-a", "team-y"]))
        .unwrap();
    directory.set_groups("dave", &groups(&["team-a"])).unwrap();
    let alice = graphql_subscriber(&s, "alice");
    let dave = graphql_subscriber(&s, "dave");
    let mut alice_a = alice
        .subscribe("", Some(&["team-a".to_string()]))
        .await
        .unwrap();
    let mut alice_y = alice
        .subscribe("", Some(&["team-y".to_string()]))
        .await
        .unwrap();
    let mut dave_a = dave.subscribe("", None).await.unwrap();
    for sub in [&mut alice_a, &mut alice_y, &mut dave_a] {
        active(sub).await;
    }
    let publisher = s.publisher();
    publish(&publisher, "before", "team-a").await;
    assert_eq!(received(&mut alice_a).await, ["before"]);
    assert_eq!(received(&mut dave_a).await, ["before"]);

    s.remove_from_group("alice", "team-a").await;
    let started = Instant::now();
    let mut took = Duration::ZERO;
    if revoke {
        let report = publisher
            .revoke(&user_sub("alice"), &["team-a"])
            .await
            .unwrap();
        let graphql = report
            .transports
            .iter()
            .find(|t| t.transport == Transport::Graphql)
            .unwrap_or_else(|| panic!("no GraphQL entry: {report:?}"));
        assert_eq!(graphql.outcome, RevokeOutcome::Invalidated, "{report:?}");
        match tokio::time::timeout(WAIT, alice_a.next_message()).await {
            Ok(Some(Err(SubscribeError::Invalidated { .. }))) => took = started.elapsed(),
            other => panic!("expected alice's team-a subscription invalidated, got {other:?}"),
        }
    }
    publish(&publisher, "after", "team-a").await;
    publish(&publisher, "after-y", "team-y").await;
    let alice_got = received(&mut alice_a).await;
    assert_eq!(received(&mut dave_a).await, ["after"]);
    assert_eq!(received(&mut alice_y).await, ["after-y"]);
    // A token refreshed after the removal (the directory's current groups) cannot subscribe to
    // team-a again.
    let refreshed = graphql_subscriber(&s, "alice");
    let mut again = refreshed
        .subscribe("", Some(&["team-a".to_string()]))
        .await
        .unwrap();
    match tokio::time::timeout(WAIT, again.next_message()).await {
        Ok(Some(Err(_))) => {}
        other => panic!("a refreshed token re-subscribed to team-a: {other:?}"),
    }
    (alice_got, took)
}

#[tokio::test]
async fn graphql_a_removed_and_revoked_subscriber_is_invalidated_while_a_fellow_member_and_its_other_group_keep_receiving()
 {
    let (alice_got, took) = graphql_scenario(true).await;
    assert!(
        alice_got.is_empty(),
        "delivered after revoke: {alice_got:?}"
    );
    eprintln!("GraphQL: revoke call to invalidation frame took {took:?}");
    assert!(took < WAIT);
}

#[tokio::test]
async fn graphql_without_the_revoke_call_the_removed_subscribers_open_subscription_keeps_receiving()
{
    let (alice_got, _) = graphql_scenario(false).await;
    assert_eq!(alice_got, ["after"]);
}

#[tokio::test]
async fn lambda_invoke_on_the_aws_port_refuses_unsigned_callers_end_users_credentials_and_unknown_functions()
 {
    let s = iot_stack().await;
    let _grant = s.start_iot_grant().await;
    let url = format!(
        "{}/2015-03-31/functions/{GRANT_FUNCTION}/invocations",
        s.aws_url
    );
    let unsigned = reqwest::Client::new()
        .post(&url)
        .body(json!({"sync": {"user": user_sub("alice")}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403);
    // Alice's own identity-pool credentials: signed correctly, but not a publisher.
    Directory::open(&s.dir)
        .set_groups("alice", &groups(&["team-a"]))
        .unwrap();
    let alice_keys = s.identity_credentials("alice", &["team-a"]).await;
    let as_alice = Publisher::builder()
        .iot(&s.iot_url, PREFIX)
        .iot_grant_function(GRANT_FUNCTION)
        .lambda_endpoint(&s.aws_url)
        .credentials(SharedCredentialsProvider::new(alice_keys))
        .region(REGION)
        .max_attempts(1)
        .build()
        .unwrap();
    let report = as_alice
        .revoke(&user_sub("dave"), &["team-a"])
        .await
        .unwrap();
    match &report.transports[0].outcome {
        RevokeOutcome::Failed { error, .. } => assert!(error.contains("403"), "{error}"),
        other => panic!("an end user invoked the grant function: {other:?}"),
    }
    // The publisher, but a function the stack does not run.
    let unknown = Publisher::builder()
        .iot(&s.iot_url, PREFIX)
        .iot_grant_function("someone-elses-function")
        .lambda_endpoint(&s.aws_url)
        .credentials(SharedCredentialsProvider::new(s.publisher_keys()))
        .region(REGION)
        .max_attempts(1)
        .build()
        .unwrap();
    let report = unknown
        .revoke(&user_sub("dave"), &["team-a"])
        .await
        .unwrap();
    assert!(
        matches!(&report.transports[0].outcome, RevokeOutcome::Failed { .. }),
        "{report:?}"
    );
    let log = s.decisions.lock().unwrap().clone();
    let refused = log
        .iter()
        .filter(|d| d["action"] == "lambda:InvokeFunction" && d["outcome"] == "refused")
        .count();
    assert_eq!(refused, 3, "{log:?}");
}
