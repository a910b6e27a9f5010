//! `Publisher::from_env` end to end. The environment cannot be changed inside this process (the
//! workspace forbids `unsafe`, and `set_var` is unsafe), so the test re-runs itself as a child
//! process with the variables set; the parent's capturing server sees what the child sent.

use std::process::Command;

use serde_json::json;

use crate::server::Server;

const CHILD: &str = "GROUPCAST_TEST_FROM_ENV_CHILD";

/// In the child: configure from the environment and publish one message.
async fn child() {
    let publisher = groupcast::Publisher::from_env().await.expect("from_env");
    let m = crate::msg("t", &["g"], json!({"from": "env"}));
    let report = publisher.publish(&m).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
}

/// Runs `test` in a child process with `vars` (and no AWS config files or IMDS). The wait runs
/// off the runtime, so this process's test servers keep answering the child.
async fn run_child(test: &str, vars: &[(&str, &str)]) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("AWS_CONFIG_FILE", "/nonexistent/groupcast-test")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/groupcast-test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .envs(vars.iter().copied());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "child failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn from_env_with_an_api_key() {
    if std::env::var_os(CHILD).is_some() {
        return child().await;
    }
    let server = Server::events_ok().await;
    run_child(
        "from_env::from_env_with_an_api_key",
        &[
            ("GROUPCAST_EVENTS_URL", &server.base),
            ("GROUPCAST_EVENTS_NAMESPACE", "live"),
            ("GROUPCAST_AUTH", "api-key"),
            ("GROUPCAST_API_KEY", "da2-from-env"),
            ("GROUPCAST_DEADLINE_MS", "5000"),
        ],
    )
    .await;
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].header("x-api-key"), Some("da2-from-env"));
    assert_eq!(reqs[0].json()["channel"], "/live/g/t");
}

#[tokio::test]
async fn from_env_with_iam_credentials_from_the_default_chain() {
    if std::env::var_os(CHILD).is_some() {
        return child().await;
    }
    let server = Server::events_ok().await;
    let iot = Server::start(|_, _| crate::server::Reply::ok(json!({}))).await;
    run_child(
        "from_env::from_env_with_iam_credentials_from_the_default_chain",
        &[
            ("GROUPCAST_EVENTS_URL", &server.base),
            ("GROUPCAST_EVENTS_NAMESPACE", "live"),
            ("GROUPCAST_IOT_ENDPOINT", &iot.base),
            ("GROUPCAST_IOT_TOPIC_PREFIX", "gc"),
            ("AWS_REGION", "ap-southeast-2"),
            ("AWS_ACCESS_KEY_ID", "AKIDFROMENVCHAIN"),
            ("AWS_SECRET_ACCESS_KEY", "secret-from-env"),
            ("AWS_SESSION_TOKEN", "token-from-env"),
        ],
    )
    .await;
    for r in server.requests().iter().chain(iot.requests().iter()) {
        let auth = r.header("authorization").unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDFROMENVCHAIN/"),
            "{auth}"
        );
        assert!(auth.contains("/ap-southeast-2/"), "{auth}");
        assert_eq!(r.header("x-amz-security-token"), Some("token-from-env"));
    }
    assert_eq!(server.requests().len(), 1);
    assert_eq!(iot.requests().len(), 1);
    assert_eq!(iot.requests()[0].target, "/topics/gc%2Fg%2Ft?qos=1");
}
