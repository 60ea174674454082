//! Operations: the concurrency limit and per-route metrics around every request, health
//! and readiness, the metrics exposition, and the OpenAPI document.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::metrics::{ResponseLabels, RouteLabels};
use crate::state::App;

/// The OpenAPI 3.1 document of the native API (`docs/openapi.json`).
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// Refuses a request with 429 when `max-concurrent-requests` are already being served;
/// records each request's latency and status per route.
pub async fn guard(State(app): State<App>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let started = Instant::now();
    let response = match app.requests.clone().try_acquire_owned() {
        Ok(permit) => {
            let response = next.run(request).await;
            drop(permit);
            response
        }
        Err(_) => ApiError::busy(
            "the server is serving as many requests as it may; retry later",
            app.retry_after,
        )
        .into_response(),
    };
    app.metrics
        .request_seconds
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    app.metrics
        .responses
        .get_or_create(&ResponseLabels {
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 while the server takes work, 503 once it drains.
pub async fn readyz(State(app): State<App>) -> Response {
    match app.ready() {
        true => (StatusCode::OK, "ready\n").into_response(),
        false => (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response(),
    }
}

/// `GET /metrics`: OpenMetrics text.
pub async fn metrics(State(app): State<App>) -> Response {
    match app.metrics.render() {
        Ok(text) => (
            [(
                CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => ApiError::internal("cannot encode the metrics").into_response(),
    }
}

/// `GET /openapi.json`.
pub async fn openapi() -> Response {
    ([(CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[cfg(test)]
mod tests {
    use super::OPENAPI;

    #[test]
    fn the_openapi_document_describes_every_native_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        for path in [
            "/v1/emit",
            "/v1/emit-batch",
            "/v1/status-change",
            "/v1/entries",
            "/v1/checkpoint",
            "/v1/key",
            "/v1/proof/inclusion/{seq}",
            "/v1/proof/consistency",
            "/v1/verify",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} is not documented");
        }
    }
}
