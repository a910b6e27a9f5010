//! `provisioner dev`: the local stack (issue 11). Renders the config in memory with the same
//! renderer as `render`/`apply`, turns the config and the documents into the
//! [`groupcast_dev::system::System`] the stack serves ([`system`]), and runs it
//! ([`groupcast_dev::run`]) until Ctrl-C or SIGTERM. `provisioner dev token` prints a local user's
//! ID token.
//!
//! Everything the stack keeps across runs lives in the state directory (`--state-dir`, default
//! `.groupcast-dev/` beside the config): `tls/` (the CA clients trust), the token issuer's key,
//! `users.json`, `credentials.json`, `api-key`, and while it runs `running.json` (the bound ports
//! and the issuer, which `dev token` reads so its tokens carry the running stack's `iss`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use groupcast_dev::system::{
    self as sys, AuthMode as DevMode, EventsSystem, GraphqlSystem, IdentitySettings, IotSystem,
    LambdaAuthorizerSettings, OidcSettings, System,
};
use groupcast_dev::{Ports, outputs as out, run as dev_run};
use sha2::Digest as _;

use super::{Global, TemplateArgs};
use crate::config::{AuthMode, AuthProviders, Config};
use crate::render::{Ids, Rendered};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// `provisioner dev token --user alice --groups team-a,editors`: set the user's groups in the
    /// local user directory and print an ID token for them (alone on stdout).
    #[command(
        after_help = "Example:\n  ID_TOKEN=$(provisioner --config examples/groupcast.toml dev token --user alice --groups team-a)"
    )]
    Token(TokenArgs),
}

/// Where the stack listens and keeps its state; shared by `dev` and `dev token`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Where {
    /// The address every endpoint listens on (and the server certificate names).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub(crate) listen: IpAddr,
    /// Ports by name, comma separated: events, graphql, iot_wss, iot_mqtt, aws (0 = any free
    /// port; the bound ports are printed and written to the outputs).
    #[arg(long, value_name = "NAME=PORT,…")]
    pub(crate) ports: Option<String>,
    /// The Events port (HTTPS /event, WSS /event/realtime) [default: 4510].
    #[arg(long, value_name = "PORT")]
    pub(crate) events_port: Option<u16>,
    /// The GraphQL port (HTTPS /graphql, WSS /graphql/realtime) [default: 4511].
    #[arg(long, value_name = "PORT")]
    pub(crate) graphql_port: Option<u16>,
    /// The IoT MQTT-over-WSS port (/mqtt, and HTTPS publish /topics/…) [default: 4512].
    #[arg(long, value_name = "PORT")]
    pub(crate) iot_wss_port: Option<u16>,
    /// The IoT MQTT-over-TLS port [default: 4513].
    #[arg(long, value_name = "PORT")]
    pub(crate) iot_mqtt_port: Option<u16>,
    /// The emulated AWS APIs' port (Cognito incl. JWKS, identity pool, IoT control, Lambda)
    /// [default: 4514].
    #[arg(long, value_name = "PORT")]
    pub(crate) aws_port: Option<u16>,
    /// Where the CA, keys, users and attachments are kept [default: .groupcast-dev/ beside the
    /// config].
    #[arg(long, value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
}

impl Where {
    /// The ports asked for: defaults, then `--ports`, then the per-port flags.
    pub(crate) fn ports(&self) -> anyhow::Result<Ports> {
        let mut p = Ports::default();
        if let Some(spec) = &self.ports {
            p.parse_overrides(spec).map_err(anyhow::Error::msg)?;
        }
        for (name, v) in [
            ("events", self.events_port),
            ("graphql", self.graphql_port),
            ("iot_wss", self.iot_wss_port),
            ("iot_mqtt", self.iot_mqtt_port),
            ("aws", self.aws_port),
        ] {
            if let Some(v) = v {
                p.set(name, v);
            }
        }
        Ok(p)
    }

    /// The state directory, absolute (it is written into the outputs).
    pub(crate) fn state_dir(&self, config_path: &Path) -> anyhow::Result<PathBuf> {
        let dir = match &self.state_dir {
            Some(d) => d.clone(),
            None => config_path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .join(".groupcast-dev"),
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("--state-dir: creating {}", dir.display()))?;
        std::path::absolute(&dir).with_context(|| format!("--state-dir: {}", dir.display()))
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) at: Where,
    /// Decision log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    /// Where to write the outputs JSON (the `provisioner apply` format plus a `dev` section)
    /// [default: STATE_DIR/outputs.json; never the apply default, so real outputs survive].
    #[arg(long, value_name = "FILE")]
    pub(crate) outputs: Option<PathBuf>,
    /// Where to write the frontend's Amplify configuration [default: STATE_DIR/amplify_outputs.json].
    #[arg(long, value_name = "FILE")]
    pub(crate) amplify_outputs: Option<PathBuf>,
    /// The Lambda authorizer binary (functions/authorizer) to run for AWS_LAMBDA callers
    /// [default: the first of target/lambda/authorizer/bootstrap, target/release/authorizer,
    /// target/debug/authorizer].
    #[arg(long, value_name = "FILE")]
    pub(crate) authorizer_bin: Option<PathBuf>,
    /// The IoT custom authorizer binary (functions/iot-authorizer), with
    /// iot.auth = "custom-authorizer" [default: found as --authorizer-bin is].
    #[arg(long, value_name = "FILE")]
    pub(crate) iot_authorizer_bin: Option<PathBuf>,
    /// The iot-grant binary (functions/iot-grant) the stack runs as `{project}-iot-grant` with
    /// attachment-mode [iot], so `groupcast revoke` / `Publisher::revoke` reach it through Lambda
    /// Invoke on the AWS port [default: found as --authorizer-bin is].
    #[arg(long, value_name = "FILE")]
    pub(crate) iot_grant_bin: Option<PathBuf>,
    /// DEV ONLY: with iot.auth = "custom-authorizer", the broker asks the authorizer again after
    /// at most SECONDS (its refreshAfterInSeconds otherwise; AWS never refreshes sooner than 300 s),
    /// so a group removal shows within seconds in a test.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) iot_refresh_seconds: Option<u64>,
    #[command(flatten)]
    pub(crate) templates: TemplateArgs,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TokenArgs {
    /// The user (`cognito:username`; `sub` is derived from it).
    #[arg(long, value_name = "NAME")]
    pub(crate) user: String,
    /// The user's groups, comma separated (`cognito:groups`); `--groups ""` for none.
    #[arg(long, value_delimiter = ',', value_name = "G1,G2")]
    pub(crate) groups: Vec<String>,
    /// How long the token is valid: 90s, 30m, 1h, 1d (Cognito allows 5 minutes to 1 day).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub(crate) expires_in: Duration,
    #[command(flatten)]
    pub(crate) at: Where,
}

/// `1h`, `30m`, `90s`, `1d`, or seconds. At most a day: a Cognito ID token lives 5 minutes to 1
/// day (https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-id-token.html);
/// shorter ones are allowed locally, to test expiry.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (n, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit (s, m, h, d), e.g. 1h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86400),
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use s, m, h or d")),
    };
    if secs == 0 || secs > 86400 {
        return Err(format!(
            "{s:?}: must be from 1 second to 1 day (a Cognito ID token's longest life)"
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// `provisioner dev` and `provisioner dev token`.
pub(crate) async fn run(global: &Global, config: &Config, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(Command::Token(t)) => token(global, config, t),
        None => serve(global, config, args.serve).await,
    }
}

/// The user pool the local issuer stands in for: the config's, else a local one.
fn user_pool(config: &Config) -> (String, String) {
    config.cognito_user_pool().unwrap_or_else(|| {
        (
            format!("{}_groupcastdev", config.project.region),
            config.project.region.clone(),
        )
    })
}

/// The app client id local tokens carry as `aud`: 26 lower-case letters and digits (the shape of
/// a Cognito app client id, which the example's `app_id_client_regex` asks for), derived from the
/// project and pool so it is stable across runs.
pub(crate) fn local_client_id(config: &Config) -> String {
    let (pool, _) = user_pool(config);
    let digest = sha2::Sha256::digest(format!("{}/{pool}", config.project.name));
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    digest
        .iter()
        .take(26)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// What a running stack records for `dev token` (`{state_dir}/running.json`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct RunningRecord {
    pid: u32,
    issuer: String,
    client_id: String,
    aws_port: u16,
}

/// The `iss` of local tokens. With a configured user pool, that pool's Cognito issuer
/// (`https://cognito-idp.{region}.amazonaws.com/{pool}`, as
/// https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-tokens-verifying-a-jwt.html
/// gives it): the rendered Events handler and the authorizer then accept local tokens unchanged.
/// They are signed by the stack's own key, so AWS refuses them. Without a pool, the stack's own
/// URL (which holds the AWS port).
fn issuer_url(config: &Config, endpoints: &out::Endpoints) -> String {
    match config.cognito_user_pool() {
        Some((pool, region)) => format!("https://cognito-idp.{region}.amazonaws.com/{pool}"),
        None => endpoints.issuer(&user_pool(config).0),
    }
}

/// The issuer URL a token must carry: the configured pool's, else the running stack's (from
/// `running.json`, if its process is alive), else the one a stack with these flags would have.
fn issuer_for_token(config: &Config, at: &Where, state_dir: &Path) -> anyhow::Result<String> {
    if config.cognito_user_pool().is_some() {
        return Ok(issuer_url(
            config,
            &out::Endpoints::new(at.listen, at.ports()?),
        ));
    }
    let record: Option<RunningRecord> = std::fs::read_to_string(state_dir.join("running.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if let Some(r) = record
        && process_alive(r.pid)
    {
        return Ok(r.issuer);
    }
    let endpoints = out::Endpoints::new(at.listen, at.ports()?);
    Ok(issuer_url(config, &endpoints))
}

fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

fn token(global: &Global, config: &Config, args: TokenArgs) -> anyhow::Result<ExitCode> {
    let state_dir = args.at.state_dir(&global.config)?;
    let groups: Vec<String> = args
        .groups
        .iter()
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty())
        .collect();
    if args.user.trim().is_empty() {
        anyhow::bail!("--user: must not be empty");
    }
    let issuer_url = issuer_for_token(config, &args.at, &state_dir)?;
    let directory = groupcast_dev::identity::Directory::open(&state_dir);
    directory
        .set_groups(&args.user, &groups)
        .map_err(|e| anyhow::anyhow!("the local user directory in {}: {e}", state_dir.display()))?;
    let issuer = groupcast_dev::identity::Issuer::load_or_create(
        &state_dir,
        &issuer_url,
        &local_client_id(config),
    )
    .map_err(|e| anyhow::anyhow!("the local token issuer in {}: {e}", state_dir.display()))?;
    let jwt = issuer
        .mint(&args.user, &groups, args.expires_in)
        .map_err(|e| anyhow::anyhow!("minting a token for {:?}: {e}", args.user))?;
    outln!("{jwt}");
    Ok(ExitCode::SUCCESS)
}

async fn serve(global: &Global, config: &Config, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let state_dir = args.at.state_dir(&global.config)?;
    let requested = args.at.ports()?;
    let rendered = args.templates.renderer()?.render(config, &local_ids())?;
    let bins = Binaries {
        authorizer: find_binary(
            "--authorizer-bin",
            args.authorizer_bin.as_deref(),
            "authorizer",
        )?,
        iot_authorizer: find_binary(
            "--iot-authorizer-bin",
            args.iot_authorizer_bin.as_deref(),
            "iot-authorizer",
        )?,
        iot_grant: find_binary(
            "--iot-grant-bin",
            args.iot_grant_bin.as_deref(),
            "iot-grant",
        )?,
    };
    let api_key = api_key(config, &state_dir)?;
    let mut system = system(config, &rendered, &bins, api_key)?;
    if let Some(secs) = args.iot_refresh_seconds {
        refresh_cap(&mut system, secs)?;
        eprintln!(
            "warning: --iot-refresh-seconds {secs}: the IoT broker asks the custom authorizer \
             again after at most {secs} s; AWS IoT Core waits refreshAfterInSeconds (300 s at \
             least): a dev-only setting"
        );
    }
    let system = Arc::new(system);
    warn_missing_binaries(config, &system);

    let bound = dev_run::bind(args.at.listen, requested).await?;
    let endpoints = out::Endpoints::new(args.at.listen, bound.ports);
    let tls = groupcast_dev::tls::load_or_create(&state_dir, args.at.listen)?;
    let (pool, _) = user_pool(config);
    let issuer_url = issuer_url(config, &endpoints);
    let client_id = local_client_id(config);
    let issuer = Arc::new(
        groupcast_dev::identity::Issuer::load_or_create(&state_dir, &issuer_url, &client_id)
            .map_err(|e| {
                anyhow::anyhow!("the local token issuer in {}: {e}", state_dir.display())
            })?,
    );
    let auth = groupcast_dev::auth::Authenticator::new(system.clone(), issuer, &state_dir)
        .map_err(|e| anyhow::anyhow!("the local authenticator: {e}"))?;
    let log = groupcast_dev::log::DecisionLog::new(match args.log_format {
        LogFormat::Text => groupcast_dev::log::LogFormat::Text,
        LogFormat::Json => groupcast_dev::log::LogFormat::Json,
    });
    let stack = Arc::new(groupcast_dev::Stack {
        system: system.clone(),
        auth,
        log,
        tls: Some(tls.acceptor.clone()),
        state_dir: state_dir.clone(),
        ports: bound.ports,
    });
    // The functions (iot-grant) and the AWS endpoint they and the authorizers call, before the
    // ready line: a revoke sent on seeing it must find iot-grant.
    let functions = groupcast_dev::functions::start(&stack)
        .await
        .context("starting the stack's Lambda functions")?;
    let running = dev_run::serve(stack, bound);

    // What clients need to find and trust the stack.
    let outputs_path = args
        .outputs
        .clone()
        .unwrap_or_else(|| state_dir.join("outputs.json"));
    let outputs_path = std::path::absolute(&outputs_path).unwrap_or(outputs_path);
    let amplify_path = args
        .amplify_outputs
        .clone()
        .unwrap_or_else(|| state_dir.join("amplify_outputs.json"));
    let (access_key_id, secret_access_key) = read_credentials(&state_dir);
    let dev = out::DevInfo {
        ca_path: tls.ca_path.clone(),
        issuer: Some(issuer_url.clone()),
        jwks_url: Some(endpoints.jwks_url(&pool)),
        user_pool_client_id: Some(client_id.clone()),
        token_command: token_command(&global.config, &args.at),
        credentials_file: Some(state_dir.join("credentials.json")),
        access_key_id,
        secret_access_key,
        outputs_path: outputs_path.clone(),
        env_file: state_dir.join("env"),
    };
    let mut outputs = out::outputs(&system, &endpoints);
    outputs.lambdas = crate::lambdas::lambdas(config, &outputs, &rendered);
    out::write_all(&outputs, &system, &endpoints, &dev, &amplify_path)
        .with_context(|| format!("writing {}", outputs_path.display()))?;
    let record = RunningRecord {
        pid: std::process::id(),
        issuer: issuer_url,
        client_id,
        aws_port: endpoints.ports.aws,
    };
    let running_path = state_dir.join("running.json");
    out::write_atomic(
        &running_path,
        serde_json::to_string_pretty(&record)?.as_bytes(),
        false,
    )
    .with_context(|| format!("writing {}", running_path.display()))?;

    // Listening for the stop signals before the ready line: a SIGTERM sent on seeing it must
    // stop the stack cleanly.
    let signals = dev_run::Signals::install().context("listening for SIGTERM/SIGINT")?;
    eprintln!(
        "{}",
        dev_run::ready_line(&endpoints, &tls.ca_path, started.elapsed())
    );
    eprintln!(
        "outputs: {} (frontend: {}); client environment: set -a; . {}; set +a",
        outputs_path.display(),
        amplify_path.display(),
        dev.env_file.display()
    );
    let signal = running.until_signal(signals).await;
    drop(functions);
    let _ = std::fs::remove_file(&running_path);
    eprintln!("groupcast dev stopped ({signal})");
    Ok(ExitCode::SUCCESS)
}

/// The ids the documents are rendered with: one local API id for both APIs, as the outputs say.
fn local_ids() -> Ids {
    Ids {
        events_api_id: Some(out::LOCAL_API_ID.to_owned()),
        graphql_api_id: Some(out::LOCAL_API_ID.to_owned()),
    }
}

/// The command that prints a token from this stack, as a user would type it.
fn token_command(config_path: &Path, at: &Where) -> String {
    let mut cmd = format!(
        "provisioner --config {} dev token --user USER --groups GROUP1,GROUP2",
        config_path.display()
    );
    if let Some(d) = &at.state_dir {
        cmd.push_str(&format!(" --state-dir {}", d.display()));
    }
    cmd
}

/// The local publisher's key pair from `{state_dir}/credentials.json`, when the stack made it.
fn read_credentials(state_dir: &Path) -> (Option<String>, Option<String>) {
    let value: Option<serde_json::Value> =
        std::fs::read_to_string(state_dir.join("credentials.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
    let get = |k: &str| {
        value
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    (get("access_key_id"), get("secret_access_key"))
}

/// The API key the stack accepts when the config asks for one: made on first run from the
/// system's random source and kept in `{state_dir}/api-key` (0600), `da2-` + 26 characters like
/// AppSync's.
fn api_key(config: &Config, state_dir: &Path) -> anyhow::Result<Option<String>> {
    let wanted = config
        .events
        .as_ref()
        .is_some_and(|e| e.auth.api_key.is_some())
        || config
            .graphql
            .as_ref()
            .is_some_and(|g| g.auth.api_key.is_some());
    if !wanted {
        return Ok(None);
    }
    let path = state_dir.join("api-key");
    if let Ok(k) = std::fs::read_to_string(&path) {
        let k = k.trim();
        if k.starts_with("da2-") && k.len() == 30 {
            return Ok(Some(k.to_owned()));
        }
    }
    let mut seed = [0u8; 32];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").context("reading /dev/urandom for an API key")?,
        &mut seed,
    )
    .context("reading /dev/urandom for an API key")?;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let key: String = std::iter::once("da2-".to_owned())
        .chain(
            seed.iter()
                .take(26)
                .map(|b| (ALPHABET[usize::from(*b) % ALPHABET.len()] as char).to_string()),
        )
        .collect();
    out::write_atomic(&path, key.as_bytes(), true)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Some(key))
}

/// The Lambda binaries the stack runs, when found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Binaries {
    pub(crate) authorizer: Option<PathBuf>,
    pub(crate) iot_authorizer: Option<PathBuf>,
    pub(crate) iot_grant: Option<PathBuf>,
}

/// The binary named by `flag`, which must exist; else the first build of `name` found under the
/// target directories (`CARGO_TARGET_DIR`, then `target/`): `cargo lambda build`'s
/// `lambda/{name}/bootstrap`, then `release/{name}`, then `debug/{name}`.
fn find_binary(flag: &str, explicit: Option<&Path>, name: &str) -> anyhow::Result<Option<PathBuf>> {
    if let Some(p) = explicit {
        if !p.is_file() {
            anyhow::bail!("{flag}: {} is not a file", p.display());
        }
        return Ok(Some(
            std::path::absolute(p).unwrap_or_else(|_| p.to_owned()),
        ));
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        roots.push(PathBuf::from(d));
    }
    roots.push(PathBuf::from("target"));
    for root in roots {
        for candidate in [
            root.join("lambda").join(name).join("bootstrap"),
            root.join("release").join(name),
            root.join("debug").join(name),
        ] {
            if candidate.is_file() {
                return Ok(Some(std::path::absolute(&candidate).unwrap_or(candidate)));
            }
        }
    }
    Ok(None)
}

fn warn_missing_binaries(config: &Config, system: &System) {
    if config.uses_lambda_auth()
        && system
            .identity
            .lambda_authorizer
            .as_ref()
            .is_some_and(|l| l.binary.is_none())
    {
        eprintln!(
            "warning: no authorizer binary found (cargo build -p authorizer, or --authorizer-bin): \
             AWS_LAMBDA callers will be refused"
        );
    }
    if let Some(grant) = system.iot.as_ref().and_then(|i| i.grant_function.as_ref())
        && grant.binary.is_none()
    {
        eprintln!(
            "warning: no iot-grant binary found (cargo build -p iot-grant, or --iot-grant-bin): \
             IoT revocation (groupcast revoke, Publisher::revoke) will fail"
        );
    }
    if let Some(iot) = &system.iot
        && let sys::IotAuth::CustomAuthorizer { binary: None, .. } = &iot.auth
    {
        eprintln!(
            "warning: no iot-authorizer binary found (cargo build -p iot-authorizer, or \
             --iot-authorizer-bin): IoT connections will be refused"
        );
    }
}

fn dev_mode(m: AuthMode) -> DevMode {
    match m {
        AuthMode::ApiKey => DevMode::ApiKey,
        AuthMode::Iam => DevMode::Iam,
        AuthMode::Cognito => DevMode::Cognito,
        AuthMode::Oidc => DevMode::Oidc,
        AuthMode::Lambda => DevMode::Lambda,
    }
}

fn dev_modes(ms: &[AuthMode]) -> Vec<DevMode> {
    ms.iter().copied().map(dev_mode).collect()
}

/// A rendered document the system needs, or an error naming it.
fn doc(rendered: &Rendered, path: &str) -> anyhow::Result<String> {
    rendered.get(path).map(str::to_owned).with_context(|| {
        format!("the rendered documents have no {path} (the templates in use do not make it)")
    })
}

/// `--iot-refresh-seconds`: the dev-only cap on the custom authorizer's refresh period
/// ([`sys::IotSystem::refresh_cap`]); refused without a custom authorizer, where it would do
/// nothing.
fn refresh_cap(system: &mut System, secs: u64) -> anyhow::Result<()> {
    match system.iot.as_mut() {
        Some(iot) if matches!(iot.auth, sys::IotAuth::CustomAuthorizer { .. }) => {
            iot.refresh_cap = Some(Duration::from_secs(secs));
            Ok(())
        }
        _ => anyhow::bail!(
            "--iot-refresh-seconds: only with iot.auth = \"custom-authorizer\" (it shortens the \
             refresh of a custom authorizer's policies)"
        ),
    }
}

/// The iot-grant function of attachment mode as the stack runs it: the environment `provisioner
/// apply` gives the deployed function (crate::lambdas, one rule), with the stack's own pools
/// and app client.
fn grant_function(config: &Config, bins: &Binaries) -> sys::LocalFunction {
    let name = config.function_name(crate::config::Function::IotGrant);
    let deployed =
        crate::lambdas::lambdas(config, &groupcast::Outputs::default(), &Rendered::default());
    let mut env = deployed
        .get(crate::config::Function::IotGrant.suffix())
        .map(|l| l.environment.clone())
        .unwrap_or_default();
    env.insert(
        "GROUPCAST_COGNITO_IDENTITY_POOL_ID".into(),
        groupcast_dev::identity::identity_pool_id(&config.project.region, &config.project.name),
    );
    env.insert("GROUPCAST_COGNITO_USER_POOL_ID".into(), user_pool(config).0);
    env.insert("GROUPCAST_JWT_AUDIENCES".into(), local_client_id(config));
    sys::LocalFunction {
        name,
        binary: bins.iot_grant.clone(),
        env,
    }
}

/// The system the local stack serves, from the config and its rendered documents: every
/// namespace with its handler code and auth modes, the GraphQL schema and every resolver
/// template, one IoT policy per group, the identity providers. `api_key` is the key the stack
/// accepts when the config asks for API keys. No I/O.
pub(crate) fn system(
    config: &Config,
    rendered: &Rendered,
    bins: &Binaries,
    api_key: Option<String>,
) -> anyhow::Result<System> {
    let providers: Vec<&AuthProviders> = config
        .events
        .iter()
        .map(|e| &e.auth)
        .chain(config.graphql.iter().map(|g| &g.auth))
        .collect();
    let cognito = config.cognito_pool();
    let oidc = providers.iter().find_map(|p| p.oidc.as_ref());
    let lambda = providers.iter().find_map(|p| p.lambda.as_ref());
    let identity = IdentitySettings {
        user_pool_id: Some(user_pool(config).0),
        user_pool_region: Some(user_pool(config).1),
        app_id_client_regex: cognito.and_then(|c| c.app_id_client_regex.clone()),
        oidc: oidc.map(|o| OidcSettings {
            issuer: o.issuer.clone(),
            client_id: o.client_id.clone(),
            groups_claim: o.groups_claim.clone(),
        }),
        lambda_authorizer: lambda.map(|l| LambdaAuthorizerSettings {
            arn: l.authorizer_arn.clone(),
            result_ttl_seconds: l.result_ttl_seconds,
            binary: bins.authorizer.clone(),
            user_pool_id: config.authorizer_user_pool(),
        }),
        api_keys: api_key.into_iter().collect(),
    };

    let events = match &config.events {
        None => None,
        Some(e) => Some(EventsSystem {
            name: e.name.clone(),
            connection_auth_modes: dev_modes(&e.connection_auth_modes),
            namespaces: e
                .namespaces
                .iter()
                .map(|ns| {
                    Ok(sys::Namespace {
                        name: ns.name.clone(),
                        handler_js: doc(rendered, &format!("events/{}.js", ns.name))?,
                        // groupcast sets the API's default modes on every namespace (reconcile.rs).
                        publish_auth_modes: dev_modes(&e.default_publish_auth_modes),
                        subscribe_auth_modes: dev_modes(&e.default_subscribe_auth_modes),
                        epoch_seconds: ns.epoch_seconds,
                    })
                })
                .collect::<anyhow::Result<_>>()?,
        }),
    };

    let graphql = match &config.graphql {
        None => None,
        Some(g) => {
            let templates = rendered
                .files
                .iter()
                .filter_map(|(path, text)| {
                    let name = path.strip_prefix("graphql/")?;
                    name.ends_with(".vtl")
                        .then(|| (name.to_owned(), text.clone()))
                })
                .collect();
            // The API's default mode is AWS_IAM (the publish mutation); the subscriber modes are
            // additional ones the schema's directives name per field.
            let mut auth_modes = vec![DevMode::Iam];
            for m in dev_modes(&g.subscriber_auth_modes) {
                if !auth_modes.contains(&m) {
                    auth_modes.push(m);
                }
            }
            Some(GraphqlSystem {
                name: g.name.clone(),
                schema: doc(rendered, "graphql/schema.graphql")?,
                templates,
                auth_modes,
                groups_claim: g.groups_claim.clone(),
            })
        }
    };

    let iot = match &config.iot {
        None => None,
        Some(i) => {
            let groups = config.iot_groups();
            let (policies, group_policies, auth) = if i.custom_authorizer() {
                // No attachable policies; the groups (GROUPCAST_IOT_GROUPS) and the placeholder
                // policy the authorizer completes per connection.
                (
                    Default::default(),
                    groups
                        .iter()
                        .map(|g| (g.group.clone(), g.policy_name.clone()))
                        .collect(),
                    sys::IotAuth::CustomAuthorizer {
                        binary: bins.iot_authorizer.clone(),
                        policy: rendered
                            .get(crate::render::AUTHORIZER_POLICY_PATH)
                            .map(|d| d.to_string()),
                    },
                )
            } else {
                let mut policies = std::collections::BTreeMap::new();
                let mut group_policies = std::collections::BTreeMap::new();
                for g in &groups {
                    policies.insert(
                        g.policy_name.clone(),
                        doc(rendered, &format!("iot/{}.json", g.policy_name))?,
                    );
                    group_policies.insert(g.group.clone(), g.policy_name.clone());
                }
                (policies, group_policies, sys::IotAuth::Attachment)
            };
            Some(IotSystem {
                topic_prefix: i.topic_prefix.clone(),
                policies,
                group_policies,
                grant_function: (!i.custom_authorizer()).then(|| grant_function(config, bins)),
                auth,
                refresh_cap: None,
            })
        }
    };

    Ok(System {
        project: config.project.name.clone(),
        region: config.project.region.clone(),
        account_id: config.project.account_id.clone(),
        publisher_principals: config.publisher_principals(),
        identity,
        events,
        graphql,
        iot,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Renderer;

    fn config(text: &str) -> Config {
        Config::parse(Path::new("groupcast.toml"), text).unwrap()
    }

    fn example() -> Config {
        config(include_str!("../../../examples/groupcast.toml"))
    }

    fn build(c: &Config) -> System {
        let rendered = Renderer::embedded()
            .unwrap()
            .render(c, &local_ids())
            .unwrap();
        let bins = Binaries {
            authorizer: Some("/bin/authorizer".into()),
            iot_authorizer: None,
            iot_grant: Some("/bin/iot-grant".into()),
        };
        system(c, &rendered, &bins, Some("da2-k".into())).unwrap()
    }

    #[test]
    fn the_example_system_has_every_namespace_with_its_rendered_handler_and_modes() {
        let c = example();
        let rendered = Renderer::embedded()
            .unwrap()
            .render(&c, &local_ids())
            .unwrap();
        let s = build(&c);
        assert_eq!(s.project, "acme-live");
        assert_eq!(s.region, "us-east-1");
        assert_eq!(s.account_id, "123456789012");
        assert_eq!(
            s.publisher_principals,
            vec!["arn:aws:sts::123456789012:assumed-role/acme-live-publisher/"]
        );
        let e = s.events.as_ref().unwrap();
        assert_eq!(e.name, "acme-live-events");
        assert_eq!(
            e.connection_auth_modes,
            vec![DevMode::Cognito, DevMode::Lambda, DevMode::Iam]
        );
        let names: Vec<&str> = e.namespaces.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["live", "jobs"]);
        for ns in &e.namespaces {
            assert_eq!(
                ns.handler_js,
                rendered.get(&format!("events/{}.js", ns.name)).unwrap()
            );
            assert!(ns.handler_js.contains("onSubscribe"));
            assert_eq!(ns.publish_auth_modes, vec![DevMode::Iam]);
            assert_eq!(
                ns.subscribe_auth_modes,
                vec![DevMode::Cognito, DevMode::Lambda]
            );
        }
    }

    #[test]
    fn the_example_system_has_the_schema_every_resolver_template_and_the_graphql_modes() {
        let s = build(&example());
        let g = s.graphql.as_ref().unwrap();
        assert!(g.schema.contains("type Subscription"));
        let expected: Vec<String> = crate::render::vtl_templates()
            .map(|(_, path)| path.strip_prefix("graphql/").unwrap().to_owned())
            .collect();
        let mut expected = expected;
        expected.sort();
        assert_eq!(g.templates.keys().cloned().collect::<Vec<_>>(), expected);
        assert!(
            g.templates
                .contains_key("Subscription.subscribe.request.vtl")
        );
        assert_eq!(g.auth_modes, vec![DevMode::Iam, DevMode::Cognito]);
        assert_eq!(g.groups_claim, "cognito:groups");
    }

    #[test]
    fn the_example_system_has_one_rendered_policy_per_iot_group() {
        let c = example();
        let rendered = Renderer::embedded()
            .unwrap()
            .render(&c, &local_ids())
            .unwrap();
        let s = build(&c);
        let i = s.iot.as_ref().unwrap();
        assert_eq!(i.topic_prefix, "groupcast");
        assert_eq!(i.group_policies["team-a"], "acme-live-team-a");
        assert_eq!(i.group_policies["Team_B"], "acme-live-x--Team-5fB");
        assert_eq!(i.group_policies.len(), 4);
        for (group, policy) in &i.group_policies {
            assert_eq!(
                i.policies[policy],
                rendered.get(&format!("iot/{policy}.json")).unwrap(),
                "{group}"
            );
        }
        assert!(matches!(i.auth, sys::IotAuth::Attachment));
    }

    #[test]
    fn the_example_stack_runs_iot_grant_as_the_function_revoke_invokes_with_the_stacks_pools() {
        let c = example();
        let s = build(&c);
        let g = s.iot.as_ref().unwrap().grant_function.as_ref().unwrap();
        assert_eq!(g.name, "acme-live-iot-grant");
        assert_eq!(g.name, c.function_name(crate::config::Function::IotGrant));
        assert_eq!(g.binary.as_deref(), Some(Path::new("/bin/iot-grant")));
        assert_eq!(g.env["GROUPCAST_PROJECT"], "acme-live");
        assert_eq!(
            g.env["GROUPCAST_IOT_GROUPS"],
            r#"["admins","team-a","Team_B","editors"]"#
        );
        assert_eq!(
            g.env["GROUPCAST_COGNITO_USER_POOL_ID"],
            "us-east-1_AbCdEf123"
        );
        assert_eq!(
            g.env["GROUPCAST_COGNITO_IDENTITY_POOL_ID"],
            groupcast_dev::identity::identity_pool_id("us-east-1", "acme-live")
        );
        assert_eq!(g.env["GROUPCAST_JWT_AUDIENCES"], local_client_id(&c));
        // The policy names it attaches are the ones the stack serves.
        let pattern = &g.env["GROUPCAST_IOT_POLICY_PATTERN"];
        assert_eq!(
            pattern.replace("{group}", "team-a"),
            s.iot.as_ref().unwrap().group_policies["team-a"]
        );
        assert!(s.iot.unwrap().refresh_cap.is_none());
    }

    #[test]
    fn the_iot_refresh_cap_applies_to_a_custom_authorizer_only() {
        let mut attachment = build(&example());
        let e = refresh_cap(&mut attachment, 2).unwrap_err().to_string();
        assert!(
            e.contains("--iot-refresh-seconds") && e.contains("custom-authorizer"),
            "{e}"
        );
        let mut custom = build(&config(MINIMAL));
        refresh_cap(&mut custom, 2).unwrap();
        let iot = custom.iot.unwrap();
        assert_eq!(iot.refresh_cap, Some(Duration::from_secs(2)));
        assert!(
            iot.grant_function.is_none(),
            "custom-authorizer mode grants nothing"
        );
    }

    #[test]
    fn the_example_identity_settings_name_the_pool_the_lambda_authorizer_and_the_key() {
        let s = build(&example());
        let id = &s.identity;
        assert_eq!(id.user_pool_id.as_deref(), Some("us-east-1_AbCdEf123"));
        assert_eq!(id.user_pool_region.as_deref(), Some("us-east-1"));
        assert_eq!(id.app_id_client_regex.as_deref(), Some("^[a-z0-9]{26}$"));
        let l = id.lambda_authorizer.as_ref().unwrap();
        assert_eq!(
            l.arn,
            "arn:aws:lambda:us-east-1:123456789012:function:acme-live-authorizer"
        );
        assert_eq!(l.result_ttl_seconds, 300);
        assert_eq!(l.binary.as_deref(), Some(Path::new("/bin/authorizer")));
        assert_eq!(id.api_keys, vec!["da2-k"]);
        assert!(id.oidc.is_none());
    }

    #[test]
    fn the_local_client_id_matches_the_example_client_regex_and_is_stable() {
        let id = local_client_id(&example());
        assert_eq!(id.len(), 26);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_eq!(id, local_client_id(&example()));
    }

    const MINIMAL: &str = r#"
[project]
name = "p"
region = "eu-west-1"
account_id = "111111111111"

[iot]
topic_prefix = "t"
groups = ["a"]
auth = "custom-authorizer"
"#;

    #[test]
    fn a_config_without_a_user_pool_gets_a_local_pool_and_custom_authorizer_iot_has_no_policies() {
        let c = config(MINIMAL);
        let s = build(&c);
        assert_eq!(
            s.identity.user_pool_id.as_deref(),
            Some("eu-west-1_groupcastdev")
        );
        assert!(s.events.is_none() && s.graphql.is_none());
        assert!(s.identity.api_keys.contains(&"da2-k".to_owned()));
        let i = s.iot.unwrap();
        assert!(i.policies.is_empty());
        assert!(matches!(
            i.auth,
            sys::IotAuth::CustomAuthorizer { binary: None, .. }
        ));
    }

    #[test]
    fn a_missing_rendered_document_is_an_error_naming_it() {
        let c = example();
        let mut rendered = Renderer::embedded()
            .unwrap()
            .render(&c, &local_ids())
            .unwrap();
        rendered.files.remove("events/jobs.js");
        let e = system(&c, &rendered, &Binaries::default(), None).unwrap_err();
        assert!(e.to_string().contains("events/jobs.js"), "{e}");
    }

    #[test]
    fn durations_take_units_and_stay_within_a_day() {
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert!(parse_duration("2d").unwrap_err().contains("1 day"));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1w").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn per_port_flags_win_over_the_ports_list() {
        let at = Where {
            listen: "127.0.0.1".parse().unwrap(),
            ports: Some("events=1,aws=2".into()),
            events_port: Some(9),
            graphql_port: None,
            iot_wss_port: None,
            iot_mqtt_port: None,
            aws_port: None,
            state_dir: None,
        };
        let p = at.ports().unwrap();
        assert_eq!((p.events, p.aws, p.graphql), (9, 2, 4511));
    }
}
