//! Redaction speed, native against the sandboxed plugin, in one run:
//! `cargo bench -p vellum --bench redact`.
//!
//! The same generated corpus (`corpus.rs`, `VELLUM_BENCH_EVENTS` events, default 100,000,
//! ~450 bytes of JSON each) and the same configuration (`guest/redact/cases/config.toml`)
//! go through `vellum-redact-core` compiled natively and through the shipped `redact`
//! component (`Plugin::apply`, batches of 64). Both do the guest's work per event: parse
//! the payload, redact every string in it and the configured envelope fields (actor,
//! subject, labels), parsing the payload into a tree and serialising it again only when a
//! read-only scan of its text says something may change. The plugin's figure also holds the WIT boundary (lowering
//! the batch, lifting and checking the verdicts). Prints MB/s of event JSON for each, and
//! their ratio; asserts nothing. With `VELLUM_BENCH_DENSE=1` every event's payload also
//! carries several findings (an e-mail, a phone, a card, an AWS key and a password in a
//! `NAME=value` line): the PII-dense corpus. With `VELLUM_BENCH_WRITE_CORPUS=DIR` it also writes the
//! corpus as JSON lines and a chain of the same configuration into DIR, for timing
//! `vellum run --chain DIR/chain.toml --input DIR/corpus.jsonl`.

mod corpus;

use std::hint::black_box;
use std::time::Instant;

use vellum::AuditEvent;
use vellum::plugin::{EngineOptions, Limits, Plugin, PluginEngine, PluginSpec, PseudonymKey};
use vellum_redact_core::{Change, Config, Redactor};

const BATCH: usize = 64;

/// The pseudonym key of the benchmark: fixed and public, never for real use.
const BENCH_KEY: [u8; 32] = [7; 32];

fn main() {
    let n: usize = std::env::var("VELLUM_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let (mut events, mut bytes) = corpus::corpus(n, 50);
    if std::env::var_os("VELLUM_BENCH_DENSE").is_some() {
        (events, bytes) = densify(events);
        println!("PII-dense: every payload carries five findings");
    }
    let config_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../guest/redact/cases/config.toml"
    );
    if let Some(dir) = std::env::var_os("VELLUM_BENCH_WRITE_CORPUS") {
        write_corpus(&events, std::path::Path::new(&dir), config_path);
    }
    let config = std::fs::read_to_string(config_path).expect("redact config");
    let mb = bytes as f64 / 1e6;
    println!("{n} events, {mb:.1} MB of JSON, config {config_path}");

    let redactor = Redactor::new(&Config::parse(&config).expect("config")).expect("redactor");
    let key = PseudonymKey::new(&BENCH_KEY).expect("key");
    // Warm up, then measure.
    native(&redactor, &key, &events[..n.min(1_000)]);
    let start = Instant::now();
    let changed = native(&redactor, &key, &events);
    let native_s = start.elapsed().as_secs_f64();
    println!(
        "native  {:>8.1} MB/s  {:>6.2} µs/event  ({changed} events changed)",
        mb / native_s,
        native_s * 1e6 / n as f64
    );

    let engine = PluginEngine::new(EngineOptions::default()).expect("engine");
    let spec = PluginSpec {
        name: "redact".to_string(),
        component: std::fs::read(vellum_guest_artifacts::REDACT).expect("guest built"),
        config: config.clone(),
        limits: Limits::default(),
    };
    let mut plugin = Plugin::load(&engine, spec, Some(key)).expect("plugin loads");
    for batch in events[..n.min(1_000)].chunks(BATCH) {
        black_box(plugin.apply(batch));
    }
    let start = Instant::now();
    for batch in events.chunks(BATCH) {
        for verdict in plugin.apply(black_box(batch)) {
            verdict.expect("the plugin redacts");
        }
    }
    let plugin_s = start.elapsed().as_secs_f64();
    println!(
        "plugin  {:>8.1} MB/s  {:>6.2} µs/event  (batches of {BATCH})",
        mb / plugin_s,
        plugin_s * 1e6 / n as f64
    );
    println!("plugin / native: {:.2}×", native_s / plugin_s);

    // What every tenant's first event pays: compiling the configuration, natively and as a
    // fresh plugin instance (instantiate + configure), which each tenant gets.
    const FRESH: u32 = 20;
    let start = Instant::now();
    for _ in 0..FRESH {
        black_box(Redactor::new(&Config::parse(&config).expect("config")).expect("redactor"));
    }
    let native_new = start.elapsed() / FRESH;
    let template = plugin.template().clone();
    let start = Instant::now();
    for _ in 0..FRESH {
        let mut fresh = template.instance();
        black_box(fresh.apply(&[]));
    }
    let plugin_new = start.elapsed() / FRESH;
    println!(
        "configure: native {:.1} ms, fresh plugin instance {:.1} ms",
        native_new.as_secs_f64() * 1e3,
        plugin_new.as_secs_f64() * 1e3
    );
}

/// The PII-dense corpus: every payload gains a note with five findings; returns the events
/// and their bytes of JSON.
fn densify(events: Vec<AuditEvent>) -> (Vec<AuditEvent>, usize) {
    let note = "Reach ada.lovelace@example.com or +1 415 555 2671; card 4111 1111 1111 1111; \
                DB_PASSWORD=hunter2 and key AKIAIOSFODNN7EXAMPLE";
    let mut bytes = 0;
    let events = events
        .into_iter()
        .map(|mut event| {
            let mut payload: serde_json::Value =
                serde_json::from_str(event.payload.as_str()).expect("JSON payload");
            payload["note"] = note.into();
            event.payload = vellum::event::Payload::from_value(&payload);
            bytes += serde_json::to_string(&event).expect("event").len() + 1;
            event
        })
        .collect();
    (events, bytes)
}

/// Writes, into `dir`, the corpus as JSON lines (`corpus.jsonl`), the benchmark's
/// pseudonym key (`pseudonym.key`, the fixed key below) and a chain with this configuration
/// (`chain.toml`), for timing `vellum run` on the same events (see BENCHMARKS.md).
fn write_corpus(events: &[AuditEvent], dir: &std::path::Path, config_path: &str) {
    use std::io::Write;
    std::fs::create_dir_all(dir).expect("create the corpus directory");
    let file = std::fs::File::create(dir.join("corpus.jsonl")).expect("create the corpus file");
    let mut out = std::io::BufWriter::new(file);
    for event in events {
        serde_json::to_writer(&mut out, event).expect("write an event");
        out.write_all(b"\n").expect("write an event");
    }
    out.flush().expect("write the corpus file");
    std::fs::write(dir.join("pseudonym.key"), hex::encode(BENCH_KEY)).expect("write the key");
    let chain = format!(
        "pseudonym-key-file = \"pseudonym.key\"\n\n[[plugin]]\nname = \"redact\"\n\
         component = \"builtin:redact\"\nconfig-file = {config_path:?}\n"
    );
    std::fs::write(dir.join("chain.toml"), chain).expect("write the chain");
    println!(
        "wrote corpus.jsonl, chain.toml and pseudonym.key to {}",
        dir.display()
    );
}

/// The guest's per-event work, natively (as `guest/redact/src/lib.rs` does it: an event in
/// which nothing is found is not serialised again); returns how many events changed.
fn native(redactor: &Redactor, key: &PseudonymKey, events: &[AuditEvent]) -> usize {
    let mut hash = |domain: &str, value: &str| key.pseudonym(domain, value);
    let mut changed = 0;
    for event in events {
        let mut payload = serde_json::Value::Null;
        let payload_change = match redactor.needs_redaction(event.payload.as_str()) {
            Ok(false) => Change::Unchanged,
            Ok(true) => {
                payload = serde_json::from_str(event.payload.as_str()).expect("JSON payload");
                redactor.redact_json(&mut payload, &mut hash)
            }
            Err(e) => panic!("the corpus payloads are JSON: {e}"),
        };
        let protected = [
            ("id", Some(event.id.as_str())),
            ("kind", Some(event.kind.as_str())),
            ("correlation_id", event.correlation_id.as_deref()),
            ("chain_id", event.chain_id.as_deref()),
        ];
        if redactor.protected_refusal(&protected).is_some() {
            continue;
        }
        let mut actor = event.actor.clone();
        let mut subject = event.subject.clone();
        let mut any = payload_change.changed();
        for field in [&mut actor, &mut subject] {
            if let Some(value) = field.as_mut() {
                match redactor.redact_string(value, &mut hash) {
                    Change::Remove => {
                        *field = None;
                        any = true;
                    }
                    change => any |= change.changed(),
                }
            }
        }
        let mut labels = event.labels.clone();
        labels.retain(|k, v| {
            let change = redactor.redact_string(v, &mut hash);
            any |= change.changed();
            if redactor.is_sensitive_key(k) && v != "[SECRET]" {
                *v = "[SECRET]".to_string();
                any = true;
            }
            change != Change::Remove
        });
        if any {
            changed += 1;
            let payload = match payload_change {
                Change::Remove => "{}".to_string(),
                _ => payload.to_string(),
            };
            black_box((payload, actor, subject, labels));
        }
    }
    changed
}
