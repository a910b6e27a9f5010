//! JWT verification against a local JWKS server with keys generated per run: valid RS256/ES256
//! tokens pass; every forgery in issue #5 is rejected with the right reason; the JWKS is cached
//! and its refresh on an unknown kid is rate-limited.

mod support;

use std::time::Duration;

use base64::Engine as _;
use groupcast_auth::jwt::{JwtConfig, JwtError, Verifier};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use support::{JwksServer, TestKey, id_claims, jwks, now_secs};

const CLIENT: &str = "client-1";

fn config(server: &JwksServer) -> JwtConfig {
    let mut c = JwtConfig::new(server.issuer(), vec![CLIENT.to_owned()]);
    c.algorithms = vec![Algorithm::RS256, Algorithm::ES256];
    c.token_use = vec!["id".into(), "access".into()];
    c.jwks_min_refresh = Duration::from_secs(60);
    c
}

struct Fixture {
    rsa: TestKey,
    ec: TestKey,
    server: JwksServer,
}

async fn fixture() -> Fixture {
    let rsa = TestKey::rs256("rsa-1");
    let ec = TestKey::es256("ec-1");
    let server = JwksServer::start(jwks(&[&rsa, &ec])).await;
    Fixture { rsa, ec, server }
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn valid_rs256_and_es256_tokens_pass_with_their_groups() {
    let f = fixture().await;
    let v = Verifier::new(config(&f.server)).unwrap();
    let claims = id_claims(&f.server.issuer(), CLIENT, &["team-a", "Team_B"]);
    for key in [&f.rsa, &f.ec] {
        let t = v.verify(&key.sign(&claims)).await.unwrap();
        assert_eq!(t.sub, "5f1c2e7a-user");
        assert_eq!(t.groups, ["team-a", "Team_B"]);
        assert_eq!(Some(t.exp), claims["exp"].as_u64());
    }
    assert_eq!(f.server.hits(), 1, "the JWKS is fetched once and cached");
}

#[tokio::test]
async fn access_tokens_match_on_client_id_and_missing_groups_mean_none() {
    let f = fixture().await;
    let v = Verifier::new(config(&f.server)).unwrap();
    let now = now_secs();
    let access = json!({"sub": "u", "iss": f.server.issuer(), "client_id": CLIENT, "token_use": "access", "exp": now + 600});
    let t = v.verify(&f.rsa.sign(&access)).await.unwrap();
    assert!(t.groups.is_empty());
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let f = fixture().await;
    let v = Verifier::new(config(&f.server)).unwrap();
    let claims = id_claims(&f.server.issuer(), CLIENT, &["team-a"]);
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "none", "kid": "rsa-1"}),
        json!({"alg": "None", "kid": "rsa-1"}),
    ] {
        let token = format!("{}.{}.", b64(&header), b64(&claims));
        let e = v.verify(&token).await.unwrap_err();
        assert!(matches!(e, JwtError::Malformed(_)), "{e}");
        let token = format!("{}.{}.c2ln", b64(&header), b64(&claims));
        assert!(matches!(
            v.verify(&token).await.unwrap_err(),
            JwtError::Malformed(_)
        ));
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_rejected() {
    let f = fixture().await;
    let v = Verifier::new(config(&f.server)).unwrap();
    let claims = id_claims(&f.server.issuer(), CLIENT, &["team-a"]);
    for key in [&f.rsa, &f.ec] {
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        let secret = jsonwebtoken::EncodingKey::from_secret(key.public_pem.as_bytes());
        let token = jsonwebtoken::encode(&header, &claims, &secret).unwrap();
        let e = v.verify(&token).await.unwrap_err();
        assert!(
            matches!(e, JwtError::Algorithm { ref alg, .. } if alg == "HS256"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn unknown_kid_is_rejected_and_refresh_is_rate_limited() {
    let f = fixture().await;
    let v = Verifier::new(config(&f.server)).unwrap();
    let claims = id_claims(&f.server.issuer(), CLIENT, &["team-a"]);
    let stranger = TestKey::rs256("stranger");
    for _ in 0..5 {
        let e = v.verify(&stranger.sign(&claims)).await.unwrap_err();
        assert_eq!(
            e,
            JwtError::UnknownKid {
                kid: "stranger".into()
            }
        );
    }
    assert_eq!(
        f.server.hits(),
        1,
        "one fetch, then unknown kids wait for the refresh interval"
    );
    // A known kid is still served from the cache meanwhile.
    v.verify(&f.rsa.sign(&claims)).await.unwrap();
    assert_eq!(f.server.hits(), 1);
}

#[tokio::test]
async fn a_rotated_in_key_is_picked_up_by_a_refresh() {
    let f = fixture().await;
    let mut c = config(&f.server);
    c.jwks_min_refresh = Duration::ZERO;
    let v = Verifier::new(c).unwrap();
    let claims = id_claims(&f.server.issuer(), CLIENT, &["team-a"]);
    v.verify(&f.rsa.sign(&claims)).await.unwrap();
    let rotated = TestKey::es256("ec-2");
    *f.server.keys.lock().unwrap() = jwks(&[&f.rsa, &rotated]);
    v.verify(&rotated.sign(&claims)).await.unwrap();
    assert_eq!(f.server.hits(), 2);
}

#[tokio::test]
async fn a_signature_by_another_key_under_a_known_kid_is_rejected() {
    let f = fixture().await;
    let v = Verifier::new(config(&f.server)).unwrap();
    let claims = id_claims(&f.server.issuer(), CLIENT, &["team-a"]);
    let impostor = TestKey::rs256("rsa-1");
    assert_eq!(
        v.verify(&impostor.sign(&claims)).await.unwrap_err(),
        JwtError::Signature
    );
    // Claims swapped under a valid signature.
    let good = f.rsa.sign(&claims);
    let parts: Vec<&str> = good.split('.').collect();
    let mut forged = claims.clone();
    forged["cognito:groups"] = json!(["admins"]);
    let tampered = format!("{}.{}.{}", parts[0], b64(&forged), parts[2]);
    assert_eq!(v.verify(&tampered).await.unwrap_err(), JwtError::Signature);
}

#[tokio::test]
async fn algorithms_and_key_families_must_agree_with_the_configuration() {
    let f = fixture().await;
    let mut c = config(&f.server);
    c.algorithms = vec![Algorithm::RS256];
    let v = Verifier::new(c).unwrap();
    let claims = id_claims(&f.server.issuer(), CLIENT, &["team-a"]);
    let e = v.verify(&f.ec.sign(&claims)).await.unwrap_err();
    assert!(
        matches!(e, JwtError::Algorithm { ref alg, .. } if alg == "ES256"),
        "{e}"
    );
    // An RS256 header naming the EC key's kid.
    let v = Verifier::new(config(&f.server)).unwrap();
    let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
    header.kid = Some("ec-1".into());
    let token = jsonwebtoken::encode(&header, &claims, &f.rsa.encoding).unwrap();
    assert!(matches!(
        v.verify(&token).await.unwrap_err(),
        JwtError::KeyMismatch { .. }
    ));
    // No kid at all.
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::RS256),
        &claims,
        &f.rsa.encoding,
    )
    .unwrap();
    assert_eq!(v.verify(&token).await.unwrap_err(), JwtError::MissingKid);
}

#[tokio::test]
async fn wrong_iss_aud_or_token_use_is_rejected_naming_the_claim() {
    let f = fixture().await;
    let v = Verifier::new(config(&f.server)).unwrap();
    let base = id_claims(&f.server.issuer(), CLIENT, &["team-a"]);
    let cases: [(&str, Value, &str); 6] = [
        ("iss", json!("https://evil.example"), "iss"),
        ("aud", json!("other-client"), "aud"),
        ("aud", json!(["other-client", "x"]), "aud"),
        ("token_use", json!("refresh"), "token_use"),
        ("cognito:groups", json!("team-a"), "cognito:groups"),
        ("cognito:groups", json!(["team-a", 7]), "cognito:groups"),
    ];
    for (field, value, claim) in cases {
        let mut c = base.clone();
        c[field] = value.clone();
        let e = v.verify(&f.rsa.sign(&c)).await.unwrap_err();
        assert!(
            matches!(&e, JwtError::Claim { claim: got, .. } if got == claim),
            "{field}={value}: {e}"
        );
        assert!(e.to_string().contains(claim), "{e}");
    }
    for missing in ["iss", "sub", "exp"] {
        let mut c = base.clone();
        c.as_object_mut().unwrap().remove(missing);
        let e = v.verify(&f.rsa.sign(&c)).await.unwrap_err();
        assert!(
            matches!(&e, JwtError::Claim { claim, .. } if claim == missing),
            "{missing}: {e}"
        );
    }
    // aud given as an array containing the client is fine.
    let mut c = base.clone();
    c["aud"] = json!(["x", CLIENT]);
    v.verify(&f.rsa.sign(&c)).await.unwrap();
}

/// Found by tests/fuzz.rs: jsonwebtoken's issuer check passed an `iss` array that holds the
/// issuer, alone or beside another issuer.
#[tokio::test]
async fn an_iss_array_holding_the_issuer_is_rejected_naming_iss() {
    let f = fixture().await;
    let v = Verifier::new(config(&f.server)).unwrap();
    let issuer = f.server.issuer();
    for iss in [json!([issuer]), json!(["https://evil.example", issuer])] {
        let mut c = id_claims(&issuer, CLIENT, &["team-a"]);
        c["iss"] = iss.clone();
        let e = v.verify(&f.rsa.sign(&c)).await.unwrap_err();
        assert!(
            matches!(&e, JwtError::Claim { claim, .. } if claim == "iss"),
            "{iss}: {e}"
        );
    }
}

/// Found by tests/fuzz.rs: a registered claim of the wrong type (`"sub": ["u"]`) was refused as
/// "JSON error: expected `,` or `}` at line 1 column 39", naming no claim.
#[tokio::test]
async fn a_registered_claim_of_the_wrong_type_is_refused_naming_the_claim() {
    let f = fixture().await;
    let v = Verifier::new(config(&f.server)).unwrap();
    let now = now_secs();
    let cases = [
        ("sub", json!(["u"])),
        ("sub", json!({"id": "u"})),
        ("iss", json!([7])),
        ("exp", json!([now + 600])),
        ("nbf", json!([1])),
    ];
    for (claim, value) in cases {
        let mut c = id_claims(&f.server.issuer(), CLIENT, &["team-a"]);
        c[claim] = value.clone();
        let e = v.verify(&f.rsa.sign(&c)).await.unwrap_err();
        assert!(
            matches!(&e, JwtError::Claim { claim: got, .. } if got == claim),
            "{claim}={value}: {e}"
        );
    }
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_rejected() {
    let f = fixture().await;
    let v = Verifier::new(config(&f.server)).unwrap();
    let now = now_secs();
    let mut expired = id_claims(&f.server.issuer(), CLIENT, &["team-a"]);
    expired["exp"] = json!(now - 1);
    assert_eq!(
        v.verify(&f.rsa.sign(&expired)).await.unwrap_err(),
        JwtError::Expired
    );
    let mut early = id_claims(&f.server.issuer(), CLIENT, &["team-a"]);
    early["nbf"] = json!(now + 120);
    assert_eq!(
        v.verify(&f.ec.sign(&early)).await.unwrap_err(),
        JwtError::NotYetValid
    );
}

#[tokio::test]
async fn truncated_and_malformed_tokens_are_rejected() {
    let f = fixture().await;
    let v = Verifier::new(config(&f.server)).unwrap();
    let good = f
        .rsa
        .sign(&id_claims(&f.server.issuer(), CLIENT, &["team-a"]));
    let cut = |n: usize| good[..good.len() - n].to_owned();
    let no_sig = good.rsplit_once('.').unwrap().0.to_owned();
    let oversized = format!("{good}{}", "A".repeat(20_000));
    for token in [
        cut(1),
        cut(10),
        no_sig.clone(),
        format!("{no_sig}."),
        String::new(),
        "a.b".into(),
        "...".into(),
        "not a jwt".into(),
        good[..good.len() / 2].to_owned(),
        oversized,
    ] {
        let e = v.verify(&token).await.unwrap_err();
        assert!(
            matches!(e, JwtError::Malformed(_) | JwtError::Signature),
            "{token:.40}: {e}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_jwks_fails_closed() {
    let key = TestKey::rs256("k");
    let server = JwksServer::start(jwks(&[&key])).await;
    let issuer = server.issuer();
    let claims = id_claims(&issuer, CLIENT, &["team-a"]);
    let mut c = JwtConfig::new(issuer, vec![CLIENT.to_owned()]);
    c.jwks_url = format!("{}/nowhere.json", c.issuer);
    let v = Verifier::new(c).unwrap();
    let e = v.verify(&key.sign(&claims)).await.unwrap_err();
    assert!(
        matches!(&e, JwtError::Jwks { reason, .. } if reason.contains("404")),
        "{e}"
    );
}

#[tokio::test]
async fn a_failed_first_fetch_is_retried_after_a_second_not_after_the_refresh_interval() {
    let f = fixture().await;
    let v = Verifier::new(config(&f.server)).unwrap(); // jwks_min_refresh: 60 s
    let claims = id_claims(&f.server.issuer(), CLIENT, &["team-a"]);
    let good = std::mem::replace(
        &mut *f.server.keys.lock().unwrap(),
        json!("down for maintenance"),
    );
    assert!(matches!(
        v.verify(&f.rsa.sign(&claims)).await.unwrap_err(),
        JwtError::Jwks { .. }
    ));
    assert!(matches!(
        v.verify(&f.rsa.sign(&claims)).await.unwrap_err(),
        JwtError::UnknownKid { .. }
    ));
    assert_eq!(
        f.server.hits(),
        1,
        "the second attempt within a second is not fetched"
    );
    *f.server.keys.lock().unwrap() = good;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    v.verify(&f.rsa.sign(&claims)).await.unwrap();
    assert_eq!(f.server.hits(), 2);
}

#[tokio::test]
async fn a_verifier_given_its_jwks_verifies_without_fetching_and_still_refuses_other_keys() {
    let f = fixture().await;
    let v = Verifier::with_jwks(config(&f.server), jwks(&[&f.rsa]).to_string().as_bytes()).unwrap();
    let claims = id_claims(&f.server.issuer(), CLIENT, &["team-a"]);
    let t = v.verify(&f.rsa.sign(&claims)).await.unwrap();
    assert_eq!(t.groups, ["team-a"]);
    // Same kid, another key: the signature fails against the held key.
    let e = v
        .verify(&TestKey::rs256("rsa-1").sign(&claims))
        .await
        .unwrap_err();
    assert_eq!(e, JwtError::Signature);
    assert_eq!(f.server.hits(), 0, "known keys are never fetched");
    assert!(matches!(
        Verifier::with_jwks(config(&f.server), b"not a jwks"),
        Err(JwtError::Jwks { .. })
    ));
}
