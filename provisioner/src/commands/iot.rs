//! `provisioner iot …`: IoT Core operations outside apply.

use std::process::ExitCode;

use super::{Global, OutputFormat};
use crate::config::Config;
use crate::reconcile::grant_groups;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// `provisioner iot grant --identity-id ID --groups a,b`: attach exactly these groups' IoT
    /// policies to a Cognito identity and detach its other groupcast policies (`--groups ""` or
    /// `--revoke-all` detaches them all).
    #[command(
        after_help = "Example:\n  provisioner iot grant --identity-id us-east-1:0f6d…-… --groups team-a,admins"
    )]
    Grant(GrantArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct GrantArgs {
    /// The Cognito identity id (REGION:UUID), checked before any AWS call.
    #[arg(long, value_name = "ID")]
    pub(crate) identity_id: String,
    /// The groups to grant, comma separated (spaces around names are ignored); each must be in
    /// iot.groups. Required: `--groups ""` (or --revoke-all) revokes every groupcast policy.
    #[arg(
        long,
        value_delimiter = ',',
        required_unless_present = "revoke_all",
        conflicts_with = "revoke_all"
    )]
    pub(crate) groups: Vec<String>,
    /// Detach every groupcast policy of this project from the identity (as `--groups ""`).
    #[arg(long)]
    pub(crate) revoke_all: bool,
}

impl GrantArgs {
    /// The groups asked for, trimmed: empty for a revoke-all (`--revoke-all`, `--groups ""`), an
    /// error for an empty entry among others (`a,,b`, `a,`: a typo, not a wish to revoke).
    fn groups(&self) -> anyhow::Result<Vec<String>> {
        let groups: Vec<String> = self.groups.iter().map(|g| g.trim().to_owned()).collect();
        if self.revoke_all || groups.iter().all(String::is_empty) {
            return Ok(Vec::new());
        }
        if let Some(i) = groups.iter().position(String::is_empty) {
            anyhow::bail!(
                "--groups: entry {} of {:?} is empty (a stray comma?); to revoke every policy pass \
                 --groups \"\" or --revoke-all",
                i + 1,
                self.groups.join(",")
            );
        }
        Ok(groups)
    }
}

/// `provisioner iot grant`.
pub(crate) async fn grant(
    global: &Global,
    config: &Config,
    args: GrantArgs,
) -> anyhow::Result<ExitCode> {
    // Argument errors before any AWS call (the account check included).
    let groups = args.groups()?;
    groupcast_auth::grant::validate_identity_id(&args.identity_id)
        .map_err(|e| anyhow::anyhow!("--identity-id: {e}"))?;
    let cloud = global.aws.connect(config).await?;
    // The grant goes through groupcast-auth's IotPolicyApi, implemented for the SDK's client.
    let g = grant_groups(cloud.iot.client(), config, &args.identity_id, &groups).await?;
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
