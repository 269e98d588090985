//! Everything the hub's HTTPS listener answers: the API ([`crate::api`]) and the web dashboard
//! ([`crate::ui`]) on one router, with what every request shares: the body limit
//! ([`api::MAX_BODY`]; routes with a limit of their own keep it), at most
//! [`api::MAX_CONCURRENT_REQUESTS`] requests at once (the others wait), and a problem response
//! for an unknown path.

use axum::extract::DefaultBodyLimit;
use axum::Router;

use crate::api::{self, problem, ApiState};
use crate::ui;

/// The listener's router over `state`.
pub fn router(state: ApiState) -> Router {
    api::routes()
        .merge(ui::routes())
        .fallback(problem::fallback)
        .layer(DefaultBodyLimit::max(api::MAX_BODY))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            api::MAX_CONCURRENT_REQUESTS,
        ))
        .with_state(state)
}
