//! The reconciler: walks the config against live state through the [`Cloud`] traits. In plan
//! mode it only records [`Change`]s; in apply mode it also makes them, resource by resource, so a
//! re-run after a failure picks up where the last run stopped (resources are found by name plus
//! the `groupcast:project` tag, and each is created with that tag in the same call).
//!
//! Deletions of the kinds in [`GUARDED_KINDS`] (APIs, namespaces, IoT policies, IAM roles) are
//! refused in apply mode unless [`Reconciler::allow_delete`]; `apply` runs a plan pass first,
//! so that refusal, and every ownership conflict, comes before the first write
//! (`commands/apply.rs`).
//!
//! Every resource goes through one path, [`Reconciler::converge`]: a *desired* state built from the
//! config and the rendered documents, the *live* state read through the traits, both in one
//! comparable [`State`] type; `converge` records the change with its diff and, in apply mode,
//! calls the create, update or delete it is given. Tags go through [`Reconciler::sync_tags`].
//!
//! Order (each step needs the one before): IAM roles (the AppSync logging role must exist before
//! an API names it), the Event API, the GraphQL API, IoT policies, then what names API ids:
//! the roles' inline policies, the identity pool role's policy and the authorizer's invoke
//! permission, rendered again with the ids just found; last the IoT sync rule (EventBridge) and
//! its permission to invoke iot-grant.
//!
//! ## Adding a resource kind
//! 1. Its live view and its calls: a type in `aws/mod.rs`, methods on the service's trait (or a
//!    new trait added to [`Cloud`]), the SDK implementation in `aws/sdk*.rs` (use the SDK's
//!    paginators), and the in-memory implementation in `aws/fake.rs`.
//! 2. Its document, if it has one: a template under `templates/` rendered in `render.rs`.
//! 3. A desired-state builder here (a function from config and rendered documents to the state)
//!    and one [`Reconciler::converge`] call in apply order, plus its deletion in `destroy`.
//! 4. Ownership: tag it with [`Config::resource_tags`] where the service allows, and refuse to
//!    change a same-named resource this project does not own.
//! 5. Its actions in `templates/iam/deployer-policy.json.tera`.
//! 6. Tests: the fake's convergence tests (`tests` below) cover it once it is in `run` and
//!    `destroy`; add a moto case in `provisioner/tests/suite/aws.rs` where moto supports it.

mod appsync;
mod events;
mod iam;
mod iot;

use std::collections::BTreeMap;

use groupcast::Outputs;
use groupcast::outputs::OUTPUTS_VERSION;
use serde::Serialize;
use sha2::Digest as _;

use crate::aws::Cloud;
use crate::config::{Config, PROJECT_TAG};
use crate::render::{Ids, Rendered, Renderer};

pub(crate) use self::iot::grant_groups;

/// The tag on the GraphQL API that records which schema was last applied successfully. AppSync
/// reformats schemas, so comparing text would report changes forever.
pub(crate) const SCHEMA_TAG: &str = "groupcast:schema-sha256";
/// The NONE data source the resolvers use.
pub(crate) const NONE_DATA_SOURCE: &str = "groupcast_none";
/// The description groupcast gives its API keys (how it finds them again).
pub(crate) const API_KEY_DESCRIPTION: &str = "groupcast";
/// The kinds whose deletion `apply` makes only with `--allow-delete`: deleting (or replacing, as
/// a rename does) one of them changes endpoints, API keys or what users may receive.
pub(crate) const GUARDED_KINDS: [&str; 6] = [
    "event-api",
    "graphql-api",
    "namespace",
    "iot-policy",
    "iot-authorizer",
    "iam-role",
];

/// One thing apply creates, updates or deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Change {
    pub(crate) action: Action,
    pub(crate) kind: &'static str,
    pub(crate) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) diff: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    Create,
    Update,
    Delete,
}

impl Change {
    /// Whether apply makes this change only with `--allow-delete` ([`GUARDED_KINDS`]).
    pub(crate) fn guarded(&self) -> bool {
        self.action == Action::Delete && GUARDED_KINDS.contains(&self.kind)
    }
}

impl Action {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+ create",
            Action::Update => "~ update",
            Action::Delete => "- delete",
        }
    }
}

/// Plan (read only) or apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Plan,
    /// `progress`: print each change on stderr as it happens.
    Apply {
        progress: bool,
    },
}

/// A resource's desired or live state in one comparable form; `text` is what a plan shows of it
/// (diffs compare two texts).
pub(crate) trait State: PartialEq {
    fn text(&self) -> String;
}

/// A JSON policy document, compared by meaning rather than text (services reformat them).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PolicyDoc(serde_json::Value);

impl PolicyDoc {
    /// The document in `text`; text that is not JSON is kept as a string, so it still compares
    /// unequal to any real document and shows in diffs.
    pub(crate) fn parse(text: &str) -> Self {
        PolicyDoc(
            serde_json::from_str(text)
                .unwrap_or_else(|_| serde_json::Value::String(text.to_owned())),
        )
    }

    /// Stands for a live document that is only going to be deleted.
    pub(crate) fn absent() -> Self {
        PolicyDoc(serde_json::Value::Null)
    }
}

impl State for PolicyDoc {
    fn text(&self) -> String {
        pretty(&self.0)
    }
}

/// Walks config against live state; see the module docs.
#[derive(Debug)]
pub(crate) struct Reconciler<'a, C> {
    cloud: &'a C,
    config: &'a Config,
    renderer: &'a Renderer,
    /// The documents rendered without API ids (the handlers, VTL and IoT policies need none).
    rendered: Rendered,
    /// The documents rendered with the API ids found or created; set by [`Self::run`].
    final_rendered: Option<Rendered>,
    mode: Mode,
    /// Whether apply may delete what [`GUARDED_KINDS`] names (`apply --allow-delete`, destroy).
    allow_delete: bool,
    pub(crate) changes: Vec<Change>,
}

fn unified(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header("deployed", "config")
        .to_string()
}

fn pretty<T: Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).expect("specs serialize") + "\n"
}

fn sha256_hex(s: &str) -> String {
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl<'a, C: Cloud> Reconciler<'a, C> {
    /// A reconciler for `config`, rendering its documents with `renderer`.
    pub(crate) fn new(
        cloud: &'a C,
        config: &'a Config,
        renderer: &'a Renderer,
        mode: Mode,
    ) -> anyhow::Result<Self> {
        Ok(Reconciler {
            cloud,
            config,
            renderer,
            rendered: renderer.render(config, &Ids::default())?,
            final_rendered: None,
            mode,
            allow_delete: false,
            changes: Vec::new(),
        })
    }

    /// Lets apply delete the kinds [`GUARDED_KINDS`] names (`apply --allow-delete`). Without it
    /// the apply pass stops before such a deletion, even one its plan pass did not show (live
    /// state that changed in between).
    pub(crate) fn allow_delete(mut self, allow: bool) -> Self {
        self.allow_delete = allow;
        self
    }

    /// Stops before a guarded deletion that was not allowed; see [`Self::allow_delete`].
    fn check_delete(&self, kind: &str, name: &str) -> anyhow::Result<()> {
        if self.applying() && !self.allow_delete && GUARDED_KINDS.contains(&kind) {
            anyhow::bail!(
                "deleting {kind} {name} needs apply --allow-delete (review it with plan first)"
            );
        }
        Ok(())
    }

    /// Whether changes are made (apply) or only recorded (plan).
    fn applying(&self) -> bool {
        matches!(self.mode, Mode::Apply { .. })
    }

    /// The documents as applied (with the API ids), after [`Self::run`]; before it, without ids.
    pub(crate) fn rendered(&self) -> &Rendered {
        self.final_rendered.as_ref().unwrap_or(&self.rendered)
    }

    fn record(
        &mut self,
        action: Action,
        kind: &'static str,
        name: impl Into<String>,
        diff: Option<String>,
    ) {
        let change = Change {
            action,
            kind,
            name: name.into(),
            diff,
        };
        // A record of every change in CI logs: one line each on stderr, terminal or not.
        if self.applying() {
            eprintln!("{} {} {}", change.action.symbol(), change.kind, change.name);
        }
        self.changes.push(change);
    }

    /// Progress for a resource that needs nothing.
    fn in_sync(&self, kind: &str, name: &str) {
        if self.mode == (Mode::Apply { progress: true }) {
            eprintln!("= {kind} {name} (in sync)");
        }
    }

    fn project(&self) -> &str {
        &self.config.project.name
    }

    fn owned(&self, tags: &BTreeMap<String, String>) -> bool {
        tags.get(PROJECT_TAG).map(String::as_str) == Some(self.project())
    }

    /// Tags to add and keys to remove so that `live` carries exactly `desired` (aws: keys stay).
    async fn sync_tags<F, G>(
        &mut self,
        kind: &'static str,
        name: &str,
        live: &BTreeMap<String, String>,
        desired: &BTreeMap<String, String>,
        tag: F,
        untag: G,
    ) -> anyhow::Result<()>
    where
        F: AsyncFnOnce(&BTreeMap<String, String>) -> anyhow::Result<()>,
        G: AsyncFnOnce(&[String]) -> anyhow::Result<()>,
    {
        let add: BTreeMap<String, String> = desired
            .iter()
            .filter(|(k, v)| live.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let remove: Vec<String> = live
            .keys()
            .filter(|k| !desired.contains_key(*k) && !k.starts_with("aws:"))
            .cloned()
            .collect();
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        self.record(
            Action::Update,
            kind,
            format!("{name} (tags)"),
            Some(unified(&pretty(live), &pretty(desired))),
        );
        if self.applying() {
            if !add.is_empty() {
                tag(&add).await?;
            }
            if !remove.is_empty() {
                untag(&remove).await?;
            }
        }
        Ok(())
    }

    /// The one create-or-update-or-delete path of every resource kind (module docs): records
    /// the change that takes `live` to `desired`, with a diff of their texts, and in apply mode
    /// makes it with `create`, `update` or `delete`. Returns what `create` or `update` returned,
    /// when one of them ran.
    #[expect(
        clippy::too_many_arguments,
        reason = "what (kind, name), the two states and the three operations of one resource"
    )]
    pub(crate) async fn converge<S: State, R>(
        &mut self,
        kind: &'static str,
        name: &str,
        live: Option<&S>,
        desired: Option<&S>,
        create: impl AsyncFnOnce(&S) -> anyhow::Result<R>,
        update: impl AsyncFnOnce(&S) -> anyhow::Result<R>,
        delete: impl AsyncFnOnce() -> anyhow::Result<()>,
    ) -> anyhow::Result<Option<R>> {
        match (live, desired) {
            (None, None) => Ok(None),
            (Some(l), Some(d)) if l == d => {
                self.in_sync(kind, name);
                Ok(None)
            }
            (None, Some(d)) => {
                self.record(Action::Create, kind, name, Some(unified("", &d.text())));
                if self.applying() {
                    return create(d).await.map(Some);
                }
                Ok(None)
            }
            (Some(l), Some(d)) => {
                self.record(
                    Action::Update,
                    kind,
                    name,
                    Some(unified(&l.text(), &d.text())),
                );
                if self.applying() {
                    return update(d).await.map(Some);
                }
                Ok(None)
            }
            (Some(_), None) => {
                self.check_delete(kind, name)?;
                self.record(Action::Delete, kind, name, None);
                if self.applying() {
                    delete().await?;
                }
                Ok(None)
            }
        }
    }

    /// Everything, in the order of the module docs.
    pub(crate) async fn run(&mut self) -> anyhow::Result<Outputs> {
        self.roles().await?;
        let events = self.events().await?;
        let graphql = self.graphql().await?;
        let iot = self.iot().await?;
        let ids = Ids {
            events_api_id: events.as_ref().map(|e| e.api_id.clone()),
            graphql_api_id: graphql.as_ref().map(|g| g.api_id.clone()),
        };
        self.final_rendered = Some(self.renderer.render(self.config, &ids)?);
        let api_arns = ApiArns {
            events: events.as_ref().map(|e| e.api_arn.clone()),
            graphql: graphql.as_ref().map(|g| g.api_arn.clone()),
        };
        self.role_policies().await?;
        self.authorizer_permissions(Some(&api_arns)).await?;
        self.iot_sync(false).await?;
        Ok(Outputs {
            version: OUTPUTS_VERSION,
            region: self.config.project.region.clone(),
            events,
            graphql,
            iot,
            lambdas: Default::default(),
        })
    }

    /// Deletes everything groupcast owns for this project: what `run` makes, in reverse.
    /// Destroy is the explicit request to delete (confirmed by the operator or `--yes`), so the
    /// deletion guard does not apply to it.
    pub(crate) async fn destroy(&mut self) -> anyhow::Result<()> {
        self.allow_delete = true;
        self.iot_sync(true).await?;
        self.authorizer_permissions(None).await?;
        self.destroy_apis().await?;
        self.destroy_iot().await?;
        self.destroy_roles().await
    }
}

/// The ARNs of the APIs that exist (or will), for the authorizer's invoke permissions.
#[derive(Debug, Clone, Default)]
pub(crate) struct ApiArns {
    pub(crate) events: Option<String>,
    pub(crate) graphql: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::aws::fake::Fake;

    const AUTHORIZER: &str = "arn:aws:lambda:us-east-1:123456789012:function:acme-live-authorizer";
    const IOT_GRANT: &str = "arn:aws:lambda:us-east-1:123456789012:function:acme-live-iot-grant";

    fn example() -> Config {
        let text = include_str!("../../../examples/groupcast.toml").replace(
            "function:groupcast-authorizer",
            "function:acme-live-authorizer",
        );
        Config::parse(Path::new("groupcast.toml"), &text).unwrap()
    }

    /// A fake account where the authorizer and iot-grant functions have been deployed.
    fn account() -> Fake {
        let fake = Fake::default();
        let mut w = fake.world.lock().unwrap();
        w.functions.insert(AUTHORIZER.to_owned(), Vec::new());
        w.functions.insert(IOT_GRANT.to_owned(), Vec::new());
        drop(w);
        fake
    }

    async fn reconcile(fake: &Fake, config: &Config, mode: Mode) -> anyhow::Result<Vec<Change>> {
        let renderer = Renderer::embedded()?;
        let mut r = Reconciler::new(fake, config, &renderer, mode)?;
        r.run().await?;
        Ok(r.changes)
    }

    async fn apply(fake: &Fake, config: &Config) -> anyhow::Result<Vec<Change>> {
        reconcile(fake, config, Mode::Apply { progress: false }).await
    }

    async fn plan(fake: &Fake, config: &Config) -> Vec<Change> {
        reconcile(fake, config, Mode::Plan).await.unwrap()
    }

    async fn destroy(fake: &Fake, config: &Config) -> anyhow::Result<Vec<Change>> {
        let renderer = Renderer::embedded()?;
        let mut r = Reconciler::new(fake, config, &renderer, Mode::Apply { progress: false })?;
        r.destroy().await?;
        Ok(r.changes)
    }

    #[tokio::test]
    async fn plan_lists_exactly_the_changes_apply_then_makes_and_a_second_plan_is_empty() {
        let config = example();
        let fake = account();
        let planned = plan(&fake, &config).await;
        assert_eq!(fake.writes(), 0, "plan wrote");
        let applied = apply(&fake, &config).await.unwrap();
        let summary = |cs: &[Change]| -> Vec<(Action, &str, String)> {
            cs.iter()
                .map(|c| (c.action, c.kind, c.name.clone()))
                .collect()
        };
        assert_eq!(summary(&planned), summary(&applied));
        assert!(applied.iter().any(|c| c.kind == "lambda-permission"));
        let again = plan(&fake, &config).await;
        assert!(again.is_empty(), "{again:#?}");
    }

    #[tokio::test]
    async fn a_changed_config_is_applied_as_updates_and_then_in_sync() {
        let fake = account();
        apply(&fake, &example()).await.unwrap();
        let text = include_str!("../../../examples/groupcast.toml")
            .replace(
                "function:groupcast-authorizer",
                "function:acme-live-authorizer",
            )
            .replace("result_ttl_seconds = 300", "result_ttl_seconds = 60")
            .replace("topic_prefix = \"groupcast\"", "topic_prefix = \"gc2\"");
        let changed = Config::parse(Path::new("groupcast.toml"), &text).unwrap();
        let applied = apply(&fake, &changed).await.unwrap();
        let updated: Vec<(&str, &str)> = applied
            .iter()
            .filter(|c| c.action == Action::Update)
            .map(|c| (c.kind, c.name.as_str()))
            .collect();
        assert!(
            updated.contains(&("event-api", "acme-live-events")),
            "{updated:?}"
        );
        assert!(
            updated.contains(&("iot-policy", "acme-live-admins")),
            "{updated:?}"
        );
        assert!(
            updated.contains(&("iam-role-policy", "acme-live-publisher/groupcast")),
            "{updated:?}"
        );
        assert!(plan(&fake, &changed).await.is_empty());
        let w = fake.world.lock().unwrap().clone();
        let api = w.event_apis.values().next().unwrap();
        let ttl = api
            .config
            .as_ref()
            .unwrap()
            .auth_providers
            .iter()
            .find_map(|p| p.lambda.as_ref());
        assert_eq!(ttl.unwrap().ttl_seconds, 60);
        assert!(
            w.policies["acme-live-admins"]
                .0
                .document
                .contains("topic/gc2/")
        );
    }

    #[tokio::test]
    async fn the_revoke_resolver_is_applied_on_the_none_data_source_and_a_stale_one_is_updated() {
        let fake = account();
        let config = example();
        apply(&fake, &config).await.unwrap();
        let revoke = |fake: &Fake| {
            let w = fake.world.lock().unwrap();
            let resolvers = w.resolvers.values().next().unwrap().clone();
            resolvers
                .into_iter()
                .find(|r| r.type_name == "Mutation" && r.field_name == "revoke")
        };
        let live = revoke(&fake).expect("apply created Mutation.revoke");
        assert_eq!(live.data_source, NONE_DATA_SOURCE);
        assert!(
            live.response.contains(
                "$extensions.invalidateSubscriptions({\"subscriptionField\": \"subscribe\""
            ),
            "{}",
            live.response
        );
        assert!(
            live.request.contains("$util.unauthorized()"),
            "the revoke request template admits only the publisher principals"
        );
        // A resolver changed behind the provisioner's back is put back by the next apply.
        {
            let mut w = fake.world.lock().unwrap();
            for r in w.resolvers.values_mut().flatten() {
                if r.field_name == "revoke" {
                    r.response = "$util.toJson($ctx.result)".to_owned();
                }
            }
        }
        let applied = apply(&fake, &config).await.unwrap();
        assert!(
            applied.iter().any(|c| c.action == Action::Update
                && c.kind == "resolver"
                && c.name == "Mutation.revoke"),
            "{applied:#?}"
        );
        assert_eq!(revoke(&fake).unwrap(), live);
        assert!(plan(&fake, &config).await.is_empty());
    }

    #[tokio::test]
    async fn a_failure_at_any_write_call_converges_on_the_next_apply() {
        let config = example();
        let clean = account();
        apply(&clean, &config).await.unwrap();
        let writes = clean.writes();
        assert!(writes > 10, "{writes} writes");
        for k in 1..=writes {
            let fake = account();
            *fake.fail_at.lock().unwrap() = Some(k);
            let e = format!("{:#}", apply(&fake, &config).await.unwrap_err());
            assert!(e.contains("InjectedFailure"), "write {k}: {e}");
            *fake.fail_at.lock().unwrap() = None;
            apply(&fake, &config)
                .await
                .unwrap_or_else(|e| panic!("rerun after failing write {k}: {e:#}"));
            let left = plan(&fake, &config).await;
            assert!(left.is_empty(), "after failing write {k}: {left:#?}");
            let (a, b) = (fake.world.lock().unwrap(), clean.world.lock().unwrap());
            assert_eq!(a.event_apis.len(), b.event_apis.len(), "write {k}");
            assert_eq!(a.graphql_apis.len(), b.graphql_apis.len(), "write {k}");
            assert_eq!(a.policies.len(), b.policies.len(), "write {k}");
            assert_eq!(a.roles.len(), b.roles.len(), "write {k}");
            assert_eq!(a.role_policies.len(), b.role_policies.len(), "write {k}");
            assert_eq!(a.rules, b.rules, "write {k}");
            assert_eq!(a.functions, b.functions, "write {k}");
        }
    }

    #[tokio::test]
    async fn destroy_leaves_nothing_the_project_owns_and_a_second_destroy_changes_nothing() {
        let config = example();
        let fake = account();
        apply(&fake, &config).await.unwrap();
        // Someone else's policy that matches the name pattern but is not tagged for us.
        fake.world.lock().unwrap().policies.insert(
            "acme-live-visitors".to_owned(),
            (
                crate::aws::Policy {
                    name: "acme-live-visitors".to_owned(),
                    arn: "arn:aws:iot:us-east-1:123456789012:policy/acme-live-visitors".to_owned(),
                    document: "{}".to_owned(),
                    default_version: "1".to_owned(),
                },
                vec![("1".to_owned(), "{}".to_owned())],
                BTreeMap::new(),
                Vec::new(),
            ),
        );
        let deleted = destroy(&fake, &config).await.unwrap();
        assert!(
            deleted.iter().all(|c| c.action == Action::Delete),
            "{deleted:#?}"
        );
        let w = fake.world.lock().unwrap().clone();
        assert!(w.event_apis.is_empty() && w.graphql_apis.is_empty());
        assert_eq!(
            w.policies.keys().collect::<Vec<_>>(),
            ["acme-live-visitors"]
        );
        assert!(w.roles.is_empty() && w.role_policies.is_empty());
        assert!(w.functions[AUTHORIZER].is_empty(), "{:?}", w.functions);
        assert!(w.functions[IOT_GRANT].is_empty(), "{:?}", w.functions);
        assert!(w.rules.is_empty(), "{:?}", w.rules);
        assert!(destroy(&fake, &config).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn appsync_may_invoke_the_authorizer_only_from_the_event_api() {
        let config = example();
        let fake = account();
        apply(&fake, &config).await.unwrap();
        let w = fake.world.lock().unwrap().clone();
        let api = w.event_apis.values().next().unwrap();
        let perms = &w.functions[AUTHORIZER];
        assert_eq!(perms.len(), 1);
        assert_eq!(perms[0].principal, "appsync.amazonaws.com");
        assert_eq!(perms[0].action, "lambda:InvokeFunction");
        assert_eq!(perms[0].source_arn.as_deref(), Some(api.arn.as_str()));
    }

    #[tokio::test]
    async fn an_authorizer_not_deployed_yet_is_reported_and_granted_on_the_next_apply() {
        let config = example();
        let fake = Fake::default();
        let applied = apply(&fake, &config).await.unwrap();
        let pending: Vec<_> = applied
            .iter()
            .filter(|c| c.kind == "lambda-permission")
            .collect();
        // The authorizer's: an API needs it. (iot-grant's permission for the IoT sync rule is
        // only a note until the function is deployed; it is added by the apply after that.)
        assert_eq!(pending.len(), 1);
        assert!(
            pending[0].name.contains("does not exist yet")
                && pending[0].name.starts_with(AUTHORIZER),
            "{pending:?}"
        );
        assert_eq!(plan(&fake, &config).await.len(), 1);
        for function in [AUTHORIZER, IOT_GRANT] {
            fake.world
                .lock()
                .unwrap()
                .functions
                .insert(function.to_owned(), Vec::new());
        }
        let applied = apply(&fake, &config).await.unwrap();
        assert!(
            applied
                .iter()
                .any(|c| c.kind == "lambda-permission" && c.name.starts_with(IOT_GRANT)),
            "{applied:#?}"
        );
        assert!(plan(&fake, &config).await.is_empty());
    }

    #[tokio::test]
    async fn expired_api_keys_are_deleted_and_a_valid_one_is_kept() {
        let config = example();
        let fake = account();
        apply(&fake, &config).await.unwrap();
        let (api_id, key) = {
            let mut w = fake.world.lock().unwrap();
            let id = w.event_apis.keys().next().unwrap().clone();
            let keys = w.api_keys.get_mut(&id).unwrap();
            assert_eq!(keys.len(), 1);
            // The key has expired: the next apply makes a new one and deletes it.
            keys[0].expires = 1;
            (id, keys[0].id.clone())
        };
        apply(&fake, &config).await.unwrap();
        let w = fake.world.lock().unwrap().clone();
        let keys = &w.api_keys[&api_id];
        assert_eq!(keys.len(), 1);
        assert_ne!(keys[0].id, key);
    }

    #[tokio::test]
    async fn the_outputs_carry_each_namespaces_epoch_seconds_and_omit_it_when_off() {
        let text = include_str!("../../../examples/groupcast.toml").replace(
            "function:groupcast-authorizer",
            "function:acme-live-authorizer",
        );
        assert!(
            text.contains("epoch_seconds = 300"),
            "the example's jobs has epochs"
        );
        let config = Config::parse(Path::new("groupcast.toml"), &text).unwrap();
        let fake = account();
        let renderer = Renderer::embedded().unwrap();
        let mut r =
            Reconciler::new(&fake, &config, &renderer, Mode::Apply { progress: false }).unwrap();
        let outputs = r.run().await.unwrap();
        let namespaces = &outputs.events.as_ref().unwrap().namespaces;
        let epochs: Vec<(&str, Option<u64>)> = namespaces
            .iter()
            .map(|n| (n.name.as_str(), n.epoch_seconds))
            .collect();
        assert_eq!(epochs, [("live", None), ("jobs", Some(300))]);
        let json = serde_json::to_value(&outputs).unwrap();
        assert_eq!(json["events"]["namespaces"][1]["epochSeconds"], 300);
        assert!(
            json["events"]["namespaces"][0]
                .get("epochSeconds")
                .is_none()
        );
    }

    #[tokio::test]
    async fn namespace_tags_follow_the_config() {
        let mut config = example();
        let fake = account();
        apply(&fake, &config).await.unwrap();
        config.tags.insert("team".to_owned(), "realtime".to_owned());
        let changes = apply(&fake, &config).await.unwrap();
        assert!(
            changes
                .iter()
                .any(|c| c.kind == "namespace" && c.name == "live (tags)"),
            "{changes:#?}"
        );
        let w = fake.world.lock().unwrap().clone();
        for ns in w.namespaces.values().flatten() {
            assert_eq!(ns.tags["team"], "realtime");
        }
    }

    #[tokio::test]
    async fn an_api_listed_without_an_event_config_is_never_deleted() {
        let config = example();
        let fake = account();
        // A tagged entry of ListApis that is not an Event API.
        let mut tags = config.resource_tags();
        tags.insert("kind".to_owned(), "other".to_owned());
        fake.world.lock().unwrap().event_apis.insert(
            "other".to_owned(),
            crate::aws::EventApi {
                id: "other".to_owned(),
                name: "not-events".to_owned(),
                arn: "arn:aws:appsync:us-east-1:123456789012:apis/other".to_owned(),
                tags,
                http_host: String::new(),
                realtime_host: String::new(),
                config: None,
            },
        );
        apply(&fake, &config).await.unwrap();
        destroy(&fake, &config).await.unwrap();
        assert!(fake.world.lock().unwrap().event_apis.contains_key("other"));
    }

    #[tokio::test]
    async fn the_iot_sync_rule_sends_the_sync_request_for_cognitos_group_changes_to_iot_grant_only()
    {
        let config = example();
        let fake = account();
        let applied = apply(&fake, &config).await.unwrap();
        assert!(
            applied
                .iter()
                .any(|c| c.kind == "eventbridge-rule" && c.name == "acme-live-iot-sync"),
            "{applied:#?}"
        );
        let w = fake.world.lock().unwrap().clone();
        let rule = &w.rules["acme-live-iot-sync"];
        assert_eq!(rule.tags[PROJECT_TAG], "acme-live");
        assert_eq!(rule.spec.state, "ENABLED");
        let pattern = &rule.spec.event_pattern;
        assert_eq!(pattern["source"], serde_json::json!(["aws.cognito-idp"]));
        assert_eq!(
            pattern["detail-type"],
            serde_json::json!(["AWS API Call via CloudTrail"])
        );
        assert_eq!(
            pattern["detail"]["eventName"],
            serde_json::json!([
                "AdminRemoveUserFromGroup",
                "AdminDeleteUser",
                "AdminDisableUser"
            ])
        );
        let (pool, _) = config.cognito_user_pool().unwrap();
        assert_eq!(
            pattern["detail"]["requestParameters"]["userPoolId"],
            serde_json::json!([pool])
        );
        assert_eq!(rule.spec.targets.len(), 1);
        let target = &rule.spec.targets[0];
        assert_eq!(target.arn, IOT_GRANT);
        assert_eq!(
            target.input_paths["sub"],
            "$.detail.additionalEventData.sub"
        );
        // What EventBridge sends for sub "abc": exactly iot-grant's sync request.
        let sent = target.input_template.replace("<sub>", "\"abc\"");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&sent).unwrap(),
            serde_json::json!({"sync": {"user": "abc"}})
        );
        // EventBridge may invoke iot-grant from this rule only; nothing else gained a permission.
        let perms = &w.functions[IOT_GRANT];
        assert_eq!(perms.len(), 1, "{perms:?}");
        assert_eq!(perms[0].principal, "events.amazonaws.com");
        assert_eq!(perms[0].action, "lambda:InvokeFunction");
        assert_eq!(perms[0].source_arn.as_deref(), Some(rule.arn.as_str()));
        assert!(
            w.functions[AUTHORIZER]
                .iter()
                .all(|p| p.principal == "appsync.amazonaws.com")
        );
    }

    #[tokio::test]
    async fn a_config_without_a_cognito_user_pool_has_no_iot_sync_rule_and_apply_removes_an_old_one()
     {
        let fake = account();
        apply(&fake, &example()).await.unwrap();
        // The same project without any Cognito provider: iot-grant cannot read groups, no rule.
        let text = include_str!("../../../examples/groupcast.toml").replace(
            "function:groupcast-authorizer",
            "function:acme-live-authorizer",
        );
        let mut config = Config::parse(Path::new("groupcast.toml"), &text).unwrap();
        if let Some(e) = config.events.as_mut() {
            e.auth.cognito = None;
        }
        if let Some(g) = config.graphql.as_mut() {
            g.auth.cognito = None;
        }
        assert_eq!(config.iot_sync_rule_name(), None);
        let applied = apply(&fake, &config).await.unwrap();
        assert!(
            applied
                .iter()
                .any(|c| c.kind == "eventbridge-rule" && c.action == Action::Delete),
            "{applied:#?}"
        );
        let w = fake.world.lock().unwrap().clone();
        assert!(w.rules.is_empty());
        assert!(w.functions[IOT_GRANT].is_empty(), "{:?}", w.functions);
    }

    #[tokio::test]
    async fn a_same_named_rule_of_another_owner_is_never_changed() {
        let config = example();
        let fake = account();
        let foreign = crate::aws::Rule {
            name: "acme-live-iot-sync".to_owned(),
            arn: "arn:aws:events:us-east-1:123456789012:rule/acme-live-iot-sync".to_owned(),
            spec: crate::aws::RuleSpec {
                description: "someone else's".to_owned(),
                state: "ENABLED".to_owned(),
                event_pattern: serde_json::json!({"source": ["x"]}),
                targets: Vec::new(),
            },
            tags: BTreeMap::new(),
        };
        fake.world
            .lock()
            .unwrap()
            .rules
            .insert(foreign.name.clone(), foreign.clone());
        let e = format!("{:#}", apply(&fake, &config).await.unwrap_err());
        assert!(
            e.contains("acme-live-iot-sync") && e.contains("not tagged"),
            "{e}"
        );
        destroy(&fake, &config).await.unwrap();
        assert_eq!(
            fake.world.lock().unwrap().rules["acme-live-iot-sync"],
            foreign
        );
    }

    const IOT_AUTHORIZER_FN: &str =
        "arn:aws:lambda:us-east-1:123456789012:function:acme-live-iot-authorizer";

    /// The example in custom-authorizer mode (no identity pool keys, which that mode refuses).
    fn custom_authorizer() -> Config {
        let text = include_str!("../../../examples/groupcast.toml")
            .replace(
                "function:groupcast-authorizer",
                "function:acme-live-authorizer",
            )
            .replace(
                "identity_pool_id = \"us-east-1:0f6d3c2a-1b2c-4d5e-8f90-123456789abc\"",
                "auth = \"custom-authorizer\"\nrefresh_after_seconds = 900",
            );
        Config::parse(Path::new("groupcast.toml"), &text).unwrap()
    }

    async fn apply_deleting(fake: &Fake, config: &Config) -> anyhow::Result<Vec<Change>> {
        let renderer = Renderer::embedded()?;
        let mut r = Reconciler::new(fake, config, &renderer, Mode::Apply { progress: false })?
            .allow_delete(true);
        r.run().await?;
        Ok(r.changes)
    }

    #[tokio::test]
    async fn custom_authorizer_mode_makes_the_authorizer_its_role_and_iot_s_invoke_permission_and_no_policies()
     {
        let config = custom_authorizer();
        let fake = account();
        fake.world
            .lock()
            .unwrap()
            .functions
            .insert(IOT_AUTHORIZER_FN.to_owned(), Vec::new());
        let planned = plan(&fake, &config).await;
        assert!(
            planned
                .iter()
                .any(|c| c.kind == "iot-authorizer" && c.action == Action::Create),
            "{planned:#?}"
        );
        let applied = apply(&fake, &config).await.unwrap();
        let summary = |cs: &[Change]| -> Vec<(Action, &str, String)> {
            cs.iter()
                .map(|c| (c.action, c.kind, c.name.clone()))
                .collect()
        };
        assert_eq!(summary(&planned), summary(&applied));
        let w = fake.world.lock().unwrap().clone();
        let (authorizer, tags) = &w.authorizers["acme-live-iot-authorizer"];
        assert_eq!(authorizer.spec.authorizer_function_arn, IOT_AUTHORIZER_FN);
        assert!(authorizer.spec.signing_disabled);
        assert_eq!(authorizer.spec.status, "ACTIVE");
        assert_eq!(authorizer.spec.token_key_name, "groupcast-token");
        assert_eq!(tags[PROJECT_TAG], "acme-live");
        assert!(
            w.policies.is_empty(),
            "no group policies: {:?}",
            w.policies.keys()
        );
        assert!(w.roles.contains_key("acme-live-iot-authorizer"));
        assert!(!w.roles.contains_key("acme-live-iot-grant"));
        let perms = &w.functions[IOT_AUTHORIZER_FN];
        assert_eq!(perms.len(), 1);
        assert_eq!(perms[0].principal, "iot.amazonaws.com");
        assert_eq!(perms[0].action, "lambda:InvokeFunction");
        assert_eq!(
            perms[0].source_arn.as_deref(),
            Some("arn:aws:iot:us-east-1:123456789012:authorizer/acme-live-iot-authorizer")
        );
        drop(w);
        assert!(plan(&fake, &config).await.is_empty());
        // destroy removes the authorizer and IoT's statement with the rest.
        destroy(&fake, &config).await.unwrap();
        let w = fake.world.lock().unwrap().clone();
        assert!(w.authorizers.is_empty());
        assert!(w.functions[IOT_AUTHORIZER_FN].is_empty());
    }

    #[tokio::test]
    async fn switching_iot_modes_removes_what_the_other_mode_made_and_only_with_allow_delete() {
        let pool = example();
        let custom = custom_authorizer();
        let fake = account();
        fake.world
            .lock()
            .unwrap()
            .functions
            .insert(IOT_AUTHORIZER_FN.to_owned(), Vec::new());
        apply(&fake, &pool).await.unwrap();
        assert_eq!(fake.world.lock().unwrap().policies.len(), 4);
        // The group policies go: a guarded deletion.
        let e = format!("{:#}", apply(&fake, &custom).await.unwrap_err());
        assert!(e.contains("--allow-delete"), "{e}");
        apply_deleting(&fake, &custom).await.unwrap();
        {
            let w = fake.world.lock().unwrap();
            assert!(w.policies.is_empty());
            assert_eq!(w.authorizers.len(), 1);
            assert!(!w.roles.contains_key("acme-live-iot-grant"));
        }
        assert!(plan(&fake, &custom).await.is_empty());
        // Back to identity-pool: the authorizer (a way in) goes too.
        let back = plan(&fake, &pool).await;
        assert!(
            back.iter()
                .any(|c| c.kind == "iot-authorizer" && c.action == Action::Delete && c.guarded()),
            "{back:#?}"
        );
        apply_deleting(&fake, &pool).await.unwrap();
        let w = fake.world.lock().unwrap().clone();
        assert!(w.authorizers.is_empty());
        assert_eq!(w.policies.len(), 4);
        drop(w);
        assert!(plan(&fake, &pool).await.is_empty());
    }

    #[tokio::test]
    async fn an_authorizer_of_the_same_name_without_the_project_tag_is_never_changed() {
        let config = custom_authorizer();
        let fake = account();
        let spec = crate::aws::AuthorizerSpec {
            authorizer_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:theirs"
                .to_owned(),
            token_key_name: "t".to_owned(),
            signing_disabled: false,
            status: "ACTIVE".to_owned(),
            enable_caching_for_http: false,
        };
        use crate::aws::Iot as _;
        fake.create_authorizer("acme-live-iot-authorizer", &spec, &BTreeMap::new())
            .await
            .unwrap();
        let e = format!("{:#}", apply(&fake, &config).await.unwrap_err());
        assert!(e.contains("not tagged groupcast:project=acme-live"), "{e}");
        let w = fake.world.lock().unwrap().clone();
        assert_eq!(w.authorizers["acme-live-iot-authorizer"].0.spec, spec);
        // An identity-pool config leaves it alone too (its roles from the failed run go).
        drop(w);
        apply_deleting(&fake, &example()).await.unwrap();
        assert_eq!(fake.world.lock().unwrap().authorizers.len(), 1);
    }
}
