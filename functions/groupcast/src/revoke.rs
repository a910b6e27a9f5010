//! Revocation: [`Publisher::revoke`], the one call that makes every configured transport stop
//! delivering a group's messages to a user who left it, and the [`RevokeReport`] that says, per
//! transport, what was done. The bounds are in docs/isolation.md ("Revocation").
//!
//! - **GraphQL**: the IAM-signed `revoke` mutation. AppSync closes the user's open `subscribe`
//!   subscriptions that include any revoked group, and no one else's: each subscription carries an
//!   invalidation filter `userId eq <its subscriber> AND groups containsAny <its groups>`
//!   (https://docs.aws.amazon.com/appsync/latest/devguide/aws-appsync-real-time-invalidation.html).
//! - **IoT**: the iot-grant function's server-side sync, invoked through the Lambda Invoke API
//!   (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html) with
//!   `{"sync":{"user":"<user>"}}`: it re-reads the user's current groups and detaches the policies
//!   of the groups they left. Its answer is passed through.
//! - **Events**: AWS offers no invalidation of Event API subscriptions, so nothing is sent. In a
//!   time-sliced namespace (`epoch_seconds = P`, [`crate::epoch`]) every subscription must be taken
//!   again for each epoch and `onSubscribe` checks it then, so the removal takes effect by itself
//!   within `2 P` (plus the authorizer's cached allow): the report says [`RevokeOutcome::Expires`]
//!   with that bound ([`events_epoch_bound`]). Without epochs it says [`RevokeOutcome::NotSupported`]
//!   with the 24 h bound ([`EVENTS_BOUND`]), never success. New subscriptions are bounded where
//!   they are decided: the Lambda authorizer's `groups_source = "user-pool"` reads current groups
//!   (docs/isolation.md, "Revocation").

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::client::{PublishOptions, Publisher, Reply, Resolved};
use crate::error::Error;
use crate::retry::{self, AttemptError, Item};
use crate::sign::APPSYNC_SERVICE;
use crate::transport::Transport;
use crate::{Authorizer, graphql, limits};

/// SigV4 signing name of the Lambda API.
pub const LAMBDA_SERVICE: &str = "lambda";

/// How long a removed member can still receive on AppSync Events, which has no invalidation
/// (docs/isolation.md, "Revocation").
pub const EVENTS_BOUND: &str = "AppSync Events cannot close a subscription from the server: nothing was sent. An open subscription keeps receiving until its WebSocket connection ends (at most 24 hours). New subscriptions: with the Lambda authorizer's groups_source = \"user-pool\" and AWS_LAMBDA subscribers, refused once AppSync's cached allow expires (result_ttl_seconds, at most 3600 s, default 300 s); otherwise admitted until the user's token expires (Cognito: 1 hour by default, at most 1 day) plus that cached allow; see docs/isolation.md, Revocation";

/// How long a removed member can still receive in a time-sliced Events namespace of epoch `p`
/// seconds: an open subscription lives to the end of the epoch after the one it was taken in, and
/// taking the next one is checked against the caller's groups (docs/isolation.md, "Revocation").
pub fn events_epoch_bound(namespace: &str, p: u64) -> String {
    format!(
        "Namespace {namespace} is time-sliced (epoch_seconds = {p}): nothing was sent; every \
         subscription is taken again each epoch and onSubscribe checks the caller's groups then, so \
         a removed member's open subscriptions stop receiving within {} s of the removal, plus \
         AppSync's cached allow (result_ttl_seconds) with the Lambda authorizer's groups_source = \
         \"user-pool\" and AWS_LAMBDA subscribers; when groups come from the token instead, plus \
         the token's remaining life (Cognito: 1 hour by default, at most 1 day); see \
         docs/isolation.md, Revocation",
        2 * p
    )
}

/// What [`Publisher::revoke`] did, per transport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevokeReport {
    /// The user revoked (the subscriber's `sub`).
    pub user: String,
    /// The groups the user no longer belongs to.
    pub groups: Vec<String>,
    /// One entry per transport the call covered, in the order of the publisher's transports.
    pub transports: Vec<TransportRevocation>,
}

/// What was done on one transport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransportRevocation {
    /// The transport.
    pub transport: Transport,
    /// What became of the revocation there.
    pub outcome: RevokeOutcome,
    /// Requests made (retries included); 0 when nothing was sent.
    pub attempts: u32,
}

/// The fate of a revocation on one transport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RevokeOutcome {
    /// GraphQL: AppSync ran the `revoke` mutation, which closes the user's open subscriptions
    /// that include a revoked group.
    Invalidated,
    /// IoT: the iot-grant function re-synced the user's IoT policies with their current groups.
    Synced {
        /// The function's answer, as it returned it.
        response: serde_json::Value,
    },
    /// Nothing needed sending: the transport ends the removed member's access by itself within
    /// `within_seconds` (AppSync Events in a time-sliced namespace, [`crate::epoch`]), under the
    /// conditions `bound` states.
    Expires {
        /// The longest a removed member's open subscription keeps receiving, in seconds.
        within_seconds: u64,
        /// The bound and its conditions, in words.
        bound: String,
    },
    /// AWS offers no way to revoke on this transport: nothing was sent. `bound` says how long a
    /// removed member may still receive.
    NotSupported {
        /// The bound, in words.
        bound: String,
    },
    /// The revocation was not done (or not confirmed).
    Failed {
        /// The cause, in words.
        error: String,
        /// Whether trying again later might succeed.
        retryable: bool,
    },
}

impl RevokeOutcome {
    /// Whether the transport did what revocation needs there (an [`RevokeOutcome::Expires`]
    /// transport needs nothing more: the removal takes effect within its bound).
    pub fn is_done(&self) -> bool {
        matches!(
            self,
            RevokeOutcome::Invalidated
                | RevokeOutcome::Synced { .. }
                | RevokeOutcome::Expires { .. }
        )
    }
}

impl RevokeReport {
    /// True when every transport did what revocation needs ([`RevokeOutcome::is_done`]): a
    /// transport that cannot revoke ([`RevokeOutcome::NotSupported`]) makes it false too.
    pub fn is_complete(&self) -> bool {
        self.transports.iter().all(|t| t.outcome.is_done())
    }

    /// The transports where the revocation failed.
    pub fn failures(&self) -> impl Iterator<Item = &TransportRevocation> {
        self.transports
            .iter()
            .filter(|t| matches!(t.outcome, RevokeOutcome::Failed { .. }))
    }
}

/// Checks `user` and `groups` as the `revoke` mutation will: a user id is compared whole with the
/// subscriber's (1-256 characters, not blank: AppSync's filter value limit), and an empty group
/// list would revoke nothing and look like success.
fn validate(user: &str, groups: &[String]) -> Result<(), Error> {
    let max = limits::FILTER_VALUE_MAX_CHARS;
    if user.trim().is_empty() || user.chars().count() > max {
        return Err(Error::invalid(
            "user",
            format!(
                "must be the subscriber's user id (the sub claim): 1-{max} characters, not blank"
            ),
        ));
    }
    if groups.is_empty() {
        return Err(Error::invalid(
            "groups",
            "name at least one group the user no longer belongs to",
        ));
    }
    for (i, g) in groups.iter().enumerate() {
        if g.is_empty() || g.chars().count() > max {
            return Err(Error::invalid(
                format!("groups[{i}]"),
                format!("a group name has 1-{max} characters"),
            ));
        }
    }
    Ok(())
}

/// Events sends nothing: the namespace's epochs bound the removal, or nothing does but the
/// connection's life. `events-ws` publishes to the same namespace, so it has the same answer.
fn events_outcome(events: Option<&crate::config::EventsEndpoint>) -> RevokeOutcome {
    match events.and_then(|e| e.epoch_seconds.map(|p| (e, p))) {
        Some((e, p)) => RevokeOutcome::Expires {
            within_seconds: 2 * p,
            bound: events_epoch_bound(&e.namespace, p),
        },
        None => RevokeOutcome::NotSupported {
            bound: EVENTS_BOUND.to_owned(),
        },
    }
}

impl Publisher {
    /// Revokes `user`'s access to `groups` on every transport of this publisher (see
    /// [`Self::revoke_with`]).
    ///
    /// # Errors
    /// As [`Self::revoke_with`].
    pub async fn revoke<G: AsRef<str>>(
        &self,
        user: &str,
        groups: &[G],
    ) -> Result<RevokeReport, Error> {
        self.revoke_with(user, groups, &PublishOptions::default())
            .await
    }

    /// Revokes `user`'s access to `groups` (the user left them) over the chosen transports:
    /// GraphQL closes the user's subscriptions that include one of them, IoT re-syncs the user's
    /// policies through the iot-grant function, Events reports that it cannot
    /// ([`RevokeOutcome::NotSupported`]). `user` is the subscriber's user id: the Cognito or OIDC
    /// `sub`, or the `sub` the Lambda authorizer returns. Requests are retried as publishing's are
    /// (429, 5xx, network errors, timeouts) within the call's deadline.
    ///
    /// # Errors
    /// Only before anything is sent: [`Error::Invalid`] for a blank or over-long user id, no
    /// groups or a bad group name; [`Error::Config`] for a transport this publisher has no
    /// endpoint for; [`Error::Credentials`] when credentials cannot be had. Everything after that
    /// is in the report, one entry per transport.
    pub async fn revoke_with<G: AsRef<str>>(
        &self,
        user: &str,
        groups: &[G],
        opts: &PublishOptions,
    ) -> Result<RevokeReport, Error> {
        let groups: Vec<String> = groups.iter().map(|g| g.as_ref().to_owned()).collect();
        validate(user, &groups)?;
        let s = &self.inner.settings;
        let start = Instant::now();
        let mut deadline = start + s.deadline;
        if let Some(until) = opts.deadline {
            let left = until.duration_since(SystemTime::now()).unwrap_or_default();
            deadline = deadline.min(start + left);
        }
        let transports = match &opts.transports {
            Some(ts) if ts.is_empty() => {
                return Err(Error::invalid(
                    "transports",
                    "the list is empty; name at least one transport",
                ));
            }
            Some(ts) => crate::config::dedup(ts.clone()),
            None => s.transports.clone(),
        };
        for t in &transports {
            let configured = match t {
                Transport::Events => s.events.is_some(),
                Transport::EventsWs => s.events_ws.is_some(),
                Transport::Graphql => s.graphql.is_some(),
                Transport::Iot => s.iot.is_some(),
            };
            if !configured {
                return Err(Error::Config(format!(
                    "{t}: this publisher has no endpoint for it"
                )));
            }
        }
        let mut out = Vec::with_capacity(transports.len());
        for t in transports {
            let (outcome, attempts) = match t {
                Transport::Events | Transport::EventsWs => (events_outcome(s.events.as_ref()), 0),
                Transport::Graphql => self.revoke_graphql(user, &groups, opts, deadline).await?,
                Transport::Iot => self.revoke_iot(user, opts, deadline).await?,
            };
            if let RevokeOutcome::Failed { error, .. } = &outcome {
                tracing::warn!(transport = %t, attempts, %error, "revoke failed");
            }
            out.push(TransportRevocation {
                transport: t,
                outcome,
                attempts,
            });
        }
        Ok(RevokeReport {
            user: user.to_owned(),
            groups,
            transports: out,
        })
    }

    /// The `revoke` mutation, IAM-signed: AppSync admits it only from the publisher principals.
    async fn revoke_graphql(
        &self,
        user: &str,
        groups: &[String],
        opts: &PublishOptions,
        deadline: Instant,
    ) -> Result<(RevokeOutcome, u32), Error> {
        let s = &self.inner.settings;
        let url = s.graphql.as_ref().expect("checked by revoke_with");
        let iam = match opts.authorizer.as_ref().or(s.graphql_authorizer.as_ref()) {
            Some(Authorizer::Iam(i)) => i,
            _ => {
                return Ok((
                    RevokeOutcome::Failed {
                        error: "graphql: revoke is an IAM-only mutation (@aws_iam, publisher principals only): this publisher's GraphQL authorizer is not IAM".into(),
                        retryable: false,
                    },
                    0,
                ));
            }
        };
        if s.region.is_none() {
            return Err(Error::Config(
                "graphql: IAM signing needs a region: set GROUPCAST_REGION or AWS_REGION, or call .region()".into(),
            ));
        }
        let auth = Resolved::Iam(iam.credentials().await?);
        let body = graphql::revoke_body(user, groups);
        let attempt = |_, _: &[usize]| {
            let (auth, body) = (&auth, &body);
            async move {
                let Reply {
                    status, body: r, ..
                } = self
                    .post(url, auth, APPSYNC_SERVICE, graphql::iam_headers(), body)
                    .await?;
                if !(200..300).contains(&status) {
                    if !matches!(status, 401 | 403 | 429 | 500..=599)
                        && let Some(errors) = graphql::errors_in(&r)
                    {
                        return Err(AttemptError::Fatal(Error::Graphql(errors)));
                    }
                    return Err(retry::classify_status(status, &String::from_utf8_lossy(&r)));
                }
                graphql::parse_revoke_response(&r, user, groups).map_err(AttemptError::Fatal)?;
                Ok(vec![Item::Done(RevokeOutcome::Invalidated)])
            }
        };
        Ok(one(retry::run_each(&s.retry, deadline, 1, attempt).await))
    }

    /// The iot-grant function's sync of `user`, through the Lambda Invoke API, signed with the
    /// publisher's IAM credentials (service `lambda`).
    async fn revoke_iot(
        &self,
        user: &str,
        opts: &PublishOptions,
        deadline: Instant,
    ) -> Result<(RevokeOutcome, u32), Error> {
        let s = &self.inner.settings;
        let Some(grant) = &s.iot_grant else {
            return Ok((
                RevokeOutcome::Failed {
                    error: "iot: no iot-grant function is configured (GROUPCAST_IOT_GRANT_FUNCTION, the outputs' lambdas.iot-grant, or .iot_grant_function()), so the user's IoT policies were not re-synced".into(),
                    retryable: false,
                },
                0,
            ));
        };
        let iam = match &opts.authorizer {
            Some(Authorizer::Iam(i)) => i,
            _ => s.iam.as_ref().ok_or_else(|| {
                Error::Config(
                    "iot: invoking the iot-grant function needs IAM credentials (builder .credentials, or the default AWS chain via Publisher::from_env)".into(),
                )
            })?,
        };
        if s.region.is_none() {
            return Err(Error::Config(
                "iot: IAM signing needs a region: set GROUPCAST_REGION or AWS_REGION, or call .region()".into(),
            ));
        }
        let auth = Resolved::Iam(iam.credentials().await?);
        let body = serde_json::to_vec(&serde_json::json!({"sync": {"user": user}}))
            .expect("JSON serializes");
        let attempt = |_, _: &[usize]| {
            let (auth, body) = (&auth, &body);
            async move {
                let mut headers = http::HeaderMap::new();
                headers.insert(
                    "content-type",
                    http::HeaderValue::from_static("application/json"),
                );
                let Reply {
                    status,
                    headers,
                    body: r,
                } = self
                    .post(&grant.url, auth, LAMBDA_SERVICE, headers, body)
                    .await?;
                if !(200..300).contains(&status) {
                    return Err(retry::classify_status(status, &String::from_utf8_lossy(&r)));
                }
                // A function that failed still answers 200, naming the failure in this header
                // (API_Invoke.html, X-Amz-Function-Error): its sync did not happen.
                if let Some(kind) = headers.get("x-amz-function-error") {
                    return Err(AttemptError::Fatal(Error::Rejected {
                        status,
                        message: format!(
                            "the iot-grant function {} failed ({}): {}",
                            grant.function,
                            kind.to_str().unwrap_or("?"),
                            retry::snippet(&String::from_utf8_lossy(&r))
                        ),
                    }));
                }
                let response: serde_json::Value = serde_json::from_slice(&r).map_err(|e| {
                    AttemptError::Fatal(Error::Protocol(format!(
                        "the iot-grant function's answer is not JSON: {e}"
                    )))
                })?;
                Ok(vec![Item::Done(RevokeOutcome::Synced { response })])
            }
        };
        Ok(one(retry::run_each(&s.retry, deadline, 1, attempt).await))
    }
}

/// The outcome of a one-item [`retry::run_each`].
fn one(mut results: Vec<retry::ItemResult<RevokeOutcome>>) -> (RevokeOutcome, u32) {
    match results.pop() {
        Some((Ok(outcome), attempts)) => (outcome, attempts),
        Some((Err(f), attempts)) => (
            RevokeOutcome::Failed {
                error: f.error,
                retryable: f.retryable,
            },
            attempts,
        ),
        None => (
            RevokeOutcome::Failed {
                error: "no result was recorded".into(),
                retryable: true,
            },
            0,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_or_over_long_user_and_an_empty_or_bad_group_list_are_refused_by_field() {
        let g = vec!["team-a".to_owned()];
        for user in ["", "   ", &"u".repeat(257)] {
            let e = validate(user, &g).unwrap_err().to_string();
            assert!(e.starts_with("invalid user:"), "{e}");
        }
        assert!(validate(&"u".repeat(256), &g).is_ok());
        let e = validate("u", &[]).unwrap_err().to_string();
        assert!(e.starts_with("invalid groups:"), "{e}");
        let e = validate("u", &["a".to_owned(), String::new()])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("invalid groups[1]:"), "{e}");
        let e = validate("u", &["g".repeat(257)]).unwrap_err().to_string();
        assert!(e.starts_with("invalid groups[0]:"), "{e}");
    }

    #[test]
    fn only_invalidated_synced_and_expires_count_as_done_so_events_without_epochs_makes_a_report_incomplete()
     {
        let report = |outcome| RevokeReport {
            user: "u".into(),
            groups: vec!["g".into()],
            transports: vec![TransportRevocation {
                transport: Transport::Graphql,
                outcome,
                attempts: 1,
            }],
        };
        assert!(report(RevokeOutcome::Invalidated).is_complete());
        assert!(
            report(RevokeOutcome::Synced {
                response: serde_json::Value::Null
            })
            .is_complete()
        );
        assert!(
            report(RevokeOutcome::Expires {
                within_seconds: 600,
                bound: events_epoch_bound("live", 300)
            })
            .is_complete()
        );
        let events = report(RevokeOutcome::NotSupported {
            bound: EVENTS_BOUND.into(),
        });
        assert!(!events.is_complete());
        assert_eq!(
            events.failures().count(),
            0,
            "not supported is not a failure"
        );
        let failed = report(RevokeOutcome::Failed {
            error: "x".into(),
            retryable: true,
        });
        assert!(!failed.is_complete());
        assert_eq!(failed.failures().count(), 1);
    }

    #[test]
    fn the_events_report_says_nothing_was_sent_and_states_each_bound_with_its_time() {
        // What the caller must know (docs/isolation.md's Events row): nothing was done, how long an
        // open subscription lives, and how long new subscriptions stay possible in each mode.
        for needle in [
            "nothing was sent",
            "24 hours",
            "groups_source = \"user-pool\"",
            "result_ttl_seconds, at most 3600 s, default 300 s",
            "token expires (Cognito: 1 hour by default, at most 1 day)",
        ] {
            assert!(EVENTS_BOUND.contains(needle), "{needle}");
        }
    }

    #[test]
    fn the_epoch_bound_is_two_epochs_and_names_its_conditions() {
        let b = events_epoch_bound("live", 300);
        for needle in [
            "Namespace live",
            "epoch_seconds = 300",
            "nothing was sent",
            "within 600 s",
            "result_ttl_seconds",
            "groups_source = \"user-pool\"",
            "token's remaining life",
        ] {
            assert!(b.contains(needle), "{needle}: {b}");
        }
    }

    #[test]
    fn outcomes_serialize_with_a_status_tag() {
        let v = serde_json::to_value(RevokeOutcome::Expires {
            within_seconds: 4,
            bound: "b".into(),
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"status": "expires", "within_seconds": 4, "bound": "b"})
        );
        let v = serde_json::to_value(RevokeOutcome::NotSupported { bound: "b".into() }).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"status": "not_supported", "bound": "b"})
        );
        let v = serde_json::to_value(RevokeOutcome::Invalidated).unwrap();
        assert_eq!(v, serde_json::json!({"status": "invalidated"}));
    }
}
