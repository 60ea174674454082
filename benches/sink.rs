//! The sink end to end (release build): `cargo bench -p vellum --bench sink`.
//!
//! A fixed generated corpus (`VELLUM_BENCH_EVENTS`, default 100,000 events of ~450 bytes
//! from `VELLUM_BENCH_TENANTS` tenants, default 50; see `corpus.rs`) is emitted through
//! `Sink` into a fresh SQLite ledger, durable (`synchronous=FULL`), by 1, 4 and 16 producer
//! threads, each keeping up to 256 emits of one event in flight (as an async front door
//! would). Chains: none; the no-op plugin (the cost of the plugin machinery: per-tenant
//! instances, lowering, checks); the shipped redact + policy plugins.
//!
//! For each run it prints events/s (until the last receipt), p50/p99 emit latency (submit
//! to receipt), and write amplification: bytes the process wrote (`/proc/self/io`:
//! `wchar` = write syscalls, `write_bytes` = to the block layer) over the corpus's JSON
//! bytes, counted until the ledger is closed (WAL checkpoint included).
//! `VELLUM_BENCH_CHAIN=none|noop|redact+policy` and `VELLUM_BENCH_PRODUCERS=4` run one part
//! only (for profiling).

mod corpus;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use vellum::chain::{ChainConfig, LoadOptions};
use vellum::sink::{LedgerConfig, SinkOptions};
use vellum::{AuditEvent, EmitError, Ledger, Sink, SinkConfig};

/// Emits each producer keeps in flight.
const IN_FLIGHT: usize = 256;

fn main() {
    let n: usize = std::env::var("VELLUM_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let tenants: u64 = std::env::var("VELLUM_BENCH_TENANTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let (events, input_bytes) = corpus::corpus(n, tenants);
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!(
        "sink bench: {n} events of {tenants} tenants, {input_bytes} bytes of JSON ({} B/event), {cores} cores",
        input_bytes / n.max(1)
    );
    println!(
        "{:<14} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}",
        "chain",
        "producers",
        "events/s",
        "p50 ms",
        "p99 ms",
        "recorded",
        "refused",
        "WA wchar",
        "WA disk"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let key = dir.path().join("pseudonym.key");
    std::fs::write(&key, "6b".repeat(32)).expect("key");
    let shipped = format!(
        "pseudonym-key-file = \"{}\"\n\
         [[plugin]]\nname = \"redact\"\ncomponent = \"{}\"\nconfig-file = \"{}/guest/redact/cases/config.toml\"\n\
         [[plugin]]\nname = \"policy\"\ncomponent = \"{}\"\nconfig-file = \"{}/guest/policy/cases/policy.toml\"\n",
        key.display(),
        vellum_guest_artifacts::REDACT,
        root.display(),
        vellum_guest_artifacts::POLICY,
        root.display()
    );
    let noop = format!(
        "[[plugin]]\nname = \"noop\"\ncomponent = \"{}\"\n",
        vellum_guest_artifacts::NOOP
    );
    let chains = [
        ("none", ChainConfig::default()),
        (
            "noop",
            ChainConfig::parse(&noop, Path::new(".")).expect("chain"),
        ),
        (
            "redact+policy",
            ChainConfig::parse(&shipped, Path::new(".")).expect("chain"),
        ),
    ];
    let only_chain = std::env::var("VELLUM_BENCH_CHAIN").ok();
    let only_producers: Option<usize> = std::env::var("VELLUM_BENCH_PRODUCERS")
        .ok()
        .and_then(|s| s.parse().ok());
    for (name, chain) in &chains {
        if only_chain.as_deref().is_some_and(|only| only != *name) {
            continue;
        }
        for producers in [1, 4, 16] {
            if only_producers.is_some_and(|only| only != producers) {
                continue;
            }
            let run = run(dir.path(), chain, producers, &events);
            println!(
                "{:<14} {:>9} {:>10.0} {:>9.2} {:>9.2} {:>9} {:>9} {:>8.2} {:>8.2}",
                name,
                producers,
                n as f64 / run.elapsed.as_secs_f64(),
                ms(run.p50),
                ms(run.p99),
                run.recorded,
                run.refused,
                run.wchar as f64 / input_bytes as f64,
                run.write_bytes as f64 / input_bytes as f64,
            );
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What one run measured.
struct Run {
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    recorded: usize,
    refused: usize,
    wchar: u64,
    write_bytes: u64,
}

fn run(dir: &Path, chain: &ChainConfig, producers: usize, events: &[AuditEvent]) -> Run {
    let path = dir.join(format!(
        "bench-{}.db",
        std::process::id() as u64 * 100 + producers as u64
    ));
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("db.key"));
    Ledger::init(&path, "vellum/bench").expect("init");
    let config = SinkConfig {
        server: None,
        retention: Default::default(),
        sink: SinkOptions::default(),
        ledger: LedgerConfig::at(&path),
        chain: chain.clone(),
    };
    let io_before = io_counters();
    let sink = Sink::open(&config, &LoadOptions::default()).expect("sink opens");
    let share = events.len().div_ceil(producers);
    let start = Arc::new(Barrier::new(producers + 1));
    let threads: Vec<_> = events
        .chunks(share)
        .map(|chunk| {
            let (sink, chunk, start) = (sink.clone(), chunk.to_vec(), start.clone());
            std::thread::spawn(move || produce(&sink, chunk, &start))
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let mut latencies = Vec::with_capacity(events.len());
    let (mut recorded, mut refused) = (0, 0);
    for thread in threads {
        let (lat, ok, no) = thread.join().expect("producer");
        latencies.extend(lat);
        recorded += ok;
        refused += no;
    }
    let elapsed = began.elapsed();
    sink.close().expect("close");
    drop(sink);
    let io_after = io_counters();
    let _ = std::fs::remove_file(&path);
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Run {
        elapsed,
        p50: pick(0.50),
        p99: pick(0.99),
        recorded,
        refused,
        wchar: io_after.0 - io_before.0,
        write_bytes: io_after.1 - io_before.1,
    }
}

/// One producer: keeps up to [`IN_FLIGHT`] emits queued; returns the latencies and the
/// counts of recorded and refused events.
fn produce(sink: &Sink, events: Vec<AuditEvent>, start: &Barrier) -> (Vec<Duration>, usize, usize) {
    start.wait();
    let mut latencies = Vec::with_capacity(events.len());
    let (mut recorded, mut refused) = (0, 0);
    let mut in_flight = VecDeque::with_capacity(IN_FLIGHT);
    let mut settle = |(at, ticket): (Instant, vellum::sink::Ticket)| match ticket.wait() {
        Ok(_) => {
            latencies.push(at.elapsed());
            recorded += 1;
        }
        Err(EmitError::Rejected { .. }) => refused += 1,
        Err(other) => panic!("emit failed: {other}"),
    };
    for event in events {
        if in_flight.len() == IN_FLIGHT {
            settle(in_flight.pop_front().expect("full"));
        }
        let at = Instant::now();
        let ticket = sink.submit(vec![event]).expect("queued");
        in_flight.push_back((at, ticket));
    }
    in_flight.into_iter().for_each(&mut settle);
    (latencies, recorded, refused)
}

/// `(wchar, write_bytes)` of this process.
fn io_counters() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("wchar:"), field("write_bytes:"))
}
