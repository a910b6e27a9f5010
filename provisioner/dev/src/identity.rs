//! The identities of the local stack: the token issuer standing in for the Cognito user pool
//! (signing keys kept in the state directory, JWKS, ID tokens with Cognito's claims), the user
//! directory (each user's *current* groups, the source of truth the membership calls read), and
//! the deterministic Cognito identity ids and IAM credentials of the local identity pool.
//! (To be built; the signatures are the contract `provisioner dev token` and the transports use.)

use std::path::Path;
use std::time::Duration;

/// Why an identity operation failed; says which file or field and which rule.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct IdentityError(pub String);

/// The local token issuer.
#[derive(Debug)]
pub struct Issuer {
    _private: (),
}

impl Issuer {
    /// Loads the signing key from `state_dir`, or creates and saves one on first run. `issuer_url`
    /// becomes every token's `iss`, `client_id` its `aud`.
    pub fn load_or_create(
        state_dir: &Path,
        issuer_url: &str,
        client_id: &str,
    ) -> Result<Issuer, IdentityError> {
        let _ = (state_dir, issuer_url, client_id);
        Err(IdentityError("the token issuer is not built yet".into()))
    }

    /// An ID token for `user` in `groups` (`cognito:groups`), valid for `expires_in`.
    pub fn mint(
        &self,
        user: &str,
        groups: &[String],
        expires_in: Duration,
    ) -> Result<String, IdentityError> {
        let _ = (user, groups, expires_in);
        Err(IdentityError("the token issuer is not built yet".into()))
    }

    /// The JWKS document tokens verify against.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [] })
    }
}

/// The user directory: each user's current groups, kept in the state directory so that
/// `provisioner dev token` (another process) and the running stack agree.
#[derive(Debug)]
pub struct Directory {
    _private: (),
}

impl Directory {
    /// Opens the directory in `state_dir`.
    pub fn open(state_dir: &Path) -> Directory {
        let _ = state_dir;
        Directory { _private: () }
    }

    /// Sets `user`'s groups (creating the user).
    pub fn set_groups(&self, user: &str, groups: &[String]) -> Result<(), IdentityError> {
        let _ = (user, groups);
        Err(IdentityError("the user directory is not built yet".into()))
    }

    /// `user`'s current groups; `None` for an unknown user.
    pub fn groups(&self, user: &str) -> Option<Vec<String>> {
        let _ = user;
        None
    }
}
