//! The IoT control-plane calls groupcast makes, answered from the stack's attachment state
//! ([`super::state`], `iot-attachments.json`), so `provisioner iot grant` and the iot-grant
//! function work against the local stack with `AWS_ENDPOINT_URL` pointing at its AWS port.
//!
//! Exactly these operations, in the REST-JSON shapes aws-sdk-iot sends and reads
//! (https://docs.aws.amazon.com/iot/latest/apireference/API_Operations_AWS_IoT.html):
//! - `AttachPolicy` `PUT /target-policies/{policyName}` `{"target"}` and `DetachPolicy`
//!   `POST /target-policies/{policyName}` `{"target"}` (groupcast-auth `grant.rs`);
//! - `ListAttachedPolicies` `POST /attached-policies/{target}` → `{"policies":[{policyName,
//!   policyArn}]}` (one page: a target holds at most 10 policies);
//! - `GetPolicy` `GET /policies/{policyName}` and `ListTagsForResource` `GET /tags?resourceArn=`:
//!   the rendered policies, each tagged `groupcast:project={project}` as `provisioner apply`
//!   tags them, so the grant recognises them as this project's;
//! - `DescribeThing` `GET /things/{name}`, `CreateThing` `POST /things/{name}`, `UpdateThing`
//!   `PATCH /things/{name}`: the user → identity mapping iot-grant records (`registry.rs`).
//!
//! Errors are `{"message"}` with `x-amzn-ErrorType` (ResourceNotFoundException,
//! InvalidRequestException, LimitExceededException, UnauthorizedException), which the SDK maps to
//! its error codes. Callers must sign with SigV4 (checked by `stack.auth.authenticate`, AWS_IAM);
//! an identity-pool credential (an end user) is refused: only the stack's own IAM principals
//! administer IoT.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::state;
use crate::Stack;
use crate::auth::{AuthRequest, Identity};
use crate::aws::{AwsRequest, AwsResponse};
use crate::log::{Decision, Outcome};
use crate::system::AuthMode;

/// IoT allows at most 10 policies attached to one Cognito identity
/// (https://docs.aws.amazon.com/general/latest/gr/iot-core.html, "Maximum number of policies
/// that can be attached to a certificate or Amazon Cognito identity").
pub const MAX_POLICIES_PER_TARGET: usize = 10;

/// The tag that marks a policy as the project's (groupcast-auth `grant::PROJECT_TAG`).
pub const PROJECT_TAG: &str = "groupcast:project";

/// Whether `req` is one of the IoT control-plane calls this module answers.
pub fn is_iot_control(req: &AwsRequest) -> bool {
    let p = req.path.as_str();
    let path_ok = p.starts_with("/target-policies/")
        || p.starts_with("/attached-policies/")
        || p.starts_with("/policies/")
        || p == "/tags"
        || p.starts_with("/things/");
    // The AWS port serves several services; a SigV4 credential scope names the service.
    let scope_ok = req
        .headers
        .get("authorization")
        .is_none_or(|a| a.contains("/iot/aws4_request"));
    path_ok && scope_ok
}

/// Answers `req` if it is an IoT control-plane call; `None` lets the AWS port try other services.
pub async fn handle(stack: &Stack, req: &AwsRequest) -> Option<AwsResponse> {
    if !is_iot_control(req) {
        return None;
    }
    let path = if req.query.is_empty() {
        req.path.clone()
    } else {
        format!("{}?{}", req.path, req.query)
    };
    let auth = stack
        .auth
        .authenticate(
            &AuthRequest {
                headers: &req.headers,
                method: &req.method,
                path: &path,
                body: &req.body,
                source_ip: std::net::IpAddr::from([127, 0, 0, 1]),
                channel: None,
                operation: None,
            },
            &[AuthMode::Iam],
        )
        .await;
    let caller = match auth {
        Ok(a) => a,
        Err(e) => {
            log(stack, "control", &req.path, None, Err(&e.message));
            return Some(error(403, "UnauthorizedException", &e.message));
        }
    };
    if let Identity::Iam(i) = &caller.identity
        && i.cognito_identity_id.is_some()
    {
        let why = "a Cognito identity-pool credential may not call the IoT control plane";
        log(
            stack,
            "control",
            &req.path,
            Some(&caller.principal),
            Err(why),
        );
        return Some(error(403, "UnauthorizedException", why));
    }
    Some(answer(stack, req, &caller.principal))
}

fn log(stack: &Stack, action: &str, target: &str, who: Option<&str>, verdict: Result<(), &str>) {
    stack.log.decision(Decision {
        transport: "iot",
        action,
        target,
        principal: who,
        outcome: if verdict.is_ok() {
            Outcome::Admitted
        } else {
            Outcome::Refused
        },
        reason: verdict.err(),
    });
}

fn response(status: u16, body: Value) -> AwsResponse {
    AwsResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

fn error(status: u16, kind: &str, message: &str) -> AwsResponse {
    let mut r = response(status, json!({ "message": message }));
    r.headers.push(("x-amzn-errortype".into(), kind.into()));
    r
}

fn decode(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| decode(v)).flatten()
    })
}

fn policy_arn(stack: &Stack, name: &str) -> String {
    format!(
        "arn:aws:iot:{}:{}:policy/{name}",
        stack.system.region, stack.system.account_id
    )
}

fn thing_arn(stack: &Stack, name: &str) -> String {
    format!(
        "arn:aws:iot:{}:{}:thing/{name}",
        stack.system.region, stack.system.account_id
    )
}

fn target_of(body: &[u8]) -> Result<String, AwsResponse> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        error(
            400,
            "InvalidRequestException",
            &format!("body: must be JSON: {e}"),
        )
    })?;
    v.get("target")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| error(400, "InvalidRequestException", "target: is required"))
}

/// The answer to an IoT control-plane call from an authorized `principal` (no authentication
/// here: [`handle`] does it).
pub fn answer(stack: &Stack, req: &AwsRequest, principal: &str) -> AwsResponse {
    let st = state::of(&stack.state_dir);
    let policies = stack
        .system
        .iot
        .as_ref()
        .map(|i| i.policies.clone())
        .unwrap_or_default();
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let persist_failed = |e: std::io::Error| {
        error(
            500,
            "InternalFailureException",
            &format!("{}: {e}", state::ATTACHMENTS_FILE),
        )
    };
    match (req.method.as_str(), segments.as_slice()) {
        (m @ ("PUT" | "POST"), ["target-policies", name]) => {
            let Some(name) = decode(name) else {
                return error(400, "InvalidRequestException", "policyName: must be UTF-8");
            };
            let target = match target_of(&req.body) {
                Ok(t) => t,
                Err(r) => return r,
            };
            let attach = m == "PUT";
            let action = if attach {
                "attach-policy"
            } else {
                "detach-policy"
            };
            let what = format!("{name} → {target}");
            if !policies.contains_key(&name) {
                let why = format!("policy {name:?} does not exist");
                log(stack, action, &what, Some(principal), Err(&why));
                return error(404, "ResourceNotFoundException", &why);
            }
            let result = st.update(|a| {
                let set = a.targets.entry(target.clone()).or_default();
                if attach {
                    if !set.contains(&name) && set.len() >= MAX_POLICIES_PER_TARGET {
                        return Err(format!(
                            "target {target:?} already has {MAX_POLICIES_PER_TARGET} policies attached"
                        ));
                    }
                    set.insert(name.clone());
                } else {
                    set.remove(&name);
                    if set.is_empty() {
                        a.targets.remove(&target);
                    }
                }
                Ok(())
            });
            match result {
                Ok(Ok(())) => {
                    log(stack, action, &what, Some(principal), Ok(()));
                    response(200, json!({}))
                }
                Ok(Err(why)) => {
                    log(stack, action, &what, Some(principal), Err(&why));
                    error(410, "LimitExceededException", &why)
                }
                Err(e) => persist_failed(e),
            }
        }
        ("POST", ["attached-policies", target]) => {
            let Some(target) = decode(target) else {
                return error(400, "InvalidRequestException", "target: must be UTF-8");
            };
            let list: Vec<Value> = st
                .attached(&target)
                .iter()
                .map(|n| json!({ "policyName": n, "policyArn": policy_arn(stack, n) }))
                .collect();
            response(200, json!({ "policies": list }))
        }
        ("GET", ["policies", name]) => {
            let Some(name) = decode(name) else {
                return error(400, "InvalidRequestException", "policyName: must be UTF-8");
            };
            match policies.get(&name) {
                Some(doc) => response(
                    200,
                    json!({
                        "policyName": name,
                        "policyArn": policy_arn(stack, &name),
                        "policyDocument": doc,
                        "defaultVersionId": "1",
                    }),
                ),
                None => error(
                    404,
                    "ResourceNotFoundException",
                    &format!("policy {name:?} does not exist"),
                ),
            }
        }
        ("GET", ["tags"]) => {
            let arn = query_param(&req.query, "resourceArn").unwrap_or_default();
            let prefix = policy_arn(stack, "");
            match arn
                .strip_prefix(&prefix)
                .filter(|n| policies.contains_key(*n))
            {
                Some(_) => response(
                    200,
                    json!({ "tags": [{ "Key": PROJECT_TAG, "Value": stack.system.project }] }),
                ),
                None => error(
                    404,
                    "ResourceNotFoundException",
                    &format!("resourceArn {arn:?}: no such policy"),
                ),
            }
        }
        (m, ["things", name]) => {
            let Some(name) = decode(name) else {
                return error(400, "InvalidRequestException", "thingName: must be UTF-8");
            };
            thing(stack, &st, m, &name, &req.body, principal)
        }
        (m, _) => error(
            404,
            "ResourceNotFoundException",
            &format!(
                "{m} {}: not an IoT operation the local stack serves",
                req.path
            ),
        ),
    }
}

fn thing(
    stack: &Stack,
    st: &state::IotState,
    method: &str,
    name: &str,
    body: &[u8],
    principal: &str,
) -> AwsResponse {
    let arn = thing_arn(stack, name);
    let existing = st.snapshot().things.get(name).cloned();
    match method {
        "GET" => match existing {
            Some(attributes) => response(
                200,
                json!({
                    "thingName": name,
                    "thingArn": arn,
                    "thingId": name,
                    "attributes": attributes,
                    "version": 1,
                }),
            ),
            None => error(
                404,
                "ResourceNotFoundException",
                &format!("thing {name:?} does not exist"),
            ),
        },
        "POST" | "PATCH" => {
            let v: Value = match serde_json::from_slice(if body.is_empty() { b"{}" } else { body })
            {
                Ok(v) => v,
                Err(e) => {
                    return error(
                        400,
                        "InvalidRequestException",
                        &format!("body: must be JSON: {e}"),
                    );
                }
            };
            if method == "PATCH" && existing.is_none() {
                return error(
                    404,
                    "ResourceNotFoundException",
                    &format!("thing {name:?} does not exist"),
                );
            }
            let payload = v.get("attributePayload");
            let attrs: BTreeMap<String, String> = payload
                .and_then(|p| p.get("attributes"))
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            let merge = payload
                .and_then(|p| p.get("merge"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let result = st.update(|a| {
                let entry = a.things.entry(name.to_owned()).or_default();
                if !merge {
                    entry.clear();
                }
                for (k, v) in attrs {
                    // An empty value removes the attribute (UpdateThing's AttributePayload).
                    if v.is_empty() {
                        entry.remove(&k);
                    } else {
                        entry.insert(k, v);
                    }
                }
            });
            if let Err(e) = result {
                return error(500, "InternalFailureException", &e.to_string());
            }
            log(
                stack,
                if method == "POST" {
                    "create-thing"
                } else {
                    "update-thing"
                },
                name,
                Some(principal),
                Ok(()),
            );
            if method == "POST" {
                response(
                    200,
                    json!({ "thingName": name, "thingArn": arn, "thingId": name }),
                )
            } else {
                response(200, json!({}))
            }
        }
        m => error(
            404,
            "ResourceNotFoundException",
            &format!("{m} /things/{name}: not served"),
        ),
    }
}
