//! Ledger benchmarks (release build): `cargo bench -p vellum --bench ledger`.
//!
//! - `append/group/N`: one durable commit of N events (building the records is not timed) (SQLite WAL, synchronous=FULL, fsync
//!   per commit). Criterion prints time per commit (commits/s = 1/time) and events/s.
//! - `verify/full`: `vellum verify` over a ledger of `VELLUM_BENCH_VERIFY` entries
//!   (default 100,000): recomputing every leaf, the tree and the checkpoints.
//! - `query/*`: indexed queries on that ledger (first page of 100).
//! - `append/group-subjects/N`: as `append/group/N`, each event of a new data subject, so
//!   every commit also creates N data keys (the worst case for the key store).
//! - `checkpoint-effects/{none,hanging}`: appends of 10 events with a checkpoint every 100
//!   entries, without side effects, then with a witness that never answers and a
//!   `publish-command` that never exits (the writer must not wait on either).
//! - erase: a ledger of `VELLUM_BENCH_ERASE` entries (default 1,000,000; 0 skips it) in ten
//!   tenants, one data subject holding 1 % of them; prints how long `erase --subject` takes.

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vellum::AuditEvent;
use vellum::ledger::entry::Record;
use vellum::ledger::query::Query;
use vellum::ledger::store::sqlite::SqliteStore;
use vellum::ledger::verify::verify;
use vellum::{Ledger, LedgerOptions};

fn record(i: u64) -> Record {
    record_of(i, None)
}

/// Event `i`, of the data subject `subject` when given.
fn record_of(i: u64, subject: Option<String>) -> Record {
    let labels = match subject {
        None => serde_json::json!({"env": "prod"}),
        Some(subject) => serde_json::json!({"env": "prod", "data_subject": subject}),
    };
    let event: AuditEvent = serde_json::from_value(serde_json::json!({
        "id": format!("01JD6Z6Y7A{i:016}"),
        "occurred_at": "2026-11-22T09:00:01.250Z",
        "tenant": format!("tenant-{}", i % 100),
        "correlation_id": format!("run-{}", i / 10),
        "chain_id": format!("chain-{}", i % 1000),
        "actor": "agent:researcher",
        "kind": if i.is_multiple_of(7) { "approval.granted" } else { "tool.call" },
        "subject": "web.search",
        "payload": {"arguments": {"query": "quarterly revenue"}, "duration_ms": 812, "ok": true},
        "labels": labels,
    }))
    .expect("valid event");
    Record::unfiltered(event)
}

fn new_ledger(dir: &Path) -> (std::path::PathBuf, Ledger) {
    let path = dir.join("bench.db");
    Ledger::init(&path, "vellum/bench").expect("init");
    let ledger = Ledger::open(
        &path,
        LedgerOptions {
            checkpoint_every_entries: u64::MAX,
            ..LedgerOptions::default()
        },
    )
    .expect("open");
    (path, ledger)
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, ledger) = new_ledger(dir.path());
    let mut group = c.benchmark_group("append");
    let mut next = 0u64;
    for n in [1u64, 10, 100] {
        group.throughput(Throughput::Elements(n));
        group.bench_function(BenchmarkId::new("group", n), |b| {
            b.iter_batched(
                || {
                    next += n;
                    (next - n..next).map(record).collect::<Vec<_>>()
                },
                |records| black_box(ledger.append(records).expect("append")),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    let n = 100u64;
    group.throughput(Throughput::Elements(n));
    group.bench_function(BenchmarkId::new("group-subjects", n), |b| {
        b.iter_batched(
            || {
                next += n;
                (next - n..next)
                    .map(|i| record_of(i, Some(format!("user-{i}"))))
                    .collect::<Vec<_>>()
            },
            |records| black_box(ledger.append(records).expect("append")),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// Appends with frequent checkpoints, with no side effects and with a silent witness and a
/// stuck publisher.
fn checkpoint_effects(c: &mut Criterion) {
    let mut group = c.benchmark_group("checkpoint-effects");
    let n = 10u64;
    group.throughput(Throughput::Elements(n));
    for case in ["none", "hanging"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bench.db");
        Ledger::init(&path, "vellum/bench").expect("init");
        let mut options = LedgerOptions {
            checkpoint_every_entries: 100,
            ..LedgerOptions::default()
        };
        // Held for the whole case: accepts, never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        if case == "hanging" {
            let url = format!("http://{}", silent.local_addr().expect("addr"));
            let (_, key) =
                vellum::ledger::cosignature::Cosigner::generate("bench/silent").expect("key");
            options.witnesses = vec![vellum::ledger::witness::Witness::new(&url, &key).expect("w")];
            options.publishers = vec![vellum::ledger::publish::Publisher::Command(
                "sleep 3600".into(),
            )];
        }
        let ledger = Ledger::open(&path, options).expect("open");
        let mut next = 0u64;
        group.bench_function(case, |b| {
            b.iter_batched(
                || {
                    next += n;
                    (next - n..next).map(record).collect::<Vec<_>>()
                },
                |records| black_box(ledger.append(records).expect("append")),
                criterion::BatchSize::SmallInput,
            )
        });
        drop(ledger);
        drop(silent);
    }
    group.finish();
}

/// One subject's erasure in a large ledger: timed once, printed.
fn erase(_: &mut Criterion) {
    let size: u64 = std::env::var("VELLUM_BENCH_ERASE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    if size == 0 {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, ledger) = new_ledger(dir.path());
    let started = std::time::Instant::now();
    for start in (0..size).step_by(1_000) {
        let records = (start..(start + 1_000).min(size))
            .map(|i| {
                // Ten tenants of 100,000 entries; every 100th event (all in tenant-0) is
                // ada's, the others spread over 10,000 subjects.
                let who = match i % 100 {
                    0 => "ada".to_string(),
                    _ => format!("user-{}", i % 10_000),
                };
                let mut record = record_of(i, Some(who));
                record.event.tenant = Some(format!("tenant-{}", i % 10));
                record
            })
            .collect();
        ledger.append(records).expect("append");
    }
    ledger.checkpoint().expect("checkpoint");
    let built = started.elapsed();
    let started = std::time::Instant::now();
    let report = ledger
        .erase(vellum::ledger::erasure::EraseRequest {
            target: vellum::ledger::erasure::EraseTarget::Subject {
                subject: "ada".into(),
                tenant: None,
            },
            reason: "benchmark".into(),
            by: "bench".into(),
            on_hold: vellum::ledger::erasure::OnHold::Refuse,
        })
        .expect("erase");
    let erased_in = started.elapsed();
    eprintln!(
        "erase: built a {size}-entry ledger (10 tenants, {} subjects) in {built:?} ({:.0} ev/s); \
         erased {} entries of one subject ({} keys) in {erased_in:?}",
        10_001,
        size as f64 / built.as_secs_f64(),
        report.entries_erased,
        report.keys_destroyed
    );
}

fn verify_and_query(c: &mut Criterion) {
    let size: u64 = std::env::var("VELLUM_BENCH_VERIFY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, ledger) = new_ledger(dir.path());
    let started = std::time::Instant::now();
    for start in (0..size).step_by(1_000) {
        ledger
            .append((start..(start + 1_000).min(size)).map(record).collect())
            .expect("append");
    }
    ledger.checkpoint().expect("checkpoint");
    eprintln!("built a {size}-entry ledger in {:?}", started.elapsed());
    let vkey = ledger.verifier_key().to_string();

    let mut group = c.benchmark_group("query");
    for (name, query) in [
        (
            "tenant",
            Query {
                tenant: Some("tenant-42".into()),
                ..Query::default()
            },
        ),
        (
            "correlation",
            Query {
                correlation_id: Some(format!("run-{}", size / 20)),
                ..Query::default()
            },
        ),
        (
            "tenant+kind",
            Query {
                tenant: Some("tenant-7".into()),
                kinds: vec!["approval.granted".into()],
                ..Query::default()
            },
        ),
    ] {
        let query = Query {
            limit: 100,
            ..query
        };
        group.bench_function(name, |b| {
            b.iter(|| black_box(ledger.query(&query).expect("query")))
        });
    }
    group.finish();
    drop(ledger);

    let mut group = c.benchmark_group("verify");
    group.sample_size(10);
    group.throughput(Throughput::Elements(size));
    let store = SqliteStore::open(&path).expect("open").with_unsealer(
        vellum::ledger::store::unseal::Unsealer::tolerant(
            vellum::ledger::store::Location::from(&path)
                .open_keys(false)
                .expect("key store"),
        ),
    );
    group.bench_function("full", |b| {
        b.iter(|| {
            let report = verify(&store, &vkey, None, &mut |_, _| {}).expect("verify");
            assert!(report.ok());
        })
    });
    group.finish();
}

criterion_group!(benches, append, checkpoint_effects, verify_and_query, erase);
criterion_main!(benches);
