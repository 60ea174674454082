//! The witness over HTTP: `POST <prefix>/add-checkpoint` with the protocol's status codes
//! (200 with the cosignature line, 400, 403, 404, 409 with `text/x.tlog.size`, 422), and
//! `GET <prefix>/key` with the witness's verifier key. Plain HTTP on a TCP listener (loopback
//! by default); put a TLS proxy in front to expose it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::watch;
use tower_http::timeout::TimeoutLayer;

use super::request::MAX_REQUEST_BYTES;
use super::{Outcome, Witness};
use crate::listen::{self, ConnectionLimits, Listener};

/// Time for a whole `add-checkpoint` request once its headers are in (408 beyond): a request
/// is at most [`MAX_REQUEST_BYTES`], so a client that takes longer is stalling.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The witness's routes under `prefix` (empty, or starting with `/`).
pub fn router(witness: Arc<Witness>, prefix: &str) -> Router {
    let prefix = prefix.trim_end_matches('/');
    Router::new()
        .route(&format!("{prefix}/add-checkpoint"), post(add_checkpoint))
        .route(&format!("{prefix}/key"), get(key))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(witness)
}

/// Serves the witness on `listen` until SIGTERM or SIGINT, with `limits` on its
/// connections: stalled headers are cut at their deadline, and on a stop signal whatever is
/// still open at the drain deadline. `ready` is told the URL prefix once it accepts
/// connections.
pub fn serve(
    witness: Witness,
    listen: SocketAddr,
    prefix: &str,
    limits: ConnectionLimits,
    ready: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vellum-witness")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let local = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let router = router(Arc::new(witness), prefix);
        let server = tokio::spawn(listen::serve(
            Listener::Tcp(listener),
            router,
            limits,
            stopped,
        ));
        ready(&format!("http://{local}{}", prefix.trim_end_matches('/')));
        listen::stop_signal().await;
        tracing::info!("stopping the witness");
        let _ = stop.send(true);
        server
            .await
            .context("the witness listener stopped")?
            .context("the witness listener failed")
    })
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    let outcome = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body))
        .await
        .unwrap_or_else(|e| Outcome::Failed(format!("the request handler failed: {e}")));
    let text = |status: StatusCode, message: String| {
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{message}\n"),
        )
            .into_response()
    };
    match outcome {
        Outcome::Cosigned(line) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            line,
        )
            .into_response(),
        Outcome::Conflict(size) => (
            StatusCode::CONFLICT,
            [(header::CONTENT_TYPE, "text/x.tlog.size")],
            format!("{size}\n"),
        )
            .into_response(),
        Outcome::BadRequest(m) => text(StatusCode::BAD_REQUEST, m),
        Outcome::Forbidden(m) => text(StatusCode::FORBIDDEN, m),
        Outcome::UnknownOrigin(m) => text(StatusCode::NOT_FOUND, m),
        Outcome::BadProof(m) => text(StatusCode::UNPROCESSABLE_ENTITY, m),
        Outcome::Failed(m) => {
            tracing::error!("add-checkpoint failed: {m}");
            text(StatusCode::INTERNAL_SERVER_ERROR, m)
        }
    }
}

async fn key(State(witness): State<Arc<Witness>>) -> String {
    format!("{}\n", witness.verifier_key())
}
