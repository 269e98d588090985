//! `GET /api/v1/nodes`: the hub nodes sharing this store, from the heartbeats each node writes
//! every [`crate::heartbeat::EVERY`] (see [`crate::heartbeat`]).

use axum::extract::State;
use axum::Json;
use ferrowg_hub_store::{HubNode, UnixTime};

use super::auth::ReadAccess;
use super::problem::Problem;
use super::types::NodeInfo;
use super::ApiState;

/// A node is healthy while its latest heartbeat is at most this many seconds old (three
/// heartbeats).
pub const HEALTHY_WITHIN: i64 = 15;

/// The hub nodes, ordered by name.
#[utoipa::path(
    get,
    path = "/api/v1/nodes",
    tag = "nodes",
    security(("admin" = [])),
    responses(
        (status = 200, description = "The nodes that wrote a heartbeat", body = Vec<NodeInfo>),
        (status = 401, description = "No valid admin token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_nodes(
    _: ReadAccess,
    State(state): State<ApiState>,
) -> Result<Json<Vec<NodeInfo>>, Problem> {
    let now = UnixTime::now();
    let nodes = state.store.list_nodes().await?;
    Ok(Json(nodes.into_iter().map(|n| node_info(n, now)).collect()))
}

/// A node as the API shows it at `now`.
pub fn node_info(node: HubNode, now: UnixTime) -> NodeInfo {
    NodeInfo {
        healthy: now.0.saturating_sub(node.last_seen.0) <= HEALTHY_WITHIN,
        name: node.name,
        api: node.api,
        version: node.version,
        started_at: node.started_at.0,
        last_seen: node.last_seen.0,
        devices_online: node.devices_online,
        handshakes: node.handshakes,
    }
}
