//! The AWS subcommands' entry points: plan, apply, destroy and `iot grant`. Each builds the SDK
//! clients, runs the [`Reconciler`] (or [`grant_groups`]) and prints the result as text or JSON.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::aws;
use crate::cli::{ApplyArgs, Global, GrantArgs, OutputFormat, PlanArgs, renderer};
use crate::config::Config;
use crate::reconcile::{Action, Change, Reconciler, grant_groups};
use crate::render::{Ids, Rendered};

fn print_changes(changes: &[Change]) {
    for c in changes {
        println!("{} {} {}", c.action.symbol(), c.kind, c.name);
        if let Some(d) = &c.diff {
            for line in d.lines() {
                println!("    {line}");
            }
        }
    }
    let count = |a| changes.iter().filter(|c| c.action == a).count();
    println!(
        "Plan: {} to create, {} to update, {} to delete.",
        count(Action::Create),
        count(Action::Update),
        count(Action::Delete)
    );
}

async fn clients(
    global: &Global,
    config: &Config,
) -> anyhow::Result<(aws::SdkAppSync, aws::SdkIot)> {
    let sdk = aws::sdk_config(global, config).await?;
    Ok((aws::SdkAppSync::new(&sdk), aws::SdkIot::new(&sdk)))
}

/// `provisioner plan`.
pub(crate) async fn plan(
    global: &Global,
    config: &Config,
    args: PlanArgs,
) -> anyhow::Result<ExitCode> {
    let rendered = renderer(args.templates.as_ref())?.render(config, &Ids::default())?;
    let (appsync, iot) = clients(global, config).await?;
    let mut r = Reconciler {
        appsync: &appsync,
        iot: &iot,
        config,
        rendered: &rendered,
        apply: false,
        progress: false,
        changes: Vec::new(),
    };
    r.run().await?;
    match global.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "changes": r.changes }))?
        ),
        OutputFormat::Text if r.changes.is_empty() => println!(
            "No changes: live state matches {}.",
            global.config.display()
        ),
        OutputFormat::Text => print_changes(&r.changes),
    }
    Ok(if r.changes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// `provisioner apply`.
pub(crate) async fn apply(
    global: &Global,
    config: &Config,
    args: ApplyArgs,
) -> anyhow::Result<ExitCode> {
    let render = renderer(args.templates.as_ref())?;
    let rendered = render.render(config, &Ids::default())?;
    let (appsync, iot) = clients(global, config).await?;
    let progress = std::io::stderr().is_terminal() && global.output == OutputFormat::Text;
    let mut r = Reconciler {
        appsync: &appsync,
        iot: &iot,
        config,
        rendered: &rendered,
        apply: true,
        progress,
        changes: Vec::new(),
    };
    let outputs = r.run().await?;
    std::fs::write(&args.outputs, outputs.to_json_pretty() + "\n")
        .with_context(|| format!("writing {}", args.outputs.display()))?;
    let ids = Ids {
        events_api_id: outputs.events.as_ref().map(|e| e.api_id.clone()),
        graphql_api_id: outputs.graphql.as_ref().map(|g| g.api_id.clone()),
    };
    render
        .render(config, &ids)?
        .write(&args.out)?
        .eprint_removed();
    match global.output {
        OutputFormat::Json => println!("{}", outputs.to_json_pretty()),
        OutputFormat::Text => {
            let n = r.changes.len();
            println!(
                "Applied {n} change(s). Outputs: {}. Documents with real ids: {}/",
                args.outputs.display(),
                args.out.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `provisioner destroy` (confirmation already given).
pub(crate) async fn destroy(global: &Global, config: &Config) -> anyhow::Result<ExitCode> {
    let rendered = Rendered::default();
    let (appsync, iot) = clients(global, config).await?;
    let progress = std::io::stderr().is_terminal() && global.output == OutputFormat::Text;
    let mut r = Reconciler {
        appsync: &appsync,
        iot: &iot,
        config,
        rendered: &rendered,
        apply: true,
        progress,
        changes: Vec::new(),
    };
    r.destroy().await?;
    match global.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "deleted": r.changes }))?
        ),
        OutputFormat::Text => println!("Deleted {} resource(s).", r.changes.len()),
    }
    Ok(ExitCode::SUCCESS)
}

/// `provisioner iot grant`.
pub(crate) async fn grant(
    global: &Global,
    config: &Config,
    args: GrantArgs,
) -> anyhow::Result<ExitCode> {
    // The grant goes through groupcast-auth's IotPolicyApi, implemented for the SDK's client.
    let iot = aws_sdk_iot::Client::new(&aws::sdk_config(global, config).await?);
    let g = grant_groups(&iot, config, &args.identity_id, &args.groups).await?;
    match global.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&g)?),
        OutputFormat::Text => println!(
            "{}: policies {:?} (attached {:?}, detached {:?})",
            g.identity_id, g.policies, g.attached, g.detached
        ),
    }
    Ok(ExitCode::SUCCESS)
}
