//! The Vellum demo on the embedded default (SQLite): audit events of three agent runtimes go
//! through the sink — the shipped redact and policy plugins (built from source), then a
//! fresh ledger — and are then queried, checkpointed, proven and verified.
//!
//! Run it with `cargo run -p vellum --example demo`.

use std::io::BufReader;
use std::path::Path;

use anyhow::{Context, Result};
use vellum::chain::{ChainConfig, LoadOptions};
use vellum::event::JsonLinesReader;
use vellum::ledger::checkpoint::verify_checkpoint;
use vellum::ledger::query::Query;
use vellum::ledger::store::sqlite::SqliteStore;
use vellum::ledger::verify::verify;
use vellum::sink::{LedgerConfig, SinkOptions};
use vellum::{AuditEvent, Ledger, Sink, SinkConfig, StatusChange};

fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");

    // 1. The chain: redaction (PII and secrets, e-mails pseudonymised with a host-held key),
    //    then policy (destructive tool calls in prod are rejected, heartbeats dropped).
    let key = dir.path().join("pseudonym.key");
    std::fs::write(&key, "6b".repeat(32))?;
    let chain_toml = format!(
        r#"
pseudonym-key-file = "{key}"

[[plugin]]
name = "redact"
component = "{redact}"
config-file = "{root}/guest/redact/cases/config.toml"

[[plugin]]
name = "policy"
component = "{policy}"
config-file = "{root}/guest/policy/cases/policy.toml"
"#,
        key = key.display(),
        redact = vellum_guest_artifacts::REDACT,
        policy = vellum_guest_artifacts::POLICY,
        root = root.display(),
    );

    // 2. The ledger: a new SQLite file and its Ed25519 signing key.
    let path = dir.path().join("audit.db");
    let vkey = Ledger::init(&path, "vellum/demo")?;
    let config = SinkConfig {
        server: None,
        retention: Default::default(),
        sink: SinkOptions::default(),
        ledger: LedgerConfig::at(&path),
        chain: ChainConfig::parse(&chain_toml, Path::new("."))?,
    };
    let started = std::time::Instant::now();
    let sink = Sink::open(&config, &LoadOptions::default())?;
    println!(
        "1. sink open in {:?} (ledger {})",
        started.elapsed(),
        path.display()
    );
    for plugin in sink.chain().plugins() {
        println!("   plugin {:<7} {}", plugin.name(), plugin.digest());
    }

    // 3. Events → sink; a receipt comes back only once the entry is durable.
    let sample = root.join("host/examples/events.jsonl");
    let file =
        std::fs::File::open(&sample).with_context(|| format!("opening {}", sample.display()))?;
    let mut events = Vec::new();
    for item in JsonLinesReader::new(BufReader::new(file)) {
        let (_, event) = item?.map_err(|bad| anyhow::anyhow!("{}:{bad}", sample.display()))?;
        events.push(event);
    }
    events.extend([
        extra(r#"{"id":"x1","tenant":"acme","actor":"agent:mailer","kind":"tool.call","subject":"email.send",
                  "payload":{"to":"ada@example.com","api_key":"sk_live_4eC39HqLyjWDarjtT1zdp7dc"},"labels":{"env":"prod"}}"#)?,
        extra(r#"{"id":"x2","tenant":"acme","actor":"agent:ops","kind":"tool.call","subject":"fs.delete",
                  "payload":{"tool":"fs.delete","path":"/data"},"labels":{"env":"prod"}}"#)?,
        extra(r#"{"id":"x3","tenant":"acme","kind":"heartbeat.agent","payload":{"alive":true}}"#)?,
    ]);
    for event in events {
        let id = event.id.clone();
        match sink.emit(event) {
            Ok(receipt) => println!(
                "   {id:<28} -> entry {} ({:?})",
                receipt.seq, receipt.disposition
            ),
            Err(error) => println!("   {id:<28} -> not recorded: {error}"),
        }
    }
    let envelope = extra(r#"{"id":"s1","tenant":"acme","actor":"agent:planner","kind":"-"}"#)?;
    let change = StatusChange {
        intent_id: "intent-8".into(),
        plan_id: Some("plan-7".into()),
        old_status: "active".into(),
        new_status: "failed".into(),
        reason: "tool budget exhausted".into(),
        triggering_action_id: None,
    };
    let receipt = sink.emit_status_change(envelope, change)?;
    println!("2. status change of intent-8 -> entry {}", receipt.seq);

    // 4. Query by tenant: what was stored, after redaction.
    let page = sink.ledger().query(&Query {
        tenant: Some("acme".into()),
        limit: 20,
        ..Query::default()
    })?;
    println!("3. tenant acme, as stored:");
    for entry in &page.entries {
        println!(
            "   {:>2} {:<22} {}",
            entry.seq,
            entry.event.kind,
            entry.event.payload.as_str()
        );
    }

    // 5. Close (signs a final checkpoint), then prove an entry with only the checkpoint and
    //    the public key.
    let note = sink.close()?;
    let checkpoint = verify_checkpoint(&note, &vkey)?;
    let (proof, _) = sink.ledger().prove_inclusion(2, None)?;
    proof.verify(&checkpoint)?;
    println!(
        "4. checkpoint of size {} signed; entry 2 proven in it ({} hashes)",
        checkpoint.size,
        proof.path.len()
    );
    drop(sink);

    // 6. Verify the whole ledger.
    let report = verify(&SqliteStore::open(&path)?, &vkey, None, &mut |_, _| {})?;
    println!(
        "5. verify: {} entries, {} checkpoint(s), {}",
        report.entries_checked,
        report.checkpoints_checked,
        if report.ok() { "intact" } else { "TAMPERED" }
    );
    Ok(())
}

/// A demo event from JSON without the timestamp, which is set to now.
fn extra(json: &str) -> Result<AuditEvent> {
    let mut value: serde_json::Value = serde_json::from_str(json)?;
    value["occurred_at"] = jiff::Timestamp::now().to_string().into();
    Ok(serde_json::from_value(value)?)
}
