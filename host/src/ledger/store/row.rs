//! An entry as the stores keep it: one row of plain columns, the same in every backend.
//! Reading checks every column, since whoever can edit the database can write anything.

use jiff::Timestamp;

use super::StoreError;
use crate::event::{AuditEvent, Payload, join_timestamp, split_timestamp};
use crate::ledger::Hash;
use crate::ledger::content::KeyId;
use crate::ledger::entry::{Disposition, Entry, Erased, Seal, StoredContent};

/// The columns an entry is read from, in this order: the entry's own, then its attestation
/// set's text (NULL when the set is missing) and the set's id, then (format 2) the
/// commitment, the content row's seq (NULL: no content row), key id and sealed bytes, and
/// the erasure record that removed them.
pub(super) const READ_COLUMNS: &str = "entries.seq, entries.leaf_hash, entries.recorded_s, \
    entries.recorded_ns, entries.occurred_s, entries.occurred_ns, entries.event_id, \
    entries.tenant, entries.correlation_id, entries.chain_id, entries.actor, entries.kind, \
    entries.subject, entries.payload, entries.labels, entries.disposition, \
    entries.dropped_plugin, entries.dropped_reason, attestation_sets.attestations, \
    entries.attestation_set, entries.commitment, contents.seq, contents.key_id, \
    contents.sealed, contents.erased_by";

/// Entries with their attestation sets and contents; a missing set reads as NULL (and is
/// reported), a missing content row too (an erasure without record).
pub(super) const ENTRIES_JOINED: &str = "entries LEFT JOIN attestation_sets ON attestation_sets.id = entries.attestation_set \
     LEFT JOIN contents ON contents.seq = entries.seq \
     LEFT JOIN erased_keys ON erased_keys.key_id = contents.key_id";

/// The columns an entry is written to, in the order of [`WriteRow`]'s fields.
pub(super) const WRITE_COLUMNS: &str = "seq, leaf_hash, recorded_s, recorded_ns, occurred_s, \
    occurred_ns, event_id, tenant, correlation_id, chain_id, actor, kind, subject, payload, \
    labels, disposition, dropped_plugin, dropped_reason, attestation_set, commitment";

/// One stored entry's columns as read, before any check.
pub(super) struct ReadRow {
    pub seq: i64,
    pub leaf_hash: Vec<u8>,
    pub recorded: (i64, i64),
    pub occurred: (i64, i64),
    pub event_id: String,
    pub tenant: Option<String>,
    pub correlation_id: Option<String>,
    pub chain_id: Option<String>,
    pub actor: Option<String>,
    pub kind: String,
    pub subject: Option<String>,
    pub payload: String,
    pub labels: String,
    pub disposition: i64,
    pub dropped_plugin: Option<String>,
    pub dropped_reason: Option<String>,
    pub attestations: Option<String>,
    pub attestation_set: i64,
    pub commitment: Option<Vec<u8>>,
    pub content_seq: Option<i64>,
    pub key_id: Option<Vec<u8>>,
    pub sealed: Option<Vec<u8>>,
    pub erased_by: Option<i64>,
}

impl ReadRow {
    /// The entry and its stored leaf hash, or an error naming the entry and the column.
    pub fn into_entry(self) -> Result<(Entry, Hash), StoreError> {
        let seq = self.seq;
        let bad = |what: String| StoreError::Invalid(format!("unreadable entry {seq}: {what}"));
        let time = |(s, ns): (i64, i64), column: &str| -> Result<Timestamp, StoreError> {
            let ns = u32::try_from(ns)
                .map_err(|_| bad(format!("{column}: nanoseconds {ns} out of range")))?;
            join_timestamp(s, ns).map_err(|e| bad(format!("{column}: {e}")))
        };
        let leaf: [u8; 32] = self
            .leaf_hash
            .try_into()
            .map_err(|_| bad("leaf hash is not 32 bytes".to_string()))?;
        let (seal, stored) = match self.commitment {
            None => (None, None),
            Some(commitment) => {
                let commitment: [u8; 32] = commitment
                    .try_into()
                    .map_err(|_| bad("commitment is not 32 bytes".to_string()))?;
                let key = match &self.key_id {
                    None => None,
                    Some(id) => Some(
                        KeyId::from_slice(id)
                            .ok_or_else(|| bad("key id is not 16 bytes".to_string()))?,
                    ),
                };
                let stored = StoredContent {
                    key,
                    // No content row at all reads as removed bytes.
                    bytes: self.content_seq.and(self.sealed),
                    erased_by: self.erased_by.and_then(|s| u64::try_from(s).ok()),
                    damaged: None,
                };
                // Removed bytes, or a key an erasure record destroyed: erased, whatever the
                // key store says (a destroyed key is only looked up when opening).
                let erased =
                    (stored.bytes.is_none() || stored.erased_by.is_some()).then_some(Erased {
                        record: stored.erased_by,
                        key,
                    });
                let seal = Seal {
                    commitment: Hash(commitment),
                    salt: None,
                    erased,
                };
                (Some(seal), Some(stored))
            }
        };
        // Format 2 keeps no content in the entry's own row.
        let payload = match seal {
            Some(_) => Payload::default(),
            None => Payload::from_json(self.payload).map_err(|e| bad(format!("payload: {e}")))?,
        };
        let labels = match seal {
            Some(_) => Default::default(),
            None => serde_json::from_str(&self.labels).map_err(|e| bad(format!("labels: {e}")))?,
        };
        let set = self.attestation_set;
        let attestations = self
            .attestations
            .ok_or_else(|| bad(format!("attestation set {set} is missing")))?;
        let attestations =
            serde_json::from_str(&attestations).map_err(|e| bad(format!("attestations: {e}")))?;
        let disposition = match self.disposition {
            0 => Disposition::Recorded,
            1 => Disposition::Dropped,
            other => return Err(bad(format!("unknown disposition {other}"))),
        };
        let dropped_by = match (self.dropped_plugin, self.dropped_reason) {
            (Some(p), Some(r)) => Some((p, r)),
            _ => None,
        };
        let entry = Entry {
            seq: u64::try_from(seq).map_err(|_| bad("negative sequence number".to_string()))?,
            recorded_at: time(self.recorded, "recorded_at")?,
            event: AuditEvent {
                occurred_at: time(self.occurred, "occurred_at")?,
                id: self.event_id,
                tenant: self.tenant,
                correlation_id: self.correlation_id,
                chain_id: self.chain_id,
                actor: self.actor,
                kind: self.kind,
                subject: self.subject,
                payload,
                labels,
            },
            disposition,
            dropped_by,
            attestations,
            seal,
            stored,
        };
        Ok((entry, Hash(leaf)))
    }
}

/// The columns of an entry to write that are not the envelope's own strings: for a
/// format-2 entry the content columns are empty and the commitment is set, the content
/// goes to its own row ([`ContentRow`]).
pub(super) struct WriteRow {
    pub seq: i64,
    pub recorded: (i64, i64),
    pub occurred: (i64, i64),
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub payload: String,
    pub labels: String,
    pub disposition: i64,
    pub dropped_plugin: Option<String>,
    pub dropped_reason: Option<String>,
    pub commitment: Option<Vec<u8>>,
}

/// A format-2 entry's content row: its key id (NULL: in the clear) and sealed bytes.
pub(super) struct ContentRow {
    pub seq: i64,
    pub key_id: Option<Vec<u8>>,
    pub sealed: Vec<u8>,
}

impl ContentRow {
    /// The content row of `entry`, if it is a format-2 entry.
    pub fn new(entry: &Entry) -> Result<Option<Self>, StoreError> {
        let Some(stored) = &entry.stored else {
            return Ok(None);
        };
        let sealed = stored.bytes.clone().ok_or_else(|| {
            StoreError::Invalid(format!("entry {}: no content to store", entry.seq))
        })?;
        Ok(Some(Self {
            seq: entry.seq as i64,
            key_id: stored.key.map(|k| k.0.to_vec()),
            sealed,
        }))
    }
}

impl WriteRow {
    /// The derived columns of `entry`.
    pub fn new(entry: &Entry) -> Result<Self, StoreError> {
        let (rs, rns) = split_timestamp(entry.recorded_at);
        let (os, ons) = split_timestamp(entry.event.occurred_at);
        let labels = serde_json::to_string(&entry.event.labels)
            .map_err(|e| StoreError::Io(format!("entry {}: labels: {e}", entry.seq)))?;
        let (dropped_plugin, dropped_reason) = match &entry.dropped_by {
            Some((p, r)) => (Some(p.clone()), Some(r.clone())),
            None => (None, None),
        };
        let e = &entry.event;
        let (actor, subject, payload, labels, commitment) = match &entry.seal {
            None => (
                e.actor.clone(),
                e.subject.clone(),
                e.payload.as_str().to_string(),
                labels,
                None,
            ),
            Some(seal) => (
                None,
                None,
                String::new(),
                "{}".to_string(),
                Some(seal.commitment.0.to_vec()),
            ),
        };
        Ok(Self {
            seq: i64::try_from(entry.seq)
                .map_err(|_| StoreError::Invalid(format!("sequence {} too large", entry.seq)))?,
            recorded: (rs, i64::from(rns)),
            occurred: (os, i64::from(ons)),
            actor,
            subject,
            payload,
            labels,
            commitment,
            disposition: match entry.disposition {
                Disposition::Recorded => 0,
                Disposition::Dropped => 1,
            },
            dropped_plugin,
            dropped_reason,
        })
    }
}
