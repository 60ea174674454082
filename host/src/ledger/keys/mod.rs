//! The key store: the data keys that seal entries' content, kept apart from the entries so
//! that destroying one (crypto-shredding) makes its content unreadable in the ledger and in
//! every copy of the ledger made before, and the legal holds that stop erasure.
//!
//! One key per (tenant, data subject); entries with no subject use their tenant's key. The
//! subject itself is never stored: only its keyed hash ([`SubjectHash`], HMAC-SHA-256 under
//! the store's own index key), which names the key. Deleting a key leaves no copy in the
//! store's files: SQLite with `secure_delete`, then a WAL checkpoint and VACUUM
//! ([`sqlite::SqliteKeys`]); PostgreSQL with `VACUUM FULL` of the key table in a schema
//! of its own ([`postgres::PgKeys`]).

pub mod postgres;
pub(crate) mod ring;
pub mod sqlite;

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::content::{DataKey, KeyId};
use super::store::StoreError;

/// The keyed hash that stands for a data subject in the key store and in holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubjectHash(pub [u8; 32]);

impl SubjectHash {
    /// HMAC-SHA-256(index key, subject).
    pub fn of(index_key: &[u8], subject: &str) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(index_key).expect("HMAC takes any key");
        mac.update(subject.as_bytes());
        Self(mac.finalize().into_bytes().into())
    }

    /// From stored bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        Some(Self(bytes.try_into().ok()?))
    }
}

impl fmt::Debug for SubjectHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubjectHash({})", hex::encode(self.0))
    }
}

impl fmt::Display for SubjectHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Which data a key seals: one tenant's (`None`: no tenant) entries of one subject, or
/// those without a subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyScope {
    /// The tenant.
    pub tenant: Option<String>,
    /// The data subject's hash; `None` for the tenant's own key.
    pub subject: Option<SubjectHash>,
}

/// A stored key's id and scope (never its bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's id, as entries name it.
    pub id: KeyId,
    /// Whose data it seals.
    pub scope: KeyScope,
}

impl KeyInfo {
    /// A key row's columns as every backend stores them (the tenant as
    /// [`tenant_column`] spells it, an empty subject for a tenant's own key), or an error
    /// naming the key store `store`.
    pub(crate) fn from_columns(
        id: &[u8],
        tenant: &str,
        subject: &[u8],
        store: &str,
    ) -> Result<Self, StoreError> {
        let bad = || StoreError::Invalid(format!("{store}: a damaged key row"));
        Ok(Self {
            id: KeyId::from_slice(id).ok_or_else(bad)?,
            scope: KeyScope {
                tenant: tenant_from_column(tenant)?,
                subject: match subject.is_empty() {
                    true => None,
                    false => Some(SubjectHash::from_slice(subject).ok_or_else(bad)?),
                },
            },
        })
    }
}

/// What a legal hold protects from erasure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "scope", content = "value", rename_all = "kebab-case")]
pub enum HoldTarget {
    /// Every entry of a tenant.
    Tenant(String),
    /// Every entry of a data subject (by its keyed hash, in hex).
    Subject(String),
    /// Every entry of a correlation id (one run).
    Correlation(String),
}

impl HoldTarget {
    /// `(scope, value)` as stored.
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            Self::Tenant(v) => ("tenant", v),
            Self::Subject(v) => ("subject", v),
            Self::Correlation(v) => ("correlation", v),
        }
    }

    /// From stored parts.
    pub fn from_parts(scope: &str, value: String) -> Result<Self, StoreError> {
        match scope {
            "tenant" => Ok(Self::Tenant(value)),
            "subject" => Ok(Self::Subject(value)),
            "correlation" => Ok(Self::Correlation(value)),
            other => Err(StoreError::Invalid(format!(
                "key store: hold of unknown scope `{other}`"
            ))),
        }
    }
}

impl fmt::Display for HoldTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scope, value) = self.parts();
        write!(f, "{scope} {value}")
    }
}

/// A legal hold: while it exists, nothing it covers is erased, by retention or by `erase`
/// without `--override-hold`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hold {
    /// Its number, to remove it by.
    pub id: u64,
    /// What it protects.
    #[serde(flatten)]
    pub target: HoldTarget,
    /// Why (a case number, a regulator's request).
    pub reason: String,
    /// When it was placed (RFC 3339).
    pub created_at: String,
}

/// Where data keys and holds are kept. Every write is durable when it returns.
pub trait KeyStore: Send {
    /// The keyed hash of a data subject under this store's index key.
    fn subject_hash(&self, subject: &str) -> SubjectHash;
    /// The key of each scope, in order, creating (in one durable transaction) those
    /// missing. A scope's key is created once; after it is destroyed, a new one is made.
    fn keys_for(&mut self, scopes: &[KeyScope]) -> Result<Vec<(KeyId, DataKey)>, StoreError>;
    /// The key `id`, if it exists.
    fn key(&self, id: &KeyId) -> Result<Option<DataKey>, StoreError>;
    /// The keys of a tenant (`tenant` set, `subject` not), of a subject in every tenant or
    /// one (`subject` set), never both unset.
    fn find(
        &self,
        tenant: Option<&str>,
        subject: Option<&SubjectHash>,
    ) -> Result<Vec<KeyInfo>, StoreError>;
    /// The scope of key `id`, if it exists.
    fn find_by_id(&self, id: &KeyId) -> Result<Option<KeyInfo>, StoreError>;
    /// Which of `ids` still exist.
    fn existing(&self, ids: &[KeyId]) -> Result<Vec<KeyId>, StoreError>;
    /// Destroys the keys `ids` (those that exist) so that no copy stays in the store's
    /// files; durable when it returns.
    fn destroy(&mut self, ids: &[KeyId]) -> Result<(), StoreError>;
    /// The legal holds, oldest first.
    fn holds(&self) -> Result<Vec<Hold>, StoreError>;
    /// Places a hold.
    fn add_hold(&mut self, target: &HoldTarget, reason: &str) -> Result<Hold, StoreError>;
    /// Lifts hold `id`; `false` when there is none.
    fn remove_hold(&mut self, id: u64) -> Result<bool, StoreError>;
}

/// Random bytes for a new index key.
pub(crate) fn new_index_key() -> [u8; 32] {
    use rand_core::RngCore;
    let mut key = [0; 32];
    rand_core::OsRng.fill_bytes(&mut key);
    key
}

/// The key-store spelling of a tenant: `-` for none, `t:<name>` otherwise (so that no
/// tenant name collides with "no tenant").
pub(crate) fn tenant_column(tenant: Option<&str>) -> String {
    match tenant {
        None => "-".to_string(),
        Some(t) => format!("t:{t}"),
    }
}

/// Reads [`tenant_column`]'s spelling back.
pub(crate) fn tenant_from_column(text: &str) -> Result<Option<String>, StoreError> {
    match (text, text.strip_prefix("t:")) {
        ("-", _) => Ok(None),
        (_, Some(name)) => Ok(Some(name.to_string())),
        _ => Err(StoreError::Invalid(format!(
            "key store: unreadable tenant `{text}`"
        ))),
    }
}

/// A key store with no keys, for reading a ledger whose key store does not exist (yet):
/// every sealed content then reads as erased, which `verify` reports.
pub struct NoKeys;

impl KeyStore for NoKeys {
    fn subject_hash(&self, subject: &str) -> SubjectHash {
        SubjectHash::of(&[0; 32], subject)
    }
    fn keys_for(&mut self, _: &[KeyScope]) -> Result<Vec<(KeyId, DataKey)>, StoreError> {
        Err(StoreError::Invalid(
            "the ledger has no key store: it is open for reading only".into(),
        ))
    }
    fn key(&self, _: &KeyId) -> Result<Option<DataKey>, StoreError> {
        Ok(None)
    }
    fn find(&self, _: Option<&str>, _: Option<&SubjectHash>) -> Result<Vec<KeyInfo>, StoreError> {
        Ok(Vec::new())
    }
    fn find_by_id(&self, _: &KeyId) -> Result<Option<KeyInfo>, StoreError> {
        Ok(None)
    }
    fn existing(&self, _: &[KeyId]) -> Result<Vec<KeyId>, StoreError> {
        Ok(Vec::new())
    }
    fn destroy(&mut self, _: &[KeyId]) -> Result<(), StoreError> {
        Ok(())
    }
    fn holds(&self) -> Result<Vec<Hold>, StoreError> {
        Ok(Vec::new())
    }
    fn add_hold(&mut self, _: &HoldTarget, _: &str) -> Result<Hold, StoreError> {
        Err(StoreError::Invalid("the ledger has no key store".into()))
    }
    fn remove_hold(&mut self, _: u64) -> Result<bool, StoreError> {
        Ok(false)
    }
}
