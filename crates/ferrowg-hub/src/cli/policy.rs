//! `ferrowg hub policy set|show|test`. `test` runs offline (no hub needed):
//! [`ferrowg_policy::test_file`]. `set` sends the file; the hub parses it and runs its tests
//! again before storing it.

use std::path::PathBuf;

use clap::Subcommand;

use super::conn::ConnArgs;
use super::{out, CliError};
use crate::client::ClientError;

/// `ferrowg hub policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Checks a policy file, runs its tests and makes it the hub's policy.
    Set {
        /// The policy file (HuJSON).
        file: PathBuf,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Prints the hub's current policy.
    Show {
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Checks a policy file and runs its tests, offline.
    Test {
        /// The policy file (HuJSON).
        file: PathBuf,
    },
}

/// Runs a policy command.
pub async fn run(command: PolicyCommand) -> Result<(), CliError> {
    match command {
        PolicyCommand::Set { file, conn } => {
            let limit = ferrowg_policy::MAX_POLICY_BYTES as u64;
            let text = crate::paths::read_bounded(&file, limit)
                .map_err(|e| CliError(format!("{}: {e}", file.display())))?;
            let stored = conn
                .client()?
                .set_policy(&text)
                .await
                .map_err(|e| match e {
                    ClientError::Problem(p) => {
                        let at = p.line.map(|l| format!(":{l}")).unwrap_or_default();
                        CliError(format!("{}{at}: {}: {}", file.display(), p.title, p.detail))
                    }
                    other => CliError(other.to_string()),
                })?;
            out(&format!(
                "policy version {} set from {}\n",
                stored.version,
                file.display()
            ))
        }
        PolicyCommand::Show { conn } => {
            let policy = conn.client()?.policy().await?;
            let mut text = policy.text;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            out(&text)
        }
        PolicyCommand::Test { file } => {
            let summary = ferrowg_policy::test_file(&file).map_err(CliError)?;
            out(&format!("{summary}\n"))
        }
    }
}
