//! The local token issuer, the user directory and the JWT modes of the authenticator: tokens the
//! issuer mints are admitted with Cognito's identity shape; forged, expired, `alg: none`,
//! wrong-issuer and wrong-audience tokens are refused.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use groupcast_dev::auth::{AuthRequest, Authenticator, Identity};
use groupcast_dev::identity::{Directory, Issuer, identity_id, user_sub};
use groupcast_dev::system::{AuthMode, System};
use serde_json::{Value, json};

const ISS: &str = "https://127.0.0.1:4514/us-east-1_Local";

fn state() -> tempdir::Dir {
    tempdir::Dir::new()
}

mod tempdir {
    /// A fresh directory under the target's tmp, removed on drop.
    pub(crate) struct Dir(pub(crate) std::path::PathBuf);
    impl Dir {
        pub(crate) fn new() -> Dir {
            let p = std::env::temp_dir().join(format!(
                "groupcast-dev-test-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4()
            ));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn system() -> Arc<System> {
    Arc::new(System {
        project: "demo".into(),
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        ..System::default()
    })
}

fn groups(g: &[&str]) -> Vec<String> {
    g.iter().map(|s| s.to_string()).collect()
}

async fn auth_with(
    auth: &Authenticator,
    authorization: &str,
    modes: &[AuthMode],
) -> Result<groupcast_dev::auth::Authenticated, groupcast_dev::auth::AuthFailure> {
    let mut headers = BTreeMap::new();
    headers.insert("authorization".to_owned(), authorization.to_owned());
    auth.authenticate(
        &AuthRequest {
            headers: &headers,
            method: "POST",
            path: "/event",
            body: b"{}",
            source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            channel: None,
            operation: None,
        },
        modes,
    )
    .await
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn claims_of(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn the_signing_key_is_made_once_kept_private_and_reused() {
    let dir = state();
    let a = Issuer::load_or_create(&dir.0, ISS, "client").unwrap();
    let b = Issuer::load_or_create(&dir.0, ISS, "client").unwrap();
    assert_eq!(a.jwks(), b.jwks());
    let key = a.jwks()["keys"][0].clone();
    assert_eq!(
        (
            key["kty"].as_str(),
            key["alg"].as_str(),
            key["use"].as_str()
        ),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.0.join("issuer-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn minted_tokens_carry_cognitos_id_token_claims() {
    let dir = state();
    let issuer = Issuer::load_or_create(&dir.0, ISS, "client").unwrap();
    let t = issuer
        .mint(
            "alice",
            &groups(&["team-a", "editors"]),
            Duration::from_secs(3600),
        )
        .unwrap();
    let c = claims_of(&t);
    assert_eq!(c["sub"], json!(user_sub("alice")));
    assert_eq!(c["cognito:username"], "alice");
    assert_eq!(c["cognito:groups"], json!(["team-a", "editors"]));
    assert_eq!(c["token_use"], "id");
    assert_eq!(c["aud"], "client");
    assert_eq!(c["iss"], ISS);
    assert_eq!(
        c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
        3600
    );
    assert_eq!(c["auth_time"], c["iat"]);
    // No groups: the claim is absent, as Cognito omits it.
    let c = claims_of(&issuer.mint("bob", &[], Duration::from_secs(60)).unwrap());
    assert!(c.get("cognito:groups").is_none(), "{c}");
    assert_eq!(user_sub("bob"), c["sub"].as_str().unwrap());
    assert_ne!(user_sub("alice"), user_sub("bob"));
    assert!(issuer.mint("a b", &[], Duration::from_secs(60)).is_err());
    assert!(issuer.mint("alice", &[], Duration::from_secs(0)).is_err());
}

#[tokio::test]
async fn a_minted_token_is_admitted_with_the_identity_the_handler_reads() {
    let dir = state();
    let issuer = Arc::new(Issuer::load_or_create(&dir.0, ISS, "client").unwrap());
    let auth = Authenticator::new(system(), issuer.clone(), &dir.0).unwrap();
    let token = issuer
        .mint("alice", &groups(&["team-a"]), Duration::from_secs(600))
        .unwrap();
    for header in [token.clone(), format!("Bearer {token}")] {
        let a = auth_with(&auth, &header, &[AuthMode::Cognito])
            .await
            .unwrap();
        assert_eq!(a.mode, AuthMode::Cognito);
        assert_eq!(a.principal, "alice");
        let Identity::Cognito(id) = &a.identity else {
            panic!("{:?}", a.identity)
        };
        assert_eq!(id.groups.as_deref(), Some(&groups(&["team-a"])[..]));
        assert_eq!(id.username, "alice");
        assert_eq!(id.issuer, ISS);
        assert_eq!(id.sub, user_sub("alice"));
        assert_eq!(id.source_ip, ["127.0.0.1"]);
        // The JSON the handler and VTL read.
        let v = serde_json::to_value(&a.identity).unwrap();
        assert_eq!(v["groups"], json!(["team-a"]));
        assert_eq!(v["claims"]["cognito:username"], "alice");
        assert_eq!(v["sourceIp"], json!(["127.0.0.1"]));
    }
    // No groups: `groups` is null.
    let t = issuer.mint("bob", &[], Duration::from_secs(600)).unwrap();
    let a = auth_with(&auth, &t, &[AuthMode::Cognito]).await.unwrap();
    assert_eq!(
        serde_json::to_value(&a.identity).unwrap()["groups"],
        Value::Null
    );
    // A mode the namespace does not allow: refused.
    assert!(
        auth_with(&auth, &token, &[AuthMode::ApiKey, AuthMode::Iam])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn forged_expired_alg_none_wrong_issuer_and_wrong_audience_tokens_are_refused() {
    let dir = state();
    let issuer = Arc::new(Issuer::load_or_create(&dir.0, ISS, "client").unwrap());
    let auth = Authenticator::new(system(), issuer.clone(), &dir.0).unwrap();
    let good = issuer
        .mint("alice", &groups(&["team-a"]), Duration::from_secs(600))
        .unwrap();

    // Another key with the same kid (a forger's key).
    let other_dir = state();
    let forger = Issuer::load_or_create(&other_dir.0, ISS, "client").unwrap();
    let forged_key = forger
        .mint("alice", &groups(&["team-b"]), Duration::from_secs(600))
        .unwrap();
    // The forger's key under our kid.
    let forger_pem = std::fs::read(other_dir.0.join("issuer-key.pem")).unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = issuer.jwks()["keys"][0]["kid"].as_str().map(str::to_owned);
    let same_kid = jsonwebtoken::encode(
        &h,
        &claims_of(&good),
        &jsonwebtoken::EncodingKey::from_rsa_pem(&forger_pem).unwrap(),
    )
    .unwrap();
    let header = good.split('.').next().unwrap();
    let forged_claims = {
        let mut c = claims_of(&good);
        c["cognito:groups"] = json!(["team-b"]);
        c
    };
    let body_swapped = format!(
        "{header}.{}.{}",
        b64(&forged_claims),
        good.split('.').nth(2).unwrap()
    );
    let kid = issuer.jwks()["keys"][0]["kid"].clone();
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": kid})),
        b64(&claims_of(&good))
    );
    let alg_none_sig = format!(
        "{}.{}.AAAA",
        b64(&json!({"alg": "none", "kid": kid})),
        b64(&claims_of(&good))
    );
    let now = groupcast_dev_now();
    let expired = issuer
        .mint_at("alice", &[], Duration::from_secs(60), now - 3600)
        .unwrap();
    let wrong_iss =
        Issuer::load_or_create(&dir.0, "https://127.0.0.1:4514/us-east-1_Other", "client")
            .unwrap()
            .mint("alice", &[], Duration::from_secs(600))
            .unwrap();
    let wrong_aud = Issuer::load_or_create(&dir.0, ISS, "another-client")
        .unwrap()
        .mint("alice", &[], Duration::from_secs(600))
        .unwrap();
    for (name, token) in [
        ("another key", forged_key),
        ("another key under our kid", same_kid),
        ("swapped body", body_swapped),
        ("alg none", alg_none),
        ("alg none with a signature", alg_none_sig),
        ("expired", expired),
        ("wrong issuer", wrong_iss),
        ("wrong audience", wrong_aud),
        ("truncated", good[..good.len() - 4].to_owned()),
        ("empty", String::new()),
        ("garbage", "not-a-jwt".to_owned()),
    ] {
        let r = auth_with(&auth, &token, &[AuthMode::Cognito, AuthMode::Oidc]).await;
        assert!(r.is_err(), "{name} was admitted: {r:?}");
    }
    assert!(auth_with(&auth, &good, &[AuthMode::Cognito]).await.is_ok());
}

fn groupcast_dev_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn api_keys_are_admitted_only_when_configured_and_allowed() {
    let dir = state();
    let issuer = Arc::new(Issuer::load_or_create(&dir.0, ISS, "client").unwrap());
    let mut sys = (*system()).clone();
    sys.identity.api_keys = vec!["da2-localkey".into()];
    let auth = Authenticator::new(Arc::new(sys), issuer, &dir.0).unwrap();
    let call = |key: &str, modes: &'static [AuthMode]| {
        let mut headers = BTreeMap::new();
        headers.insert("x-api-key".to_owned(), key.to_owned());
        let auth = &auth;
        async move {
            auth.authenticate(
                &AuthRequest {
                    headers: &headers,
                    method: "POST",
                    path: "/event",
                    body: b"{}",
                    source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    channel: None,
                    operation: None,
                },
                modes,
            )
            .await
        }
    };
    let a = call("da2-localkey", &[AuthMode::ApiKey]).await.unwrap();
    assert_eq!(a.identity, Identity::ApiKey);
    assert!(call("da2-other", &[AuthMode::ApiKey]).await.is_err());
    assert!(call("da2-localkey", &[AuthMode::Cognito]).await.is_err());
}

#[test]
fn the_user_directory_round_trips_through_users_json() {
    let dir = state();
    let d = Directory::open(&dir.0);
    assert_eq!(d.groups("alice"), None);
    d.set_groups("alice", &groups(&["team-b", "team-a", "team-a"]))
        .unwrap();
    d.add_to_group("bob", "editors").unwrap();
    d.add_to_group("alice", "editors").unwrap();
    d.remove_from_group("alice", "team-b").unwrap();
    // Another process (a fresh handle) reads the same.
    let again = Directory::open(&dir.0);
    assert_eq!(again.groups("alice"), Some(groups(&["editors", "team-a"])));
    assert_eq!(again.groups("bob"), Some(groups(&["editors"])));
    // By sub, as Cognito's Admin* calls accept.
    assert_eq!(again.user(&user_sub("bob")).unwrap().0, "bob");
    let text: Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("users.json")).unwrap()).unwrap();
    assert_eq!(
        text["users"]["alice"]["groups"],
        json!(["editors", "team-a"])
    );
    assert!(d.remove_from_group("carol", "x").is_err());
    assert!(d.set_groups("", &[]).is_err());
    assert!(d.add_to_group("alice", "bad group").is_err());
    // A corrupt file is an error naming it, never a panic or an empty directory.
    std::fs::write(dir.0.join("users.json"), b"{not json").unwrap();
    let e = d.set_groups("alice", &[]).unwrap_err();
    assert!(e.to_string().contains("users.json"), "{e}");
    assert_eq!(d.groups("alice"), None);
}

#[test]
fn identity_ids_are_deterministic_per_user_and_shaped_as_cognitos() {
    let a = identity_id("eu-west-1", "alice");
    assert_eq!(a, identity_id("eu-west-1", "alice"));
    assert_ne!(a, identity_id("eu-west-1", "bob"));
    let (region, id) = a.split_once(':').unwrap();
    assert_eq!(region, "eu-west-1");
    assert!(uuid::Uuid::parse_str(id).is_ok());
}

#[test]
fn debug_output_never_shows_a_secret_key() {
    let dir = state();
    let keys = groupcast_dev::identity::publisher_credentials(&dir.0).unwrap();
    assert!(keys.access_key_id.starts_with("AKIA") && keys.access_key_id.len() == 20);
    assert_eq!(
        groupcast_dev::identity::publisher_credentials(&dir.0).unwrap(),
        keys,
        "kept across runs"
    );
    let issuer = Arc::new(Issuer::load_or_create(&dir.0, ISS, "client").unwrap());
    let auth = Authenticator::new(system(), issuer, &dir.0).unwrap();
    let shown = format!("{auth:?} {keys:?}");
    assert!(!shown.contains(&keys.secret_access_key), "{shown}");
    let pool = auth.identity_pool().unwrap();
    let c = pool
        .credentials_for(&identity_id("us-east-1", "alice"), Duration::from_secs(60))
        .unwrap();
    let shown = format!("{c:?}");
    assert!(
        !shown.contains(&c.secret_access_key) && !shown.contains(&c.session_token),
        "{shown}"
    );
}
