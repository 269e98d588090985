//! Every operation of the SQLite store and every error it reports, through the public
//! [`HubStore`](ferrowg_hub_store::HubStore) trait, each test on a fresh database file.

#[path = "../support/mod.rs"]
mod support;

mod admin;
mod devices;
mod groups;
mod policy_events;
mod query_nodes;
mod rotation_routes;
mod settings;
mod tokens;
