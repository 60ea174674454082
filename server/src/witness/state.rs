//! The witness's state file (SQLite): for each log origin, the latest checkpoint it cosigned;
//! and the refused requests kept as evidence of a log's misbehaviour. Writes are durable
//! (`synchronous=FULL`) before the witness answers.
//!
//! The file is made once by `vellum witness init` and must exist when the witness starts:
//! a witness that silently started from empty state after losing its file could be made to
//! cosign a rolled-back or forked tree. A witness whose state is lost is retired (new key).

use std::path::Path;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use vellum::ledger::Hash;
use vellum::ledger::checkpoint::VerifiedCheckpoint;

/// `PRAGMA application_id` of a witness state file ("VWIT").
const APPLICATION_ID: i32 = 0x5657_4954;

const SCHEMA: &str = "
CREATE TABLE held (
    origin  TEXT    PRIMARY KEY,
    size    INTEGER NOT NULL,
    root    BLOB    NOT NULL,
    note    TEXT    NOT NULL,
    updated TEXT    NOT NULL
) STRICT;
CREATE TABLE evidence (
    id       INTEGER PRIMARY KEY,
    origin   TEXT    NOT NULL,
    received TEXT    NOT NULL,
    request  BLOB    NOT NULL,
    reason   TEXT    NOT NULL
) STRICT;
";

/// The checkpoint a witness holds for a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Its tree size.
    pub size: u64,
    /// Its root hash.
    pub root: Hash,
}

/// An open state file.
pub struct WitnessState {
    conn: Connection,
}

impl WitnessState {
    /// Creates a new, empty state file; fails if it exists.
    pub fn create(path: &Path) -> anyhow::Result<()> {
        anyhow::ensure!(
            !path.exists(),
            "{} already exists; refusing to replace a witness's state",
            path.display()
        );
        let conn = Connection::open(path)
            .with_context(|| format!("cannot create witness state {}", path.display()))?;
        conn.execute_batch(&format!(
            "BEGIN; {SCHEMA} PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1; \
             COMMIT;"
        ))
        .with_context(|| format!("cannot create witness state {}", path.display()))
    }

    /// Opens an existing state file.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        anyhow::ensure!(
            path.exists(),
            "witness state {} does not exist (create it with `vellum witness init`); a witness \
             never starts from empty state on its own",
            path.display()
        );
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .with_context(|| format!("cannot open witness state {}", path.display()))?;
        let app_id: i32 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .with_context(|| format!("{} is not a witness state file", path.display()))?;
        anyhow::ensure!(
            app_id == APPLICATION_ID,
            "{} is not a Vellum witness state file",
            path.display()
        );
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
            .with_context(|| format!("cannot configure {}", path.display()))?;
        Ok(Self { conn })
    }

    /// The checkpoint held for `origin`, if any.
    pub fn held(&self, origin: &str) -> anyhow::Result<Option<Held>> {
        let row: Option<(i64, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT size, root FROM held WHERE origin = ?1",
                [origin],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .context("reading the witness state")?;
        row.map(|(size, root)| {
            Ok(Held {
                size: u64::try_from(size).context("a negative size in the witness state")?,
                root: Hash(
                    root.try_into()
                        .map_err(|_| anyhow::anyhow!("a root that is not 32 bytes"))?,
                ),
            })
        })
        .transpose()
    }

    /// Records `checkpoint` (its signed `note`) as the one held for its origin, durably.
    pub fn hold(&mut self, checkpoint: &VerifiedCheckpoint, note: &str) -> anyhow::Result<()> {
        self.conn
            .execute(
                "INSERT INTO held (origin, size, root, note, updated) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (origin) DO UPDATE SET size = ?2, root = ?3, note = ?4, updated = ?5",
                params![
                    checkpoint.origin,
                    checkpoint.size as i64,
                    checkpoint.root.0.as_slice(),
                    note,
                    jiff::Timestamp::now().to_string()
                ],
            )
            .context("recording the checkpoint in the witness state")?;
        Ok(())
    }

    /// Keeps a refused request the log signed, as evidence.
    pub fn keep_evidence(
        &mut self,
        origin: &str,
        request: &[u8],
        reason: &str,
    ) -> anyhow::Result<()> {
        self.conn
            .execute(
                "INSERT INTO evidence (origin, received, request, reason) VALUES (?1, ?2, ?3, ?4)",
                params![origin, jiff::Timestamp::now().to_string(), request, reason],
            )
            .context("keeping evidence")?;
        Ok(())
    }
}
