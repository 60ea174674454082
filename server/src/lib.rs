//! `vellum serve`: the Vellum sink over HTTP, for producers in any language.
//!
//! Two paths:
//! - **native** ([`native`], [`read`]): `POST /v1/emit`, `/v1/emit-batch`,
//!   `/v1/status-change` answer with receipts only once the entries are durable, and any
//!   error means "not audited" — the mandatory-audit contract of the WIT `sink`, over HTTP;
//! - **OTLP** ([`otlp`]): `POST /v1/logs` and `/v1/traces` take OpenTelemetry exports as
//!   they are (zero-code observation, at-least-once delivery, no receipt to the producer).
//!
//! The server knows the [`Sink`] and the ledger's read API and nothing below them: every
//! audit rule (what counts as recorded, batch atomicity, idempotency) is the sink's.
//! Every request carries a bearer token bound to one tenant ([`auth`]).

pub mod auth;
pub mod config;
pub mod erase;
pub mod error;
pub mod listen;
pub mod metrics;
pub mod native;
pub mod ops;
pub mod otlp;
pub mod read;
pub mod state;
pub mod tiles;
pub mod witness;

use std::path::Path;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tower_http::decompression::RequestDecompressionLayer;
use vellum::chain::LoadOptions;
use vellum::{Sink, SinkConfig};

pub use config::ServerConfig;
pub use listen::serve_until_signal;
pub use state::App;

/// The routes, with the body limit and the request guard.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/v1/emit", post(native::emit))
        .route("/v1/emit-batch", post(native::emit_batch))
        .route("/v1/status-change", post(native::status_change))
        .route("/v1/entries", get(read::entries))
        .route("/v1/checkpoint", get(read::checkpoint))
        .route("/v1/key", get(read::key))
        .route("/v1/proof/inclusion/{seq}", get(read::inclusion))
        .route("/v1/proof/consistency", get(read::consistency))
        .route("/v1/verify", post(read::verify))
        .route("/v1/erase", post(erase::erase))
        .route("/tlog/checkpoint", get(tiles::checkpoint))
        .route("/tlog/tile/{*path}", get(tiles::tile))
        .route("/v1/logs", post(otlp::logs))
        .route("/v1/traces", post(otlp::traces))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        // Bodies sent with `Content-Encoding: gzip` (what the OpenTelemetry Collector's OTLP
        // exporter sends by default) are inflated on the way in. The body limit counts the
        // inflated bytes, so a small compressed body cannot expand past it (413). Any other
        // encoding is a 415 naming gzip in `Accept-Encoding`.
        .layer(RequestDecompressionLayer::new())
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            ops::guard,
        ))
        .layer(DefaultBodyLimit::max(app.max_body_bytes))
        .with_state(app)
}

/// Reads a sink file with a `[server]` table, opens the sink, and serves until SIGTERM or
/// SIGINT; then drains in-flight requests, closes the sink and returns the final
/// checkpoint. The chain is loaded with `load` (built-in plugins, cache). `ready` is told
/// each address the server listens on.
pub fn run(
    config_path: &Path,
    load: &LoadOptions,
    ready: &mut dyn FnMut(&str),
) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(config_path)
        .with_context(|| format!("cannot read sink file {}", config_path.display()))?;
    let base = config_path.parent().unwrap_or(Path::new("."));
    let invalid = || format!("invalid sink file {}", config_path.display());
    let server = ServerConfig::parse(&text, base)
        .map_err(anyhow::Error::msg)
        .with_context(invalid)?;
    let sink_config = SinkConfig::parse(&text, base).with_context(invalid)?;
    let sink = Sink::open(&sink_config, load)?;
    let retention = erase::RetentionRuns::start(
        sink.clone(),
        sink_config.retention.rule.clone(),
        std::time::Duration::from_secs(sink_config.retention.interval_secs.max(1)),
    );
    let app = App::new(sink.clone(), &server);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vellum-serve")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve_until_signal(app, &server, ready))?;
    drop(retention);
    Ok(sink.close()?)
}
