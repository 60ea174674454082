//! Storage behind the ledger. The API is append-only: there is no update or delete path.
//! SQLite ([`sqlite::SqliteStore`]) is the embedded default and PostgreSQL
//! ([`postgres::PgStore`]) serves many hosts; both implement the same two traits and run the
//! same tests. [`Location`] names a ledger (a file or a `postgres://` URL) and its keys.
//!
//! Appends are planned under the store's append lock, which every process writing the
//! ledger shares: [`StoreWriter::begin_append`] takes it, the writer reads the size, tree
//! hashes and idempotency keys as of that moment, and [`StoreWriter::append`] writes and
//! commits. So several processes append one gapless log.

mod location;
pub mod postgres;
mod row;
pub mod sqlite;
pub mod unseal;

pub use location::{Backend, Location};

use super::hash::Hash;

use super::content::KeyId;
use super::entry::Entry;
use super::idempotency::StoredKey;
use super::query::{Page, Query};

/// Creates an empty file at `path` that only its owner may read and write (mode 0600),
/// failing if anything exists there. SQLite gives the files it makes beside a database
/// (`-wal`, `-shm`, `-journal`) the database's own mode, so a ledger or witness state made
/// this way stays private with them. An operator who wants a reader group grants it
/// afterwards (`chgrp` and `chmod 0640` on the database file).
pub fn create_private_file(path: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage is full (disk or quota); nothing of the failed write was kept.
    #[error("storage full: {0}")]
    Full(String),
    /// An I/O or database error. Whether the failed write reached the disk is unknown.
    #[error("storage I/O error: {0}")]
    Io(String),
    /// The stored data is not a readable Vellum ledger (wrong file, unknown schema version,
    /// corrupted).
    #[error("{0}")]
    Invalid(String),
}

/// Read access to a ledger's storage.
pub trait StoreReader: Send {
    /// Number of entries.
    fn size(&self) -> Result<u64, StoreError>;
    /// Merkle tree hashes by stored-hash index (see `tlog_tiles::tlog::stored_hash_index`);
    /// must return exactly one hash per index or an error.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError>;
    /// Entries with `from <= seq < to`, in order, each with the leaf hash stored beside it.
    fn entries(&self, from: u64, to: u64) -> Result<Vec<(Entry, Hash)>, StoreError>;
    /// Entries matching a query, ordered by sequence number.
    fn query(&self, query: &Query) -> Result<Page, StoreError>;
    /// Stored checkpoints `(tree size, signed note)`, by size.
    fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError>;
    /// The stored checkpoint of tree size `size`, if any.
    fn checkpoint(&self, size: u64) -> Result<Option<String>, StoreError>;
    /// Witnesses' cosignatures `(tree size, signature line)` of the checkpoint of `size`, or
    /// of all checkpoints (`None`), by size (see [`super::cosignature`]).
    fn cosignatures(&self, size: Option<u64>) -> Result<Vec<(u64, String)>, StoreError>;
    /// The idempotency key `key` of `scope`, if an append claimed it.
    fn idempotency_key(&self, scope: &str, key: &str) -> Result<Option<StoredKey>, StoreError>;
    /// RFC 3161 timestamp tokens `(tree size, token DER)` of checkpoints, by size (see
    /// [`super::timestamp`]).
    fn timestamps(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
    /// Data keys erasure destroyed, after position `after`: `(position, key, erasure
    /// record)`, by position.
    fn erased_keys(&self, after: u64) -> Result<Vec<(u64, KeyId, u64)>, StoreError>;
}

/// Write access: one append is one durable, atomic transaction.
pub trait StoreWriter: StoreReader {
    /// Starts an append: opens a write transaction holding the ledger's append lock (other
    /// writers, also in other processes, wait), so that the reads that follow see the
    /// ledger as the append will extend it. Ends with [`StoreWriter::append`] or
    /// [`StoreWriter::abort_append`].
    fn begin_append(&mut self) -> Result<(), StoreError>;
    /// Ends the append [`StoreWriter::begin_append`] started by writing the entries (with
    /// their leaf hashes), the new tree hashes and the idempotency keys they answer, and
    /// committing atomically and durably; returns only after the data is on stable storage.
    /// On error, the caller must call [`StoreWriter::abort_append`].
    fn append(
        &mut self,
        entries: &[(Entry, Hash)],
        hashes: &[(u64, Hash)],
        keys: &[StoredKey],
    ) -> Result<(), StoreError>;
    /// Within the open append (committed by the [`StoreWriter::append`] that follows, which
    /// holds the erasure record `record`): removes the content of the entries `seqs` and of
    /// every entry sealed under `keys` (each with the tenant it belongs to), and records
    /// `keys` as destroyed by `record`. Returns how many entries' content it removed.
    fn erase(
        &mut self,
        record: u64,
        keys: &[(KeyId, Option<String>)],
        seqs: &[u64],
    ) -> Result<u64, StoreError>;
    /// Abandons the open append, if any: nothing of it is written. Never fails; a broken
    /// connection is dropped and replaced on the next append.
    fn abort_append(&mut self);
    /// Stores a signed checkpoint for tree size `size`, unless one of that size exists (two
    /// writers may sign the same tree; the first note stays).
    fn put_checkpoint(&mut self, size: u64, note: &str) -> Result<(), StoreError>;
    /// Stores the cosignature `line` by `witness` (its `name+key id`) of the checkpoint of
    /// `size`, unless that witness's cosignature of that size is stored already.
    fn put_cosignature(&mut self, size: u64, witness: &str, line: &str) -> Result<(), StoreError>;
    /// Stores the timestamp token of the checkpoint of `size`, unless one is stored.
    fn put_timestamp(&mut self, size: u64, token: &[u8]) -> Result<(), StoreError>;
}
