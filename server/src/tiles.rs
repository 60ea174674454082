//! The log as C2SP tlog-tiles over HTTP (see `vellum::ledger::tiles`): `GET
//! /tlog/checkpoint` and `GET /tlog/tile/…`, read-only, for clients that check the log with
//! their own code (Go's `sumdb/tlog`, a monitor). Full tiles and bundles never change and
//! are served as immutable; partial ones and the checkpoint only briefly cacheable.
//!
//! The tiles carry every tenant's entry envelopes, so they need an admin token; a public
//! mirror is `vellum export --tiles DIR` on a static host.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use vellum::ledger::tiles::{Resource, TileError};

use crate::auth::Admin;
use crate::error::ApiError;
use crate::state::App;

/// Full tiles: cacheable forever.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The checkpoint and partial tiles: superseded as the log grows.
const SHORT: &str = "no-cache";

/// `GET /tlog/checkpoint`: the newest published checkpoint, with its cosignatures.
pub async fn checkpoint(State(app): State<App>, _: Admin) -> Result<Response, ApiError> {
    let retry = app.retry_after;
    let note = app
        .read(move |sink| {
            sink.ledger()
                .published_checkpoint()
                .map_err(|e| ApiError::ledger(e, retry))?
                .ok_or_else(|| {
                    ApiError::not_found(
                        "no checkpoint is published yet (none signed, or none meets the \
                         witness quorum)",
                    )
                })
        })
        .await?
        .1;
    Ok(text(note.into_bytes(), "text/plain; charset=utf-8", SHORT))
}

/// `GET /tlog/tile/{*path}`: a hash tile or an entry bundle.
pub async fn tile(
    State(app): State<App>,
    _: Admin,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let resource =
        Resource::parse(&format!("tile/{path}")).map_err(|e| ApiError::not_found(e.to_string()))?;
    let retry = app.retry_after;
    let data = app
        .read(move |sink| {
            sink.ledger().tile(&resource).map_err(|e| match e {
                TileError::BadPath(_) | TileError::Beyond(..) => ApiError::not_found(e.to_string()),
                TileError::TooLarge(..) => ApiError::internal(e.to_string()),
                TileError::Store(e) => ApiError::ledger(e.into(), retry),
            })
        })
        .await?;
    let cache = match resource.is_full() {
        true => IMMUTABLE,
        false => SHORT,
    };
    Ok(text(data, "application/octet-stream", cache))
}

fn text(body: Vec<u8>, content_type: &'static str, cache: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}
