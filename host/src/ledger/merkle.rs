//! The RFC 9162 Merkle tree over the leaf hashes (0x00 leaf / 0x01 node prefixes), stored
//! as the "stored hashes" of `tlog_tiles::tlog` (the Go sumdb design: about two hashes per
//! entry, so roots and proofs need O(log n) reads), plus the proof formats and their
//! standalone verification.

use std::cell::RefCell;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tlog_tiles::tlog::{self, HashReader};

pub use super::hash::Hash;

use super::checkpoint::VerifiedCheckpoint;
use super::entry::Entry;
use super::store::{StoreError, StoreReader};

/// Longest proof accepted: a tree of at most 2^64 leaves never needs more hashes.
pub const MAX_PROOF_HASHES: usize = 64;

/// Reads tree hashes from a store for `tlog`'s algorithms, keeping the store's own error.
pub(crate) struct StoreHashes<'a> {
    store: &'a dyn StoreReader,
    /// Hashes already known: written in the current group (not yet committed), or read
    /// before. `None` reads everything from the store.
    known: Option<RefCell<HashMap<u64, Hash>>>,
    error: RefCell<Option<StoreError>>,
}

impl<'a> StoreHashes<'a> {
    /// Reads every hash from the store.
    pub(crate) fn new(store: &'a dyn StoreReader) -> Self {
        Self {
            store,
            known: None,
            error: RefCell::new(None),
        }
    }

    /// Reads each hash from the store once, and sees the hashes [`Self::remember`]ed.
    pub(crate) fn caching(store: &'a dyn StoreReader) -> Self {
        Self {
            known: Some(RefCell::new(HashMap::new())),
            ..Self::new(store)
        }
    }

    /// Makes a hash not yet stored (one of the group being written) readable.
    pub(crate) fn remember(&self, index: u64, hash: Hash) {
        if let Some(known) = &self.known {
            known.borrow_mut().insert(index, hash);
        }
    }

    /// Converts a `tlog` error into the store error that caused it, if any.
    pub(crate) fn error(&self, e: tlog::Error) -> StoreError {
        self.error
            .borrow_mut()
            .take()
            .unwrap_or_else(|| StoreError::Invalid(format!("Merkle tree: {e}")))
    }
}

impl HashReader for StoreHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog::Hash>, tlog::Error> {
        let lookup = |i: &u64| self.known.as_ref().and_then(|k| k.borrow().get(i).copied());
        let missing: Vec<u64> = indexes
            .iter()
            .filter(|i| lookup(i).is_none())
            .copied()
            .collect();
        let stored = match self.store.read_hashes(&missing) {
            Ok(hashes) if hashes.len() == missing.len() => hashes,
            Ok(_) => {
                *self.error.borrow_mut() =
                    Some(StoreError::Invalid("short read of tree hashes".into()));
                return Err(tlog::Error::IndexesNotInTree);
            }
            Err(e) => {
                *self.error.borrow_mut() = Some(e);
                return Err(tlog::Error::IndexesNotInTree);
            }
        };
        let stored: HashMap<u64, Hash> = missing.into_iter().zip(stored).collect();
        for (&i, &hash) in &stored {
            self.remember(i, hash);
        }
        Ok(indexes
            .iter()
            .map(|i| lookup(i).unwrap_or_else(|| stored[i]).into())
            .collect())
    }
}

/// The root hash of the first `size` entries.
pub(crate) fn root(store: &dyn StoreReader, size: u64) -> Result<Hash, StoreError> {
    let reader = StoreHashes::new(store);
    tlog::tree_hash(size, &reader)
        .map(Hash::from)
        .map_err(|e| reader.error(e))
}

/// Hashes in `tlog`'s form.
pub(crate) fn to_tlog(hashes: &[Hash]) -> Vec<tlog::Hash> {
    hashes.iter().map(|&h| h.into()).collect()
}

/// Hashes from `tlog`'s form.
pub(crate) fn from_tlog(hashes: Vec<tlog::Hash>) -> Vec<Hash> {
    hashes.into_iter().map(Hash::from).collect()
}

/// Proof that an entry is in the tree of a checkpoint (an RFC 9162 audit path).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// The entry's sequence number (its leaf index).
    pub seq: u64,
    /// Size of the tree the proof is for (the checkpoint's size).
    pub tree_size: u64,
    /// The entry's leaf hash, hex.
    pub leaf_hash: Hash,
    /// The audit path, hex, leaf to root.
    pub path: Vec<Hash>,
    /// The entry itself, so a verifier can recompute its leaf hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<Entry>,
}

/// Proof that the tree of `old_size` is a prefix of the tree of `new_size`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// The older tree size.
    pub old_size: u64,
    /// The newer tree size.
    pub new_size: u64,
    /// The consistency path, hex.
    pub path: Vec<Hash>,
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof is for another tree size than the checkpoint's.
    #[error("the proof is for tree size {proof}, the checkpoint has size {checkpoint}")]
    SizeMismatch {
        /// Size in the proof.
        proof: u64,
        /// Size in the checkpoint.
        checkpoint: u64,
    },
    /// The proof has more hashes than any valid proof.
    #[error("the proof has {0} hashes; no valid proof has more than {MAX_PROOF_HASHES}")]
    TooLong(usize),
    /// The included entry does not hash to the proof's leaf hash.
    #[error("the entry in the proof does not match its leaf hash")]
    EntryMismatch,
    /// The hashes do not lead to the checkpoint's root.
    #[error("the proof does not verify against the checkpoint: {0}")]
    Invalid(String),
}

impl InclusionProof {
    /// Builds the proof that entry `seq` is in the tree of size `tree_size`.
    pub(crate) fn build(
        store: &dyn StoreReader,
        seq: u64,
        tree_size: u64,
        entry: Entry,
        leaf_hash: Hash,
    ) -> Result<Self, StoreError> {
        let reader = StoreHashes::new(store);
        let path = tlog::prove_record(tree_size, seq, &reader).map_err(|e| reader.error(e))?;
        let path = from_tlog(path);
        Ok(Self {
            seq,
            tree_size,
            leaf_hash,
            path,
            entry: Some(entry),
        })
    }

    /// Checks the proof against a verified checkpoint; needs no database.
    pub fn verify(&self, checkpoint: &VerifiedCheckpoint) -> Result<(), ProofError> {
        if self.tree_size != checkpoint.size {
            return Err(ProofError::SizeMismatch {
                proof: self.tree_size,
                checkpoint: checkpoint.size,
            });
        }
        if self.path.len() > MAX_PROOF_HASHES {
            return Err(ProofError::TooLong(self.path.len()));
        }
        if let Some(entry) = &self.entry
            && (entry.seq != self.seq || entry.leaf_hash() != self.leaf_hash)
        {
            return Err(ProofError::EntryMismatch);
        }
        tlog::check_record(
            &to_tlog(&self.path),
            self.tree_size,
            checkpoint.root.into(),
            self.seq,
            self.leaf_hash.into(),
        )
        .map_err(|e| ProofError::Invalid(e.to_string()))
    }
}

impl ConsistencyProof {
    /// Builds the proof that the tree of `old_size` is a prefix of the one of `new_size`.
    pub(crate) fn build(
        store: &dyn StoreReader,
        old_size: u64,
        new_size: u64,
    ) -> Result<Self, StoreError> {
        let reader = StoreHashes::new(store);
        let path = tlog::prove_tree(new_size, old_size, &reader).map_err(|e| reader.error(e))?;
        let path = from_tlog(path);
        Ok(Self {
            old_size,
            new_size,
            path,
        })
    }

    /// Checks the proof between two verified checkpoints; needs no database.
    pub fn verify(
        &self,
        old: &VerifiedCheckpoint,
        new: &VerifiedCheckpoint,
    ) -> Result<(), ProofError> {
        for (proof, checkpoint) in [(self.old_size, old.size), (self.new_size, new.size)] {
            if proof != checkpoint {
                return Err(ProofError::SizeMismatch { proof, checkpoint });
            }
        }
        if self.path.len() > MAX_PROOF_HASHES {
            return Err(ProofError::TooLong(self.path.len()));
        }
        if self.old_size == self.new_size {
            return match (self.path.is_empty(), old.root == new.root) {
                (true, true) => Ok(()),
                _ => Err(ProofError::Invalid(
                    "equal sizes need equal roots and an empty path".into(),
                )),
            };
        }
        if self.old_size == 0 {
            return Err(ProofError::Invalid(
                "the empty tree needs no consistency proof".into(),
            ));
        }
        let path = to_tlog(&self.path);
        tlog::check_tree(
            &path,
            self.new_size,
            new.root.into(),
            self.old_size,
            old.root.into(),
        )
        .map_err(|e| ProofError::Invalid(e.to_string()))
    }
}
