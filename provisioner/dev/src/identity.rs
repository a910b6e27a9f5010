//! The identities of the local stack: the token issuer standing in for the Cognito user pool
//! (signing keys kept in the state directory, JWKS, ID tokens with Cognito's claims), the user
//! directory (each user's *current* groups, the source of truth the membership calls read), and
//! the deterministic Cognito identity ids and IAM credentials of the local identity pool.
//!
//! Files in the state directory (all written atomically, secrets with mode 0600):
//! - `issuer-key.pem`: the RS256 signing key (PKCS#8), made on first run;
//! - `users.json`: `{"users": {"alice": {"groups": ["team-a"]}}}`;
//! - `credentials.json`: the publisher's local key pair `{access_key_id, secret_access_key}`;
//! - `identity-pool.key`: the secret every identity-pool credential is derived from.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Why an identity operation failed; says which file or field and which rule.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct IdentityError(pub String);

fn io_err(path: &Path, what: &str, e: impl std::fmt::Display) -> IdentityError {
    IdentityError(format!("{}: {what}: {e}", path.display()))
}

/// Seconds since the epoch.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Writes `bytes` to `path` atomically (a temporary file beside it, then a rename), with mode
/// 0600 when `secret`, so a reader in another process never sees half a file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<(), IdentityError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, "create directory", e))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(&tmp).map_err(|e| io_err(&tmp, "create", e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_err(&tmp, "write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, "rename into place", e))
}

/// A UUID derived from `namespace` and `name` (SHA-256, version 8 "custom" as RFC 9562 allows
/// for name-based ids with another hash): the same user always gets the same `sub` and identity id.
pub fn derived_uuid(namespace: &str, name: &str) -> uuid::Uuid {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("groupcast-dev:{namespace}:{name}").as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// A user's `sub`: deterministic from the user name, so tokens minted by `provisioner dev token`
/// in another process name the same user.
pub fn user_sub(user: &str) -> String {
    derived_uuid("sub", user).to_string()
}

/// A user's Cognito identity id in the local identity pool: `{region}:{uuid}`, the shape Cognito
/// gives identity ids (https://docs.aws.amazon.com/cognitoidentity/latest/APIReference/API_GetId.html:
/// `IdentityId` pattern `[\w-]+:[0-9a-f-]+`).
pub fn identity_id(region: &str, user: &str) -> String {
    format!("{region}:{}", derived_uuid("identity", user))
}

/// The local identity pool's id, `{region}:{uuid}` like Cognito's.
pub fn identity_pool_id(region: &str, project: &str) -> String {
    format!("{region}:{}", derived_uuid("identity-pool", project))
}

/// Checks a user name against Cognito's `Username` constraints (one rule, groupcast-auth's).
pub fn validate_user(user: &str) -> Result<(), IdentityError> {
    groupcast_auth::membership::validate_user(user).map_err(|e| IdentityError(e.to_string()))
}

/// Checks a group name against Cognito's `GroupName` constraints: 1-128 characters, no white space
/// or control characters (https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_CreateGroup.html).
pub fn validate_group(group: &str) -> Result<(), IdentityError> {
    if group.is_empty()
        || group.chars().count() > 128
        || group.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(IdentityError(format!(
            "group {group:?}: must be 1-128 characters without white space or control characters (Cognito GroupName)"
        )));
    }
    Ok(())
}

// -------------------------------------------------------------------------------------------
// The token issuer

const KEY_FILE: &str = "issuer-key.pem";

/// The local token issuer.
pub struct Issuer {
    issuer_url: String,
    client_id: String,
    kid: String,
    encoding: jsonwebtoken::EncodingKey,
    jwk: Value,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer_url", &self.issuer_url)
            .field("client_id", &self.client_id)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_body(text: &str) -> Option<Vec<u8>> {
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

impl Issuer {
    /// Loads the signing key from `state_dir`, or creates and saves one on first run. `issuer_url`
    /// becomes every token's `iss`, `client_id` its `aud`.
    pub fn load_or_create(
        state_dir: &Path,
        issuer_url: &str,
        client_id: &str,
    ) -> Result<Issuer, IdentityError> {
        if issuer_url.is_empty() || client_id.is_empty() {
            return Err(IdentityError(
                "issuer: the issuer URL and the client id must not be empty".into(),
            ));
        }
        let path = state_dir.join(KEY_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Cognito signs its tokens with RS256
                // (https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-tokens-verifying-a-jwt.html).
                let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|e| IdentityError(format!("issuer: RSA key generation: {e}")))?;
                let der =
                    aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
                        .map_err(|e| IdentityError(format!("issuer: PKCS#8 encoding: {e}")))?;
                let text = pem("PRIVATE KEY", der.as_ref());
                write_atomic(&path, text.as_bytes(), true)?;
                text
            }
            Err(e) => return Err(io_err(&path, "read", e)),
        };
        let der =
            pem_body(&text).ok_or_else(|| io_err(&path, "read", "not a PEM file (base64 body)"))?;
        let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der)
            .map_err(|e| io_err(&path, "parse PKCS#8 RSA key", e))?;
        let public = pair
            .public_key()
            .as_der()
            .map_err(|e| io_err(&path, "public key", e))?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public.as_ref());
        let kid = hex::encode(&digest.as_ref()[..12]);
        let encoding = jsonwebtoken::EncodingKey::from_rsa_pem(text.as_bytes())
            .map_err(|e| io_err(&path, "load signing key", e))?;
        let jwk =
            jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, jsonwebtoken::Algorithm::RS256)
                .map_err(|e| io_err(&path, "public JWK", e))?;
        let mut jwk = serde_json::to_value(jwk).map_err(|e| io_err(&path, "public JWK", e))?;
        // Cognito's JWKS entries: {alg, e, kid, kty, n, use}.
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        jwk["alg"] = json!("RS256");
        Ok(Issuer {
            issuer_url: issuer_url.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            kid,
            encoding,
            jwk,
        })
    }

    /// Every token's `iss`.
    pub fn issuer_url(&self) -> &str {
        &self.issuer_url
    }

    /// Every token's `aud` (the app client id).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// `{iss}/.well-known/jwks.json`, where Cognito publishes a pool's keys.
    pub fn jwks_url(&self) -> String {
        groupcast_auth::jwt::default_jwks_url(&self.issuer_url)
    }

    /// An ID token for `user` in `groups` (`cognito:groups`), valid for `expires_in`.
    pub fn mint(
        &self,
        user: &str,
        groups: &[String],
        expires_in: Duration,
    ) -> Result<String, IdentityError> {
        self.mint_at(user, groups, expires_in, now_secs())
    }

    /// [`Issuer::mint`] at a given `now` (seconds since the epoch): tests mint expired tokens.
    pub fn mint_at(
        &self,
        user: &str,
        groups: &[String],
        expires_in: Duration,
        now: u64,
    ) -> Result<String, IdentityError> {
        validate_user(user)?;
        for g in groups {
            validate_group(g)?;
        }
        if expires_in.is_zero() || expires_in > Duration::from_secs(24 * 3600) {
            // Cognito ID tokens live 5 minutes to 1 day
            // (https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-id-token.html).
            return Err(IdentityError(format!(
                "expires_in {expires_in:?}: must be more than 0 and at most 1 day (Cognito ID token validity)"
            )));
        }
        // The ID token's claims as Cognito issues them (same page): `cognito:groups` only when
        // the user is in a group.
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), json!(user_sub(user)));
        if !groups.is_empty() {
            claims.insert("cognito:groups".into(), json!(groups));
        }
        claims.insert("iss".into(), json!(self.issuer_url));
        claims.insert("cognito:username".into(), json!(user));
        claims.insert("origin_jti".into(), json!(uuid::Uuid::new_v4().to_string()));
        claims.insert("aud".into(), json!(self.client_id));
        claims.insert("event_id".into(), json!(uuid::Uuid::new_v4().to_string()));
        claims.insert("token_use".into(), json!("id"));
        claims.insert("auth_time".into(), json!(now));
        claims.insert("exp".into(), json!(now + expires_in.as_secs()));
        claims.insert("iat".into(), json!(now));
        claims.insert("jti".into(), json!(uuid::Uuid::new_v4().to_string()));
        if user.contains('@') {
            claims.insert("email".into(), json!(user));
            claims.insert("email_verified".into(), json!(true));
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| IdentityError(format!("issuer: signing the token: {e}")))
    }

    /// The JWKS document tokens verify against.
    pub fn jwks(&self) -> serde_json::Value {
        json!({ "keys": [self.jwk] })
    }
}

// -------------------------------------------------------------------------------------------
// The user directory

const USERS_FILE: &str = "users.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct UsersFile {
    #[serde(default)]
    users: BTreeMap<String, UserEntry>,
}

/// One user of the directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserEntry {
    /// The user's current groups, sorted and distinct.
    #[serde(default)]
    pub groups: Vec<String>,
    /// `false` for a user an administrator disabled (AdminGetUser's `Enabled`).
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

impl Default for UserEntry {
    fn default() -> UserEntry {
        UserEntry {
            groups: Vec::new(),
            enabled: true,
        }
    }
}

/// The user directory: each user's current groups, kept in the state directory so that
/// `provisioner dev token` (another process) and the running stack agree.
#[derive(Debug)]
pub struct Directory {
    path: PathBuf,
    /// Serializes this process's read-modify-write cycles.
    lock: Mutex<()>,
}

impl Directory {
    /// Opens the directory in `state_dir`.
    pub fn open(state_dir: &Path) -> Directory {
        Directory {
            path: state_dir.join(USERS_FILE),
            lock: Mutex::new(()),
        }
    }

    /// The file the directory lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<UsersFile, IdentityError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io_err(
                    &self.path,
                    "parse",
                    format!("{e} (expected {{\"users\": {{NAME: {{\"groups\": [..]}}}}}})"),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(UsersFile::default()),
            Err(e) => Err(io_err(&self.path, "read", e)),
        }
    }

    fn update<T>(
        &self,
        change: impl FnOnce(&mut UsersFile) -> Result<T, IdentityError>,
    ) -> Result<T, IdentityError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut file = self.read()?;
        let out = change(&mut file)?;
        let bytes =
            serde_json::to_vec_pretty(&file).map_err(|e| io_err(&self.path, "serialize", e))?;
        write_atomic(&self.path, &bytes, false)?;
        Ok(out)
    }

    /// Sets `user`'s groups (creating the user).
    pub fn set_groups(&self, user: &str, groups: &[String]) -> Result<(), IdentityError> {
        validate_user(user)?;
        for g in groups {
            validate_group(g)?;
        }
        let mut groups = groups.to_vec();
        groups.sort();
        groups.dedup();
        self.update(|f| {
            f.users.entry(user.to_owned()).or_default().groups = groups;
            Ok(())
        })
    }

    /// Adds `user` (created if unknown) to `group`.
    pub fn add_to_group(&self, user: &str, group: &str) -> Result<(), IdentityError> {
        validate_user(user)?;
        validate_group(group)?;
        self.update(|f| {
            let entry = f.users.entry(user.to_owned()).or_default();
            if !entry.groups.iter().any(|g| g == group) {
                entry.groups.push(group.to_owned());
                entry.groups.sort();
            }
            Ok(())
        })
    }

    /// Removes `user` from `group`; an error for an unknown user (as Cognito's
    /// `UserNotFoundException`).
    pub fn remove_from_group(&self, user: &str, group: &str) -> Result<(), IdentityError> {
        self.update(|f| {
            let entry = f
                .users
                .get_mut(user)
                .ok_or_else(|| IdentityError(format!("user {user:?}: not in the directory")))?;
            entry.groups.retain(|g| g != group);
            Ok(())
        })
    }

    /// `user`'s current groups; `None` for an unknown user.
    pub fn groups(&self, user: &str) -> Option<Vec<String>> {
        self.user(user).map(|(_, e)| e.groups)
    }

    /// The user named `user` or whose `sub` is `user` (Cognito's Admin* calls take either), with
    /// its user name; `None` when unknown or the file cannot be read (callers fail closed).
    pub fn user(&self, user: &str) -> Option<(String, UserEntry)> {
        let file = match self.read() {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "user directory unreadable");
                return None;
            }
        };
        if let Some(entry) = file.users.get(user) {
            return Some((user.to_owned(), entry.clone()));
        }
        file.users
            .into_iter()
            .find(|(name, _)| user_sub(name) == user)
    }

    /// Every user and entry, by name.
    pub fn users(&self) -> Result<BTreeMap<String, UserEntry>, IdentityError> {
        Ok(self.read()?.users)
    }
}

// -------------------------------------------------------------------------------------------
// IAM credentials: the publisher's key pair and the identity pool's derived credentials

const CREDENTIALS_FILE: &str = "credentials.json";
const POOL_SECRET_FILE: &str = "identity-pool.key";
/// Prefix of identity-pool access key ids (AWS's prefix for temporary credentials, `ASIA`).
const POOL_KEY_PREFIX: &str = "ASIA";

/// An AWS key pair.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPair {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Never prints the secret (the stack's `Debug` reaches it through the authenticator).
impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], IdentityError> {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out)
        .map_err(|e| IdentityError(format!("random bytes from the OS: {e}")))?;
    Ok(out)
}

/// The publisher's local key pair (`credentials.json`), made on first run.
pub fn publisher_credentials(state_dir: &Path) -> Result<KeyPair, IdentityError> {
    let path = state_dir.join(CREDENTIALS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            io_err(
                &path,
                "parse",
                format!("{e} (expected {{access_key_id, secret_access_key}})"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
            let id: String = random_bytes::<16>()?
                .iter()
                .map(|b| B32[usize::from(b % 32)] as char)
                .collect();
            let pair = KeyPair {
                // Long-term AWS access key ids start with AKIA and are 20 characters.
                access_key_id: format!("AKIA{id}"),
                secret_access_key: base64::engine::general_purpose::STANDARD
                    .encode(random_bytes::<30>()?),
            };
            let bytes =
                serde_json::to_vec_pretty(&pair).map_err(|e| io_err(&path, "serialize", e))?;
            write_atomic(&path, &bytes, true)?;
            Ok(pair)
        }
        Err(e) => Err(io_err(&path, "read", e)),
    }
}

/// Temporary credentials of the local identity pool, as `GetCredentialsForIdentity` returns them.
#[derive(Clone, PartialEq, Eq)]
pub struct PoolCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// Seconds since the epoch.
    pub expiration: u64,
}

/// Never prints the secret or the session token.
impl std::fmt::Debug for PoolCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// The local identity pool: credentials derived from one secret, so any credential it issued
/// verifies without being stored (the secret of an access key id is HMAC(secret, id); the
/// session token carries its expiry and an HMAC over id and expiry).
pub struct IdentityPool {
    region: String,
    key: aws_lc_rs::hmac::Key,
}

impl std::fmt::Debug for IdentityPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityPool")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl IdentityPool {
    /// Loads the pool's secret from `state_dir`, or makes one on first run.
    pub fn load_or_create(state_dir: &Path, region: &str) -> Result<IdentityPool, IdentityError> {
        let path = state_dir.join(POOL_SECRET_FILE);
        let secret = match std::fs::read(&path) {
            Ok(bytes) if bytes.len() >= 32 => bytes,
            Ok(_) => return Err(io_err(&path, "read", "shorter than 32 bytes")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes = random_bytes::<32>()?.to_vec();
                write_atomic(&path, &bytes, true)?;
                bytes
            }
            Err(e) => return Err(io_err(&path, "read", e)),
        };
        Ok(IdentityPool {
            region: region.to_owned(),
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret),
        })
    }

    fn mac(&self, purpose: &str, data: &str) -> String {
        let tag = aws_lc_rs::hmac::sign(&self.key, format!("{purpose}\n{data}").as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// Credentials for `identity_id` (`{region}:{uuid}` of this pool's region), valid for
    /// `valid_for` (Cognito's are valid one hour:
    /// https://docs.aws.amazon.com/cognitoidentity/latest/APIReference/API_GetCredentialsForIdentity.html).
    pub fn credentials_for(
        &self,
        identity_id: &str,
        valid_for: Duration,
    ) -> Result<PoolCredentials, IdentityError> {
        let uuid = identity_id
            .strip_prefix(&format!("{}:", self.region))
            .and_then(|u| uuid::Uuid::parse_str(u).ok())
            .ok_or_else(|| {
                IdentityError(format!(
                    "IdentityId {identity_id:?}: not an identity id of this pool ({}:<uuid>)",
                    self.region
                ))
            })?;
        let access_key_id = format!(
            "{POOL_KEY_PREFIX}{}",
            uuid.simple().to_string().to_ascii_uppercase()
        );
        let expiration = now_secs() + valid_for.as_secs();
        Ok(PoolCredentials {
            secret_access_key: self.secret_for(&access_key_id),
            session_token: format!(
                "{expiration}.{}",
                self.mac("token", &format!("{access_key_id}\n{expiration}"))
            ),
            access_key_id,
            expiration,
        })
    }

    fn secret_for(&self, access_key_id: &str) -> String {
        self.mac("secret", access_key_id)
    }

    /// For an access key id this pool issued and its session token: the identity id and the
    /// secret key. `None` (refuse) for any other key id, a forged or missing token, or an
    /// expired one.
    pub fn resolve(
        &self,
        access_key_id: &str,
        session_token: Option<&str>,
    ) -> Option<(String, String)> {
        let hex = access_key_id.strip_prefix(POOL_KEY_PREFIX)?;
        let uuid = uuid::Uuid::try_parse(hex).ok()?;
        if uuid.simple().to_string().to_ascii_uppercase() != hex {
            return None;
        }
        let (expiration, mac) = session_token?.split_once('.')?;
        let expected = self.mac("token", &format!("{access_key_id}\n{expiration}"));
        // Compare MACs in constant time.
        if aws_lc_rs::constant_time::verify_slices_are_equal(mac.as_bytes(), expected.as_bytes())
            .is_err()
        {
            return None;
        }
        if expiration.parse::<u64>().ok()? <= now_secs() {
            return None;
        }
        Some((
            format!("{}:{uuid}", self.region),
            self.secret_for(access_key_id),
        ))
    }
}
