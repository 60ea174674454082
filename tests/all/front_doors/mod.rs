//! `vellum serve`'s and `vellum witness serve`'s front doors, in-process: the router for
//! what real clients cannot easily provoke ([`api`]), and an attacker's cases per front door
//! ([`serve_attacks`], [`otlp_attacks`], [`witness_attacks`]), on the router and, where
//! connections matter (slow headers and bodies, stalled shutdown), on loopback through the
//! same connection loop `vellum serve` runs. Every case stays as a regression test. And
//! [`planted`]: secrets sent through every front door never reach the database file.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod api;
mod otlp_attacks;
mod planted;
mod serve_attacks;
mod witness_attacks;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Request, header};
use tokio::sync::watch;
use tower::ServiceExt;
use vellum::chain::{ChainConfig, ChainTemplate, LoadOptions};
use vellum::ledger::store::StoreReader;
use vellum::ledger::store::sqlite::SqliteStore;
use vellum::sink::SinkOptions;
use vellum::{Ledger, LedgerOptions, Sink};
use vellum_server::listen::{ConnectionLimits, Listener};
use vellum_server::{App, ServerConfig};

/// A server over a new SQLite ledger with no chain, and its tokens: `acme` and `beta`
/// (producers) and `admin` (tenant `ops`, an operator's).
pub(crate) struct Fixture {
    pub(crate) app: App,
    pub(crate) acme: String,
    pub(crate) beta: String,
    pub(crate) admin: String,
}

/// A [`Fixture`] with `server_lines` in its `[server]` table; when `full`, over a ledger that
/// cannot grow (SQLite's page cap at its current size).
pub(crate) fn fixture(dir: &std::path::Path, full: bool, server_lines: &str) -> Fixture {
    fixture_with_chain(dir, full, server_lines, &ChainConfig::default())
}

/// A [`fixture`] whose sink runs `chain`.
pub(crate) fn fixture_with_chain(
    dir: &std::path::Path,
    full: bool,
    server_lines: &str,
    chain: &ChainConfig,
) -> Fixture {
    let path = dir.join("audit.db");
    Ledger::init(&path, "test/front-doors").unwrap();
    let writer = SqliteStore::open(&path).unwrap();
    let pages: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    if full {
        writer.set_max_pages(pages as u64).unwrap();
    }
    assert_eq!(writer.size().unwrap(), 0);
    let reader = vellum::ledger::store::Location::from(&path)
        .open_reader()
        .unwrap();
    let ledger = Ledger::open_with(
        &path.as_path().into(),
        Box::new(writer),
        reader,
        LedgerOptions::default(),
    )
    .unwrap();
    let chain = ChainTemplate::load(chain, &LoadOptions::default()).unwrap();
    let sink = Sink::start(chain, ledger, &SinkOptions::default()).unwrap();
    let token = || vellum_server::auth::new_token().unwrap();
    let ((acme, acme_digest), (beta, beta_digest), (admin, admin_digest)) =
        (token(), token(), token());
    let config = ServerConfig::parse(
        &format!(
            "[server]\n{server_lines}\n\
             [[server.token]]\ntenant = \"acme\"\nsha256 = \"{acme_digest}\"\n\
             [[server.token]]\ntenant = \"beta\"\nsha256 = \"{beta_digest}\"\n\
             [[server.token]]\ntenant = \"ops\"\nsha256 = \"{admin_digest}\"\nadmin = true\n"
        ),
        dir,
    )
    .unwrap();
    Fixture {
        app: App::new(sink, &config),
        acme,
        beta,
        admin,
    }
}

/// One request through a fresh router of `app`.
pub(crate) async fn send(app: &App, request: Request<Body>) -> axum::response::Response {
    vellum_server::router(app.clone())
        .oneshot(request)
        .await
        .unwrap()
}

/// A request with a bearer token (when given) and a JSON body.
pub(crate) fn request(
    method: &str,
    path: &str,
    token: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(body.into()).unwrap()
}

/// A small valid event with id `id`.
pub(crate) fn small_event(id: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","occurred_at":"2026-11-22T09:00:00Z","kind":"tool.call","payload":{{"tool":"search"}}}}"#
    )
    .into_bytes()
}

/// The whole body, as sent.
pub(crate) async fn body_bytes(response: axum::response::Response) -> Bytes {
    axum::body::to_bytes(response.into_body(), 256 << 20)
        .await
        .unwrap()
}

pub(crate) async fn body_json(response: axum::response::Response) -> serde_json::Value {
    serde_json::from_slice(&body_bytes(response).await).unwrap()
}

/// A router served on loopback through `vellum serve`'s connection loop, until stopped.
pub(crate) struct Live {
    pub(crate) addr: SocketAddr,
    stop: watch::Sender<bool>,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Live {
    /// Serves `router` on a new loopback port under `limits`.
    pub(crate) async fn start(router: axum::Router, limits: ConnectionLimits) -> Live {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let served = tokio::spawn(vellum_server::listen::serve(
            Listener::Tcp(listener),
            router,
            limits,
            stopped,
        ));
        Live { addr, stop, served }
    }

    /// Sets the stop flag; waits for the loop to drain and return, at most `within`.
    pub(crate) async fn stop_within(self, within: Duration) -> anyhow::Result<()> {
        self.stop.send(true).unwrap();
        tokio::time::timeout(within, self.served)
            .await
            .expect("the connection loop did not return in time")
            .unwrap()
    }
}

/// Limits with short deadlines for tests.
pub(crate) fn short_limits(header_secs: u64, drain_secs: u64) -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: Duration::from_secs(header_secs),
        drain_timeout: Duration::from_secs(drain_secs),
        ..ConnectionLimits::default()
    }
}

/// A blocking connection that has sent `bytes` and reads with a generous timeout.
pub(crate) fn connect_and_send(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    stream
}

/// Reads until the server closes the connection; what it answered (maybe nothing). Panics
/// if the server keeps it open for the read timeout.
pub(crate) fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => String::from_utf8_lossy(&answer).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            String::from_utf8_lossy(&answer).into_owned()
        }
        Err(e) => panic!(
            "the server kept the connection open: {e} (read so far: {:?})",
            String::from_utf8_lossy(&answer)
        ),
    }
}

/// The first line of an HTTP answer read from `stream` (its status line).
pub(crate) fn status_line(stream: &mut TcpStream) -> String {
    let mut byte = [0u8; 1];
    let mut line = Vec::new();
    while stream.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line).trim().to_string()
}
