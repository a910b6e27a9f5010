//! The transports a message can travel by, and their names in configuration and reports.

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
    /// AppSync Events over the API's WebSocket (`wss://…/event/realtime`): the same channels and
    /// batches as [`Transport::Events`] on one long-lived connection, for long-running publishers.
    /// Needs the crate's `websocket` feature and the realtime host; never a default transport, and
    /// never combined with [`Transport::Events`] (subscribers would get every event twice).
    #[serde(rename = "events-ws")]
    EventsWs,
    /// An AppSync GraphQL pubsub API (`mutation publish`), filtered by group on subscribe.
    Graphql,
    /// The AWS IoT Core data plane (`POST /topics/{topic}`), one topic per group.
    Iot,
}

impl Transport {
    /// Every transport, in report order.
    pub const ALL: [Transport; 4] = [
        Transport::Events,
        Transport::EventsWs,
        Transport::Graphql,
        Transport::Iot,
    ];

    /// The name used in `GROUPCAST_TRANSPORTS` and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Events => "events",
            Transport::EventsWs => "events-ws",
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
            "events-ws" => Ok(Transport::EventsWs),
            "graphql" => Ok(Transport::Graphql),
            "iot" => Ok(Transport::Iot),
            other => Err(Error::Config(format!(
                "unknown transport {other:?}: expected one of events, events-ws, graphql, iot"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_str_and_serde() {
        for t in Transport::ALL {
            assert_eq!(t.as_str().parse::<Transport>().unwrap(), t);
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(serde_json::from_str::<Transport>(&json).unwrap(), t);
        }
        // The names configurations already hold keep their meaning.
        assert_eq!(
            serde_json::from_str::<Vec<Transport>>(r#"["events","graphql","iot","events-ws"]"#)
                .unwrap(),
            [
                Transport::Events,
                Transport::Graphql,
                Transport::Iot,
                Transport::EventsWs
            ]
        );
    }
}
