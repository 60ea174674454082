//! The witness's state file (SQLite): for each log origin, the latest checkpoint it cosigned;
//! and the refused checkpoints the log signed, kept as evidence of its misbehaviour. Writes
//! are durable (`synchronous=FULL`) before the witness answers.
//!
//! Evidence is bounded: only a checkpoint with a valid signature of the log is kept (so
//! nobody but the log can add to it), each (kind, checkpoint) once, with only the log's
//! signature lines (extra lines an attacker appends to a public checkpoint are not kept),
//! and at most `max_evidence` rows: beyond, the oldest rows are pruned first. The file is
//! created with mode 0600.
//!
//! The file is made once by `vellum witness init` and must exist when the witness starts:
//! a witness that silently started from empty state after losing its file could be made to
//! cosign a rolled-back or forked tree. A witness whose state is lost is retired (new key).

use std::path::Path;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use sha2::{Digest, Sha256};
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

/// Version 2: each piece of evidence says its kind, and is kept once (by `digest`).
const MIGRATION_2: &str = "
ALTER TABLE evidence ADD COLUMN kind TEXT NOT NULL DEFAULT 'bad-proof';
ALTER TABLE evidence ADD COLUMN digest BLOB;
CREATE UNIQUE INDEX evidence_digest ON evidence (digest);
PRAGMA user_version = 2;
";

/// The schema version this build writes.
const VERSION: i32 = 2;

/// What a piece of evidence shows the log did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceKind {
    /// A checkpoint of the size the witness holds, with another root: a split view.
    Fork,
    /// A checkpoint smaller than the one the witness holds, offered as the log's latest.
    Rollback,
    /// A larger checkpoint whose consistency proof from the held one does not verify.
    BadProof,
}

impl EvidenceKind {
    /// The kind's name in the state file.
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::Fork => "fork",
            EvidenceKind::Rollback => "rollback",
            EvidenceKind::BadProof => "bad-proof",
        }
    }
}

/// One piece of evidence as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The log's origin.
    pub origin: String,
    /// When the witness received it (RFC 3339).
    pub received: String,
    /// `fork`, `rollback` or `bad-proof`.
    pub kind: String,
    /// What the witness held, and why it refused.
    pub reason: String,
    /// The request as kept: its proof lines and the checkpoint with the log's signatures.
    pub request: String,
}

/// Evidence rows kept by default.
pub const DEFAULT_MAX_EVIDENCE: u64 = 10_000;

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
    max_evidence: u64,
}

impl WitnessState {
    /// Creates a new, empty state file; fails if it exists.
    pub fn create(path: &Path) -> anyhow::Result<()> {
        anyhow::ensure!(
            !path.exists(),
            "{} already exists; refusing to replace a witness's state",
            path.display()
        );
        vellum::ledger::store::create_private_file(path)
            .with_context(|| format!("cannot create witness state {}", path.display()))?;
        let conn = Connection::open(path)
            .with_context(|| format!("cannot create witness state {}", path.display()))?;
        conn.execute_batch(&format!(
            "BEGIN; {SCHEMA} PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1; \
             {MIGRATION_2} COMMIT;"
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
        let version: i32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .with_context(|| format!("cannot read the version of {}", path.display()))?;
        match version {
            1 => conn
                .execute_batch(&format!("BEGIN; {MIGRATION_2} COMMIT;"))
                .with_context(|| format!("cannot migrate {} to version 2", path.display()))?,
            VERSION => {}
            other => anyhow::bail!(
                "{} is a witness state of version {other}, which this build does not know",
                path.display()
            ),
        }
        Ok(Self {
            conn,
            max_evidence: DEFAULT_MAX_EVIDENCE,
        })
    }

    /// Keeps at most `rows` pieces of evidence (the oldest are pruned first).
    pub fn set_max_evidence(&mut self, rows: u64) {
        self.max_evidence = rows.max(1);
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

    /// Keeps a refused checkpoint the log signed, as evidence of `kind`: `request` is what is
    /// kept of the request (see [`Evidence::request`]), once per kind and `identity` (the
    /// signed checkpoint). Prunes the oldest rows beyond the cap. Returns whether it was new.
    pub fn keep_evidence(
        &mut self,
        origin: &str,
        kind: EvidenceKind,
        request: &str,
        identity: &str,
        reason: &str,
    ) -> anyhow::Result<bool> {
        let mut digest = Sha256::new();
        digest.update(kind.as_str().as_bytes());
        digest.update([0]);
        digest.update(identity.as_bytes());
        let digest = digest.finalize().to_vec();
        let tx = self.conn.transaction().context("keeping evidence")?;
        let added = tx
            .execute(
                "INSERT INTO evidence (origin, received, request, reason, kind, digest) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (digest) DO NOTHING",
                params![
                    origin,
                    jiff::Timestamp::now().to_string(),
                    request.as_bytes(),
                    reason,
                    kind.as_str(),
                    digest
                ],
            )
            .context("keeping evidence")?;
        tx.execute(
            "DELETE FROM evidence WHERE id <= (SELECT max(id) FROM evidence) - ?1",
            [self.max_evidence as i64],
        )
        .context("pruning old evidence")?;
        tx.commit().context("keeping evidence")?;
        Ok(added == 1)
    }

    /// Every piece of evidence kept, oldest first.
    pub fn evidence(&self) -> anyhow::Result<Vec<Evidence>> {
        let mut stmt = self
            .conn
            .prepare("SELECT origin, received, kind, reason, request FROM evidence ORDER BY id")
            .context("reading evidence")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Evidence {
                    origin: r.get(0)?,
                    received: r.get(1)?,
                    kind: r.get(2)?,
                    reason: r.get(3)?,
                    request: String::from_utf8_lossy(&r.get::<_, Vec<u8>>(4)?).into_owned(),
                })
            })
            .context("reading evidence")?;
        rows.collect::<Result<_, _>>().context("reading evidence")
    }
}
