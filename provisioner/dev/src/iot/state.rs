//! The IoT state of one local stack, shared by the broker and the control plane: which policies
//! are attached to which target (a Cognito identity id), the registry's things (groupcast's
//! user → identity mapping, iot-grant's `registry.rs`), and the broker itself. Kept per state
//! directory, so the AWS port's `control::handle` (given `&Stack`) and the transports (given
//! `Arc<Stack>`) reach the same attachments, and a detach is seen by the next delivery.
//!
//! Persisted in `{state_dir}/iot-attachments.json`:
//! `{"targets": {"<identity id>": ["<policy>", …]}, "things": {"<name>": {"<attr>": "<value>"}}}`,
//! written whole (temp file + rename) after every change, read once when the stack starts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use super::authorizer::Invoke;
use super::broker::Broker;
use super::policy::Policy;

/// The file name in the state directory.
pub const ATTACHMENTS_FILE: &str = "iot-attachments.json";

/// What `iot-attachments.json` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Attachments {
    /// Target (Cognito identity id) → attached policy names.
    #[serde(default)]
    pub targets: BTreeMap<String, BTreeSet<String>>,
    /// Thing name → attributes.
    #[serde(default)]
    pub things: BTreeMap<String, BTreeMap<String, String>>,
}

/// A policy's text and its parse (`None`: it does not parse and grants nothing).
type ParsedPolicy = (String, Option<Arc<Policy>>);

/// The IoT state of one stack.
pub struct IotState {
    path: PathBuf,
    attachments: Mutex<Attachments>,
    /// Parsed policy documents by name, with the text they were parsed from (re-parsed when the
    /// rendered text differs), so a delivery does not parse JSON.
    parsed: Mutex<HashMap<String, ParsedPolicy>>,
    /// The broker every IoT transport of this stack delivers through.
    pub broker: Broker,
    /// The custom authorizer's invocation, when registered (custom-authorizer mode).
    authorizer: Mutex<Option<Invoke>>,
}

impl IotState {
    fn load(state_dir: &Path) -> IotState {
        let path = state_dir.join(ATTACHMENTS_FILE);
        // A missing or unreadable file starts empty: fail closed (nothing attached), and the
        // broken file is left for the developer to look at until the next change rewrites it.
        let attachments = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        IotState {
            path,
            attachments: Mutex::new(attachments),
            parsed: Mutex::default(),
            broker: Broker::default(),
            authorizer: Mutex::new(None),
        }
    }

    /// Registers the custom authorizer's invocation.
    pub fn set_authorizer(&self, invoke: Invoke) {
        if let Ok(mut a) = self.authorizer.lock() {
            *a = Some(invoke);
        }
    }

    /// The custom authorizer's invocation, if registered.
    pub fn authorizer(&self) -> Option<Invoke> {
        self.authorizer.lock().ok().and_then(|a| a.clone())
    }

    /// A copy of the current attachments.
    pub fn snapshot(&self) -> Attachments {
        self.attachments
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default()
    }

    /// Policy `name` of text `text`, parsed (cached); `None` when it does not parse.
    pub fn parsed(&self, name: &str, text: &str) -> Option<Arc<Policy>> {
        let mut cache = self.parsed.lock().ok()?;
        match cache.get(name) {
            Some((t, p)) if t == text => p.clone(),
            _ => {
                let p = Policy::parse(text).ok().map(Arc::new);
                cache.insert(name.to_owned(), (text.to_owned(), p.clone()));
                p
            }
        }
    }

    /// The policies attached to `target` now.
    pub fn attached(&self, target: &str) -> Vec<String> {
        self.attachments
            .lock()
            .ok()
            .and_then(|a| a.targets.get(target).map(|s| s.iter().cloned().collect()))
            .unwrap_or_default()
    }

    /// Changes the attachments with `f` and saves them; `f`'s answer is returned.
    ///
    /// # Errors
    /// When the file cannot be written (the change is kept in memory).
    pub fn update<T>(&self, f: impl FnOnce(&mut Attachments) -> T) -> std::io::Result<T> {
        let (out, bytes) = {
            let mut a = self
                .attachments
                .lock()
                .map_err(|_| std::io::Error::other("IoT attachments lock poisoned"))?;
            let out = f(&mut a);
            let bytes = serde_json::to_vec_pretty(&*a).map_err(std::io::Error::other)?;
            (out, bytes)
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(out)
    }
}

impl std::fmt::Debug for IotState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IotState")
            .field("path", &self.path)
            .field("broker", &self.broker)
            .finish_non_exhaustive()
    }
}

/// The IoT state of the stack whose state directory is `state_dir` (made on first use).
pub fn of(state_dir: &Path) -> Arc<IotState> {
    static STATES: OnceLock<Mutex<HashMap<PathBuf, Arc<IotState>>>> = OnceLock::new();
    let states = STATES.get_or_init(Default::default);
    // Made first so that the key is the same canonical path before and after the first save.
    let _ = std::fs::create_dir_all(state_dir);
    let key = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let mut map = match states.lock() {
        Ok(m) => m,
        Err(poisoned) => poisoned.into_inner(),
    };
    map.entry(key.clone())
        .or_insert_with(|| Arc::new(IotState::load(&key)))
        .clone()
}
