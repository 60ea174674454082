//! Operations: the concurrency limit and per-route metrics around every request, health
//! and readiness, the metrics exposition, and the OpenAPI document.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::sync::OwnedSemaphorePermit;

use crate::auth::authenticate;
use crate::error::ApiError;
use crate::metrics::{ResponseLabels, RouteLabels};
use crate::otlp;
use crate::state::App;

/// The OpenAPI 3.1 document of the native API (`docs/openapi.json`).
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// Who may call a route, and which budget it draws from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// `/healthz`, `/readyz` and unknown paths: no token, no budget, no body read.
    Open,
    /// `/metrics`, `/openapi.json`: no token, the unauthenticated budget.
    Public,
    /// Everything else: a token, then the request budget, then the body.
    Token,
}

impl Access {
    fn of(route: &str) -> Self {
        match route {
            "/healthz" | "/readyz" | "unmatched" => Access::Open,
            "/metrics" | "/openapi.json" => Access::Public,
            _ => Access::Token,
        }
    }
}

/// Every request passes here, in this order, so an unauthenticated or slow client cannot
/// hold what others need:
/// 1. the token is checked from the headers alone (401, before anything else);
/// 2. a slot of `max-concurrent-requests` is taken (429 when none is free; the routes that
///    need no token draw from `max-unauthenticated-requests` instead, and `/healthz` and
///    `/readyz` from nothing);
/// 3. the whole body is read within `body-read-timeout-secs` (408) and `max-body-bytes`
///    (413), before the handler runs.
///
/// Records each request's latency and status per route. OTLP routes answer errors in the
/// OTLP shape.
pub async fn guard(State(app): State<App>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let started = Instant::now();
    let response = match Access::of(&route) {
        Access::Open => next.run(request).await,
        Access::Public => match app.public_requests.clone().try_acquire_owned() {
            Ok(_permit) => next.run(request).await,
            Err(_) => busy(&app).into_response(),
        },
        Access::Token => match admit(&app, request).await {
            Ok((request, _permit)) => next.run(request).await,
            Err((error, headers)) if otlp::is_otlp_route(&route) => otlp::refusal(&headers, &error),
            Err((error, _)) => error.into_response(),
        },
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

fn busy(app: &App) -> ApiError {
    ApiError::busy(
        "the server is serving as many requests as it may; retry later",
        app.retry_after,
    )
}

/// Steps 1 to 3 of [`guard`] for a route that needs a token: the request with its grant
/// and its body read, and the slot it holds; or the refusal and the request's headers.
async fn admit(
    app: &App,
    request: Request,
) -> Result<(Request, OwnedSemaphorePermit), (ApiError, HeaderMap)> {
    let (mut parts, body) = request.into_parts();
    let grant = match authenticate(&parts.headers, &app.tokens) {
        Ok(grant) => grant.clone(),
        Err(error) => return Err((error, parts.headers)),
    };
    parts.extensions.insert(grant);
    let Ok(permit) = app.requests.clone().try_acquire_owned() else {
        return Err((busy(app), parts.headers));
    };
    match read_body(app, &parts.headers, body).await {
        Ok(body) => Ok((Request::from_parts(parts, body), permit)),
        Err(error) => Err((error, parts.headers)),
    }
}

/// The whole request body, read within the body deadline and size limit.
async fn read_body(app: &App, headers: &HeaderMap, body: Body) -> Result<Body, ApiError> {
    let too_large = || {
        ApiError::too_large(format!(
            "the request body is larger than the server's limit of {} bytes",
            app.max_body_bytes
        ))
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.max_body_bytes as u64) {
        return Err(too_large());
    }
    let limited = Limited::new(body, app.max_body_bytes);
    match tokio::time::timeout(app.body_read_timeout, limited.collect()).await {
        Ok(Ok(collected)) => Ok(Body::from(collected.to_bytes())),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(e)) => Err(ApiError::malformed(format!(
            "cannot read the request body: {e}"
        ))),
        Err(_) => Err(ApiError::timeout(format!(
            "the request body did not arrive within {} s (body-read-timeout-secs)",
            app.body_read_timeout.as_secs()
        ))),
    }
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
            "/v1/erase",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} is not documented");
        }
    }
}
