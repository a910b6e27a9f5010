//! The emulated AWS APIs on the stack's `aws` port: the Cognito user pool the local token issuer
//! stands in for (JWKS, the Admin* group calls, answered from the user directory), Cognito
//! identity (GetId, GetCredentialsForIdentity, from the local identity pool), the IoT control
//! plane ([`crate::iot::control`], tried first), and Lambda `Invoke` for the functions the stack
//! runs ([`register_function`]: e.g. iot-grant, which `Publisher::revoke` invokes). Anything else
//! gets AWS's JSON error shape.
//!
//! Point an SDK at it with `AWS_ENDPOINT_URL=https://127.0.0.1:4514` (or per service,
//! `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER`, `AWS_ENDPOINT_URL_COGNITO_IDENTITY`, …).
//! The Admin* calls are not SigV4-checked here: the port listens on loopback only and the
//! directory is also writable through `provisioner dev token`.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::Stack;
use crate::auth::{AuthRequest, Identity};
use crate::identity::{Directory, identity_id, user_sub};
use crate::lambda_rt::{InvokeError, LambdaFunction};
use crate::log::{Decision, Outcome};

/// One HTTP request to the AWS port, body read. Header names are lower-case.
#[derive(Debug, Clone)]
pub struct AwsRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// The answer to an [`AwsRequest`].
#[derive(Debug, Clone)]
pub struct AwsResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The largest request body read (the AWS JSON APIs' requests are small).
const MAX_BODY: usize = 1024 * 1024;

/// AdminListGroupsForUser returns at most 60 groups per page, and 60 is the largest `Limit`
/// (https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_AdminListGroupsForUser.html).
const GROUPS_PAGE_MAX: usize = 60;

/// Cognito identity credentials live one hour
/// (https://docs.aws.amazon.com/cognitoidentity/latest/APIReference/API_GetCredentialsForIdentity.html).
const CREDENTIALS_LIFETIME: Duration = Duration::from_secs(3600);

impl AwsResponse {
    /// A JSON 1.1 answer (`application/x-amz-json-1.1`, the Cognito protocols' content type).
    pub fn json(status: u16, body: &Value) -> AwsResponse {
        AwsResponse {
            status,
            headers: vec![("content-type".into(), "application/x-amz-json-1.1".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// AWS's JSON error shape: `{"__type": kind, "message": …}` with `x-amzn-errortype`
    /// (https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html#operation-error-serialization).
    pub fn error(status: u16, kind: &str, message: &str) -> AwsResponse {
        let mut r = AwsResponse::json(status, &json!({"__type": kind, "message": message}));
        r.headers.push(("x-amzn-errortype".into(), kind.into()));
        r
    }
}

/// Answers one request: the IoT control plane first, then the JWKS, Cognito and Cognito identity.
pub async fn handle(stack: &Stack, req: &AwsRequest) -> AwsResponse {
    if let Some(r) = crate::iot::control::handle(stack, req).await {
        return r;
    }
    if req.method == "GET" && req.path.ends_with("/.well-known/jwks.json") {
        return jwks(stack, req);
    }
    if let Some(name) = invoke_path(&req.path) {
        return invoke(stack, req, &name).await;
    }
    if req.method == "POST" && is_get_caller_identity(&req.body) {
        return get_caller_identity(stack, req).await;
    }
    let target = req.headers.get("x-amz-target").map(String::as_str);
    let body: Value = if req.body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return AwsResponse::error(
                    400,
                    "SerializationException",
                    "the request body is not a JSON object",
                );
            }
        }
    };
    match target.and_then(|t| t.split_once('.')) {
        Some(("AWSCognitoIdentityProviderService", op)) if req.method == "POST" => {
            cognito_idp(stack, op, &body)
        }
        Some(("AWSCognitoIdentityService", op)) if req.method == "POST" => {
            cognito_identity(stack, op, &body).await
        }
        _ => AwsResponse::error(
            400,
            "UnknownOperationException",
            &format!(
                "{} {}: not an operation the local stack serves (X-Amz-Target {:?})",
                req.method,
                req.path,
                target.unwrap_or("")
            ),
        ),
    }
}

/// The Lambda functions each stack runs, by function name, keyed by the stack's state dir (as
/// `iot::state` keeps its attachments): the stack is built by its owner with a fixed set of
/// fields, and functions are started after it exists (they need the AWS port's URL).
type Functions = HashMap<String, Arc<LambdaFunction>>;

fn functions(stack: &Stack) -> Arc<Mutex<Functions>> {
    functions_of(&stack.state_dir)
}

fn functions_of(state_dir: &std::path::Path) -> Arc<Mutex<Functions>> {
    static ALL: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<Functions>>>>> = OnceLock::new();
    let mut all = ALL
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    all.entry(state_dir.to_owned()).or_default().clone()
}

/// Removes the function registered as `name` for the stack keeping its state in `state_dir`
/// (its process ends when the last handle to it is dropped).
pub fn unregister_function(state_dir: &std::path::Path, name: &str) {
    functions_of(state_dir)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(name);
}

/// Makes `function` answer Lambda `Invoke` on the AWS port as `name` (its function name; callers
/// may also name it by its unqualified ARN in the stack's region and account). Replaces any
/// function registered under that name.
pub fn register_function(stack: &Stack, name: &str, function: Arc<LambdaFunction>) {
    functions(stack)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name.to_owned(), function);
}

/// Whether a Query-protocol body asks STS for `GetCallerIdentity` (`Action=GetCallerIdentity&…`).
fn is_get_caller_identity(body: &[u8]) -> bool {
    std::str::from_utf8(body)
        .map(|b| b.split('&').any(|kv| kv == "Action=GetCallerIdentity"))
        .unwrap_or(false)
}

/// STS `GetCallerIdentity`, which `provisioner` calls before any change to check the account
/// (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html): the caller
/// whose SigV4 signature (signing name `sts`) verifies, in the Query protocol's XML.
async fn get_caller_identity(stack: &Stack, req: &AwsRequest) -> AwsResponse {
    let caller = stack
        .auth
        .authenticate_service(
            &AuthRequest {
                headers: &req.headers,
                method: &req.method,
                path: &req.path,
                body: &req.body,
                source_ip: std::net::IpAddr::from([127, 0, 0, 1]),
                channel: None,
                operation: None,
            },
            "sts",
        )
        .await;
    let xml = |status: u16, body: String| AwsResponse {
        status,
        headers: vec![("content-type".to_owned(), "text/xml".to_owned())],
        body: body.into_bytes(),
    };
    let request_id = uuid::Uuid::new_v4();
    match caller {
        Ok(c) => {
            stack.log.decision(crate::log::Decision {
                transport: "aws",
                action: "sts:GetCallerIdentity",
                target: &c.principal,
                principal: Some(&c.principal),
                outcome: crate::log::Outcome::Admitted,
                reason: None,
            });
            let user_id = c.principal.rsplit('/').next().unwrap_or("local");
            xml(
                200,
                format!(
                    "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
                     <GetCallerIdentityResult><Arn>{}</Arn><UserId>AROALOCAL:{}</UserId>\
                     <Account>{}</Account></GetCallerIdentityResult><ResponseMetadata>\
                     <RequestId>{request_id}</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
                    xml_escape(&c.principal),
                    xml_escape(user_id),
                    xml_escape(&stack.system.account_id)
                ),
            )
        }
        Err(e) => {
            stack.log.decision(crate::log::Decision {
                transport: "aws",
                action: "sts:GetCallerIdentity",
                target: "-",
                principal: None,
                outcome: crate::log::Outcome::Refused,
                reason: Some(&e.message),
            });
            xml(
                403,
                format!(
                    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
                     <Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>{}</Message>\
                     </Error><RequestId>{request_id}</RequestId></ErrorResponse>",
                    xml_escape(&e.message)
                ),
            )
        }
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `POST /2015-03-31/functions/{FunctionName}/invocations` → the percent-decoded function name
/// (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html).
fn invoke_path(path: &str) -> Option<String> {
    let name = path
        .strip_prefix("/2015-03-31/functions/")?
        .strip_suffix("/invocations")?;
    percent_encoding::percent_decode_str(name)
        .decode_utf8()
        .ok()
        .map(|n| n.into_owned())
        .filter(|n| !n.is_empty() && !n.contains('/'))
}

fn invoke_log(stack: &Stack, target: &str, who: Option<&str>, verdict: Result<(), &str>) {
    stack.log.decision(Decision {
        transport: "aws",
        action: "lambda:InvokeFunction",
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

/// Lambda `Invoke` (RequestResponse) of a registered function, as AWS answers it
/// (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html): 200 with the function's JSON
/// answer; a function error is still 200, with `X-Amz-Function-Error: Unhandled` and the error
/// `{errorType, errorMessage}` as the body. The caller must be SigV4-signed by a configured
/// publisher principal: the rendered publisher policy is the one allowing `lambda:InvokeFunction`
/// (templates/iam/publisher-policy.json.tera, on `{project}-iot-grant` only); identity-pool
/// credentials are refused. `Event`/`DryRun` invocation types and qualifiers other than `$LATEST`
/// are not served.
async fn invoke(stack: &Stack, req: &AwsRequest, name: &str) -> AwsResponse {
    if req.method != "POST" {
        return AwsResponse::error(405, "InvalidRequestContentException", "Invoke is a POST");
    }
    let path = if req.query.is_empty() {
        req.path.clone()
    } else {
        format!("{}?{}", req.path, req.query)
    };
    // Lambda's SigV4 signing name is `lambda` (groupcast::revoke::LAMBDA_SERVICE).
    let caller = stack
        .auth
        .authenticate_service(
            &AuthRequest {
                headers: &req.headers,
                method: &req.method,
                path: &path,
                body: &req.body,
                source_ip: std::net::IpAddr::from([127, 0, 0, 1]),
                channel: None,
                operation: None,
            },
            "lambda",
        )
        .await;
    let caller = match caller {
        Ok(c) => c,
        Err(e) => {
            invoke_log(stack, name, None, Err(&e.message));
            return AwsResponse::error(403, "AccessDeniedException", &e.message);
        }
    };
    let identity_pool =
        matches!(&caller.identity, Identity::Iam(i) if i.cognito_identity_id.is_some());
    if identity_pool || !crate::iot::is_publisher(stack, &caller.principal) {
        let why = "lambda:InvokeFunction: only the configured publisher principals may invoke the stack's functions";
        invoke_log(stack, name, Some(&caller.principal), Err(why));
        return AwsResponse::error(403, "AccessDeniedException", why);
    }
    let arn_prefix = format!(
        "arn:aws:lambda:{}:{}:function:",
        stack.system.region, stack.system.account_id
    );
    let short = name.strip_prefix(&arn_prefix).unwrap_or(name);
    let qualifier = req
        .query
        .split('&')
        .find_map(|kv| kv.strip_prefix("Qualifier="))
        .unwrap_or("");
    let kind = req
        .headers
        .get("x-amz-invocation-type")
        .map_or("RequestResponse", String::as_str);
    if short.contains(':')
        || !(qualifier.is_empty() || qualifier == "%24LATEST" || qualifier == "$LATEST")
    {
        let why = "FunctionName/Qualifier: the local stack serves unqualified functions only";
        invoke_log(stack, name, Some(&caller.principal), Err(why));
        return AwsResponse::error(400, "InvalidParameterValueException", why);
    }
    if kind != "RequestResponse" {
        let why = "X-Amz-Invocation-Type: the local stack serves RequestResponse only";
        invoke_log(stack, name, Some(&caller.principal), Err(why));
        return AwsResponse::error(400, "InvalidParameterValueException", why);
    }
    let function = functions(stack)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(short)
        .cloned();
    let Some(function) = function else {
        let why = format!("Function not found: {arn_prefix}{short}");
        invoke_log(stack, name, Some(&caller.principal), Err(&why));
        return AwsResponse::error(404, "ResourceNotFoundException", &why);
    };
    let payload: Value = if req.body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(e) => {
                let why = format!("Payload: not JSON: {e}");
                invoke_log(stack, name, Some(&caller.principal), Err(&why));
                return AwsResponse::error(400, "InvalidRequestContentException", &why);
            }
        }
    };
    invoke_log(stack, name, Some(&caller.principal), Ok(()));
    let json_body = |v: &Value| {
        (
            vec![("content-type".to_owned(), "application/json".to_owned())],
            v.to_string().into_bytes(),
        )
    };
    match function.invoke(payload).await {
        Ok(v) => {
            let (headers, body) = json_body(&v);
            AwsResponse {
                status: 200,
                headers,
                body,
            }
        }
        Err(e) => {
            let error = match e {
                InvokeError::Function(v) => v,
                other => json!({"errorType": "Runtime.Unknown", "errorMessage": other.to_string()}),
            };
            let (mut headers, body) = json_body(&error);
            headers.push(("x-amz-function-error".into(), "Unhandled".into()));
            AwsResponse {
                status: 200,
                headers,
                body,
            }
        }
    }
}

fn jwks(stack: &Stack, req: &AwsRequest) -> AwsResponse {
    let pool = stack.system.identity.user_pool_id.as_deref().unwrap_or("");
    match stack.auth.issuer() {
        Some(issuer) if req.path == format!("/{pool}/.well-known/jwks.json") => {
            let mut r = AwsResponse::json(200, &issuer.jwks());
            r.headers = vec![("content-type".into(), "application/json".into())];
            r
        }
        _ => AwsResponse::error(404, "ResourceNotFoundException", "no such user pool"),
    }
}

fn string_field<'a>(body: &'a Value, field: &str) -> Result<&'a str, AwsResponse> {
    body.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            AwsResponse::error(
                400,
                "InvalidParameterException",
                &format!("{field}: required, a non-empty string"),
            )
        })
}

fn user_not_found() -> AwsResponse {
    AwsResponse::error(400, "UserNotFoundException", "User does not exist.")
}

/// The Cognito user pools calls groupcast makes, from the user directory.
fn cognito_idp(stack: &Stack, op: &str, body: &Value) -> AwsResponse {
    let run = || -> Result<Value, AwsResponse> {
        if ![
            "AdminGetUser",
            "AdminListGroupsForUser",
            "AdminAddUserToGroup",
            "AdminRemoveUserFromGroup",
        ]
        .contains(&op)
        {
            return Err(AwsResponse::error(
                400,
                "UnknownOperationException",
                &format!("AWSCognitoIdentityProviderService.{op}: not served by the local stack"),
            ));
        }
        let pool = string_field(body, "UserPoolId")?;
        if stack.system.identity.user_pool_id.as_deref() != Some(pool) {
            return Err(AwsResponse::error(
                400,
                "ResourceNotFoundException",
                &format!("User pool {pool} does not exist."),
            ));
        }
        let user = string_field(body, "Username")?;
        let directory = Directory::open(&stack.state_dir);
        let (name, entry) = directory.user(user).ok_or_else(user_not_found)?;
        match op {
            // https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_AdminGetUser.html
            "AdminGetUser" => {
                let mut attributes = vec![json!({"Name": "sub", "Value": user_sub(&name)})];
                if name.contains('@') {
                    attributes.push(json!({"Name": "email", "Value": name}));
                    attributes.push(json!({"Name": "email_verified", "Value": "true"}));
                }
                Ok(json!({
                    "Username": name,
                    "UserAttributes": attributes,
                    "UserCreateDate": 0,
                    "UserLastModifiedDate": 0,
                    "Enabled": entry.enabled,
                    "UserStatus": "CONFIRMED",
                }))
            }
            "AdminListGroupsForUser" => {
                let limit = match body.get("Limit") {
                    None | Some(Value::Null) => GROUPS_PAGE_MAX,
                    Some(v) => v
                        .as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|n| (1..=GROUPS_PAGE_MAX).contains(n))
                        .ok_or_else(|| {
                            AwsResponse::error(
                                400,
                                "InvalidParameterException",
                                "Limit: must be 1-60",
                            )
                        })?,
                };
                let start = match body.get("NextToken").and_then(Value::as_str) {
                    None => 0,
                    Some(t) => t
                        .strip_prefix("groups:")
                        .and_then(|n| n.parse::<usize>().ok())
                        .filter(|n| *n <= entry.groups.len())
                        .ok_or_else(|| {
                            AwsResponse::error(
                                400,
                                "InvalidParameterException",
                                "NextToken: not a token this API returned",
                            )
                        })?,
                };
                let page: Vec<Value> = entry
                    .groups
                    .iter()
                    .skip(start)
                    .take(limit)
                    .map(|g| {
                        json!({
                            "GroupName": g, "UserPoolId": pool,
                            "CreationDate": 0, "LastModifiedDate": 0,
                        })
                    })
                    .collect();
                let mut out = json!({ "Groups": page });
                if start + limit < entry.groups.len() {
                    out["NextToken"] = json!(format!("groups:{}", start + limit));
                }
                Ok(out)
            }
            "AdminAddUserToGroup" | "AdminRemoveUserFromGroup" => {
                let group = string_field(body, "GroupName")?;
                let result = if op == "AdminAddUserToGroup" {
                    directory.add_to_group(&name, group)
                } else {
                    directory.remove_from_group(&name, group)
                };
                result.map_err(|e| {
                    AwsResponse::error(400, "InvalidParameterException", &e.to_string())
                })?;
                Ok(json!({}))
            }
            _ => Err(AwsResponse::error(
                400,
                "UnknownOperationException",
                &format!("AWSCognitoIdentityProviderService.{op}: not served by the local stack"),
            )),
        }
    };
    match run() {
        Ok(v) => AwsResponse::json(200, &v),
        Err(r) => r,
    }
}

/// Cognito identity's GetId and GetCredentialsForIdentity, for users of the local issuer.
async fn cognito_identity(stack: &Stack, op: &str, body: &Value) -> AwsResponse {
    let not_authorized =
        || AwsResponse::error(400, "NotAuthorizedException", "Invalid login token.");
    let region = &stack.system.region;
    // The one login the pool accepts: the local user pool's provider name with its ID token
    // (https://docs.aws.amazon.com/cognitoidentity/latest/APIReference/API_GetId.html, `Logins`).
    let login = async || -> Result<String, AwsResponse> {
        let Some(issuer) = stack.auth.issuer() else {
            return Err(not_authorized());
        };
        let provider = crate::auth::provider_name(issuer.issuer_url());
        let token = body
            .get("Logins")
            .and_then(|l| l.get(&provider))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                AwsResponse::error(
                    400,
                    "NotAuthorizedException",
                    &format!("Logins: must hold {provider:?} with the user's ID token (unauthenticated identities are not supported)"),
                )
            })?;
        let verified = stack
            .auth
            .verify_local_token(token)
            .await
            .map_err(|_| not_authorized())?;
        let user = verified
            .claims
            .get("cognito:username")
            .and_then(Value::as_str)
            .ok_or_else(not_authorized)?
            .to_owned();
        Ok(identity_id(region, &user))
    };
    let result = match op {
        "GetId" => {
            let pool = crate::identity::identity_pool_id(region, &stack.system.project);
            match string_field(body, "IdentityPoolId") {
                Err(r) => Err(r),
                Ok(p) if p != pool => Err(AwsResponse::error(
                    400,
                    "ResourceNotFoundException",
                    &format!("IdentityPool '{p}' not found (the local pool is {pool})."),
                )),
                Ok(_) => login().await.map(|id| json!({ "IdentityId": id })),
            }
        }
        "GetCredentialsForIdentity" => match string_field(body, "IdentityId") {
            Err(r) => Err(r),
            Ok(asked) => match login().await {
                Err(r) => Err(r),
                Ok(id) if id != asked => Err(not_authorized()),
                Ok(id) => match stack.auth.identity_pool() {
                    None => Err(not_authorized()),
                    Some(pool) => match pool.credentials_for(&id, CREDENTIALS_LIFETIME) {
                        Err(e) => Err(AwsResponse::error(
                            400,
                            "InvalidParameterException",
                            &e.to_string(),
                        )),
                        Ok(c) => Ok(json!({
                            "IdentityId": id,
                            "Credentials": {
                                "AccessKeyId": c.access_key_id,
                                "SecretKey": c.secret_access_key,
                                "SessionToken": c.session_token,
                                "Expiration": c.expiration,
                            }
                        })),
                    },
                },
            },
        },
        _ => Err(AwsResponse::error(
            400,
            "UnknownOperationException",
            &format!("AWSCognitoIdentityService.{op}: not served by the local stack"),
        )),
    };
    match result {
        Ok(v) => AwsResponse::json(200, &v),
        Err(r) => r,
    }
}

async fn respond(
    stack: Arc<Stack>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned())))
        .collect();
    let answer = match Limited::new(body, MAX_BODY).collect().await {
        Err(_) => AwsResponse::error(413, "SerializationException", "request body too large"),
        Ok(b) => {
            let req = AwsRequest {
                method: parts.method.as_str().to_owned(),
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().unwrap_or("").to_owned(),
                headers,
                body: b.to_bytes().to_vec(),
            };
            handle(&stack, &req).await
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() = hyper::StatusCode::from_u16(answer.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in answer.headers {
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            hyper::header::HeaderValue::from_str(&v),
        ) {
            response.headers_mut().append(k, v);
        }
    }
    response.headers_mut().insert(
        "x-amzn-requestid",
        hyper::header::HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
            .unwrap_or(hyper::header::HeaderValue::from_static("local")),
    );
    Ok(response)
}

async fn serve_connection<S>(stream: S, stack: Arc<Stack>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| respond(stack.clone(), req));
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(error = %e, "AWS port connection ended");
    }
}

/// Serves the AWS APIs on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, stack: Arc<Stack>) -> std::io::Result<()> {
    let tls = stack.tls.clone();
    serve_with(listener, stack, tls).await
}

/// Serves the same AWS APIs over plain HTTP on `listener`, whatever `stack.tls` says: the
/// endpoint the stack's own Lambda functions call ([`crate::functions`]), on a loopback port, so
/// they need no trust in the stack's CA (as the JWKS they fetch, [`crate::lambda_rt::JsonServer`]).
pub async fn serve_plain(listener: TcpListener, stack: Arc<Stack>) -> std::io::Result<()> {
    serve_with(listener, stack, None).await
}

async fn serve_with(
    listener: TcpListener,
    stack: Arc<Stack>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<()> {
    loop {
        let (socket, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // One failed accept (e.g. too many open files) must not end the port.
                tracing::warn!(error = %e, "AWS port accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let stack = stack.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(tls) => match tls.accept(socket).await {
                    Ok(stream) => serve_connection(stream, stack).await,
                    Err(e) => tracing::debug!(error = %e, "AWS port TLS handshake failed"),
                },
                None => serve_connection(socket, stack).await,
            }
        });
    }
}
