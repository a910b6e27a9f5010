//! What `cargo lambda deploy` needs for each function `apply` prepared a role for: the function
//! name, the role's ARN and the `GROUPCAST_*` environment derived from the config and the live
//! endpoints, as outputs (`lambdas`) and as env files (`{deployed}/lambda/{binary}.env`).
//! The variables are the ones each function documents in docs/lambdas.md.

use std::collections::BTreeMap;

use groupcast::Outputs;
use groupcast::outputs::LambdaOutputs;

use crate::config::{Config, Function};
use crate::render::{AUTHORIZER_POLICY_PATH, Rendered, roles};

/// The deployment of every function whose role the config asks for, keyed by binary name.
/// `rendered` is what `apply` rendered (the iot-authorizer's group policy comes from it).
pub(crate) fn lambdas(
    config: &Config,
    outputs: &Outputs,
    rendered: &Rendered,
) -> BTreeMap<String, LambdaOutputs> {
    let role_names: Vec<String> = roles(config).into_iter().map(|r| r.role_name).collect();
    Function::ALL
        .iter()
        .filter(|f| role_names.contains(&config.function_name(**f)))
        .map(|f| {
            let name = config.function_name(*f);
            (
                f.suffix().to_owned(),
                LambdaOutputs {
                    role_arn: config.role_arn(&name),
                    function_name: name,
                    environment: environment(config, outputs, rendered, *f),
                },
            )
        })
        .collect()
}

fn environment(
    config: &Config,
    outputs: &Outputs,
    rendered: &Rendered,
    f: Function,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_owned(), v);
    };
    // The runtime's log setup (lambda_runtime::tracing) writes text with terminal colour codes
    // unless the function's log format is JSON; tracing-subscriber leaves them out under
    // NO_COLOR (https://no-color.org), so CloudWatch shows plain lines either way.
    set("NO_COLOR", "1".to_owned());
    let cognito_pool = config.cognito_user_pool().map(|(id, _)| id);
    match f {
        Function::Publisher => {
            set("GROUPCAST_REGION", config.project.region.clone());
            set("GROUPCAST_AUTH", "iam".to_owned());
            let mut transports = Vec::new();
            if let Some(e) = &outputs.events {
                set("GROUPCAST_EVENTS_URL", format!("https://{}", e.http_host));
                if let Some(ns) = e.namespaces.first() {
                    set("GROUPCAST_EVENTS_NAMESPACE", ns.name.clone());
                }
                if config.publisher.websocket {
                    set(
                        "GROUPCAST_EVENTS_REALTIME_URL",
                        format!("wss://{}", e.realtime_host),
                    );
                    transports.push("events-ws");
                } else {
                    transports.push("events");
                }
            }
            if let Some(g) = &outputs.graphql {
                set("GROUPCAST_GRAPHQL_URL", g.url.clone());
                transports.push("graphql");
            }
            if let Some(i) = &outputs.iot {
                set("GROUPCAST_IOT_ENDPOINT", i.data_endpoint.clone());
                set("GROUPCAST_IOT_TOPIC_PREFIX", i.topic_prefix.clone());
                transports.push("iot");
            }
            // `Publisher::revoke` re-syncs a user's IoT policies through this function (its role
            // may invoke exactly it: iam/publisher-policy.json).
            if config.iot.is_some() && !config.iot_custom_authorizer() {
                set(
                    "GROUPCAST_IOT_GRANT_FUNCTION",
                    config.function_name(Function::IotGrant),
                );
            }
            set("GROUPCAST_TRANSPORTS", transports.join(","));
        }
        Function::Authorizer => {
            let ttl = config
                .events
                .as_ref()
                .and_then(|e| e.auth.lambda.as_ref())
                .or_else(|| config.graphql.as_ref().and_then(|g| g.auth.lambda.as_ref()))
                .map(|l| l.result_ttl_seconds);
            if let Some(ttl) = ttl {
                set("GROUPCAST_AUTHORIZER_TTL_SECS", ttl.to_string());
            }
            // groups_source = "user-pool": the caller's current groups from this pool (its tokens'
            // issuer must be GROUPCAST_JWT_ISSUER: the function checks at cold start).
            if let Some(pool) = config.authorizer_user_pool() {
                set("GROUPCAST_COGNITO_USER_POOL_ID", pool);
            }
        }
        Function::IotAuthorizer => {
            // groupcast_auth::iot_authorizer's variables; the GROUPCAST_JWT_* ones name the
            // token issuer, which the config does not hold (docs/lambdas.md).
            if let Some(iot) = &config.iot {
                set(
                    "GROUPCAST_IOT_GROUPS",
                    serde_json::to_string(&iot.groups).expect("strings serialize"),
                );
                set("GROUPCAST_IOT_REFRESH_SECS", iot.refresh_secs().to_string());
                set(
                    "GROUPCAST_IOT_TOKEN_KEY",
                    crate::config::IOT_TOKEN_KEY_NAME.to_owned(),
                );
            }
            // The group policy with placeholders (the topic prefix, region and account are in it),
            // without whitespace: Lambda holds at most 4 KB of variables
            // (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html).
            if let Some(doc) = rendered.get(AUTHORIZER_POLICY_PATH)
                && let Ok(doc) = serde_json::from_str::<serde_json::Value>(doc)
            {
                set(
                    groupcast_auth::iot_policy::POLICY_ENV,
                    serde_json::to_string(&doc).expect("JSON values serialize"),
                );
            }
            // Groups from the user pool at every connect and refresh (its tokens' issuer must be
            // GROUPCAST_JWT_ISSUER: the function checks at cold start).
            if let Some(pool) = &cognito_pool {
                set("GROUPCAST_COGNITO_USER_POOL_ID", pool.clone());
            }
        }
        Function::IotGrant => {
            set("GROUPCAST_PROJECT", config.project.name.clone());
            if let Some(iot) = &config.iot {
                set(
                    "GROUPCAST_IOT_GROUPS",
                    serde_json::to_string(&iot.groups).expect("strings serialize"),
                );
                set(
                    "GROUPCAST_IOT_POLICY_PATTERN",
                    iot.pattern(&config.project.name),
                );
                if let Some(pool) = &iot.identity_pool_id {
                    set("GROUPCAST_COGNITO_IDENTITY_POOL_ID", pool.clone());
                }
            }
            if let Some(pool) = cognito_pool {
                set("GROUPCAST_COGNITO_USER_POOL_ID", pool);
            }
        }
    }
    env
}

/// The env files for `cargo lambda deploy --env-file`, by path under the deployed directory:
/// `KEY='VALUE'` lines. A value holding `'` or a line break cannot be quoted that way: it is left
/// out, with a comment naming it (pass it with `--env-var`).
pub(crate) fn env_files(lambdas: &BTreeMap<String, LambdaOutputs>) -> BTreeMap<String, String> {
    lambdas
        .iter()
        .map(|(binary, l)| {
            let mut text = format!(
                "# {} — written by provisioner apply for cargo lambda deploy --env-file\n",
                l.function_name
            );
            for (k, v) in &l.environment {
                if v.contains(['\'', '\n', '\r']) {
                    text.push_str(&format!(
                        "# {k} holds a quote or line break: pass it with --env-var (value in the outputs file)\n"
                    ));
                } else {
                    text.push_str(&format!("{k}='{v}'\n"));
                }
            }
            (format!("lambda/{binary}.env"), text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use groupcast::outputs::{EventsOutputs, IotOutputs, NamespaceOutputs};

    use super::*;

    /// What `apply` renders for `config` (before the API ids exist).
    fn rendered(config: &Config) -> Rendered {
        crate::render::Renderer::embedded()
            .unwrap()
            .render(config, &crate::render::Ids::default())
            .unwrap()
    }

    #[test]
    fn each_function_gets_its_role_and_the_environment_its_docs_name() {
        let config = Config::parse(
            Path::new("x.toml"),
            include_str!("../../examples/groupcast.toml"),
        )
        .unwrap();
        let outputs = Outputs {
            region: "us-east-1".to_owned(),
            events: Some(EventsOutputs {
                http_host: "abc.appsync-api.us-east-1.amazonaws.com".to_owned(),
                realtime_host: "abc.appsync-realtime-api.us-east-1.amazonaws.com".to_owned(),
                namespaces: vec![NamespaceOutputs {
                    name: "live".to_owned(),
                    arn: String::new(),
                    epoch_seconds: None,
                }],
                ..Default::default()
            }),
            iot: Some(IotOutputs {
                data_endpoint: "x-ats.iot.us-east-1.amazonaws.com".to_owned(),
                topic_prefix: "groupcast".to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let l = lambdas(&config, &outputs, &rendered(&config));
        assert_eq!(
            l.keys().collect::<Vec<_>>(),
            ["authorizer", "iot-grant", "publisher"]
        );
        let p = &l["publisher"];
        assert_eq!(p.function_name, "acme-live-publisher");
        assert_eq!(
            p.role_arn,
            "arn:aws:iam::123456789012:role/acme-live-publisher"
        );
        assert_eq!(
            p.environment["GROUPCAST_EVENTS_URL"],
            "https://abc.appsync-api.us-east-1.amazonaws.com"
        );
        assert_eq!(p.environment["GROUPCAST_TRANSPORTS"], "events,iot");
        assert_eq!(
            p.environment["GROUPCAST_IOT_GRANT_FUNCTION"], l["iot-grant"].function_name,
            "revoke invokes the iot-grant function the provisioner deploys"
        );
        let g = &l["iot-grant"];
        assert_eq!(
            g.environment["GROUPCAST_IOT_GROUPS"],
            r#"["admins","team-a","Team_B","editors"]"#
        );
        assert_eq!(
            g.environment["GROUPCAST_COGNITO_USER_POOL_ID"],
            "us-east-1_AbCdEf123"
        );
        let files = env_files(&l);
        let grant = &files["lambda/iot-grant.env"];
        assert!(
            grant.contains(
                "GROUPCAST_IOT_GROUPS='[\"admins\",\"team-a\",\"Team_B\",\"editors\"]'\n"
            ),
            "{grant}"
        );
        assert!(grant.contains("GROUPCAST_PROJECT='acme-live'\n"), "{grant}");
        assert!(grant.contains("NO_COLOR='1'\n"), "{grant}");
        let publisher = &files["lambda/publisher.env"];
        assert!(
            publisher.contains("GROUPCAST_IOT_GRANT_FUNCTION='acme-live-iot-grant'\n"),
            "{publisher}"
        );
    }

    #[test]
    fn without_iot_the_publisher_is_not_told_of_an_iot_grant_function() {
        let full = include_str!("../../examples/groupcast.toml");
        let start = full.find("[iot]").unwrap();
        let end = full.find("[publisher]").unwrap();
        let text = format!("{}{}", &full[..start], &full[end..]);
        let config = Config::parse(Path::new("x.toml"), &text).unwrap();
        assert!(config.iot.is_none());
        let l = lambdas(&config, &Outputs::default(), &rendered(&config));
        assert!(!l.contains_key("iot-grant"));
        assert!(
            !l["publisher"]
                .environment
                .contains_key("GROUPCAST_IOT_GRANT_FUNCTION"),
            "{:?}",
            l["publisher"].environment
        );
    }

    #[test]
    fn a_value_that_cannot_be_single_quoted_is_left_out_with_a_note() {
        let mut l = BTreeMap::new();
        l.insert(
            "iot-grant".to_owned(),
            LambdaOutputs {
                function_name: "f".to_owned(),
                role_arn: String::new(),
                environment: [("GROUPCAST_IOT_GROUPS".to_owned(), r#"["it's"]"#.to_owned())].into(),
            },
        );
        let text = &env_files(&l)["lambda/iot-grant.env"];
        assert!(!text.contains("it's"), "{text}");
        assert!(
            text.contains("# GROUPCAST_IOT_GROUPS holds a quote"),
            "{text}"
        );
    }

    #[test]
    fn custom_authorizer_mode_deploys_the_iot_authorizer_with_its_iot_environment() {
        let text = include_str!("../../examples/groupcast.toml").replace(
            "identity_pool_id = \"us-east-1:0f6d3c2a-1b2c-4d5e-8f90-123456789abc\"",
            "auth = \"custom-authorizer\"\nrefresh_after_seconds = 900",
        );
        let config = Config::parse(Path::new("x.toml"), &text).unwrap();
        let l = lambdas(&config, &Outputs::default(), &rendered(&config));
        assert_eq!(
            l.keys().collect::<Vec<_>>(),
            ["authorizer", "iot-authorizer", "publisher"]
        );
        let a = &l["iot-authorizer"];
        assert_eq!(a.function_name, "acme-live-iot-authorizer");
        assert_eq!(
            a.role_arn,
            "arn:aws:iam::123456789012:role/acme-live-iot-authorizer"
        );
        for (k, v) in [
            (
                "GROUPCAST_IOT_GROUPS",
                r#"["admins","team-a","Team_B","editors"]"#,
            ),
            ("GROUPCAST_IOT_REFRESH_SECS", "900"),
            ("GROUPCAST_IOT_TOKEN_KEY", "groupcast-token"),
            ("GROUPCAST_COGNITO_USER_POOL_ID", "us-east-1_AbCdEf123"),
        ] {
            assert_eq!(a.environment[k], v, "{k}");
        }
        // The group policy, whitespace-free, with the placeholders the Lambda fills in; the whole
        // environment stays well inside Lambda's 4 KB.
        let policy = &a.environment["GROUPCAST_IOT_POLICY"];
        groupcast_auth::iot_policy::PolicyTemplate::parse(policy).unwrap();
        assert!(!policy.contains(char::is_whitespace), "{policy}");
        assert!(
            policy.contains("topicfilter/groupcast/{group_level}/*"),
            "{policy}"
        );
        let total: usize = a.environment.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(total < 2048, "{total} bytes of environment");
        assert!(env_files(&l).contains_key("lambda/iot-authorizer.env"));
    }

    #[test]
    fn groups_source_user_pool_gives_the_authorizer_its_pool_and_the_token_mode_none() {
        let example = include_str!("../../examples/groupcast.toml");
        let config = Config::parse(Path::new("x.toml"), example).unwrap();
        let l = lambdas(&config, &Outputs::default(), &rendered(&config));
        let env = &l["authorizer"].environment;
        assert_eq!(env["GROUPCAST_AUTHORIZER_TTL_SECS"], "300");
        assert!(!env.contains_key("GROUPCAST_COGNITO_USER_POOL_ID"));

        let text = example.replace(
            "result_ttl_seconds = 300\n",
            "result_ttl_seconds = 30\ngroups_source = \"user-pool\"\n",
        );
        let config = Config::parse(Path::new("x.toml"), &text).unwrap();
        let l = lambdas(&config, &Outputs::default(), &rendered(&config));
        let env = &l["authorizer"].environment;
        assert_eq!(env["GROUPCAST_AUTHORIZER_TTL_SECS"], "30");
        assert_eq!(env["GROUPCAST_COGNITO_USER_POOL_ID"], "us-east-1_AbCdEf123");
        assert!(
            env_files(&l)["lambda/authorizer.env"]
                .contains("GROUPCAST_COGNITO_USER_POOL_ID='us-east-1_AbCdEf123'")
        );
    }
}
