//! The Vellum demo: runs the sample audit events of three agent runtimes through a chain
//! holding the template plugin (built from source) and prints what the chain decided.
//!
//! Run it with `cargo run -p vellum --example demo`.

use std::io::BufReader;
use std::path::Path;

use anyhow::{Context, Result};
use vellum::chain::{Chain, ChainConfig, LoadOptions};
use vellum::event::JsonLinesReader;

fn main() -> Result<()> {
    let chain_toml = format!(
        r#"
batch-size = 64

[[plugin]]
name = "upper-env"
component = "{}"
config = '{{"label": "env"}}'
on-error = "reject"

[plugin.limits]
deadline-ms = 100
max-memory-bytes = 16777216
"#,
        vellum_guest_artifacts::TEMPLATE
    );
    println!("chain.toml:{chain_toml}");
    let config = ChainConfig::parse(&chain_toml, Path::new("."))?;
    let started = std::time::Instant::now();
    let mut chain = Chain::load(&config, &LoadOptions::default())?;
    println!(
        "loaded {} plugin(s) in {:?}",
        config.plugins.len(),
        started.elapsed()
    );
    for plugin in chain.plugins() {
        println!(
            "  {} {} (config {})",
            plugin.name(),
            plugin.digest(),
            plugin.config_digest()
        );
    }

    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/events.jsonl");
    let file =
        std::fs::File::open(&sample).with_context(|| format!("opening {}", sample.display()))?;
    let mut events = Vec::new();
    for item in JsonLinesReader::new(BufReader::new(file)) {
        let (_, event) = item?.map_err(|bad| anyhow::anyhow!("{}:{bad}", sample.display()))?;
        events.push(event);
    }
    println!("\n{} events in, verdicts out:", events.len());
    for outcome in chain.apply(events) {
        println!("{}", serde_json::to_string(&outcome)?);
    }
    Ok(())
}
