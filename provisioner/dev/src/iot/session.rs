//! One MQTT 3.1.1 connection, over a WebSocket (binary frames, MQTT packets may span frames) or a
//! byte stream (TLS on TCP): CONNECT and its authorization, SUBSCRIBE / UNSUBSCRIBE / PUBLISH /
//! PINGREQ / DISCONNECT, deliveries from the [`super::broker::Broker`], the keep-alive.
//!
//! Packets are framed by `rumqttc::mqttbytes::v4` (the codec of the client the tree already
//! uses); anything it cannot frame, and every protocol violation (a second CONNECT, QoS 2, a
//! server-to-client packet, a wildcard in a PUBLISH topic), closes this connection only, with a
//! decision logged. QoS 0 and 1; every session is clean (a CONNECT asking for a persistent session
//! is answered `session present = 0` and keeps nothing after it ends).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use rumqttc::SubscribeReasonCode;
use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, Packet, PubAck, Publish, SubAck, UnsubAck,
};
use rumqttc::mqttbytes::{Error as CodecError, QoS};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as Frame;

use super::authorizer;
use super::broker::{Authority, Outbound, Principal, valid_filter, valid_topic};
use super::policy::Action;
use super::state::{self, IotState};
use crate::Stack;
use crate::log::{Decision, Outcome};

/// The largest packet accepted: IoT Core's 128 KB message payload plus topic and header
/// (https://docs.aws.amazon.com/general/latest/gr/iot-core.html, "Message broker").
pub const MAX_PACKET: usize = 132 * 1024;

/// How long a client has to send its CONNECT after the transport opened.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A byte stream the session can run over.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for T {}

/// The transport under the MQTT packets.
pub enum Io {
    /// MQTT over WebSocket: packets in binary frames.
    Ws(Box<WebSocketStream<Box<dyn ByteStream>>>),
    /// MQTT over a byte stream (TLS on TCP, or plain TCP in tests).
    Stream(Box<dyn ByteStream>),
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Io::Ws(_) => "Io::Ws",
            Io::Stream(_) => "Io::Stream",
        })
    }
}

impl Io {
    /// The next bytes from the client; `None` when the connection ended or failed. Cancel-safe.
    async fn read(&mut self) -> Option<Vec<u8>> {
        match self {
            Io::Ws(ws) => loop {
                match ws.next().await? {
                    Ok(Frame::Binary(b)) => return Some(b.to_vec()),
                    // MQTT over WebSocket is binary frames only (MQTT 3.1.1 §6.0); pings are
                    // answered by tungstenite.
                    Ok(Frame::Ping(_) | Frame::Pong(_) | Frame::Frame(_)) => {}
                    Ok(Frame::Text(_) | Frame::Close(_)) | Err(_) => return None,
                }
            },
            Io::Stream(s) => {
                let mut buf = vec![0u8; 16 * 1024];
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some(buf)
                    }
                }
            }
        }
    }

    async fn write(&mut self, packet: &Packet) -> std::io::Result<()> {
        let mut out = BytesMut::new();
        packet
            .write(&mut out, usize::MAX)
            .map_err(std::io::Error::other)?;
        match self {
            Io::Ws(ws) => ws
                .send(Frame::binary(out.freeze()))
                .await
                .map_err(std::io::Error::other),
            Io::Stream(s) => {
                s.write_all(&out).await?;
                s.flush().await
            }
        }
    }

    async fn close(&mut self) {
        match self {
            Io::Ws(ws) => {
                let _ = SinkExt::close(ws.as_mut()).await;
            }
            Io::Stream(s) => {
                let _ = s.shutdown().await;
            }
        }
    }
}

/// Who the transport already authenticated, before the CONNECT.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A SigV4-presigned WebSocket URL from a Cognito identity-pool credential.
    CognitoIdentity { identity_id: String },
    /// A WebSocket upgrade without SigV4 (custom-authorizer mode): its headers and query go to
    /// the authorizer.
    Token {
        headers: BTreeMap<String, String>,
        query: String,
    },
    /// Nobody yet: the CONNECT's username/password must authenticate (TLS on TCP).
    Unauthenticated,
}

/// A CONNECT the policies admitted.
struct Admitted {
    principal: Principal,
    /// Custom authorizer: when and with what to ask again, and when to disconnect.
    refresh: Option<(Duration, authorizer::Credentials)>,
    disconnect_after: Option<Duration>,
}

struct Session {
    stack: Arc<Stack>,
    state: Arc<IotState>,
    io: Io,
    buf: BytesMut,
}

impl Session {
    fn log(&self, action: &str, target: &str, who: Option<&str>, verdict: Result<(), &str>) {
        self.stack.log.decision(Decision {
            transport: "iot",
            action,
            target,
            principal: who,
            outcome: if verdict.is_ok() {
                Outcome::Admitted
            } else {
                Outcome::Refused
            },
            reason: verdict.err(),
        });
    }

    /// The next whole packet, reading as needed. `Err` names why the connection must close
    /// (malformed packet, connection ended).
    async fn next_packet(&mut self) -> Result<Packet, String> {
        loop {
            match Packet::read(&mut self.buf, MAX_PACKET) {
                Ok(p) => return Ok(p),
                Err(CodecError::InsufficientBytes(_)) => {}
                Err(e) => return Err(format!("malformed MQTT packet: {e}")),
            }
            match self.io.read().await {
                Some(bytes) => self.buf.extend_from_slice(&bytes),
                None => return Err("connection closed".into()),
            }
        }
    }
}

/// Runs one MQTT connection to its end. Never panics on the client's input; every refusal is
/// logged.
pub async fn run(io: Io, stack: Arc<Stack>, caller: Caller) {
    let state = state::of(&stack.state_dir);
    let mut s = Session {
        stack,
        state,
        io,
        buf: BytesMut::new(),
    };
    let connect = match tokio::time::timeout(CONNECT_TIMEOUT, s.next_packet()).await {
        Ok(Ok(Packet::Connect(c))) => c,
        Ok(Ok(other)) => {
            let why = format!(
                "the first packet must be CONNECT, got {:?}",
                packet_name(&other)
            );
            s.log("connect", "-", None, Err(&why));
            s.io.close().await;
            return;
        }
        Ok(Err(why)) => {
            if why != "connection closed" {
                s.log("connect", "-", None, Err(&why));
            }
            s.io.close().await;
            return;
        }
        Err(_) => {
            s.log("connect", "-", None, Err("no CONNECT within 10 s"));
            s.io.close().await;
            return;
        }
    };
    let client_id = connect.client_id.clone();
    let admitted = match authorize_connect(&s.stack, &s.state, &caller, &connect).await {
        Ok(a) => a,
        Err((code, why)) => {
            s.log("connect", &client_id, None, Err(&why));
            let _ =
                s.io.write(&Packet::ConnAck(ConnAck::new(code, false)))
                    .await;
            s.io.close().await;
            return;
        }
    };
    let principal = Arc::new(admitted.principal);
    let who = format!("{} ({client_id})", principal.name);
    s.log("connect", &client_id, Some(&principal.name), Ok(()));
    let (tx, mut rx) = mpsc::channel(super::broker::SESSION_QUEUE);
    let id = s.state.broker.register(&client_id, principal.clone(), tx);
    if s.io
        .write(&Packet::ConnAck(ConnAck::new(
            ConnectReturnCode::Success,
            false,
        )))
        .await
        .is_ok()
    {
        let timers = Timers {
            refresh: admitted.refresh,
            disconnect_at: admitted
                .disconnect_after
                .map(|d| tokio::time::Instant::now() + d),
        };
        let why = serve(
            &mut s,
            id,
            &principal,
            &who,
            connect.keep_alive,
            timers,
            &mut rx,
        )
        .await;
        if let Some(why) = why {
            s.log("disconnect", &client_id, Some(&who), Err(&why));
        }
    }
    s.state.broker.remove(id);
    s.io.close().await;
}

/// Who the CONNECT is, and whether `iot:Connect` on `client/{client id}` is allowed; or the
/// CONNACK code and the reason to refuse it.
async fn authorize_connect(
    stack: &Arc<Stack>,
    state: &IotState,
    caller: &Caller,
    connect: &Connect,
) -> Result<Admitted, (ConnectReturnCode, String)> {
    let refuse = |why: &str| (ConnectReturnCode::NotAuthorized, why.to_owned());
    let Some(iot) = stack.system.iot.as_ref() else {
        return Err(refuse("this stack serves no [iot]"));
    };
    if connect.client_id.is_empty() {
        // AWS IoT needs a client id the policy can name.
        return Err((
            ConnectReturnCode::BadClientId,
            "an empty client id is not accepted".into(),
        ));
    }
    let custom = matches!(iot.auth, crate::system::IotAuth::CustomAuthorizer { .. });
    let mut vars = BTreeMap::from([("iot:ClientId".to_owned(), connect.client_id.clone())]);
    let admitted = match (caller, custom) {
        (Caller::CognitoIdentity { identity_id }, false) => {
            vars.insert(
                "cognito-identity.amazonaws.com:sub".to_owned(),
                identity_id.clone(),
            );
            Admitted {
                principal: Principal {
                    authority: Authority::Identity {
                        identity_id: identity_id.clone(),
                    },
                    vars,
                    name: identity_id.clone(),
                },
                refresh: None,
                disconnect_after: None,
            }
        }
        (Caller::CognitoIdentity { .. }, true) => {
            return Err(refuse(
                "iot.auth is custom-authorizer: connect with the authorizer's token, not SigV4",
            ));
        }
        (Caller::Unauthenticated | Caller::Token { .. }, false) => {
            // AWS authenticates MQTT on TCP with X.509 client certificates (or a custom
            // authorizer); Cognito identities connect only over WebSocket with SigV4
            // (https://docs.aws.amazon.com/iot/latest/developerguide/protocols.html).
            return Err(refuse(
                "MQTT over TLS needs a custom authorizer (iot.auth = \"custom-authorizer\"); \
                 Cognito identities connect over WSS with SigV4",
            ));
        }
        (Caller::Unauthenticated | Caller::Token { .. }, true) => {
            let (headers, query) = match caller {
                Caller::Token { headers, query } => (Some(headers.clone()), Some(query.clone())),
                _ => (None, None),
            };
            let creds = authorizer::Credentials {
                username: connect.login.as_ref().map(|l| l.username.clone()),
                password: connect
                    .login
                    .as_ref()
                    .map(|l| l.password.clone().into_bytes()),
                client_id: connect.client_id.clone(),
                headers,
                query,
                server_name: None,
                connection_id: uuid_like(),
            };
            let answer = authorizer::authorize(stack, &creds)
                .await
                .map_err(|why| refuse(&why))?;
            let refresh_after = authorizer::refresh_after(stack, &connect.client_id, &answer);
            Admitted {
                principal: Principal {
                    authority: Authority::Documents(std::sync::Mutex::new(answer.policies)),
                    vars,
                    name: answer.principal_id,
                },
                refresh: Some((refresh_after, creds)),
                disconnect_after: Some(answer.disconnect_after),
            }
        }
    };
    admitted
        .principal
        .check(
            stack,
            state,
            Action::Connect,
            &format!("client/{}", connect.client_id),
        )
        .map_err(|why| refuse(&why))?;
    Ok(admitted)
}

/// A connection id for the authorizer's `connectionMetadata.id`.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("local-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The custom authorizer's clocks for one session.
struct Timers {
    refresh: Option<(Duration, authorizer::Credentials)>,
    disconnect_at: Option<tokio::time::Instant>,
}

fn packet_name(p: &Packet) -> &'static str {
    match p {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::Publish(_) => "PUBLISH",
        Packet::PubAck(_) => "PUBACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::SubAck(_) => "SUBACK",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingReq => "PINGREQ",
        Packet::PingResp => "PINGRESP",
        Packet::Disconnect => "DISCONNECT",
    }
}

/// The connected session's loop; `Some(reason)` when it ended for a reason worth logging.
async fn serve(
    s: &mut Session,
    id: u64,
    principal: &Principal,
    who: &str,
    keep_alive: u16,
    timers: Timers,
    rx: &mut mpsc::Receiver<Outbound>,
) -> Option<String> {
    let mut next_refresh = timers
        .refresh
        .as_ref()
        .map(|(d, _)| tokio::time::Instant::now() + *d);
    // MQTT 3.1.1 §3.1.2.10: no packet within one and a half keep-alive periods closes the
    // connection; 0 turns the mechanism off.
    let grace = (keep_alive > 0).then(|| Duration::from_millis(u64::from(keep_alive) * 1500));
    let mut next_pkid: u16 = 0;
    let mut last_packet = tokio::time::Instant::now();
    loop {
        let packet = tokio::select! {
            p = s.next_packet() => p,
            out = rx.recv() => {
                match out {
                    Some(Outbound::Deliver { topic, payload, qos }) => {
                        let mut publish = Publish::new(topic, qos, payload);
                        if qos != QoS::AtMostOnce {
                            next_pkid = next_pkid.checked_add(1).unwrap_or(1);
                            publish.pkid = next_pkid;
                        }
                        if s.io.write(&Packet::Publish(publish)).await.is_err() {
                            return None;
                        }
                        continue;
                    }
                    Some(Outbound::Close(why)) => return Some(why.to_owned()),
                    None => return None,
                }
            }
            () = sleep_or_forever(grace.map(|g| last_packet + g)) => return Some("keep-alive expired".into()),
            () = sleep_or_forever(timers.disconnect_at) => {
                return Some("disconnectAfterInSeconds of the custom authorizer reached".into());
            }
            () = sleep_or_forever(next_refresh) => {
                // Ask the authorizer again with the same credentials; its new documents replace
                // the old ones at once, so a removed group stops being received.
                let (_, creds) = timers.refresh.as_ref()?;
                match authorizer::authorize(&s.stack, creds).await {
                    Ok(answer) => {
                        let after = authorizer::refresh_after(&s.stack, who, &answer);
                        if let Authority::Documents(docs) = &principal.authority
                            && let Ok(mut d) = docs.lock()
                        {
                            *d = answer.policies;
                        }
                        next_refresh = Some(tokio::time::Instant::now() + after);
                        s.log("refresh", who, Some(who), Ok(()));
                        continue;
                    }
                    Err(why) => return Some(format!("refresh refused: {why}")),
                }
            }
        };
        let packet = match packet {
            Ok(p) => {
                last_packet = tokio::time::Instant::now();
                p
            }
            Err(why) if why == "connection closed" => return None,
            Err(why) => return Some(why),
        };
        let reply = match packet {
            Packet::PingReq => Some(Packet::PingResp),
            Packet::Disconnect => return None,
            Packet::PubAck(_) => None,
            Packet::Subscribe(sub) => {
                let mut codes = Vec::with_capacity(sub.filters.len());
                for f in &sub.filters {
                    let verdict = if !valid_filter(&f.path) {
                        Err("not a valid MQTT topic filter (MQTT 3.1.1 §4.7.1)".to_owned())
                    } else {
                        principal.check(
                            &s.stack,
                            &s.state,
                            Action::Subscribe,
                            &format!("topicfilter/{}", f.path),
                        )
                    };
                    s.log(
                        "subscribe",
                        &f.path,
                        Some(who),
                        verdict.as_ref().map(|_| ()).map_err(String::as_str),
                    );
                    codes.push(match verdict {
                        Ok(()) => {
                            // IoT Core supports QoS 0 and 1; a QoS 2 request is granted 1.
                            let qos = if f.qos == QoS::AtMostOnce {
                                QoS::AtMostOnce
                            } else {
                                QoS::AtLeastOnce
                            };
                            s.state.broker.subscribe(id, &f.path, qos);
                            SubscribeReasonCode::Success(qos)
                        }
                        // MQTT 3.1.1 §3.9.3: 0x80 refuses this filter only.
                        Err(_) => SubscribeReasonCode::Failure,
                    });
                }
                Some(Packet::SubAck(SubAck::new(sub.pkid, codes)))
            }
            Packet::Unsubscribe(u) => {
                for f in &u.topics {
                    s.state.broker.unsubscribe(id, f);
                }
                Some(Packet::UnsubAck(UnsubAck::new(u.pkid)))
            }
            Packet::Publish(p) => {
                let topic = p.topic.clone();
                if p.qos == QoS::ExactlyOnce {
                    // IoT Core does not support QoS 2 and closes the connection.
                    return Some(format!(
                        "PUBLISH to {topic:?} with QoS 2 (IoT Core supports 0 and 1)"
                    ));
                }
                if !valid_topic(&topic) {
                    return Some(format!(
                        "PUBLISH to {topic:?}: not a valid topic name (MQTT 3.1.1 §4.7.3)"
                    ));
                }
                let verdict = principal.check(
                    &s.stack,
                    &s.state,
                    Action::Publish,
                    &format!("topic/{topic}"),
                );
                s.log(
                    "publish",
                    &topic,
                    Some(who),
                    verdict.as_ref().map(|_| ()).map_err(String::as_str),
                );
                if let Err(why) = verdict {
                    // MQTT 3.1.1 cannot refuse a PUBLISH; IoT Core disconnects the client.
                    return Some(why);
                }
                let qos = p.qos;
                let pkid = p.pkid;
                s.state.broker.publish(
                    &s.stack,
                    &s.state,
                    &topic,
                    Bytes::from(p.payload.to_vec()),
                    qos,
                );
                (qos == QoS::AtLeastOnce).then(|| Packet::PubAck(PubAck::new(pkid)))
            }
            other => {
                return Some(format!(
                    "{} is not accepted here (a second CONNECT, QoS 2 flow or server packet)",
                    packet_name(&other)
                ));
            }
        };
        if let Some(reply) = reply
            && s.io.write(&reply).await.is_err()
        {
            return None;
        }
    }
}

/// Sleeps until `deadline`, or forever when `None`.
async fn sleep_or_forever(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codec under every connection never panics, whatever the bytes: random buffers and
    /// mutations of every valid packet type, framed as the session frames them.
    #[test]
    fn the_codec_never_panics_on_random_or_mutated_packets() {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut valid = Vec::new();
        let mut connect = Connect::new("client");
        connect.set_login("user", "password");
        let mut publish = Publish::new("a/b", QoS::AtLeastOnce, "payload");
        publish.pkid = 1;
        let mut subscribe = rumqttc::mqttbytes::v4::Subscribe::new("a/#", QoS::AtLeastOnce);
        subscribe.pkid = 2;
        let mut unsubscribe = rumqttc::mqttbytes::v4::Unsubscribe::new("a/#");
        unsubscribe.pkid = 3;
        for p in [
            Packet::Connect(connect),
            Packet::Publish(publish),
            Packet::Subscribe(subscribe),
            Packet::Unsubscribe(unsubscribe),
            Packet::PubAck(PubAck::new(7)),
            Packet::PingReq,
        ] {
            let mut out = BytesMut::new();
            p.write(&mut out, MAX_PACKET).unwrap();
            valid.push(out.to_vec());
        }
        for round in 0..200_000u32 {
            let mut bytes = if round % 2 == 0 {
                let len = (next() % 48) as usize;
                (0..len).map(|_| next() as u8).collect::<Vec<u8>>()
            } else {
                let mut v = valid[(next() % valid.len() as u64) as usize].clone();
                for _ in 0..=(next() % 3) {
                    let i = (next() % v.len() as u64) as usize;
                    v[i] = next() as u8;
                }
                v.truncate(1 + (next() % v.len() as u64) as usize);
                v
            };
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(_p) = Packet::read(&mut buf, MAX_PACKET) {}
            bytes.clear();
        }
    }
}
