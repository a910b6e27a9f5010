//! `provisioner iot …`: IoT Core operations outside apply.

use std::process::ExitCode;

use super::{Global, OutputFormat};
use crate::config::Config;
use crate::reconcile::grant_groups;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// `provisioner iot grant --identity-id ID --groups a,b`: attach exactly these groups' IoT
    /// policies to a Cognito identity and detach its other groupcast policies.
    #[command(
        after_help = "Example:\n  provisioner iot grant --identity-id us-east-1:0f6d…-… --groups team-a,admins"
    )]
    Grant(GrantArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct GrantArgs {
    /// The Cognito identity id (REGION:UUID).
    #[arg(long, value_name = "ID")]
    pub(crate) identity_id: String,
    /// The groups to grant, comma separated; each must be in iot.groups. Empty revokes all.
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    pub(crate) groups: Vec<String>,
}

/// `provisioner iot grant`.
pub(crate) async fn grant(
    global: &Global,
    config: &Config,
    args: GrantArgs,
) -> anyhow::Result<ExitCode> {
    let cloud = global.aws.connect(config).await?;
    // The grant goes through groupcast-auth's IotPolicyApi, implemented for the SDK's client.
    let g = grant_groups(cloud.iot.client(), config, &args.identity_id, &args.groups).await?;
    match global.output {
        OutputFormat::Json => outln!("{}", serde_json::to_string_pretty(&g)?),
        OutputFormat::Text => outln!(
            "{}: policies {:?} (attached {:?}, detached {:?})",
            g.identity_id,
            g.policies,
            g.attached,
            g.detached
        ),
    }
    Ok(ExitCode::SUCCESS)
}
