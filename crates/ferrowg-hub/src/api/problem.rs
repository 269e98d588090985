//! Errors as `application/problem+json` (RFC 9457): every failure of a handler, an extractor or
//! the store becomes a [`Problem`] with a stable `type` (`urn:ferrowg:problem:NAME`), a title,
//! the status and a detail for a human. Store faults that are not the client's (database I/O,
//! corrupt rows) are logged and answered with a generic 500, without their text.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrowg_hub_store::{Conflict, StoreError};

pub use super::types::Problem;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

impl Problem {
    /// A problem of kind `name` with `status`, `title` and `detail`.
    pub fn new(status: StatusCode, name: &str, title: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("urn:ferrowg:problem:{name}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            line: None,
            key: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    /// 422: a field of the request is refused.
    pub fn invalid(detail: impl Into<String>) -> Problem {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        Problem::new(status, "invalid-input", "Invalid input", detail)
    }

    /// 401: no valid credential.
    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        let status = StatusCode::UNAUTHORIZED;
        Problem::new(status, "unauthorized", "Unauthorized", detail)
    }

    /// 403: the credential does not allow this.
    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 404: nothing at this path.
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 500: the hub failed; the cause is in its log.
    pub fn internal() -> Problem {
        let status = StatusCode::INTERNAL_SERVER_ERROR;
        let detail = "the hub could not complete the request; its log says why";
        Problem::new(status, "internal", "Internal error", detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let unauthorized = status == StatusCode::UNAUTHORIZED;
        let mut response = (status, axum::Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if unauthorized {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        let detail = e.to_string();
        match e {
            StoreError::NotFound(_) => Problem::not_found(detail),
            StoreError::Conflict(Conflict::Address) => {
                let status = StatusCode::SERVICE_UNAVAILABLE;
                Problem::new(status, "busy", "Try again", detail)
            }
            StoreError::Conflict(c) => conflict(c, detail),
            StoreError::Invalid { .. } => Problem::invalid(detail),
            StoreError::TokenInvalid => Problem::new(
                StatusCode::UNAUTHORIZED,
                "token-invalid",
                "Token invalid",
                detail,
            ),
            StoreError::TokenExpired => {
                Problem::new(StatusCode::GONE, "token-expired", "Token expired", detail)
            }
            StoreError::TokenExhausted => {
                let title = "Token used up";
                Problem::new(StatusCode::GONE, "token-exhausted", title, detail)
            }
            StoreError::PoolExhausted(_) => {
                let status = StatusCode::INSUFFICIENT_STORAGE;
                Problem::new(status, "pool-exhausted", "Address pool exhausted", detail)
            }
            other if other.is_unavailable() => {
                log::warn!("store: {other}");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database-unavailable",
                    "Database unavailable",
                    "the hub's database cannot be reached; devices keep their connections and \
                     the hub keeps forwarding on its last configuration; try again later"
                        .to_owned(),
                )
            }
            other => {
                log::error!("store: {other}");
                Problem::internal()
            }
        }
    }
}

fn conflict(c: Conflict, detail: String) -> Problem {
    let name = match c {
        Conflict::DeviceName => "name-taken",
        Conflict::PublicKey => "key-in-use",
        Conflict::DeviceRevoked => "device-revoked",
        Conflict::AlreadyInitialised => "initialised",
        _ => "conflict",
    };
    Problem::new(StatusCode::CONFLICT, name, "Conflict", detail)
}

impl From<JsonRejection> for Problem {
    fn from(r: JsonRejection) -> Problem {
        match r {
            JsonRejection::JsonDataError(e) => Problem::invalid(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "media-type",
                "Unsupported media type",
                "expected Content-Type: application/json",
            ),
            JsonRejection::BytesRejection(_) => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Body too large or unreadable",
                r.body_text(),
            ),
            other => Problem::bad_request(other.body_text()),
        }
    }
}

impl From<PathRejection> for Problem {
    fn from(r: PathRejection) -> Problem {
        Problem::bad_request(r.body_text())
    }
}

/// The response for a path no route serves.
pub async fn fallback() -> Problem {
    Problem::not_found("no such API path")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_statuses() {
        let cases = [
            (StoreError::TokenInvalid, 401),
            (StoreError::TokenExpired, 410),
            (StoreError::TokenExhausted, 410),
            (StoreError::Conflict(Conflict::DeviceName), 409),
            (StoreError::Corrupt("x"), 500),
        ];
        for (e, status) in cases {
            let p = Problem::from(e);
            assert_eq!(p.status, status, "{p}");
            assert!(p.kind.starts_with("urn:ferrowg:problem:"));
        }
        assert!(!Problem::from(StoreError::Corrupt("secret row"))
            .detail
            .contains("secret"));
    }
}
