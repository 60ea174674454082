//! The data keys in use, shared by the threads that seal entries' content (the callers of
//! `Ledger::append`, before sequencing) and the ledger's writer (which stores what they
//! sealed, and stops using a key once an erasure destroyed it).

use std::collections::{HashMap, HashSet};

use super::{KeyScope, KeyStore};
use crate::event::AuditEvent;
use crate::ledger::content::{DataKey, KeyId};
use crate::ledger::erasure::SubjectField;
use crate::ledger::store::StoreError;

/// Keys kept in the cache before it is emptied.
const CACHE_LIMIT: usize = 100_000;

/// The key store, the keys in use by scope, and the keys erasure destroyed.
pub(crate) struct KeyRing {
    /// The key store itself.
    pub(crate) store: Box<dyn KeyStore>,
    /// Which field names an event's data subject.
    subject_field: SubjectField,
    cache: HashMap<KeyScope, (KeyId, DataKey)>,
    erased: HashSet<KeyId>,
    /// How far the ledger's `erased_keys` was read.
    pub(crate) erased_seen: u64,
}

impl KeyRing {
    /// A ring over `store`, naming subjects by `subject_field`.
    pub(crate) fn new(store: Box<dyn KeyStore>, subject_field: SubjectField) -> Self {
        Self {
            store,
            subject_field,
            cache: HashMap::new(),
            erased: HashSet::new(),
            erased_seen: 0,
        }
    }

    /// The key scope of an event: its tenant and the keyed hash of its data subject.
    pub(crate) fn scope_of(&self, event: &AuditEvent) -> KeyScope {
        KeyScope {
            tenant: event.tenant.clone(),
            subject: self
                .subject_field
                .value(event)
                .map(|s| self.store.subject_hash(&s)),
        }
    }

    /// The key of each scope, in order: from the cache, else read or created in one
    /// key-store transaction. A key erasure destroyed (its record committed, the key store
    /// not yet cleaned after a crash) is destroyed now and replaced.
    pub(crate) fn keys_for(
        &mut self,
        scopes: &[KeyScope],
    ) -> Result<Vec<(KeyId, DataKey)>, StoreError> {
        let missing: Vec<KeyScope> = scopes
            .iter()
            .filter(|s| !self.cache.contains_key(*s))
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if !missing.is_empty() {
            if self.cache.len() + missing.len() > CACHE_LIMIT {
                self.cache.clear();
            }
            let mut found = self.store.keys_for(&missing)?;
            let stale: Vec<KeyId> = found
                .iter()
                .map(|(id, _)| *id)
                .filter(|id| self.erased.contains(id))
                .collect();
            if !stale.is_empty() {
                self.store.destroy(&stale)?;
                found = self.store.keys_for(&missing)?;
            }
            self.cache.extend(missing.into_iter().zip(found));
        }
        Ok(scopes.iter().map(|s| self.cache[s].clone()).collect())
    }

    /// Notes keys erasure destroyed: they are never used again.
    pub(crate) fn forget(&mut self, keys: impl IntoIterator<Item = KeyId>) {
        self.erased.extend(keys);
        let erased = &self.erased;
        self.cache.retain(|_, (id, _)| !erased.contains(id));
    }

    /// Whether erasure destroyed key `id`.
    pub(crate) fn is_erased(&self, id: &KeyId) -> bool {
        self.erased.contains(id)
    }

    /// Every key erasure destroyed, as far as this ring knows.
    pub(crate) fn erased(&self) -> Vec<KeyId> {
        self.erased.iter().copied().collect()
    }
}
