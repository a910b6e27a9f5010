//! The live subscriptions of every WebSocket connection, and the fan-out of a publish to them.
//!
//! A publish reaches every subscription whose channel equals the publish channel or whose
//! wildcard prefix is a strict prefix of it ([`super::channel`]), on every connection, each once
//! per event (https://docs.aws.amazon.com/appsync/latest/eventapi/event-api-websocket-protocol.html:
//! a `data` message carries the subscription id). `onPublish` has already run once for the
//! publish: delivery runs no handler. Each event's JSON text is escaped once per publish; a
//! subscriber's frame is that text with its subscription id around it, queued on its connection's
//! outbox without waiting. A connection whose outbox is full (a consumer that stopped reading) is
//! told to close, so one slow reader never holds up the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message as Frame;

use super::channel;

/// Frames a connection may have queued before it counts as not reading.
pub const OUTBOX_FRAMES: usize = 16 * 1024;

/// Where one connection's outgoing frames go.
#[derive(Debug, Clone)]
pub struct Outbox {
    /// The connection's id (unique in the process).
    pub conn: u64,
    tx: mpsc::Sender<Frame>,
    /// Notified when the outbox overflowed: the connection closes.
    overflow: Arc<Notify>,
}

impl Outbox {
    /// A new outbox and its receiving end, and the overflow signal the connection waits on.
    pub fn new() -> (Outbox, mpsc::Receiver<Frame>, Arc<Notify>) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let (tx, rx) = mpsc::channel(OUTBOX_FRAMES);
        let overflow = Arc::new(Notify::new());
        let outbox = Outbox {
            conn: NEXT.fetch_add(1, Ordering::Relaxed),
            tx,
            overflow: overflow.clone(),
        };
        (outbox, rx, overflow)
    }

    /// Queues `frame`; false when the connection is gone or overflowed (it is then told to close).
    pub fn send(&self, frame: Frame) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflow.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

#[derive(Debug)]
struct Entry {
    outbox: Outbox,
    /// The subscription id as a JSON string literal, escaped once at subscribe.
    id_json: Arc<str>,
    id: Arc<str>,
}

/// Every live subscription, by exact channel and by wildcard prefix.
#[derive(Debug, Default)]
pub struct Hub {
    exact: RwLock<HashMap<String, Vec<Entry>>>,
    wildcard: RwLock<HashMap<String, Vec<Entry>>>,
}

/// One event to deliver: its JSON text already escaped as a JSON string literal.
#[derive(Debug)]
pub struct Outgoing {
    /// `"{\"a\":1}"`: the `event` field of the `data` frame.
    pub event_json: String,
}

impl Hub {
    /// Adds subscription `id` of `outbox`'s connection on `channel`.
    pub fn add(&self, channel: &channel::Channel, id: &str, outbox: &Outbox) {
        let (map, key) = match &channel.wildcard_prefix {
            Some(prefix) => (&self.wildcard, prefix.clone()),
            None => (&self.exact, channel.path.clone()),
        };
        let entry = Entry {
            outbox: outbox.clone(),
            id_json: serde_json::Value::from(id).to_string().into(),
            id: id.into(),
        };
        if let Ok(mut map) = map.write() {
            map.entry(key).or_default().push(entry);
        }
    }

    /// Removes subscription `id` of connection `conn` on `channel`.
    pub fn remove(&self, channel: &channel::Channel, id: &str, conn: u64) {
        let (map, key) = match &channel.wildcard_prefix {
            Some(prefix) => (&self.wildcard, prefix.as_str()),
            None => (&self.exact, channel.path.as_str()),
        };
        if let Ok(mut map) = map.write()
            && let Some(entries) = map.get_mut(key)
        {
            entries.retain(|e| !(e.outbox.conn == conn && &*e.id == id));
            if entries.is_empty() {
                map.remove(key);
            }
        }
    }

    /// Delivers `events` (in order) published to `path` to every matching subscription; returns
    /// how many `data` frames were queued.
    pub fn deliver(&self, path: &str, events: &[Outgoing]) -> usize {
        let mut queued = 0;
        let mut send_all = |entries: &[Entry]| {
            for e in entries {
                for event in events {
                    let mut text =
                        String::with_capacity(32 + e.id_json.len() + event.event_json.len());
                    text.push_str(r#"{"type":"data","id":"#);
                    text.push_str(&e.id_json);
                    text.push_str(r#","event":"#);
                    text.push_str(&event.event_json);
                    text.push('}');
                    if e.outbox.send(Frame::text(text)) {
                        queued += 1;
                    }
                }
            }
        };
        if let Ok(map) = self.exact.read()
            && let Some(entries) = map.get(path)
        {
            send_all(entries);
        }
        if let Ok(map) = self.wildcard.read() {
            for prefix in channel::wildcard_prefixes(path) {
                if let Some(entries) = map.get(prefix) {
                    send_all(entries);
                }
            }
        }
        queued
    }

    /// How many subscriptions are live (tests, logs).
    pub fn len(&self) -> usize {
        let count = |m: &RwLock<HashMap<String, Vec<Entry>>>| {
            m.read()
                .map(|m| m.values().map(Vec::len).sum::<usize>())
                .unwrap_or(0)
        };
        count(&self.exact) + count(&self.wildcard)
    }

    /// Whether no subscription is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
