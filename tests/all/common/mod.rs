//! Helpers shared by the integration tests: loading the guests built from source and
//! making events.

#![allow(dead_code)] // each test binary uses a different subset

#[macro_use]
pub mod backend;

use vellum::AuditEvent;
use vellum::plugin::{
    EngineOptions, Limits, Plugin, PluginEngine, PluginError, PluginSpec, PseudonymKey,
};

/// A chain compiled from chain-file TOML (paths relative to the working directory), without
/// the on-disk cache.
pub fn chain_template(toml: &str) -> std::sync::Arc<vellum::ChainTemplate> {
    let config = vellum::ChainConfig::parse(toml, std::path::Path::new(".")).expect("chain TOML");
    let options = vellum::chain::LoadOptions {
        no_cache: true,
        ..Default::default()
    };
    vellum::ChainTemplate::load(&config, &options).expect("the chain loads")
}

/// An engine without the on-disk cache (tests must not depend on the user's cache).
pub fn engine(fuel: bool) -> PluginEngine {
    PluginEngine::new(EngineOptions {
        fuel,
        cache_dir: None,
    })
    .expect("engine")
}

/// Loads a guest component built by `vellum-guest-artifacts`.
pub fn try_load(
    engine: &PluginEngine,
    component: &str,
    config: &str,
    limits: Limits,
    key: Option<PseudonymKey>,
) -> Result<Plugin, PluginError> {
    let spec = PluginSpec {
        name: "under-test".to_string(),
        component: std::fs::read(component).expect("guest component was built"),
        config: config.to_string(),
        limits,
    };
    Plugin::load(engine, spec, key)
}

/// Like [`try_load`], for components expected to load.
pub fn load(engine: &PluginEngine, component: &str, limits: Limits) -> Plugin {
    try_load(engine, component, "", limits, None).expect("plugin loads")
}

/// An event with the given id, kind and JSON payload.
pub fn event(id: &str, kind: &str, payload: serde_json::Value) -> AuditEvent {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "occurred_at": "2026-11-22T10:00:00Z",
        "tenant": "acme",
        "correlation_id": "corr-1",
        "chain_id": "chain-1",
        "actor": "agent:planner",
        "kind": kind,
        "subject": "intent-7",
        "payload": payload,
        "labels": {"env": "prod"},
    }))
    .expect("valid event")
}

/// A batch of `n` ordinary events.
pub fn ordinary(n: usize) -> Vec<AuditEvent> {
    (0..n)
        .map(|i| event(&format!("ok-{i}"), "tool.call", serde_json::json!({"i": i})))
        .collect()
}

/// A fresh ledger in a temporary directory (kept alive by the returned guard).
pub fn new_ledger() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.db");
    vellum::Ledger::init(&path, "vellum/test").expect("init");
    (dir, path)
}

/// Records of `n` ordinary events whose ids start with `prefix`.
pub fn records(prefix: &str, n: usize) -> Vec<vellum::ledger::entry::Record> {
    (0..n)
        .map(|i| {
            let e = event(
                &format!("{prefix}-{i}"),
                "tool.call",
                serde_json::json!({"i": i}),
            );
            vellum::ledger::entry::Record::unfiltered(e)
        })
        .collect()
}

/// A full `verify` run over a closed ledger file, with the ledger's own verifier key.
pub fn verify_report(path: &std::path::Path) -> vellum::ledger::verify::VerifyReport {
    let store = vellum::ledger::store::Location::from(path)
        .open_reader_tolerant()
        .expect("open ledger");
    let vkey = vellum::ledger::read_vkey(path).expect("verifier key");
    vellum::ledger::verify::verify(store.as_ref(), &vkey, None, &mut |_, _| {})
        .expect("verify runs")
}

/// Asserts that a closed ledger file verifies with no findings.
pub fn assert_verifies(path: &std::path::Path) {
    let report = verify_report(path);
    assert!(report.ok(), "{:?}", report.findings);
}

/// What an intercepted append does instead: it gets the real store and the append's
/// arguments, and may delay, fail, or pass the append on.
pub type AppendHook = Box<
    dyn FnMut(
            &mut dyn vellum::ledger::store::StoreWriter,
            &[(vellum::ledger::entry::Entry, vellum::ledger::Hash)],
            &[(u64, vellum::ledger::Hash)],
            &[vellum::ledger::idempotency::StoredKey],
        ) -> Result<(), vellum::ledger::store::StoreError>
        + Send,
>;

/// A store whose appends go through a hook (fault or latency injection); reads and
/// checkpoints go straight to the store.
struct InterceptedStore {
    inner: Box<dyn vellum::ledger::store::StoreWriter>,
    hook: AppendHook,
}

mod intercepted {
    use vellum::ledger::Hash;
    use vellum::ledger::content::KeyId;
    use vellum::ledger::entry::Entry;
    use vellum::ledger::idempotency::StoredKey;
    use vellum::ledger::query::{Page, Query};
    use vellum::ledger::store::{StoreError, StoreReader, StoreWriter};

    impl StoreReader for super::InterceptedStore {
        fn size(&self) -> Result<u64, StoreError> {
            self.inner.size()
        }
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
            self.inner.read_hashes(indexes)
        }
        fn entries(&self, from: u64, to: u64) -> Result<Vec<(Entry, Hash)>, StoreError> {
            self.inner.entries(from, to)
        }
        fn query(&self, query: &Query) -> Result<Page, StoreError> {
            self.inner.query(query)
        }
        fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
            self.inner.checkpoints()
        }
        fn checkpoint(&self, size: u64) -> Result<Option<String>, StoreError> {
            self.inner.checkpoint(size)
        }
        fn cosignatures(&self, size: Option<u64>) -> Result<Vec<(u64, String)>, StoreError> {
            self.inner.cosignatures(size)
        }
        fn timestamps(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
            self.inner.timestamps()
        }
        fn idempotency_key(&self, scope: &str, key: &str) -> Result<Option<StoredKey>, StoreError> {
            self.inner.idempotency_key(scope, key)
        }
        fn erased_keys(&self, after: u64) -> Result<Vec<(u64, KeyId, u64)>, StoreError> {
            self.inner.erased_keys(after)
        }
    }

    impl StoreWriter for super::InterceptedStore {
        fn begin_append(&mut self) -> Result<(), StoreError> {
            self.inner.begin_append()
        }
        fn abort_append(&mut self) {
            self.inner.abort_append()
        }
        fn erase(
            &mut self,
            record: u64,
            keys: &[(KeyId, Option<String>)],
            seqs: &[u64],
        ) -> Result<u64, StoreError> {
            self.inner.erase(record, keys, seqs)
        }
        fn append(
            &mut self,
            entries: &[(Entry, Hash)],
            hashes: &[(u64, Hash)],
            keys: &[StoredKey],
        ) -> Result<(), StoreError> {
            (self.hook)(self.inner.as_mut(), entries, hashes, keys)
        }
        fn put_checkpoint(&mut self, size: u64, note: &str) -> Result<(), StoreError> {
            self.inner.put_checkpoint(size, note)
        }
        fn put_cosignature(
            &mut self,
            size: u64,
            witness: &str,
            line: &str,
        ) -> Result<(), StoreError> {
            self.inner.put_cosignature(size, witness, line)
        }
        fn put_timestamp(&mut self, size: u64, token: &[u8]) -> Result<(), StoreError> {
            self.inner.put_timestamp(size, token)
        }
    }
}

/// Opens the ledger at `location` with every append going through `hook`.
pub fn ledger_with_append_hook(
    location: impl Into<vellum::ledger::store::Location>,
    hook: AppendHook,
) -> vellum::Ledger {
    let location = location.into();
    let writer = InterceptedStore {
        inner: location.open_writer().expect("open ledger"),
        hook,
    };
    let reader = location.open_reader().expect("open ledger");
    vellum::Ledger::open_with(
        &location,
        Box::new(writer),
        reader,
        vellum::LedgerOptions::default(),
    )
    .expect("ledger opens")
}
