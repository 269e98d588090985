//! The storage layer of `ferrowg hub`: what the hub keeps about itself, its enrolment and
//! admin tokens, its devices and their addresses, and its access policy, behind one repository
//! trait ([`HubStore`]).
//!
//! - [`SqlStore`]: an SQLite file in the hub's data directory (WAL, `synchronous=FULL`,
//!   foreign keys on), or a PostgreSQL database several hub nodes share; schema migrations
//!   embedded from `migrations/sqlite/` and `migrations/postgres/`. The query modules use only
//!   SQL both share, through sqlx's `Any` driver and runtime-checked `query`/`query_as` (no
//!   database at build time).
//! - One concern per module: [`settings`], [`tokens`] (enrolment tokens and redemption),
//!   [`devices`], [`addresses`] (pools and the allocator), [`routes`], [`rotation`] (keys and
//!   handshakes), [`stats`], [`admin`] (admin tokens), [`policy`], [`events`] (the change
//!   sequence), [`secret`] (credentials), [`validate`] (input rules), [`device_query`] (pages
//!   of devices filtered and sorted in SQL), [`nodes`] (the hub nodes' heartbeats), [`groups`] (each group's counts).
//! - Errors are [`StoreError`]; no operation panics. The current time is passed in by the
//!   caller ([`UnixTime`]).
//!
//! Guarantees: two devices never get one address (allocation inside the write transaction,
//! UNIQUE columns); an enrolment either checks the token, takes a use and creates the device,
//! or does none of it; an operation that returned is on disk.

pub mod addresses;
pub mod admin;
pub mod device_query;
pub mod devices;
mod error;
pub mod events;
pub mod groups;
pub mod nodes;
pub mod policy;
pub mod rotation;
pub mod routes;
mod schema;
mod search_text;
pub mod secret;
pub mod settings;
mod sql;
pub mod stats;
mod store;
pub mod time;
pub mod tokens;
pub mod validate;

pub use addresses::Pools;
pub use admin::{AdminToken, Scope};
pub use device_query::{DevicePage, DeviceQuery, DeviceSort, SortOrder, StatusFilter};
pub use devices::{Device, DeviceState, KeyRole, NewDevice};
pub use error::{Conflict, Entity, Family, Field, Reason, Result, StoreError};
pub use events::{Event, EventKind};
pub use groups::GroupSummary;
pub use nodes::HubNode;
pub use policy::PolicyVersion;
pub use rotation::HandshakeOutcome;
pub use routes::Route;
pub use schema::{Backend, DB_FILE};
pub use secret::Credential;
pub use settings::HubSettings;
pub use sql::SqlStore;
pub use stats::DeviceStats;
pub use store::HubStore;
pub use time::UnixTime;
pub use tokens::{Enrolment, EnrolmentToken, NewToken};

/// Re-exported so that callers name prefixes with the same types.
pub use ipnet;
