//! Plugin runtime benchmarks (release build): `cargo bench -p vellum --bench plugin`.
//!
//! - `apply/noop/N`: one `apply` call of the no-op plugin on a batch of N events: lowering
//!   the batch, the guest call, lifting and validating the verdicts. Criterion prints the
//!   time per call and the events per second.
//! - `load/cold` vs `load/cached`: loading a component (compile or cache hit, link,
//!   instantiate, configure) without and with the on-disk compiled-component cache.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vellum::AuditEvent;
use vellum::plugin::{EngineOptions, Limits, Plugin, PluginEngine, PluginSpec};

fn events(n: usize) -> Vec<AuditEvent> {
    (0..n)
        .map(|i| {
            serde_json::from_value(serde_json::json!({
                "id": format!("01JD6Z6Y7A{i:016}"),
                "occurred_at": "2026-11-22T09:00:01.250Z",
                "tenant": "acme",
                "correlation_id": "run-42",
                "chain_id": "plan-7",
                "actor": "agent:researcher",
                "kind": "tool.call",
                "subject": "web.search",
                "payload": {"arguments": {"query": "quarterly revenue"}, "duration_ms": 812, "ok": true},
                "labels": {"env": "prod", "source": "oxios"},
            }))
            .expect("valid event")
        })
        .collect()
}

fn spec(path: &str) -> PluginSpec {
    PluginSpec {
        name: "bench".to_string(),
        component: std::fs::read(path).expect("guest built"),
        config: r#"{"label": "env"}"#.to_string(),
        limits: Limits::default(),
    }
}

fn apply(c: &mut Criterion) {
    let engine = PluginEngine::new(EngineOptions::default()).expect("engine");
    let mut group = c.benchmark_group("apply");
    for (name, path) in [
        ("noop", vellum_guest_artifacts::NOOP),
        ("template", vellum_guest_artifacts::TEMPLATE),
    ] {
        let mut plugin = Plugin::load(&engine, spec(path), None).expect("loads");
        for n in [1usize, 64] {
            let batch = events(n);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(name, n), &batch, |b, batch| {
                b.iter(|| black_box(plugin.apply(black_box(batch))))
            });
        }
    }
    group.finish();
}

fn load(c: &mut Criterion) {
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    let cold = PluginEngine::new(EngineOptions::default()).expect("engine");
    group.bench_function("cold", |b| {
        b.iter(|| Plugin::load(&cold, spec(vellum_guest_artifacts::TEMPLATE), None).expect("loads"))
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let cached = PluginEngine::new(EngineOptions {
        fuel: false,
        cache_dir: Some(dir.path().to_path_buf()),
    })
    .expect("engine");
    Plugin::load(&cached, spec(vellum_guest_artifacts::TEMPLATE), None).expect("warms the cache");
    group.bench_function("cached", |b| {
        b.iter(|| {
            Plugin::load(&cached, spec(vellum_guest_artifacts::TEMPLATE), None).expect("loads")
        })
    });
    group.finish();
}

criterion_group!(benches, apply, load);
criterion_main!(benches);
