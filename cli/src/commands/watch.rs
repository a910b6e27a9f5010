//! `groupcast watch`: subscribe to groups' messages with the library's subscriber API and print
//! what the [`Subscription`] reports ([`Watcher`]), until `--count` messages, `--timeout`, or the
//! end of the subscription.
//!
//! Where each thing goes (docs/cli.md, "watch output"):
//! - JSON lines (stdout not a terminal, or `--format json`), on stdout: `{"event":"active",…}` when
//!   the service has confirmed every group, `{"event":"message",…}` per message (once per id),
//!   `{"event":"part_ended",…}` when one group's part is refused or ended (the others go on).
//! - Table (stdout a terminal, or `--format table`): one row per message on stdout; the active
//!   line and part errors as sentences on stderr.
//! - Always on stderr: connection state changes and part errors, as sentences.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use groupcast::subscribe::events::EventsSubscriber;
use groupcast::subscribe::graphql::GraphqlSubscriber;
use groupcast::subscribe::iot::IotSubscriber;
use groupcast::subscribe::{ConnectionState, SubscribeError, Subscription, SubscriptionEvent};
use serde_json::json;
use tokio::time::Instant;

use super::{Global, exit, field_flag};
use crate::output::{self, Format, Paint};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A group to watch; repeat for several. A message addressed to several of them is printed
    /// once (the library de-duplicates by message id).
    #[arg(long = "group", value_name = "GROUP", required = true)]
    pub(crate) groups: Vec<String>,
    /// The topic to watch, e.g. `news` or `comments/*` (every topic below `comments`)
    /// [default: every topic].
    #[arg(long, value_name = "TOPIC")]
    pub(crate) topic: Option<String>,
    /// The transport to subscribe through [default: the first configured of events, graphql,
    /// iot].
    #[arg(long, value_enum, value_name = "TRANSPORT")]
    pub(crate) transport: Option<WatchTransport>,
    /// Exit 0 after N messages.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) count: Option<u64>,
    /// Stop after this long (`500ms`, `30s`, `5m`, or seconds): exit 0, or 4 when --count
    /// messages had not arrived by then, or the subscription was not active.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) timeout: Option<Duration>,
    /// IoT: the MQTT client id. The provisioner's IoT policies admit `{cognito identity id}-*`
    /// (docs/subscribing.md).
    #[arg(long, value_name = "ID", env = "GROUPCAST_IOT_CLIENT_ID")]
    pub(crate) client_id: Option<String>,
}

/// `watch --transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum WatchTransport {
    /// AppSync Events over its WebSocket, one channel per group.
    Events,
    /// The AppSync GraphQL realtime endpoint, subscriptions filtered by group.
    Graphql,
    /// IoT Core over MQTT/WebSocket, one topic filter per group.
    Iot,
}

impl WatchTransport {
    fn as_str(self) -> &'static str {
        match self {
            WatchTransport::Events => "events",
            WatchTransport::Graphql => "graphql",
            WatchTransport::Iot => "iot",
        }
    }
}

/// `500ms`, `30s`, `5m`, `1h`, or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number with ms, s, m or h, e.g. 30s"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}: use ms, s, m or h")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?}: out of range"))
}

/// `groupcast watch`.
pub(crate) async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let (transport, subscriber, mut subscription) = subscribe(global, &args).await?;
    let mut w = Watcher::new(
        global.format.resolve(),
        Paint {
            on: output::color_on_stdout(),
        },
        Paint {
            on: output::color_on_stderr(),
        },
        std::io::stdout(),
        std::io::stderr(),
        transport.as_str(),
        &args.groups,
        args.topic.as_deref(),
    )
    .exact_topic(
        args.topic
            .as_deref()
            .filter(|t| transport == WatchTransport::Graphql && !t.ends_with('*')),
    );
    let end = pump(&mut subscription, &mut w, args.count, args.timeout).await;
    drop(subscription);
    subscriber.close().await;
    Ok(ExitCode::from(w.finish(&end?, args.count, args.timeout)?))
}

/// The subscriber a watch holds, so that it can be closed cleanly at the end.
enum Subscriber {
    Events(EventsSubscriber),
    Graphql(GraphqlSubscriber),
    Iot(IotSubscriber),
}

impl Subscriber {
    /// Unsubscribes and closes the connection, within a bound: the watch is over either way.
    async fn close(self) {
        let close = async {
            match self {
                Subscriber::Events(s) => s.close().await,
                Subscriber::Graphql(s) => s.close().await,
                Subscriber::Iot(s) => s.close().await,
            }
        };
        let _ = tokio::time::timeout(CLOSE_WITHIN, close).await;
    }
}

/// How long the end of a watch waits for the unsubscribe and close to be acknowledged.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);

/// Subscribes through the transport asked for (default: the first configured of events,
/// graphql, iot).
async fn subscribe(
    global: &Global,
    args: &Args,
) -> anyhow::Result<(WatchTransport, Subscriber, Subscription)> {
    let c = &global.connection;
    let transport = match args.transport {
        Some(t) => t,
        None => match c.watch_transports()?.first().copied() {
            Some("graphql") => WatchTransport::Graphql,
            Some("iot") => WatchTransport::Iot,
            // Events, or nothing configured: the Events subscriber's error says what to set.
            _ => WatchTransport::Events,
        },
    };
    // One topic language for every transport, the Events one (`news`, `comments/*`, `*`),
    // translated to each transport's below.
    let topic = args.topic.as_deref().unwrap_or("*");
    let fail = |e: SubscribeError| subscribe_error(&e, &args.groups);
    match transport {
        WatchTransport::Events => {
            let s = c.events_subscriber().await?;
            let sub = s
                .subscribe_groups(&args.groups, topic)
                .await
                .map_err(fail)?;
            Ok((transport, Subscriber::Events(s), sub))
        }
        WatchTransport::Iot => {
            let s = c.iot_subscriber(args.client_id.as_deref()).await?;
            let sub = s
                .subscribe_groups(&args.groups, &iot_topic(topic))
                .await
                .map_err(fail)?;
            Ok((transport, Subscriber::Iot(s), sub))
        }
        WatchTransport::Graphql => {
            let s = c.graphql_subscriber().await?;
            let sub = s
                .subscribe(&graphql_prefix(topic), Some(&args.groups))
                .await
                .map_err(fail)?;
            Ok((transport, Subscriber::Graphql(s), sub))
        }
    }
}

/// An Events-style topic as an MQTT filter tail: a trailing `*` level is MQTT's `#`.
fn iot_topic(topic: &str) -> String {
    match topic.strip_suffix('*') {
        Some(head) if head.is_empty() || head.ends_with('/') => format!("{head}#"),
        _ => topic.to_owned(),
    }
}

/// An Events-style topic as the GraphQL subscription's `prefix` (a `beginsWith` filter): `*` is
/// every topic (`""`), `comments/*` the prefix `comments/`. An exact topic is a prefix too, so
/// the watcher also checks it exactly ([`Watcher::exact_topic`]).
fn graphql_prefix(topic: &str) -> String {
    topic.strip_suffix('*').unwrap_or(topic).to_owned()
}

/// A subscribe error before anything was sent, naming the flag: `groups[i]` → `--group` with its
/// value, `topic` → `--topic`.
fn subscribe_error(e: &SubscribeError, groups: &[String]) -> anyhow::Error {
    if let SubscribeError::Invalid { field, rule } = e {
        return anyhow::anyhow!("{}: {rule}", field_flag(field, groups));
    }
    anyhow::anyhow!("subscribe: {e}")
}

/// How a watch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// `--count` messages arrived.
    Count,
    /// `--timeout` passed.
    Timeout,
    /// The subscription ended: every part ended, or the connection closed for good.
    Ended,
}

/// Prints every event until `count` messages, `timeout`, or the end of the subscription.
pub(crate) async fn pump<O: Write, E: Write>(
    sub: &mut Subscription,
    w: &mut Watcher<O, E>,
    count: Option<u64>,
    timeout: Option<Duration>,
) -> std::io::Result<End> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        if count.is_some_and(|n| w.received >= n) {
            return Ok(End::Count);
        }
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, sub.next_event()).await {
                Ok(ev) => ev,
                Err(_) => return Ok(End::Timeout),
            },
            None => sub.next_event().await,
        };
        match next {
            Some(ev) => w.event(ev)?,
            None => return Ok(End::Ended),
        }
    }
}

/// Turns subscription events into lines (see the module docs for where each goes).
#[derive(Debug)]
pub(crate) struct Watcher<O, E> {
    format: Format,
    paint_out: Paint,
    paint_err: Paint,
    out: O,
    err: E,
    transport: &'static str,
    groups: Vec<String>,
    topic: Option<String>,
    /// Print only messages of exactly this topic (GraphQL: its `prefix` filter also matches
    /// longer topics).
    exact_topic: Option<String>,
    /// Messages printed so far.
    pub(crate) received: u64,
    /// Parts the service ended, with the error.
    ended: Vec<(String, String)>,
    /// Whether the subscription is confirmed now: since the last `Active`, with no connection
    /// loss after it.
    active: bool,
    header_printed: bool,
}

/// Table column widths (the last column, DATA, takes the rest).
const TIME_W: usize = 8;
const TOPIC_W: usize = 24;
const GROUPS_W: usize = 24;
const ID_W: usize = 36;
const DATA_MAX: usize = 160;

impl<O: Write, E: Write> Watcher<O, E> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        format: Format,
        paint_out: Paint,
        paint_err: Paint,
        out: O,
        err: E,
        transport: &'static str,
        groups: &[String],
        topic: Option<&str>,
    ) -> Self {
        Watcher {
            format: format.resolve(),
            paint_out,
            paint_err,
            out,
            err,
            transport,
            groups: groups.to_vec(),
            topic: topic.map(str::to_owned),
            exact_topic: None,
            received: 0,
            ended: Vec::new(),
            active: false,
            header_printed: false,
        }
    }

    /// Prints only messages of exactly `topic` from now on.
    pub(crate) fn exact_topic(mut self, topic: Option<&str>) -> Self {
        self.exact_topic = topic.map(str::to_owned);
        self
    }

    fn json(&self) -> bool {
        self.format != Format::Table
    }

    /// Prints one event.
    pub(crate) fn event(&mut self, ev: SubscriptionEvent) -> std::io::Result<()> {
        match ev {
            SubscriptionEvent::Active => {
                self.active = true;
                self.print_active()
            }
            SubscriptionEvent::Message(m) => {
                if self
                    .exact_topic
                    .as_ref()
                    .is_some_and(|t| *t != m.envelope.topic)
                {
                    return Ok(());
                }
                self.received += 1;
                if self.json() {
                    let line = json!({
                        "event": "message",
                        "id": m.envelope.id,
                        "topic": m.envelope.topic,
                        "data": m.envelope.data,
                        "groups": m.envelope.groups,
                        "part": m.part,
                    });
                    writeln!(self.out, "{line}")
                } else {
                    self.header()?;
                    let data = serde_json::to_string(&m.envelope.data).unwrap_or_default();
                    writeln!(
                        self.out,
                        "{:<TIME_W$}  {:<TOPIC_W$}  {:<GROUPS_W$}  {:<ID_W$}  {}",
                        output::clock(),
                        output::cell(&m.envelope.topic, TOPIC_W),
                        output::cell(&m.envelope.groups.join(","), GROUPS_W),
                        m.envelope.id,
                        output::cell(&data, DATA_MAX),
                    )
                }
            }
            SubscriptionEvent::PartEnded { part, error } => {
                let groups = self.groups_of(&part);
                let message = error.to_string();
                if self.json() {
                    let kind = match &error {
                        SubscribeError::Unauthorized { .. } => "unauthorized",
                        SubscribeError::Rejected { .. } => "rejected",
                        SubscribeError::Invalid { .. } => "invalid",
                        SubscribeError::Connection(_) => "connection",
                        SubscribeError::Closed => "closed",
                        SubscribeError::Invalidated { .. } => "invalidated",
                        _ => "ended",
                    };
                    let line = json!({
                        "event": "part_ended",
                        "part": part,
                        "groups": groups,
                        "kind": kind,
                        "error": message,
                    });
                    writeln!(self.out, "{line}")?;
                }
                let who = if groups.is_empty() {
                    part.clone()
                } else {
                    groups.join(", ")
                };
                let still = self.groups.len().saturating_sub(self.ended.len() + 1);
                writeln!(
                    self.err,
                    "groupcast: {} ({message}); {}",
                    self.paint_err.red(&format!("{who}: refused or ended")),
                    if still > 0 {
                        "still watching the others".to_owned()
                    } else {
                        "no group left".to_owned()
                    }
                )?;
                self.ended.push((part, message));
                Ok(())
            }
            SubscriptionEvent::State(s) => {
                if s != ConnectionState::Connected {
                    self.active = false;
                }
                let text = match s {
                    ConnectionState::Connecting => "connecting".to_owned(),
                    ConnectionState::Connected => "connected".to_owned(),
                    ConnectionState::Backoff { attempt, delay } => format!(
                        "not connected; next attempt in {:.1}s (attempt {attempt})",
                        delay.as_secs_f64()
                    ),
                    ConnectionState::Closed => "connection closed".to_owned(),
                    other => format!("{other:?}"),
                };
                writeln!(self.err, "groupcast: {}", self.paint_err.dim(&text))
            }
            other => writeln!(self.err, "groupcast: {other:?}"),
        }
    }

    fn print_active(&mut self) -> std::io::Result<()> {
        if self.json() {
            let line = json!({
                "event": "active",
                "transport": self.transport,
                "groups": self.groups,
                "topic": self.topic,
            });
            writeln!(self.out, "{line}")
        } else {
            let topic = self
                .topic
                .as_deref()
                .map(|t| format!(", topic {t}"))
                .unwrap_or_default();
            writeln!(
                self.err,
                "groupcast: {} on {} ({}{topic}); waiting for messages",
                self.paint_err.green("subscription active"),
                self.transport,
                self.groups.join(", "),
            )?;
            self.header()
        }
    }

    fn header(&mut self) -> std::io::Result<()> {
        if self.header_printed {
            return Ok(());
        }
        self.header_printed = true;
        let h = format!(
            "{:<TIME_W$}  {:<TOPIC_W$}  {:<GROUPS_W$}  {:<ID_W$}  DATA",
            "TIME", "TOPIC", "GROUPS", "ID"
        );
        let h = self.paint_out.dim(&h);
        writeln!(self.out, "{h}")
    }

    /// The groups a part stands for: those whose channel segment (or name) is one of the part's
    /// `/`- or `,`-separated pieces.
    fn groups_of(&self, part: &str) -> Vec<String> {
        let pieces: Vec<&str> = part.split(['/', ',']).map(str::trim).collect();
        self.groups
            .iter()
            .filter(|g| {
                pieces.contains(&g.as_str())
                    || groupcast::group_segment(g).is_ok_and(|s| pieces.contains(&s.as_str()))
            })
            .cloned()
            .collect()
    }

    /// Says how the watch ended, on stderr when it is not a success, and returns the exit code.
    pub(crate) fn finish(
        &mut self,
        end: &End,
        count: Option<u64>,
        timeout: Option<Duration>,
    ) -> std::io::Result<u8> {
        self.out.flush()?;
        match end {
            End::Count => Ok(0),
            End::Timeout => match count {
                None if self.active => Ok(0),
                None => {
                    writeln!(
                        self.err,
                        "groupcast: {} passed before the subscription was active",
                        fmt_timeout(timeout)
                    )?;
                    Ok(exit::TIMED_OUT)
                }
                Some(n) => {
                    writeln!(
                        self.err,
                        "groupcast: {} passed with {} of {n} messages",
                        fmt_timeout(timeout),
                        self.received
                    )?;
                    Ok(exit::TIMED_OUT)
                }
            },
            End::Ended => {
                let why = if self.ended.is_empty() {
                    "the connection closed".to_owned()
                } else {
                    let parts: Vec<String> = self
                        .ended
                        .iter()
                        .map(|(p, e)| format!("{p}: {e}"))
                        .collect();
                    format!("every part ended ({})", parts.join("; "))
                };
                writeln!(
                    self.err,
                    "groupcast: {}",
                    self.paint_err
                        .red(&format!("the subscription ended: {why}"))
                )?;
                Ok(exit::SUBSCRIPTION_ENDED)
            }
        }
    }
}

fn fmt_timeout(t: Option<Duration>) -> String {
    t.map(|t| format!("--timeout {t:?}"))
        .unwrap_or_else(|| "the time".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use groupcast::Envelope;
    use groupcast::subscribe::Received;

    fn watcher(format: Format) -> Watcher<Vec<u8>, Vec<u8>> {
        Watcher::new(
            format,
            Paint { on: false },
            Paint { on: false },
            Vec::new(),
            Vec::new(),
            "events",
            &["team-a".to_owned(), "Team_B".to_owned()],
            Some("news"),
        )
    }

    fn message(n: u64) -> SubscriptionEvent {
        SubscriptionEvent::Message(Received {
            envelope: Envelope {
                id: uuid::Uuid::from_u64_pair(0, n),
                topic: "news".into(),
                data: json!({"n": n, "text": "line\nbreak"}),
                groups: vec!["team-a".into()],
            },
            part: "/live/team-a/news".into(),
        })
    }

    fn lines(b: &[u8]) -> Vec<serde_json::Value> {
        String::from_utf8_lossy(b)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }

    #[tokio::test]
    async fn piped_output_is_an_active_line_then_one_json_line_per_message_until_the_count() {
        let (tx, mut sub) = Subscription::channel(8);
        tx.send(SubscriptionEvent::State(ConnectionState::Connecting))
            .await
            .unwrap();
        tx.send(SubscriptionEvent::Active).await.unwrap();
        for n in 1..=3 {
            tx.send(message(n)).await.unwrap();
        }
        let mut w = watcher(Format::Json);
        let end = pump(&mut sub, &mut w, Some(2), None).await.unwrap();
        assert_eq!(end, End::Count);
        assert_eq!(w.finish(&end, Some(2), None).unwrap(), 0);
        let out = lines(&w.out);
        assert_eq!(
            out[0],
            json!({"event": "active", "transport": "events", "groups": ["team-a", "Team_B"], "topic": "news"})
        );
        assert_eq!(out.len(), 3, "the active line and exactly --count messages");
        assert_eq!(out[1]["event"], "message");
        assert_eq!(out[1]["data"], json!({"n": 1, "text": "line\nbreak"}));
        assert_eq!(out[1]["groups"], json!(["team-a"]));
        assert_eq!(out[1]["part"], "/live/team-a/news");
        assert_eq!(out[2]["id"], uuid::Uuid::from_u64_pair(0, 2).to_string());
        assert_eq!(
            String::from_utf8_lossy(&w.err),
            "groupcast: connecting\n",
            "state changes go to stderr"
        );
    }

    #[tokio::test]
    async fn a_refused_group_is_reported_and_the_others_keep_printing() {
        let (tx, mut sub) = Subscription::channel(8);
        tx.send(SubscriptionEvent::PartEnded {
            part: "/live/x--Team-5fB/news".into(),
            error: SubscribeError::Unauthorized {
                part: "/live/x--Team-5fB/news".into(),
                message: "Unauthorized".into(),
            },
        })
        .await
        .unwrap();
        tx.send(SubscriptionEvent::Active).await.unwrap();
        tx.send(message(7)).await.unwrap();
        let mut w = watcher(Format::Json);
        let end = pump(&mut sub, &mut w, Some(1), None).await.unwrap();
        assert_eq!(end, End::Count);
        let out = lines(&w.out);
        assert_eq!(out[0]["event"], "part_ended");
        assert_eq!(
            out[0]["groups"],
            json!(["Team_B"]),
            "the part is named by its group"
        );
        assert_eq!(out[0]["kind"], "unauthorized");
        assert_eq!(out[2]["data"]["n"], 7);
        let err = String::from_utf8_lossy(&w.err);
        assert!(
            err.contains("Team_B: refused or ended") && err.contains("still watching the others"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_end_of_the_subscription_exits_3_naming_every_ended_part() {
        let (tx, mut sub) = Subscription::channel(8);
        for part in ["/live/team-a/*", "/live/x--Team-5fB/*"] {
            tx.send(SubscriptionEvent::PartEnded {
                part: part.into(),
                error: SubscribeError::Unauthorized {
                    part: part.into(),
                    message: "no".into(),
                },
            })
            .await
            .unwrap();
        }
        drop(tx);
        let mut w = watcher(Format::Json);
        let end = pump(&mut sub, &mut w, None, None).await.unwrap();
        assert_eq!(end, End::Ended);
        assert_eq!(
            w.finish(&end, None, None).unwrap(),
            exit::SUBSCRIPTION_ENDED
        );
        let err = String::from_utf8_lossy(&w.err);
        assert!(err.contains("no group left"), "{err}");
        assert!(
            err.contains("the subscription ended: every part ended (/live/team-a/*: unauthorized"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_timeout_before_the_count_or_the_active_line_exits_4_and_after_it_exits_0() {
        let (tx, mut sub) = Subscription::channel(8);
        let mut w = watcher(Format::Json);
        let t = Some(Duration::from_millis(50));
        let end = pump(&mut sub, &mut w, Some(1), t).await.unwrap();
        assert_eq!(end, End::Timeout);
        assert_eq!(w.finish(&end, Some(1), t).unwrap(), exit::TIMED_OUT);
        assert!(String::from_utf8_lossy(&w.err).contains("0 of 1 messages"));
        let end = pump(&mut sub, &mut w, None, t).await.unwrap();
        assert_eq!(w.finish(&end, None, t).unwrap(), exit::TIMED_OUT);
        assert!(String::from_utf8_lossy(&w.err).contains("before the subscription was active"));
        tx.send(SubscriptionEvent::Active).await.unwrap();
        let end = pump(&mut sub, &mut w, None, t).await.unwrap();
        assert_eq!(w.finish(&end, None, t).unwrap(), 0);
        // A lost connection makes it unconfirmed again until the next Active.
        tx.send(SubscriptionEvent::State(ConnectionState::Backoff {
            attempt: 1,
            delay: Duration::from_millis(5),
        }))
        .await
        .unwrap();
        let end = pump(&mut sub, &mut w, None, t).await.unwrap();
        assert_eq!(w.finish(&end, None, t).unwrap(), exit::TIMED_OUT);
    }

    #[tokio::test]
    async fn on_a_terminal_messages_are_table_rows_and_the_active_line_goes_to_stderr() {
        let (tx, mut sub) = Subscription::channel(8);
        tx.send(SubscriptionEvent::Active).await.unwrap();
        tx.send(message(1)).await.unwrap();
        let mut w = watcher(Format::Table);
        pump(&mut sub, &mut w, Some(1), None).await.unwrap();
        let out = String::from_utf8_lossy(&w.out);
        let rows: Vec<&str> = out.lines().collect();
        assert!(
            rows[0].starts_with("TIME") && rows[0].ends_with("DATA"),
            "{out}"
        );
        assert!(
            rows[1].contains("news") && rows[1].contains("team-a"),
            "{out}"
        );
        assert!(
            rows[1].ends_with(r#"{"n":1,"text":"line\nbreak"}"#),
            "the data's newline stays escaped, so a row is one line: {out}"
        );
        let err = String::from_utf8_lossy(&w.err);
        assert!(
            err.contains("subscription active on events (team-a, Team_B, topic news)"),
            "{err}"
        );
    }

    #[test]
    fn the_events_topic_language_translates_to_mqtt_filters_and_graphql_prefixes() {
        assert_eq!(iot_topic("*"), "#");
        assert_eq!(iot_topic("jobs/*"), "jobs/#");
        assert_eq!(iot_topic("news"), "news");
        assert_eq!(graphql_prefix("*"), "");
        assert_eq!(graphql_prefix("comments/*"), "comments/");
        assert_eq!(graphql_prefix("news"), "news");
    }

    #[tokio::test]
    async fn an_exact_topic_filter_drops_longer_topics_a_prefix_filter_let_through() {
        let (tx, mut sub) = Subscription::channel(8);
        let mut other = message(1);
        if let SubscriptionEvent::Message(m) = &mut other {
            m.envelope.topic = "newsletter".into();
        }
        tx.send(other).await.unwrap();
        tx.send(message(2)).await.unwrap();
        let mut w = watcher(Format::Json).exact_topic(Some("news"));
        pump(&mut sub, &mut w, Some(1), None).await.unwrap();
        let out = lines(&w.out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["data"]["n"], 2, "{out:?}");
    }

    #[test]
    fn durations_take_a_unit_or_seconds_and_refuse_anything_else() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").unwrap_err().contains("30s"));
        assert!(parse_duration("3d").unwrap_err().contains("unknown unit"));
    }
}
