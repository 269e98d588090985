//! The policy endpoints. `PUT` parses the policy (refused with a 422 problem naming the line
//! and key), runs its `tests` section as `ferrowg hub policy test` does (a failing test refuses
//! the policy, naming the test's line), and only then stores it as the new current version.
//! `POST …/check` does the same checks and stores nothing (the dashboard's editor). The body
//! is the policy text (`text/plain` or no content type) or `{"text": …}`
//! (`application/json`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use ferrowg_hub_store::UnixTime;
use ferrowg_policy::{Policy, TestEnv};

use super::auth::{ReadAccess, WriteAccess};
use super::convert;
use super::problem::Problem;
use super::types::{PolicyCheck, PolicyInfo, PolicyText};
use super::ApiState;

/// Checks and stores a new policy version.
#[utoipa::path(
    put,
    path = "/api/v1/policy",
    tag = "policy",
    security(("admin" = [])),
    request_body(content(
        (String = "text/plain"),
        (PolicyText = "application/json"),
    ), description = "The policy (HuJSON)"),
    responses(
        (status = 200, description = "Stored as the current version", body = PolicyInfo),
        (status = 422, description = "The policy does not parse or a test fails; `line` and `key` say where", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put_policy(
    _: WriteAccess,
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<PolicyInfo>, Problem> {
    let text = body_text(&headers, &body)?;
    check(&text)?;
    let stored = state.store.set_policy(&text, UnixTime::now()).await?;
    state.poke();
    log::info!("policy version {} set", stored.version);
    Ok(Json(convert::policy_info(stored)))
}

/// Checks a policy as `PUT` does (parses it, runs its tests) without storing it.
#[utoipa::path(
    post,
    path = "/api/v1/policy/check",
    tag = "policy",
    security(("admin" = [])),
    request_body(content(
        (String = "text/plain"),
        (PolicyText = "application/json"),
    ), description = "The policy (HuJSON)"),
    responses(
        (status = 200, description = "It parses and its tests pass; nothing was stored", body = PolicyCheck),
        (status = 422, description = "The policy does not parse or a test fails; `line` and `key` say where", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn check_policy(
    _: ReadAccess,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<PolicyCheck>, Problem> {
    let text = body_text(&headers, &body)?;
    let tests = check(&text)?;
    Ok(Json(PolicyCheck { tests }))
}

/// The current policy.
#[utoipa::path(
    get,
    path = "/api/v1/policy",
    tag = "policy",
    security(("admin" = [])),
    responses(
        (status = 200, description = "The current version", body = PolicyInfo),
        (status = 404, description = "No policy set yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_policy(
    _: ReadAccess,
    State(state): State<ApiState>,
) -> Result<Json<PolicyInfo>, Problem> {
    match state.store.policy().await? {
        Some(p) => Ok(Json(convert::policy_info(p))),
        None => Err(Problem::not_found("no policy has been set")),
    }
}

/// The policy text of the body, by its content type.
fn body_text(headers: &HeaderMap, body: &Bytes) -> Result<String, Problem> {
    let media = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match media.as_deref() {
        Some("application/json") => serde_json::from_slice::<PolicyText>(body)
            .map(|p| p.text)
            .map_err(|e| Problem::bad_request(format!("expected {{\"text\": …}}: {e}"))),
        None | Some("text/plain") => String::from_utf8(body.to_vec())
            .map_err(|_| Problem::bad_request("the policy is not UTF-8 text")),
        Some(_) => Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "media-type",
            "Unsupported media type",
            "send the policy as text/plain or as application/json {\"text\": …}",
        )),
    }
}

/// Parses the policy, runs its tests and checks the store's limits on policy text; returns
/// how many tests ran. A refusal names the line (and key).
pub fn check(text: &str) -> Result<usize, Problem> {
    let policy = Policy::parse(text).map_err(|e| {
        let mut p = policy_problem("policy-invalid", "Policy refused", e.to_string());
        p.line = (e.line > 0).then_some(e.line);
        p.key = e.key;
        p
    })?;
    policy.run_tests(&TestEnv::new()).map_err(|failures| {
        let detail = failures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let mut p = policy_problem("policy-test-failed", "Policy test failed", detail);
        p.line = failures.first().map(|f| f.line);
        p
    })?;
    ferrowg_hub_store::validate::policy_text(text)?;
    Ok(policy.test_counts().0)
}

fn policy_problem(name: &str, title: &str, detail: String) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, name, title, detail)
}
