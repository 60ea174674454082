//! The embedded default store: one SQLite file in WAL mode with `synchronous=FULL`, so a
//! committed transaction is on stable storage before `append` returns.
//!
//! Triggers refuse UPDATE and DELETE on every table: the ledger is append-only even for
//! someone holding a SQL shell (who could drop the triggers — which `vellum verify` then
//! catches through the hashes).

use std::collections::HashMap;
use std::path::Path;

use crate::ledger::Hash;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params, params_from_iter};

use super::row::{ContentRow, ENTRIES_JOINED, READ_COLUMNS, ReadRow, WRITE_COLUMNS, WriteRow};
use super::unseal::{Unsealer, actor_matches, open_row};
use super::{StoreError, StoreReader, StoreWriter};
use crate::event::{Attestation, split_timestamp};
use crate::ledger::content::KeyId;
use crate::ledger::entry::Entry;
use crate::ledger::idempotency::StoredKey;
use crate::ledger::query::{Page, Query, collect_page};

/// `PRAGMA application_id` of a Vellum ledger ("VELL").
pub const APPLICATION_ID: i32 = 0x5645_4C4C;
/// The schema version this build reads and writes (`PRAGMA user_version`). Version 2
/// stores each distinct set of attestations once (`attestation_sets`) instead of in every
/// entry; version 3 adds `idempotency_keys`, version 4 `cosignatures`, version 5 the
/// format-2 content apart from the tree (`entries.commitment`, `contents`, `erased_keys`),
/// version 6 `timestamps`. Older files are upgraded on open, one version at a time.
pub const SCHEMA_VERSION: i32 = 6;

/// How long a writer waits for another process's write lock before its append fails.
const BUSY_TIMEOUT_MS: u64 = 10_000;

/// What turns a file of version `n` into `n + 1`: `(n, SQL, the new append-only tables)`.
const UPGRADES: &[(i32, &str, &[&str])] = &[
    (2, IDEMPOTENCY_TABLE, &["idempotency_keys"]),
    (3, COSIGNATURES_TABLE, &["cosignatures"]),
    (4, CONTENTS_TABLES, &["erased_keys"]),
    (5, TIMESTAMPS_TABLE, &["timestamps"]),
];

/// RFC 3161 timestamp tokens of checkpoints: one per tree size.
const TIMESTAMPS_TABLE: &str = "
CREATE TABLE timestamps (
    size           INTEGER PRIMARY KEY,
    token          BLOB    NOT NULL
) STRICT;
";

/// Format 2: each entry's content in a row of its own, which erasure may clear (and nothing
/// else may change), and the keys erasure destroyed, by the record that did it.
const CONTENTS_TABLES: &str = "
ALTER TABLE entries ADD COLUMN commitment BLOB;
CREATE TABLE contents (
    seq        INTEGER PRIMARY KEY,
    key_id     BLOB,
    sealed     BLOB,
    erased_by  INTEGER
) STRICT;
CREATE TABLE erased_keys (
    id         INTEGER PRIMARY KEY,
    key_id     BLOB    NOT NULL UNIQUE,
    record_seq INTEGER NOT NULL
) STRICT;
CREATE TRIGGER contents_no_DELETE BEFORE DELETE ON contents
    BEGIN SELECT RAISE(ABORT, 'the Vellum ledger is append-only'); END;
CREATE TRIGGER contents_erase_only BEFORE UPDATE ON contents
    WHEN NOT (NEW.seq = OLD.seq AND NEW.key_id IS OLD.key_id AND NEW.sealed IS NULL
              AND NEW.erased_by IS NOT NULL)
    BEGIN SELECT RAISE(ABORT, 'an entry''s content changes only by erasure'); END;
";

/// Witnesses' cosignatures of checkpoints: one signature line per (size, witness key).
const COSIGNATURES_TABLE: &str = "
CREATE TABLE cosignatures (
    size           INTEGER NOT NULL,
    witness        TEXT    NOT NULL,
    line           TEXT    NOT NULL,
    PRIMARY KEY (size, witness)
) STRICT, WITHOUT ROWID;
";

const IDEMPOTENCY_TABLE: &str = "
CREATE TABLE idempotency_keys (
    scope          TEXT    NOT NULL,
    key            TEXT    NOT NULL,
    digest         BLOB    NOT NULL,
    first_seq      INTEGER NOT NULL,
    count          INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT, WITHOUT ROWID;
";

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE attestation_sets (
    id             INTEGER PRIMARY KEY,
    attestations   TEXT    NOT NULL UNIQUE
) STRICT;
CREATE TABLE entries (
    seq            INTEGER PRIMARY KEY,
    leaf_hash      BLOB    NOT NULL,
    recorded_s     INTEGER NOT NULL,
    recorded_ns    INTEGER NOT NULL,
    occurred_s     INTEGER NOT NULL,
    occurred_ns    INTEGER NOT NULL,
    event_id       TEXT    NOT NULL,
    tenant         TEXT,
    correlation_id TEXT,
    chain_id       TEXT,
    actor          TEXT,
    kind           TEXT    NOT NULL,
    subject        TEXT,
    payload        TEXT    NOT NULL,
    labels         TEXT    NOT NULL,
    disposition    INTEGER NOT NULL,
    dropped_plugin TEXT,
    dropped_reason TEXT,
    attestation_set INTEGER NOT NULL
) STRICT;
CREATE INDEX entries_by_tenant      ON entries (tenant, seq);
CREATE INDEX entries_by_correlation ON entries (correlation_id, seq) WHERE correlation_id IS NOT NULL;
CREATE INDEX entries_by_chain       ON entries (chain_id, seq) WHERE chain_id IS NOT NULL;
CREATE INDEX entries_by_time        ON entries (occurred_s, occurred_ns);
CREATE TABLE tree_hashes (idx INTEGER PRIMARY KEY, hash BLOB NOT NULL) STRICT;
CREATE TABLE checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL) STRICT;
";

const APPEND_ONLY_TABLES: &[&str] = &[
    "meta",
    "attestation_sets",
    "entries",
    "tree_hashes",
    "checkpoints",
    "idempotency_keys",
    "cosignatures",
    "erased_keys",
    "timestamps",
];

/// The triggers that refuse UPDATE and DELETE on `tables`.
fn append_only_triggers(tables: &[&str]) -> String {
    let mut sql = String::new();
    for table in tables {
        for op in ["UPDATE", "DELETE"] {
            sql.push_str(&format!(
                "CREATE TRIGGER {table}_no_{op} BEFORE {op} ON {table} \
                 BEGIN SELECT RAISE(ABORT, 'the Vellum ledger is append-only'); END;"
            ));
        }
    }
    sql
}

/// A connection to a SQLite ledger file.
pub struct SqliteStore {
    conn: Connection,
    /// Ids of the attestation sets known to be committed, by content.
    attestation_sets: HashMap<Vec<Attestation>, i64>,
    /// Opens format-2 content as it is read; without it, entries come sealed.
    unsealer: Option<Unsealer>,
}

impl SqliteStore {
    /// Creates a new, empty ledger file; fails if the file exists.
    pub fn create(path: &Path, origin: &str) -> Result<Self, StoreError> {
        if path.exists() {
            return Err(StoreError::Invalid(format!(
                "{} already exists",
                path.display()
            )));
        }
        super::create_private_file(path)
            .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", path.display())))?;
        let conn = Connection::open(path).map_err(|e| io(path, e))?;
        let store = Self::configure(conn, path)?;
        let mut sql = format!(
            "BEGIN; {SCHEMA} {IDEMPOTENCY_TABLE} {COSIGNATURES_TABLE} {CONTENTS_TABLES} \
             {TIMESTAMPS_TABLE} \
             PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
        );
        sql.push_str(&append_only_triggers(APPEND_ONLY_TABLES));
        // The origin is written in the schema's transaction: a ledger never exists without it.
        let created = store
            .conn
            .execute_batch(&sql)
            .and_then(|()| {
                store.conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('origin', ?1)",
                    [origin],
                )
            })
            .and_then(|_| store.conn.execute_batch("COMMIT"));
        if let Err(e) = created {
            drop(store);
            let _ = std::fs::remove_file(path);
            return Err(io(path, e));
        }
        Ok(store)
    }

    /// Opens an existing ledger file, checking that it is a Vellum ledger of this schema
    /// version.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Invalid(format!(
                "{} does not exist (create it with `vellum init`)",
                path.display()
            )));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| io(path, e))?;
        let store = Self::configure(conn, path)?;
        let (app_id, version): (i32, i32) = store
            .conn
            .query_row(
                "SELECT application_id, user_version FROM pragma_application_id, pragma_user_version",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| invalid(path, e))?;
        if app_id != APPLICATION_ID {
            return Err(StoreError::Invalid(format!(
                "{} is a SQLite database but not a Vellum ledger (application_id {app_id:#x})",
                path.display()
            )));
        }
        if !(2..=SCHEMA_VERSION).contains(&version) {
            return Err(StoreError::Invalid(format!(
                "{} has ledger schema version {version}; this build reads version {SCHEMA_VERSION}",
                path.display()
            )));
        }
        for (from, sql, tables) in UPGRADES.iter().filter(|(from, ..)| *from >= version) {
            store.upgrade(path, *from, sql, tables)?;
        }
        Ok(store)
    }

    /// Upgrades the file from schema version `from` to the next, under the write lock; a
    /// no-op when another process did it first.
    fn upgrade(
        &self,
        path: &Path,
        from: i32,
        sql: &str,
        tables: &[&str],
    ) -> Result<(), StoreError> {
        let to = from + 1;
        let upgraded = self.conn.execute_batch("BEGIN IMMEDIATE").and_then(|()| {
            let current: i32 = self
                .conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if current == from {
                self.conn.execute_batch(&format!(
                    "{sql} {} PRAGMA user_version = {to};",
                    append_only_triggers(tables)
                ))?;
            }
            self.conn.execute_batch("COMMIT")
        });
        if let Err(e) = upgraded {
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(io(path, e));
        }
        tracing::info!(
            "{}: upgraded the ledger schema from version {from} to {to}",
            path.display()
        );
        Ok(())
    }

    fn configure(conn: Connection, path: &Path) -> Result<Self, StoreError> {
        // Reading the journal mode is the first access to the file: a non-database fails here.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| invalid(path, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Io(format!(
                "{}: cannot enable WAL mode (got {mode})",
                path.display()
            )));
        }
        // A larger WAL between checkpoints: index pages written by many commits are copied
        // into the database once per checkpoint instead of once per 4 MiB of WAL.
        conn.execute_batch(&format!(
            "PRAGMA synchronous = FULL; PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; \
             PRAGMA wal_autocheckpoint = 16384;"
        ))
        .map_err(|e| invalid(path, e))?;
        Ok(Self {
            conn,
            attestation_sets: HashMap::new(),
            unsealer: None,
        })
    }

    /// Opens format-2 content as it is read, with `unsealer`'s keys.
    pub fn with_unsealer(mut self, unsealer: Unsealer) -> Self {
        self.unsealer = Some(unsealer);
        self
    }

    /// Unseals one read entry, when an unsealer is attached.
    fn unseal(&self, row: Result<(Entry, Hash), StoreError>) -> Result<(Entry, Hash), StoreError> {
        open_row(self.unsealer.as_ref(), row)
    }

    /// The statements of an erasure (see [`StoreWriter::erase`]).
    fn erase_in(
        &mut self,
        record: u64,
        keys: &[(KeyId, Option<String>)],
        seqs: &[u64],
    ) -> Result<u64, StoreError> {
        let mut erased = 0;
        // The key's entries are found through the tenant index (no index on key ids: it
        // would cost every append).
        let mut by_key = self
            .conn
            .prepare_cached(
                "UPDATE contents SET sealed = NULL, erased_by = ?1 \
                 WHERE key_id = ?2 AND erased_by IS NULL \
                 AND seq IN (SELECT seq FROM entries WHERE tenant IS ?3)",
            )
            .map_err(db)?;
        let mut note_key = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO erased_keys (key_id, record_seq) VALUES (?1, ?2)",
            )
            .map_err(db)?;
        for (key, tenant) in keys {
            erased += by_key
                .execute(params![record as i64, &key.0[..], tenant])
                .map_err(db)? as u64;
            note_key
                .execute(params![&key.0[..], record as i64])
                .map_err(db)?;
        }
        let mut by_seq = self
            .conn
            .prepare_cached(
                "UPDATE contents SET sealed = NULL, erased_by = ?1 \
                 WHERE seq = ?2 AND erased_by IS NULL",
            )
            .map_err(db)?;
        for seq in seqs {
            erased += by_seq
                .execute(params![record as i64, *seq as i64])
                .map_err(db)? as u64;
        }
        Ok(erased)
    }

    /// The log's origin line, recorded at creation.
    pub fn origin(&self) -> Result<String, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'origin'", [], |r| {
                r.get(0)
            })
            .map_err(db)
    }

    /// Caps the database at `pages` pages (SQLite `max_page_count`): appends past it fail as
    /// [`StoreError::Full`]. Used to test full-disk handling without a small file system.
    pub fn set_max_pages(&self, pages: u64) -> Result<(), StoreError> {
        self.conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
            .map_err(db)
    }

    /// Runs SQLite's own structural check of the file.
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let result: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(db)?;
        if result == "ok" {
            Ok(())
        } else {
            Err(StoreError::Invalid(format!(
                "SQLite integrity check failed: {result}"
            )))
        }
    }
}

fn row_to_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<(Entry, Hash), StoreError>> {
    let read = ReadRow {
        seq: row.get(0)?,
        leaf_hash: row.get(1)?,
        recorded: (row.get(2)?, row.get(3)?),
        occurred: (row.get(4)?, row.get(5)?),
        event_id: row.get(6)?,
        tenant: row.get(7)?,
        correlation_id: row.get(8)?,
        chain_id: row.get(9)?,
        actor: row.get(10)?,
        kind: row.get(11)?,
        subject: row.get(12)?,
        payload: row.get(13)?,
        labels: row.get(14)?,
        disposition: row.get(15)?,
        dropped_plugin: row.get(16)?,
        dropped_reason: row.get(17)?,
        attestations: row.get(18)?,
        attestation_set: row.get(19)?,
        commitment: row.get(20)?,
        content_seq: row.get(21)?,
        key_id: row.get(22)?,
        sealed: row.get(23)?,
        erased_by: row.get(24)?,
    };
    Ok(read.into_entry())
}

/// One row of [`row_to_entry`], its SQLite error named as an unreadable entry.
fn read_entry(
    row: rusqlite::Result<Result<(Entry, Hash), StoreError>>,
) -> Result<(Entry, Hash), StoreError> {
    row.map_err(|e| StoreError::Invalid(format!("unreadable entry: {e}")))?
}

impl StoreReader for SqliteStore {
    fn size(&self) -> Result<u64, StoreError> {
        let next: Option<i64> = self
            .conn
            .query_row("SELECT max(seq) + 1 FROM entries", [], |r| r.get(0))
            .map_err(db)?;
        Ok(next.unwrap_or(0) as u64)
    }

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT hash FROM tree_hashes WHERE idx = ?1")
            .map_err(db)?;
        indexes
            .iter()
            .map(|&idx| {
                let hash: Option<Vec<u8>> = stmt
                    .query_row([idx as i64], |r| r.get(0))
                    .optional()
                    .map_err(db)?;
                let hash =
                    hash.ok_or_else(|| StoreError::Invalid(format!("tree hash {idx} is missing")))?;
                let hash: [u8; 32] = hash
                    .try_into()
                    .map_err(|_| StoreError::Invalid(format!("tree hash {idx} is not 32 bytes")))?;
                Ok(Hash(hash))
            })
            .collect()
    }

    fn entries(&self, from: u64, to: u64) -> Result<Vec<(Entry, Hash)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {READ_COLUMNS} FROM {ENTRIES_JOINED} \
                 WHERE entries.seq >= ?1 AND entries.seq < ?2 ORDER BY entries.seq"
            ))
            .map_err(db)?;
        let rows = stmt
            .query_map([from as i64, to.min(i64::MAX as u64) as i64], row_to_entry)
            .map_err(db)?;
        if let Some(unsealer) = &self.unsealer {
            unsealer.begin();
        }
        rows.map(|row| self.unseal(read_entry(row))).collect()
    }

    fn query(&self, query: &Query) -> Result<Page, StoreError> {
        let mut conditions = vec!["entries.seq > ?".to_string()];
        let mut values: Vec<rusqlite::types::Value> =
            vec![query.after_seq.map_or(-1, |s| s as i64).into()];
        for (column, value) in [
            ("tenant", &query.tenant),
            ("correlation_id", &query.correlation_id),
            ("chain_id", &query.chain_id),
        ] {
            if let Some(value) = value {
                conditions.push(format!("{column} = ?"));
                values.push(value.clone().into());
            }
        }
        if !query.kinds.is_empty() {
            conditions.push(format!(
                "kind IN ({})",
                vec!["?"; query.kinds.len()].join(", ")
            ));
            values.extend(query.kinds.iter().map(|k| k.clone().into()));
        }
        if let Some(since) = query.since {
            let (s, ns) = split_timestamp(since);
            conditions.push("(occurred_s, occurred_ns) >= (?, ?)".to_string());
            values.extend([s.into(), i64::from(ns).into()]);
        }
        if let Some(until) = query.until {
            let (s, ns) = split_timestamp(until);
            conditions.push("(occurred_s, occurred_ns) < (?, ?)".to_string());
            values.extend([s.into(), i64::from(ns).into()]);
        }
        // The actor is sealed content in format 2: it is matched after opening, so rows
        // are streamed until the page is full rather than limited in SQL.
        let limit = match query.actor {
            None => query.limit as i64,
            Some(_) => -1,
        };
        values.push(limit.into());
        let sql = format!(
            "SELECT {READ_COLUMNS} FROM {ENTRIES_JOINED} WHERE {} ORDER BY entries.seq LIMIT ?",
            conditions.join(" AND ")
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(db)?;
        let rows = stmt
            .query_map(params_from_iter(values), row_to_entry)
            .map_err(db)?;
        if let Some(unsealer) = &self.unsealer {
            unsealer.begin();
        }
        let entries = rows.map(|row| self.unseal(read_entry(row)).map(|(entry, _)| entry));
        collect_page(query, entries.filter(|e| actor_matches(query, e)))
    }

    fn erased_keys(&self, after: u64) -> Result<Vec<(u64, KeyId, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, key_id, record_seq FROM erased_keys WHERE id > ?1 ORDER BY id",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map([after as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(db)?;
        rows.map(|row| {
            let (id, key, record) = row.map_err(db)?;
            let key = KeyId::from_slice(&key)
                .ok_or_else(|| StoreError::Invalid(format!("erased key {id} is not 16 bytes")))?;
            Ok((id as u64, key, record as u64))
        })
        .collect()
    }

    fn idempotency_key(&self, scope: &str, key: &str) -> Result<Option<StoredKey>, StoreError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT digest, first_seq, count FROM idempotency_keys WHERE scope = ?1 AND key = ?2",
            )
            .map_err(db)?
            .query_row([scope, key], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })
            .optional()
            .map_err(db)?;
        let Some((digest, first_seq, count)) = row else {
            return Ok(None);
        };
        let bad = |what: &str| {
            StoreError::Invalid(format!("idempotency key `{key}` (scope `{scope}`): {what}"))
        };
        let digest: [u8; 32] = digest
            .try_into()
            .map_err(|_| bad("digest is not 32 bytes"))?;
        Ok(Some(StoredKey {
            scope: scope.to_string(),
            key: key.to_string(),
            digest: Hash(digest),
            first_seq: u64::try_from(first_seq).map_err(|_| bad("negative sequence number"))?,
            count: u64::try_from(count).map_err(|_| bad("negative count"))?,
        }))
    }

    fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT size, note FROM checkpoints ORDER BY size")
            .map_err(db)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
            .map_err(db)?;
        rows.map(|r| r.map_err(db)).collect()
    }

    fn checkpoint(&self, size: u64) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT note FROM checkpoints WHERE size = ?1",
                [size as i64],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)
    }

    fn cosignatures(&self, size: Option<u64>) -> Result<Vec<(u64, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT size, line FROM cosignatures WHERE ?1 IS NULL OR size = ?1 \
                 ORDER BY size, witness",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map([size.map(|s| s as i64)], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })
            .map_err(db)?;
        rows.map(|r| r.map_err(db)).collect()
    }

    fn timestamps(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT size, token FROM timestamps ORDER BY size")
            .map_err(db)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
            .map_err(db)?;
        rows.map(|r| r.map_err(db)).collect()
    }
}

impl StoreWriter for SqliteStore {
    fn begin_append(&mut self) -> Result<(), StoreError> {
        // IMMEDIATE takes SQLite's write lock now (waiting up to the busy timeout while
        // another process holds it), so the size read next stays true until COMMIT.
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| match e.sqlite_error_code() {
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                    StoreError::Io(format!(
                        "another process has held the ledger's write lock for over {} s: {e}",
                        BUSY_TIMEOUT_MS / 1000
                    ))
                }
                _ => db(e),
            })
    }

    fn append(
        &mut self,
        entries: &[(Entry, Hash)],
        hashes: &[(u64, Hash)],
        keys: &[StoredKey],
    ) -> Result<(), StoreError> {
        let mut new_sets: HashMap<Vec<Attestation>, i64> = HashMap::new();
        {
            let mut insert = self
                .conn
                .prepare_cached(&format!(
                    "INSERT INTO entries ({WRITE_COLUMNS}) VALUES \
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
                ))
                .map_err(db)?;
            let mut insert_content = self
                .conn
                .prepare_cached("INSERT INTO contents (seq, key_id, sealed) VALUES (?1, ?2, ?3)")
                .map_err(db)?;
            for (entry, leaf) in entries {
                let e = &entry.event;
                let row = WriteRow::new(entry)?;
                let known = self.attestation_sets.get(&entry.attestations);
                let set = match known.or_else(|| new_sets.get(&entry.attestations)) {
                    Some(&id) => id,
                    None => {
                        let id = attestation_set_id(&self.conn, &entry.attestations)?;
                        new_sets.insert(entry.attestations.clone(), id);
                        id
                    }
                };
                insert
                    .execute(params![
                        row.seq,
                        &leaf.0[..],
                        row.recorded.0,
                        row.recorded.1,
                        row.occurred.0,
                        row.occurred.1,
                        e.id,
                        e.tenant,
                        e.correlation_id,
                        e.chain_id,
                        row.actor,
                        e.kind,
                        row.subject,
                        row.payload,
                        row.labels,
                        row.disposition,
                        row.dropped_plugin,
                        row.dropped_reason,
                        set,
                        row.commitment,
                    ])
                    .map_err(db)?;
                if let Some(content) = ContentRow::new(entry)? {
                    insert_content
                        .execute(params![content.seq, content.key_id, content.sealed])
                        .map_err(db)?;
                }
            }
            let mut insert_hash = self
                .conn
                .prepare_cached("INSERT INTO tree_hashes (idx, hash) VALUES (?1, ?2)")
                .map_err(db)?;
            for (idx, hash) in hashes {
                insert_hash
                    .execute(params![*idx as i64, &hash.0[..]])
                    .map_err(db)?;
            }
            let mut insert_key = self
                .conn
                .prepare_cached(
                    "INSERT INTO idempotency_keys (scope, key, digest, first_seq, count) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(db)?;
            for k in keys {
                insert_key
                    .execute(params![
                        k.scope,
                        k.key,
                        &k.digest.0[..],
                        k.first_seq as i64,
                        k.count as i64
                    ])
                    .map_err(db)?;
            }
        }
        self.conn.execute_batch("COMMIT").map_err(db)?;
        // Only now are the new sets' ids known to be on disk.
        self.attestation_sets.extend(new_sets);
        Ok(())
    }

    fn erase(
        &mut self,
        record: u64,
        keys: &[(KeyId, Option<String>)],
        seqs: &[u64],
    ) -> Result<u64, StoreError> {
        // Cleared content is overwritten, not left in free space; only in this connection's
        // erasures (appends free nothing, and the setting costs them).
        self.conn
            .execute_batch("PRAGMA secure_delete = ON;")
            .map_err(db)?;
        let erased = self.erase_in(record, keys, seqs);
        self.conn
            .execute_batch("PRAGMA secure_delete = OFF;")
            .map_err(db)?;
        erased
    }

    fn abort_append(&mut self) {
        if !self.conn.is_autocommit()
            && let Err(e) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::warn!("rolling back a failed append: {e}");
        }
    }

    fn put_checkpoint(&mut self, size: u64, note: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO checkpoints (size, note) VALUES (?1, ?2)",
                params![size as i64, note],
            )
            .map(|_| ())
            .map_err(db)
    }

    fn put_cosignature(&mut self, size: u64, witness: &str, line: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO cosignatures (size, witness, line) VALUES (?1, ?2, ?3)",
                params![size as i64, witness, line],
            )
            .map(|_| ())
            .map_err(db)
    }

    fn put_timestamp(&mut self, size: u64, token: &[u8]) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO timestamps (size, token) VALUES (?1, ?2)",
                params![size as i64, token],
            )
            .map(|_| ())
            .map_err(db)
    }
}

/// The id of a set of attestations, stored by this transaction if it is new.
fn attestation_set_id(tx: &Connection, attestations: &[Attestation]) -> Result<i64, StoreError> {
    let text = serde_json::to_string(attestations).map_err(|e| StoreError::Io(e.to_string()))?;
    tx.prepare_cached("INSERT OR IGNORE INTO attestation_sets (attestations) VALUES (?1)")
        .and_then(|mut insert| insert.execute([&text]))
        .map_err(db)?;
    tx.prepare_cached("SELECT id FROM attestation_sets WHERE attestations = ?1")
        .and_then(|mut select| select.query_row([&text], |r| r.get(0)))
        .map_err(db)
}

/// Maps a SQLite error from normal operation.
fn db(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::Full(error.to_string()),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            StoreError::Invalid(format!("the ledger file is corrupted: {error}"))
        }
        _ => StoreError::Io(error.to_string()),
    }
}

/// Maps an error while opening `path`.
fn io(path: &Path, error: rusqlite::Error) -> StoreError {
    match db(error) {
        StoreError::Io(msg) => StoreError::Io(format!("{}: {msg}", path.display())),
        other => other,
    }
}

/// Maps an error on first access to `path`, where a non-database file shows up.
fn invalid(path: &Path, error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => StoreError::Invalid(format!(
            "{} is not a Vellum ledger (not a SQLite database, or corrupted)",
            path.display()
        )),
        _ => io(path, error),
    }
}
