//! `ferrowg hub`'s control plane: the HTTPS API devices enrol through and admins manage the hub
//! with, its pinned client, `hub init`, and the `ferrowg hub …` command line. The hub's
//! WireGuard data path runs beside the API in the same process and learns of changes through
//! [`api::ApiState::changed`] and the store's events.
//!
//! - [`paths`]: the data directory's files and `hub.json`.
//! - [`tls`]: the self-signed certificate, the pin, server and pinned client configurations.
//! - [`token`]: the `fwg1.` enrolment token a device is given.
//! - [`api`]: the axum router, its OpenAPI document, problems, admin authentication.
//! - [`client`]: the API's client.
//! - [`init`]: `hub init`.
//! - [`serve`]: the HTTPS listener.
//! - [`node`]: `hub serve`: the WireGuard interface, its sync loop and both APIs in one process.
//! - [`device_api`]: what devices ask for themselves through the tunnel (key rotation).
//! - [`metrics`]: the Prometheus metrics of `hub serve`.
//! - [`heartbeat`]: each node's row in the store's list of hub nodes.
//! - [`cli`]: `ferrowg hub …`.
//! - [`ui`]: the web dashboard on the API's listener.
//! - [`app`]: the API and the dashboard on one router, with their shared limits.
//! - [`wgconf`]: the wg-quick configuration handed to devices added by public key.
//!
//! Storage is [`ferrowg_hub_store`]; access rules are [`ferrowg_policy`].

pub mod api;
pub mod app;
pub mod cli;
pub mod client;
pub mod device_api;
pub mod heartbeat;
pub mod init;
pub mod metrics;
pub mod node;
pub mod paths;
pub mod serve;
pub mod tls;
pub mod token;
pub mod ui;
pub mod wgconf;

pub use api::types;
pub use api::ApiState;
pub use client::{Client, ClientError};
pub use paths::{DataDir, HubFile};
pub use token::{EnrolToken, TokenError};
