//! `ferrowg hub token create|list|revoke`. `create` prints the token and nothing else, so that
//! `TOKEN=$(ferrowg hub token create …)` works; it is the only time the secret is shown.

use clap::{Args, Subcommand};

use super::conn::ConnArgs;
use super::table::{time, Table};
use super::{out, out_json, CliError};
use crate::api::types::{CreateTokenRequest, Expiry};

/// `ferrowg hub token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Creates an enrolment token and prints it (only this once).
    Create(CreateArgs),
    /// Lists the enrolment tokens (without secrets).
    List {
        #[command(flatten)]
        conn: ConnArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revokes an enrolment token; devices it enrolled stay.
    Revoke {
        /// The token's identifier.
        id: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// `ferrowg hub token create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// The group of the devices it enrols (tag:GROUP in the policy).
    #[arg(long)]
    group: String,
    /// How many devices it may enrol; 0 is unlimited.
    #[arg(long, default_value_t = 1)]
    uses: u32,
    /// When it expires: 3600, 90m, 12h, 7d, 4w or never [default: 7d].
    #[arg(long, value_name = "DURATION")]
    expires: Option<String>,
}

/// Runs a token command.
pub async fn run(command: TokenCommand) -> Result<(), CliError> {
    match command {
        TokenCommand::Create(a) => {
            let req = CreateTokenRequest {
                group: a.group,
                uses: a.uses,
                expires: a.expires.map(Expiry::Text),
            };
            let created = a.conn.client()?.create_token(&req).await?;
            out(&format!("{}\n", created.token))
        }
        TokenCommand::List { conn, json } => {
            let tokens = conn.client()?.list_tokens().await?;
            if json {
                return out_json(&tokens);
            }
            let mut t = Table::new(&["ID", "GROUP", "USES-LEFT", "EXPIRES", "REVOKED"]);
            for tok in &tokens {
                t.row(vec![
                    tok.id.clone(),
                    tok.group.clone(),
                    tok.uses_left.map_or("unlimited".into(), |n| n.to_string()),
                    tok.expires_at.map_or("never".into(), time),
                    tok.revoked_at.map_or("-".into(), time),
                ]);
            }
            out(&t.render())
        }
        TokenCommand::Revoke { id, conn } => {
            let tok = conn.client()?.revoke_token(&id).await?;
            out(&format!("token {} revoked\n", tok.id))
        }
    }
}
