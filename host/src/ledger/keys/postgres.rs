//! The key store of a PostgreSQL ledger: tables in a schema of their own (`vellum_keys`),
//! so that the ledger's tables can be dumped, replicated or granted without the keys. A
//! destruction deletes the rows and runs `VACUUM FULL` on the key table, which rewrites it
//! into a new file without the dead rows. WAL segments and base backups made before still
//! hold the key until they expire: keep their retention short (see `docs/erasure.md`).

use std::sync::Mutex;

use jiff::Timestamp;
use postgres::Client;

use super::{
    Hold, HoldTarget, KeyInfo, KeyScope, KeyStore, SubjectHash, new_index_key, tenant_column,
};
use crate::ledger::content::{DataKey, KeyId};
use crate::ledger::store::StoreError;
use crate::ledger::store::postgres::{connect_one, db};

const SCHEMA: &str = "
CREATE SCHEMA IF NOT EXISTS vellum_keys;
CREATE TABLE IF NOT EXISTS vellum_keys.meta (name TEXT PRIMARY KEY, value BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS vellum_keys.data_keys (
    id        BYTEA  PRIMARY KEY,
    tenant    TEXT   NOT NULL,
    subject   BYTEA  NOT NULL,
    key       BYTEA  NOT NULL,
    created_s BIGINT NOT NULL,
    UNIQUE (tenant, subject)
);
CREATE TABLE IF NOT EXISTS vellum_keys.holds (
    id      BIGSERIAL PRIMARY KEY,
    scope   TEXT NOT NULL,
    value   TEXT NOT NULL,
    reason  TEXT NOT NULL,
    created TEXT NOT NULL
);
";

/// The key store in a PostgreSQL database.
pub struct PgKeys {
    client: Mutex<Client>,
    /// The database's URL, to reconnect after a lost connection.
    url: String,
    shown: String,
    index_key: [u8; 32],
}

impl PgKeys {
    /// Connects, creating the schema and the index key when `create` is set and they are
    /// missing.
    pub fn open(url: &str, create: bool) -> Result<Self, StoreError> {
        let (mut client, shown) = connect_one(url)?;
        let exists: bool = client
            .query_one(
                "SELECT to_regclass('vellum_keys.data_keys') IS NOT NULL",
                &[],
            )
            .map_err(|e| db(&shown, e))?
            .get(0);
        if !exists && !create {
            return Err(StoreError::Invalid(format!(
                "{shown} has no key store (schema vellum_keys)"
            )));
        }
        if !exists {
            let key = new_index_key().to_vec();
            let mut tx = client.transaction().map_err(|e| db(&shown, e))?;
            tx.batch_execute(SCHEMA).map_err(|e| db(&shown, e))?;
            tx.execute(
                "INSERT INTO vellum_keys.meta (name, value) VALUES ('index_key', $1) \
                 ON CONFLICT (name) DO NOTHING",
                &[&key],
            )
            .map_err(|e| db(&shown, e))?;
            tx.commit().map_err(|e| db(&shown, e))?;
        }
        let index_key: Vec<u8> = client
            .query_one(
                "SELECT value FROM vellum_keys.meta WHERE name = 'index_key'",
                &[],
            )
            .map_err(|e| db(&shown, e))?
            .get(0);
        let index_key = index_key.try_into().map_err(|_| {
            StoreError::Invalid(format!("{shown}: the key store's index key is damaged"))
        })?;
        Ok(Self {
            client: Mutex::new(client),
            url: url.to_string(),
            shown,
            index_key,
        })
    }

    /// Runs `f` on the connection; a connection lost (a server restart) is replaced first,
    /// so one failed call does not fail every later one.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut client = self
            .client
            .lock()
            .map_err(|_| StoreError::Io("key store connection lock poisoned".into()))?;
        if client.is_closed() {
            *client = connect_one(&self.url)?.0;
        }
        f(&mut client).map_err(|e| db(&self.shown, e))
    }

    fn parse_key(&self, id: &[u8], key: &[u8]) -> Result<(KeyId, DataKey), StoreError> {
        let bad = || StoreError::Invalid(format!("{}: a damaged data key", self.shown));
        Ok((
            KeyId::from_slice(id).ok_or_else(bad)?,
            DataKey::from_slice(key).ok_or_else(bad)?,
        ))
    }

    fn lookup(&self, scope: &KeyScope) -> Result<Option<(KeyId, DataKey)>, StoreError> {
        let subject = scope.subject.map(|s| s.0.to_vec()).unwrap_or_default();
        let tenant = tenant_column(scope.tenant.as_deref());
        let row = self.with(|c| {
            c.query_opt(
                "SELECT id, key FROM vellum_keys.data_keys WHERE tenant = $1 AND subject = $2",
                &[&tenant, &subject],
            )
        })?;
        row.map(|r| self.parse_key(r.get(0), r.get(1))).transpose()
    }
}

impl KeyStore for PgKeys {
    fn subject_hash(&self, subject: &str) -> SubjectHash {
        SubjectHash::of(&self.index_key, subject)
    }

    fn keys_for(&mut self, scopes: &[KeyScope]) -> Result<Vec<(KeyId, DataKey)>, StoreError> {
        let mut found = Vec::with_capacity(scopes.len());
        for scope in scopes {
            found.push(self.lookup(scope)?);
        }
        if found.iter().all(Option::is_some) {
            return Ok(found.into_iter().flatten().collect());
        }
        self.with(|c| {
            let mut tx = c.transaction()?;
            for (scope, key) in scopes.iter().zip(&found) {
                if key.is_none() {
                    let subject = scope.subject.map(|s| s.0.to_vec()).unwrap_or_default();
                    tx.execute(
                        "INSERT INTO vellum_keys.data_keys (id, tenant, subject, key, created_s) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, subject) DO NOTHING",
                        &[
                            &KeyId::random().0.to_vec(),
                            &tenant_column(scope.tenant.as_deref()),
                            &subject,
                            &DataKey::random().as_bytes().to_vec(),
                            &Timestamp::now().as_second(),
                        ],
                    )?;
                }
            }
            tx.commit()
        })?;
        scopes
            .iter()
            .map(|scope| {
                self.lookup(scope)?.ok_or_else(|| {
                    StoreError::Io(format!("{}: a new key was not stored", self.shown))
                })
            })
            .collect()
    }

    fn key(&self, id: &KeyId) -> Result<Option<DataKey>, StoreError> {
        let row = self.with(|c| {
            c.query_opt(
                "SELECT key FROM vellum_keys.data_keys WHERE id = $1",
                &[&id.0.to_vec()],
            )
        })?;
        row.map(|r| self.parse_key(&id.0, r.get(0)).map(|(_, k)| k))
            .transpose()
    }

    fn find(
        &self,
        tenant: Option<&str>,
        subject: Option<&SubjectHash>,
    ) -> Result<Vec<KeyInfo>, StoreError> {
        if tenant.is_none() && subject.is_none() {
            return Ok(Vec::new());
        }
        let tenant = tenant.map(|t| tenant_column(Some(t)));
        let subject = subject.map(|s| s.0.to_vec());
        let rows = self.with(|c| {
            c.query(
                "SELECT id, tenant, subject FROM vellum_keys.data_keys \
                 WHERE ($1::TEXT IS NULL OR tenant = $1) AND ($2::BYTEA IS NULL OR subject = $2) \
                 ORDER BY id",
                &[&tenant, &subject],
            )
        })?;
        rows.iter()
            .map(|r| KeyInfo::from_columns(r.get(0), r.get(1), r.get(2), &self.shown))
            .collect()
    }

    fn find_by_id(&self, id: &KeyId) -> Result<Option<KeyInfo>, StoreError> {
        let row = self.with(|c| {
            c.query_opt(
                "SELECT tenant, subject FROM vellum_keys.data_keys WHERE id = $1",
                &[&id.0.to_vec()],
            )
        })?;
        row.map(|r| KeyInfo::from_columns(&id.0, r.get(0), r.get(1), &self.shown))
            .transpose()
    }

    fn existing(&self, ids: &[KeyId]) -> Result<Vec<KeyId>, StoreError> {
        let wanted: Vec<Vec<u8>> = ids.iter().map(|id| id.0.to_vec()).collect();
        let rows = self.with(|c| {
            c.query(
                "SELECT id FROM vellum_keys.data_keys WHERE id = ANY($1)",
                &[&wanted],
            )
        })?;
        Ok(rows
            .iter()
            .filter_map(|r| KeyId::from_slice(r.get(0)))
            .collect())
    }

    fn destroy(&mut self, ids: &[KeyId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let wanted: Vec<Vec<u8>> = ids.iter().map(|id| id.0.to_vec()).collect();
        self.with(|c| {
            c.execute(
                "DELETE FROM vellum_keys.data_keys WHERE id = ANY($1)",
                &[&wanted],
            )?;
            // Rewrites the table without the dead rows (plain VACUUM only marks them free).
            c.batch_execute("VACUUM FULL vellum_keys.data_keys")
        })
    }

    fn holds(&self) -> Result<Vec<Hold>, StoreError> {
        let rows = self.with(|c| {
            c.query(
                "SELECT id, scope, value, reason, created FROM vellum_keys.holds ORDER BY id",
                &[],
            )
        })?;
        rows.iter()
            .map(|r| {
                Ok(Hold {
                    id: r.get::<_, i64>(0) as u64,
                    target: HoldTarget::from_parts(r.get(1), r.get(2))?,
                    reason: r.get(3),
                    created_at: r.get(4),
                })
            })
            .collect()
    }

    fn add_hold(&mut self, target: &HoldTarget, reason: &str) -> Result<Hold, StoreError> {
        let (scope, value) = target.parts();
        let created_at = Timestamp::now().to_string();
        let id: i64 = self
            .with(|c| {
                c.query_one(
                    "INSERT INTO vellum_keys.holds (scope, value, reason, created) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&scope, &value, &reason, &created_at],
                )
            })?
            .get(0);
        Ok(Hold {
            id: id as u64,
            target: target.clone(),
            reason: reason.to_string(),
            created_at,
        })
    }

    fn remove_hold(&mut self, id: u64) -> Result<bool, StoreError> {
        let id = id as i64;
        self.with(|c| c.execute("DELETE FROM vellum_keys.holds WHERE id = $1", &[&id]))
            .map(|n| n > 0)
    }
}
