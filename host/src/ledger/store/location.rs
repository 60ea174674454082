//! Where a ledger lives: a SQLite file or a PostgreSQL database, and where its signing and
//! verifier keys are. Every front door accepts the same spelling: a path, or a
//! `postgres://` URL.

use std::fmt;
use std::path::{Path, PathBuf};

use super::postgres::{Migration, PgStore};
use super::sqlite::SqliteStore;
use super::unseal::Unsealer;
use super::{StoreError, StoreReader, StoreWriter};
use crate::ledger::keys::postgres::PgKeys;
use crate::ledger::keys::sqlite::SqliteKeys;
use crate::ledger::keys::{KeyStore, NoKeys};

/// The store that holds a ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file, the embedded default.
    Sqlite(PathBuf),
    /// A PostgreSQL database, by connection URL (`postgres://user@host:port/database`).
    Postgres(String),
}

/// A ledger's address: its store, its keys and, optionally, a read-only replica for reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    backend: Backend,
    signing_key: Option<PathBuf>,
    signing_key_command: Option<String>,
    verifier_key: Option<PathBuf>,
    read_replica: Option<String>,
    key_store: Option<PathBuf>,
}

impl Location {
    /// A path, or a `postgres://` / `postgresql://` URL.
    pub fn parse(text: &str) -> Self {
        let backend = match text.starts_with("postgres://") || text.starts_with("postgresql://") {
            true => Backend::Postgres(text.to_string()),
            false => Backend::Sqlite(PathBuf::from(text)),
        };
        Self {
            backend,
            signing_key: None,
            signing_key_command: None,
            verifier_key: None,
            read_replica: None,
            key_store: None,
        }
    }

    /// The store.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The SQLite file, when the ledger is one.
    pub fn file(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite(path) => Some(path),
            Backend::Postgres(_) => None,
        }
    }

    /// Uses this signing key instead of the default (`<file>.key` for a SQLite ledger; a
    /// PostgreSQL ledger has no default).
    pub fn with_signing_key(mut self, path: Option<PathBuf>) -> Self {
        if path.is_some() {
            self.signing_key = path;
        }
        self
    }

    /// Reads the signing key from this shell command's standard output (a secret manager,
    /// for example) instead of a file; the verifier key must then be named.
    pub fn with_signing_key_command(mut self, command: Option<String>) -> Self {
        if command.is_some() {
            self.signing_key_command = command;
        }
        self
    }

    /// The command that prints the signing key, when one is configured.
    pub fn signing_key_command(&self) -> Option<&str> {
        self.signing_key_command.as_deref()
    }

    /// Uses this verifier key instead of the default (the signing key's path with `.pub`
    /// for `.key`).
    pub fn with_verifier_key(mut self, path: Option<PathBuf>) -> Self {
        if path.is_some() {
            self.verifier_key = path;
        }
        self
    }

    /// Serves reads (queries, proofs, verify) from this PostgreSQL URL, a read-only replica
    /// of the ledger's database.
    pub fn with_read_replica(mut self, url: Option<String>) -> Self {
        if url.is_some() {
            self.read_replica = url;
        }
        self
    }

    /// Keeps a SQLite ledger's data keys in this file instead of the default
    /// (`<file>.keys`); a PostgreSQL ledger keeps them in its database's `vellum_keys` schema.
    pub fn with_key_store(mut self, path: Option<PathBuf>) -> Self {
        if path.is_some() {
            self.key_store = path;
        }
        self
    }

    /// The key store file of a SQLite ledger.
    pub fn key_store_file(&self) -> Option<PathBuf> {
        match (&self.key_store, &self.backend) {
            (Some(path), _) => Some(path.clone()),
            (None, Backend::Sqlite(file)) => Some(with_suffix(file, ".keys")),
            (None, Backend::Postgres(_)) => None,
        }
    }

    /// Opens the key store, creating it when `create` is set and it does not exist.
    pub fn open_keys(&self, create: bool) -> Result<Box<dyn KeyStore>, StoreError> {
        Ok(match (&self.backend, self.key_store_file()) {
            (Backend::Sqlite(_), Some(path)) => Box::new(SqliteKeys::open(&path, create)?),
            (Backend::Postgres(url), _) => Box::new(PgKeys::open(url, create)?),
            (Backend::Sqlite(_), None) => unreachable!("a SQLite ledger always has a key file"),
        })
    }

    /// The key store for reading: an empty one when it does not exist (every sealed
    /// content then reads as erased, which `verify` reports).
    pub fn keys_for_reading(&self) -> Result<Box<dyn KeyStore>, StoreError> {
        match self.open_keys(false) {
            Ok(keys) => Ok(keys),
            Err(StoreError::Invalid(e))
                if e.contains("does not exist") || e.contains("has no key store") =>
            {
                Ok(Box::new(NoKeys))
            }
            Err(e) => Err(e),
        }
    }

    /// Resolves relative file paths (the ledger's and the keys') against `base`.
    pub fn relative_to(mut self, base: &Path) -> Self {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Backend::Sqlite(path) = &mut self.backend {
            join(path);
        }
        self.signing_key.as_mut().map(join);
        self.verifier_key.as_mut().map(join);
        self.key_store.as_mut().map(join);
        self
    }

    /// The signing key file.
    pub fn signing_key(&self) -> Result<PathBuf, StoreError> {
        match (&self.signing_key, &self.backend) {
            (Some(path), _) => Ok(path.clone()),
            (None, Backend::Sqlite(file)) => Ok(with_suffix(file, ".key")),
            (None, Backend::Postgres(_)) => Err(StoreError::Invalid(format!(
                "{self}: a PostgreSQL ledger has no key file beside it; name its signing key \
                 (`--signing-key FILE`, or `signing-key` in the `[ledger]` table)"
            ))),
        }
    }

    /// The verifier (public) key file.
    pub fn verifier_key(&self) -> Result<PathBuf, StoreError> {
        if let Some(path) = &self.verifier_key {
            return Ok(path.clone());
        }
        let derived = match self.signing_key_command {
            Some(_) => Err(()),
            None => self.signing_key().map_err(drop),
        };
        let signing = derived.map_err(|()| {
            StoreError::Invalid(format!(
                "{self}: name its verifier key (`--verifier-key FILE`, or `verifier-key` in \
                 the `[ledger]` table) or its signing key"
            ))
        })?;
        let text = signing.as_os_str().to_string_lossy();
        Ok(match text.strip_suffix(".key") {
            Some(stem) => PathBuf::from(format!("{stem}.pub")),
            None => with_suffix(&signing, ".pub"),
        })
    }

    /// Creates the store of a new, empty ledger named `origin`. A PostgreSQL database
    /// gets the versioned migrations it lacks: an older ledger is upgraded instead, an up to
    /// date one refused.
    pub fn create(&self, origin: &str) -> Result<Migration, StoreError> {
        let migration = match &self.backend {
            Backend::Sqlite(path) => {
                SqliteStore::create(path, origin).map(|_| Migration::Created)?
            }
            Backend::Postgres(url) => PgStore::connect(url)?.migrate(origin)?,
        };
        if let Err(e) = self.open_keys(true) {
            if let Some(file) = self.file() {
                let _ = std::fs::remove_file(file);
            }
            return Err(e);
        }
        Ok(migration)
    }

    /// Opens the store for appending (and reading).
    pub fn open_writer(&self) -> Result<Box<dyn StoreWriter>, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite(path) => Box::new(SqliteStore::open(path)?),
            Backend::Postgres(url) => Box::new(PgStore::open(url)?),
        })
    }

    /// Opens the store for reading, from the read replica when one is set; entries' content
    /// is opened with the key store's keys.
    pub fn open_reader(&self) -> Result<Box<dyn StoreReader>, StoreError> {
        self.open_reader_with(Unsealer::new)
    }

    /// Like [`Location::open_reader`], for `verify`: content that does not open is left
    /// sealed for `verify` to report instead of failing the read.
    pub fn open_reader_tolerant(&self) -> Result<Box<dyn StoreReader>, StoreError> {
        self.open_reader_with(Unsealer::tolerant)
    }

    /// Opens the store (first, so that a wrong address is named as the ledger's), then its
    /// key store.
    fn open_reader_with(
        &self,
        unsealer: fn(Box<dyn KeyStore>) -> Unsealer,
    ) -> Result<Box<dyn StoreReader>, StoreError> {
        Ok(match (&self.backend, &self.read_replica) {
            (Backend::Sqlite(path), _) => {
                let store = SqliteStore::open(path)?;
                Box::new(store.with_unsealer(unsealer(self.keys_for_reading()?)))
            }
            (Backend::Postgres(_), Some(replica)) => {
                let store = PgStore::open_replica(replica)?;
                Box::new(store.with_unsealer(unsealer(self.keys_for_reading()?)))
            }
            (Backend::Postgres(url), None) => {
                let store = PgStore::open(url)?;
                Box::new(store.with_unsealer(unsealer(self.keys_for_reading()?)))
            }
        })
    }
}

/// A path or a URL; a URL's password is never shown.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backend {
            Backend::Sqlite(path) => write!(f, "{}", path.display()),
            Backend::Postgres(url) => f.write_str(&without_password(url)),
        }
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Self {
        Self::parse(&path.to_string_lossy())
    }
}

impl From<&PathBuf> for Location {
    fn from(path: &PathBuf) -> Self {
        Self::from(path.as_path())
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Self {
        Self::from(path.as_path())
    }
}

impl From<&Location> for Location {
    fn from(location: &Location) -> Self {
        location.clone()
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut text = path.as_os_str().to_owned();
    text.push(suffix);
    PathBuf::from(text)
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub(super) fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_urls_pick_the_backend_and_default_keys() {
        let file = Location::parse("/srv/audit.db");
        assert_eq!(file.file(), Some(Path::new("/srv/audit.db")));
        assert_eq!(file.signing_key().unwrap(), Path::new("/srv/audit.db.key"));
        assert_eq!(file.verifier_key().unwrap(), Path::new("/srv/audit.db.pub"));

        let pg = Location::parse("postgresql://vellum:hunter2@db:5432/audit");
        assert!(matches!(pg.backend(), Backend::Postgres(_)));
        let err = pg.signing_key().unwrap_err().to_string();
        assert!(
            err.contains("--signing-key") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(pg.verifier_key().is_err());
        let by_command = pg
            .clone()
            .with_signing_key_command(Some("vault read".into()));
        assert!(
            by_command.verifier_key().is_err(),
            "a command gives no file to derive from"
        );
        let pg = pg.with_signing_key(Some("/keys/audit.key".into()));
        assert_eq!(pg.verifier_key().unwrap(), Path::new("/keys/audit.pub"));
        assert_eq!(pg.to_string(), "postgresql://vellum:***@db:5432/audit");
    }

    #[test]
    fn relative_paths_resolve_against_a_base() {
        let location = Location::parse("audit.db")
            .with_signing_key(Some("keys/a.key".into()))
            .relative_to(Path::new("/etc/vellum"));
        assert_eq!(location.file(), Some(Path::new("/etc/vellum/audit.db")));
        assert_eq!(
            location.verifier_key().unwrap(),
            Path::new("/etc/vellum/keys/a.pub")
        );
        let url = Location::parse("postgres://h/db").relative_to(Path::new("/x"));
        assert_eq!(url.to_string(), "postgres://h/db");
    }
}
