//! Storage behind the ledger. The API is append-only: there is no update or delete path.
//! SQLite ([`sqlite::SqliteStore`]) is the embedded default; other backends implement the
//! same two traits and run the same tests.

pub mod sqlite;

use super::hash::Hash;

use super::entry::Entry;
use super::idempotency::StoredKey;
use super::query::Query;

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
    fn query(&self, query: &Query) -> Result<Vec<Entry>, StoreError>;
    /// Stored checkpoints `(tree size, signed note)`, by size.
    fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError>;
    /// The idempotency key `key` of `scope`, if an append claimed it.
    fn idempotency_key(&self, scope: &str, key: &str) -> Result<Option<StoredKey>, StoreError>;
}

/// Write access: one append is one durable, atomic transaction.
pub trait StoreWriter: StoreReader {
    /// Appends entries (with their leaf hashes), the new tree hashes and the idempotency
    /// keys the entries answer atomically and durably; returns only after the data is on
    /// stable storage.
    fn append(
        &mut self,
        entries: &[(Entry, Hash)],
        hashes: &[(u64, Hash)],
        keys: &[StoredKey],
    ) -> Result<(), StoreError>;
    /// Stores a signed checkpoint for tree size `size`.
    fn put_checkpoint(&mut self, size: u64, note: &str) -> Result<(), StoreError>;
}
