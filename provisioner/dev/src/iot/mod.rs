//! AWS IoT Core on the local stack: an MQTT 3.1.1 broker over WSS and TLS/TCP that enforces the
//! rendered IoT policies, the data-plane HTTPS publish, and the control-plane calls groupcast
//! makes (`control`).
//!
//! - [`serve_wss`]: on the `iot_wss` port, `GET /mqtt` upgraded to a WebSocket (subprotocol
//!   `mqtt`) with a SigV4-presigned query for the service `iotdevicegateway`, verified by
//!   `stack.auth.verify_presigned` (https://docs.aws.amazon.com/iot/latest/developerguide/protocols.html,
//!   "MQTT over WebSocket": the signature is in the query, the session token appended after
//!   signing); and `POST /topics/{topic}?qos=1`, the data-plane publish
//!   (https://docs.aws.amazon.com/iot/latest/apireference/API_iotdata_Publish.html), SigV4 for
//!   `iotdata`, checked by `stack.auth.authenticate` (AWS_IAM) and then the publisher rule.
//! - [`serve_mqtt`]: MQTT on TLS (ALPN `mqtt` offered by the client; the stack's TLS acceptor
//!   decides). AWS authenticates MQTT on TCP with an X.509 client certificate or a custom
//!   authorizer's username/password
//!   (https://docs.aws.amazon.com/iot/latest/developerguide/custom-auth.html); the local stack
//!   supports only the custom-authorizer form, so in attachment mode every CONNECT there is
//!   refused with a reason that says to use WSS.
//!
//! What a client must send:
//! - **Subscriber, attachment mode (WSS)**: `GET wss://127.0.0.1:{iot_wss}/mqtt?X-Amz-Algorithm=…`
//!   presigned for `iotdevicegateway` with the Cognito identity's credentials (local
//!   `GetCredentialsForIdentity`), the session token in `X-Amz-Security-Token` (signed or appended
//!   after signing), `Sec-WebSocket-Protocol: mqtt`; then CONNECT with client id = the identity id
//!   or `{identity id}-{suffix}`, and SUBSCRIBE to `{prefix}/{group segment}/…` filters. The
//!   identity needs its group policies attached (`provisioner iot grant` / iot-grant against the
//!   AWS port). Refusals: CONNACK 5, SUBACK 0x80 per filter, and a closed connection for a
//!   forbidden PUBLISH (MQTT 3.1.1 has no PUBLISH refusal).
//! - **Subscriber, custom-authorizer mode**: over TLS, CONNECT with username
//!   `{anything}?x-amz-customauthorizer-name={authorizer}` and the JWT as password (ALPN `mqtt`
//!   is what AWS needs on port 443; the local port is dedicated, so ALPN is optional); over WSS,
//!   no SigV4 but the token in the authorizer's header or query parameter (`groupcast-token`).
//! - **Publisher**: `POST https://127.0.0.1:{iot_wss}/topics/{url-encoded topic}?qos=1`, SigV4 for
//!   `iotdata` with the stack's publisher key pair, the envelope as the body; 403 for any other
//!   principal or a topic outside `iot.topic_prefix`.
//! - Not served: X.509 client certificates on TCP, persistent sessions (every session is clean;
//!   `session present` is always 0), retained messages, QoS 2 (refused by closing, as IoT Core),
//!   last wills (accepted, never published), the `$aws/…` reserved topics, device shadows.
//!
//! - [`policy`] evaluates the documents, [`broker`] routes and checks `iot:Receive` per delivery,
//!   [`session`] speaks MQTT, [`state`] keeps attachments and things, [`control`] answers the
//!   IoT control plane.

pub mod authorizer;
pub mod broker;
pub mod control;
pub mod policy;
pub mod session;
pub mod state;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rumqttc::mqttbytes::QoS;
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::Stack;
use crate::auth::{AuthFailure, AuthRequest, IamCaller, PresignedRequest};
use crate::log::{Decision, Outcome};
use crate::system::AuthMode;
use session::{ByteStream, Caller, Io};

/// The SigV4 service of the MQTT-over-WebSocket endpoint.
pub const WSS_SERVICE: &str = "iotdevicegateway";

/// Verifies a presigned URL: `stack.auth.verify_presigned` in the stack; replaceable in tests
/// until the core's SigV4 verification lands ([`serve_wss_with`]).
pub type PresignVerifier =
    Arc<dyn Fn(&Stack, &PresignedRequest<'_>) -> Result<IamCaller, AuthFailure> + Send + Sync>;

fn stack_verifier() -> PresignVerifier {
    Arc::new(|stack: &Stack, req: &PresignedRequest<'_>| stack.auth.verify_presigned(req))
}

/// Serves MQTT over WSS (and the data-plane publish) on `listener` until the task is dropped.
pub async fn serve_wss(listener: TcpListener, stack: Arc<Stack>) -> std::io::Result<()> {
    serve_wss_with(listener, stack, stack_verifier()).await
}

/// [`serve_wss`] with another presigned-URL verifier (tests).
pub async fn serve_wss_with(
    listener: TcpListener,
    stack: Arc<Stack>,
    verify: PresignVerifier,
) -> std::io::Result<()> {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            // One failed accept (out of descriptors, a reset) never ends the endpoint.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let stack = stack.clone();
        let verify = verify.clone();
        tokio::spawn(async move {
            let Some(io) = wrap_tls(&stack, tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| {
                handle_http(req, stack.clone(), verify.clone(), peer)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades()
                .await;
        });
    }
}

/// Serves MQTT over TLS on `listener` until the task is dropped.
pub async fn serve_mqtt(listener: TcpListener, stack: Arc<Stack>) -> std::io::Result<()> {
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(c) => c,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let stack = stack.clone();
        tokio::spawn(async move {
            if let Some(io) = wrap_tls(&stack, tcp).await {
                session::run(Io::Stream(io), stack, Caller::Unauthenticated).await;
            }
        });
    }
}

async fn wrap_tls(stack: &Stack, tcp: tokio::net::TcpStream) -> Option<Box<dyn ByteStream>> {
    let _ = tcp.set_nodelay(true);
    match &stack.tls {
        Some(acceptor) => match acceptor.accept(tcp).await {
            Ok(tls) => Some(Box::new(tls)),
            Err(_) => None,
        },
        None => Some(Box::new(tcp)),
    }
}

type Body = Full<Bytes>;

/// An error answer in IoT's REST shape: `{"message": …}` and `x-amzn-ErrorType`.
fn error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "message": message }).to_string();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-errortype", kind)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn headers_of(req: &Request<Incoming>) -> BTreeMap<String, String> {
    req.headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned())))
        .collect()
}

async fn handle_http(
    mut req: Request<Incoming>,
    stack: Arc<Stack>,
    verify: PresignVerifier,
    peer: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    if path == "/mqtt" {
        return Ok(upgrade_mqtt(&mut req, stack, verify));
    }
    if let Some(topic) = path.strip_prefix("/topics/") {
        let topic = topic.to_owned();
        return Ok(publish_http(req, stack, peer, &topic).await);
    }
    Ok(error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        &format!("no IoT endpoint at {path}: use /mqtt (WebSocket) or /topics/{{topic}}"),
    ))
}

fn upgrade_mqtt(
    req: &mut Request<Incoming>,
    stack: Arc<Stack>,
    verify: PresignVerifier,
) -> Response<Body> {
    let headers = headers_of(req);
    let log = |outcome, who: Option<&str>, why: Option<&str>| {
        stack.log.decision(Decision {
            transport: "iot",
            action: "wss-connect",
            target: "/mqtt",
            principal: who,
            outcome,
            reason: why,
        });
    };
    let is_ws = headers
        .get("upgrade")
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let Some(key) = headers.get("sec-websocket-key").filter(|_| is_ws).cloned() else {
        log(Outcome::Refused, None, Some("not a WebSocket upgrade"));
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            "/mqtt is MQTT over WebSocket: send a WebSocket upgrade",
        );
    };
    // MQTT over WebSocket uses the subprotocol "mqtt" (MQTT 3.1.1 §6.0).
    let offers_mqtt = headers
        .get("sec-websocket-protocol")
        .is_some_and(|p| p.split(',').any(|x| x.trim() == "mqtt"));
    if !offers_mqtt {
        log(
            Outcome::Refused,
            None,
            Some("the WebSocket subprotocol mqtt was not offered"),
        );
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            "Sec-WebSocket-Protocol must offer mqtt",
        );
    }
    let query = req.uri().query().unwrap_or("").to_owned();
    let custom = stack
        .system
        .iot
        .as_ref()
        .is_some_and(|i| matches!(i.auth, crate::system::IotAuth::CustomAuthorizer { .. }));
    let caller = if custom {
        // Custom authentication over WebSocket: the token travels in a header or the query
        // (the authorizer's tokenKeyName), judged by the authorizer at CONNECT
        // (https://docs.aws.amazon.com/iot/latest/developerguide/custom-auth.html).
        log(
            Outcome::Admitted,
            None,
            Some("custom authorizer decides at CONNECT"),
        );
        Caller::Token { headers, query }
    } else {
        let host = headers.get("host").cloned().unwrap_or_default();
        let caller = match verify(
            &stack,
            &PresignedRequest {
                method: "GET",
                host: &host,
                path: "/mqtt",
                query: &query,
                service: WSS_SERVICE,
            },
        ) {
            Ok(c) => c,
            Err(e) => {
                log(Outcome::Refused, None, Some(&e.message));
                return error(StatusCode::FORBIDDEN, "ForbiddenException", &e.message);
            }
        };
        let Some(identity_id) = caller.cognito_identity_id.clone() else {
            let why = "only Cognito identity-pool credentials connect over WSS locally (an IAM \
                       role's IoT rights come from its IAM policy, which the local stack does \
                       not model)";
            log(Outcome::Refused, Some(&caller.arn), Some(why));
            return error(StatusCode::FORBIDDEN, "ForbiddenException", why);
        };
        log(Outcome::Admitted, Some(&identity_id), None);
        Caller::CognitoIdentity { identity_id }
    };
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let raw: Box<dyn ByteStream> = Box::new(TokioIo::new(upgraded));
        let ws = WebSocketStream::from_raw_socket(raw, Role::Server, None).await;
        session::run(Io::Ws(Box::new(ws)), stack, caller).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
        .header("sec-websocket-protocol", "mqtt")
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Whether `principal` (an ARN) is one of the configured publishers (an entry ending in `/` is a
/// prefix: a role's session ARNs).
pub fn is_publisher(stack: &Stack, principal: &str) -> bool {
    stack.system.publisher_principals.iter().any(|p| {
        if p.ends_with('/') {
            principal.starts_with(p.as_str())
        } else {
            principal == p
        }
    })
}

/// `POST /topics/{topic}?qos=1`: the data-plane publish groupcast's IoT transport makes.
async fn publish_http(
    req: Request<Incoming>,
    stack: Arc<Stack>,
    peer: SocketAddr,
    raw_topic: &str,
) -> Response<Body> {
    let headers = headers_of(&req);
    let method = req.method().as_str().to_owned();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let query = req.uri().query().unwrap_or("").to_owned();
    let topic = percent_encoding::percent_decode_str(raw_topic)
        .decode_utf8()
        .map(|t| t.into_owned());
    // IoT Core's payload limit is 128 KB (https://docs.aws.amazon.com/general/latest/gr/iot-core.html).
    let body = match Limited::new(req.into_body(), 128 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeException",
                "the payload is larger than IoT Core's 128 KB",
            );
        }
    };
    let log = |outcome, target: &str, who: Option<&str>, why: Option<&str>| {
        stack.log.decision(Decision {
            transport: "iot",
            action: "http-publish",
            target,
            principal: who,
            outcome,
            reason: why,
        });
    };
    let Ok(topic) = topic else {
        log(
            Outcome::Refused,
            raw_topic,
            None,
            Some("topic is not UTF-8"),
        );
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestException",
            "topic: must be UTF-8",
        );
    };
    if method != "POST" {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowedException",
            "publish is POST /topics/{topic}",
        );
    }
    if !broker::valid_topic(&topic) {
        log(
            Outcome::Refused,
            &topic,
            None,
            Some("not a valid topic name"),
        );
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestException",
            "topic: must be non-empty without + or #",
        );
    }
    // The signature covers the path and the query (`qos=1`): the path is passed with its query.
    let auth = stack
        .auth
        .authenticate(
            &AuthRequest {
                headers: &headers,
                method: &method,
                path: &path_and_query,
                body: &body,
                source_ip: peer.ip(),
                channel: Some(&topic),
                operation: Some("iot:Publish"),
            },
            &[AuthMode::Iam],
        )
        .await;
    let caller = match auth {
        Ok(a) => a,
        Err(e) => {
            log(Outcome::Refused, &topic, None, Some(&e.message));
            return error(StatusCode::FORBIDDEN, "ForbiddenException", &e.message);
        }
    };
    // The publisher's IAM policy (rendered by the provisioner) allows iot:Publish under the topic
    // prefix; the local stack models it as: a configured publisher principal, a topic under
    // `iot.topic_prefix`.
    let prefix = stack
        .system
        .iot
        .as_ref()
        .map(|i| format!("{}/", i.topic_prefix));
    let allowed = is_publisher(&stack, &caller.principal)
        && prefix
            .as_ref()
            .is_some_and(|p| topic.starts_with(p.as_str()));
    if !allowed {
        let why = format!(
            "{} may not publish to {topic:?}: only the configured publishers, under the topic prefix",
            caller.principal
        );
        log(
            Outcome::Refused,
            &topic,
            Some(&caller.principal),
            Some(&why),
        );
        return error(StatusCode::FORBIDDEN, "ForbiddenException", &why);
    }
    let qos = match query
        .split('&')
        .find_map(|kv| kv.strip_prefix("qos="))
        .unwrap_or("0")
    {
        "0" => QoS::AtMostOnce,
        "1" => QoS::AtLeastOnce,
        other => {
            let why = format!("qos={other}: must be 0 or 1");
            log(
                Outcome::Refused,
                &topic,
                Some(&caller.principal),
                Some(&why),
            );
            return error(StatusCode::BAD_REQUEST, "InvalidRequestException", &why);
        }
    };
    log(Outcome::Admitted, &topic, Some(&caller.principal), None);
    let st = state::of(&stack.state_dir);
    st.broker.publish(&stack, &st, &topic, body, qos);
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"message":"OK","traceId":"local"}"#,
        )))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
