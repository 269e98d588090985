//! The repository trait: every operation the hub performs on its storage, independent of the
//! database behind it. [`crate::SqlStore`] implements it; a PostgreSQL store is to follow
//! with the same statements. Every operation that changes configuration is one transaction and
//! takes the next event sequence number (see [`crate::events`]); the current time comes from
//! the caller.

use std::net::SocketAddr;

use async_trait::async_trait;
use ipnet::IpNet;

use crate::admin::{AdminToken, Scope};
use crate::device_query::{DevicePage, DeviceQuery};
use crate::devices::{Device, KeyRole, NewDevice};
use crate::error::Result;
use crate::events::Event;
use crate::groups::GroupSummary;
use crate::nodes::HubNode;
use crate::policy::PolicyVersion;
use crate::rotation::HandshakeOutcome;
use crate::routes::Route;
use crate::secret::Credential;
use crate::settings::HubSettings;
use crate::stats::DeviceStats;
use crate::time::UnixTime;
use crate::tokens::{Enrolment, EnrolmentToken, NewToken};

/// The hub's storage. Object safe: the hub holds an `Arc<dyn HubStore>`.
#[async_trait]
pub trait HubStore: Send + Sync {
    /// Writes the hub settings (once; [`crate::Conflict::AlreadyInitialised`] after).
    async fn init(&self, settings: &HubSettings) -> Result<()>;
    /// The hub settings.
    async fn settings(&self) -> Result<HubSettings>;
    /// A task that pokes `changed` whenever another process (another hub node) records a
    /// change, where the database can tell (PostgreSQL); `None` where every writer is in this
    /// process.
    fn forward_changes(
        &self,
        changed: std::sync::Arc<tokio::sync::Notify>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let _ = changed;
        None
    }
    /// Sets the key-rotation schedule (`None`: none); returns the settings.
    async fn set_rotate_after(
        &self,
        rotate_after: Option<u64>,
        now: UnixTime,
    ) -> Result<HubSettings>;

    /// Creates an enrolment token; the credential is returned only here.
    async fn create_token(
        &self,
        new: &NewToken,
        now: UnixTime,
    ) -> Result<(EnrolmentToken, Credential)>;
    /// The enrolment token `id`.
    async fn token(&self, id: &str) -> Result<EnrolmentToken>;
    /// Every enrolment token, oldest first.
    async fn list_tokens(&self) -> Result<Vec<EnrolmentToken>>;
    /// Revokes an enrolment token (its devices stay).
    async fn revoke_token(&self, id: &str, now: UnixTime) -> Result<EnrolmentToken>;
    /// Checks the token, takes one use and creates the device (pending), all in one transaction.
    async fn redeem(
        &self,
        credential: &Credential,
        enrolment: &Enrolment,
        now: UnixTime,
    ) -> Result<Device>;

    /// Adds a device without a token (`hub device add`), pending until its first handshake.
    async fn add_device(&self, new: &NewDevice, now: UnixTime) -> Result<Device>;
    /// The device called `name`.
    async fn device(&self, name: &str) -> Result<Device>;
    /// The device holding `key` (current or next), and which of its keys it is.
    async fn device_by_key(&self, key: &[u8; 32]) -> Result<(Device, KeyRole)>;
    /// Every device, ordered by name.
    async fn list_devices(&self) -> Result<Vec<Device>>;
    /// One page of devices, filtered, sorted and counted in the database (see
    /// [`crate::device_query`]); a device is online when its latest handshake is at or after
    /// `online_since`.
    async fn query_devices(
        &self,
        query: &DeviceQuery,
        online_since: UnixTime,
    ) -> Result<DevicePage>;
    /// Every group a device or an enrolment token names, ordered by name, with its devices
    /// counted by status and its usable tokens at `now` (see [`crate::groups`]); a device is
    /// online when its latest handshake is at most `online_within` seconds before `now`.
    async fn group_summary(&self, now: UnixTime, online_within: i64) -> Result<Vec<GroupSummary>>;
    /// The approved routes of every device that is not revoked, with the device's name.
    async fn approved_routes(&self) -> Result<Vec<(String, Route)>>;
    /// Revokes a device: it keeps its row, addresses and keys (they stay reserved).
    async fn revoke_device(&self, name: &str, now: UnixTime) -> Result<Device>;
    /// Deletes a device; its name, addresses and keys become free.
    async fn delete_device(&self, name: &str, now: UnixTime) -> Result<()>;

    /// Sets a device's next key: both keys are valid until the next one's first handshake.
    async fn begin_rotation(&self, name: &str, key: &[u8; 32], now: UnixTime) -> Result<Device>;
    /// Asks a device to rotate its key: the request stands until the first handshake of a next
    /// key. [`crate::Conflict::DeviceRevoked`] for a revoked device.
    async fn request_rotation(&self, name: &str, now: UnixTime) -> Result<Device>;
    /// Drops a device's pending next key.
    async fn cancel_rotation(&self, name: &str, now: UnixTime) -> Result<Device>;
    /// Records a completed handshake: activates a pending device, completes a rotation.
    async fn record_handshake(
        &self,
        key: &[u8; 32],
        at: UnixTime,
        endpoint: Option<SocketAddr>,
    ) -> Result<HandshakeOutcome>;
    /// Stores the data plane's counters in one transaction; returns how many devices matched.
    async fn record_stats(&self, entries: &[DeviceStats]) -> Result<u64>;

    /// Replaces the prefixes a device advertises; new ones are approved if in `auto_approved`.
    async fn set_advertised_routes(
        &self,
        name: &str,
        prefixes: &[IpNet],
        auto_approved: &[IpNet],
        now: UnixTime,
    ) -> Result<Device>;
    /// Approves or unapproves one advertised prefix.
    async fn set_route_approval(
        &self,
        name: &str,
        prefix: &IpNet,
        approved: bool,
        now: UnixTime,
    ) -> Result<Device>;

    /// Sets (or with `None` clears) the prefix through which the hub reaches a site route of
    /// device `name` (1:1 NETMAP), e.g. when two sites use one real prefix.
    async fn set_route_map(
        &self,
        name: &str,
        prefix: &IpNet,
        mapped: Option<&IpNet>,
        now: UnixTime,
    ) -> Result<Device>;

    /// Creates an admin token; the credential is returned only here.
    async fn create_admin_token(
        &self,
        scope: Scope,
        label: &str,
        expires_at: Option<UnixTime>,
        now: UnixTime,
    ) -> Result<(AdminToken, Credential)>;
    /// The admin token a credential names, if valid now.
    async fn authenticate_admin(
        &self,
        credential: &Credential,
        now: UnixTime,
    ) -> Result<AdminToken>;
    /// Every admin token, oldest first.
    async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>>;
    /// Revokes an admin token.
    async fn revoke_admin_token(&self, id: &str, now: UnixTime) -> Result<AdminToken>;

    /// Stores a new policy version and makes it current.
    async fn set_policy(&self, text: &str, now: UnixTime) -> Result<PolicyVersion>;
    /// The current policy version, if any.
    async fn policy(&self) -> Result<Option<PolicyVersion>>;
    /// The newest `limit` policy versions, newest first.
    async fn policy_history(&self, limit: u32) -> Result<Vec<PolicyVersion>>;

    /// Writes this hub node's heartbeat row (no event: an observation).
    async fn heartbeat(&self, node: &HubNode) -> Result<()>;
    /// Every hub node that wrote a heartbeat, ordered by name.
    async fn list_nodes(&self) -> Result<Vec<HubNode>>;

    /// The sequence number of the latest change (0 before any).
    async fn event_seq(&self) -> Result<i64>;
    /// The changes after sequence number `after`, oldest first, at most `limit`.
    async fn events_since(&self, after: i64, limit: u32) -> Result<Vec<Event>>;
    /// Forgets the events up to `upto` (the counter is unaffected).
    async fn prune_events(&self, upto: i64) -> Result<u64>;
}
