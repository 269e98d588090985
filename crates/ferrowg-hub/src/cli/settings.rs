//! `ferrowg hub settings`: shows the hub's settings, and with `--rotate-after` changes the
//! key-rotation schedule first.

use clap::Args;

use super::conn::ConnArgs;
use super::{out, out_json, CliError};
use crate::api::types::{Expiry, SettingsInfo, SettingsUpdate};

/// `ferrowg hub settings`.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Sets how old a device's key may grow before the device rotates it (`ferrowg key rotate
    /// IFACE --if-due`): 3600, 12h, 90d or never. Nothing disconnects an overdue device.
    #[arg(long, value_name = "DURATION")]
    rotate_after: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `ferrowg hub settings`.
pub async fn run(a: SettingsArgs) -> Result<(), CliError> {
    let client = a.conn.client()?;
    let settings = match a.rotate_after {
        Some(text) => {
            let req = SettingsUpdate {
                rotate_after: Some(Expiry::Text(text)),
            };
            client.update_settings(&req).await?
        }
        None => client.settings().await?,
    };
    if a.json {
        return out_json(&settings);
    }
    out(&text(&settings))
}

fn text(s: &SettingsInfo) -> String {
    let rotate = s.rotate_after.map_or("never".to_owned(), |secs| {
        format!("{secs} s ({})", days(secs))
    });
    format!(
        "endpoint: {}\npool: {}\npool6: {}\npublic key: {}\nrotate after: {rotate}\n",
        s.endpoint,
        s.pool4,
        s.pool6.as_deref().unwrap_or("-"),
        s.public_key,
    )
}

/// `secs` in days, to one decimal.
fn days(secs: u64) -> String {
    let tenths = secs.saturating_mul(10) / 86_400;
    format!("{}.{} days", tenths / 10, tenths % 10)
}
