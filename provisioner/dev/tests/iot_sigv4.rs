//! The IoT endpoints with the core's real SigV4 verification: groupcast's `IotSubscriber` signs
//! its WSS URL with local identity-pool credentials (as `GetCredentialsForIdentity` issues them),
//! and groupcast's `Publisher` publishes over its IoT transport (`POST /topics/{topic}?qos=1`,
//! `iotdata`) with the stack's publisher key pair; a tampered URL is refused; groupcast-auth's real
//! grant attaches through the stack's AWS port (aws-sdk-iot, SigV4 for `iot`) with the publisher
//! key, and an end user's identity-pool credentials may not attach.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use groupcast::subscribe::iot::{IotSubscriber, presigned_url};
use groupcast::{Message, Publisher, Transport};
use groupcast_dev::auth::Authenticator;
use groupcast_dev::aws::AwsRequest;
use groupcast_dev::identity::{self, Issuer};
use groupcast_dev::iot::{self, control};
use groupcast_dev::log::DecisionLog;
use groupcast_dev::system::{IotAuth, IotSystem, System};
use groupcast_dev::{Ports, Stack};
use serde_json::json;
use uuid::Uuid;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";

fn policy(group: &str) -> String {
    let arn = format!("arn:aws:iot:{REGION}:{ACCOUNT}:");
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": [
            format!("{arn}client/${{cognito-identity.amazonaws.com:sub}}"),
            format!("{arn}client/${{cognito-identity.amazonaws.com:sub}}-*")]},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": format!("{arn}topicfilter/groupcast/{group}/*")},
        {"Effect": "Allow", "Action": "iot:Receive", "Resource": format!("{arn}topic/groupcast/{group}/*")}]})
    .to_string()
}

struct Fixture {
    stack: Arc<Stack>,
    port: u16,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start() -> Fixture {
    let dir = std::env::temp_dir().join(format!("gc-dev-iots-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut system = System {
        project: "acme".into(),
        region: REGION.into(),
        account_id: ACCOUNT.into(),
        iot: Some(IotSystem {
            grant_function: None,
            refresh_cap: None,
            topic_prefix: "groupcast".into(),
            policies: ["team-a", "team-b"]
                .iter()
                .map(|g| (format!("acme-{g}"), policy(g)))
                .collect(),
            group_policies: BTreeMap::new(),
            auth: IotAuth::Attachment,
        }),
        ..System::default()
    };
    system.publisher_principals = vec![groupcast_dev::auth::publisher_arn(&system)];
    let system = Arc::new(system);
    let issuer = Arc::new(
        Issuer::load_or_create(&dir, "https://127.0.0.1:4514/local", "local-client").unwrap(),
    );
    let auth = Authenticator::new(system.clone(), issuer, &dir).unwrap();
    let stack = Arc::new(Stack {
        system,
        auth,
        log: DecisionLog::capture().0,
        tls: None,
        state_dir: dir,
        ports: Ports::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(iot::serve_wss(listener, stack.clone()));
    Fixture { stack, port, task }
}

impl Fixture {
    fn attach(&self, policy: &str, target: &str) {
        let r = control::answer(
            &self.stack,
            &AwsRequest {
                method: "PUT".into(),
                path: format!("/target-policies/{policy}"),
                query: String::new(),
                headers: BTreeMap::new(),
                body: json!({ "target": target }).to_string().into_bytes(),
            },
            "test",
        );
        assert_eq!(r.status, 200);
    }

    fn identity_credentials(&self, user: &str) -> (String, Credentials) {
        let id = identity::identity_id(REGION, user);
        let c = self
            .stack
            .auth
            .identity_pool()
            .unwrap()
            .credentials_for(&id, Duration::from_secs(3600))
            .unwrap();
        (
            id,
            Credentials::new(
                c.access_key_id,
                c.secret_access_key,
                Some(c.session_token),
                None,
                "local",
            ),
        )
    }

    fn publisher(&self) -> Publisher {
        let kp = identity::publisher_credentials(&self.stack.state_dir).unwrap();
        Publisher::builder()
            .iot(format!("http://127.0.0.1:{}", self.port), "groupcast")
            .region(REGION)
            .credentials(SharedCredentialsProvider::new(Credentials::new(
                kp.access_key_id,
                kp.secret_access_key,
                None,
                None,
                "local",
            )))
            .transports([Transport::Iot])
            .build()
            .unwrap()
    }
}

#[tokio::test]
async fn a_member_receives_what_groupcasts_publisher_sends_to_its_group_with_real_sigv4_on_both_sides()
 {
    let f = start().await;
    let (alice, creds) = f.identity_credentials("alice");
    f.attach("acme-team-a", &alice);
    let sub = IotSubscriber::builder()
        .endpoint(format!("ws://127.0.0.1:{}/mqtt", f.port))
        .region(REGION)
        .credentials(SharedCredentialsProvider::new(creds))
        .client_id(&alice)
        .topic_prefix("groupcast")
        .build()
        .unwrap();
    let mut s = sub.subscribe_groups(&["team-a"], "news").await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), s.next_event())
            .await
            .unwrap()
        {
            Some(groupcast::subscribe::SubscriptionEvent::Active) => break,
            Some(groupcast::subscribe::SubscriptionEvent::PartEnded { error, .. }) => {
                panic!("{error}")
            }
            Some(_) => {}
            None => panic!("ended"),
        }
    }
    let msg = Message::builder("news")
        .data(json!({"hello": 1}))
        .groups(["team-a", "team-b"])
        .build()
        .unwrap();
    let report = f.publisher().publish(&msg).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    let got = tokio::time::timeout(Duration::from_secs(5), s.next_message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.envelope.data, json!({"hello": 1}));
    sub.close().await;
}

#[tokio::test]
async fn a_tampered_presigned_url_and_another_identitys_client_id_are_refused() {
    let f = start().await;
    let (alice, creds) = f.identity_credentials("alice");
    f.attach("acme-team-a", &alice);
    let url = presigned_url(
        &format!("ws://127.0.0.1:{}/mqtt", f.port),
        &creds,
        REGION,
        SystemTime::now(),
    )
    .unwrap();
    let tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0");
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(tampered)
            .unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", "mqtt".parse().unwrap());
    let e = tokio_tungstenite::connect_async(req)
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("403"), "{e}");
}

/// An aws-sdk-iot client on the stack's AWS port signing with `creds`.
fn iot_sdk(port: u16, creds: Credentials) -> aws_sdk_iot::Client {
    let config = aws_sdk_iot::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_iot::config::Region::new(REGION))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .credentials_provider(creds)
        .build();
    aws_sdk_iot::Client::from_conf(config)
}

#[tokio::test]
async fn the_real_grant_through_the_aws_port_attaches_with_the_publisher_key_and_refuses_an_end_user()
 {
    use aws_sdk_iot::error::ProvideErrorMetadata;
    use groupcast_auth::grant::{GrantRules, apply, plan};
    let f = start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let aws = tokio::spawn(groupcast_dev::aws::serve(listener, f.stack.clone()));
    let (alice, alice_creds) = f.identity_credentials("alice");
    let kp = identity::publisher_credentials(&f.stack.state_dir).unwrap();
    let admin = iot_sdk(
        port,
        Credentials::new(kp.access_key_id, kp.secret_access_key, None, None, "local"),
    );
    let rules =
        GrantRules::new("acme", "acme-{group}", &["team-a".into(), "team-b".into()]).unwrap();
    let g = plan(&admin, &rules, &alice, &["team-a".into()])
        .await
        .unwrap();
    let g = apply(&admin, g).await.unwrap();
    assert_eq!(g.attached, ["acme-team-a"]);
    assert_eq!(
        iot::state::of(&f.stack.state_dir).attached(&alice),
        ["acme-team-a"]
    );

    // alice's own identity-pool credentials cannot attach team-b to herself.
    let e = iot_sdk(port, alice_creds)
        .attach_policy()
        .policy_name("acme-team-b")
        .target(&alice)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("UnauthorizedException"));
    assert_eq!(
        iot::state::of(&f.stack.state_dir).attached(&alice),
        ["acme-team-a"]
    );
    aws.abort();
}
