//! Where the configuration comes from, and the one rule that orders the sources: a flag wins over
//! its `GROUPCAST_*` environment variable, which wins over the provisioner's outputs file.
//!
//! Every connection flag is the command-line face of a variable the library already reads
//! ([`groupcast::config`]): clap reads the flag or, failing that, the variable, and the value goes
//! to [`PublisherBuilder::env_with`] under the variable's name, over the outputs file. So the
//! library's parsing and rules apply unchanged, and its errors, which name the variable, are
//! rewritten here to name the flag too ([`name_flags`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use groupcast::subscribe::events::EventsSubscriber;
use groupcast::subscribe::graphql::GraphqlSubscriber;
use groupcast::subscribe::iot::IotSubscriber;
use groupcast::{
    Authorizer, IamAuth, Outputs, Publisher, PublisherBuilder, StaticToken, Transport,
};

/// The outputs file read when `--outputs` and `GROUPCAST_OUTPUTS` name none.
pub(crate) const DEFAULT_OUTPUTS: &str = "groupcast.outputs.json";

/// Every connection flag and the variable behind it (the order is `--help`'s).
const FLAG_VARS: &[(&str, &str)] = &[
    ("--outputs", "GROUPCAST_OUTPUTS"),
    ("--events-url", "GROUPCAST_EVENTS_URL"),
    ("--events-namespace", "GROUPCAST_EVENTS_NAMESPACE"),
    ("--events-realtime-url", "GROUPCAST_EVENTS_REALTIME_URL"),
    ("--events-epoch-seconds", "GROUPCAST_EVENTS_EPOCH_SECONDS"),
    ("--graphql-url", "GROUPCAST_GRAPHQL_URL"),
    ("--graphql-realtime-url", "GROUPCAST_GRAPHQL_REALTIME_URL"),
    ("--iot-endpoint", "GROUPCAST_IOT_ENDPOINT"),
    ("--iot-topic-prefix", "GROUPCAST_IOT_TOPIC_PREFIX"),
    ("--region", "GROUPCAST_REGION"),
    ("--auth", "GROUPCAST_AUTH"),
    ("--api-key", "GROUPCAST_API_KEY"),
    ("--token", "GROUPCAST_TOKEN"),
    ("--transport", "GROUPCAST_TRANSPORTS"),
];

/// Where to connect and how to authenticate: flags, each with its `GROUPCAST_*` variable.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Configuration (flags > GROUPCAST_* environment > outputs file)")]
pub(crate) struct Connection {
    /// The provisioner's outputs file [default: groupcast.outputs.json, skipped when absent].
    /// A file named here must exist.
    #[arg(long, global = true, env = "GROUPCAST_OUTPUTS", value_name = "FILE")]
    pub(crate) outputs: Option<PathBuf>,
    /// AppSync Events HTTP host or base URL (`/event` is appended).
    #[arg(long, global = true, env = "GROUPCAST_EVENTS_URL", value_name = "URL")]
    pub(crate) events_url: Option<String>,
    /// Events channel namespace [default: the outputs file's first].
    #[arg(
        long,
        global = true,
        env = "GROUPCAST_EVENTS_NAMESPACE",
        value_name = "NS"
    )]
    pub(crate) events_namespace: Option<String>,
    /// AppSync Events realtime host or ws(s):// base URL (`/event/realtime` is appended).
    #[arg(
        long,
        global = true,
        env = "GROUPCAST_EVENTS_REALTIME_URL",
        value_name = "URL"
    )]
    pub(crate) events_realtime_url: Option<String>,
    /// The Events namespace's epoch in seconds when its channels are time-sliced
    /// (`/{ns}/{group}/t{N}/{topic}`): `publish` sends to the current epoch, `watch` holds and rotates
    /// the epochs; 0 = off [default: the outputs file's `epochSeconds` of the namespace used].
    #[arg(
        long,
        global = true,
        env = "GROUPCAST_EVENTS_EPOCH_SECONDS",
        value_name = "SECONDS"
    )]
    pub(crate) events_epoch_seconds: Option<String>,
    /// AppSync GraphQL endpoint (a bare host gets `/graphql`).
    #[arg(long, global = true, env = "GROUPCAST_GRAPHQL_URL", value_name = "URL")]
    pub(crate) graphql_url: Option<String>,
    /// AppSync GraphQL realtime endpoint (`wss://…/graphql`), for `watch --transport graphql`
    /// [default: the outputs file's, else derived from the GraphQL URL].
    #[arg(
        long,
        global = true,
        env = "GROUPCAST_GRAPHQL_REALTIME_URL",
        value_name = "URL"
    )]
    pub(crate) graphql_realtime_url: Option<String>,
    /// IoT Core `iot:Data-ATS` host or base URL.
    #[arg(
        long,
        global = true,
        env = "GROUPCAST_IOT_ENDPOINT",
        value_name = "HOST"
    )]
    pub(crate) iot_endpoint: Option<String>,
    /// First levels of every IoT topic [default: groupcast].
    #[arg(
        long,
        global = true,
        env = "GROUPCAST_IOT_TOPIC_PREFIX",
        value_name = "PREFIX"
    )]
    pub(crate) iot_topic_prefix: Option<String>,
    /// SigV4 signing region [fallbacks: AWS_REGION, the outputs file, the AWS config].
    #[arg(long, global = true, env = "GROUPCAST_REGION", value_name = "REGION")]
    pub(crate) region: Option<String>,
    /// How Events and GraphQL requests are authorized [default: token when a token is given,
    /// else api-key when a key is given, else iam]. IoT always uses IAM (the default AWS chain).
    #[arg(
        long,
        global = true,
        env = "GROUPCAST_AUTH",
        value_enum,
        ignore_case = true
    )]
    pub(crate) auth: Option<AuthMode>,
    /// The AppSync API key for --auth api-key [default: the outputs file's key of each API].
    #[arg(
        long,
        global = true,
        env = "GROUPCAST_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub(crate) api_key: Option<String>,
    /// A token sent as `Authorization`: a Cognito or OIDC ID token, or a Lambda authorizer's
    /// token (for `watch`, the subscriber's identity and so its groups).
    #[arg(
        long,
        global = true,
        env = "GROUPCAST_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub(crate) token: Option<String>,
}

/// `--auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AuthMode {
    /// SigV4 with credentials from the default AWS chain (environment, profile, SSO, IMDS…).
    Iam,
    /// An AppSync API key (`x-api-key`).
    ApiKey,
    /// `--token` (`Authorization: <token>`).
    Token,
}

impl Connection {
    /// The outputs file: `None` when none is named and the default file is absent.
    ///
    /// # Errors
    /// A named file that is missing or malformed, naming the flag.
    pub(crate) fn outputs(&self) -> anyhow::Result<Option<Outputs>> {
        let (path, named) = match &self.outputs {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_OUTPUTS), false),
        };
        if !named && !path.exists() {
            return Ok(None);
        }
        read_outputs(&path)
            .map(Some)
            .with_context(|| format!("--outputs {}", path.display()))
    }

    /// The authorization mode: `--auth` when given, else the kind of secret given.
    ///
    /// # Errors
    /// `--auth token` without a token, or `--auth api-key` with a token only.
    pub(crate) fn auth(&self) -> anyhow::Result<AuthMode> {
        let mode = match self.auth {
            Some(m) => m,
            None if self.token.is_some() => AuthMode::Token,
            None if self.api_key.is_some() => AuthMode::ApiKey,
            None => AuthMode::Iam,
        };
        if mode == AuthMode::Token && self.token.is_none() {
            anyhow::bail!(
                "--auth token: no token given: pass --token TOKEN or set GROUPCAST_TOKEN"
            );
        }
        Ok(mode)
    }

    /// The token authorizer, when the mode is `token`: sent as it is (a Cognito or OIDC ID token,
    /// or a Lambda authorizer's token), fetched again by the library on every reconnect.
    fn token_authorizer(&self, mode: AuthMode) -> Option<Authorizer> {
        match (mode, &self.token) {
            (AuthMode::Token, Some(t)) => Some(Authorizer::token(StaticToken(t.clone()))),
            _ => None,
        }
    }

    /// The values the library reads as `GROUPCAST_*` variables: each flag's (clap already fell
    /// back to the variable), and for the variables without a flag (retry tuning…), the
    /// environment.
    fn vars(&self, mode: AuthMode, transports: &[Transport]) -> HashMap<&'static str, String> {
        let mut v = HashMap::new();
        let mut put = |k: &'static str, val: &Option<String>| {
            if let Some(val) = val {
                v.insert(k, val.clone());
            }
        };
        put("GROUPCAST_EVENTS_URL", &self.events_url);
        put("GROUPCAST_EVENTS_NAMESPACE", &self.events_namespace);
        put("GROUPCAST_EVENTS_REALTIME_URL", &self.events_realtime_url);
        put("GROUPCAST_EVENTS_EPOCH_SECONDS", &self.events_epoch_seconds);
        put("GROUPCAST_GRAPHQL_URL", &self.graphql_url);
        put("GROUPCAST_IOT_ENDPOINT", &self.iot_endpoint);
        put("GROUPCAST_IOT_TOPIC_PREFIX", &self.iot_topic_prefix);
        put("GROUPCAST_REGION", &self.region);
        put("GROUPCAST_API_KEY", &self.api_key);
        // A token is set on the builder as an authorizer; to the library the mode is IAM's
        // default (IoT signs with IAM whatever Events and GraphQL use).
        if mode == AuthMode::ApiKey {
            v.insert("GROUPCAST_AUTH", "api-key".to_owned());
        }
        if !transports.is_empty() {
            let list: Vec<&str> = transports.iter().map(|t| t.as_str()).collect();
            v.insert("GROUPCAST_TRANSPORTS", list.join(","));
        }
        v
    }

    /// The publisher: the outputs file, then the variables and flags over it, then IAM from the
    /// default AWS chain where needed. `transports` is `publish --transport` (empty: every
    /// configured one).
    ///
    /// # Errors
    /// A malformed outputs file or setting, naming the flag and variable.
    pub(crate) async fn publisher(&self, transports: &[Transport]) -> anyhow::Result<Publisher> {
        let mode = self.auth()?;
        let outputs = self.outputs()?;
        let mut b = PublisherBuilder::default();
        if let Some(o) = &outputs {
            b = b.outputs(o);
        }
        let vars = self.vars(mode, transports);
        b = b
            .env_with(self.lookup(&vars))
            .map_err(|e| self.config_error(&e, outputs.is_some()))?;
        if let Some(a) = self.token_authorizer(mode) {
            b = b.events_authorizer(a.clone()).graphql_authorizer(a);
        }
        b.build_with_default_credentials()
            .await
            .map_err(|e| self.config_error(&e, outputs.is_some()))
    }

    /// The AppSync Events subscriber: the outputs file, then the variables and flags over it (the
    /// library's [`groupcast::subscribe::events::EventsSubscriberBuilder::env_with`] reads the same variables as the
    /// publisher's), authorized by the token, the API key, or IAM from the default AWS chain.
    ///
    /// # Errors
    /// A malformed outputs file or setting, naming the flag and variable.
    pub(crate) async fn events_subscriber(&self) -> anyhow::Result<EventsSubscriber> {
        let mode = self.auth()?;
        let outputs = self.outputs()?;
        let mut b = EventsSubscriber::builder();
        let iam = match mode {
            AuthMode::Iam => {
                let (iam, region) = iam_from_default_chain().await?;
                // The chain's region first, so the outputs file and the variables override it.
                if let Some(r) = region {
                    b = b.region(r);
                }
                Some(iam)
            }
            _ => None,
        };
        if let Some(o) = &outputs {
            b = b.outputs(o);
        }
        let vars = self.vars(mode, &[]);
        b = b
            .env_with(self.lookup(&vars))
            .map_err(|e| self.config_error(&e, outputs.is_some()))?;
        if let Some(a) = self.token_authorizer(mode) {
            b = b.authorizer(a);
        }
        if let Some(iam) = iam {
            b = b.authorizer(Authorizer::Iam(iam));
        }
        b.build()
            .map_err(|e| self.config_error(&e, outputs.is_some()))
    }

    /// The AppSync GraphQL subscriber: the endpoint and realtime endpoint from the flags (or
    /// their variables), else the outputs file; authorized as [`Self::events_subscriber`] is.
    ///
    /// # Errors
    /// No GraphQL endpoint anywhere, a missing secret, or what the library refuses.
    pub(crate) async fn graphql_subscriber(&self) -> anyhow::Result<GraphqlSubscriber> {
        let mode = self.auth()?;
        let outputs = self.outputs()?;
        let g = outputs.as_ref().and_then(|o| o.graphql.as_ref());
        let url = self
            .graphql_url
            .clone()
            .or_else(|| g.map(|g| g.url.clone()))
            .ok_or_else(|| {
                self.missing("no GraphQL endpoint: set --graphql-url/GROUPCAST_GRAPHQL_URL or --outputs/GROUPCAST_OUTPUTS", outputs.is_some())
            })?;
        let mut b = GraphqlSubscriber::builder().url(url);
        if let Some(rt) = self
            .graphql_realtime_url
            .clone()
            .or_else(|| g.map(|g| g.realtime_url.clone()).filter(|u| !u.is_empty()))
        {
            b = b.realtime_url(rt);
        }
        let mut region = self.region(outputs.as_ref());
        let authorizer = match mode {
            AuthMode::Token => self.token_authorizer(mode).expect("auth() checked the token"),
            AuthMode::ApiKey => Authorizer::api_key(
                self.api_key
                    .clone()
                    .or_else(|| g.and_then(|g| g.api_key.clone()))
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "--auth api-key: the GraphQL API has no key: pass --api-key/GROUPCAST_API_KEY"
                        )
                    })?,
            ),
            AuthMode::Iam => {
                let (iam, chain_region) = iam_from_default_chain().await?;
                region = region.or(chain_region);
                Authorizer::Iam(iam)
            }
        };
        if let Some(r) = region {
            b = b.region(r);
        }
        b.authorizer(authorizer)
            .build()
            .map_err(|e| anyhow::anyhow!(name_flags(&e.to_string())))
    }

    /// The IoT Core subscriber: MQTT over WebSocket, signed with IAM from the default AWS chain,
    /// as `client_id` (`watch --client-id`).
    ///
    /// # Errors
    /// No IoT endpoint or client id, an empty credentials chain, or what the library refuses.
    pub(crate) async fn iot_subscriber(
        &self,
        client_id: Option<&str>,
    ) -> anyhow::Result<IotSubscriber> {
        let outputs = self.outputs()?;
        let i = outputs.as_ref().and_then(|o| o.iot.as_ref());
        let endpoint = self
            .iot_endpoint
            .clone()
            .or_else(|| i.map(|i| i.data_endpoint.clone()))
            .ok_or_else(|| {
                self.missing("no IoT endpoint: set --iot-endpoint/GROUPCAST_IOT_ENDPOINT or --outputs/GROUPCAST_OUTPUTS", outputs.is_some())
            })?;
        let client_id = client_id.ok_or_else(|| {
            anyhow::anyhow!(
                "--client-id/GROUPCAST_IOT_CLIENT_ID: IoT needs the MQTT client id its policy \
                 admits ({{cognito identity id}}-…, docs/subscribing.md)"
            )
        })?;
        let (iam, chain_region) = iam_from_default_chain().await?;
        let mut b = IotSubscriber::builder()
            .endpoint(endpoint)
            .iam(iam)
            .client_id(client_id);
        if let Some(p) = self
            .iot_topic_prefix
            .clone()
            .or_else(|| i.map(|i| i.topic_prefix.clone()))
        {
            b = b.topic_prefix(p);
        }
        if let Some(r) = self.region(outputs.as_ref()).or(chain_region) {
            b = b.region(r);
        }
        b.build()
            .map_err(|e| anyhow::anyhow!(name_flags(&e.to_string())))
    }

    /// The region: the flag (or `GROUPCAST_REGION`), `AWS_REGION`, the outputs file; the order
    /// the library's `env_with` applies.
    fn region(&self, outputs: Option<&Outputs>) -> Option<String> {
        self.region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .filter(|r| !r.trim().is_empty())
            .or_else(|| outputs.map(|o| o.region.clone()).filter(|r| !r.is_empty()))
    }

    /// A missing-endpoint error, with the hint when no outputs file was found.
    fn missing(&self, what: &str, had_outputs: bool) -> anyhow::Error {
        let mut msg = what.to_owned();
        if !had_outputs && self.outputs.is_none() {
            msg.push_str(&format!(
                "; and there is no {DEFAULT_OUTPUTS} here (pass --outputs FILE)"
            ));
        }
        anyhow::anyhow!(msg)
    }

    /// Which transports `watch` could use, in the order it prefers them: those the outputs file,
    /// the flags or the variables give an endpoint.
    pub(crate) fn watch_transports(&self) -> anyhow::Result<Vec<&'static str>> {
        let o = self.outputs()?;
        let o = o.as_ref();
        let mut v = Vec::new();
        if self.events_url.is_some()
            || self.events_realtime_url.is_some()
            || o.is_some_and(|o| o.events.is_some())
        {
            v.push("events");
        }
        if self.graphql_url.is_some()
            || self.graphql_realtime_url.is_some()
            || o.is_some_and(|o| o.graphql.is_some())
        {
            v.push("graphql");
        }
        if self.iot_endpoint.is_some() || o.is_some_and(|o| o.iot.is_some()) {
            v.push("iot");
        }
        Ok(v)
    }

    /// The variable lookup the library's `env_with` gets: a flag's value (or its variable, which
    /// clap read) for the variables with a flag, the environment for the others.
    fn lookup<'a>(
        &self,
        vars: &'a HashMap<&'static str, String>,
    ) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            if FLAG_VARS.iter().any(|(_, var)| *var == k) {
                vars.get(k).cloned()
            } else {
                std::env::var(k).ok()
            }
        }
    }

    /// A library error rewritten to name the flags beside the variables, with a hint when no
    /// outputs file was found.
    fn config_error(&self, e: &groupcast::Error, had_outputs: bool) -> anyhow::Error {
        let mut msg = name_flags(&e.to_string());
        if !had_outputs && self.outputs.is_none() && msg.contains("--outputs/GROUPCAST_OUTPUTS") {
            msg.push_str(&format!(
                "; and there is no {DEFAULT_OUTPUTS} here (pass --outputs FILE)"
            ));
        }
        anyhow::anyhow!(msg)
    }
}

/// IAM credentials from `aws-config`'s default chain (environment, profile, SSO, web identity,
/// ECS, IMDS), and the chain's region.
async fn iam_from_default_chain() -> anyhow::Result<(IamAuth, Option<String>)> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let provider = config.credentials_provider().ok_or_else(|| {
        anyhow::anyhow!(
            "--auth iam: the default AWS credentials chain is empty (or pass --token or --api-key)"
        )
    })?;
    Ok((
        IamAuth::new(provider),
        config.region().map(ToString::to_string),
    ))
}

/// Reads an outputs file with the library's reader.
fn read_outputs(path: &Path) -> anyhow::Result<Outputs> {
    Outputs::from_path(path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The library's names for settings in its errors (`transports: …`, `invalid events.url: …`) and
/// the flag that sets each.
const FIELD_FLAGS: &[(&str, &str)] = &[
    ("transports", "--transport"),
    ("events.url", "--events-url"),
    ("events.namespace", "--events-namespace"),
    ("events.realtime_url", "--events-realtime-url"),
    ("events.epoch_seconds", "--events-epoch-seconds"),
    ("graphql.url", "--graphql-url"),
    ("iot.endpoint", "--iot-endpoint"),
    ("iot.topic_prefix", "--iot-topic-prefix"),
];

/// `text` with each `GROUPCAST_X` variable that has a flag written `--flag/GROUPCAST_X`, and each
/// library field name before a `:` written `--flag (field)`, so an error names the setting
/// however the user gave it.
pub(crate) fn name_flags(text: &str) -> String {
    let mut text = text.to_owned();
    for (field, flag) in FIELD_FLAGS {
        let pattern = format!("{field}:");
        let mut from = 0;
        while let Some(i) = text[from..].find(&pattern).map(|i| i + from) {
            let before = text[..i].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '.' || c == '_' || c == '-') {
                from = i + pattern.len();
                continue;
            }
            let with = format!("{flag} ({field}):");
            text.replace_range(i..i + pattern.len(), &with);
            from = i + with.len();
        }
    }
    let text = text.as_str();
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(i) = rest.find("GROUPCAST_") {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let var = &tail[..end];
        if let Some((flag, _)) = FLAG_VARS.iter().find(|(_, v)| *v == var) {
            out.push_str(flag);
            out.push('/');
        }
        out.push_str(var);
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Parses a `--transport` value with the library's names.
pub(crate) fn parse_transport(s: &str) -> Result<Transport, String> {
    s.parse::<Transport>().map_err(|e| match e {
        groupcast::Error::Config(m) => m,
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_flag_beside_each_variable_that_has_one() {
        assert_eq!(
            name_flags(
                "GROUPCAST_EVENTS_NAMESPACE is set but no Events endpoint is: set GROUPCAST_EVENTS_URL or GROUPCAST_OUTPUTS"
            ),
            "--events-namespace/GROUPCAST_EVENTS_NAMESPACE is set but no Events endpoint is: set \
             --events-url/GROUPCAST_EVENTS_URL or --outputs/GROUPCAST_OUTPUTS"
        );
        // Variables without a flag, and the realtime one that shares a prefix, stay exact.
        assert_eq!(
            name_flags("GROUPCAST_DEADLINE_MS=\"x\"; GROUPCAST_EVENTS_REALTIME_URL"),
            "GROUPCAST_DEADLINE_MS=\"x\"; --events-realtime-url/GROUPCAST_EVENTS_REALTIME_URL"
        );
    }

    #[test]
    fn errors_name_the_flag_of_a_library_field() {
        assert_eq!(
            name_flags(
                "configuration: transports: iot is listed; invalid events.namespace: \"x_\""
            ),
            "configuration: --transport (transports): iot is listed; invalid --events-namespace \
             (events.namespace): \"x_\""
        );
        assert_eq!(
            name_flags("messages[0].transports: x"),
            "messages[0].transports: x"
        );
    }

    #[test]
    fn an_unknown_transport_is_refused_with_the_list_of_known_ones() {
        let e = parse_transport("smoke").unwrap_err();
        assert!(
            e.contains("\"smoke\"") && e.contains("events, events-ws, graphql, iot"),
            "{e}"
        );
        assert_eq!(parse_transport("GraphQL"), Ok(Transport::Graphql));
    }
}
