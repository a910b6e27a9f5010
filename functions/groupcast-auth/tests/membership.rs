//! `CognitoMembership` (feature `cognito`) against a local stand-in for the user pools API (the
//! awsJson1.1 protocol on 127.0.0.1): it asks the configured pool about the given user, follows
//! `NextToken` across pages, treats a disabled user as holding no groups, and reports a deleted
//! user and a failed lookup as errors, never as an empty list.

mod support;

use std::sync::{Arc, Mutex};

use groupcast_auth::membership::{CognitoMembership, Membership, MembershipError, UserPoolId};
use serde_json::{Value, json};
use support::{Http, Req, reply};

const POOL: &str = "eu-west-1_TestPool9";

/// The stand-in's users: name → (enabled, groups); every request it saw (target, body).
#[derive(Default)]
struct Pool {
    users: Vec<(&'static str, bool, Vec<String>)>,
    /// Fail every call with this HTTP status and error code.
    fail: Option<(u16, &'static str)>,
    seen: Vec<(String, Value)>,
}

fn error(status: u16, code: &str) -> support::Reply {
    reply(
        status,
        json!({"__type": code, "message": format!("{code} from the stand-in")}).to_string(),
    )
}

fn answer(pool: &mut Pool, req: &Req) -> support::Reply {
    let target = req
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    pool.seen.push((target.clone(), body.clone()));
    if let Some((status, code)) = pool.fail {
        return error(status, code);
    }
    if body["UserPoolId"] != POOL {
        return error(400, "ResourceNotFoundException");
    }
    let Some((name, enabled, groups)) = pool
        .users
        .iter()
        .find(|(n, _, _)| body["Username"] == *n)
        .cloned()
    else {
        return error(400, "UserNotFoundException");
    };
    match target.as_str() {
        "AWSCognitoIdentityProviderService.AdminGetUser" => reply(
            200,
            json!({"Username": name, "Enabled": enabled, "UserStatus": "CONFIRMED"}).to_string(),
        ),
        "AWSCognitoIdentityProviderService.AdminListGroupsForUser" => {
            // Pages of two, to make the client follow NextToken.
            let start: usize = body["NextToken"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let page: Vec<Value> = groups
                .iter()
                .skip(start)
                .take(2)
                .map(|g| json!({"GroupName": g, "UserPoolId": POOL}))
                .collect();
            let mut out = json!({ "Groups": page });
            if start + 2 < groups.len() {
                out["NextToken"] = json!((start + 2).to_string());
            }
            reply(200, out.to_string())
        }
        other => error(400, &format!("UnknownOperation {other}")),
    }
}

async fn stand_in(pool: Pool) -> (Http, Arc<Mutex<Pool>>, CognitoMembership) {
    use aws_sdk_cognitoidentityprovider::config;
    let pool = Arc::new(Mutex::new(pool));
    let p = pool.clone();
    let http = Http::serve(move |req: Req| {
        let p = p.clone();
        async move { answer(&mut p.lock().unwrap(), &req) }
    })
    .await;
    let builder = config::Builder::new()
        .behavior_version(config::BehaviorVersion::latest())
        .credentials_provider(config::Credentials::new(
            "AKID", "secret", None, None, "test",
        ))
        .endpoint_url(http.url(""))
        .retry_config(config::retry::RetryConfig::disabled());
    let membership = CognitoMembership::new(builder, UserPoolId::parse(POOL).unwrap());
    (http, pool, membership)
}

fn groups(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn the_current_groups_are_read_from_the_pool_across_every_page_for_that_user_only() {
    let (_http, pool, m) = stand_in(Pool {
        users: vec![
            (
                "alice",
                true,
                groups(&["team-c", "admins", "team-a", "team-b", "x"]),
            ),
            ("bob", true, groups(&["bob-only"])),
        ],
        ..Pool::default()
    })
    .await;
    assert_eq!(m.pool().region(), "eu-west-1");
    let got = m.current_groups("alice").await.unwrap();
    assert_eq!(got, ["admins", "team-a", "team-b", "team-c", "x"]);
    let seen = pool.lock().unwrap().seen.clone();
    let targets: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        targets,
        [
            "AWSCognitoIdentityProviderService.AdminGetUser",
            "AWSCognitoIdentityProviderService.AdminListGroupsForUser",
            "AWSCognitoIdentityProviderService.AdminListGroupsForUser",
            "AWSCognitoIdentityProviderService.AdminListGroupsForUser",
        ],
        "one AdminGetUser, then three pages"
    );
    for (_, body) in &seen {
        assert_eq!(body["UserPoolId"], POOL);
        assert_eq!(body["Username"], "alice");
    }
}

#[tokio::test]
async fn a_disabled_user_holds_no_groups_and_their_groups_are_never_listed() {
    let (_http, pool, m) = stand_in(Pool {
        users: vec![("carol", false, groups(&["team-a"]))],
        ..Pool::default()
    })
    .await;
    let e = m.current_groups("carol").await.unwrap_err();
    assert_eq!(
        e,
        MembershipError::UserDisabled {
            user: "carol".into()
        }
    );
    assert!(e.user_is_gone());
    assert_eq!(pool.lock().unwrap().seen.len(), 1, "only AdminGetUser");
}

#[tokio::test]
async fn a_deleted_user_is_not_found_and_a_failed_lookup_is_an_error_not_an_empty_list() {
    let (_http, pool, m) = stand_in(Pool::default()).await;
    let e = m.current_groups("dave").await.unwrap_err();
    assert_eq!(
        e,
        MembershipError::UserNotFound {
            user: "dave".into()
        }
    );

    pool.lock().unwrap().users = vec![("erin", true, groups(&["team-a"]))];
    for (status, code) in [
        (400, "TooManyRequestsException"),
        (400, "NotAuthorizedException"),
        (500, "InternalErrorException"),
    ] {
        pool.lock().unwrap().fail = Some((status, code));
        let e = m.current_groups("erin").await.unwrap_err();
        assert!(!e.user_is_gone(), "{code}: {e}");
        assert!(
            matches!(&e, MembershipError::Lookup { operation: "AdminGetUser", message, .. } if message.contains(code)),
            "{code}: {e}"
        );
    }
}

#[tokio::test]
async fn a_user_name_cognito_could_not_hold_is_refused_before_any_call() {
    let (_http, pool, m) = stand_in(Pool::default()).await;
    for bad in ["", "two words", &"x".repeat(129)] {
        let e = m.current_groups(bad).await.unwrap_err();
        assert!(matches!(e, MembershipError::BadUser { .. }), "{bad:?}: {e}");
    }
    assert!(pool.lock().unwrap().seen.is_empty());
}
