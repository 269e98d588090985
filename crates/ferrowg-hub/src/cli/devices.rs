//! `ferrowg hub device add|import|list|show|revoke|delete|approve-route` (`import`: [`super::import`]). `add` prints the wg-quick
//! configuration for a device that made its own key (and a QR code of it with `--qr`); `list`
//! and `show` print a table, or JSON with `--json`.

use clap::Subcommand;
use ferrowg_hub_store::ipnet::IpNet;
use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;

use super::conn::ConnArgs;
use super::table::{ago, bytes, time, Table};
use super::{out, out_json, CliError};
use crate::api::types::{AddDeviceRequest, DeviceInfo, DeviceState};

/// `ferrowg hub device …`.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Admits a device that made its own key; prints its wg-quick config (without PrivateKey).
    Add {
        /// The device's name.
        name: String,
        /// Its WireGuard public key (base64).
        #[arg(long)]
        public_key: String,
        /// Its group (tag:GROUP in the policy).
        #[arg(long)]
        group: String,
        /// A subnet behind it to route to it (repeatable; approved).
        #[arg(long, value_name = "PREFIX")]
        route: Vec<IpNet>,
        /// Also print the configuration as a QR code (for phone apps).
        #[arg(long)]
        qr: bool,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Admits many devices from FILE (`-`: standard input), a line each: NAME PUBLIC_KEY
    /// GROUP; prints NAME ADDRESS for each.
    Import {
        /// The file.
        file: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Lists the devices with their status.
    List {
        #[command(flatten)]
        conn: ConnArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Shows one device.
    Show {
        /// The device's name.
        name: String,
        #[command(flatten)]
        conn: ConnArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revokes a device: the hub drops its sessions and keys.
    Revoke {
        /// The device's name.
        name: String,
        #[command(flatten)]
        conn: ConnArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deletes a device; its name and addresses become free.
    Delete {
        /// The device's name.
        name: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Approves (or with --withdraw, unapproves) a subnet a device advertises.
    ApproveRoute {
        /// The device's name.
        name: String,
        /// The advertised prefix.
        prefix: IpNet,
        /// Withdraw the approval instead.
        #[arg(long)]
        withdraw: bool,
        /// Reach the site through this prefix (same length; 1:1 NETMAP), e.g. when another
        /// site uses the same real prefix.
        #[arg(long, value_name = "PREFIX")]
        map: Option<IpNet>,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// Runs a device command.
pub async fn run(command: DeviceCommand) -> Result<(), CliError> {
    match command {
        DeviceCommand::Add {
            name,
            public_key,
            group,
            route,
            qr,
            conn,
        } => {
            let req = AddDeviceRequest {
                name,
                public_key,
                group,
                routes: route.iter().map(ToString::to_string).collect(),
            };
            let added = conn.client()?.add_device(&req).await?;
            out(&added.config)?;
            if qr {
                out(&qr_code(&added.config)?)?;
            }
            Ok(())
        }
        DeviceCommand::Import { file, conn } => super::import::run(&file, &conn).await,
        DeviceCommand::List { conn, json } => {
            let devices = conn.client()?.list_devices().await?;
            if json {
                return out_json(&devices);
            }
            out(&list_table(&devices))
        }
        DeviceCommand::Show { name, conn, json } => {
            let device = conn.client()?.device(&name).await?;
            show(&device, json)
        }
        DeviceCommand::Revoke { name, conn, json } => {
            let device = conn.client()?.revoke_device(&name).await?;
            show(&device, json)
        }
        DeviceCommand::Delete { name, conn } => {
            conn.client()?.delete_device(&name).await?;
            out(&format!("device {name} deleted\n"))
        }
        DeviceCommand::ApproveRoute {
            name,
            prefix,
            withdraw,
            map,
            conn,
        } => {
            let client = conn.client()?;
            let device = client
                .set_route_approval(&name, &prefix, !withdraw, map.as_ref())
                .await?;
            show(&device, false)
        }
    }
}

fn state(s: DeviceState) -> &'static str {
    match s {
        DeviceState::Pending => "pending",
        DeviceState::Active => "active",
        DeviceState::Revoked => "revoked",
    }
}

/// `device list`'s table.
fn list_table(devices: &[DeviceInfo]) -> String {
    let header = [
        "NAME",
        "GROUP",
        "STATE",
        "ONLINE",
        "ADDRESSES",
        "HANDSHAKE",
        "ENDPOINT",
        "RX",
        "TX",
    ];
    let mut t = Table::new(&header);
    for d in devices {
        t.row(vec![
            d.name.clone(),
            d.group.clone(),
            state(d.state).into(),
            if d.online { "yes" } else { "no" }.into(),
            d.addresses.join(","),
            ago(d.last_handshake),
            d.endpoint.clone().unwrap_or_else(|| "-".into()),
            bytes(d.rx_bytes),
            bytes(d.tx_bytes),
        ]);
    }
    t.render()
}

/// One device, as `NAME: value` lines or JSON.
fn show(d: &DeviceInfo, json: bool) -> Result<(), CliError> {
    if json {
        return out_json(d);
    }
    let routes: Vec<String> = d
        .routes
        .iter()
        .map(|r| {
            let approval = if r.approved {
                "approved"
            } else {
                "pending approval"
            };
            match &r.mapped {
                Some(m) => format!("{} as {m} ({approval})", r.prefix),
                None => format!("{} ({approval})", r.prefix),
            }
        })
        .collect();
    let mut s = format!(
        "device: {}\n  group: {}\n  state: {}\n  online: {}\n  addresses: {}\n  public key: {}\n",
        d.name,
        d.group,
        state(d.state),
        if d.online { "yes" } else { "no" },
        d.addresses.join(", "),
        d.public_key
    );
    if let Some(next) = &d.next_public_key {
        s.push_str(&format!("  next public key: {next}\n"));
    }
    s.push_str(&format!(
        "  latest handshake: {}\n  endpoint: {}\n  transfer: {} received, {} sent\n",
        ago(d.last_handshake),
        d.endpoint.as_deref().unwrap_or("-"),
        bytes(d.rx_bytes),
        bytes(d.tx_bytes)
    ));
    if !routes.is_empty() {
        s.push_str(&format!("  routes: {}\n", routes.join(", ")));
    }
    s.push_str(&format!("  created: {} UTC\n", time(d.created_at)));
    let due = if d.rotation_due {
        " (rotation due)"
    } else {
        ""
    };
    s.push_str(&format!("  key since: {} UTC{due}\n", time(d.key_since)));
    if let Some(t) = d.revoked_at {
        s.push_str(&format!("  revoked: {} UTC\n", time(t)));
    }
    out(&s)
}

/// The text as a QR code drawn with Unicode half blocks (light on dark, as terminals show).
fn qr_code(text: &str) -> Result<String, CliError> {
    let code = QrCode::new(text.as_bytes()).map_err(|e| CliError(format!("QR code: {e}")))?;
    let image = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .build();
    Ok(format!("{image}\n"))
}
