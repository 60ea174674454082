//! The Vellum demo on the embedded default (SQLite): sample audit events of three agent
//! runtimes go through a chain holding the template plugin (built from source), are
//! committed to a fresh ledger, then queried, checkpointed, proven and verified.
//!
//! Run it with `cargo run -p vellum --example demo`.

use std::io::BufReader;
use std::path::Path;

use anyhow::{Context, Result};
use vellum::chain::{Chain, ChainConfig, LoadOptions, Outcome};
use vellum::event::JsonLinesReader;
use vellum::ledger::checkpoint::verify_checkpoint;
use vellum::ledger::entry::Record;
use vellum::ledger::query::Query;
use vellum::ledger::store::sqlite::SqliteStore;
use vellum::ledger::verify::verify;
use vellum::{Ledger, LedgerOptions};

fn main() -> Result<()> {
    // 1. The chain: one plugin, the template, upper-casing the `env` label.
    let chain_toml = format!(
        r#"
batch-size = 64

[[plugin]]
name = "upper-env"
component = "{}"
config = '{{"label": "env"}}'

[plugin.limits]
deadline-ms = 100
max-memory-bytes = 16777216
"#,
        vellum_guest_artifacts::TEMPLATE
    );
    let config = ChainConfig::parse(&chain_toml, Path::new("."))?;
    let started = std::time::Instant::now();
    let mut chain = Chain::load(&config, &LoadOptions::default())?;
    println!("1. chain loaded in {:?}:", started.elapsed());
    for plugin in chain.plugins() {
        println!("   {} {}", plugin.name(), plugin.digest());
    }

    // 2. The ledger: a new SQLite file and its Ed25519 signing key.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.db");
    let vkey = Ledger::init(&path, "vellum/demo")?;
    let ledger = Ledger::open(&path, LedgerOptions::default())?;
    println!("2. ledger {} (verifier key {vkey})", path.display());

    // 3. Events → chain → ledger; receipts come back only once the entries are durable.
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/events.jsonl");
    let file =
        std::fs::File::open(&sample).with_context(|| format!("opening {}", sample.display()))?;
    let mut events = Vec::new();
    for item in JsonLinesReader::new(BufReader::new(file)) {
        let (_, event) = item?.map_err(|bad| anyhow::anyhow!("{}:{bad}", sample.display()))?;
        events.push(event);
    }
    let outcomes = chain.apply(events);
    for outcome in &outcomes {
        if let Outcome::Keep { event, .. } = outcome {
            println!(
                "   kept {} {:<22} labels {:?}",
                event.id, event.kind, event.labels
            );
        }
    }
    let receipts = ledger.append(
        outcomes
            .into_iter()
            .filter_map(Record::from_outcome)
            .collect(),
    )?;
    println!(
        "3. committed {} entries, seq {}..={}",
        receipts.len(),
        receipts[0].seq,
        receipts[receipts.len() - 1].seq
    );

    // 4. Query by tenant.
    let page = ledger.query(&Query {
        tenant: Some("globex".into()),
        limit: 10,
        ..Query::default()
    })?;
    println!(
        "4. tenant globex: {:?}",
        page.entries
            .iter()
            .map(|e| (&e.seq, &e.event.kind))
            .collect::<Vec<_>>()
    );

    // 5. Checkpoint, then prove an entry with only the checkpoint and the public key.
    let note = ledger.checkpoint()?;
    let checkpoint = verify_checkpoint(&note, &vkey)?;
    let (proof, _) = ledger.prove_inclusion(2, None)?;
    proof.verify(&checkpoint)?;
    println!(
        "5. checkpoint of size {} signed; entry 2 proven in it ({} hashes)",
        checkpoint.size,
        proof.path.len()
    );

    // 6. Verify the whole ledger.
    drop(ledger);
    let report = verify(&SqliteStore::open(&path)?, &vkey, None, &mut |_, _| {})?;
    println!(
        "6. verify: {} entries, {} checkpoint(s), {}",
        report.entries_checked,
        report.checkpoints_checked,
        if report.ok() { "intact" } else { "TAMPERED" }
    );
    Ok(())
}
