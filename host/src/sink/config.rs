//! The sink's configuration: one TOML file with a `[sink]` table (the pipeline), a
//! `[ledger]` table (where and how entries are committed) and a `[chain]` table (the
//! plugins, exactly as in a chain file). See the README's "Run the sink" section.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::chain::{ChainConfig, ConfigError, DEFAULT_TENANT_CAPACITY};
use crate::ledger::erasure::{RetentionRule, SubjectField};
use crate::ledger::publish::Publisher;
use crate::ledger::store::Location;
use crate::ledger::timestamp::{TimestampAuthority, TsaCertificate};
use crate::ledger::witness::Witness;
use crate::ledger::witness_policy::WitnessPolicy;
use crate::ledger::{LedgerError, LedgerOptions};

/// Largest accepted `max-emit-events`: one emit is one ledger transaction.
pub const MAX_EMIT_EVENTS: usize = 100_000;

/// A whole sink configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SinkConfig {
    /// The pipeline settings.
    #[serde(default)]
    pub sink: SinkOptions,
    /// The ledger.
    pub ledger: LedgerConfig,
    /// The plugin chain (no plugins: events are recorded as sent).
    #[serde(default)]
    pub chain: ChainConfig,
    /// The `[server]` table, which `vellum serve` reads; the library only allows it.
    #[serde(default)]
    pub server: Option<serde::de::IgnoredAny>,
    /// The `[retention]` table: how long entries' content is kept.
    #[serde(default)]
    pub retention: RetentionConfig,
}

/// The `[retention]` table: rules (`[[retention.rule]]`) and how often `vellum serve`
/// applies them. `vellum retention run` applies them once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RetentionConfig {
    /// The rules: for each entry, the most specific one that applies (tenant and kind,
    /// then tenant, then kind, then neither) says how long its content is kept.
    #[serde(default)]
    pub rule: Vec<RetentionRule>,
    /// Seconds between two runs in `vellum serve` (default 3600).
    #[serde(default = "default_retention_interval")]
    pub interval_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            rule: Vec::new(),
            interval_secs: default_retention_interval(),
        }
    }
}

fn default_retention_interval() -> u64 {
    3600
}

/// The `[ledger]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LedgerConfig {
    /// The ledger, created beforehand by `vellum init`: a SQLite file, or a `postgres://`
    /// URL.
    pub path: PathBuf,
    /// The signing key file (default: `<path>.key` beside a SQLite file; a PostgreSQL
    /// ledger must name it).
    #[serde(default)]
    pub signing_key: Option<PathBuf>,
    /// A shell command that prints the signing key (for a secret manager) instead of a
    /// file; `verifier-key` must then be given.
    #[serde(default)]
    pub signing_key_command: Option<String>,
    /// The verifier key file (default: the signing key's path with `.pub` for `.key`).
    #[serde(default)]
    pub verifier_key: Option<PathBuf>,
    /// A directory that receives every signed checkpoint as `checkpoint.<size>` (never
    /// replaced), to keep outside the ledger.
    #[serde(default)]
    pub publish_dir: Option<PathBuf>,
    /// A shell command run with every signed checkpoint on standard input
    /// (`VELLUM_CHECKPOINT_SIZE` in its environment).
    #[serde(default)]
    pub publish_command: Option<String>,
    /// Witnesses asked to cosign each checkpoint (`[[ledger.witness]]` tables); their
    /// cosignatures are stored beside the checkpoints.
    #[serde(default)]
    pub witness: Vec<WitnessConfig>,
    /// A witness policy file (see `vellum::ledger::witness_policy`): a checkpoint is
    /// published (and served as the tiles' `checkpoint`) only once its cosignatures meet
    /// the policy's quorum. Its witnesses that name a URL are asked too, besides the
    /// `[[ledger.witness]]` tables.
    #[serde(default)]
    pub witness_policy: Option<PathBuf>,
    /// `[ledger.timestamp]`: an RFC 3161 timestamp authority asked to timestamp every
    /// checkpoint; its tokens are stored beside them (`vellum verify --tsa-cert` checks
    /// them).
    #[serde(default)]
    pub timestamp: Option<TimestampConfig>,
    /// A read-only replica's `postgres://` URL to serve reads (queries, proofs, verify)
    /// from.
    #[serde(default)]
    pub read_replica: Option<String>,
    /// How long the ledger writer waits for more entries before committing, in
    /// milliseconds (default 0: commit what is queued; groups grow with load).
    #[serde(default)]
    pub group_wait_ms: u64,
    /// Sign a checkpoint after this many new entries (default 10,000).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// Sign a checkpoint when there are new entries and this many seconds have passed
    /// (default 60).
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval_secs: u64,
    /// Which field names an event's data subject, whose own data key seals its content so
    /// that `vellum erase --subject` can forget it: `label:NAME` (default
    /// `label:data_subject`), `actor`, `subject`, `correlation_id` or a JSON pointer into the
    /// payload (`/user/id`).
    #[serde(default)]
    pub subject_field: Option<String>,
    /// The key store file of a SQLite ledger (default `<path>.keys`); keep it on other
    /// storage than the ledger's backups.
    #[serde(default)]
    pub key_store: Option<PathBuf>,
}

/// The `[ledger.timestamp]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TimestampConfig {
    /// The authority's URL (`http://` or `https://`), which takes `application/timestamp-query`.
    pub url: String,
    /// The authority's certificate (PEM): when given, each token is checked before it is
    /// stored.
    #[serde(default)]
    pub certificate: Option<PathBuf>,
}

/// A `[[ledger.witness]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WitnessConfig {
    /// The witness's URL prefix (`add-checkpoint` is below it).
    pub url: String,
    /// The file holding the witness's verifier key.
    pub key: PathBuf,
}

impl WitnessConfig {
    /// The witness, with its key read from the file.
    pub fn witness(&self) -> Result<Witness, LedgerError> {
        let vkey = std::fs::read_to_string(&self.key).map_err(|e| {
            LedgerError::BadRequest(format!(
                "cannot read witness key {}: {e}",
                self.key.display()
            ))
        })?;
        Witness::new(&self.url, &vkey)
    }
}

impl LedgerConfig {
    /// The ledger at `path` with the default settings.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            signing_key: None,
            signing_key_command: None,
            verifier_key: None,
            read_replica: None,
            publish_dir: None,
            publish_command: None,
            witness: Vec::new(),
            witness_policy: None,
            timestamp: None,
            group_wait_ms: 0,
            checkpoint_every: default_checkpoint_every(),
            checkpoint_interval_secs: default_checkpoint_interval(),
            subject_field: None,
            key_store: None,
        }
    }

    /// Where the ledger and its keys are.
    pub fn location(&self) -> Location {
        Location::parse(&self.path.to_string_lossy())
            .with_signing_key(self.signing_key.clone())
            .with_signing_key_command(self.signing_key_command.clone())
            .with_verifier_key(self.verifier_key.clone())
            .with_read_replica(self.read_replica.clone())
            .with_key_store(self.key_store.clone())
    }

    /// The ledger's options; fails when a witness's key or the witness policy cannot be
    /// read or the subject field is not one.
    pub fn options(&self) -> Result<LedgerOptions, LedgerError> {
        let policy = self
            .witness_policy
            .as_deref()
            .map(WitnessPolicy::load)
            .transpose()
            .map_err(LedgerError::BadRequest)?;
        let mut witnesses: Vec<Witness> = self
            .witness
            .iter()
            .map(WitnessConfig::witness)
            .collect::<Result<_, _>>()?;
        if let Some(policy) = &policy {
            policy.add_asked(&mut witnesses)?;
        }
        let subject_field = match &self.subject_field {
            None => SubjectField::default(),
            Some(text) => SubjectField::parse(text).map_err(LedgerError::BadRequest)?,
        };
        Ok(LedgerOptions {
            subject_field,
            group_wait: Duration::from_millis(self.group_wait_ms),
            checkpoint_every_entries: self.checkpoint_every,
            checkpoint_interval: Duration::from_secs(self.checkpoint_interval_secs),
            publishers: self
                .publish_dir
                .iter()
                .map(|dir| Publisher::Directory(dir.clone()))
                .chain(
                    self.publish_command
                        .iter()
                        .map(|c| Publisher::Command(c.clone())),
                )
                .collect(),
            witnesses,
            witness_policy: policy,
            timestamp: self
                .timestamp
                .as_ref()
                .map(|t| {
                    let certificate = t
                        .certificate
                        .as_deref()
                        .map(TsaCertificate::load)
                        .transpose()?;
                    TimestampAuthority::new(&t.url, certificate)
                })
                .transpose()
                .map_err(LedgerError::BadRequest)?,
            ..LedgerOptions::default()
        })
    }
}

fn default_checkpoint_every() -> u64 {
    LedgerOptions::default().checkpoint_every_entries
}

fn default_checkpoint_interval() -> u64 {
    LedgerOptions::default().checkpoint_interval.as_secs()
}

/// The `[sink]` table: how events are gathered, processed and committed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct SinkOptions {
    /// Chain worker threads; 0 (the default) means one per core.
    pub workers: usize,
    /// Most events gathered into one pipeline batch (one unit of work for a worker). An
    /// emit's events always stay in one batch, however many they are.
    pub batch_events: usize,
    /// How long to wait for more events before dispatching a batch that is not full, in
    /// microseconds. 0 (the default) dispatches what is queued at once: batches still grow
    /// under load, because events queue while every worker is busy.
    pub batch_wait_us: u64,
    /// Emits that may wait in the queue before `emit` blocks (backpressure).
    pub queue_capacity: usize,
    /// Idle plugin instance sets kept, one per tenant (least recently used discarded): set
    /// it to at least the number of tenants active at once, or their instances are
    /// re-created (and re-configured) over and over.
    pub tenant_instances: usize,
    /// How long an emit may wait for room in a full queue before it fails with
    /// `Unavailable`, in milliseconds. Unset (the default): it waits as long as it takes.
    pub emit_timeout_ms: Option<u64>,
    /// Most events in one `emit_batch`; a larger batch is an invalid event.
    pub max_emit_events: usize,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            workers: 0,
            batch_events: 1024,
            batch_wait_us: 0,
            queue_capacity: 1024,
            tenant_instances: DEFAULT_TENANT_CAPACITY,
            emit_timeout_ms: None,
            max_emit_events: 10_000,
        }
    }
}

impl SinkOptions {
    /// The number of worker threads: `workers`, or the number of cores when it is 0.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// Checks that the settings can work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("batch-events", self.batch_events),
            ("queue-capacity", self.queue_capacity),
            ("tenant-instances", self.tenant_instances),
            ("max-emit-events", self.max_emit_events),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(ConfigError::new(format!(
                    "[sink] {name} must be at least 1"
                )));
            }
        }
        if self.max_emit_events > MAX_EMIT_EVENTS {
            return Err(ConfigError::new(format!(
                "[sink] max-emit-events must be at most {MAX_EMIT_EVENTS}, not {}",
                self.max_emit_events
            )));
        }
        if self.workers > 1024 {
            return Err(ConfigError::new(format!(
                "[sink] workers must be at most 1024, not {}",
                self.workers
            )));
        }
        Ok(())
    }
}

impl SinkConfig {
    /// Reads, parses and validates a sink file; relative paths are relative to its
    /// directory.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(format!("cannot read sink file {}: {e}", path.display()))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base)
            .map_err(|e| e.context(format_args!("invalid sink file {}", path.display())))
    }

    /// Parses and validates sink TOML; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let mut config: SinkConfig =
            toml::from_str(text).map_err(|e| ConfigError::new(e.to_string()))?;
        config.sink.validate()?;
        config.chain.validate().map_err(|e| e.context("[chain]"))?;
        config.chain.resolve_paths(base);
        if let Some(field) = &config.ledger.subject_field {
            SubjectField::parse(field).map_err(|e| ConfigError::new(format!("[ledger] {e}")))?;
        }
        if let Some(rule) = config.retention.rule.iter().find(|r| r.keep_days == 0) {
            return Err(ConfigError::new(format!(
                "[retention] a rule of {} keeps nothing (keep-days = 0); give at least 1",
                rule.tenant
                    .as_deref()
                    .map_or("every tenant".into(), |t| format!("tenant {t}"))
            )));
        }
        let ledger = &mut config.ledger;
        if let Some(file) = ledger.location().relative_to(base).file() {
            ledger.path = file.to_path_buf();
        }
        for key in [
            &mut ledger.signing_key,
            &mut ledger.verifier_key,
            &mut ledger.publish_dir,
            &mut ledger.key_store,
            &mut ledger.witness_policy,
        ]
        .into_iter()
        .flatten()
        {
            if key.is_relative() {
                *key = base.join(&*key);
            }
        }
        if let Some(certificate) = ledger
            .timestamp
            .as_mut()
            .and_then(|t| t.certificate.as_mut())
            .filter(|c| c.is_relative())
        {
            *certificate = base.join(&*certificate);
        }
        for witness in &mut ledger.witness {
            if witness.key.is_relative() {
                witness.key = base.join(&witness.key);
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn witnesses_are_read_with_their_keys_and_a_missing_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (_, vkey) = crate::ledger::cosignature::Cosigner::generate("w.example/1").unwrap();
        std::fs::write(dir.path().join("w.pub"), vkey).unwrap();
        let text = r#"
[ledger]
path = "audit.db"
[[ledger.witness]]
url = "http://127.0.0.1:7380"
key = "w.pub"
"#;
        let config = SinkConfig::parse(text, dir.path()).unwrap();
        let witnesses = config.ledger.options().unwrap().witnesses;
        assert_eq!(witnesses.len(), 1);
        assert_eq!(witnesses[0].key().name(), "w.example/1");
        let elsewhere = SinkConfig::parse(text, Path::new("/nonexistent")).unwrap();
        let err = elsewhere.ledger.options().unwrap_err().to_string();
        assert!(err.contains("/nonexistent/w.pub"), "{err}");
    }

    #[test]
    fn a_full_file_parses_and_paths_resolve() {
        let config = SinkConfig::parse(
            r#"
[sink]
workers = 3
emit-timeout-ms = 250

[ledger]
path = "audit.db"
checkpoint-every = 500

[chain]
batch-size = 16
[[chain.plugin]]
name = "redact"
component = "redact.wasm"
"#,
            Path::new("/srv/vellum"),
        )
        .unwrap();
        assert_eq!(config.sink.worker_count(), 3);
        assert_eq!(config.sink.emit_timeout_ms, Some(250));
        assert_eq!(config.sink.batch_events, 1024);
        assert_eq!(config.ledger.path, Path::new("/srv/vellum/audit.db"));
        assert_eq!(
            config.ledger.options().unwrap().checkpoint_every_entries,
            500
        );
        assert_eq!(config.chain.batch_size, 16);
        assert_eq!(
            config.chain.plugins[0].component,
            Path::new("/srv/vellum/redact.wasm")
        );
    }

    #[test]
    fn a_postgres_url_stays_a_url_and_its_keys_resolve() {
        let config = SinkConfig::parse(
            "[ledger]\npath = \"postgres://vellum@db/audit\"\nsigning-key = \"keys/audit.key\"\n",
            Path::new("/srv/vellum"),
        )
        .unwrap();
        let location = config.ledger.location();
        assert_eq!(location.to_string(), "postgres://vellum@db/audit");
        assert_eq!(location.file(), None);
        assert_eq!(
            location.verifier_key().unwrap(),
            Path::new("/srv/vellum/keys/audit.pub")
        );
    }

    #[test]
    fn errors_name_the_table_and_key() {
        let err = SinkConfig::parse(
            "[sink]\nworkers = 2\nqueue = 3\n[ledger]\npath='a'\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(
            err.message.contains("queue") && err.message.contains("line 3"),
            "{err}"
        );
        let err = SinkConfig::parse(
            "[sink]\nbatch-events = 0\n[ledger]\npath='a'\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(err.message.contains("[sink] batch-events"), "{err}");
        let err = SinkConfig::parse("[chain]\nbatch-size = 16\n", Path::new(".")).unwrap_err();
        assert!(err.message.contains("ledger"), "{err}");
        let err = SinkConfig::parse(
            "[ledger]\npath='a'\n[chain]\nbatch-size = 0\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(
            err.message.contains("[chain]") && err.message.contains("batch-size"),
            "{err}"
        );
    }
}
