//! The server's error answers: one JSON shape, `{"error": {"class", "message", "plugin"?}}`,
//! with the status code the native API documents (`docs/openapi.json`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use vellum::{EmitError, LedgerError};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    class: &'static str,
    message: String,
    plugin: Option<String>,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, class: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            class,
            message: message.into(),
            plugin: None,
            retry_after: None,
        }
    }

    /// 400: the body is not what the route takes (malformed JSON, wrong shape).
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed", message)
    }

    /// 400: a bad query parameter or path.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }

    /// 413: the body is larger than the server takes.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", message)
    }

    /// 408: the request body did not arrive in time.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, "timeout", message)
    }

    /// 401: no token, or one the server does not know.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403: the token's tenant may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", message)
    }

    /// 429: too many requests at once; retry after the given seconds.
    pub fn busy(message: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "busy", message)
        }
    }

    /// 503: nothing was recorded; retry after the given seconds.
    pub fn unavailable(message: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
        }
    }

    /// The answer to a failed emit: 422 invalid, 409 rejected (naming the plugin), 503
    /// unavailable.
    pub fn emit(error: EmitError, retry_after: u64) -> Self {
        match error {
            EmitError::InvalidEvent(m) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-event", m)
            }
            EmitError::Rejected { plugin, reason } => Self {
                plugin: Some(plugin),
                ..Self::new(StatusCode::CONFLICT, "rejected", reason)
            },
            EmitError::Unavailable(m) => Self::unavailable(m, retry_after),
        }
    }

    /// The answer to a failed read.
    pub fn ledger(error: LedgerError, retry_after: u64) -> Self {
        match error {
            LedgerError::BadRequest(m) => Self::bad_request(m),
            LedgerError::Full(_) | LedgerError::Unavailable(_) => {
                Self::unavailable(error.to_string(), retry_after)
            }
            LedgerError::Invalid(m) => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "ledger-damaged", m)
            }
            LedgerError::KeyReused(m) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-event", m)
            }
            LedgerError::Held(m) => Self::new(StatusCode::CONFLICT, "held", m),
        }
    }

    /// 500: a bug or a lost worker; nothing is known to be recorded.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What went wrong, for the caller.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The seconds to wait before a retry, for 429 and 503.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// The error's class (`rejected`, `unavailable`, …).
    pub fn class(&self) -> &'static str {
        self.class
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"class": self.class, "message": self.message});
        if let Some(plugin) = &self.plugin {
            body["plugin"] = json!(plugin);
        }
        let mut response = (self.status, axum::Json(json!({ "error": body }))).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
