//! What the local stack's revocation tests share (`revocation.rs`, `revocation_authorizers.rs`): the
//! account they pretend to be, the function binaries they run, the publisher's keys, and the
//! removal an administrator makes. One copy, so the two files cannot drift apart.

#![allow(dead_code)] // each test binary uses the part it needs

use std::path::{Path, PathBuf};

use aws_credential_types::Credentials;
use groupcast_dev::identity::{Directory, publisher_credentials};

pub(crate) const REGION: &str = "us-east-1";
pub(crate) const ACCOUNT: &str = "123456789012";
pub(crate) const POOL: &str = "us-east-1_Local";
pub(crate) const PROJECT: &str = "acme-live";
pub(crate) const PREFIX: &str = "groupcast";

pub(crate) fn groups(g: &[&str]) -> Vec<String> {
    g.iter().map(|s| s.to_string()).collect()
}

/// A Lambda binary of this workspace, built in the test's target directory
/// (`cargo build -p {name}`; `cargo test --workspace` builds them). Missing, the test fails saying
/// so: never a skip.
pub(crate) fn binary(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    let p = target.join("debug").join(name);
    assert!(
        p.exists(),
        "{}: missing; run `cargo build -p {name}` first",
        p.display()
    );
    p
}

/// The keys the stack made for the publisher (its state directory `dir`).
pub(crate) fn publisher_keys(dir: &Path) -> Credentials {
    let k = publisher_credentials(dir).unwrap();
    Credentials::new(k.access_key_id, k.secret_access_key, None, None, "local")
}

/// Cognito's `AdminRemoveUserFromGroup` on the stack's AWS port (`aws_url`), signed with the
/// publisher's keys: the removal an administrator makes. Asserts the directory no longer has it.
pub(crate) async fn remove_from_group(aws_url: &str, dir: &Path, user: &str, group: &str) {
    use aws_sdk_cognitoidentityprovider::config;
    let client = aws_sdk_cognitoidentityprovider::Client::from_conf(
        config::Builder::new()
            .behavior_version(config::BehaviorVersion::latest())
            .region(config::Region::new(REGION))
            .credentials_provider(publisher_keys(dir))
            .endpoint_url(aws_url)
            .retry_config(config::retry::RetryConfig::disabled())
            .build(),
    );
    client
        .admin_remove_user_from_group()
        .user_pool_id(POOL)
        .username(user)
        .group_name(group)
        .send()
        .await
        .unwrap();
    assert!(
        !Directory::open(dir)
            .groups(user)
            .unwrap_or_default()
            .contains(&group.to_owned())
    );
}
