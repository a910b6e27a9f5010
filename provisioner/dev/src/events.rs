//! AppSync Events on the local stack: HTTPS `POST /event` and WSS `/event/realtime`, running the
//! rendered namespace handlers in QuickJS (groupcast-appsync-js). (To be built.)

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::Stack;

/// Serves the Event API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, stack: Arc<Stack>) -> std::io::Result<()> {
    let _ = (listener, stack);
    Err(std::io::Error::other(
        "the Events endpoint is not built yet",
    ))
}
