//! The PostgreSQL store, for a ledger that many hosts append to at once.
//!
//! One coordinator row (`head`) holds the tree size. An append locks it (`SELECT … FOR
//! UPDATE`), so appends from every host are serialized: the writer reads the size, assigns
//! `[size, size + n)`, integrates the Merkle tree, and the entries, tree hashes, keys and the
//! new size commit in one transaction. Sequence numbers never come from a PostgreSQL
//! sequence (`nextval` leaves gaps on rollback and commits out of order). Since the tree of
//! each size is fixed by that one transaction, two hosts signing a checkpoint of the same
//! size sign the same root.
//!
//! Connections come from a pool: a connection lost to a server restart fails the append in
//! progress (never acknowledged) and is replaced on the next one. TLS (rustls) is used
//! whenever the server offers it (`sslmode=prefer`, the default; `sslmode=require` insists,
//! `sslmode=disable` never asks), and the server's certificate is always verified: against
//! the system's roots, or the PEM file named by `PGSSLROOTCERT` (as with libpq). Triggers refuse UPDATE,
//! DELETE and TRUNCATE on the ledger's tables; `head` may only grow.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use r2d2_postgres::PostgresConnectionManager;
use r2d2_postgres::postgres::{Client, Config};
use r2d2_postgres::r2d2::{Pool, PooledConnection};
use sha2::{Digest, Sha256};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::location::without_password;
use super::row::{ContentRow, ENTRIES_JOINED, READ_COLUMNS, ReadRow, WRITE_COLUMNS, WriteRow};
use super::unseal::{Unsealer, actor_matches, open_row};
use super::{StoreError, StoreReader, StoreWriter};
use crate::event::{Attestation, split_timestamp};
use crate::ledger::Hash;
use crate::ledger::content::KeyId;
use crate::ledger::entry::Entry;
use crate::ledger::idempotency::StoredKey;
use crate::ledger::query::{Page, Query, collect_page};

/// The migrations, in order, each with the tables it adds that are append-only; `vellum
/// init` applies those a database has not seen. The version is kept in `vellum_meta`.
const MIGRATIONS: &[(&str, &[&str])] = &[
    (MIGRATION_1, APPEND_ONLY_TABLES),
    (MIGRATION_2, &["cosignatures"]),
    (MIGRATION_3, &["erased_keys"]),
    (MIGRATION_4, &["timestamps"]),
];

/// RFC 3161 timestamp tokens of checkpoints: one per tree size.
const MIGRATION_4: &str = "
CREATE TABLE timestamps (
    size  BIGINT PRIMARY KEY,
    token BYTEA  NOT NULL
);
";

/// Format 2: each entry's content in a row of its own, which erasure may clear (and nothing
/// else may change), and the keys erasure destroyed, by the record that did it.
const MIGRATION_3: &str = "
ALTER TABLE entries ADD COLUMN commitment BYTEA;
CREATE TABLE contents (
    seq       BIGINT PRIMARY KEY,
    key_id    BYTEA,
    sealed    BYTEA,
    erased_by BIGINT
);
CREATE TABLE erased_keys (
    id         BIGSERIAL PRIMARY KEY,
    key_id     BYTEA  NOT NULL UNIQUE,
    record_seq BIGINT NOT NULL
);
CREATE FUNCTION vellum_erase_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq <> OLD.seq OR NEW.key_id IS DISTINCT FROM OLD.key_id
       OR NEW.sealed IS NOT NULL OR NEW.erased_by IS NULL THEN
        RAISE EXCEPTION 'an entry''s content changes only by erasure';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER contents_erase_only BEFORE UPDATE ON contents FOR EACH ROW
    EXECUTE FUNCTION vellum_erase_only();
CREATE TRIGGER contents_no_delete BEFORE DELETE ON contents FOR EACH ROW
    EXECUTE FUNCTION vellum_append_only();
CREATE TRIGGER contents_no_truncate BEFORE TRUNCATE ON contents
    EXECUTE FUNCTION vellum_append_only();
";

const MIGRATION_1: &str = "
CREATE TABLE vellum_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE head (
    id   SMALLINT PRIMARY KEY CHECK (id = 1),
    size BIGINT   NOT NULL CHECK (size >= 0)
);
CREATE TABLE attestation_sets (
    id           BIGSERIAL PRIMARY KEY,
    digest       BYTEA NOT NULL UNIQUE,
    attestations TEXT  NOT NULL
);
CREATE TABLE entries (
    seq             BIGINT PRIMARY KEY,
    leaf_hash       BYTEA  NOT NULL,
    recorded_s      BIGINT NOT NULL,
    recorded_ns     BIGINT NOT NULL,
    occurred_s      BIGINT NOT NULL,
    occurred_ns     BIGINT NOT NULL,
    event_id        TEXT   NOT NULL,
    tenant          TEXT,
    correlation_id  TEXT,
    chain_id        TEXT,
    actor           TEXT,
    kind            TEXT   NOT NULL,
    subject         TEXT,
    payload         TEXT   NOT NULL,
    labels          TEXT   NOT NULL,
    disposition     BIGINT NOT NULL,
    dropped_plugin  TEXT,
    dropped_reason  TEXT,
    attestation_set BIGINT NOT NULL
);
CREATE INDEX entries_by_tenant      ON entries (tenant, seq);
CREATE INDEX entries_by_correlation ON entries (correlation_id, seq) WHERE correlation_id IS NOT NULL;
CREATE INDEX entries_by_chain       ON entries (chain_id, seq) WHERE chain_id IS NOT NULL;
CREATE INDEX entries_by_time        ON entries (occurred_s, occurred_ns);
CREATE TABLE tree_hashes (idx BIGINT PRIMARY KEY, hash BYTEA NOT NULL);
CREATE TABLE checkpoints (size BIGINT PRIMARY KEY, note TEXT NOT NULL);
CREATE TABLE idempotency_keys (
    scope     TEXT   NOT NULL,
    key       TEXT   NOT NULL,
    digest    BYTEA  NOT NULL,
    first_seq BIGINT NOT NULL,
    count     BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE FUNCTION vellum_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the Vellum ledger is append-only (% on %)', TG_OP, TG_TABLE_NAME;
END $$;
CREATE FUNCTION vellum_head_grows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.size < OLD.size THEN
        RAISE EXCEPTION 'the Vellum ledger head only grows';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER head_grows BEFORE UPDATE ON head FOR EACH ROW EXECUTE FUNCTION vellum_head_grows();
CREATE TRIGGER head_no_delete BEFORE DELETE ON head FOR EACH ROW EXECUTE FUNCTION vellum_append_only();
CREATE TRIGGER head_no_truncate BEFORE TRUNCATE ON head EXECUTE FUNCTION vellum_append_only();
";

/// Witnesses' cosignatures of checkpoints: one signature line per (size, witness key).
const MIGRATION_2: &str = "
CREATE TABLE cosignatures (
    size    BIGINT NOT NULL,
    witness TEXT   NOT NULL,
    line    TEXT   NOT NULL,
    PRIMARY KEY (size, witness)
);
";

/// The tables of the first migration no row of which is ever changed or removed.
const APPEND_ONLY_TABLES: &[&str] = &[
    "vellum_meta",
    "attestation_sets",
    "entries",
    "tree_hashes",
    "checkpoints",
    "idempotency_keys",
];

/// Any number: the advisory lock `vellum init` holds while it migrates.
const MIGRATION_LOCK: i64 = 0x5645_4C4C_494E_4954;

/// Connections kept per store: appends use one at a time; reads may overlap.
const POOL_SIZE: u32 = 4;

/// How long getting a connection may take before the operation fails as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

type Manager = PostgresConnectionManager<MakeRustlsConnect>;

/// What [`PgStore::migrate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migration {
    /// Created a new, empty ledger.
    Created,
    /// Brought an existing ledger's schema from one version to another.
    Upgraded {
        /// The version found.
        from: usize,
        /// The version now.
        to: usize,
    },
}

/// A PostgreSQL ledger: a pool of connections to one database.
pub struct PgStore {
    pool: Pool<Manager>,
    /// The URL without its password, for messages.
    shown: String,
    /// The connection of the open append, which holds the `head` row's lock, and the size
    /// read under that lock.
    append: RefCell<Option<(PooledConnection<Manager>, u64)>>,
    /// Ids of the attestation sets known to be committed, by content.
    attestation_sets: HashMap<Vec<Attestation>, i64>,
    /// Opens format-2 content as it is read; without it, entries come sealed.
    unsealer: Option<Unsealer>,
}

impl PgStore {
    /// Opens format-2 content as it is read, with `unsealer`'s keys.
    pub fn with_unsealer(mut self, unsealer: Unsealer) -> Self {
        self.unsealer = Some(unsealer);
        self
    }

    /// Unseals one read entry, when an unsealer is attached.
    fn unseal(&self, row: Result<(Entry, Hash), StoreError>) -> Result<(Entry, Hash), StoreError> {
        open_row(self.unsealer.as_ref(), row)
    }

    /// Connects to the database at `url` (nothing is checked yet).
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, false)
    }

    fn connect_with(url: &str, read_only: bool) -> Result<Self, StoreError> {
        let shown = without_password(url);
        let mut config: Config = url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("{shown}: not a PostgreSQL URL: {e}")))?;
        if config.get_application_name().is_none() {
            config.application_name("vellum");
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        if read_only {
            let options = config.get_options().unwrap_or_default().to_string();
            config.options(format!("{options} -c default_transaction_read_only=on").trim());
        }
        let tls = tls_connector().map_err(|e| StoreError::Invalid(format!("{shown}: {e}")))?;
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(0))
            .connection_timeout(CONNECT_TIMEOUT)
            .test_on_check_out(false)
            .build_unchecked(PostgresConnectionManager::new(config, tls));
        Ok(Self {
            pool,
            shown,
            append: RefCell::new(None),
            attestation_sets: HashMap::new(),
            unsealer: None,
        })
    }

    /// Opens an existing ledger, checking that the database holds one of this version.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, false)
    }

    fn open_with(url: &str, read_only: bool) -> Result<Self, StoreError> {
        let store = Self::connect_with(url, read_only)?;
        let version = store.schema_version()?;
        match version {
            None => Err(StoreError::Invalid(format!(
                "{} holds no Vellum ledger (create it with `vellum init --ledger URL`)",
                store.shown
            ))),
            Some(v) if v == MIGRATIONS.len() => Ok(store),
            Some(v) if v < MIGRATIONS.len() => Err(StoreError::Invalid(format!(
                "{}: the ledger's schema is version {v}, this build needs {}; run \
                 `vellum init --ledger URL` to migrate it",
                store.shown,
                MIGRATIONS.len()
            ))),
            Some(v) => Err(StoreError::Invalid(format!(
                "{}: the ledger's schema is version {v}, newer than this build's {}; \
                 upgrade Vellum",
                store.shown,
                MIGRATIONS.len()
            ))),
        }
    }

    /// Opens a read-only replica of a ledger's database: its sessions are read-only
    /// (`default_transaction_read_only`), so a misrouted write fails instead of landing there.
    pub fn open_replica(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, true)
    }

    /// Applies the migrations the database lacks, under an advisory lock so two `vellum
    /// init` runs do not race: creates a ledger named `origin` in a database without one,
    /// upgrades an older one, and refuses one that is up to date.
    pub fn migrate(&self, origin: &str) -> Result<Migration, StoreError> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(|e| self.db(e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(|e| self.db(e))?;
        let version = read_version(&mut tx).map_err(|e| self.db(e))?;
        let latest = MIGRATIONS.len();
        if version == Some(latest) {
            return Err(StoreError::Invalid(format!(
                "{} already holds a Vellum ledger (schema version {latest}, up to date); \
                 refusing to create another",
                self.shown
            )));
        }
        let from = version.unwrap_or(0);
        for (migration, append_only) in MIGRATIONS.iter().skip(from) {
            tx.batch_execute(migration).map_err(|e| self.db(e))?;
            tx.batch_execute(&append_only_triggers(append_only))
                .map_err(|e| self.db(e))?;
        }
        if version.is_none() {
            tx.execute(
                "INSERT INTO vellum_meta (key, value) VALUES ('origin', $1)",
                &[&origin],
            )
            .and_then(|_| tx.execute("INSERT INTO head (id, size) VALUES (1, 0)", &[]))
            .map_err(|e| self.db(e))?;
        }
        // `vellum_meta` is append-only too: each migration adds its own version row and the
        // highest one counts.
        tx.execute(
            "INSERT INTO vellum_meta (key, value) VALUES ($1, $2)",
            &[&format!("schema_version_{latest}"), &latest.to_string()],
        )
        .map_err(|e| self.db(e))?;
        tx.commit().map_err(|e| self.db(e))?;
        Ok(match version {
            None => Migration::Created,
            Some(from) => Migration::Upgraded { from, to: latest },
        })
    }

    /// The log's origin line, recorded at creation.
    pub fn origin(&self) -> Result<String, StoreError> {
        self.with_client(|c| {
            c.query_one("SELECT value FROM vellum_meta WHERE key = 'origin'", &[])
                .map(|r| r.get(0))
        })
    }

    /// The schema version, `None` when the database holds no ledger.
    fn schema_version(&self) -> Result<Option<usize>, StoreError> {
        let mut client = self.client()?;
        read_version(&mut *client).map_err(|e| self.db(e))
    }

    /// A connection from the pool.
    fn client(&self) -> Result<PooledConnection<Manager>, StoreError> {
        self.pool.get().map_err(|e| {
            let hint = match e.to_string().contains("TLS handshake") {
                true => {
                    " (is the server's certificate trusted? set PGSSLROOTCERT to its CA's PEM \
                     file, or add ?sslmode=disable on a network you trust)"
                }
                false => "",
            };
            StoreError::Io(format!(
                "{}: cannot connect to PostgreSQL: {e}{hint}",
                self.shown
            ))
        })
    }

    /// Runs `f` on the open append's connection (so reads see what it locked), or on a
    /// pooled one.
    fn with_client<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        if let Some((conn, _)) = self.append.borrow_mut().as_mut() {
            return f(conn).map_err(|e| self.db(e));
        }
        let mut conn = self.client()?;
        f(&mut conn).map_err(|e| self.db(e))
    }

    /// Maps a PostgreSQL error.
    fn db(&self, error: postgres::Error) -> StoreError {
        db(&self.shown, error)
    }

    /// The id of a set of attestations, stored by this transaction if it is new.
    fn attestation_set_id(
        client: &mut Client,
        attestations: &[Attestation],
    ) -> Result<i64, postgres::Error> {
        let text = serde_json::to_string(attestations).unwrap_or_default();
        let digest = Sha256::digest(text.as_bytes()).to_vec();
        client.execute(
            "INSERT INTO attestation_sets (digest, attestations) VALUES ($1, $2) \
             ON CONFLICT (digest) DO NOTHING",
            &[&digest, &text],
        )?;
        client
            .query_one(
                "SELECT id FROM attestation_sets WHERE digest = $1",
                &[&digest],
            )
            .map(|r| r.get(0))
    }
}

/// One connection of its own to the database at `url` (the key store's), with the same
/// TLS rules as the pool's; returns it and the URL without its password.
pub(crate) fn connect_one(url: &str) -> Result<(Client, String), StoreError> {
    let shown = without_password(url);
    let mut config: Config = url
        .parse()
        .map_err(|e| StoreError::Invalid(format!("{shown}: not a PostgreSQL URL: {e}")))?;
    if config.get_application_name().is_none() {
        config.application_name("vellum-keys");
    }
    config.connect_timeout(CONNECT_TIMEOUT);
    let tls = tls_connector().map_err(|e| StoreError::Invalid(format!("{shown}: {e}")))?;
    let client = config
        .connect(tls)
        .map_err(|e| StoreError::Io(format!("{shown}: cannot connect to PostgreSQL: {e}")))?;
    Ok((client, shown))
}

/// The TLS connector: rustls with ring, trusting the system's roots, or only the
/// certificates in the PEM file `PGSSLROOTCERT` names.
fn tls_connector() -> Result<MakeRustlsConnect, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match std::env::var_os("PGSSLROOTCERT") {
        Some(file) => {
            let shown = std::path::Path::new(&file).display().to_string();
            let certs = CertificateDer::pem_file_iter(&file)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("PGSSLROOTCERT {shown}: {e}"))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("PGSSLROOTCERT {shown} holds no usable certificate"));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Maps a PostgreSQL error on the database `shown`.
pub(crate) fn db(shown: &str, error: postgres::Error) -> StoreError {
    match error.code() {
        Some(c) if *c == SqlState::DISK_FULL => StoreError::Full(format!("{shown}: {error}")),
        Some(c) if *c == SqlState::DATA_CORRUPTED || *c == SqlState::INDEX_CORRUPTED => {
            StoreError::Invalid(format!("{shown}: the ledger's data is corrupted: {error}"))
        }
        _ if error.is_closed() => {
            StoreError::Io(format!("{shown}: connection to PostgreSQL lost: {error}"))
        }
        _ => StoreError::Io(format!("{shown}: {}", describe(&error))),
    }
}

/// The schema version recorded in `vellum_meta`, `None` without a ledger.
fn read_version(
    client: &mut impl postgres::GenericClient,
) -> Result<Option<usize>, postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('vellum_meta') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let version: Option<String> = client
        .query_one(
            "SELECT max(value::BIGINT)::TEXT FROM vellum_meta WHERE key LIKE 'schema_version_%'",
            &[],
        )?
        .get(0);
    Ok(Some(version.and_then(|v| v.parse().ok()).unwrap_or(0)))
}

/// The triggers that refuse UPDATE, DELETE and TRUNCATE on `tables`.
fn append_only_triggers(tables: &[&str]) -> String {
    tables
        .iter()
        .map(|t| {
            format!(
                "CREATE TRIGGER {t}_no_change BEFORE UPDATE OR DELETE ON {t} FOR EACH ROW \
                 EXECUTE FUNCTION vellum_append_only(); \
                 CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} \
                 EXECUTE FUNCTION vellum_append_only();"
            )
        })
        .collect()
}

/// A server error's message with its detail, or the client error.
fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => error.to_string(),
    }
}

fn read_row(row: &postgres::Row) -> Result<(Entry, Hash), StoreError> {
    let get = |row: &postgres::Row| -> Result<ReadRow, postgres::Error> {
        Ok(ReadRow {
            seq: row.try_get(0)?,
            leaf_hash: row.try_get(1)?,
            recorded: (row.try_get(2)?, row.try_get(3)?),
            occurred: (row.try_get(4)?, row.try_get(5)?),
            event_id: row.try_get(6)?,
            tenant: row.try_get(7)?,
            correlation_id: row.try_get(8)?,
            chain_id: row.try_get(9)?,
            actor: row.try_get(10)?,
            kind: row.try_get(11)?,
            subject: row.try_get(12)?,
            payload: row.try_get(13)?,
            labels: row.try_get(14)?,
            disposition: row.try_get(15)?,
            dropped_plugin: row.try_get(16)?,
            dropped_reason: row.try_get(17)?,
            attestations: row.try_get(18)?,
            attestation_set: row.try_get(19)?,
            commitment: row.try_get(20)?,
            content_seq: row.try_get(21)?,
            key_id: row.try_get(22)?,
            sealed: row.try_get(23)?,
            erased_by: row.try_get(24)?,
        })
    };
    get(row)
        .map_err(|e| StoreError::Invalid(format!("unreadable entry: {e}")))?
        .into_entry()
}

fn to_hash(bytes: Vec<u8>, what: impl FnOnce() -> String) -> Result<Hash, StoreError> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Invalid(format!("{} is not 32 bytes", what())))?;
    Ok(Hash(bytes))
}

impl StoreReader for PgStore {
    fn size(&self) -> Result<u64, StoreError> {
        if let Some((_, size)) = self.append.borrow().as_ref() {
            return Ok(*size);
        }
        let size: i64 = self.with_client(|c| {
            c.query_one("SELECT size FROM head WHERE id = 1", &[])
                .map(|r| r.get(0))
        })?;
        u64::try_from(size).map_err(|_| StoreError::Invalid(format!("negative size {size}")))
    }

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<i64> = indexes.iter().map(|&i| i as i64).collect();
        let rows = self.with_client(|c| {
            c.query_typed(
                "SELECT idx, hash FROM tree_hashes WHERE idx = ANY($1)",
                &[(&wanted, Type::INT8_ARRAY)],
            )
        })?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in rows {
            let idx: i64 = row.get(0);
            found.insert(
                idx as u64,
                to_hash(row.get(1), || format!("tree hash {idx}"))?,
            );
        }
        indexes
            .iter()
            .map(|idx| {
                found
                    .get(idx)
                    .copied()
                    .ok_or_else(|| StoreError::Invalid(format!("tree hash {idx} is missing")))
            })
            .collect()
    }

    fn entries(&self, from: u64, to: u64) -> Result<Vec<(Entry, Hash)>, StoreError> {
        let (from, to) = (
            from.min(i64::MAX as u64) as i64,
            to.min(i64::MAX as u64) as i64,
        );
        let rows = self.with_client(|c| {
            c.query(
                &format!(
                    "SELECT {READ_COLUMNS} FROM {ENTRIES_JOINED} \
                     WHERE entries.seq >= $1 AND entries.seq < $2 ORDER BY entries.seq"
                ),
                &[&from, &to],
            )
        })?;
        if let Some(unsealer) = &self.unsealer {
            unsealer.begin();
        }
        rows.iter().map(|row| self.unseal(read_row(row))).collect()
    }

    fn query(&self, query: &Query) -> Result<Page, StoreError> {
        let mut values: Vec<Box<dyn ToSql + Sync>> =
            vec![Box::new(query.after_seq.map_or(-1, |s| s as i64))];
        let mut conditions = vec!["entries.seq > $1".to_string()];
        let mut bind = |value: Box<dyn ToSql + Sync>| {
            values.push(value);
            format!("${}", values.len())
        };
        for (column, value) in [
            ("tenant", &query.tenant),
            ("correlation_id", &query.correlation_id),
            ("chain_id", &query.chain_id),
        ] {
            if let Some(value) = value {
                conditions.push(format!("{column} = {}", bind(Box::new(value.clone()))));
            }
        }
        if !query.kinds.is_empty() {
            conditions.push(format!(
                "kind = ANY({})",
                bind(Box::new(query.kinds.clone()))
            ));
        }
        if let Some(since) = query.since {
            let (s, ns) = split_timestamp(since);
            let (s, ns) = (bind(Box::new(s)), bind(Box::new(i64::from(ns))));
            conditions.push(format!("(occurred_s, occurred_ns) >= ({s}, {ns})"));
        }
        if let Some(until) = query.until {
            let (s, ns) = split_timestamp(until);
            let (s, ns) = (bind(Box::new(s)), bind(Box::new(i64::from(ns))));
            conditions.push(format!("(occurred_s, occurred_ns) < ({s}, {ns})"));
        }
        // The actor is sealed content in format 2: it is matched after opening, so rows
        // are streamed until the page is full rather than limited in SQL.
        let limit = match query.actor {
            None => format!("LIMIT {}", bind(Box::new(query.limit as i64))),
            Some(_) => String::new(),
        };
        let sql = format!(
            "SELECT {READ_COLUMNS} FROM {ENTRIES_JOINED} WHERE {} ORDER BY entries.seq {limit}",
            conditions.join(" AND ")
        );
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        if let Some(unsealer) = &self.unsealer {
            unsealer.begin();
        }
        // Rows are streamed, so a page that ends at its byte budget reads no further.
        self.with_client(|c| {
            let rows = c.query_raw(&sql, params)?.iterator().map(|row| {
                self.unseal(read_row(&row.map_err(|e| self.db(e))?))
                    .map(|(entry, _)| entry)
            });
            Ok(collect_page(
                query,
                rows.filter(|e| actor_matches(query, e)),
            ))
        })?
    }

    fn erased_keys(&self, after: u64) -> Result<Vec<(u64, KeyId, u64)>, StoreError> {
        let after = after as i64;
        let rows = self.with_client(|c| {
            c.query(
                "SELECT id, key_id, record_seq FROM erased_keys WHERE id > $1 ORDER BY id",
                &[&after],
            )
        })?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.get(0);
                let key = KeyId::from_slice(r.get(1)).ok_or_else(|| {
                    StoreError::Invalid(format!("erased key {id} is not 16 bytes"))
                })?;
                Ok((id as u64, key, r.get::<_, i64>(2) as u64))
            })
            .collect()
    }

    fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        let rows =
            self.with_client(|c| c.query("SELECT size, note FROM checkpoints ORDER BY size", &[]))?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get(1)))
            .collect())
    }

    fn checkpoint(&self, size: u64) -> Result<Option<String>, StoreError> {
        let row = self.with_client(|c| {
            c.query_typed_opt(
                "SELECT note FROM checkpoints WHERE size = $1",
                &[(&(size as i64), Type::INT8)],
            )
        })?;
        Ok(row.map(|r| r.get(0)))
    }

    fn cosignatures(&self, size: Option<u64>) -> Result<Vec<(u64, String)>, StoreError> {
        let size = size.map(|s| s as i64);
        let rows = self.with_client(|c| {
            c.query_typed(
                "SELECT size, line FROM cosignatures WHERE $1::BIGINT IS NULL OR size = $1 \
                 ORDER BY size, witness",
                &[(&size, Type::INT8)],
            )
        })?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get(1)))
            .collect())
    }

    fn timestamps(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let rows =
            self.with_client(|c| c.query("SELECT size, token FROM timestamps ORDER BY size", &[]))?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get(1)))
            .collect())
    }

    fn idempotency_key(&self, scope: &str, key: &str) -> Result<Option<StoredKey>, StoreError> {
        let row = self.with_client(|c| {
            c.query_typed_opt(
                "SELECT digest, first_seq, count FROM idempotency_keys \
                 WHERE scope = $1 AND key = $2",
                &[(&scope, Type::TEXT), (&key, Type::TEXT)],
            )
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let bad = |what: &str| {
            StoreError::Invalid(format!("idempotency key `{key}` (scope `{scope}`): {what}"))
        };
        let (first_seq, count): (i64, i64) = (row.get(1), row.get(2));
        Ok(Some(StoredKey {
            scope: scope.to_string(),
            key: key.to_string(),
            digest: to_hash(row.get(0), || format!("idempotency key `{key}`: digest"))?,
            first_seq: u64::try_from(first_seq).map_err(|_| bad("negative sequence number"))?,
            count: u64::try_from(count).map_err(|_| bad("negative count"))?,
        }))
    }
}

impl StoreWriter for PgStore {
    fn begin_append(&mut self) -> Result<(), StoreError> {
        self.abort_append();
        let mut conn = self.client()?;
        // One round trip: open the transaction and lock the coordinator row.
        let messages = conn
            .simple_query("BEGIN; SELECT size FROM head WHERE id = 1 FOR UPDATE")
            .map_err(|e| self.db(e))?;
        let size = messages.iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(row) => row.get(0).and_then(|v| v.parse().ok()),
            _ => None,
        });
        let Some(size) = size else {
            let _ = conn.batch_execute("ROLLBACK");
            return Err(StoreError::Invalid(format!(
                "{}: the ledger's head row is missing or unreadable",
                self.shown
            )));
        };
        *self.append.get_mut() = Some((conn, size));
        Ok(())
    }

    fn append(
        &mut self,
        entries: &[(Entry, Hash)],
        hashes: &[(u64, Hash)],
        keys: &[StoredKey],
    ) -> Result<(), StoreError> {
        let shown = self.shown.clone();
        let db = |e| db(&shown, e);
        let Some((conn, _)) = self.append.get_mut().as_mut() else {
            return Err(StoreError::Io("append without begin_append".into()));
        };
        let mut new_sets: HashMap<Vec<Attestation>, i64> = HashMap::new();
        let mut columns = Columns::default();
        for (entry, leaf) in entries {
            let set = match self.attestation_sets.get(&entry.attestations) {
                Some(&id) => id,
                None => match new_sets.get(&entry.attestations) {
                    Some(&id) => id,
                    None => {
                        let id = Self::attestation_set_id(conn, &entry.attestations).map_err(db)?;
                        new_sets.insert(entry.attestations.clone(), id);
                        id
                    }
                },
            };
            columns.push(entry, leaf, set)?;
        }
        let idx: Vec<i64> = hashes.iter().map(|(i, _)| *i as i64).collect();
        let hash: Vec<Vec<u8>> = hashes.iter().map(|(_, h)| h.0.to_vec()).collect();
        let size = entries.last().map_or(0, |(e, _)| e.seq as i64 + 1);
        let result = columns
            .insert(conn)
            .and_then(|_| {
                conn.execute_typed(
                    "INSERT INTO tree_hashes (idx, hash) SELECT * FROM UNNEST($1::BIGINT[], $2::BYTEA[])",
                    &[(&idx, Type::INT8_ARRAY), (&hash, Type::BYTEA_ARRAY)],
                )
            })
            .and_then(|_| insert_keys(conn, keys))
            // One round trip: move the head and commit (an error skips the COMMIT).
            .and_then(|_| {
                conn.batch_execute(&format!("UPDATE head SET size = {size} WHERE id = 1; COMMIT"))
            });
        result.map_err(db)?;
        // Committed: the connection goes back to the pool, the new sets' ids are durable.
        self.append.get_mut().take();
        self.attestation_sets.extend(new_sets);
        Ok(())
    }

    fn erase(
        &mut self,
        record: u64,
        keys: &[(KeyId, Option<String>)],
        seqs: &[u64],
    ) -> Result<u64, StoreError> {
        let shown = self.shown.clone();
        let Some((conn, _)) = self.append.get_mut().as_mut() else {
            return Err(StoreError::Io("erase without begin_append".into()));
        };
        let record = record as i64;
        let mut erased = 0;
        for (key, tenant) in keys {
            let key = key.0.to_vec();
            // The key's entries are found through the tenant index (no index on key ids:
            // it would cost every append).
            let of_tenant = match tenant {
                Some(_) => "tenant = $3",
                None => "tenant IS NULL AND $3::TEXT IS NULL",
            };
            erased += conn
                .execute(
                    &format!(
                        "UPDATE contents SET sealed = NULL, erased_by = $1 \
                         WHERE key_id = $2 AND erased_by IS NULL \
                         AND seq IN (SELECT seq FROM entries WHERE {of_tenant})"
                    ),
                    &[&record, &key, tenant],
                )
                .and_then(|n| {
                    conn.execute(
                        "INSERT INTO erased_keys (key_id, record_seq) VALUES ($1, $2) \
                         ON CONFLICT (key_id) DO NOTHING",
                        &[&key, &record],
                    )
                    .map(|_| n)
                })
                .map_err(|e| db(&shown, e))?;
        }
        let seqs: Vec<i64> = seqs.iter().map(|s| *s as i64).collect();
        erased += conn
            .execute(
                "UPDATE contents SET sealed = NULL, erased_by = $1 \
                 WHERE seq = ANY($2) AND erased_by IS NULL",
                &[&record, &seqs],
            )
            .map_err(|e| db(&shown, e))?;
        Ok(erased)
    }

    fn abort_append(&mut self) {
        if let Some((mut conn, _)) = self.append.get_mut().take()
            && let Err(e) = conn.batch_execute("ROLLBACK")
        {
            tracing::warn!("{}: rolling back a failed append: {e}", self.shown);
        }
    }

    fn put_checkpoint(&mut self, size: u64, note: &str) -> Result<(), StoreError> {
        self.with_client(|c| {
            c.execute(
                "INSERT INTO checkpoints (size, note) VALUES ($1, $2) \
                 ON CONFLICT (size) DO NOTHING",
                &[&(size as i64), &note],
            )
        })
        .map(drop)
    }

    fn put_cosignature(&mut self, size: u64, witness: &str, line: &str) -> Result<(), StoreError> {
        self.with_client(|c| {
            c.execute(
                "INSERT INTO cosignatures (size, witness, line) VALUES ($1, $2, $3) \
                 ON CONFLICT (size, witness) DO NOTHING",
                &[&(size as i64), &witness, &line],
            )
        })
        .map(drop)
    }

    fn put_timestamp(&mut self, size: u64, token: &[u8]) -> Result<(), StoreError> {
        self.with_client(|c| {
            c.execute(
                "INSERT INTO timestamps (size, token) VALUES ($1, $2) \
                 ON CONFLICT (size) DO NOTHING",
                &[&(size as i64), &token],
            )
        })
        .map(drop)
    }
}

/// The new entries as one array per column, inserted with one `UNNEST` statement.
#[derive(Default)]
struct Columns {
    seq: Vec<i64>,
    leaf: Vec<Vec<u8>>,
    recorded_s: Vec<i64>,
    recorded_ns: Vec<i64>,
    occurred_s: Vec<i64>,
    occurred_ns: Vec<i64>,
    event_id: Vec<String>,
    tenant: Vec<Option<String>>,
    correlation_id: Vec<Option<String>>,
    chain_id: Vec<Option<String>>,
    actor: Vec<Option<String>>,
    kind: Vec<String>,
    subject: Vec<Option<String>>,
    payload: Vec<String>,
    labels: Vec<String>,
    disposition: Vec<i64>,
    dropped_plugin: Vec<Option<String>>,
    dropped_reason: Vec<Option<String>>,
    attestation_set: Vec<i64>,
    commitment: Vec<Option<Vec<u8>>>,
    content_seq: Vec<i64>,
    content_key: Vec<Option<Vec<u8>>>,
    content_sealed: Vec<Vec<u8>>,
}

impl Columns {
    fn push(&mut self, entry: &Entry, leaf: &Hash, set: i64) -> Result<(), StoreError> {
        let row = WriteRow::new(entry)?;
        let e = &entry.event;
        self.seq.push(row.seq);
        self.leaf.push(leaf.0.to_vec());
        self.recorded_s.push(row.recorded.0);
        self.recorded_ns.push(row.recorded.1);
        self.occurred_s.push(row.occurred.0);
        self.occurred_ns.push(row.occurred.1);
        self.event_id.push(e.id.clone());
        self.tenant.push(e.tenant.clone());
        self.correlation_id.push(e.correlation_id.clone());
        self.chain_id.push(e.chain_id.clone());
        self.actor.push(row.actor);
        self.kind.push(e.kind.clone());
        self.subject.push(row.subject);
        self.payload.push(row.payload);
        self.labels.push(row.labels);
        self.disposition.push(row.disposition);
        self.dropped_plugin.push(row.dropped_plugin);
        self.dropped_reason.push(row.dropped_reason);
        self.attestation_set.push(set);
        self.commitment.push(row.commitment);
        if let Some(content) = ContentRow::new(entry)? {
            self.content_seq.push(content.seq);
            self.content_key.push(content.key_id);
            self.content_sealed.push(content.sealed);
        }
        Ok(())
    }

    /// One statement, one round trip (typed parameters need no prepare).
    fn insert(&self, client: &mut Client) -> Result<u64, postgres::Error> {
        let (int8, bytea, text) = (Type::INT8_ARRAY, Type::BYTEA_ARRAY, Type::TEXT_ARRAY);
        client.execute_typed(
            &format!(
                "INSERT INTO entries ({WRITE_COLUMNS}) SELECT * FROM UNNEST(\
                 $1::BIGINT[], $2::BYTEA[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[], \
                 $6::BIGINT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::TEXT[], \
                 $12::TEXT[], $13::TEXT[], $14::TEXT[], $15::TEXT[], $16::BIGINT[], \
                 $17::TEXT[], $18::TEXT[], $19::BIGINT[], $20::BYTEA[])"
            ),
            &[
                (&self.seq, int8.clone()),
                (&self.leaf, bytea.clone()),
                (&self.recorded_s, int8.clone()),
                (&self.recorded_ns, int8.clone()),
                (&self.occurred_s, int8.clone()),
                (&self.occurred_ns, int8.clone()),
                (&self.event_id, text.clone()),
                (&self.tenant, text.clone()),
                (&self.correlation_id, text.clone()),
                (&self.chain_id, text.clone()),
                (&self.actor, text.clone()),
                (&self.kind, text.clone()),
                (&self.subject, text.clone()),
                (&self.payload, text.clone()),
                (&self.labels, text.clone()),
                (&self.disposition, int8.clone()),
                (&self.dropped_plugin, text.clone()),
                (&self.dropped_reason, text),
                (&self.attestation_set, int8.clone()),
                (&self.commitment, bytea.clone()),
            ],
        )?;
        if self.content_seq.is_empty() {
            return Ok(0);
        }
        client.execute_typed(
            "INSERT INTO contents (seq, key_id, sealed) \
             SELECT * FROM UNNEST($1::BIGINT[], $2::BYTEA[], $3::BYTEA[])",
            &[
                (&self.content_seq, int8),
                (&self.content_key, bytea.clone()),
                (&self.content_sealed, bytea),
            ],
        )
    }
}

fn insert_keys(client: &mut Client, keys: &[StoredKey]) -> Result<u64, postgres::Error> {
    if keys.is_empty() {
        return Ok(0);
    }
    let scope: Vec<&str> = keys.iter().map(|k| k.scope.as_str()).collect();
    let key: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
    let digest: Vec<Vec<u8>> = keys.iter().map(|k| k.digest.0.to_vec()).collect();
    let first: Vec<i64> = keys.iter().map(|k| k.first_seq as i64).collect();
    let count: Vec<i64> = keys.iter().map(|k| k.count as i64).collect();
    client.execute_typed(
        "INSERT INTO idempotency_keys (scope, key, digest, first_seq, count) \
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BYTEA[], $4::BIGINT[], $5::BIGINT[])",
        &[
            (&scope, Type::TEXT_ARRAY),
            (&key, Type::TEXT_ARRAY),
            (&digest, Type::BYTEA_ARRAY),
            (&first, Type::INT8_ARRAY),
            (&count, Type::INT8_ARRAY),
        ],
    )
}
