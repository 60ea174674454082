//! The key store as a SQLite file of its own, beside the ledger by default
//! (`<ledger>.keys`). `secure_delete` is on, so a deleted key's bytes are overwritten in the
//! database pages, and each destruction then VACUUMs the file, so no page or free page
//! still holds the key. The file uses a rollback journal (deleted at each commit), not a
//! WAL: a WAL would keep old frames until a checkpoint, and readers (`verify` on a full
//! disk) would need to create its shared-memory file.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{
    Hold, HoldTarget, KeyInfo, KeyScope, KeyStore, SubjectHash, new_index_key, tenant_column,
};
use crate::ledger::content::{DataKey, KeyId};
use crate::ledger::store::StoreError;

/// `PRAGMA application_id` of a Vellum key store ("VKEY").
pub const APPLICATION_ID: i32 = 0x564B_4559;
/// The key store's schema version.
const SCHEMA_VERSION: i32 = 1;

const SCHEMA: &str = "
CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;
CREATE TABLE data_keys (
    id        BLOB    PRIMARY KEY,
    tenant    TEXT    NOT NULL,
    subject   BLOB    NOT NULL,
    key       BLOB    NOT NULL,
    created_s INTEGER NOT NULL,
    UNIQUE (tenant, subject)
) STRICT;
CREATE TABLE holds (
    id        INTEGER PRIMARY KEY,
    scope     TEXT    NOT NULL,
    value     TEXT    NOT NULL,
    reason    TEXT    NOT NULL,
    created   TEXT    NOT NULL
) STRICT;
";

/// A key store file.
pub struct SqliteKeys {
    conn: Connection,
    path: PathBuf,
    index_key: [u8; 32],
}

impl SqliteKeys {
    /// Opens the key store at `path`, creating it (mode 0600) when `create` is set and it
    /// does not exist.
    pub fn open(path: &Path, create: bool) -> Result<Self, StoreError> {
        let fresh = !path.exists();
        if fresh && !create {
            return Err(StoreError::Invalid(format!(
                "key store {} does not exist",
                path.display()
            )));
        }
        if fresh {
            crate::ledger::store::create_private_file(path)
                .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", path.display())))?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| err(path, e))?;
        conn.execute_batch(
            "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = DELETE; \
             PRAGMA synchronous = FULL; PRAGMA secure_delete = ON;",
        )
        .map_err(|e| err(path, e))?;
        if fresh {
            let key = new_index_key();
            let made = conn
                .execute_batch(&format!(
                    "BEGIN; {SCHEMA} PRAGMA application_id = {APPLICATION_ID}; \
                     PRAGMA user_version = {SCHEMA_VERSION};"
                ))
                .and_then(|()| {
                    conn.execute(
                        "INSERT INTO meta (name, value) VALUES ('index_key', ?1)",
                        [&key[..]],
                    )
                })
                .and_then(|_| conn.execute_batch("COMMIT"));
            if let Err(e) = made {
                drop(conn);
                let _ = std::fs::remove_file(path);
                return Err(err(path, e));
            }
        }
        let (app, version): (i32, i32) = conn
            .query_row(
                "SELECT application_id, user_version FROM pragma_application_id, pragma_user_version",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| err(path, e))?;
        if app != APPLICATION_ID || version != SCHEMA_VERSION {
            return Err(StoreError::Invalid(format!(
                "{} is not a Vellum key store of version {SCHEMA_VERSION}",
                path.display()
            )));
        }
        let index_key: Vec<u8> = conn
            .query_row("SELECT value FROM meta WHERE name = 'index_key'", [], |r| {
                r.get(0)
            })
            .map_err(|e| err(path, e))?;
        let index_key = index_key.try_into().map_err(|_| {
            StoreError::Invalid(format!("{}: the index key is damaged", path.display()))
        })?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            index_key,
        })
    }

    fn db(&self, e: rusqlite::Error) -> StoreError {
        err(&self.path, e)
    }

    fn lookup(&self, scope: &KeyScope) -> Result<Option<(KeyId, DataKey)>, StoreError> {
        let subject = scope.subject.map(|s| s.0.to_vec()).unwrap_or_default();
        let row: Option<(Vec<u8>, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT id, key FROM data_keys WHERE tenant = ?1 AND subject = ?2")
            .and_then(|mut s| {
                s.query_row(
                    params![tenant_column(scope.tenant.as_deref()), subject],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })
            .map_err(|e| self.db(e))?;
        row.map(|(id, key)| self.parse_key(&id, &key)).transpose()
    }

    fn parse_key(&self, id: &[u8], key: &[u8]) -> Result<(KeyId, DataKey), StoreError> {
        let bad = || StoreError::Invalid(format!("{}: a damaged data key", self.path.display()));
        Ok((
            KeyId::from_slice(id).ok_or_else(bad)?,
            DataKey::from_slice(key).ok_or_else(bad)?,
        ))
    }
}

impl KeyStore for SqliteKeys {
    fn subject_hash(&self, subject: &str) -> SubjectHash {
        SubjectHash::of(&self.index_key, subject)
    }

    fn keys_for(&mut self, scopes: &[KeyScope]) -> Result<Vec<(KeyId, DataKey)>, StoreError> {
        let mut found = Vec::with_capacity(scopes.len());
        let mut missing = false;
        for scope in scopes {
            let key = self.lookup(scope)?;
            missing |= key.is_none();
            found.push(key);
        }
        if !missing {
            return Ok(found.into_iter().flatten().collect());
        }
        let tx = self.conn.transaction().map_err(|e| err(&self.path, e))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO data_keys (id, tenant, subject, key, created_s) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(|e| err(&self.path, e))?;
            for (scope, key) in scopes.iter().zip(&found) {
                if key.is_none() {
                    let subject = scope.subject.map(|s| s.0.to_vec()).unwrap_or_default();
                    insert
                        .execute(params![
                            &KeyId::random().0[..],
                            tenant_column(scope.tenant.as_deref()),
                            subject,
                            DataKey::random().as_bytes(),
                            Timestamp::now().as_second(),
                        ])
                        .map_err(|e| err(&self.path, e))?;
                }
            }
        }
        tx.commit().map_err(|e| err(&self.path, e))?;
        scopes
            .iter()
            .map(|scope| {
                self.lookup(scope)?.ok_or_else(|| {
                    StoreError::Io(format!("{}: a new key was not stored", self.path.display()))
                })
            })
            .collect()
    }

    fn key(&self, id: &KeyId) -> Result<Option<DataKey>, StoreError> {
        let key: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT key FROM data_keys WHERE id = ?1")
            .and_then(|mut s| s.query_row([&id.0[..]], |r| r.get(0)).optional())
            .map_err(|e| self.db(e))?;
        key.map(|k| self.parse_key(&id.0, &k).map(|(_, k)| k))
            .transpose()
    }

    fn find(
        &self,
        tenant: Option<&str>,
        subject: Option<&SubjectHash>,
    ) -> Result<Vec<KeyInfo>, StoreError> {
        let tenant = tenant.map(|t| tenant_column(Some(t)));
        let subject = subject.map(|s| s.0.to_vec());
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, tenant, subject FROM data_keys \
                 WHERE (?1 IS NULL OR tenant = ?1) AND (?2 IS NULL OR subject = ?2) \
                 AND (?1 IS NOT NULL OR ?2 IS NOT NULL) ORDER BY id",
            )
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map(params![tenant, subject], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })
            .map_err(|e| self.db(e))?;
        let shown = self.path.display().to_string();
        rows.map(|row| {
            let (id, tenant, subject) = row.map_err(|e| self.db(e))?;
            KeyInfo::from_columns(&id, &tenant, &subject, &shown)
        })
        .collect()
    }

    fn find_by_id(&self, id: &KeyId) -> Result<Option<KeyInfo>, StoreError> {
        let row: Option<(String, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT tenant, subject FROM data_keys WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row([&id.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(|e| self.db(e))?;
        let shown = self.path.display().to_string();
        row.map(|(tenant, subject)| KeyInfo::from_columns(&id.0, &tenant, &subject, &shown))
            .transpose()
    }

    fn existing(&self, ids: &[KeyId]) -> Result<Vec<KeyId>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM data_keys WHERE id = ?1")
            .map_err(|e| self.db(e))?;
        let mut found = Vec::new();
        for id in ids {
            if stmt.exists([&id.0[..]]).map_err(|e| self.db(e))? {
                found.push(*id);
            }
        }
        Ok(found)
    }

    fn destroy(&mut self, ids: &[KeyId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction().map_err(|e| err(&self.path, e))?;
        {
            let mut delete = tx
                .prepare_cached("DELETE FROM data_keys WHERE id = ?1")
                .map_err(|e| err(&self.path, e))?;
            for id in ids {
                delete
                    .execute([&id.0[..]])
                    .map_err(|e| err(&self.path, e))?;
            }
        }
        tx.commit().map_err(|e| err(&self.path, e))?;
        // `secure_delete` zeroed the rows; VACUUM rewrites the file so that no free page or
        // moved cell keeps a copy either.
        self.conn.execute_batch("VACUUM;").map_err(|e| self.db(e))
    }

    fn holds(&self) -> Result<Vec<Hold>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, scope, value, reason, created FROM holds ORDER BY id")
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(|e| self.db(e))?;
        rows.map(|row| {
            let (id, scope, value, reason, created_at) = row.map_err(|e| self.db(e))?;
            Ok(Hold {
                id: id as u64,
                target: HoldTarget::from_parts(&scope, value)?,
                reason,
                created_at,
            })
        })
        .collect()
    }

    fn add_hold(&mut self, target: &HoldTarget, reason: &str) -> Result<Hold, StoreError> {
        let (scope, value) = target.parts();
        let created_at = Timestamp::now().to_string();
        self.conn
            .execute(
                "INSERT INTO holds (scope, value, reason, created) VALUES (?1, ?2, ?3, ?4)",
                params![scope, value, reason, created_at],
            )
            .map_err(|e| self.db(e))?;
        Ok(Hold {
            id: self.conn.last_insert_rowid() as u64,
            target: target.clone(),
            reason: reason.to_string(),
            created_at,
        })
    }

    fn remove_hold(&mut self, id: u64) -> Result<bool, StoreError> {
        self.conn
            .execute("DELETE FROM holds WHERE id = ?1", [id as i64])
            .map(|n| n > 0)
            .map_err(|e| self.db(e))
    }
}

fn err(path: &Path, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => {
            StoreError::Full(format!("key store {}: {e}", path.display()))
        }
        Some(rusqlite::ErrorCode::NotADatabase) => {
            StoreError::Invalid(format!("{} is not a Vellum key store: {e}", path.display()))
        }
        _ => StoreError::Io(format!("key store {}: {e}", path.display())),
    }
}
