//! The GraphQL subscriber against a local server speaking AppSync's realtime protocol
//! (<https://docs.aws.amazon.com/appsync/latest/devguide/real-time-websocket-client.html>): the
//! edges a real service rarely shows on demand. The server requires the `graphql-ws` subprotocol,
//! records every connection URI, `start` and `stop`, refuses (`error`) any `start` whose
//! `onlyGroups` holds a group beginning with `refused`, and does what the test tells it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use groupcast::subscribe::graphql::GraphqlSubscriber;
use groupcast::subscribe::{ConnectionState, SubscribeError, SubscriptionEvent};
use groupcast::{Authorizer, Envelope};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use uuid::Uuid;

use crate::{creds, fast_reconnect, next_message, no_message, python, until};

#[derive(Debug, Clone)]
enum Rec {
    Connect {
        uri: String,
    },
    Start {
        id: String,
        data: serde_json::Value,
        raw: String,
        authorization: serde_json::Value,
    },
    Stop {
        id: String,
    },
}

enum Cmd {
    /// `data` carrying this `subscribe` object, to every started id.
    Data(serde_json::Value),
    /// A raw text frame.
    Raw(String),
    /// A raw text frame, `{id}` replaced by the id of the n-th start of this connection.
    ToStart(usize, String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// Drop the TCP connection.
    Drop,
}

struct Server {
    port: u16,
    log: Arc<Mutex<Vec<Rec>>>,
    current: Arc<Mutex<Option<mpsc::UnboundedSender<Cmd>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// `timeout_ms`: the `connectionTimeoutMs` of `connection_ack`; `ka`: how often to send `ka`.
    // tungstenite's handshake callback returns its (large) ErrorResponse by value.
    #[allow(clippy::result_large_err)]
    async fn start(timeout_ms: u64, ka: Option<Duration>) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let log: Arc<Mutex<Vec<Rec>>> = Arc::default();
        let current: Arc<Mutex<Option<mpsc::UnboundedSender<Cmd>>>> = Arc::default();
        let (l, c) = (log.clone(), current.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (l, c) = (l.clone(), c.clone());
                tokio::spawn(async move {
                    let uri = Arc::new(Mutex::new(String::new()));
                    let u = uri.clone();
                    let callback = move |req: &Request, mut resp: Response| {
                        *u.lock().unwrap() = req.uri().to_string();
                        let offered = req
                            .headers()
                            .get("sec-websocket-protocol")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default();
                        if !offered.split(',').any(|p| p.trim() == "graphql-ws") {
                            let mut refuse = tokio_tungstenite::tungstenite::handshake::server::ErrorResponse::new(None);
                            *refuse.status_mut() = http::StatusCode::BAD_REQUEST;
                            return Err(refuse);
                        }
                        resp.headers_mut()
                            .insert("sec-websocket-protocol", "graphql-ws".parse().unwrap());
                        Ok(resp)
                    };
                    let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                        return;
                    };
                    l.lock().unwrap().push(Rec::Connect {
                        uri: uri.lock().unwrap().clone(),
                    });
                    let (tx, mut cmds) = mpsc::unbounded_channel();
                    *c.lock().unwrap() = Some(tx);
                    let (mut sink, mut stream) = ws.split();
                    let mut started: Vec<String> = Vec::new();
                    let mut ka_tick =
                        tokio::time::interval(ka.unwrap_or(Duration::from_secs(3600)));
                    loop {
                        tokio::select! {
                            _ = ka_tick.tick(), if ka.is_some() => {
                                if sink.send(Frame::text(r#"{"type":"ka"}"#)).await.is_err() { return; }
                            }
                            cmd = cmds.recv() => {
                                let frames: Vec<Frame> = match cmd {
                                    None | Some(Cmd::Drop) => return,
                                    Some(Cmd::Raw(t)) => vec![Frame::text(t)],
                                    Some(Cmd::Binary(b)) => vec![Frame::binary(b)],
                                    Some(Cmd::ToStart(n, t)) => started.get(n).map(|id| Frame::text(t.replace("{id}", id))).into_iter().collect(),
                                    Some(Cmd::Data(v)) => started.iter().map(|id| Frame::text(serde_json::json!({
                                        "type": "data", "id": id, "payload": {"data": {"subscribe": v}}
                                    }).to_string())).collect(),
                                };
                                for f in frames {
                                    if sink.send(f).await.is_err() { return; }
                                }
                            }
                            frame = stream.next() => {
                                let Some(Ok(Frame::Text(t))) = frame else {
                                    if matches!(frame, Some(Ok(_))) { continue; }
                                    return;
                                };
                                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                                let reply = match v["type"].as_str() {
                                    Some("connection_init") => Some(serde_json::json!({"type": "connection_ack", "payload": {"connectionTimeoutMs": timeout_ms}})),
                                    Some("start") => {
                                        let id = v["id"].as_str().unwrap_or_default().to_owned();
                                        let raw = v["payload"]["data"].as_str().unwrap_or("null").to_owned();
                                        let data: serde_json::Value = serde_json::from_str(&raw).unwrap_or_default();
                                        let refused = data["variables"]["onlyGroups"].as_array().is_some_and(|gs| gs.iter().any(|g| g.as_str().is_some_and(|g| g.starts_with("refused"))));
                                        l.lock().unwrap().push(Rec::Start { id: id.clone(), data, raw, authorization: v["payload"]["extensions"]["authorization"].clone() });
                                        if refused {
                                            Some(serde_json::json!({"type": "error", "id": id, "payload": {"errors": [{"errorType": "Unauthorized", "message": "not a member"}], "data": {"subscribe": null}}}))
                                        } else {
                                            started.push(id.clone());
                                            Some(serde_json::json!({"type": "start_ack", "id": id}))
                                        }
                                    }
                                    Some("stop") => {
                                        let id = v["id"].as_str().unwrap_or_default().to_owned();
                                        started.retain(|s| *s != id);
                                        l.lock().unwrap().push(Rec::Stop { id: id.clone() });
                                        Some(serde_json::json!({"type": "complete", "id": id}))
                                    }
                                    _ => None,
                                };
                                if let Some(r) = reply
                                    && sink.send(Frame::text(r.to_string())).await.is_err()
                                {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Server {
            port,
            log,
            current,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/graphql", self.port)
    }

    fn send(&self, cmd: Cmd) {
        if let Some(tx) = self.current.lock().unwrap().as_ref() {
            let _ = tx.send(cmd);
        }
    }

    fn log(&self) -> Vec<Rec> {
        self.log.lock().unwrap().clone()
    }

    fn starts(&self) -> Vec<(String, serde_json::Value, serde_json::Value)> {
        self.log()
            .into_iter()
            .filter_map(|r| match r {
                Rec::Start {
                    id,
                    data,
                    authorization,
                    ..
                } => Some((id, data, authorization)),
                _ => None,
            })
            .collect()
    }

    fn connects(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter_map(|r| match r {
                Rec::Connect { uri } => Some(uri),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn subscriber(server: &Server, max_groups: usize) -> GraphqlSubscriber {
    GraphqlSubscriber::builder()
        .url(server.url())
        .authorizer(Authorizer::api_key("da2-test"))
        .max_groups(max_groups)
        .reconnect_policy(fast_reconnect())
        .build()
        .unwrap()
}

fn message(groups: &[&str], topic: &str) -> (Envelope, serde_json::Value) {
    let e = Envelope {
        id: Uuid::new_v4(),
        topic: topic.into(),
        data: serde_json::json!({"text": "hi", "n": [1, 2]}),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    };
    let wire = serde_json::json!({
        "uuid": e.id.to_string(), "topic": e.topic, "data": e.data.to_string(), "groups": e.groups,
    });
    (e, wire)
}

fn groups(names: &[&str]) -> Vec<String> {
    names.iter().map(|g| (*g).to_owned()).collect()
}

async fn active(sub: &mut groupcast::subscribe::Subscription) {
    until(sub, 10, "Active", |e| {
        matches!(e, SubscriptionEvent::Active)
    })
    .await;
}

#[tokio::test]
async fn groups_beyond_the_maximum_become_starts_that_partition_them_merged_once_per_message() {
    let server = Server::start(300_000, None).await;
    let s = subscriber(&server, 3);
    let gs = groups(&["g0", "g1", "g2", "g3", "g4", "g5", "g6"]);
    let mut sub = s.subscribe("chat/", Some(&gs)).await.unwrap();
    active(&mut sub).await;
    let starts = server.starts();
    assert_eq!(starts.len(), 3);
    let mut seen = Vec::new();
    for (_, data, _) in &starts {
        assert_eq!(
            data["query"],
            groupcast::subscribe::graphql::SUBSCRIPTION_QUERY
        );
        assert_eq!(data["variables"]["prefix"], "chat/");
        let only: Vec<String> =
            serde_json::from_value(data["variables"]["onlyGroups"].clone()).unwrap();
        assert!(only.len() <= 3, "{only:?}");
        seen.extend(only);
    }
    seen.sort();
    assert_eq!(seen, gs, "the starts' onlyGroups partition the groups");

    // Sent on all three parts; two of them hold one of its groups: reported once.
    let (e1, w1) = message(&["g0", "g3"], "chat/1");
    server.send(Cmd::Data(w1));
    // The server should have filtered these: none of our groups, or outside the prefix.
    let (_, foreign) = message(&["zzz"], "chat/2");
    server.send(Cmd::Data(foreign));
    let (_, outside) = message(&["g6"], "other/3");
    server.send(Cmd::Data(outside));
    let (e4, w4) = message(&["g6"], "chat/4");
    server.send(Cmd::Data(w4));
    let m1 = next_message(&mut sub, 5, "the message to g0 and g3").await;
    assert_eq!(m1.envelope, e1);
    assert!(
        m1.part == "g0,g1,g2" || m1.part == "g3,g4,g5",
        "{}",
        m1.part
    );
    assert_eq!(
        next_message(&mut sub, 5, "the message to g6")
            .await
            .envelope,
        e4
    );
    no_message(&mut sub, 300).await;
}

#[tokio::test]
async fn a_refused_part_ends_alone_with_a_typed_error_and_its_siblings_keep_receiving() {
    let server = Server::start(300_000, None).await;
    let s = subscriber(&server, 1);
    let mut sub = s
        .subscribe("", Some(&groups(&["a", "refused-x", "b"])))
        .await
        .unwrap();
    let ended = until(&mut sub, 5, "the refused part", |e| {
        matches!(e, SubscriptionEvent::PartEnded { .. })
    })
    .await;
    match ended {
        SubscriptionEvent::PartEnded { part, error } => {
            assert_eq!(part, "refused-x");
            assert_eq!(
                error,
                SubscribeError::Unauthorized {
                    part: "refused-x".into(),
                    message: "Unauthorized: not a member".into()
                }
            );
        }
        other => panic!("{other:?}"),
    }
    active(&mut sub).await;
    let (e, w) = message(&["b"], "t");
    server.send(Cmd::Data(w));
    let m = next_message(&mut sub, 5, "b's message").await;
    assert_eq!((m.envelope, m.part.as_str()), (e, "b"));
}

#[tokio::test]
async fn dropping_the_subscription_sends_stop_for_every_part() {
    let server = Server::start(300_000, None).await;
    let s = subscriber(&server, 2);
    let mut sub = s
        .subscribe("", Some(&groups(&["a", "b", "c"])))
        .await
        .unwrap();
    active(&mut sub).await;
    let ids: Vec<String> = server.starts().into_iter().map(|(id, _, _)| id).collect();
    assert_eq!(ids.len(), 2);
    drop(sub);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stopped: Vec<String> = server
            .log()
            .into_iter()
            .filter_map(|r| match r {
                Rec::Stop { id } => Some(id),
                _ => None,
            })
            .collect();
        if ids.iter().all(|id| stopped.contains(id)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no stop for every part: {stopped:?} of {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn after_the_server_drops_the_connection_every_part_is_restarted_and_messages_flow_again() {
    let server = Server::start(300_000, None).await;
    let s = subscriber(&server, 1);
    let mut states = s.states();
    let mut sub = s.subscribe("", Some(&groups(&["a", "b"]))).await.unwrap();
    active(&mut sub).await;
    server.send(Cmd::Drop);
    until(&mut sub, 5, "a backoff", |e| {
        matches!(e, SubscriptionEvent::State(ConnectionState::Backoff { .. }))
    })
    .await;
    active(&mut sub).await;
    assert_eq!(*states.borrow_and_update(), ConnectionState::Connected);
    assert_eq!(server.connects().len(), 2);
    let starts = server.starts();
    assert_eq!(starts.len(), 4, "both parts started again");
    assert_ne!(starts[0].0, starts[2].0, "with new ids");
    let (e, w) = message(&["a"], "t");
    server.send(Cmd::Data(w));
    assert_eq!(
        next_message(&mut sub, 5, "a message after the reconnect")
            .await
            .envelope,
        e
    );
}

#[tokio::test]
async fn a_missed_keep_alive_counts_as_a_lost_connection() {
    let server = Server::start(300, None).await;
    let s = subscriber(&server, 10);
    let mut sub = s.subscribe("", None).await.unwrap();
    active(&mut sub).await;
    until(&mut sub, 5, "a backoff", |e| {
        matches!(e, SubscriptionEvent::State(ConnectionState::Backoff { .. }))
    })
    .await;
    active(&mut sub).await;
    assert!(server.connects().len() >= 2);
}

#[tokio::test]
async fn keep_alives_within_the_timeout_keep_the_connection() {
    let server = Server::start(400, Some(Duration::from_millis(100))).await;
    let s = subscriber(&server, 10);
    let mut sub = s.subscribe("", None).await.unwrap();
    active(&mut sub).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(server.connects().len(), 1);
    let (e, w) = message(&["a"], "t");
    server.send(Cmd::Data(w));
    assert_eq!(next_message(&mut sub, 5, "a message").await.envelope, e);
}

#[tokio::test]
async fn an_invalidated_part_ends_with_a_typed_error_and_is_not_restarted_after_a_reconnect() {
    let server = Server::start(300_000, None).await;
    let s = subscriber(&server, 1);
    let mut sub = s.subscribe("", Some(&groups(&["a", "b"]))).await.unwrap();
    active(&mut sub).await;
    let first = server.starts()[0].clone();
    let first_groups = first.1["variables"]["onlyGroups"][0]
        .as_str()
        .unwrap()
        .to_owned();
    server.send(Cmd::ToStart(
        0,
        r#"{"id":"{id}","type":"data","payload":{"message":"Subscription complete."}}"#.into(),
    ));
    let ended = until(&mut sub, 5, "the invalidation", |e| {
        matches!(e, SubscriptionEvent::PartEnded { .. })
    })
    .await;
    match ended {
        SubscriptionEvent::PartEnded { part, error } => {
            assert_eq!(part, first_groups);
            assert!(
                matches!(error, SubscribeError::Invalidated { .. }),
                "{error:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // AppSync closes the socket after an invalidation: the other part comes back, this one not.
    server.send(Cmd::Drop);
    until(&mut sub, 5, "a backoff", |e| {
        matches!(e, SubscriptionEvent::State(ConnectionState::Backoff { .. }))
    })
    .await;
    active(&mut sub).await;
    let starts = server.starts();
    assert_eq!(starts.len(), 3, "only the other part restarts: {starts:?}");
    assert_ne!(
        starts[2].1["variables"]["onlyGroups"][0],
        first_groups.as_str()
    );
}

#[tokio::test]
async fn an_invalidation_naming_no_subscription_ends_every_part() {
    let server = Server::start(300_000, None).await;
    let s = subscriber(&server, 1);
    let mut sub = s.subscribe("", Some(&groups(&["a", "b"]))).await.unwrap();
    active(&mut sub).await;
    server.send(Cmd::Raw(r#"{"message":"Subscription complete."}"#.into()));
    for _ in 0..2 {
        let e = until(&mut sub, 5, "an ended part", |e| {
            matches!(e, SubscriptionEvent::PartEnded { .. })
        })
        .await;
        assert!(
            matches!(
                e,
                SubscriptionEvent::PartEnded {
                    error: SubscribeError::Invalidated { .. },
                    ..
                }
            ),
            "{e:?}"
        );
    }
    let end = tokio::time::timeout(Duration::from_secs(2), async {
        while sub.next_event().await.is_some() {}
    })
    .await;
    assert!(
        end.is_ok(),
        "the subscription ends when every part has ended"
    );
}

#[tokio::test]
async fn garbage_frames_are_ignored_and_the_subscription_keeps_receiving() {
    let server = Server::start(300_000, None).await;
    let s = subscriber(&server, 10);
    let mut sub = s.subscribe("", Some(&groups(&["a"]))).await.unwrap();
    active(&mut sub).await;
    let id = Uuid::new_v4().to_string();
    for raw in [
        "not json".to_owned(),
        "[1,2,3]".to_owned(),
        "null".to_owned(),
        r#"{"type":5,"id":[]}"#.to_owned(),
        r#"{"type":"data","id":"unknown-id","payload":{"data":{"subscribe":{}}}}"#.to_owned(),
        r#"{"type":"start_ack"}"#.to_owned(),
        r#"{"type":"error"}"#.to_owned(),
        "\u{0}\u{1}".to_owned(),
        "x".repeat(100_000),
    ] {
        server.send(Cmd::Raw(raw));
    }
    for payload in [
        r#"{"data":null}"#.to_owned(),
        r#"{"data":{"subscribe":{"uuid":"not-a-uuid","topic":"t","data":"1","groups":["a"]}}}"#
            .to_owned(),
        format!(
            r#"{{"data":{{"subscribe":{{"uuid":"{id}","topic":"t","data":"{{broken","groups":["a"]}}}}}}"#
        ),
        format!(
            r#"{{"data":{{"subscribe":{{"uuid":"{id}","topic":7,"data":"1","groups":"a"}}}}}}"#
        ),
        "17".to_owned(),
    ] {
        server.send(Cmd::ToStart(
            0,
            format!(r#"{{"type":"data","id":"{{id}}","payload":{payload}}}"#),
        ));
    }
    server.send(Cmd::Binary(vec![0xff, 0x00, 0x13]));
    let (e, w) = message(&["a"], "t");
    server.send(Cmd::Data(w));
    assert_eq!(
        next_message(&mut sub, 5, "the good message").await.envelope,
        e
    );
    assert_eq!(
        server.connects().len(),
        1,
        "garbage does not cost the connection"
    );
}

#[tokio::test]
async fn close_stops_every_part_ends_the_streams_and_refuses_new_subscriptions() {
    let server = Server::start(300_000, None).await;
    let s = subscriber(&server, 10);
    let mut sub = s.subscribe("", None).await.unwrap();
    active(&mut sub).await;
    s.close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !server.log().iter().any(|r| matches!(r, Rec::Stop { .. })) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "close() sent no stop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let end = tokio::time::timeout(Duration::from_secs(2), async {
        while sub.next_event().await.is_some() {}
    })
    .await;
    assert!(end.is_ok());
    assert_eq!(
        s.subscribe("", None).await.unwrap_err(),
        SubscribeError::Closed
    );
    assert_eq!(*s.states().borrow(), ConnectionState::Closed);
}

#[tokio::test]
async fn the_api_key_travels_in_the_header_parameter_and_in_every_start() {
    let server = Server::start(300_000, None).await;
    let s = subscriber(&server, 10);
    let mut sub = s.subscribe("", None).await.unwrap();
    active(&mut sub).await;
    let uri = &server.connects()[0];
    let q: HashMap<String, String> = reqwest::Url::parse(&format!("http://x{uri}"))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["payload"], "e30=");
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(&q["header"])
            .unwrap(),
    )
    .unwrap();
    let expected =
        serde_json::json!({"host": format!("127.0.0.1:{}", server.port), "x-api-key": "da2-test"});
    assert_eq!(header, expected);
    assert_eq!(server.starts()[0].2, expected);
}

#[tokio::test]
async fn iam_signatures_of_the_connection_and_of_each_start_are_verified_by_botocore() {
    let server = Server::start(300_000, None).await;
    let s = GraphqlSubscriber::builder()
        .url(server.url())
        .region("eu-west-1")
        .authorizer(Authorizer::iam(creds(Some("session-token"))))
        .reconnect_policy(fast_reconnect())
        .build()
        .unwrap();
    let mut sub = s.subscribe("chat/", Some(&groups(&["a"]))).await.unwrap();
    active(&mut sub).await;
    let uri = &server.connects()[0];
    let q: HashMap<String, String> = reqwest::Url::parse(&format!("http://x{uri}"))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(&q["header"])
            .unwrap(),
    )
    .unwrap();
    let (_, _, authorization) = server.starts()[0].clone();
    // The start's signed body is its `data` text exactly as sent.
    let data_text = server
        .log()
        .into_iter()
        .find_map(|r| match r {
            Rec::Start { raw, .. } => Some(raw),
            _ => None,
        })
        .unwrap();
    let as_headers = |o: &serde_json::Value| -> Vec<(String, String)> {
        o.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect()
    };
    let input = serde_json::json!({
        "access_key": crate::ACCESS_KEY,
        "secret_key": crate::SECRET_KEY,
        "requests": [
            {"method": "POST", "target": "/graphql/connect", "headers": as_headers(&header), "body": "{}"},
            {"method": "POST", "target": "/graphql", "headers": as_headers(&authorization), "body": data_text},
        ],
    });
    let path = std::env::temp_dir().join(format!("gc-gql-sigv4-{}.json", Uuid::new_v4()));
    std::fs::write(&path, input.to_string()).unwrap();
    let out = std::process::Command::new(python())
        .arg(crate::repo_root().join("functions/groupcast/tests/verify_sigv4.py"))
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    for v in &verdicts {
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["service"], "appsync");
        assert_eq!(v["region"], "eu-west-1");
    }
    assert_eq!(header["X-Amz-Security-Token"], "session-token");
}
