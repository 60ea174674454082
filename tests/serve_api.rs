//! The native API's answers that real clients cannot easily provoke, checked on the router
//! in-process: a full ledger is a 503 with `Retry-After` (nothing recorded), and a server
//! serving its `max-concurrent-requests` answers 429.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;
use vellum::chain::{ChainConfig, ChainTemplate, LoadOptions};
use vellum::ledger::store::StoreReader;
use vellum::ledger::store::sqlite::SqliteStore;
use vellum::sink::SinkOptions;
use vellum::{Ledger, LedgerOptions, Sink};
use vellum_server::{App, ServerConfig};

/// An event larger than the room the capped ledger has left.
fn event() -> String {
    format!(
        r#"{{"id":"e1","occurred_at":"2026-11-22T09:00:00Z","kind":"tool.call","payload":{{"blob":"{}"}}}}"#,
        "x".repeat(1 << 20)
    )
}

/// A server over a ledger that cannot grow (SQLite's page cap at its current size).
fn full_ledger_app(dir: &std::path::Path) -> (App, String) {
    let path = dir.join("audit.db");
    Ledger::init(&path, "test/full").unwrap();
    let writer = SqliteStore::open(&path).unwrap();
    let pages: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    writer.set_max_pages(pages as u64).unwrap();
    assert_eq!(writer.size().unwrap(), 0);
    let reader = SqliteStore::open(&path).unwrap();
    let ledger = Ledger::open_with(
        &path.as_path().into(),
        Box::new(writer),
        Box::new(reader),
        LedgerOptions::default(),
    )
    .unwrap();
    let chain = ChainTemplate::load(&ChainConfig::default(), &LoadOptions::default()).unwrap();
    let sink = Sink::start(chain, ledger, &SinkOptions::default()).unwrap();
    let (token, digest) = vellum_server::auth::new_token().unwrap();
    let config = ServerConfig::parse(
        &format!(
            "[server]\nmax-concurrent-requests = 1\nretry-after-secs = 7\n\
             [[server.token]]\ntenant = \"acme\"\nsha256 = \"{digest}\"\n"
        ),
        dir,
    )
    .unwrap();
    (App::new(sink, &config), token)
}

fn emit(token: &str) -> Request<Body> {
    Request::post("/v1/emit")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(event()))
        .unwrap()
}

async fn body_json(response: axum::response::Response) -> serde_json::Value {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_ledger_is_503_with_retry_after_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (app, token) = full_ledger_app(dir.path());
    let response = vellum_server::router(app.clone())
        .oneshot(emit(&token))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    let body = body_json(response).await;
    assert_eq!(body["error"]["class"], "unavailable", "{body}");
    assert_eq!(app.sink.ledger().size().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_concurrency_limit_is_429() {
    let dir = tempfile::tempdir().unwrap();
    let (app, token) = full_ledger_app(dir.path());
    // One request in flight (its permit held), the limit being one.
    let busy = app.requests.clone().try_acquire_owned().unwrap();
    let response = vellum_server::router(app.clone())
        .oneshot(emit(&token))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    assert_eq!(body_json(response).await["error"]["class"], "busy");
    drop(busy);
    let response = vellum_server::router(app)
        .oneshot(emit(&token))
        .await
        .unwrap();
    assert_ne!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}
