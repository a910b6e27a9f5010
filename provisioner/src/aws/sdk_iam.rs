//! The [`Iam`] and [`Lambda`] traits over the AWS SDK for Rust, and STS's caller identity:
//! "not found" as `None`, URL-encoded policy documents decoded, paginators for lists.

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_iam as iam;
use aws_sdk_iam::error::ProvideErrorMetadata as _;
use aws_sdk_lambda as lambda;
use aws_sdk_sts as sts;

use super::sdk::sdk_err;
use super::{Iam, Lambda, Permission, Result, Role};

/// IAM returns policy documents URL-encoded (RFC 3986): "The policy document returned in this
/// structure is URL-encoded compliant with RFC 3986"
/// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRolePolicy.html, and
/// `AssumeRolePolicyDocument` in https://docs.aws.amazon.com/IAM/latest/APIReference/API_Role.html).
/// Some peers return it plain; decoding plain JSON text leaves it as it is unless it holds `%`
/// escapes, which groupcast's documents never do.
pub(crate) fn decode_policy(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map_or_else(|_| text.to_owned(), |t| t.into_owned())
}

/// IAM through `aws-sdk-iam`.
#[derive(Debug, Clone)]
pub(crate) struct SdkIam(iam::Client);

impl SdkIam {
    pub(crate) fn new(config: &aws_config::SdkConfig) -> Self {
        SdkIam(iam::Client::from_conf(
            iam::config::Builder::from(config)
                .interceptor(super::calls::CallLog)
                .build(),
        ))
    }
}

fn iam_tags(tags: &BTreeMap<String, String>) -> Vec<iam::types::Tag> {
    tags.iter()
        .map(|(k, v)| {
            iam::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value are set")
        })
        .collect()
}

const NO_SUCH_ENTITY: &str = "NoSuchEntity";

impl Iam for SdkIam {
    async fn get_role(&self, name: &str) -> Result<Option<Role>> {
        let role = match self.0.get_role().role_name(name).send().await {
            Ok(out) => out.role.context("GetRole returned no role")?,
            Err(e) if e.code() == Some(NO_SUCH_ENTITY) => return Ok(None),
            Err(e) => return Err(sdk_err("GetRole", e)),
        };
        // GetRole's tags are complete for up to 50 tags; ListRoleTags pages beyond that.
        let tags = self
            .0
            .list_role_tags()
            .role_name(name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_err("ListRoleTags", e))?;
        Ok(Some(Role {
            name: role.role_name,
            arn: role.arn,
            trust_policy: decode_policy(role.assume_role_policy_document.as_deref().unwrap_or("")),
            tags: tags.into_iter().map(|t| (t.key, t.value)).collect(),
        }))
    }

    async fn create_role(
        &self,
        name: &str,
        trust_policy: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Role> {
        let out = self
            .0
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust_policy)
            .description("groupcast: created by provisioner apply")
            .set_tags(Some(iam_tags(tags)))
            .send()
            .await
            .map_err(|e| sdk_err("CreateRole", e))?;
        let role = out.role.context("CreateRole returned no role")?;
        Ok(Role {
            name: role.role_name,
            arn: role.arn,
            trust_policy: trust_policy.to_owned(),
            tags: tags.clone(),
        })
    }

    async fn update_trust_policy(&self, name: &str, trust_policy: &str) -> Result<()> {
        self.0
            .update_assume_role_policy()
            .role_name(name)
            .policy_document(trust_policy)
            .send()
            .await
            .map_err(|e| sdk_err("UpdateAssumeRolePolicy", e))?;
        Ok(())
    }

    async fn delete_role(&self, name: &str) -> Result<()> {
        self.0
            .delete_role()
            .role_name(name)
            .send()
            .await
            .map_err(|e| sdk_err("DeleteRole", e))?;
        Ok(())
    }

    async fn role_policy_names(&self, role: &str) -> Result<Vec<String>> {
        self.0
            .list_role_policies()
            .role_name(role)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_err("ListRolePolicies", e))
    }

    async fn role_policy(&self, role: &str, policy: &str) -> Result<Option<String>> {
        match self
            .0
            .get_role_policy()
            .role_name(role)
            .policy_name(policy)
            .send()
            .await
        {
            Ok(out) => Ok(Some(decode_policy(&out.policy_document))),
            Err(e) if e.code() == Some(NO_SUCH_ENTITY) => Ok(None),
            Err(e) => Err(sdk_err("GetRolePolicy", e)),
        }
    }

    async fn put_role_policy(&self, role: &str, policy: &str, document: &str) -> Result<()> {
        self.0
            .put_role_policy()
            .role_name(role)
            .policy_name(policy)
            .policy_document(document)
            .send()
            .await
            .map_err(|e| sdk_err("PutRolePolicy", e))?;
        Ok(())
    }

    async fn delete_role_policy(&self, role: &str, policy: &str) -> Result<()> {
        self.0
            .delete_role_policy()
            .role_name(role)
            .policy_name(policy)
            .send()
            .await
            .map_err(|e| sdk_err("DeleteRolePolicy", e))?;
        Ok(())
    }

    async fn tag_role(&self, role: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.0
            .tag_role()
            .role_name(role)
            .set_tags(Some(iam_tags(tags)))
            .send()
            .await
            .map_err(|e| sdk_err("TagRole", e))?;
        Ok(())
    }

    async fn untag_role(&self, role: &str, keys: &[String]) -> Result<()> {
        self.0
            .untag_role()
            .role_name(role)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_err("UntagRole", e))?;
        Ok(())
    }
}

/// Lambda through `aws-sdk-lambda`.
#[derive(Debug, Clone)]
pub(crate) struct SdkLambda(lambda::Client);

impl SdkLambda {
    pub(crate) fn new(config: &aws_config::SdkConfig) -> Self {
        SdkLambda(lambda::Client::from_conf(
            lambda::config::Builder::from(config)
                .interceptor(super::calls::CallLog)
                .build(),
        ))
    }
}

/// The statements of a resource policy (`GetPolicy`'s JSON text) as [`Permission`]s. A
/// statement groupcast cannot read is kept with what it has, so it is never mistaken for ours.
pub(crate) fn permissions_of(policy: &str) -> Result<Vec<Permission>> {
    let doc: serde_json::Value =
        serde_json::from_str(policy).context("GetPolicy returned a policy that is not JSON")?;
    let text = |v: Option<&serde_json::Value>| -> String {
        match v {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Object(m)) => m
                .get("Service")
                .or_else(|| m.get("AWS"))
                .and_then(|s| s.as_str())
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        }
    };
    Ok(doc
        .get("Statement")
        .and_then(|s| s.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|st| Permission {
            statement_id: text(st.get("Sid")),
            principal: text(st.get("Principal")),
            action: text(st.get("Action")),
            source_arn: st
                .pointer("/Condition/ArnLike/AWS:SourceArn")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
        })
        .collect())
}

impl Lambda for SdkLambda {
    async fn permissions(&self, function: &str) -> Result<Option<Vec<Permission>>> {
        match self.0.get_policy().function_name(function).send().await {
            Ok(out) => permissions_of(out.policy().unwrap_or("{}")).map(Some),
            // No resource policy yet, or no such function: tell the two apart.
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                match self.0.get_function().function_name(function).send().await {
                    Ok(_) => Ok(Some(Vec::new())),
                    Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
                    Err(e) => Err(sdk_err("GetFunction", e)),
                }
            }
            Err(e) => Err(sdk_err("GetPolicy", e)),
        }
    }

    async fn add_permission(&self, function: &str, p: &Permission) -> Result<()> {
        self.0
            .add_permission()
            .function_name(function)
            .statement_id(&p.statement_id)
            .action(&p.action)
            .principal(&p.principal)
            .set_source_arn(p.source_arn.clone())
            .send()
            .await
            .map_err(|e| sdk_err("AddPermission", e))?;
        Ok(())
    }

    async fn remove_permission(&self, function: &str, statement_id: &str) -> Result<()> {
        self.0
            .remove_permission()
            .function_name(function)
            .statement_id(statement_id)
            .send()
            .await
            .map_err(|e| sdk_err("RemovePermission", e))?;
        Ok(())
    }
}

/// STS, for the caller's account.
#[derive(Debug, Clone)]
pub(crate) struct SdkSts(sts::Client);

impl SdkSts {
    pub(crate) fn new(config: &aws_config::SdkConfig) -> Self {
        SdkSts(sts::Client::from_conf(
            sts::config::Builder::from(config)
                .interceptor(super::calls::CallLog)
                .build(),
        ))
    }

    /// The account of the credentials in use (`GetCallerIdentity`, which needs no permission:
    /// https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
    pub(crate) async fn account_id(&self) -> Result<String> {
        let out = self
            .0
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| sdk_err("GetCallerIdentity", e))?;
        out.account.context("GetCallerIdentity returned no account")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoded_policy_documents_are_decoded_and_plain_ones_kept() {
        let plain = r#"{"Version":"2012-10-17","Statement":[]}"#;
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(decode_policy(encoded), plain);
        assert_eq!(decode_policy(plain), plain);
    }

    #[test]
    fn a_resource_policy_reads_as_permissions_with_their_source_arn() {
        let policy = r#"{"Version":"2012-10-17","Id":"default","Statement":[
            {"Sid":"groupcast-appsync","Effect":"Allow","Principal":{"Service":"appsync.amazonaws.com"},
             "Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:123456789012:function:f",
             "Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:appsync:us-east-1:123456789012:apis/abc"}}},
            {"Sid":"other","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction"}]}"#;
        let ps = permissions_of(policy).unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].statement_id, "groupcast-appsync");
        assert_eq!(ps[0].principal, "appsync.amazonaws.com");
        assert_eq!(
            ps[0].source_arn.as_deref(),
            Some("arn:aws:appsync:us-east-1:123456789012:apis/abc")
        );
        assert_eq!(ps[1].principal, "*");
        assert_eq!(ps[1].source_arn, None);
        assert!(permissions_of("not json").is_err());
    }
}
