//! AppSync GraphQL pubsub on the local stack: HTTPS `POST /graphql` and the realtime WebSocket,
//! running the rendered VTL (groupcast-vtl) and its enhanced filters. (To be built.)

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::Stack;

/// Serves the GraphQL API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, stack: Arc<Stack>) -> std::io::Result<()> {
    let _ = (listener, stack);
    Err(std::io::Error::other(
        "the GraphQL endpoint is not built yet",
    ))
}
