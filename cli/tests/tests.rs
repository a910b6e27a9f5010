//! The `groupcast` command line's integration tests: the real binary
//! (`env!("CARGO_BIN_EXE_groupcast")`), run against peers on 127.0.0.1 only.
//!
//! Peers: an AppSync-Events-like HTTP sink in this process (suite/sink.rs: `POST /event`,
//! answering all successful, some failed, or 401; and `POST /graphql` answering the `revoke`
//! mutation or an error), and for `watch`, the project's Node Events
//! emulator (tests/e2e/events-emulator.mjs, started by peers/events-peer.mjs).

#[path = "suite/util.rs"]
mod util;

#[path = "suite/sink.rs"]
mod sink;

/// `groupcast publish`: report lines, exit codes, bad input, configuration sources.
#[path = "suite/publish.rs"]
mod publish;

/// `groupcast revoke`: the GraphQL `revoke` mutation, Events' bound, exit codes, bad input.
#[path = "suite/revoke.rs"]
mod revoke;

/// `groupcast watch` against the Node Events emulator running the rendered handler.
#[path = "suite/watch.rs"]
mod watch;

/// `groupcast watch --transport iot` against mosquitto over WebSocket.
#[path = "suite/watch_iot.rs"]
mod watch_iot;

/// `groupcast watch --transport graphql` against amplify-appsync-simulator.
#[path = "suite/watch_graphql.rs"]
mod watch_graphql;
