//! The three transports a message can travel by, and their names in configuration and reports.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A way to reach subscribers.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// AppSync Events over HTTP (`POST /event`), one channel per group.
    Events,
    /// An AppSync GraphQL pubsub API (`mutation publish`), filtered by group on subscribe.
    Graphql,
    /// The AWS IoT Core data plane (`POST /topics/{topic}`), one topic per group.
    Iot,
}

impl Transport {
    /// Every transport, in report order.
    pub const ALL: [Transport; 3] = [Transport::Events, Transport::Graphql, Transport::Iot];

    /// The name used in `GROUPCAST_TRANSPORTS` and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Events => "events",
            Transport::Graphql => "graphql",
            Transport::Iot => "iot",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "events" => Ok(Transport::Events),
            "graphql" => Ok(Transport::Graphql),
            "iot" => Ok(Transport::Iot),
            other => Err(Error::Config(format!(
                "unknown transport {other:?}: expected one of events, graphql, iot"
            ))),
        }
    }
}
