//! The Lambda functions the stack runs beside its transports, and the AWS endpoint they call.
//!
//! [`start`] is what `provisioner dev` runs once the stack exists (tests call the same): it opens
//! a plain-HTTP loopback endpoint serving the stack's emulated AWS APIs ([`crate::aws`]) for the
//! functions, and starts the iot-grant binary of an attachment-mode `[iot]`, registered for Lambda
//! `Invoke` as `{project}-iot-grant` so `Publisher::revoke` / `groupcast revoke` reach it. The
//! authorizers, started on first use ([`crate::auth`], [`crate::iot::authorizer`]), take the same
//! endpoint from [`endpoint`] to read users' current groups from the stack's user directory.
//!
//! Every function gets [`aws_env`]: `AWS_ENDPOINT_URL` (that endpoint), the stack's local
//! publisher key pair as its credentials (the one IAM principal the control plane admits; the
//! deployed functions have their own roles), the stack's region, one attempt per call.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::Stack;
use crate::lambda_rt::LambdaFunction;

/// The endpoint URL per running stack, by state dir (as [`crate::aws`] keeps its functions).
fn endpoints() -> std::sync::MutexGuard<'static, HashMap<PathBuf, String>> {
    static ALL: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    ALL.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// The URL of the functions' AWS endpoint of the stack keeping its state in `state_dir`, once
/// [`start`] opened it.
pub fn endpoint(state_dir: &Path) -> Option<String> {
    endpoints().get(state_dir).cloned()
}

/// The environment every function of the stack gets so its AWS SDK calls reach `endpoint` as the
/// stack's publisher: `AWS_ENDPOINT_URL`, credentials, region, `AWS_MAX_ATTEMPTS=1`.
/// `state_dir` and `region` are the stack's.
pub fn aws_env(
    state_dir: &Path,
    region: &str,
    endpoint: &str,
) -> Result<Vec<(String, String)>, String> {
    let keys = crate::identity::publisher_credentials(state_dir)
        .map_err(|e| format!("the stack's publisher key pair: {e}"))?;
    Ok([
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", keys.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", keys.secret_access_key.as_str()),
        ("AWS_REGION", region),
        ("AWS_DEFAULT_REGION", region),
        ("AWS_MAX_ATTEMPTS", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect())
}

/// What [`start`] started; stops it when dropped (the endpoint closes, the functions are
/// unregistered and killed).
#[derive(Debug)]
pub struct Functions {
    state_dir: PathBuf,
    url: String,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Names registered for `Invoke`.
    pub names: Vec<String>,
}

impl Functions {
    /// The functions' AWS endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Functions {
    fn drop(&mut self) {
        self.task.abort();
        endpoints().remove(&self.state_dir);
        for name in &self.names {
            crate::aws::unregister_function(&self.state_dir, name);
        }
    }
}

/// Opens the functions' endpoint and starts the functions `stack.system` asks for (the iot-grant
/// of attachment mode, when its binary was found). A function that cannot start is logged and
/// left out: `Invoke` then answers `ResourceNotFoundException`, and the caller's report says so.
pub async fn start(stack: &Arc<Stack>) -> std::io::Result<Functions> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(crate::aws::serve_plain(listener, stack.clone()));
    endpoints().insert(stack.state_dir.clone(), url.clone());
    let mut functions = Functions {
        state_dir: stack.state_dir.clone(),
        url,
        task,
        names: Vec::new(),
    };
    let grant = stack
        .system
        .iot
        .as_ref()
        .and_then(|i| i.grant_function.clone());
    if let Some(f) = grant {
        match start_one(stack, &f, functions.url()).await {
            Ok(running) => {
                crate::aws::register_function(stack, &f.name, Arc::new(running));
                functions.names.push(f.name.clone());
            }
            Err(why) => {
                tracing::warn!(function = %f.name, error = %why, "function not started");
                eprintln!("warning: {}: not started: {why}", f.name);
            }
        }
    }
    Ok(functions)
}

async fn start_one(
    stack: &Stack,
    f: &crate::system::LocalFunction,
    endpoint: &str,
) -> Result<LambdaFunction, String> {
    let binary = f.binary.as_ref().ok_or_else(|| {
        format!(
            "its binary was not found (build it with `cargo build -p {}`)",
            f.name
                .strip_prefix(&format!("{}-", stack.system.project))
                .unwrap_or(&f.name)
        )
    })?;
    let mut env: Vec<(String, String)> = f.env.clone().into_iter().collect();
    env.extend(aws_env(&stack.state_dir, &stack.system.region, endpoint)?);
    env.push(("AWS_LAMBDA_FUNCTION_NAME".into(), f.name.clone()));
    LambdaFunction::start(binary, &env)
        .await
        .map_err(|e| e.to_string())
}
