//! AWS IoT Core on the local stack: an MQTT 3.1.1 broker over WSS and TLS/TCP that enforces the
//! rendered IoT policies, and the control-plane calls groupcast makes (`control`). (To be built.)

pub mod control;

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::Stack;

/// Serves MQTT over WSS on `listener` until the task is dropped.
pub async fn serve_wss(listener: TcpListener, stack: Arc<Stack>) -> std::io::Result<()> {
    let _ = (listener, stack);
    Err(std::io::Error::other(
        "the IoT WSS endpoint is not built yet",
    ))
}

/// Serves MQTT over TLS on `listener` until the task is dropped.
pub async fn serve_mqtt(listener: TcpListener, stack: Arc<Stack>) -> std::io::Result<()> {
    let _ = (listener, stack);
    Err(std::io::Error::other(
        "the IoT MQTT endpoint is not built yet",
    ))
}
