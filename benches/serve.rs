//! `vellum serve` end to end: native emits over loopback HTTP (one event per request,
//! durable, no plugins), with 1, 8 and 32 concurrent clients. Prints requests/s and the
//! p50/p99 latency of a 200 (the receipt of a durable entry).
//!
//! `cargo bench -p vellum-server --bench serve` (VELLUM_BENCH_REQUESTS sets the requests
//! per run, default 8,000).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vellum::chain::LoadOptions;
use vellum::{Ledger, Sink, SinkConfig};
use vellum_server::listen::{ConnectionLimits, Listener};
use vellum_server::{App, ServerConfig};

fn main() -> anyhow::Result<()> {
    let requests: usize = std::env::var("VELLUM_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8_000);
    for clients in [1usize, 8, 32] {
        let dir = tempfile::tempdir()?;
        let ledger = dir.path().join("audit.db");
        Ledger::init(&ledger, "bench/serve")?;
        let (token, digest) = vellum_server::auth::new_token().map_err(anyhow::Error::msg)?;
        let text = format!(
            "[ledger]\npath = \"audit.db\"\n[server]\nlisten = \"127.0.0.1:0\"\n\
             max-concurrent-requests = 1024\n[[server.token]]\ntenant = \"bench\"\nsha256 = \"{digest}\"\n"
        );
        let server = ServerConfig::parse(&text, dir.path()).map_err(anyhow::Error::msg)?;
        let sink = Sink::open(
            &SinkConfig::parse(&text, dir.path())?,
            &LoadOptions::default(),
        )?;
        let runtime = tokio::runtime::Runtime::new()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let url = format!("http://{}/v1/emit", listener.local_addr()?);
        let router = vellum_server::router(App::new(sink.clone(), &server));
        // The connection loop `vellum serve` runs (deadlines, connection cap, drain).
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        runtime.spawn(vellum_server::listen::serve(
            Listener::Tcp(listener),
            router,
            ConnectionLimits::of(&server),
            stopped,
        ));

        let per_client = requests / clients;
        let bearer = Arc::new(format!("Bearer {token}"));
        let started = Instant::now();
        let threads: Vec<_> = (0..clients)
            .map(|c| {
                let (url, bearer) = (url.clone(), bearer.clone());
                std::thread::spawn(move || run_client(c, per_client, &url, &bearer))
            })
            .collect();
        let mut latencies: Vec<Duration> = Vec::with_capacity(per_client * clients);
        for thread in threads {
            latencies.extend(
                thread
                    .join()
                    .map_err(|_| anyhow::anyhow!("client panicked"))??,
            );
        }
        let elapsed = started.elapsed();
        latencies.sort();
        let at =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        println!(
            "serve/native-emit clients={clients:>2}: {:>6.0} requests/s, p50 {:>6.2} ms, p99 {:>6.2} ms ({} requests)",
            latencies.len() as f64 / elapsed.as_secs_f64(),
            at(0.50).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            latencies.len()
        );
        sink.close()?;
        runtime.shutdown_timeout(Duration::from_secs(1));
        check_size(&ledger, latencies.len())?;
    }
    Ok(())
}

fn run_client(c: usize, n: usize, url: &str, bearer: &str) -> anyhow::Result<Vec<Duration>> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(true)
        .build()
        .into();
    (0..n)
        .map(|i| {
            let body = format!(
                r#"{{"id":"c{c}-{i}","occurred_at":"2026-11-22T09:00:00Z","kind":"tool.call","actor":"agent:bench","payload":{{"tool":"search","q":"flights to Lisbon","n":{i}}}}}"#
            );
            let started = Instant::now();
            agent
                .post(url)
                .header("authorization", bearer)
                .header("content-type", "application/json")
                .send(&body)?
                .body_mut()
                .read_to_string()?;
            Ok(started.elapsed())
        })
        .collect()
}

/// The benchmark measured the real path: every 200 is an entry.
fn check_size(ledger: &Path, expected: usize) -> anyhow::Result<()> {
    let size = Ledger::open_read_only(ledger)?.size()?;
    anyhow::ensure!(
        size as usize == expected,
        "{size} entries for {expected} receipts"
    );
    Ok(())
}
