//! `provisioner apply`: make live state match the config, then write the outputs file and the
//! documents rendered with the real ids.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use groupcast::Outputs;

use super::lock::Lock;
use super::saved_plan::SavedPlan;
use super::{Global, OutputFormat, TemplateArgs};
use crate::aws::Cloud;
use crate::config::Config;
use crate::reconcile::{Change, Mode, Reconciler};
use crate::render::Renderer;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A plan file from `plan --out`: apply exactly that plan, refusing if the config, the
    /// rendered documents or live state changed since it was written.
    #[arg(value_name = "PLAN_FILE")]
    pub(crate) plan_file: Option<PathBuf>,
    /// The same as the PLAN_FILE argument.
    #[arg(long = "plan", value_name = "FILE", conflicts_with = "plan_file")]
    pub(crate) plan: Option<PathBuf>,
    /// Allow deleting (or replacing, as a rename does) an API, a namespace, an IoT policy or an
    /// IAM role. Without it apply refuses before its first change, listing those deletions.
    #[arg(long)]
    pub(crate) allow_delete: bool,
    /// Where to write the outputs JSON (the publish library reads it).
    #[arg(long, value_name = "FILE", default_value = "groupcast.outputs.json")]
    pub(crate) outputs: PathBuf,
    /// Where to write the documents rendered with the real API ids.
    #[arg(long, value_name = "DIR", default_value = "groupcast.deployed")]
    pub(crate) out: PathBuf,
    /// Print API keys on stdout (`--output json`); by default they are redacted there, since
    /// stdout often ends up in CI logs. The outputs file always holds them (mode 0600).
    #[arg(long)]
    pub(crate) show_secrets: bool,
    #[command(flatten)]
    pub(crate) templates: TemplateArgs,
}

/// The outputs with every API key replaced by a placeholder.
fn redacted(outputs: &Outputs) -> Outputs {
    let mut o = outputs.clone();
    let hide = |k: &mut Option<String>| {
        if k.is_some() {
            *k = Some("(redacted: see the outputs file, or pass --show-secrets)".to_owned());
        }
    };
    if let Some(e) = o.events.as_mut() {
        hide(&mut e.api_key);
    }
    if let Some(g) = o.graphql.as_mut() {
        hide(&mut g.api_key);
    }
    o
}

/// Writes `text` to `path` atomically (a temporary file beside it, renamed over it) and, on
/// Unix, readable by the owner only: the outputs file holds API keys.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir
        .unwrap_or(Path::new("."))
        .join(format!(".{name}.tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// Refuses, listing them, the deletions [`crate::reconcile::GUARDED_KINDS`] names unless
/// `--allow-delete` was given.
fn check_guards(changes: &[Change], allow_delete: bool) -> anyhow::Result<()> {
    let guarded: Vec<String> = changes
        .iter()
        .filter(|c| c.guarded())
        .map(|c| format!("  {} {} {}", c.action.symbol(), c.kind, c.name))
        .collect();
    if guarded.is_empty() || allow_delete {
        return Ok(());
    }
    anyhow::bail!(
        "apply would delete {} resource(s) and needs --allow-delete for that; nothing was changed \
         (a renamed API or policy is deleted and created anew: new endpoint, new API key, users \
         detached):\n{}",
        guarded.len(),
        guarded.join("\n")
    )
}

/// The plan pass, its checks, then the apply pass; returns the applying reconciler (its changes
/// and documents) and the outputs.
async fn staged<'a, C: Cloud>(
    cloud: &'a C,
    config: &'a Config,
    renderer: &'a Renderer,
    saved: Option<&SavedPlan>,
    allow_delete: bool,
    progress: bool,
) -> anyhow::Result<(Reconciler<'a, C>, Outputs)> {
    let mut planned = Reconciler::new(cloud, config, renderer, Mode::Plan)?;
    planned.run().await?;
    if let Some(saved) = saved {
        saved.check_changes(&planned.changes)?;
    }
    check_guards(&planned.changes, allow_delete)?;
    let mut r = Reconciler::new(cloud, config, renderer, Mode::Apply { progress })?
        .allow_delete(allow_delete);
    let outputs = r.run().await?;
    Ok((r, outputs))
}

/// Applies `config` in two passes: the whole plan, read only (ownership conflicts, the
/// `--allow-delete` guard and a saved plan are checked there, before the first write), then the
/// apply pass.
pub(crate) async fn run(global: &Global, config: &Config, args: Args) -> anyhow::Result<ExitCode> {
    let renderer = args.templates.renderer()?;
    let saved = match args.plan_file.as_ref().or(args.plan.as_ref()) {
        Some(path) => {
            let plan = SavedPlan::read(path)?;
            plan.check_inputs(&global.config, config, &renderer)?;
            Some(plan)
        }
        None => None,
    };
    let _lock = Lock::acquire(&args.outputs, config, "apply")?;
    let cloud = global.aws.connect(config).await?;
    let progress = std::io::stderr().is_terminal() && global.output == OutputFormat::Text;
    let (r, mut outputs) = staged(
        &cloud,
        config,
        &renderer,
        saved.as_ref(),
        args.allow_delete,
        progress,
    )
    .await?;
    outputs.lambdas = crate::lambdas::lambdas(config, &outputs, r.rendered());
    write_private(&args.outputs, &(outputs.to_json_pretty() + "\n"))
        .with_context(|| format!("writing {}", args.outputs.display()))?;
    // The documents as applied (rendered with the real API ids), and the functions' env files.
    let mut deployed = r.rendered().clone();
    deployed
        .files
        .extend(crate::lambdas::env_files(&outputs.lambdas));
    deployed.write(&args.out)?.eprint_removed();
    match global.output {
        OutputFormat::Json => {
            let shown = if args.show_secrets {
                outputs.clone()
            } else {
                redacted(&outputs)
            };
            outln!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "changes": r.changes,
                    "outputs": shown,
                }))?
            )
        }
        OutputFormat::Text => {
            let n = r.changes.len();
            outln!(
                "Applied {n} change(s). Outputs: {}. Documents with real ids: {}/",
                args.outputs.display(),
                args.out.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::aws::fake::Fake;

    fn config(text: &str) -> Config {
        Config::parse(Path::new("groupcast.toml"), text).unwrap()
    }

    fn example() -> String {
        include_str!("../../../examples/groupcast.toml").to_owned()
    }

    async fn apply(
        fake: &Fake,
        config: &Config,
        saved: Option<&SavedPlan>,
        allow_delete: bool,
    ) -> anyhow::Result<Vec<Change>> {
        let renderer = Renderer::embedded()?;
        let (r, _) = staged(fake, config, &renderer, saved, allow_delete, false).await?;
        Ok(r.changes)
    }

    /// A fake account where the example's Lambda authorizer and iot-grant function exist (so a
    /// converged plan is empty).
    fn account() -> Fake {
        let fake = Fake::default();
        let c = config(&example());
        let arn = c.events.as_ref().unwrap().auth.lambda.as_ref().unwrap();
        let mut w = fake.world.lock().unwrap();
        w.functions.insert(arn.authorizer_arn.clone(), Vec::new());
        w.functions.insert(
            c.function_arn(crate::config::Function::IotGrant),
            Vec::new(),
        );
        drop(w);
        fake
    }

    async fn plan(fake: &Fake, config: &Config) -> Vec<Change> {
        let renderer = Renderer::embedded().unwrap();
        let mut r = Reconciler::new(fake, config, &renderer, Mode::Plan).unwrap();
        r.run().await.unwrap();
        r.changes
    }

    /// The example without its `jobs` namespace and its `editors` IoT group.
    fn smaller() -> String {
        example()
            .replace("[[events.namespaces]]\nname = \"jobs\"\n", "")
            .replace(", \"editors\"]", "]")
    }

    #[tokio::test]
    async fn deleting_a_namespace_or_an_iot_policy_is_refused_without_allow_delete_before_any_write()
     {
        let fake = account();
        apply(&fake, &config(&example()), None, false)
            .await
            .unwrap();
        // Someone holds the editors' policy: the refusal says so.
        fake.world
            .lock()
            .unwrap()
            .policies
            .get_mut("acme-live-editors")
            .unwrap()
            .3
            .push("us-east-1:0f6d2a8e-0000-4000-8000-000000000001".to_owned());
        let before = fake.world.lock().unwrap().clone();
        let writes = fake.writes();
        let smaller = config(&smaller());
        let e = format!(
            "{:#}",
            apply(&fake, &smaller, None, false).await.unwrap_err()
        );
        assert!(
            e.contains("apply would delete 2 resource(s) and needs --allow-delete"),
            "{e}"
        );
        assert!(e.contains("\n  - delete namespace jobs"), "{e}");
        assert!(
            e.contains("\n  - delete iot-policy acme-live-editors (attached to 1 identity)"),
            "{e}"
        );
        assert_eq!(fake.writes(), writes, "a refused apply wrote");
        assert!(*fake.world.lock().unwrap() == before);

        let done = apply(&fake, &smaller, None, true).await.unwrap();
        assert_eq!(done.iter().filter(|c| c.guarded()).count(), 2, "{done:#?}");
        assert!(
            !fake
                .world
                .lock()
                .unwrap()
                .policies
                .contains_key("acme-live-editors")
        );
        assert!(plan(&fake, &smaller).await.is_empty());
    }

    #[tokio::test]
    async fn a_renamed_api_is_a_guarded_deletion_and_updates_alone_need_no_flag() {
        let fake = account();
        apply(&fake, &config(&example()), None, false)
            .await
            .unwrap();
        let renamed = config(&example().replace("acme-live-events", "acme-live-events2"));
        let e = format!(
            "{:#}",
            apply(&fake, &renamed, None, false).await.unwrap_err()
        );
        assert!(e.contains("  - delete event-api acme-live-events ("), "{e}");
        let updated =
            config(&example().replace("result_ttl_seconds = 300", "result_ttl_seconds = 60"));
        let changes = apply(&fake, &updated, None, false).await.unwrap();
        assert!(
            changes
                .iter()
                .any(|c| c.action == crate::reconcile::Action::Update)
        );
    }

    #[tokio::test]
    async fn the_apply_pass_alone_still_stops_before_a_guarded_deletion() {
        let fake = account();
        apply(&fake, &config(&example()), None, false)
            .await
            .unwrap();
        let smaller = config(&smaller());
        let renderer = Renderer::embedded().unwrap();
        let mut r =
            Reconciler::new(&fake, &smaller, &renderer, Mode::Apply { progress: false }).unwrap();
        let e = format!("{:#}", r.run().await.unwrap_err());
        assert!(
            e.contains("deleting namespace jobs needs apply --allow-delete"),
            "{e}"
        );
        assert!(
            fake.world
                .lock()
                .unwrap()
                .namespaces
                .values()
                .flatten()
                .any(|n| n.spec.name == "jobs")
        );
    }

    #[tokio::test]
    async fn an_ownership_conflict_stops_apply_before_its_first_write() {
        let fake = account();
        let c = config(&example());
        // An untagged GraphQL API of the configured name: the IAM roles come earlier in apply
        // order, and still none is created.
        fake.world.lock().unwrap().graphql_apis.insert(
            "theirs".to_owned(),
            crate::aws::GraphqlApi {
                id: "theirs".to_owned(),
                name: "acme-live-pubsub".to_owned(),
                arn: "arn:aws:appsync:us-east-1:123456789012:apis/theirs".to_owned(),
                tags: Default::default(),
                url: String::new(),
                realtime_url: None,
                spec: crate::aws::GraphqlApiSpec {
                    authentication_type: "AWS_IAM".to_owned(),
                    additional: Vec::new(),
                    log_config: None,
                },
            },
        );
        let e = format!("{:#}", apply(&fake, &c, None, false).await.unwrap_err());
        assert!(
            e.contains("is not tagged groupcast:project=acme-live"),
            "{e}"
        );
        assert_eq!(fake.writes(), 0);
    }

    #[tokio::test]
    async fn a_saved_plan_is_applied_only_while_live_state_still_matches_it() {
        let dir = std::env::temp_dir().join(format!("groupcast-saved-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("groupcast.toml");
        std::fs::write(&path, example()).unwrap();
        let c = config(&example());
        let renderer = Renderer::embedded().unwrap();
        let fake = account();
        let saved = SavedPlan::new(&path, &c, &renderer, &plan(&fake, &c).await).unwrap();
        saved.check_inputs(&path, &c, &renderer).unwrap();
        // Another run applied everything meanwhile, then someone deleted a namespace: the plan
        // (create everything) no longer holds.
        let other = account();
        apply(&other, &c, None, false).await.unwrap();
        other
            .world
            .lock()
            .unwrap()
            .namespaces
            .values_mut()
            .for_each(|l| l.retain(|n| n.spec.name != "jobs"));
        let e = format!(
            "{:#}",
            apply(&other, &c, Some(&saved), false).await.unwrap_err()
        );
        assert!(
            e.contains("live state changed since the plan was saved"),
            "{e}"
        );
        assert!(
            e.contains("  no longer needed: + create event-api acme-live-events\n"),
            "{e}"
        );
        assert!(
            !e.contains("create namespace jobs"),
            "still planned alike: {e}"
        );
        // Unchanged live state: applied.
        apply(&fake, &c, Some(&saved), false).await.unwrap();
        assert!(plan(&fake, &c).await.is_empty());
        // The config file changed: refused offline.
        std::fs::write(&path, example() + "\n# edited\n").unwrap();
        let e = format!(
            "{:#}",
            saved.check_inputs(&path, &c, &renderer).unwrap_err()
        );
        assert!(
            e.contains("is not the one the plan was computed from"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
