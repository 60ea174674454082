//! The storage backends the ledger suite runs on, behind one factory: a fresh ledger per
//! test, an insider's SQL shell on it, and its verification report.
//!
//! PostgreSQL comes from `VELLUM_TEST_POSTGRES_URL` (a server URL without a database), or
//! else from `tests/postgres/server.sh`, which starts a throwaway server in `target/` (and
//! installs Debian's package when missing) and stops it once the test run has ended. When
//! no server can be had the PostgreSQL half of the suite is skipped with a message, unless
//! `VELLUM_REQUIRE_POSTGRES=1` (CI) makes that a failure.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use vellum::ledger::store::{Location, StoreReader};
use vellum::ledger::verify::VerifyReport;
use vellum::{Ledger, LedgerOptions};

/// Runs each named test function (taking a [`Backend`]) once per backend, as
/// `sqlite::NAME` and `postgres::NAME`.
#[allow(unused_macros)]
macro_rules! per_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $test() { super::$test(crate::common::backend::Backend::Sqlite) })*
        }
        mod postgres {
            $(#[test] fn $test() {
                if let Some(backend) = crate::common::backend::Backend::postgres() {
                    super::$test(backend)
                }
            })*
        }
    };
}

/// A storage backend under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A new database on this PostgreSQL server (URL without a database).
    Postgres(String),
}

impl Backend {
    /// The PostgreSQL backend, or `None` (with a message) when no server is available and
    /// none is required.
    pub fn postgres() -> Option<Self> {
        static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
        let server = SERVER.get_or_init(|| {
            if let Ok(url) = std::env::var("VELLUM_TEST_POSTGRES_URL") {
                return Ok(url.trim_end_matches('/').to_string());
            }
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/postgres/server.sh");
            let watch = std::os::unix::process::parent_id().to_string();
            let out = std::process::Command::new("bash")
                .args([script, "ensure", &watch])
                .stderr(std::process::Stdio::inherit())
                .output()
                .map_err(|e| format!("cannot run {script}: {e}"))?;
            match out.status.success() {
                true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
                false => Err(format!("{script} ensure failed ({})", out.status)),
            }
        });
        match server {
            Ok(url) => Some(Self::Postgres(url.clone())),
            Err(e) if std::env::var("VELLUM_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
                panic!("PostgreSQL is required (VELLUM_REQUIRE_POSTGRES=1) but: {e}")
            }
            Err(e) => {
                eprintln!("skipping the PostgreSQL half of this test: {e}");
                None
            }
        }
    }
}

/// A fresh, empty ledger on one backend, with its keys in a temporary directory.
pub struct TestLedger {
    /// Where the ledger and its keys are.
    pub location: Location,
    /// Holds the keys (and the SQLite file).
    pub dir: tempfile::TempDir,
    /// The backend.
    pub backend: Backend,
}

impl TestLedger {
    /// Creates a ledger named `vellum/test`.
    pub fn new(backend: &Backend) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = match backend {
            Backend::Sqlite => Location::from(dir.path().join("audit.db")),
            // Plain TCP: the test server's self-signed certificate is trusted only where a
            // test says so (see `tests/all/writers.rs`).
            Backend::Postgres(server) => Location::parse(&format!(
                "{server}/{}?sslmode=disable",
                new_database(server)
            ))
            .with_signing_key(Some(dir.path().join("audit.key"))),
        };
        Ledger::init(&location, "vellum/test").expect("init");
        Self {
            location,
            dir,
            backend: backend.clone(),
        }
    }

    /// Opens it for appending, with default options.
    pub fn open(&self) -> Ledger {
        self.open_with(LedgerOptions::default())
    }

    /// Opens it for appending.
    pub fn open_with(&self, options: LedgerOptions) -> Ledger {
        Ledger::open(&self.location, options).expect("ledger opens")
    }

    /// A read connection.
    pub fn reader(&self) -> Box<dyn StoreReader> {
        self.location.open_reader().expect("open reader")
    }

    /// Runs SQL as an insider with a SQL shell would: with the append-only triggers out of
    /// the way first.
    pub fn insider(&self, sql: &str) {
        match &self.backend {
            Backend::Sqlite => {
                let path = self.location.file().expect("a file");
                let conn = rusqlite::Connection::open(path).expect("open file");
                let triggers: Vec<String> = conn
                    .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                    .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                    .expect("list triggers");
                for t in triggers {
                    conn.execute_batch(&format!("DROP TRIGGER {t}"))
                        .expect("drop trigger");
                }
                conn.execute_batch(sql).expect("insider SQL");
            }
            Backend::Postgres(_) => {
                let mut client = self.client();
                // Replica mode skips ordinary triggers for this session.
                client
                    .batch_execute(&format!("SET session_replication_role = replica; {sql}"))
                    .expect("insider SQL");
            }
        }
    }

    /// Runs SQL as an ordinary client would (the triggers apply); returns the error text.
    pub fn try_sql(&self, sql: &str) -> Result<(), String> {
        match &self.backend {
            Backend::Sqlite => {
                let conn = rusqlite::Connection::open(self.location.file().expect("a file"))
                    .expect("open file");
                conn.execute_batch(sql).map_err(|e| e.to_string())
            }
            Backend::Postgres(_) => self.client().batch_execute(sql).map_err(|e| {
                e.as_db_error()
                    .map_or(e.to_string(), |db| db.message().to_string())
            }),
        }
    }

    /// A byte string as an SQL literal of this backend.
    pub fn bytes(&self, bytes: &[u8]) -> String {
        match self.backend {
            Backend::Sqlite => format!("X'{}'", hex(bytes)),
            Backend::Postgres(_) => format!("'\\x{}'::BYTEA", hex(bytes)),
        }
    }

    /// A full `verify` with the ledger's own verifier key.
    pub fn report(&self) -> VerifyReport {
        let vkey = vellum::ledger::read_vkey(&self.location).expect("verifier key");
        let reader = self.location.open_reader_tolerant().expect("open reader");
        vellum::ledger::verify::verify(reader.as_ref(), &vkey, None, &mut |_, _| {})
            .expect("verify runs")
    }

    fn client(&self) -> postgres::Client {
        let vellum::ledger::store::Backend::Postgres(url) = self.location.backend() else {
            panic!("not a PostgreSQL ledger");
        };
        postgres::Client::connect(url, postgres::NoTls).expect("connect")
    }
}

/// Creates a new, empty database on `server`; returns its name.
fn new_database(server: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "vellum_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin =
        postgres::Client::connect(&format!("{server}/postgres"), postgres::NoTls).expect("connect");
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        admin.batch_execute(&sql).expect("create database");
    }
    name
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
