//! `GET /api/v1/groups`: every group a device or an enrolment token names, with its devices
//! counted by status and its usable tokens, counted by the store in one query (see
//! [`ferrowg_hub_store::groups`]).

use axum::extract::State;
use axum::Json;
use ferrowg_hub_store::{GroupSummary, UnixTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::ReadAccess;
use super::problem::Problem;
use super::{ApiState, ONLINE_WITHIN};

/// A group, `GET /api/v1/groups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupInfo {
    /// The group's name (a device's `group`, a token's `group`).
    pub name: String,
    /// Its devices that are not revoked.
    pub devices: u64,
    /// Its active devices with a handshake at most 180 s old.
    pub online: u64,
    /// Its pending devices (no handshake yet).
    pub pending: u64,
    /// Its revoked devices.
    pub revoked: u64,
    /// Its enrolment tokens that can still enrol: not revoked, not expired, with uses left.
    pub tokens: u64,
}

impl From<GroupSummary> for GroupInfo {
    fn from(g: GroupSummary) -> Self {
        GroupInfo {
            name: g.name,
            devices: g.devices,
            online: g.online,
            pending: g.pending,
            revoked: g.revoked,
            tokens: g.tokens,
        }
    }
}

/// The groups, ordered by name.
#[utoipa::path(
    get,
    path = "/api/v1/groups",
    tag = "groups",
    security(("admin" = [])),
    responses(
        (status = 200, description = "Every group a device or an enrolment token names", body = Vec<GroupInfo>),
        (status = 401, description = "No valid admin token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_groups(
    _: ReadAccess,
    State(state): State<ApiState>,
) -> Result<Json<Vec<GroupInfo>>, Problem> {
    let groups = state
        .store
        .group_summary(UnixTime::now(), ONLINE_WITHIN)
        .await?;
    Ok(Json(groups.into_iter().map(GroupInfo::from).collect()))
}
