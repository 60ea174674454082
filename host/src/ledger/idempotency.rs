//! Idempotency keys: an append may claim a key, so that a retry of the same request (after a
//! lost response, a timeout, a crash of the producer or of the host) is answered with the
//! receipts of the first append instead of recording the events a second time.
//!
//! A key is stored in the same transaction as the entries it answers, so a key exists if
//! and only if its entries do. Keys live beside the Merkle tree, not in it: they are an
//! index for retries, not audit data: a key row edited by hand can only make a retry fail
//! (its entries are read back and compared), never answer with receipts of entries that do
//! not exist.

use super::entry::{Entry, Receipt};
use super::hash::Hash;
use super::store::StoreError;

/// Longest accepted key or scope, in bytes.
pub const MAX_KEY_BYTES: usize = 256;

/// The idempotency key derived from one event's id, for front doors that key a request by
/// its event: `event:<id>`, or `event-sha256:<hex digest of the id>` when that would be
/// longer than [`MAX_KEY_BYTES`] (an event id has no length limit of its own).
pub fn event_key(id: &str) -> String {
    let key = format!("event:{id}");
    if key.len() <= MAX_KEY_BYTES {
        return key;
    }
    use sha2::{Digest, Sha256};
    format!(
        "event-sha256:{}",
        hex::encode(Sha256::digest(id.as_bytes()))
    )
}

/// The key an append claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// Who the key belongs to (for example the tenant): the same key in two scopes is two
    /// keys.
    pub scope: String,
    /// The producer's key.
    pub key: String,
    /// A digest of the request the key was first used for; a retry must carry the same.
    pub digest: Hash,
}

/// A key as stored: the request's digest and where its entries are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The key's scope.
    pub scope: String,
    /// The key.
    pub key: String,
    /// Digest of the first request.
    pub digest: Hash,
    /// Sequence number of the first entry the request recorded.
    pub first_seq: u64,
    /// How many entries it recorded.
    pub count: u64,
}

impl IdempotencyKey {
    /// Checks the key's bounds.
    pub fn validate(&self) -> Result<(), String> {
        if self.key.is_empty() || self.key.len() > MAX_KEY_BYTES {
            return Err(format!(
                "an idempotency key must have 1 to {MAX_KEY_BYTES} bytes, not {}",
                self.key.len()
            ));
        }
        if self.scope.len() > MAX_KEY_BYTES {
            return Err(format!(
                "an idempotency scope must have at most {MAX_KEY_BYTES} bytes"
            ));
        }
        Ok(())
    }

    /// The stored form, for entries starting at `first_seq`.
    pub(crate) fn stored(&self, first_seq: u64, count: u64) -> StoredKey {
        StoredKey {
            scope: self.scope.clone(),
            key: self.key.clone(),
            digest: self.digest,
            first_seq,
            count,
        }
    }
}

/// What a stored key says about a new request with the same key.
pub(crate) enum Replay {
    /// The same request: answer with these receipts.
    Same(Vec<Receipt>),
    /// Another request under a used key.
    Conflict(String),
}

impl StoredKey {
    /// Why a request with other events under this key is refused.
    pub(crate) fn conflict(&self) -> String {
        format!(
            "idempotency key `{}` was already used for a different request; nothing was \
             recorded (use a new key for new events)",
            self.key
        )
    }

    /// Compares a retry with the stored key and rebuilds the first receipts from the
    /// entries. A row that does not match the ledger (edited by hand) is an error, never
    /// receipts of entries that do not exist.
    pub(crate) fn replay(
        &self,
        request: &IdempotencyKey,
        entries: impl FnOnce(u64, u64) -> Result<Vec<Entry>, StoreError>,
        event_ids: &[&str],
    ) -> Result<Replay, StoreError> {
        if self.digest != request.digest {
            return Ok(Replay::Conflict(self.conflict()));
        }
        let damaged = |what: &str| {
            StoreError::Invalid(format!(
                "idempotency key `{}` (scope `{}`) {what}; run `vellum verify`",
                self.key, self.scope
            ))
        };
        if self.count != event_ids.len() as u64 {
            return Err(damaged("does not match its request's number of events"));
        }
        let end = self
            .first_seq
            .checked_add(self.count)
            .ok_or_else(|| damaged("points past the end of the ledger"))?;
        let found = entries(self.first_seq, end)?;
        if found.len() as u64 != self.count {
            return Err(damaged("points past the end of the ledger"));
        }
        if found.iter().zip(event_ids).any(|(e, id)| e.event.id != *id) {
            return Err(damaged("points at entries of other events"));
        }
        Ok(Replay::Same(found.iter().map(Entry::receipt).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_of_long_ids_are_digests() {
        assert_eq!(event_key("e1"), "event:e1");
        let long = "x".repeat(MAX_KEY_BYTES);
        let key = event_key(&long);
        assert!(
            key.starts_with("event-sha256:") && key.len() <= MAX_KEY_BYTES,
            "{key}"
        );
        assert_ne!(event_key(&format!("{long}y")), key);
    }
}
