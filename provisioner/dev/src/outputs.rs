//! What the local stack tells its clients where to go: the outputs JSON in exactly the format
//! `provisioner apply` writes ([`groupcast::Outputs`], read by `Publisher::from_env` through
//! `GROUPCAST_OUTPUTS`, by the subscribers and by the `groupcast` CLI) with the local URLs, plus a
//! `dev` section; and an `amplify_outputs.json` (Amplify Gen 2's client configuration) a
//! frontend passes to `Amplify.configure`. Both are written atomically (a reader never sees half a
//! file), readable by the owner only (they hold API keys and the local publisher's key).
//!
//! The `dev` section (ignored by the publish library, which skips unknown fields):
//! ```json
//! "dev": {
//!   "ca_path": "/abs/.groupcast-dev/tls/ca.pem",
//!   "issuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123",
//!   "jwks_url": "https://127.0.0.1:4514/us-east-1_AbCdEf123/.well-known/jwks.json",
//!   "user_pool_client_id": "…",
//!   "token_command": "provisioner --config groupcast.toml dev token --user USER --groups G1,G2",
//!   "credentials": {"file": "/abs/.groupcast-dev/credentials.json", "access_key_id": "…", "secret_access_key": "…"},
//!   "env_file": "/abs/.groupcast-dev/env",
//!   "env": {"SSL_CERT_FILE": "…", "NODE_EXTRA_CA_CERTS": "…", "GROUPCAST_OUTPUTS": "…", …},
//!   "ports": {"events": 4510, "graphql": 4511, "iot_wss": 4512, "iot_mqtt": 4513, "aws": 4514},
//!   "urls": {"events": "https://127.0.0.1:4510/event", …}
//! }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use groupcast::Outputs;
use groupcast::outputs::{EventsOutputs, GraphqlOutputs, IotOutputs, NamespaceOutputs};
use serde_json::{Value, json};

use crate::Ports;
use crate::system::{AuthMode, IotAuth, System};

/// The API id the local stack reports for both AppSync APIs (ARNs need one; nothing checks it).
pub const LOCAL_API_ID: &str = "local";

/// Where clients reach the stack: the host in every URL and the ports actually bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// `127.0.0.1`, or the `--listen` address (`[::1]` form for IPv6). A wildcard listen address
    /// is reported as `127.0.0.1`: clients cannot connect to `0.0.0.0`.
    pub host: String,
    pub ports: Ports,
}

impl Endpoints {
    /// The endpoints of a stack listening on `listen` with `ports` bound.
    pub fn new(listen: std::net::IpAddr, ports: Ports) -> Endpoints {
        let host = if listen.is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            match listen {
                std::net::IpAddr::V4(a) => a.to_string(),
                std::net::IpAddr::V6(a) => format!("[{a}]"),
            }
        };
        Endpoints { host, ports }
    }

    fn authority(&self, port: u16) -> String {
        format!("{}:{port}", self.host)
    }

    /// `https://host:events/event`.
    pub fn events_url(&self) -> String {
        format!("https://{}/event", self.authority(self.ports.events))
    }
    /// `wss://host:events/event/realtime`.
    pub fn events_realtime_url(&self) -> String {
        format!("wss://{}/event/realtime", self.authority(self.ports.events))
    }
    /// `https://host:graphql/graphql`.
    pub fn graphql_url(&self) -> String {
        format!("https://{}/graphql", self.authority(self.ports.graphql))
    }
    /// `wss://host:graphql/graphql/realtime`: what AppSync documents for a custom domain (and what
    /// groupcast's subscriber derives from a non-AWS `https://…/graphql`).
    pub fn graphql_realtime_url(&self) -> String {
        format!(
            "wss://{}/graphql/realtime",
            self.authority(self.ports.graphql)
        )
    }
    /// `wss://host:iot_wss/mqtt`.
    pub fn iot_wss_url(&self) -> String {
        format!("wss://{}/mqtt", self.authority(self.ports.iot_wss))
    }
    /// `mqtts://host:iot_mqtt`.
    pub fn iot_mqtt_url(&self) -> String {
        format!("mqtts://{}", self.authority(self.ports.iot_mqtt))
    }
    /// `https://host:aws`.
    pub fn aws_url(&self) -> String {
        format!("https://{}", self.authority(self.ports.aws))
    }
    /// The local token issuer for `user_pool_id` when the config names no pool:
    /// `https://host:aws/{pool}` (Cognito's issuer is
    /// `https://cognito-idp.{region}.amazonaws.com/{pool}`).
    pub fn issuer(&self, user_pool_id: &str) -> String {
        format!("{}/{user_pool_id}", self.aws_url())
    }
    /// Where the AWS port serves the pool's JWKS: `https://host:aws/{pool}/.well-known/jwks.json`.
    pub fn jwks_url(&self, user_pool_id: &str) -> String {
        format!("{}/{user_pool_id}/.well-known/jwks.json", self.aws_url())
    }
}

/// The `dev` section's inputs.
#[derive(Debug, Clone, Default)]
pub struct DevInfo {
    /// The CA clients must trust.
    pub ca_path: PathBuf,
    /// The local token issuer (`iss`): the configured user pool's Cognito issuer URL (so the
    /// rendered handler and the authorizer accept local tokens unchanged), or the local URL
    /// ([`Endpoints::issuer`]) when the config names no pool.
    pub issuer: Option<String>,
    /// Where the issuer's keys are served: always the stack's AWS port
    /// ([`Endpoints::jwks_url`]), whatever `iss` says.
    pub jwks_url: Option<String>,
    /// The app client id the tokens carry as `aud`.
    pub user_pool_client_id: Option<String>,
    /// The command that prints a user's ID token.
    pub token_command: String,
    /// `{state_dir}/credentials.json`, when the stack has made it.
    pub credentials_file: Option<PathBuf>,
    /// The local publisher's key pair, from that file.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Where the outputs JSON is written (for `GROUPCAST_OUTPUTS` in `env`).
    pub outputs_path: PathBuf,
    /// Where the `KEY='VALUE'` env file is written.
    pub env_file: PathBuf,
}

/// The outputs `provisioner apply` would write for `system` if AWS lived at `endpoints`.
/// `lambdas` is left empty: the provisioner fills it as apply does.
pub fn outputs(system: &System, endpoints: &Endpoints) -> Outputs {
    let partition = if system.region.starts_with("cn-") {
        "aws-cn"
    } else if system.region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    let api_arn = format!(
        "arn:{partition}:appsync:{}:{}:apis/{LOCAL_API_ID}",
        system.region, system.account_id
    );
    let api_key = system.identity.api_keys.first().cloned();
    let events = system.events.as_ref().map(|e| {
        let events_uses_key = e.connection_auth_modes.contains(&AuthMode::ApiKey)
            || e.namespaces.iter().any(|n| {
                n.publish_auth_modes.contains(&AuthMode::ApiKey)
                    || n.subscribe_auth_modes.contains(&AuthMode::ApiKey)
            });
        EventsOutputs {
            api_id: LOCAL_API_ID.to_owned(),
            api_arn: api_arn.clone(),
            http_host: endpoints.authority(endpoints.ports.events),
            realtime_host: endpoints.authority(endpoints.ports.events),
            namespaces: e
                .namespaces
                .iter()
                .map(|n| NamespaceOutputs {
                    name: n.name.clone(),
                    arn: format!("{api_arn}/channelNamespace/{}", n.name),
                    epoch_seconds: n.epoch_seconds,
                })
                .collect(),
            api_key: api_key.clone().filter(|_| events_uses_key),
        }
    });
    let graphql = system.graphql.as_ref().map(|g| GraphqlOutputs {
        api_id: LOCAL_API_ID.to_owned(),
        api_arn: api_arn.clone(),
        url: endpoints.graphql_url(),
        realtime_url: endpoints.graphql_realtime_url(),
        api_key: api_key
            .clone()
            .filter(|_| g.auth_modes.contains(&AuthMode::ApiKey)),
    });
    let iot = system.iot.as_ref().map(|i| {
        let custom = matches!(i.auth, IotAuth::CustomAuthorizer { .. });
        IotOutputs {
            // The data endpoint serves MQTT over WSS (`/mqtt`) and HTTPS publish (`/topics/…`) on
            // one port, as AWS IoT's ATS endpoint does on 443.
            data_endpoint: endpoints.authority(endpoints.ports.iot_wss),
            topic_prefix: i.topic_prefix.clone(),
            policy_name_pattern: policy_name_pattern(i),
            policies: if custom {
                BTreeMap::new()
            } else {
                i.group_policies.clone()
            },
            custom_authorizer: custom.then(|| format!("{}-iot-authorizer", system.project)),
        }
    });
    Outputs {
        version: groupcast::outputs::OUTPUTS_VERSION,
        region: system.region.clone(),
        events,
        graphql,
        iot,
        lambdas: BTreeMap::new(),
    }
}

/// The policy name pattern, recovered from the group → policy map (`{group}` stands for the
/// group's topic segment); `{project}-{group}` when there are no groups to recover it from.
fn policy_name_pattern(iot: &crate::system::IotSystem) -> String {
    for (group, policy) in &iot.group_policies {
        if let Ok(segment) = groupcast::group_segment(group)
            && let Some(at) = policy.rfind(&segment)
        {
            return format!(
                "{}{{group}}{}",
                &policy[..at],
                &policy[at + segment.len()..]
            );
        }
    }
    "{group}".to_owned()
}

/// The environment a local client needs: the CA for Rust (`SSL_CERT_FILE`, read by
/// rustls-native-certs under reqwest and tokio-tungstenite) and Node (`NODE_EXTRA_CA_CERTS`), the
/// outputs file, the local publisher's IAM key, and the Lambda endpoint `Publisher::revoke` calls.
pub fn client_env(
    system: &System,
    endpoints: &Endpoints,
    dev: &DevInfo,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let ca = dev.ca_path.display().to_string();
    env.insert("SSL_CERT_FILE".to_owned(), ca.clone());
    env.insert("NODE_EXTRA_CA_CERTS".to_owned(), ca);
    env.insert(
        "GROUPCAST_OUTPUTS".to_owned(),
        dev.outputs_path.display().to_string(),
    );
    env.insert("AWS_REGION".to_owned(), system.region.clone());
    env.insert("GROUPCAST_LAMBDA_ENDPOINT".to_owned(), endpoints.aws_url());
    if let (Some(id), Some(secret)) = (&dev.access_key_id, &dev.secret_access_key) {
        env.insert("AWS_ACCESS_KEY_ID".to_owned(), id.clone());
        env.insert("AWS_SECRET_ACCESS_KEY".to_owned(), secret.clone());
    }
    env
}

/// The outputs JSON as written: [`outputs`] (with the provisioner's `lambdas`) plus `dev`.
pub fn document(outputs: &Outputs, system: &System, endpoints: &Endpoints, dev: &DevInfo) -> Value {
    let mut doc = serde_json::to_value(outputs).unwrap_or_else(|_| json!({}));
    let credentials = dev.credentials_file.as_ref().map(|f| {
        json!({
            "file": f,
            "access_key_id": dev.access_key_id,
            "secret_access_key": dev.secret_access_key,
        })
    });
    let p = endpoints.ports;
    let dev_section = json!({
        "ca_path": dev.ca_path,
        "issuer": dev.issuer,
        "jwks_url": dev.jwks_url,
        "user_pool_client_id": dev.user_pool_client_id,
        // The local identity pool (the AWS port's GetId / GetCredentialsForIdentity).
        "identity_pool_id": crate::identity::identity_pool_id(&system.region, &system.project),
        "token_command": dev.token_command,
        "credentials": credentials,
        "env_file": dev.env_file,
        "env": client_env(system, endpoints, dev),
        "ports": {
            "events": p.events, "graphql": p.graphql, "iot_wss": p.iot_wss,
            "iot_mqtt": p.iot_mqtt, "aws": p.aws,
        },
        "urls": urls(endpoints),
    });
    if let Value::Object(map) = &mut doc {
        map.insert("dev".to_owned(), dev_section);
    }
    doc
}

/// Every endpoint's URL, by port name.
pub fn urls(endpoints: &Endpoints) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("events", endpoints.events_url()),
        ("events_realtime", endpoints.events_realtime_url()),
        ("graphql", endpoints.graphql_url()),
        ("graphql_realtime", endpoints.graphql_realtime_url()),
        ("iot_wss", endpoints.iot_wss_url()),
        ("iot_mqtt", endpoints.iot_mqtt_url()),
        ("aws", endpoints.aws_url()),
    ])
}

/// Amplify's name of an AppSync auth mode, as `amplify_outputs.json` spells it (the AppSync names:
/// `AMAZON_COGNITO_USER_POOLS`, `AWS_IAM`, …).
fn amplify_modes(modes: &[AuthMode]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for m in modes {
        if !out.contains(&m.as_str()) {
            out.push(m.as_str());
        }
    }
    out
}

/// The mode a browser client uses by default: the user pool when allowed (the local issuer's
/// tokens), else the first allowed mode.
fn default_mode(modes: &[AuthMode]) -> Option<&'static str> {
    modes
        .iter()
        .find(|m| **m == AuthMode::Cognito)
        .or_else(|| modes.first())
        .map(|m| m.as_str())
}

/// `amplify_outputs.json` for a frontend: Amplify Gen 2's client configuration, version `1.3`
/// (`@aws-amplify/backend` `clientConfigTypesV1_3`): `auth` (the user pool the local issuer
/// stands in for), `data` (the GraphQL API) and `custom.events` (the Event API, in the shape
/// aws-amplify's `AmplifyOutputsCustomProperties.events` documents: `url`, `aws_region`,
/// `default_authorization_type`, `api_key`, which `Amplify.configure` turns into `API.Events`).
pub fn amplify_outputs(system: &System, endpoints: &Endpoints, dev: &DevInfo) -> Value {
    let mut doc = serde_json::Map::new();
    doc.insert("version".to_owned(), json!("1.3"));
    if let Some(pool) = &system.identity.user_pool_id {
        let mut auth = json!({
            "aws_region": system.identity.user_pool_region.clone().unwrap_or_else(|| system.region.clone()),
            "user_pool_id": pool,
            "user_pool_client_id": dev.user_pool_client_id.clone().unwrap_or_default(),
            "username_attributes": [],
            "standard_required_attributes": [],
            "user_verification_types": [],
            // The local identity pool: Amplify's Gen 2 field for IAM credentials (IoT over WSS).
            "identity_pool_id": crate::identity::identity_pool_id(&system.region, &system.project),
            "unauthenticated_identities_enabled": false,
            "groups": [],
        });
        if let Some(iot) = &system.iot {
            auth["groups"] = json!(
                iot.group_policies
                    .keys()
                    .map(|g| json!({ g.as_str(): { "precedence": 0 } }))
                    .collect::<Vec<_>>()
            );
        }
        doc.insert("auth".to_owned(), auth);
    }
    let api_key = system.identity.api_keys.first().cloned();
    if let Some(g) = &system.graphql {
        let mut data = json!({
            "aws_region": system.region,
            "url": endpoints.graphql_url(),
            "default_authorization_type": default_mode(&g.auth_modes).unwrap_or("AWS_IAM"),
            "authorization_types": amplify_modes(&g.auth_modes)
                .into_iter()
                .filter(|m| Some(*m) != default_mode(&g.auth_modes))
                .collect::<Vec<_>>(),
        });
        if g.auth_modes.contains(&AuthMode::ApiKey)
            && let Some(k) = &api_key
        {
            data["api_key"] = json!(k);
        }
        doc.insert("data".to_owned(), data);
    }
    if let Some(e) = &system.events {
        let mut events = json!({
            "url": endpoints.events_url(),
            "aws_region": system.region,
            "default_authorization_type": default_mode(&e.connection_auth_modes).unwrap_or("AWS_IAM"),
        });
        if e.connection_auth_modes.contains(&AuthMode::ApiKey)
            && let Some(k) = &api_key
        {
            events["api_key"] = json!(k);
        }
        doc.insert("custom".to_owned(), json!({ "events": events }));
    }
    let mut custom = doc.remove("custom").unwrap_or_else(|| json!({}));
    // Not read by Amplify: where the frontend's helper code finds the local stack's other parts.
    custom["groupcast"] = json!({
        "issuer": dev.issuer,
        "ca_path": dev.ca_path,
        "token_command": dev.token_command,
        "iot": system.iot.as_ref().map(|i| json!({
            "url": endpoints.iot_wss_url(),
            "topic_prefix": i.topic_prefix,
        })),
        "events_realtime_url": system.events.as_ref().map(|_| endpoints.events_realtime_url()),
        // The namespaces, with their epoch when channels are time-sliced (`/{ns}/{group}/t{N}/…`,
        // groupcast::epoch): a browser subscriber (clients/js keepSubscribed) needs the period.
        "events": system.events.as_ref().map(|e| json!({
            "namespaces": e.namespaces.iter().map(|n| {
                let mut ns = json!({ "name": n.name });
                if let Some(p) = n.epoch_seconds {
                    ns["epochSeconds"] = json!(p);
                }
                ns
            }).collect::<Vec<_>>(),
        })),
        "graphql_realtime_url": system.graphql.as_ref().map(|_| endpoints.graphql_realtime_url()),
    });
    doc.insert("custom".to_owned(), custom);
    Value::Object(doc)
}

/// `KEY='VALUE'` lines (`set -a; . FILE; set +a` in a shell), single quotes escaped.
pub fn env_file_text(env: &BTreeMap<String, String>) -> String {
    env.iter()
        .map(|(k, v)| format!("{k}='{}'\n", v.replace('\'', r"'\''")))
        .collect()
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, synced, renamed over it.
/// `private` creates it readable by the owner only (mode 0600 on Unix).
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir
        .unwrap_or(Path::new("."))
        .join(format!(".{name}.tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, if private { 0o600 } else { 0o644 });
    let result = (|| {
        let mut file = options.open(&tmp)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Everything the stack writes for its clients, in one call: `amplify_outputs.json` at
/// `amplify_path`, the env file at `dev.env_file`, and LAST the outputs JSON at `dev.outputs_path`:
/// clients wait for the outputs file, so once it exists the other two do too (a client that read the
/// outputs and then found no frontend file was a race seen under load).
pub fn write_all(
    outputs: &Outputs,
    system: &System,
    endpoints: &Endpoints,
    dev: &DevInfo,
    amplify_path: &Path,
) -> std::io::Result<()> {
    let amplify = amplify_outputs(system, endpoints, dev);
    let text = serde_json::to_string_pretty(&amplify).map_err(std::io::Error::other)? + "\n";
    write_atomic(amplify_path, text.as_bytes(), true)?;
    let env = env_file_text(&client_env(system, endpoints, dev));
    write_atomic(&dev.env_file, env.as_bytes(), true)?;
    let doc = document(outputs, system, endpoints, dev);
    let text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)? + "\n";
    write_atomic(&dev.outputs_path, text.as_bytes(), true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::{EventsSystem, GraphqlSystem, IdentitySettings, IotSystem, Namespace};

    fn system() -> System {
        System {
            project: "acme-live".into(),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            identity: IdentitySettings {
                user_pool_id: Some("us-east-1_AbC".into()),
                api_keys: vec!["da2-local".into()],
                ..Default::default()
            },
            events: Some(EventsSystem {
                name: "acme-live-events".into(),
                connection_auth_modes: vec![AuthMode::Cognito, AuthMode::Iam],
                namespaces: vec![Namespace {
                    name: "live".into(),
                    publish_auth_modes: vec![AuthMode::Iam],
                    subscribe_auth_modes: vec![AuthMode::Cognito],
                    ..Default::default()
                }],
            }),
            graphql: Some(GraphqlSystem {
                auth_modes: vec![AuthMode::Iam, AuthMode::Cognito, AuthMode::ApiKey],
                ..Default::default()
            }),
            iot: Some(IotSystem {
                topic_prefix: "groupcast".into(),
                group_policies: BTreeMap::from([
                    ("team-a".into(), "acme-live-team-a".into()),
                    ("Team_B".into(), "acme-live-x--Team-5fB".into()),
                ]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn endpoints() -> Endpoints {
        Endpoints::new(
            "127.0.0.1".parse().unwrap(),
            Ports {
                events: 1001,
                graphql: 1002,
                iot_wss: 1003,
                iot_mqtt: 1004,
                aws: 1005,
            },
        )
    }

    #[test]
    fn the_outputs_point_every_transport_at_the_bound_local_ports() {
        let o = outputs(&system(), &endpoints());
        let e = o.events.as_ref().unwrap();
        assert_eq!(e.http_host, "127.0.0.1:1001");
        assert_eq!(e.realtime_host, "127.0.0.1:1001");
        assert_eq!(
            e.namespaces[0].arn,
            "arn:aws:appsync:us-east-1:123456789012:apis/local/channelNamespace/live"
        );
        assert_eq!(e.api_key, None, "events has no API_KEY mode");
        let g = o.graphql.as_ref().unwrap();
        assert_eq!(g.url, "https://127.0.0.1:1002/graphql");
        assert_eq!(g.realtime_url, "wss://127.0.0.1:1002/graphql/realtime");
        assert_eq!(g.api_key.as_deref(), Some("da2-local"));
        let i = o.iot.as_ref().unwrap();
        assert_eq!(i.data_endpoint, "127.0.0.1:1003");
        assert_eq!(i.policy_name_pattern, "acme-live-{group}");
        assert_eq!(i.policies["team-a"], "acme-live-team-a");
    }

    #[test]
    fn the_outputs_json_reads_back_through_the_publish_library() {
        let dev = DevInfo {
            ca_path: "/s/tls/ca.pem".into(),
            issuer: Some("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC".into()),
            jwks_url: Some(endpoints().jwks_url("us-east-1_AbC")),
            ..Default::default()
        };
        let doc = document(
            &outputs(&system(), &endpoints()),
            &system(),
            &endpoints(),
            &dev,
        );
        let back = Outputs::from_json(&doc.to_string()).unwrap();
        assert_eq!(back, outputs(&system(), &endpoints()));
        assert_eq!(doc["dev"]["ca_path"], "/s/tls/ca.pem");
        assert_eq!(
            doc["dev"]["issuer"],
            "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC"
        );
        assert_eq!(
            doc["dev"]["jwks_url"],
            "https://127.0.0.1:1005/us-east-1_AbC/.well-known/jwks.json"
        );
        assert_eq!(doc["dev"]["ports"]["iot_mqtt"], 1004);
        assert_eq!(doc["dev"]["env"]["SSL_CERT_FILE"], "/s/tls/ca.pem");
    }

    #[test]
    fn amplify_outputs_configure_the_user_pool_graphql_and_events() {
        let dev = DevInfo {
            user_pool_client_id: Some("client".into()),
            ..Default::default()
        };
        let a = amplify_outputs(&system(), &endpoints(), &dev);
        assert_eq!(a["version"], "1.3");
        assert_eq!(a["auth"]["user_pool_id"], "us-east-1_AbC");
        assert_eq!(a["auth"]["user_pool_client_id"], "client");
        assert_eq!(
            a["auth"]["identity_pool_id"],
            crate::identity::identity_pool_id(&system().region, &system().project)
        );
        assert_eq!(a["data"]["url"], "https://127.0.0.1:1002/graphql");
        assert_eq!(
            a["data"]["default_authorization_type"],
            "AMAZON_COGNITO_USER_POOLS"
        );
        assert_eq!(
            a["data"]["authorization_types"],
            json!(["AWS_IAM", "API_KEY"])
        );
        assert_eq!(a["data"]["api_key"], "da2-local");
        assert_eq!(a["custom"]["events"]["url"], "https://127.0.0.1:1001/event");
        assert_eq!(
            a["custom"]["events"]["default_authorization_type"],
            "AMAZON_COGNITO_USER_POOLS"
        );
        assert!(a["custom"]["events"].get("api_key").is_none());
    }

    #[test]
    fn a_wildcard_or_ipv6_listen_address_gives_urls_clients_can_use() {
        let p = Ports::default();
        assert_eq!(
            Endpoints::new("0.0.0.0".parse().unwrap(), p).events_url(),
            "https://127.0.0.1:4510/event"
        );
        assert_eq!(
            Endpoints::new("::1".parse().unwrap(), p).graphql_url(),
            "https://[::1]:4511/graphql"
        );
    }

    #[test]
    fn the_env_file_quotes_every_value_for_a_shell() {
        let env = BTreeMap::from([("A".to_owned(), "it's".to_owned())]);
        assert_eq!(env_file_text(&env), "A='it'\\''s'\n");
    }

    #[test]
    fn an_atomic_write_leaves_a_private_file_and_no_temporary() {
        let dir = std::env::temp_dir().join(format!("groupcast-dev-out-{}", std::process::id()));
        let path = dir.join("o.json");
        write_atomic(&path, b"{}", true).unwrap();
        write_atomic(&path, b"{\"a\":1}", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn both_outputs_carry_a_namespaces_epoch_seconds_and_omit_it_when_off() {
        let mut sys = system();
        let events = sys.events.as_mut().unwrap();
        events.namespaces.push(Namespace {
            name: "ticks".into(),
            epoch_seconds: Some(300),
            ..events.namespaces[0].clone()
        });
        let o = outputs(&sys, &endpoints());
        let e = o.events.as_ref().unwrap();
        assert_eq!(e.namespaces[0].epoch_seconds, None);
        assert_eq!(e.namespaces[1].epoch_seconds, Some(300));
        let doc = document(&o, &sys, &endpoints(), &DevInfo::default());
        assert_eq!(doc["events"]["namespaces"][1]["epochSeconds"], 300);
        assert!(doc["events"]["namespaces"][0].get("epochSeconds").is_none());
        let back = Outputs::from_json(&doc.to_string()).unwrap();
        assert_eq!(back.events.unwrap().namespaces[1].epoch_seconds, Some(300));

        let amplify = amplify_outputs(&sys, &endpoints(), &DevInfo::default());
        assert_eq!(
            amplify["custom"]["groupcast"]["events"]["namespaces"],
            serde_json::json!([{"name": "live"}, {"name": "ticks", "epochSeconds": 300}])
        );
    }
}
