//! Opening format-2 content as entries are read: each entry's sealed bytes are opened with
//! its data key from the key store, or shown as erased when the bytes or the key are gone.

use std::cell::RefCell;
use std::collections::HashMap;

use super::StoreError;
use crate::ledger::Hash;
use crate::ledger::content::{self, DataKey, KeyId};
use crate::ledger::entry::{Entry, Erased};
use crate::ledger::keys::KeyStore;
use crate::ledger::query::Query;

/// Opens entries' content with the keys of one key store.
pub struct Unsealer {
    keys: Box<dyn KeyStore>,
    /// Whether content that does not open is an error (reads) or left sealed for `verify`
    /// to report (see [`Unsealer::tolerant`]).
    strict: bool,
    /// Keys looked up during one read, so a page of one subject costs one look-up.
    cache: RefCell<HashMap<KeyId, Option<DataKey>>>,
}

impl Unsealer {
    /// An unsealer for reads: content that does not open is an error naming the entry.
    pub fn new(keys: Box<dyn KeyStore>) -> Self {
        Self {
            keys,
            strict: true,
            cache: RefCell::default(),
        }
    }

    /// An unsealer for `verify`: content that does not open stays sealed (no salt, not
    /// erased), which `verify` reports as a modified entry.
    pub fn tolerant(keys: Box<dyn KeyStore>) -> Self {
        Self {
            strict: false,
            ..Self::new(keys)
        }
    }

    /// Starts a read: keys destroyed since the last one are looked up again.
    pub(crate) fn begin(&self) {
        self.cache.borrow_mut().clear();
    }

    fn key(&self, id: &KeyId) -> Result<Option<DataKey>, StoreError> {
        if let Some(key) = self.cache.borrow().get(id) {
            return Ok(key.clone());
        }
        let key = self.keys.key(id)?;
        self.cache.borrow_mut().insert(*id, key.clone());
        Ok(key)
    }

    /// Opens `entry`'s content in place. An erased one keeps its envelope and is marked
    /// erased, with the record that erased it when the store knows it.
    pub(crate) fn open(&self, entry: &mut Entry) -> Result<(), StoreError> {
        let seq = entry.seq;
        let (Some(stored), Some(seal)) = (entry.stored.as_mut(), entry.seal.as_mut()) else {
            return Ok(());
        };
        if seal.erased.is_some() {
            return Ok(());
        }
        let Some(bytes) = stored.bytes.take() else {
            return Ok(());
        };
        let opened = match stored.key {
            None => content::unsealed(&bytes),
            Some(id) => match self.key(&id)? {
                Some(key) => content::open(&key, &id, &bytes),
                None => {
                    // The key is gone and no erasure record names it (`verify` reports it).
                    seal.erased = Some(Erased {
                        record: None,
                        key: Some(id),
                    });
                    return Ok(());
                }
            },
        };
        match opened {
            Ok((salt, content)) => {
                content.restore(&mut entry.event);
                seal.salt = Some(salt);
                Ok(())
            }
            Err(e) if self.strict => {
                Err(StoreError::Invalid(format!("unreadable entry {seq}: {e}")))
            }
            Err(e) => {
                stored.damaged = Some(e);
                Ok(())
            }
        }
    }
}

/// One read row, its entry opened by `unsealer` when there is one (both stores read
/// through this).
pub(crate) fn open_row(
    unsealer: Option<&Unsealer>,
    row: Result<(Entry, Hash), StoreError>,
) -> Result<(Entry, Hash), StoreError> {
    let (mut entry, leaf) = row?;
    if let Some(unsealer) = unsealer {
        unsealer.open(&mut entry)?;
    }
    Ok((entry, leaf))
}

/// Whether an opened entry matches the query's actor, which format 2 seals and the stores
/// therefore match after reading.
pub(crate) fn actor_matches(query: &Query, entry: &Result<Entry, StoreError>) -> bool {
    match (&query.actor, entry) {
        (Some(actor), Ok(e)) => e.event.actor.as_deref() == Some(actor.as_str()),
        _ => true,
    }
}
