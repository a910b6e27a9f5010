//! The provisioner's integration tests: the real binary, run against local peers.
//!
//! Peers (see suite/util.rs and peers/stub_proxy.py): a moto 5.2.5 server covers the Event API
//! (create, get, list, delete), channel namespaces (create, list, delete), API keys, the GraphQL
//! API and schema creation, and IoT policies, versions and attachments. The stub in front of it
//! covers what moto lacks: UpdateApi, Get/UpdateChannelNamespace, data sources, resolvers and
//! IoT policy tags; it also counts calls and injects failures.

#[path = "suite/util.rs"]
mod util;

#[path = "suite/offline.rs"]
mod offline;

#[path = "suite/aws.rs"]
mod aws;

#[path = "suite/vtl.rs"]
mod vtl;

#[path = "suite/dev.rs"]
mod dev;
