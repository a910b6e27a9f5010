//! The provisioner's outputs file: what `provisioner apply` created, in the form this library
//! reads to configure itself (`GROUPCAST_OUTPUTS=path/to/outputs.json`).
//!
//! ```json
//! {
//!   "version": 1,
//!   "region": "us-east-1",
//!   "events": {
//!     "apiId": "abcdefghijklmnopqrstuvwxyz", "apiArn": "arn:aws:appsync:…:apis/abc…",
//!     "httpHost": "abc….appsync-api.us-east-1.amazonaws.com",
//!     "realtimeHost": "abc….appsync-realtime-api.us-east-1.amazonaws.com",
//!     "namespaces": [{"name": "live", "arn": "arn:aws:appsync:…:apis/abc…/channelNamespace/live"}],
//!     "apiKey": null
//!   },
//!   "graphql": {
//!     "apiId": "…", "apiArn": "…",
//!     "url": "https://….appsync-api.us-east-1.amazonaws.com/graphql",
//!     "realtimeUrl": "wss://….appsync-realtime-api.us-east-1.amazonaws.com/graphql",
//!     "apiKey": null
//!   },
//!   "iot": {
//!     "dataEndpoint": "a1b2c3-ats.iot.us-east-1.amazonaws.com",
//!     "topicPrefix": "groupcast",
//!     "policyNamePattern": "groupcast-{group}",
//!     "policies": {"team-a": "groupcast-team-a"}
//!   },
//!   "lambdas": {
//!     "publisher": {"functionName": "acme-live-publisher",
//!                   "roleArn": "arn:aws:iam::123456789012:role/acme-live-publisher",
//!                   "environment": {"GROUPCAST_AUTH": "iam", "GROUPCAST_REGION": "us-east-1"}}
//!   }
//! }
//! ```
//!
//! Every section is optional: a deployment may use one transport only. Unknown fields are
//! ignored so that newer provisioners can add fields without breaking older publishers.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The key of the iot-grant function in [`Outputs::lambdas`]: [`crate::Publisher::revoke`]
/// invokes it to re-sync a user's IoT policies.
pub const IOT_GRANT_LAMBDA: &str = "iot-grant";

/// The outputs file format version this library reads and the provisioner writes.
pub const OUTPUTS_VERSION: u32 = 1;

/// The provisioner's outputs. See the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outputs {
    /// Format version, [`OUTPUTS_VERSION`].
    pub version: u32,
    /// The AWS region everything lives in.
    pub region: String,
    /// The AppSync Event API, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<EventsOutputs>,
    /// The AppSync GraphQL pubsub API, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graphql: Option<GraphqlOutputs>,
    /// IoT Core, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iot: Option<IotOutputs>,
    /// The Lambda functions `provisioner apply` prepared a role for, by binary name
    /// (`publisher`, `authorizer`, `iot-grant`): what `cargo lambda deploy` needs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lambdas: BTreeMap<String, LambdaOutputs>,
}

/// One Lambda function's deployment: its name, the execution role `apply` made for it and the
/// environment it needs (also written as `KEY='VALUE'` lines to `{deployed}/lambda/{binary}.env`
/// for `cargo lambda deploy --env-file`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaOutputs {
    /// The function name to deploy as.
    pub function_name: String,
    /// The execution role's ARN (`cargo lambda deploy --role`).
    pub role_arn: String,
    /// Environment variables the function reads (`GROUPCAST_*`).
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

/// An AppSync Event API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsOutputs {
    /// API id.
    pub api_id: String,
    /// API ARN.
    pub api_arn: String,
    /// Host of the HTTP endpoint (`POST https://{httpHost}/event`).
    pub http_host: String,
    /// Host of the WebSocket endpoint (`wss://{realtimeHost}/event/realtime`).
    pub realtime_host: String,
    /// Channel namespaces; publishers use the first unless told otherwise.
    pub namespaces: Vec<NamespaceOutputs>,
    /// The API key, when the config asked for one.
    #[serde(default)]
    pub api_key: Option<String>,
}

/// A channel namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceOutputs {
    /// Namespace name, the first channel segment.
    pub name: String,
    /// Namespace ARN (the resource of `appsync:EventPublish`).
    pub arn: String,
    /// The namespace's epoch in seconds when its channels are time-sliced
    /// (`/{namespace}/{group}/t{N}/{topic}`, [`crate::epoch`]); absent when they are not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_seconds: Option<u64>,
}

/// An AppSync GraphQL pubsub API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphqlOutputs {
    /// API id.
    pub api_id: String,
    /// API ARN.
    pub api_arn: String,
    /// `https://…/graphql`.
    pub url: String,
    /// `wss://…/graphql`.
    pub realtime_url: String,
    /// The API key, when the config asked for one.
    #[serde(default)]
    pub api_key: Option<String>,
}

/// IoT Core.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IotOutputs {
    /// `DescribeEndpoint(iot:Data-ATS)`.
    pub data_endpoint: String,
    /// Topics are `{topicPrefix}/{group level}/{topic}`.
    pub topic_prefix: String,
    /// Policy names are this with `{group}` replaced by the group's segment.
    pub policy_name_pattern: String,
    /// Group name → the IoT policy the provisioner made for it (`iot.auth = "identity-pool"`).
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
    /// With `iot.auth = "custom-authorizer"`: the IoT custom authorizer's name, which clients
    /// name when they connect (`x-amz-customauthorizer-name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_authorizer: Option<String>,
}

impl Outputs {
    /// Parses outputs JSON.
    ///
    /// # Errors
    /// [`Error::Config`] when the text is not an outputs document of a version this library reads.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let outputs: Outputs =
            serde_json::from_str(text).map_err(|e| Error::Config(format!("outputs JSON: {e}")))?;
        if outputs.version != OUTPUTS_VERSION {
            return Err(Error::Config(format!(
                "outputs JSON: version is {}, this library reads version {OUTPUTS_VERSION}",
                outputs.version
            )));
        }
        Ok(outputs)
    }

    /// Reads and parses an outputs file.
    ///
    /// # Errors
    /// [`Error::Config`] naming the path when it cannot be read or parsed.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        Self::from_json(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Pretty JSON, as the provisioner writes it.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("outputs always serialize")
    }
}
