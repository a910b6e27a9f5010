//! The Events endpoint with the stack's real authenticator (`Authenticator::new`): ID tokens
//! minted by the local issuer, SigV4 publishes signed by groupcast's publisher with the stack's
//! publisher key pair (`publisher_credentials`), over HTTP and over the WebSocket. The handler is
//! the rendered `events/live.js` (tests/rendered) with its Cognito issuer list pointed at the local issuer, as
//! `provisioner dev` must render it (AppSync puts the verified token's issuer in
//! `ctx.identity.issuer`, and the handler admits only the issuers it was rendered with).

mod rendered;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_credential_types::Credentials;
use groupcast::subscribe::events::EventsSubscriber;
use groupcast::subscribe::{ReconnectPolicy, SubscriptionEvent};
use groupcast::{Authorizer, Message, Publisher, StaticToken, Transport};
use groupcast_dev::auth::Authenticator;
use groupcast_dev::events::{Options, serve_with};
use groupcast_dev::identity::{Issuer, publisher_credentials};
use groupcast_dev::log::DecisionLog;
use groupcast_dev::system::{AuthMode, EventsSystem, Namespace, System};
use groupcast_dev::{Ports, Stack};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const ISSUER_URL: &str = "https://127.0.0.1:4514/us-east-1_Local";
const STEP: Duration = Duration::from_secs(5);

struct Endpoint {
    port: u16,
    dir: PathBuf,
    issuer: Arc<Issuer>,
    log: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Endpoint {
    fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn ws(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
    fn token(&self, user: &str, groups: &[&str]) -> String {
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        self.issuer
            .mint(user, &groups, Duration::from_secs(3600))
            .unwrap()
    }
    fn publisher(&self, over_ws: bool) -> Publisher {
        let keys = publisher_credentials(&self.dir).unwrap();
        let credentials = Credentials::new(
            keys.access_key_id,
            keys.secret_access_key,
            None,
            None,
            "groupcast-dev",
        );
        let mut b = Publisher::builder()
            .events(self.http(), "live")
            .region("us-east-1")
            .events_authorizer(Authorizer::iam(credentials))
            .max_attempts(1);
        if over_ws {
            b = b
                .events_realtime(self.ws())
                .transports([Transport::EventsWs]);
        }
        b.build().unwrap()
    }
    fn subscriber(&self, token: String) -> EventsSubscriber {
        EventsSubscriber::builder()
            .realtime_url(self.ws())
            .http_host(self.http())
            .namespace("live")
            .authorizer(Authorizer::token(StaticToken(token)))
            .reconnect(ReconnectPolicy {
                base: Duration::from_millis(20),
                max: Duration::from_millis(200),
            })
            .build()
            .unwrap()
    }
}

async fn start() -> Endpoint {
    let dir = std::env::temp_dir().join(format!("groupcast-dev-events-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let handler = rendered::events_handler("live")
        .lines()
        .map(|l| {
            if l.starts_with("const COGNITO_ISSUERS = ") {
                format!("const COGNITO_ISSUERS = {};", json!([ISSUER_URL]))
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let system = Arc::new(System {
        project: "acme-live".into(),
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        events: Some(EventsSystem {
            name: "acme-live-events".into(),
            connection_auth_modes: vec![AuthMode::Cognito, AuthMode::Iam],
            namespaces: vec![Namespace {
                name: "live".into(),
                handler_js: handler,
                publish_auth_modes: vec![AuthMode::Iam],
                subscribe_auth_modes: vec![AuthMode::Cognito],
                epoch_seconds: None,
            }],
        }),
        ..Default::default()
    });
    let issuer = Arc::new(Issuer::load_or_create(&dir, ISSUER_URL, "client").unwrap());
    let auth = Authenticator::new(system.clone(), issuer.clone(), &dir).unwrap();
    let (log, lines) = DecisionLog::capture();
    let stack = Arc::new(Stack {
        system,
        auth,
        log,
        tls: None,
        state_dir: dir.clone(),
        ports: Ports::default(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(serve_with(listener, stack, Options::default()));
    Endpoint {
        port,
        dir,
        issuer,
        log: lines,
        task,
    }
}

fn message(group: &str, n: u32) -> Message {
    Message::builder("chat")
        .group(group)
        .data(json!({"n": n}))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_minted_token_subscribes_to_its_own_group_and_sigv4_publishes_over_http_and_websocket_reach_it()
 {
    let ep = start().await;
    let alice = ep.subscriber(ep.token("alice", &["team-a"]));
    let mut sub = alice
        .subscribe_groups(&["team-a", "team-b"], "chat")
        .await
        .unwrap();
    let mut ended = Vec::new();
    loop {
        match tokio::time::timeout(STEP, sub.next_event()).await.unwrap() {
            Some(SubscriptionEvent::Active) => break,
            Some(SubscriptionEvent::PartEnded { part, .. }) => ended.push(part),
            Some(_) => {}
            None => panic!("ended; decisions {:?}", ep.log.lock().unwrap()),
        }
    }
    assert_eq!(ended, ["/live/team-b/chat"]);
    for (n, over_ws) in [(1, false), (2, true)] {
        let report = ep
            .publisher(over_ws)
            .publish(&message("team-a", n))
            .await
            .unwrap();
        assert!(
            report.deliveries.iter().all(|d| d.outcome.is_delivered()),
            "{report:?}; decisions {:?}",
            ep.log.lock().unwrap()
        );
        loop {
            match tokio::time::timeout(STEP, sub.next_event()).await.unwrap() {
                Some(SubscriptionEvent::Message(m)) => {
                    assert_eq!(m.envelope.data, json!({"n": n}));
                    break;
                }
                Some(SubscriptionEvent::PartEnded { part, error }) => panic!("{part}: {error}"),
                Some(_) => {}
                None => panic!("ended"),
            }
        }
    }
    let admitted = ep.log.lock().unwrap().clone();
    assert!(
        admitted.iter().any(|d| d["action"] == "publish"
            && d["outcome"] == "admitted"
            && d["principal"]
                == "arn:aws:sts::123456789012:assumed-role/acme-live-publisher/local"),
        "{admitted:?}"
    );
    alice.close().await;
}

#[tokio::test]
async fn a_users_token_cannot_publish_and_a_tampered_signature_or_an_expired_token_is_refused() {
    let ep = start().await;
    let body = r#"{"channel":"/live/team-a/chat","events":["{\"n\":1}"]}"#;
    let http = reqwest::Client::new();
    let post = |auth: String| {
        http.post(format!("{}/event", ep.http()))
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let resp = post(ep.token("alice", &["team-a"])).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["x-amzn-errortype"], "UnauthorizedException");

    let forged = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260101/us-east-1/appsync/aws4_request, SignedHeaders=host;x-amz-date, Signature=00";
    let resp = http
        .post(format!("{}/event", ep.http()))
        .header("authorization", forged)
        .header("x-amz-date", "20260101T000000Z")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.headers()["x-amzn-errortype"],
        "InvalidSignatureException"
    );

    let expired = ep
        .issuer
        .mint_at(
            "alice",
            &["team-a".into()],
            Duration::from_secs(60),
            1_000_000_000,
        )
        .unwrap();
    let alice = ep.subscriber(expired);
    let mut sub = alice.subscribe_groups(&["team-a"], "chat").await.unwrap();
    loop {
        match tokio::time::timeout(STEP, sub.next_event()).await.unwrap() {
            Some(SubscriptionEvent::PartEnded { .. }) | None => break,
            Some(SubscriptionEvent::Active) => panic!("an expired token was admitted"),
            Some(_) => {}
        }
    }
    assert!(
        ep.log
            .lock()
            .unwrap()
            .iter()
            .any(|d| d["action"] == "connect" && d["outcome"] == "refused"),
    );
}
