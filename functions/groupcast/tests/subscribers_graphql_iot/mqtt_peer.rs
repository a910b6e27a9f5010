//! A minimal MQTT-over-WebSocket peer for what mosquitto cannot do: refuse a subscription with
//! SUBACK return code 0x80 (mosquitto 2.0 acknowledges every subscription and filters on
//! delivery). Framing is rumqttc's own codec (`rumqttc::mqttbytes::v4`), not written here. It
//! refuses every filter containing `forbidden`, grants the rest, answers pings, and sends the
//! client whatever the test pushes.

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use rumqttc::SubscribeReasonCode;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{ConnAck, ConnectReturnCode, Packet, Publish, SubAck};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

pub struct MqttPeer {
    pub port: u16,
    publish: mpsc::UnboundedSender<(String, Vec<u8>)>,
    task: tokio::task::JoinHandle<()>,
}

impl MqttPeer {
    // tungstenite's handshake callback returns its (large) ErrorResponse by value.
    #[allow(clippy::result_large_err)]
    pub async fn start() -> MqttPeer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (publish, mut pushes) = mpsc::unbounded_channel::<(String, Vec<u8>)>();
        let task = tokio::spawn(async move {
            // One client at a time is enough for the test.
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let callback = |_req: &Request, mut resp: Response| {
                resp.headers_mut()
                    .insert("sec-websocket-protocol", "mqtt".parse().unwrap());
                Ok(resp)
            };
            let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                return;
            };
            let (mut sink, mut stream) = ws.split();
            let mut buf = BytesMut::new();
            loop {
                tokio::select! {
                    frame = stream.next() => {
                        let Some(Ok(frame)) = frame else { return };
                        let Frame::Binary(bytes) = frame else { continue };
                        buf.extend_from_slice(&bytes);
                        while let Ok(packet) = Packet::read(&mut buf, 1 << 20) {
                            let reply = match packet {
                                Packet::Connect(_) => Some(Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, false))),
                                Packet::Subscribe(s) => {
                                    let codes = s.filters.iter().map(|f| {
                                        if f.path.contains("forbidden") {
                                            SubscribeReasonCode::Failure
                                        } else {
                                            SubscribeReasonCode::Success(QoS::AtLeastOnce)
                                        }
                                    }).collect();
                                    Some(Packet::SubAck(SubAck::new(s.pkid, codes)))
                                }
                                Packet::PingReq => Some(Packet::PingResp),
                                _ => None,
                            };
                            if let Some(p) = reply {
                                let mut out = BytesMut::new();
                                p.write(&mut out, 1 << 20).unwrap();
                                if sink.send(Frame::binary(out.to_vec())).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    push = pushes.recv() => {
                        let Some((topic, payload)) = push else { return };
                        let mut out = BytesMut::new();
                        Packet::Publish(Publish::new(topic, QoS::AtMostOnce, payload)).write(&mut out, 1 << 20).unwrap();
                        if sink.send(Frame::binary(out.to_vec())).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        MqttPeer {
            port,
            publish,
            task,
        }
    }

    /// Sends a PUBLISH (QoS 0) of `payload` on `topic` to the client.
    pub fn push(&self, topic: &str, payload: Vec<u8>) {
        self.publish.send((topic.to_owned(), payload)).unwrap();
    }
}

impl Drop for MqttPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
