//! The [`AppSync`] and [`Iot`] traits over the AWS SDK for Rust: request building, pagination,
//! "not found" as `None`, and conversion between SDK types and the provisioner's specs.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use aws_sdk_appsync as appsync;
use aws_sdk_appsync::error::{DisplayErrorContext, ProvideErrorMetadata as _, SdkError};
use aws_sdk_appsync::types as at;
use aws_sdk_iot as iot;
use aws_smithy_runtime_api::http::Response as HttpResponse;

use super::{
    ApiKey, AppSync, Authorizer, AuthorizerSpec, CognitoSpec, EventApi, EventConfigSpec,
    GraphqlApi, GraphqlApiSpec, Iot, LambdaSpec, LogConfigSpec, Namespace, NamespaceSpec, OidcSpec,
    Policy, PolicyVersion, ProviderSpec, ResolverSpec, Result,
};

/// How long `put_schema` waits for AppSync to finish schema creation.
const SCHEMA_TIMEOUT: Duration = Duration::from_secs(300);

/// An SDK error as a user reads it, on one line: `Op: Code: message` when the service said what
/// went wrong, else the cause in words (cannot connect, no credentials, the endpoint does not
/// implement the call) with a hint. The full chain is logged with `-vv`.
pub(super) fn sdk_err<E>(op: &str, e: SdkError<E, HttpResponse>) -> anyhow::Error
where
    E: aws_sdk_appsync::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let detail = DisplayErrorContext(&e).to_string();
    tracing::debug!(operation = op, error = %detail, "AWS call failed");
    if let Some(code) = e.code() {
        let message = e.message().unwrap_or("(no message)");
        let hint = if code.contains("AccessDenied") || code == "UnauthorizedOperation" {
            " (hint: the credentials lack a permission; iam/deployer-policy.json in `provisioner \
             render`'s output lists every action the provisioner calls)"
        } else {
            ""
        };
        return anyhow!("{op}: {code}: {message}{hint}");
    }
    if detail.contains("credentials") && !matches!(e, SdkError::ServiceError(_)) {
        return anyhow!(
            "{op}: no AWS credentials found (hint: set AWS_PROFILE or --profile, or \
             AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; -vv shows the details)"
        );
    }
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => anyhow!(
            "{op}: cannot connect to the AWS endpoint (hint: check the network, the region and \
             --endpoint-url; -vv shows the details)"
        ),
        SdkError::ServiceError(ctx) if matches!(ctx.raw().status().as_u16(), 404 | 405 | 501) => {
            anyhow!(
                "{op}: the endpoint does not implement this call (HTTP {}; a local peer without \
                 this operation?)",
                ctx.raw().status().as_u16()
            )
        }
        SdkError::ResponseError(ctx) if matches!(ctx.raw().status().as_u16(), 404 | 405 | 501) => {
            anyhow!(
                "{op}: the endpoint does not implement this call (HTTP {}; a local peer without \
                 this operation?)",
                ctx.raw().status().as_u16()
            )
        }
        _ => anyhow!("{op}: {}", first_line(&detail)),
    }
}

/// The first line of an error text, without terminal colour codes (log files stay readable).
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip a CSI sequence: ESC [ ... final byte in @..~.
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) && d != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// AppSync through `aws-sdk-appsync`.
#[derive(Debug, Clone)]
pub(crate) struct SdkAppSync(appsync::Client);

impl SdkAppSync {
    pub(crate) fn new(config: &aws_config::SdkConfig) -> Self {
        SdkAppSync(appsync::Client::from_conf(
            appsync::config::Builder::from(config)
                .interceptor(super::calls::CallLog)
                .build(),
        ))
    }
}

fn mode(s: &str) -> at::AuthMode {
    at::AuthMode::builder()
        .auth_type(at::AuthenticationType::from(s))
        .build()
        .expect("auth_type is set")
}

fn modes(list: &[String]) -> Vec<at::AuthMode> {
    list.iter().map(|m| mode(m)).collect()
}

fn mode_names(list: &[at::AuthMode]) -> Vec<String> {
    list.iter()
        .map(|m| m.auth_type().as_str().to_owned())
        .collect()
}

fn sorted(tags: &BTreeMap<String, String>) -> HashMap<String, String> {
    tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn btree(tags: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    tags.map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn oidc_to_sdk(o: &OidcSpec) -> at::OpenIdConnectConfig {
    at::OpenIdConnectConfig::builder()
        .issuer(&o.issuer)
        .set_client_id(o.client_id.clone())
        .iat_ttl(o.iat_ttl)
        .auth_ttl(o.auth_ttl)
        .build()
        .expect("issuer is set")
}

fn lambda_to_sdk(l: &LambdaSpec) -> at::LambdaAuthorizerConfig {
    at::LambdaAuthorizerConfig::builder()
        .authorizer_uri(&l.authorizer_uri)
        .authorizer_result_ttl_in_seconds(l.ttl_seconds)
        .set_identity_validation_expression(l.identity_validation_expression.clone())
        .build()
        .expect("uri is set")
}

fn oidc_from_sdk(o: &at::OpenIdConnectConfig) -> OidcSpec {
    OidcSpec {
        issuer: o.issuer().to_owned(),
        client_id: o.client_id().map(str::to_owned),
        iat_ttl: o.iat_ttl(),
        auth_ttl: o.auth_ttl(),
    }
}

fn lambda_from_sdk(l: &at::LambdaAuthorizerConfig) -> LambdaSpec {
    LambdaSpec {
        authorizer_uri: l.authorizer_uri().to_owned(),
        ttl_seconds: l.authorizer_result_ttl_in_seconds(),
        identity_validation_expression: l.identity_validation_expression().map(str::to_owned),
    }
}

fn event_config_to_sdk(c: &EventConfigSpec) -> at::EventConfig {
    let providers = c
        .auth_providers
        .iter()
        .map(|p| {
            at::AuthProvider::builder()
                .auth_type(at::AuthenticationType::from(p.auth_type.as_str()))
                .set_cognito_config(p.cognito.as_ref().map(|c| {
                    at::CognitoConfig::builder()
                        .user_pool_id(&c.user_pool_id)
                        .aws_region(&c.aws_region)
                        .set_app_id_client_regex(c.app_id_client_regex.clone())
                        .build()
                        .expect("required fields are set")
                }))
                .set_open_id_connect_config(p.oidc.as_ref().map(oidc_to_sdk))
                .set_lambda_authorizer_config(p.lambda.as_ref().map(lambda_to_sdk))
                .build()
                .expect("auth_type is set")
        })
        .collect();
    at::EventConfig::builder()
        .set_auth_providers(Some(providers))
        .set_connection_auth_modes(Some(modes(&c.connection_auth_modes)))
        .set_default_publish_auth_modes(Some(modes(&c.default_publish_auth_modes)))
        .set_default_subscribe_auth_modes(Some(modes(&c.default_subscribe_auth_modes)))
        .set_log_config(c.log_config.as_ref().map(|l| {
            at::EventLogConfig::builder()
                .log_level(at::EventLogLevel::from(l.level.as_str()))
                .cloud_watch_logs_role_arn(&l.role_arn)
                .build()
                .expect("required fields are set")
        }))
        .build()
        .expect("required fields are set")
}

fn graphql_log_config_to_sdk(l: &LogConfigSpec) -> at::LogConfig {
    at::LogConfig::builder()
        .field_log_level(at::FieldLogLevel::from(l.level.as_str()))
        .cloud_watch_logs_role_arn(&l.role_arn)
        .build()
        .expect("required fields are set")
}

fn event_config_from_sdk(c: &at::EventConfig) -> EventConfigSpec {
    EventConfigSpec {
        auth_providers: c
            .auth_providers()
            .iter()
            .map(|p| ProviderSpec {
                auth_type: p.auth_type().as_str().to_owned(),
                cognito: p.cognito_config().map(|c| CognitoSpec {
                    user_pool_id: c.user_pool_id().to_owned(),
                    aws_region: c.aws_region().to_owned(),
                    app_id_client_regex: c.app_id_client_regex().map(str::to_owned),
                }),
                oidc: p.open_id_connect_config().map(oidc_from_sdk),
                lambda: p.lambda_authorizer_config().map(lambda_from_sdk),
            })
            .collect(),
        connection_auth_modes: mode_names(c.connection_auth_modes()),
        default_publish_auth_modes: mode_names(c.default_publish_auth_modes()),
        default_subscribe_auth_modes: mode_names(c.default_subscribe_auth_modes()),
        log_config: c.log_config().map(|l| LogConfigSpec {
            level: l.log_level().as_str().to_owned(),
            role_arn: l.cloud_watch_logs_role_arn().to_owned(),
        }),
    }
}

fn event_api(a: &at::Api) -> Result<EventApi> {
    let dns = a.dns();
    Ok(EventApi {
        id: a.api_id().context("API without apiId")?.to_owned(),
        name: a.name().unwrap_or_default().to_owned(),
        arn: a.api_arn().unwrap_or_default().to_owned(),
        tags: btree(a.tags()),
        http_host: dns.and_then(|d| d.get("HTTP")).cloned().unwrap_or_default(),
        realtime_host: dns
            .and_then(|d| d.get("REALTIME"))
            .cloned()
            .unwrap_or_default(),
        config: a.event_config().map(event_config_from_sdk),
    })
}

fn namespace(n: &at::ChannelNamespace) -> Namespace {
    Namespace {
        spec: NamespaceSpec {
            name: n.name().unwrap_or_default().to_owned(),
            publish_auth_modes: mode_names(n.publish_auth_modes()),
            subscribe_auth_modes: mode_names(n.subscribe_auth_modes()),
            code: n.code_handlers().unwrap_or_default().to_owned(),
        },
        arn: n.channel_namespace_arn().unwrap_or_default().to_owned(),
        tags: btree(n.tags()),
    }
}

fn additional_to_sdk(p: &ProviderSpec) -> at::AdditionalAuthenticationProvider {
    at::AdditionalAuthenticationProvider::builder()
        .authentication_type(at::AuthenticationType::from(p.auth_type.as_str()))
        .set_user_pool_config(p.cognito.as_ref().map(|c| {
            at::CognitoUserPoolConfig::builder()
                .user_pool_id(&c.user_pool_id)
                .aws_region(&c.aws_region)
                .set_app_id_client_regex(c.app_id_client_regex.clone())
                .build()
                .expect("required fields are set")
        }))
        .set_open_id_connect_config(p.oidc.as_ref().map(oidc_to_sdk))
        .set_lambda_authorizer_config(p.lambda.as_ref().map(lambda_to_sdk))
        .build()
}

fn graphql_api(a: &at::GraphqlApi) -> Result<GraphqlApi> {
    let uris = a.uris();
    let url = uris
        .and_then(|u| u.get("GRAPHQL"))
        .cloned()
        .unwrap_or_default();
    Ok(GraphqlApi {
        id: a.api_id().context("GraphQL API without apiId")?.to_owned(),
        name: a.name().unwrap_or_default().to_owned(),
        arn: a.arn().unwrap_or_default().to_owned(),
        tags: btree(a.tags()),
        url,
        realtime_url: uris.and_then(|u| u.get("REALTIME")).cloned(),
        spec: GraphqlApiSpec {
            authentication_type: a
                .authentication_type()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default(),
            additional: a
                .additional_authentication_providers()
                .iter()
                .map(|p| ProviderSpec {
                    auth_type: p
                        .authentication_type()
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_default(),
                    cognito: p.user_pool_config().map(|c| CognitoSpec {
                        user_pool_id: c.user_pool_id().to_owned(),
                        aws_region: c.aws_region().to_owned(),
                        app_id_client_regex: c.app_id_client_regex().map(str::to_owned),
                    }),
                    oidc: p.open_id_connect_config().map(oidc_from_sdk),
                    lambda: p.lambda_authorizer_config().map(lambda_from_sdk),
                })
                .collect(),
            log_config: a.log_config().map(|l| LogConfigSpec {
                level: l.field_log_level().as_str().to_owned(),
                role_arn: l.cloud_watch_logs_role_arn().to_owned(),
            }),
        },
    })
}

fn resolver(r: &at::Resolver) -> ResolverSpec {
    ResolverSpec {
        type_name: r.type_name().unwrap_or_default().to_owned(),
        field_name: r.field_name().unwrap_or_default().to_owned(),
        data_source: r.data_source_name().unwrap_or_default().to_owned(),
        request: r.request_mapping_template().unwrap_or_default().to_owned(),
        response: r.response_mapping_template().unwrap_or_default().to_owned(),
    }
}

impl AppSync for SdkAppSync {
    async fn list_event_apis(&self) -> Result<Vec<EventApi>> {
        let apis = self
            .0
            .list_apis()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_err("ListApis", e))?;
        apis.iter().map(event_api).collect()
    }

    async fn get_event_api(&self, id: &str) -> Result<EventApi> {
        let out = self
            .0
            .get_api()
            .api_id(id)
            .send()
            .await
            .map_err(|e| sdk_err("GetApi", e))?;
        event_api(out.api().context("GetApi returned no api")?)
    }

    async fn tags_of(&self, arn: &str) -> Result<BTreeMap<String, String>> {
        let out = self
            .0
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| sdk_err("ListTagsForResource", e))?;
        Ok(btree(out.tags()))
    }

    async fn create_event_api(
        &self,
        name: &str,
        config: &EventConfigSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<EventApi> {
        let out = self
            .0
            .create_api()
            .name(name)
            .event_config(event_config_to_sdk(config))
            .set_tags(Some(sorted(tags)))
            .send()
            .await
            .map_err(|e| sdk_err("CreateApi", e))?;
        event_api(out.api().context("CreateApi returned no api")?)
    }

    async fn update_event_api(
        &self,
        id: &str,
        name: &str,
        config: &EventConfigSpec,
    ) -> Result<EventApi> {
        let out = self
            .0
            .update_api()
            .api_id(id)
            .name(name)
            .event_config(event_config_to_sdk(config))
            .send()
            .await
            .map_err(|e| sdk_err("UpdateApi", e))?;
        event_api(out.api().context("UpdateApi returned no api")?)
    }

    async fn delete_event_api(&self, id: &str) -> Result<()> {
        self.0
            .delete_api()
            .api_id(id)
            .send()
            .await
            .map_err(|e| sdk_err("DeleteApi", e))?;
        Ok(())
    }

    async fn list_namespaces(&self, api_id: &str) -> Result<Vec<Namespace>> {
        let list = self
            .0
            .list_channel_namespaces()
            .api_id(api_id)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_err("ListChannelNamespaces", e))?;
        Ok(list.iter().map(namespace).collect())
    }

    async fn create_namespace(
        &self,
        api_id: &str,
        spec: &NamespaceSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<Namespace> {
        let out = self
            .0
            .create_channel_namespace()
            .api_id(api_id)
            .name(&spec.name)
            .set_publish_auth_modes(Some(modes(&spec.publish_auth_modes)))
            .set_subscribe_auth_modes(Some(modes(&spec.subscribe_auth_modes)))
            .code_handlers(&spec.code)
            .set_tags(Some(sorted(tags)))
            .send()
            .await
            .map_err(|e| sdk_err("CreateChannelNamespace", e))?;
        Ok(namespace(
            out.channel_namespace()
                .context("CreateChannelNamespace returned nothing")?,
        ))
    }

    async fn update_namespace(&self, api_id: &str, spec: &NamespaceSpec) -> Result<Namespace> {
        let out = self
            .0
            .update_channel_namespace()
            .api_id(api_id)
            .name(&spec.name)
            .set_publish_auth_modes(Some(modes(&spec.publish_auth_modes)))
            .set_subscribe_auth_modes(Some(modes(&spec.subscribe_auth_modes)))
            .code_handlers(&spec.code)
            .send()
            .await
            .map_err(|e| sdk_err("UpdateChannelNamespace", e))?;
        Ok(namespace(
            out.channel_namespace()
                .context("UpdateChannelNamespace returned nothing")?,
        ))
    }

    async fn delete_namespace(&self, api_id: &str, name: &str) -> Result<()> {
        self.0
            .delete_channel_namespace()
            .api_id(api_id)
            .name(name)
            .send()
            .await
            .map_err(|e| sdk_err("DeleteChannelNamespace", e))?;
        Ok(())
    }

    async fn list_api_keys(&self, api_id: &str) -> Result<Vec<ApiKey>> {
        let keys = self
            .0
            .list_api_keys()
            .api_id(api_id)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_err("ListApiKeys", e))?;
        Ok(keys
            .iter()
            .map(|k| ApiKey {
                id: k.id().unwrap_or_default().to_owned(),
                description: k.description().map(str::to_owned),
                expires: k.expires(),
            })
            .collect())
    }

    async fn create_api_key(
        &self,
        api_id: &str,
        description: &str,
        expires: i64,
    ) -> Result<ApiKey> {
        let out = self
            .0
            .create_api_key()
            .api_id(api_id)
            .description(description)
            .expires(expires)
            .send()
            .await
            .map_err(|e| sdk_err("CreateApiKey", e))?;
        let k = out.api_key().context("CreateApiKey returned no key")?;
        Ok(ApiKey {
            id: k.id().unwrap_or_default().to_owned(),
            description: k.description().map(str::to_owned),
            expires: k.expires(),
        })
    }

    async fn delete_api_key(&self, api_id: &str, key_id: &str) -> Result<()> {
        self.0
            .delete_api_key()
            .api_id(api_id)
            .id(key_id)
            .send()
            .await
            .map_err(|e| sdk_err("DeleteApiKey", e))?;
        Ok(())
    }

    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.0
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(sorted(tags)))
            .send()
            .await
            .map_err(|e| sdk_err("TagResource", e))?;
        Ok(())
    }

    async fn untag(&self, arn: &str, keys: &[String]) -> Result<()> {
        self.0
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_err("UntagResource", e))?;
        Ok(())
    }

    async fn list_graphql_apis(&self) -> Result<Vec<GraphqlApi>> {
        let apis = self
            .0
            .list_graphql_apis()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_err("ListGraphqlApis", e))?;
        apis.iter().map(graphql_api).collect()
    }

    async fn create_graphql_api(
        &self,
        name: &str,
        auth: &GraphqlApiSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<GraphqlApi> {
        let out = self
            .0
            .create_graphql_api()
            .name(name)
            .authentication_type(at::AuthenticationType::from(
                auth.authentication_type.as_str(),
            ))
            .set_additional_authentication_providers(Some(
                auth.additional.iter().map(additional_to_sdk).collect(),
            ))
            .set_log_config(auth.log_config.as_ref().map(graphql_log_config_to_sdk))
            .set_tags(Some(sorted(tags)))
            .send()
            .await
            .map_err(|e| sdk_err("CreateGraphqlApi", e))?;
        graphql_api(
            out.graphql_api()
                .context("CreateGraphqlApi returned no API")?,
        )
    }

    async fn update_graphql_api(
        &self,
        id: &str,
        name: &str,
        auth: &GraphqlApiSpec,
    ) -> Result<GraphqlApi> {
        let out = self
            .0
            .update_graphql_api()
            .api_id(id)
            .name(name)
            .authentication_type(at::AuthenticationType::from(
                auth.authentication_type.as_str(),
            ))
            .set_additional_authentication_providers(Some(
                auth.additional.iter().map(additional_to_sdk).collect(),
            ))
            .set_log_config(auth.log_config.as_ref().map(graphql_log_config_to_sdk))
            .send()
            .await
            .map_err(|e| sdk_err("UpdateGraphqlApi", e))?;
        graphql_api(
            out.graphql_api()
                .context("UpdateGraphqlApi returned no API")?,
        )
    }

    async fn delete_graphql_api(&self, id: &str) -> Result<()> {
        self.0
            .delete_graphql_api()
            .api_id(id)
            .send()
            .await
            .map_err(|e| sdk_err("DeleteGraphqlApi", e))?;
        Ok(())
    }

    async fn put_schema(&self, api_id: &str, sdl: &str) -> Result<()> {
        self.0
            .start_schema_creation()
            .api_id(api_id)
            .definition(aws_sdk_appsync::primitives::Blob::new(sdl.as_bytes()))
            .send()
            .await
            .map_err(|e| sdk_err("StartSchemaCreation", e))?;
        let start = std::time::Instant::now();
        let mut delay = Duration::from_millis(200);
        let what = format!("GraphQL schema creation on API {api_id}");
        loop {
            let s = self
                .0
                .get_schema_creation_status()
                .api_id(api_id)
                .send()
                .await
                .map_err(|e| sdk_err("GetSchemaCreationStatus", e))?;
            let status = s
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default();
            let done = !matches!(status.as_str(), "PROCESSING" | "DELETING" | "")
                || start.elapsed() > SCHEMA_TIMEOUT;
            // Schema creation can take minutes (AppSync polls are documented as the way to
            // learn its status: https://docs.aws.amazon.com/appsync/latest/APIReference/API_GetSchemaCreationStatus.html).
            super::calls::poll_line(&what, &status, start.elapsed(), done);
            match status.as_str() {
                "SUCCESS" | "ACTIVE" => return Ok(()),
                "FAILED" | "NOT_APPLICABLE" => {
                    anyhow::bail!(
                        "schema creation {status}: {}",
                        s.details().unwrap_or("(no details)")
                    )
                }
                _ if start.elapsed() > SCHEMA_TIMEOUT => {
                    anyhow::bail!("schema creation still {status} after {SCHEMA_TIMEOUT:?}")
                }
                _ => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn schema_sdl(&self, api_id: &str) -> Result<Option<String>> {
        match self
            .0
            .get_introspection_schema()
            .api_id(api_id)
            .format(at::OutputType::Sdl)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .schema()
                .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())),
            Err(e) => {
                tracing::debug!(
                    "GetIntrospectionSchema: {}",
                    aws_sdk_appsync::error::DisplayErrorContext(&e)
                );
                Ok(None)
            }
        }
    }

    async fn has_data_source(&self, api_id: &str, name: &str) -> Result<bool> {
        match self
            .0
            .get_data_source()
            .api_id(api_id)
            .name(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.data_source().is_some()),
            Err(e) if e.code() == Some("NotFoundException") => Ok(false),
            Err(e) => Err(sdk_err("GetDataSource", e)),
        }
    }

    async fn create_none_data_source(&self, api_id: &str, name: &str) -> Result<()> {
        self.0
            .create_data_source()
            .api_id(api_id)
            .name(name)
            .r#type(at::DataSourceType::None)
            .description("groupcast: local resolvers, no backend")
            .send()
            .await
            .map_err(|e| sdk_err("CreateDataSource", e))?;
        Ok(())
    }

    async fn get_resolver(
        &self,
        api_id: &str,
        type_name: &str,
        field: &str,
    ) -> Result<Option<ResolverSpec>> {
        match self
            .0
            .get_resolver()
            .api_id(api_id)
            .type_name(type_name)
            .field_name(field)
            .send()
            .await
        {
            Ok(out) => Ok(out.resolver().map(resolver)),
            Err(e) if e.code() == Some("NotFoundException") => Ok(None),
            Err(e) => Err(sdk_err("GetResolver", e)),
        }
    }

    async fn create_resolver(&self, api_id: &str, spec: &ResolverSpec) -> Result<()> {
        self.0
            .create_resolver()
            .api_id(api_id)
            .type_name(&spec.type_name)
            .field_name(&spec.field_name)
            .data_source_name(&spec.data_source)
            .kind(at::ResolverKind::Unit)
            .request_mapping_template(&spec.request)
            .response_mapping_template(&spec.response)
            .send()
            .await
            .map_err(|e| sdk_err("CreateResolver", e))?;
        Ok(())
    }

    async fn update_resolver(&self, api_id: &str, spec: &ResolverSpec) -> Result<()> {
        self.0
            .update_resolver()
            .api_id(api_id)
            .type_name(&spec.type_name)
            .field_name(&spec.field_name)
            .data_source_name(&spec.data_source)
            .kind(at::ResolverKind::Unit)
            .request_mapping_template(&spec.request)
            .response_mapping_template(&spec.response)
            .send()
            .await
            .map_err(|e| sdk_err("UpdateResolver", e))?;
        Ok(())
    }
}

/// IoT Core through `aws-sdk-iot`.
#[derive(Debug, Clone)]
pub(crate) struct SdkIot(iot::Client);

impl SdkIot {
    pub(crate) fn new(config: &aws_config::SdkConfig) -> Self {
        SdkIot(iot::Client::from_conf(
            iot::config::Builder::from(config)
                .interceptor(super::calls::CallLog)
                .build(),
        ))
    }

    /// The SDK client, for `groupcast_auth::grant` (which speaks to it directly).
    pub(crate) fn client(&self) -> &iot::Client {
        &self.0
    }
}

fn iot_tags(tags: &BTreeMap<String, String>) -> Vec<iot::types::Tag> {
    tags.iter()
        .map(|(k, v)| {
            iot::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key is set")
        })
        .collect()
}

impl Iot for SdkIot {
    async fn get_policy(&self, name: &str) -> Result<Option<Policy>> {
        match self.0.get_policy().policy_name(name).send().await {
            Ok(p) => Ok(Some(Policy {
                name: name.to_owned(),
                arn: p.policy_arn().unwrap_or_default().to_owned(),
                document: p.policy_document().unwrap_or_default().to_owned(),
                default_version: p.default_version_id().unwrap_or_default().to_owned(),
            })),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(sdk_err("GetPolicy", e)),
        }
    }

    async fn list_policy_names(&self) -> Result<Vec<String>> {
        let policies = self
            .0
            .list_policies()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_err("ListPolicies", e))?;
        Ok(policies
            .iter()
            .filter_map(|p| p.policy_name().map(str::to_owned))
            .collect())
    }

    async fn create_policy(
        &self,
        name: &str,
        document: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Policy> {
        let out = self
            .0
            .create_policy()
            .policy_name(name)
            .policy_document(document)
            .set_tags(Some(iot_tags(tags)))
            .send()
            .await
            .map_err(|e| sdk_err("CreatePolicy", e))?;
        Ok(Policy {
            name: name.to_owned(),
            arn: out.policy_arn().unwrap_or_default().to_owned(),
            document: document.to_owned(),
            default_version: out.policy_version_id().unwrap_or_default().to_owned(),
        })
    }

    async fn list_versions(&self, name: &str) -> Result<Vec<PolicyVersion>> {
        let out = self
            .0
            .list_policy_versions()
            .policy_name(name)
            .send()
            .await
            .map_err(|e| sdk_err("ListPolicyVersions", e))?;
        Ok(out
            .policy_versions()
            .iter()
            .map(|v| PolicyVersion {
                id: v.version_id().unwrap_or_default().to_owned(),
                is_default: v.is_default_version(),
                created: v.create_date().map(|d| d.as_secs_f64()),
            })
            .collect())
    }

    async fn create_version(&self, name: &str, document: &str) -> Result<()> {
        self.0
            .create_policy_version()
            .policy_name(name)
            .policy_document(document)
            .set_as_default(true)
            .send()
            .await
            .map_err(|e| sdk_err("CreatePolicyVersion", e))?;
        Ok(())
    }

    async fn delete_version(&self, name: &str, version: &str) -> Result<()> {
        self.0
            .delete_policy_version()
            .policy_name(name)
            .policy_version_id(version)
            .send()
            .await
            .map_err(|e| sdk_err("DeletePolicyVersion", e))?;
        Ok(())
    }

    async fn delete_policy(&self, name: &str) -> Result<()> {
        self.0
            .delete_policy()
            .policy_name(name)
            .send()
            .await
            .map_err(|e| sdk_err("DeletePolicy", e))?;
        Ok(())
    }

    async fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>> {
        let tags = self
            .0
            .list_tags_for_resource()
            .resource_arn(arn)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_err("ListTagsForResource", e))?;
        Ok(tags
            .iter()
            .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
            .collect())
    }

    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.0
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(iot_tags(tags)))
            .send()
            .await
            .map_err(|e| sdk_err("TagResource", e))?;
        Ok(())
    }

    async fn untag(&self, arn: &str, keys: &[String]) -> Result<()> {
        self.0
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_err("UntagResource", e))?;
        Ok(())
    }

    async fn targets(&self, name: &str) -> Result<Vec<String>> {
        self.0
            .list_targets_for_policy()
            .policy_name(name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_err("ListTargetsForPolicy", e))
    }

    async fn detach(&self, name: &str, target: &str) -> Result<()> {
        self.0
            .detach_policy()
            .policy_name(name)
            .target(target)
            .send()
            .await
            .map_err(|e| sdk_err("DetachPolicy", e))?;
        Ok(())
    }

    async fn data_endpoint(&self) -> Result<String> {
        let out = self
            .0
            .describe_endpoint()
            .endpoint_type("iot:Data-ATS")
            .send()
            .await
            .map_err(|e| sdk_err("DescribeEndpoint", e))?;
        out.endpoint_address()
            .map(str::to_owned)
            .context("DescribeEndpoint returned no address")
    }

    async fn get_authorizer(&self, name: &str) -> Result<Option<Authorizer>> {
        match self
            .0
            .describe_authorizer()
            .authorizer_name(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.authorizer_description().map(|d| Authorizer {
                name: name.to_owned(),
                arn: d.authorizer_arn().unwrap_or_default().to_owned(),
                spec: AuthorizerSpec {
                    authorizer_function_arn: d
                        .authorizer_function_arn()
                        .unwrap_or_default()
                        .to_owned(),
                    token_key_name: d.token_key_name().unwrap_or_default().to_owned(),
                    signing_disabled: d.signing_disabled().unwrap_or(false),
                    status: d
                        .status()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                    enable_caching_for_http: d.enable_caching_for_http().unwrap_or(false),
                },
            })),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(sdk_err("DescribeAuthorizer", e)),
        }
    }

    async fn create_authorizer(
        &self,
        name: &str,
        spec: &AuthorizerSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        let out = self
            .0
            .create_authorizer()
            .authorizer_name(name)
            .authorizer_function_arn(&spec.authorizer_function_arn)
            .token_key_name(&spec.token_key_name)
            .signing_disabled(spec.signing_disabled)
            .status(spec.status.as_str().into())
            .enable_caching_for_http(spec.enable_caching_for_http)
            .set_tags(Some(iot_tags(tags)))
            .send()
            .await
            .map_err(|e| sdk_err("CreateAuthorizer", e))?;
        Ok(out.authorizer_arn().unwrap_or_default().to_owned())
    }

    async fn update_authorizer(&self, name: &str, spec: &AuthorizerSpec) -> Result<()> {
        self.0
            .update_authorizer()
            .authorizer_name(name)
            .authorizer_function_arn(&spec.authorizer_function_arn)
            .token_key_name(&spec.token_key_name)
            .status(spec.status.as_str().into())
            .enable_caching_for_http(spec.enable_caching_for_http)
            .send()
            .await
            .map_err(|e| sdk_err("UpdateAuthorizer", e))?;
        Ok(())
    }

    async fn delete_authorizer(&self, name: &str) -> Result<()> {
        self.0
            .update_authorizer()
            .authorizer_name(name)
            .status(iot::types::AuthorizerStatus::Inactive)
            .send()
            .await
            .map_err(|e| sdk_err("UpdateAuthorizer", e))?;
        self.0
            .delete_authorizer()
            .authorizer_name(name)
            .send()
            .await
            .map_err(|e| sdk_err("DeleteAuthorizer", e))?;
        Ok(())
    }
}
