//! `vellum test`: run a plugin against a cases file.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use vellum::plugin::{
    ComponentCache, EngineOptions, Limits, Plugin, PluginEngine, PluginSpec, PseudonymKey,
};
use vellum::testing::transcript::Transcript;
use vellum::testing::{self, CaseFile};
use vellum_redact_core::{Config as RedactConfig, Redactor};

use super::{exit, report};

/// The key used for `pseudonymize` when no key file is given: fixed and public, so that
/// expected pseudonyms in case files are reproducible. Never use it in production.
const TEST_KEY: [u8; 32] = *b"vellum-test-key-not-for-real-use";

/// Arguments of `vellum test`.
#[derive(Args)]
pub struct TestArgs {
    /// The plugin component (.wasm), or `builtin:NAME`.
    component: PathBuf,
    /// The plugin's configuration file (passed to `configure`); empty when omitted.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The cases file (TOML).
    #[arg(long)]
    cases: PathBuf,
    /// Also fail when a kept event still contains PII or secrets found by the built-in
    /// redactor's detectors.
    #[arg(long)]
    leak_check: bool,
    /// A redact-plugin configuration for the leak check (its allow-lists and rules apply);
    /// implies --leak-check. Default: the built-in detectors with no allow-list.
    #[arg(long)]
    leak_config: Option<PathBuf>,
    /// Key for `pseudonymize` (hex); default: a fixed public test key.
    #[arg(long)]
    pseudonym_key_file: Option<PathBuf>,
    /// Print passing cases too.
    #[arg(long, short)]
    verbose: bool,
    /// Also write the calls as made — events in, verdicts out, in WIT shapes — to this
    /// JSON file, for replaying the plugin in another component host.
    #[arg(long)]
    record: Option<PathBuf>,
}

/// Runs the cases; exit 0 when all pass, `TEST_FAILED` otherwise.
pub fn test(args: TestArgs) -> u8 {
    let loaded = (|| -> anyhow::Result<(Plugin, CaseFile, Option<Redactor>, Transcript)> {
        let text = std::fs::read_to_string(&args.cases)
            .with_context(|| format!("cannot read {}", args.cases.display()))?;
        let cases =
            CaseFile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", args.cases.display()))?;
        let config = match &args.config {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
            None => String::new(),
        };
        let (key, key_hex) = match &args.pseudonym_key_file {
            Some(path) => (
                PseudonymKey::from_hex_file(path).map_err(anyhow::Error::msg)?,
                std::fs::read_to_string(path)?.trim().to_string(),
            ),
            None => (
                PseudonymKey::new(&TEST_KEY).map_err(anyhow::Error::msg)?,
                hex::encode(TEST_KEY),
            ),
        };
        let transcript = Transcript {
            config: config.clone(),
            pseudonym_key: key_hex,
            calls: Vec::new(),
        };
        let engine = PluginEngine::new(EngineOptions {
            fuel: false,
            cache_dir: ComponentCache::default_dir(),
        })?;
        let spec = PluginSpec {
            name: args
                .component
                .file_stem()
                .map_or("plugin".into(), |s| s.to_string_lossy().into_owned()),
            component: crate::builtins::read_component(&args.component)?,
            config,
            limits: Limits::default(),
        };
        let plugin = Plugin::load(&engine, spec, Some(key))?;
        let leak = match (&args.leak_config, args.leak_check) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let config = RedactConfig::parse(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                Some(
                    Redactor::new(&config)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                )
            }
            (None, true) => {
                Some(Redactor::new(&RedactConfig::default()).map_err(|e| anyhow::anyhow!("{e}"))?)
            }
            (None, false) => None,
        };
        Ok((plugin, cases, leak, transcript))
    })();
    let (mut plugin, cases, leak, mut transcript) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            report(&e);
            return exit::CONFIG;
        }
    };
    let results = testing::run(&mut plugin, &cases, leak.as_ref());
    if let Some(path) = &args.record {
        transcript.calls = results.iter().map(|r| r.call.clone()).collect();
        let written = serde_json::to_vec_pretty(&transcript)
            .map_err(anyhow::Error::from)
            .and_then(|json| {
                std::fs::write(path, json)
                    .with_context(|| format!("cannot write {}", path.display()))
            });
        if let Err(e) = written {
            report(&e);
            return exit::ERROR;
        }
    }
    let failed = results.iter().filter(|r| !r.failures.is_empty()).count();
    for result in &results {
        if result.failures.is_empty() {
            if args.verbose {
                say!("PASS {}", result.name);
            }
            continue;
        }
        say!("FAIL {}", result.name);
        for failure in &result.failures {
            say!("  {failure}");
        }
    }
    say!("{} passed, {failed} failed", results.len() - failed);
    if failed == 0 {
        exit::OK
    } else {
        exit::TEST_FAILED
    }
}
