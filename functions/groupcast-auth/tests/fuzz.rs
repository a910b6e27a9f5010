//! Property tests ("fuzzing" on stable Rust, inside `cargo test`) of everything groupcast-auth
//! reads from outside: tokens (arbitrary text, mutated valid tokens, algorithm confusion, signed
//! tokens with arbitrary claims), JWKS documents, the verifier's environment, and AppSync
//! authorizer requests of both shapes.
//!
//! Properties: nothing panics; nothing is allowed unless it was signed by the test key and its
//! claims are valid (and, for a subscription, the channel is one of the caller's groups); every
//! refusal names what was wrong. Keys are generated once per run (tests/support), the JWKS is
//! served on 127.0.0.1.
//!
//! Cases are bounded and the seed is fixed, so a run is reproducible; `PROPTEST_CASES` raises the
//! count for a longer local run.

mod support;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use groupcast_auth::authorizer;
use groupcast_auth::events::{self, DenyReason, Operation, RequestContext};
use groupcast_auth::jwt::{self, JwtConfig, JwtError, MAX_TOKEN_BYTES, VerifiedToken, Verifier};
use jsonwebtoken::Algorithm;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngSeed};
use serde_json::{Map, Value, json};
use support::{Http, JwksServer, Req, TestKey, jwks, now_secs, reply};

const CLIENT: &str = "client-1";
const GROUPS_CLAIM: &str = "cognito:groups";

fn runner(default_cases: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(default_cases),
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x6a77_745f_667a_7a31),
        ..Config::default()
    }
}

/// Keys, the issuer's JWKS endpoint, a verifier whose cache is warm, and a second endpoint that
/// serves whatever JWKS document a case puts in `doc`. Built once; lives for the whole run.
struct Fixture {
    rt: tokio::runtime::Runtime,
    rsa: TestKey,
    ec: TestKey,
    /// An RSA key under the JWKS key's kid (`rsa-1`) that is not in the JWKS.
    impostor: TestKey,
    issuer: String,
    verifier: Verifier,
    /// The valid claims of [`Fixture::valid`] tokens: groups `team-a`, `Team_B`.
    claims: Value,
    valid_rsa: String,
    valid_ec: String,
    doc: Arc<Mutex<Vec<u8>>>,
    doc_url: String,
    _servers: (JwksServer, Http),
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let rsa = TestKey::rs256("rsa-1");
        let ec = TestKey::es256("ec-1");
        let impostor = TestKey::rs256("rsa-1");
        let doc = Arc::new(Mutex::new(Vec::new()));
        let served = doc.clone();
        let (server, doc_server) = rt.block_on(async {
            let server = JwksServer::start(jwks(&[&rsa, &ec])).await;
            let doc_server = Http::serve(move |_: Req| {
                let body = served.lock().unwrap().clone();
                async move { reply(200, body) }
            })
            .await;
            (server, doc_server)
        });
        let issuer = server.issuer();
        let verifier = Verifier::new(config(&issuer)).unwrap();
        let claims = support::id_claims(&issuer, CLIENT, &["team-a", "Team_B"]);
        let (valid_rsa, valid_ec) = (rsa.sign(&claims), ec.sign(&claims));
        // Warm the cache: later cases never wait for the JWKS endpoint.
        rt.block_on(verifier.verify(&valid_rsa)).unwrap();
        let doc_url = doc_server.url("/jwks.json");
        Fixture {
            rt,
            rsa,
            ec,
            impostor,
            issuer,
            verifier,
            claims,
            valid_rsa,
            valid_ec,
            doc,
            doc_url,
            _servers: (server, doc_server),
        }
    })
}

fn config(issuer: &str) -> JwtConfig {
    let mut c = JwtConfig::new(issuer, vec![CLIENT.to_owned()]);
    c.algorithms = vec![Algorithm::RS256, Algorithm::ES256];
    c.token_use = vec!["id".into(), "access".into()];
    c.jwks_min_refresh = Duration::from_secs(600);
    c
}

impl Fixture {
    fn verify(&self, token: &str) -> Result<VerifiedToken, JwtError> {
        self.rt.block_on(self.verifier.verify(token))
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.payload.signature` over exactly these header and payload bytes.
fn sign_raw(key: &TestKey, header: &[u8], payload: &[u8]) -> String {
    let message = format!("{}.{}", b64(header), b64(payload));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key.encoding, key.alg).unwrap();
    format!("{message}.{signature}")
}

/// The segments of a token, each decoded (leniently: any padding, either alphabet).
fn decoded_segments(token: &str) -> Vec<Option<Vec<u8>>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    token
        .split('.')
        .map(|s| {
            let s = s.trim_end_matches('=');
            URL_SAFE_NO_PAD
                .decode(s)
                .or_else(|_| STANDARD_NO_PAD.decode(s))
                .ok()
        })
        .collect()
}

/// Every refusal says what was wrong: no variant with an empty reason, rule or field.
fn check_refusal(e: &JwtError) -> Result<(), TestCaseError> {
    let text = e.to_string();
    prop_assert!(!text.trim().is_empty());
    match e {
        JwtError::Malformed(m) => prop_assert!(!m.trim().is_empty(), "{e:?}"),
        JwtError::Algorithm { alg, accepted } => {
            prop_assert!(!alg.is_empty() && accepted == "RS256, ES256", "{e:?}")
        }
        JwtError::UnknownKid { .. } | JwtError::MissingKid => {}
        JwtError::KeyMismatch { rule, .. } => prop_assert!(!rule.is_empty(), "{e:?}"),
        JwtError::Claim { claim, rule } => {
            prop_assert!(!claim.is_empty() && !rule.is_empty(), "{e:?}")
        }
        JwtError::Jwks { url, reason } => prop_assert!(!url.is_empty() && !reason.is_empty()),
        JwtError::Signature | JwtError::Expired | JwtError::NotYetValid => {}
        JwtError::Config { .. } => prop_assert!(false, "a token gave a config error: {e}"),
        other => prop_assert!(!other.to_string().is_empty()),
    }
    Ok(())
}

/// Any JSON value, up to a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
        select(vec![
            "RS256", "ES256", "HS256", "none", "rsa-1", "ec-1", CLIENT, "id"
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "alg",
            "kid",
            "typ",
            "crit",
            "jku",
            "x5c",
            "keys",
            "kty",
            "use",
            "crv",
            "n",
            "e",
            "x",
            "y",
            "k",
            "iss",
            "sub",
            "aud",
            "exp",
            "nbf",
            "client_id",
            "token_use",
            GROUPS_CLAIM,
            "authorizationToken",
            "requestContext",
            "operation",
            "queryString",
            "channel",
            "channelNamespaceName",
            "requestHeaders",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z_:-]{1,8}",
    ]
}

// ---------------------------------------------------------------------------------------------
// Tokens

/// Text shaped like a token, or not.
fn token_text() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        "[A-Za-z0-9_-]{0,40}",
        "[A-Za-z0-9+/=_-]{0,12}",
        json_value().prop_map(|v| b64(v.to_string().as_bytes())),
        prop::collection::vec(any::<u8>(), 0..48).prop_map(|b| b64(&b)),
        "\\PC{0,8}",
    ];
    prop_oneof![
        "\\PC{0,64}",
        ".{0,16}",
        prop::collection::vec(segment, 1..5).prop_map(|s| s.join(".")),
        (
            json_value(),
            json_value(),
            prop::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(h, p, s)| format!(
                "{}.{}.{}",
                b64(h.to_string().as_bytes()),
                b64(p.to_string().as_bytes()),
                b64(&s)
            )),
        (MAX_TOKEN_BYTES - 8..MAX_TOKEN_BYTES + 8).prop_map(|n| {
            let third = n / 3;
            format!(
                "{}.{}.{}",
                "a".repeat(third),
                "b".repeat(third),
                "c".repeat(n - 2 * third - 2)
            )
        }),
    ]
}

/// One edit of a valid token.
#[derive(Debug, Clone)]
enum TokenEdit {
    /// Replace the character at a position.
    SetChar(Index, char),
    Delete(Index),
    Insert(Index, String),
    Truncate(Index),
    /// Swap two of the three segments.
    Swap(usize, usize),
    /// Another header over the same payload and signature.
    Header(Value),
    /// Other claims under the same header and signature.
    Payload(Value),
    /// The signature of another token, or none.
    Signature(String),
    /// Re-signed with the impostor key (same kid), or with HMAC over a public key.
    Impostor,
    HmacWithPublicKey(Algorithm, bool),
    /// `alg: none` (any spelling), with or without a signature.
    AlgNone(String, bool),
}

fn header_value() -> impl Strategy<Value = Value> {
    let alg = prop_oneof![
        select(vec![
            "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA", "HS256", "HS512",
            "none", "None", "NONE", "", "rs256",
        ])
        .prop_map(|a| json!(a)),
        json_value(),
    ];
    let kid = prop_oneof![
        select(vec!["rsa-1", "ec-1", "unknown", ""]).prop_map(|k| Some(json!(k))),
        json_value().prop_map(Some),
        Just(None),
    ];
    (
        alg,
        kid,
        prop::collection::btree_map(field_name(), json_value(), 0..2),
    )
        .prop_map(|(alg, kid, extra)| {
            let mut h: Map<String, Value> = extra.into_iter().collect();
            h.insert("alg".into(), alg);
            if let Some(kid) = kid {
                h.insert("kid".into(), kid);
            }
            Value::Object(h)
        })
}

fn token_edit() -> impl Strategy<Value = TokenEdit> {
    let base64_char = prop_oneof![
        prop::char::range('A', 'Z'),
        prop::char::range('a', 'z'),
        prop::char::range('0', '9'),
        select(vec!['-', '_', '+', '/', '=', '.', ' ', '\u{0}', 'é']),
    ];
    prop_oneof![
        4 => (any::<Index>(), base64_char).prop_map(|(i, c)| TokenEdit::SetChar(i, c)),
        2 => any::<Index>().prop_map(TokenEdit::Delete),
        2 => (any::<Index>(), "[A-Za-z0-9_=.-]{1,4}|\\PC{1,3}")
            .prop_map(|(i, s)| TokenEdit::Insert(i, s)),
        1 => any::<Index>().prop_map(TokenEdit::Truncate),
        1 => (0usize..3, 0usize..3).prop_map(|(a, b)| TokenEdit::Swap(a, b)),
        2 => header_value().prop_map(TokenEdit::Header),
        2 => json_value().prop_map(TokenEdit::Payload),
        1 => prop_oneof![Just(String::new()), "[A-Za-z0-9_-]{1,400}"].prop_map(TokenEdit::Signature),
        1 => Just(TokenEdit::Impostor),
        1 => (select(vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]), any::<bool>())
            .prop_map(|(a, ec)| TokenEdit::HmacWithPublicKey(a, ec)),
        1 => (select(vec!["none", "None", "NONE", "nOnE"]).prop_map(str::to_owned), any::<bool>())
            .prop_map(|(a, s)| TokenEdit::AlgNone(a, s)),
    ]
}

fn edit(f: &Fixture, token: &str, e: &TokenEdit) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let at = |i: &Index, len: usize| {
        let mut at = i.index(len + 1);
        while !token.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    match e {
        TokenEdit::SetChar(i, c) => {
            let at = at(i, token.len().saturating_sub(1));
            let mut t = token.to_owned();
            if let Some(old) = t[at..].chars().next() {
                t.replace_range(at..at + old.len_utf8(), &c.to_string());
            }
            t
        }
        TokenEdit::Delete(i) => {
            let at = at(i, token.len().saturating_sub(1));
            let mut t = token.to_owned();
            if at < t.len() {
                t.remove(at);
            }
            t
        }
        TokenEdit::Insert(i, s) => {
            let mut t = token.to_owned();
            t.insert_str(at(i, token.len()), s);
            t
        }
        TokenEdit::Truncate(i) => token[..at(i, token.len())].to_owned(),
        TokenEdit::Swap(a, b) => {
            let mut p = parts.clone();
            if p.len() == 3 {
                p.swap(*a, *b);
            }
            p.join(".")
        }
        TokenEdit::Header(h) => {
            format!("{}.{}", b64(h.to_string().as_bytes()), parts[1..].join("."))
        }
        TokenEdit::Payload(p) => format!(
            "{}.{}.{}",
            parts[0],
            b64(p.to_string().as_bytes()),
            parts.get(2).unwrap_or(&"")
        ),
        TokenEdit::Signature(s) => format!("{}.{}.{s}", parts[0], parts[1]),
        TokenEdit::Impostor => f.impostor.sign(&f.claims),
        TokenEdit::HmacWithPublicKey(alg, ec) => {
            let key = if *ec { &f.ec } else { &f.rsa };
            let mut header = jsonwebtoken::Header::new(*alg);
            header.kid = Some(key.kid.clone());
            let secret = jsonwebtoken::EncodingKey::from_secret(key.public_pem.as_bytes());
            jsonwebtoken::encode(&header, &f.claims, &secret).unwrap()
        }
        TokenEdit::AlgNone(alg, signed) => {
            let header = json!({"alg": alg, "kid": "rsa-1", "typ": "JWT"});
            let sig = if *signed { parts[2] } else { "" };
            format!("{}.{}.{sig}", b64(header.to_string().as_bytes()), parts[1])
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Claims with an oracle

/// One claim's value (`None`: absent) and whether the verifier must accept it.
type Claim = (Option<Value>, bool);

fn claim(valid: Vec<Option<Value>>, invalid: Vec<Option<Value>>) -> impl Strategy<Value = Claim> {
    prop_oneof![
        8 => select(valid).prop_map(|v| (v, true)),
        2 => select(invalid).prop_map(|v| (v, false)),
    ]
}

/// Claims for issuer `iss` (each valid most of the time, so a single fault is common), the
/// names of the invalid ones, and any number of extra (possibly huge) claims.
#[derive(Debug, Clone)]
struct Claims {
    claims: Map<String, Value>,
    invalid: Vec<&'static str>,
}

fn claims(iss: String) -> impl Strategy<Value = Claims> {
    let now = now_secs();
    let iss_claim = claim(
        vec![Some(json!(iss))],
        vec![
            None,
            Some(Value::Null),
            Some(json!("https://evil.example")),
            Some(json!(format!("{iss}/"))),
            Some(json!(7)),
            Some(json!([7])),
            Some(json!({"iss": iss})),
            Some(json!([iss])),
            Some(json!(["https://evil.example", iss])),
        ],
    );
    let sub = prop_oneof![
        8 => "\\PC{1,12}".prop_map(|s| (Some(json!(s)), true)),
        2 => select(vec![None, Some(json!("")), Some(json!(5)), Some(Value::Null), Some(json!(["u"]))])
            .prop_map(|v| (v, false)),
    ];
    let exp = claim(
        vec![
            Some(json!(now + 600)),
            Some(json!(now as f64 + 600.5)),
            Some(json!(u64::MAX)),
        ],
        vec![
            None,
            Some(Value::Null),
            Some(json!(now - 600)),
            Some(json!(-5)),
            Some(json!("soon")),
            Some(json!(1e300)),
            Some(json!(true)),
            Some(json!([now + 600])),
            Some(json!({"at": now + 600})),
        ],
    );
    let nbf = claim(
        vec![None, Some(json!(now - 600))],
        vec![
            Some(json!(now + 600)),
            Some(json!("x")),
            Some(json!(-1)),
            Some(Value::Null),
            Some(json!([1])),
        ],
    );
    // (aud, client_id)
    let audience = prop_oneof![
        8 => select(vec![
            (Some(json!(CLIENT)), None),
            (Some(json!(["x", CLIENT])), None),
            (None, Some(json!(CLIENT))),
            (Some(json!("other")), Some(json!(CLIENT))),
            (Some(json!([CLIENT])), Some(json!("other"))),
        ]).prop_map(|a| (a, true)),
        2 => select(vec![
            (None, None),
            (Some(json!("other")), None),
            (Some(json!(["other"])), Some(json!("x"))),
            (Some(json!(5)), Some(json!(5))),
            (Some(json!([{"aud": CLIENT}])), Some(json!([CLIENT]))),
            (Some(json!(format!("{CLIENT} "))), None),
        ]).prop_map(|a| (a, false)),
    ];
    let token_use = claim(
        vec![Some(json!("id")), Some(json!("access"))],
        vec![
            None,
            Some(json!("refresh")),
            Some(json!(7)),
            Some(Value::Null),
        ],
    );
    let groups = prop_oneof![
        6 => prop::collection::vec("\\PC{0,10}", 0..8).prop_map(|g| (Some(json!(g)), true)),
        1 => (0usize..3000).prop_map(|n| (Some(json!((0..n).map(|i| format!("g{i}")).collect::<Vec<_>>())), true)),
        1 => select(vec![None, Some(Value::Null)]).prop_map(|g| (g, true)),
        2 => prop_oneof![
            select(vec![json!("team-a"), json!(["a", 1]), json!(["a", null]), json!({"a": 1}), json!(true), json!([["a"]])]),
            json_value().prop_filter("not an array of strings", |v| !matches!(v, Value::Null)
                && !v.as_array().is_some_and(|a| a.iter().all(Value::is_string))),
        ].prop_map(|g| (Some(g), false)),
    ];
    let extra = prop::collection::vec(
        (
            "x-[a-z]{1,6}",
            prop_oneof![
                4 => json_value(),
                1 => (0usize..14_000).prop_map(|n| json!("a".repeat(n))),
            ],
        ),
        0..3,
    );
    (iss_claim, sub, exp, nbf, audience, token_use, groups, extra).prop_map(
        |(iss, sub, exp, nbf, ((aud, client_id), aud_ok), token_use, groups, extra)| {
            let mut claims = Map::new();
            let mut invalid = Vec::new();
            for (name, (value, ok)) in [
                ("iss", iss),
                ("sub", sub),
                ("exp", exp),
                ("nbf", nbf),
                ("token_use", token_use),
                (GROUPS_CLAIM, groups),
            ] {
                if let Some(v) = value {
                    claims.insert(name.to_owned(), v);
                }
                if !ok {
                    invalid.push(name);
                }
            }
            for (name, value) in [("aud", aud), ("client_id", client_id)] {
                if let Some(v) = value {
                    claims.insert(name.to_owned(), v);
                }
            }
            if !aud_ok {
                invalid.push("aud");
            }
            for (k, v) in extra {
                claims.insert(k, v);
            }
            Claims { claims, invalid }
        },
    )
}

// ---------------------------------------------------------------------------------------------
// JWKS documents

/// A JWKS document: the real keys with fields mutated, dropped or swapped, other keys, or
/// anything at all.
fn jwks_doc(rsa: Value, ec: Value, impostor: Value) -> impl Strategy<Value = Vec<u8>> {
    let field_value = prop_oneof![
        select(vec![
            json!("RSA"),
            json!("EC"),
            json!("oct"),
            json!("OKP"),
            json!("RS256"),
            json!("ES256"),
            json!("HS256"),
            json!("none"),
            json!("sig"),
            json!("enc"),
            json!("P-256"),
            json!("P-384"),
            json!("rsa-1"),
            json!("ec-1"),
            json!("AQAB"),
            json!(""),
            json!(["sign"]),
            json!(["verify"]),
        ]),
        json_value(),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| json!(b64(&b))),
    ];
    let key_edit = (
        select(vec![
            "kty", "alg", "use", "crv", "n", "e", "x", "y", "kid", "k", "key_ops", "x5c",
        ]),
        prop_oneof![3 => field_value.prop_map(Some), 1 => Just(None)],
    );
    let keys = prop::collection::vec(
        (
            select(vec![rsa, ec, impostor, json!({})]),
            prop::collection::vec(key_edit, 0..3),
        )
            .prop_map(|(mut key, edits)| {
                for (field, value) in edits {
                    match (key.as_object_mut(), value) {
                        (Some(k), Some(v)) => {
                            k.insert(field.to_owned(), v);
                        }
                        (Some(k), None) => {
                            k.remove(field);
                        }
                        _ => {}
                    }
                }
                key
            }),
        0..5,
    );
    prop_oneof![
        6 => keys.prop_map(|k| json!({"keys": k}).to_string().into_bytes()),
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => Just(format!("{{\"keys\": [], \"pad\": \"{}\"}}", "x".repeat(300_000)).into_bytes()),
    ]
}

/// Whether `doc` publishes `real`'s key material under `real`'s kid.
fn publishes(doc: &[u8], real: &Value) -> bool {
    let Ok(doc) = serde_json::from_slice::<Value>(doc) else {
        return false;
    };
    let material: &[&str] = match real["kty"].as_str() {
        Some("RSA") => &["kty", "n", "e"],
        _ => &["kty", "crv", "x", "y"],
    };
    doc["keys"].as_array().is_some_and(|keys| {
        keys.iter()
            .any(|k| k["kid"] == real["kid"] && material.iter().all(|m| k[*m] == real[*m]))
    })
}

// ---------------------------------------------------------------------------------------------
// Authorizer requests

/// What a request carries as its token.
#[derive(Debug, Clone)]
enum TokenField {
    Valid { bearer: bool, ec: bool },
    Edited(TokenEdit),
    Any(Value),
    Absent,
}

fn token_field() -> impl Strategy<Value = TokenField> {
    prop_oneof![
        8 => (any::<bool>(), any::<bool>()).prop_map(|(bearer, ec)| TokenField::Valid { bearer, ec }),
        2 => token_edit().prop_map(TokenField::Edited),
        1 => json_value().prop_map(TokenField::Any),
        1 => Just(TokenField::Absent),
    ]
}

/// Channels near the caller's groups (`team-a`, `Team_B` → `x--Team-5fB`) and far from them.
fn channel() -> impl Strategy<Value = Value> {
    let segment = prop_oneof![
        select(vec![
            "team-a",
            "x--Team-5fB",
            "Team_B",
            "team-b",
            "TEAM-A",
            "*",
            "team-a*",
            "",
            "x--Team-5fb",
            "admins"
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z0-9-]{1,8}",
        "\\PC{0,6}",
    ];
    // A channel of one's own group in `live`, topic levels and perhaps a trailing wildcard.
    let own = (
        select(vec!["team-a", "x--Team-5fB"]),
        prop::collection::vec("[a-z0-9-]{1,6}|\\*", 0..4),
    )
        .prop_map(|(g, topic)| {
            let topic: String = topic.iter().map(|t| format!("/{t}")).collect();
            json!(format!("/live/{g}{topic}"))
        });
    prop_oneof![
        6 => own,
        6 => (
            select(vec!["live", "jobs", "other", "", " ", "*"]),
            prop::collection::vec(segment, 0..6),
            any::<bool>(),
        )
            .prop_map(|(ns, rest, slash)| {
                let mut c = if slash { "/".to_owned() } else { String::new() };
                c.push_str(ns);
                for s in rest {
                    c.push('/');
                    c.push_str(&s);
                }
                json!(c)
            }),
        1 => json_value(),
    ]
}

fn request() -> impl Strategy<Value = (Value, TokenField)> {
    let operation = prop_oneof![
        10 => select(vec!["EVENT_CONNECT", "EVENT_SUBSCRIBE", "EVENT_SUBSCRIBE", "EVENT_PUBLISH"]).prop_map(|o| json!(o)),
        1 => select(vec!["event_connect", "EVENT_SUBSCRIBE ", "CONNECT", ""]).prop_map(|o| json!(o)),
        1 => json_value(),
    ];
    let namespace = prop_oneof![
        6 => select(vec![Some(json!("live")), Some(json!("live")), Some(json!("jobs")), Some(Value::Null), None]),
        1 => json_value().prop_map(Some),
    ];
    let events = (operation, namespace, prop::option::weighted(0.9, channel()), json_value()).prop_map(
        |(op, ns, ch, headers)| {
            let mut ctx = json!({"apiId": "api", "accountId": "111122223333", "requestId": "r", "operation": op});
            if let Some(ns) = ns {
                ctx["channelNamespaceName"] = ns;
            }
            if let Some(ch) = ch {
                ctx["channel"] = ch;
            }
            json!({"requestContext": ctx, "requestHeaders": headers})
        },
    );
    let graphql = (
        prop_oneof![
            6 => select(vec!["subscription { subscribe(groups: [\"team-a\"]) { topic } }", "mutation { publish { topic } }"])
                .prop_map(|q| json!(q)),
            1 => json_value(),
        ],
        json_value(),
    )
        .prop_map(|(q, variables)| {
            json!({"requestContext": {"apiId": "api", "queryString": q, "operationName": null, "variables": variables}})
        });
    (
        prop_oneof![8 => events, 4 => graphql, 1 => json_value()],
        token_field(),
    )
}

proptest! {
    #![proptest_config(runner(256))]

    #[test]
    fn arbitrary_token_text_is_refused_and_the_refusal_names_the_problem(token in token_text()) {
        let f = fixture();
        let e = f.verify(&token).expect_err("an arbitrary token was accepted");
        check_refusal(&e)?;
        if token.len() > MAX_TOKEN_BYTES {
            prop_assert_eq!(e, JwtError::Malformed(format!("longer than {MAX_TOKEN_BYTES} bytes")));
        }
    }

    #[test]
    fn an_edited_valid_token_is_refused_unless_it_still_carries_the_signed_bytes(
        ec in any::<bool>(),
        edits in prop::collection::vec(token_edit(), 1..3),
    ) {
        let f = fixture();
        let original = if ec { &f.valid_ec } else { &f.valid_rsa };
        let mut token = original.clone();
        for e in &edits {
            token = edit(f, &token, e);
        }
        match f.verify(&token) {
            Ok(t) => {
                // Only a re-encoding of the very bytes the test key signed may pass.
                prop_assert_eq!(decoded_segments(&token), decoded_segments(original), "{}", token);
                prop_assert_eq!(Value::Object(t.claims), f.claims.clone());
            }
            Err(e) => {
                check_refusal(&e)?;
                if let [TokenEdit::Payload(p)] = edits.as_slice() && *p != f.claims {
                    prop_assert_eq!(e, JwtError::Signature);
                }
            }
        }
    }

    #[test]
    fn an_authorizer_request_is_allowed_only_for_a_valid_token_and_a_channel_of_its_groups(
        (mut event, token) in request(),
        max_ttl in 0u64..5000,
    ) {
        let f = fixture();
        let (raw, valid) = match &token {
            TokenField::Valid { bearer, ec } => {
                let t = if *ec { &f.valid_ec } else { &f.valid_rsa };
                (Some(json!(if *bearer { format!("Bearer {t}") } else { t.clone() })), true)
            }
            TokenField::Edited(e) => {
                let t = edit(f, &f.valid_rsa, e);
                let same = decoded_segments(&t) == decoded_segments(&f.valid_rsa);
                (Some(json!(t)), same)
            }
            TokenField::Any(v) => (Some(v.clone()), false),
            TokenField::Absent => (None, false),
        };
        if let (Some(raw), Some(obj)) = (raw, event.as_object_mut()) {
            obj.insert("authorizationToken".into(), raw);
        }
        let now = now_secs();
        let parsed = authorizer::parse(event.clone());
        let response = f.rt.block_on(authorizer::handle(&f.verifier, event.clone(), max_ttl, now));
        let answer = serde_json::to_value(&response).unwrap();
        if let Err(reason) = &parsed {
            // Which shape, and which field of it (`requestContext.channel: invalid type: …`).
            let field = reason
                .strip_prefix("AppSync Events authorizer request: ")
                .or_else(|| reason.strip_prefix("AppSync GraphQL authorizer request: "));
            prop_assert!(
                reason.starts_with("no requestContext object")
                    || reason.starts_with("requestContext has neither")
                    || field.is_some_and(|f| f.starts_with("requestContext.") || f.starts_with("authorizationToken: ")),
                "{reason}"
            );
        }
        if !response.is_authorized() {
            prop_assert_eq!(answer, json!({"isAuthorized": false, "ttlOverride": 0}));
            // A valid token is refused only for the request's own reasons.
            if valid && let Ok(authorizer::Request::Events(r)) = &parsed {
                prop_assert!(r.request_context.operation != Operation::EventConnect, "connect refused: {event}");
            }
            if valid {
                prop_assert!(!matches!(parsed, Ok(authorizer::Request::Graphql(_))), "GraphQL refused: {event}");
            }
            return Ok(());
        }
        prop_assert!(valid, "allowed without a valid token: {event}");
        let exp = f.claims["exp"].as_u64().unwrap();
        let ttl = answer["ttlOverride"].as_u64().unwrap();
        prop_assert!(ttl <= max_ttl.min(3600).min(exp.saturating_sub(now)), "ttl {ttl}");
        let context = match &parsed {
            Ok(authorizer::Request::Events(r)) => {
                let ctx = &r.request_context;
                match ctx.operation {
                    Operation::EventConnect => {}
                    Operation::EventSubscribe => {
                        let channel = ctx.channel.as_deref().unwrap_or_default();
                        let segments: Vec<&str> = channel.strip_prefix('/').unwrap_or(channel).split('/').collect();
                        prop_assert!(
                            segments.len() >= 2 && ["team-a", "x--Team-5fB"].contains(&segments[1]),
                            "subscribed outside the caller's groups: {channel:?}"
                        );
                        prop_assert!(groupcast::is_valid_segment(segments[0]), "{channel:?}");
                        prop_assert!(ctx.channel_namespace_name.as_deref().is_none_or(|ns| ns == segments[0]));
                    }
                    other => prop_assert!(false, "{other:?} allowed: {event}"),
                }
                answer["handlerContext"].clone()
            }
            Ok(authorizer::Request::Graphql(_)) => {
                prop_assert_eq!(&answer["deniedFields"], &json!(["Mutation.publish"]));
                answer["resolverContext"].clone()
            }
            Err(_) => return Err(TestCaseError::fail(format!("an unparsed request was allowed: {event}"))),
        };
        let groups: Vec<String> = serde_json::from_str(context["groups"].as_str().unwrap_or("")).unwrap();
        prop_assert_eq!(groups, ["team-a", "Team_B"]);
        prop_assert_eq!(&context["sub"], &f.claims["sub"]);
    }
}

proptest! {
    // Every case signs a token (RSA or EC): fewer cases by default.
    #![proptest_config(runner(128))]

    #[test]
    fn a_signed_token_is_accepted_exactly_when_its_claims_are_valid_and_a_refusal_names_the_claim(
        ec in any::<bool>(),
        c in claims(fixture().issuer.clone()),
    ) {
        let f = fixture();
        let key = if ec { &f.ec } else { &f.rsa };
        let header = json!({"alg": if ec { "ES256" } else { "RS256" }, "kid": key.kid, "typ": "JWT"});
        let token = sign_raw(key, header.to_string().as_bytes(), Value::Object(c.claims.clone()).to_string().as_bytes());
        let too_long = token.len() > MAX_TOKEN_BYTES;
        match f.verify(&token) {
            Ok(t) => {
                prop_assert!(c.invalid.is_empty() && !too_long, "accepted although {:?} invalid: {:?}", c.invalid, c.claims);
                let groups = match c.claims.get(GROUPS_CLAIM) {
                    Some(Value::Array(g)) => g.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                    _ => Vec::new(),
                };
                prop_assert_eq!(t.groups, groups);
                prop_assert_eq!(Some(&json!(t.sub)), c.claims.get("sub"));
                // The claims as signed (extra claims aside: serde_json reads floats to the
                // nearest, not always to the same, double).
                let checked = |m: &Map<String, Value>| {
                    let mut m = m.clone();
                    m.retain(|k, _| !k.starts_with("x-"));
                    m
                };
                prop_assert_eq!(checked(&t.claims), checked(&c.claims));
                prop_assert_eq!(t.claims.len(), c.claims.len());
            }
            Err(e) => {
                check_refusal(&e)?;
                prop_assert!(!c.invalid.is_empty() || too_long, "valid claims refused: {e}: {:?}", c.claims);
                if too_long {
                    prop_assert!(matches!(e, JwtError::Malformed(ref m) if m.contains("longer than")), "{e}");
                } else if let [name] = c.invalid.as_slice() {
                    prop_assert!(e.to_string().contains(name), "{name} is the invalid claim, the refusal says: {e}");
                }
            }
        }
    }

}

proptest! {
    // Every case builds a fresh verifier (an empty cache, and so an HTTP client) and fetches
    // the document: fewer cases by default.
    #![proptest_config(runner(64))]

    #[test]
    fn a_jwks_document_never_panics_and_only_the_published_key_verifies(
        doc in jwks_doc(fixture().rsa.jwk(), fixture().ec.jwk(), fixture().impostor.jwk()),
        ec in any::<bool>(),
    ) {
        let f = fixture();
        *f.doc.lock().unwrap() = doc.clone();
        let mut c = config(&f.issuer);
        c.jwks_url = f.doc_url.clone();
        let verifier = Verifier::new(c).unwrap();
        let (token, real) = if ec { (&f.valid_ec, f.ec.jwk()) } else { (&f.valid_rsa, f.rsa.jwk()) };
        match f.rt.block_on(verifier.verify(token)) {
            Ok(t) => {
                prop_assert!(publishes(&doc, &real), "verified against a JWKS without the key: {}", String::from_utf8_lossy(&doc));
                prop_assert_eq!(Value::Object(t.claims), f.claims.clone());
            }
            Err(e) => {
                check_refusal(&e)?;
                if let JwtError::Jwks { url, .. } = &e {
                    prop_assert_eq!(url, &f.doc_url);
                }
            }
        }
        // The impostor's token (same kid, other key) never verifies, whatever the document says
        // about the real key.
        if !publishes(&doc, &f.impostor.jwk()) {
            let forged = f.impostor.sign(&f.claims);
            let r = f.rt.block_on(verifier.verify(&forged));
            prop_assert!(r.is_err(), "{r:?}: {}", String::from_utf8_lossy(&doc));
        }
    }
}

proptest! {
    #![proptest_config(runner(512))]

    #[test]
    fn events_decide_allows_a_subscription_only_to_a_channel_of_the_callers_groups(
        groups in prop::collection::vec(prop_oneof!["\\PC{0,8}", "[a-zA-Z0-9_-]{1,8}", Just("team-a".to_owned())], 0..5),
        channel in prop::option::of(channel().prop_map(|c| c.as_str().unwrap_or("").to_owned())),
        namespace in prop::option::of(select(vec!["live", "jobs", ""]).prop_map(str::to_owned)),
        op in select(vec![Operation::EventConnect, Operation::EventSubscribe, Operation::EventPublish, Operation::Unknown]),
    ) {
        let token = VerifiedToken { sub: "u".into(), groups: groups.clone(), exp: now_secs() + 600, claims: Map::new() };
        let ctx = RequestContext {
            api_id: None, account_id: None, request_id: None,
            operation: op, channel_namespace_name: namespace.clone(), channel: channel.clone(),
        };
        match events::decide(&ctx, &token, 300, now_secs()) {
            Ok(r) => {
                prop_assert!(r.is_authorized);
                prop_assert!(matches!(op, Operation::EventConnect | Operation::EventSubscribe));
                if op == Operation::EventSubscribe {
                    let channel = channel.unwrap_or_default();
                    let segments: Vec<&str> = channel.strip_prefix('/').unwrap_or(&channel).split('/').collect();
                    prop_assert!((2..=5).contains(&segments.len()), "{channel:?}");
                    prop_assert!(namespace.is_none_or(|ns| ns == segments[0]), "{channel:?}");
                    let own: Vec<String> = groups.iter().filter_map(|g| groupcast::group_segment(g).ok()).collect();
                    prop_assert!(own.iter().any(|s| s == segments[1]), "{channel:?} is not one of {groups:?}");
                    prop_assert!(segments.iter().enumerate().all(|(i, s)| groupcast::is_valid_segment(s) || (i == segments.len() - 1 && i >= 2 && *s == "*")), "{channel:?}");
                }
            }
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                match e {
                    DenyReason::Channel { channel: c, rule } => {
                        prop_assert_eq!(Some(c), Some(channel.unwrap_or_default()));
                        prop_assert!(!rule.is_empty());
                    }
                    DenyReason::NotMember { segment } => prop_assert!(!segment.is_empty()),
                    DenyReason::Publish => prop_assert_eq!(op, Operation::EventPublish),
                    DenyReason::UnknownOperation => prop_assert_eq!(op, Operation::Unknown),
                    other => prop_assert!(false, "{other}"),
                }
            }
        }
    }

    #[test]
    fn the_verifier_configuration_never_panics_and_errors_name_the_variable(
        name in select(vec![
            jwt::env::ISSUER, jwt::env::JWKS_URL, jwt::env::AUDIENCES, jwt::env::TOKEN_USE,
            jwt::env::GROUPS_CLAIM, jwt::env::ALGORITHMS, jwt::env::LEEWAY_SECS,
            jwt::env::JWKS_MIN_REFRESH_SECS, jwt::env::JWKS_MAX_AGE_SECS, authorizer::TTL_ENV,
        ]),
        value in "\\PC{0,40}|[0-9]{0,22}|-?[0-9]{1,5}|(RS256|ES256|HS256|none| |,){0,4}|https?://[a-z0-9.:\\[\\]]{0,20}/?",
    ) {
        let var = |k: &str| {
            if k == name {
                Some(value.clone())
            } else {
                match k {
                    jwt::env::ISSUER => Some("https://issuer.example".to_owned()),
                    jwt::env::AUDIENCES => Some(CLIENT.to_owned()),
                    _ => None,
                }
            }
        };
        match JwtConfig::from_lookup(var) {
            Ok(c) => {
                prop_assert!(c.validate().is_ok());
                prop_assert!(!c.audiences.is_empty() && !c.algorithms.is_empty());
                prop_assert!(c.algorithms.iter().all(|a| matches!(a, Algorithm::RS256 | Algorithm::ES256)));
                prop_assert!(c.issuer.starts_with("https://") || c.issuer.starts_with("http://"));
            }
            Err(JwtError::Config { var: v, rule }) => {
                prop_assert_eq!(v, name, "{}", rule);
                prop_assert!(!rule.is_empty());
            }
            Err(other) => prop_assert!(false, "{other}"),
        }
        if let Err(e) = authorizer::ttl_from_lookup(var) {
            prop_assert!(e.starts_with(authorizer::TTL_ENV), "{e}");
        }
    }
}
