//! The ledger suite, run on every storage backend (`sqlite::…` and `postgres::…`):
//! receipts, queries and cursors, drop markers, checkpoints and proofs, the append-only
//! store, concurrent appends from threads and from several writers, and what is not a
//! ledger; erasure, retention and legal hold (`erasure::…`).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use crate::common;
mod erasure;

use std::sync::Arc;

use common::backend::{Backend, TestLedger};
use common::{event, records};
use serde_json::json;
use vellum::ledger::entry::{Disposition, Receipt, Record};
use vellum::ledger::query::Query;
use vellum::ledger::store::sqlite::SqliteStore;
use vellum::{Ledger, LedgerError, LedgerOptions};

per_backend!(
    receipts_are_gapless_and_match_their_entries,
    queries_filter_and_page_with_a_cursor,
    drop_markers_are_entries_without_content,
    checkpoints_and_proofs_verify_without_the_database,
    automatic_checkpoints_follow_the_entry_count,
    opening_what_is_not_a_ledger_is_a_clear_error,
    the_store_refuses_updates_and_deletes,
    signing_key_is_private,
    eight_threads_appending_are_gapless,
    two_writers_on_one_ledger_interleave_without_gaps,
    a_signing_key_command_replaces_the_key_file,
    closing_a_ledger_leaves_no_unsigned_tail,
    signed_checkpoints_are_published_outside_the_ledger,
);

fn signed_checkpoints_are_published_outside_the_ledger(backend: Backend) {
    use vellum::ledger::publish::Publisher;
    let test = TestLedger::new(&backend);
    let outside = tempfile::tempdir().unwrap();
    let log = outside.path().join("sizes.log");
    let options = LedgerOptions {
        publishers: vec![
            Publisher::Directory(outside.path().to_path_buf()),
            Publisher::Command(format!(
                "cat > /dev/null; echo $VELLUM_CHECKPOINT_SIZE >> '{}'",
                log.display()
            )),
            Publisher::Command("exit 1".into()), // a failing publisher harms nothing
        ],
        ..LedgerOptions::default()
    };
    let ledger = test.open_with(options);
    ledger.append(records("a", 4)).unwrap();
    let first = ledger.checkpoint().unwrap();
    ledger.append(records("b", 3)).unwrap();
    drop(ledger); // the closing checkpoint, of size 7
    let vkey = vellum::ledger::read_vkey(&test.location).unwrap();
    let published = std::fs::read_to_string(outside.path().join("checkpoint.4")).unwrap();
    assert_eq!(published, first);
    let last = std::fs::read_to_string(outside.path().join("checkpoint.7")).unwrap();
    let last = vellum::ledger::checkpoint::verify_checkpoint(&last, &vkey).unwrap();
    assert_eq!(last.size, 7);
    assert_eq!(std::fs::read_to_string(log).unwrap(), "4\n7\n");
}

fn closing_a_ledger_leaves_no_unsigned_tail(backend: Backend) {
    let test = TestLedger::new(&backend);
    let ledger = test.open();
    ledger.append(records("a", 3)).unwrap();
    drop(ledger);
    let sizes = |ledger: &Ledger| -> Vec<u64> {
        ledger
            .checkpoints()
            .unwrap()
            .iter()
            .map(|(cp, _)| cp.size)
            .collect()
    };
    let reader = Ledger::open_read_only(&test.location).unwrap();
    assert_eq!(sizes(&reader), [3]);
    // Nothing new appended: closing again signs nothing more.
    drop(test.open());
    assert_eq!(sizes(&reader), [3]);
}

fn a_signing_key_command_replaces_the_key_file(backend: Backend) {
    let test = TestLedger::new(&backend);
    let key_file = test.location.signing_key().unwrap();
    let public = test.location.verifier_key().unwrap();
    let moved = test.dir.path().join("vault-secret");
    std::fs::rename(&key_file, &moved).unwrap();
    let by_command = |command: String| {
        test.location
            .clone()
            .with_signing_key_command(Some(command))
            .with_verifier_key(Some(public.clone()))
    };
    let ledger = Ledger::open(
        by_command(format!("cat '{}'", moved.display())),
        LedgerOptions::default(),
    )
    .unwrap();
    ledger.append(records("c", 3)).unwrap();
    let note = ledger.checkpoint().unwrap();
    let vkey = vellum::ledger::read_vkey(&test.location).unwrap();
    assert_eq!(
        vellum::ledger::checkpoint::verify_checkpoint(&note, &vkey)
            .unwrap()
            .size,
        3
    );
    drop(ledger);
    let error = Ledger::open(by_command("exit 3".into()), LedgerOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("signing-key command `exit 3` failed"),
        "{error}"
    );
    let error = Ledger::open(
        by_command("echo not-a-key".into()),
        LedgerOptions::default(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(error.contains("is not a signing key"), "{error}");
    assert!(test.report().ok());
}

/// A failed `init` leaves nothing behind that blocks the retry: the store is created before
/// the key files, and a new ledger file is removed again when the keys cannot be written.
#[test]
fn a_failed_init_can_be_retried() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("keys").join("audit.key");
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    let ledger = dir.path().join("missing-dir").join("audit.db");
    let location =
        vellum::ledger::store::Location::from(&ledger).with_signing_key(Some(key.clone()));
    assert!(Ledger::init(&location, "vellum/retry").is_err());
    assert!(
        !key.exists(),
        "no key is written for a ledger that was not created"
    );
    std::fs::create_dir(dir.path().join("missing-dir")).unwrap();
    Ledger::init(&location, "vellum/retry").expect("the retry succeeds");

    // The other way round: the ledger file can be created but the key cannot.
    let ledger = dir.path().join("second.db");
    let key = dir.path().join("no-such-dir").join("second.key");
    let location = vellum::ledger::store::Location::from(&ledger).with_signing_key(Some(key));
    assert!(Ledger::init(&location, "vellum/retry").is_err());
    assert!(!ledger.exists(), "the new ledger file is removed again");
}

/// Reads go to the read replica's URL (here: another ledger's database, so where each read
/// went is visible), appends to the primary.
#[test]
fn postgres_reads_come_from_the_read_replica() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let primary = TestLedger::new(&backend);
    let replica = TestLedger::new(&backend);
    replica.open().append(records("replica", 2)).unwrap();
    let location = primary
        .location
        .clone()
        .with_read_replica(Some(replica.location.to_string()));
    let ledger = Ledger::open(&location, LedgerOptions::default()).unwrap();
    let receipts = ledger.append(records("primary", 5)).unwrap();
    assert_eq!(receipts.last().unwrap().seq, 4);
    let page = ledger
        .query(&Query {
            limit: 10,
            ..Query::default()
        })
        .unwrap();
    let ids: Vec<_> = page.entries.iter().map(|e| e.event.id.as_str()).collect();
    assert_eq!(ids, ["replica-0", "replica-1"]);
    drop(ledger);
    assert_eq!(primary.reader().size().unwrap(), 5);
}

fn receipts_are_gapless_and_match_their_entries(backend: Backend) {
    let test = TestLedger::new(&backend);
    let ledger = test.open();
    let first = ledger.append(records("a", 3)).unwrap();
    let second = ledger.append(records("b", 2)).unwrap();
    let seqs: Vec<u64> = first.iter().chain(&second).map(|r| r.seq).collect();
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
    let page = ledger
        .query(&Query {
            limit: 10,
            ..Query::default()
        })
        .unwrap();
    for (receipt, entry) in first.iter().chain(&second).zip(&page.entries) {
        assert_eq!(receipt.event_id, entry.event.id);
        assert_eq!(receipt.seq, entry.seq);
        assert_eq!(receipt.recorded_at, entry.recorded_at);
    }
    assert_eq!(ledger.append(Vec::new()).unwrap(), Vec::new());
}

fn queries_filter_and_page_with_a_cursor(backend: Backend) {
    let test = TestLedger::new(&backend);
    let ledger = test.open();
    let mut batch = Vec::new();
    for i in 0..30u32 {
        let mut e = event(
            &format!("e{i}"),
            if i % 3 == 0 {
                "approval.granted"
            } else {
                "tool.call"
            },
            json!({}),
        );
        e.tenant = Some(if i % 2 == 0 { "acme" } else { "globex" }.to_string());
        e.correlation_id = Some(format!("run-{}", i / 10));
        e.chain_id = Some(format!("chain-{}", i % 5));
        e.actor = Some(format!("agent:{}", i % 4));
        e.occurred_at = jiff::Timestamp::from_second(1_700_000_000 + i64::from(i)).unwrap();
        batch.push(Record::unfiltered(e));
    }
    ledger.append(batch).unwrap();
    let ids = |q: Query| -> Vec<String> {
        ledger
            .query(&q)
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.event.id)
            .collect()
    };
    let all = |q: Query| Query { limit: 100, ..q };
    assert_eq!(
        ids(all(Query {
            tenant: Some("acme".into()),
            ..Query::default()
        }))
        .len(),
        15
    );
    assert_eq!(
        ids(all(Query {
            kinds: vec!["approval.granted".into()],
            tenant: Some("acme".into()),
            ..Query::default()
        })),
        vec!["e0", "e6", "e12", "e18", "e24"]
    );
    assert_eq!(
        ids(all(Query {
            correlation_id: Some("run-2".into()),
            ..Query::default()
        }))
        .len(),
        10
    );
    assert_eq!(
        ids(all(Query {
            chain_id: Some("chain-3".into()),
            ..Query::default()
        })),
        vec!["e3", "e8", "e13", "e18", "e23", "e28"]
    );
    assert_eq!(
        ids(all(Query {
            actor: Some("agent:1".into()),
            ..Query::default()
        }))
        .len(),
        8
    );
    let since = jiff::Timestamp::from_second(1_700_000_010).unwrap();
    let until = jiff::Timestamp::from_second(1_700_000_013).unwrap();
    assert_eq!(
        ids(all(Query {
            since: Some(since),
            until: Some(until),
            ..Query::default()
        })),
        vec!["e10", "e11", "e12"]
    );

    // Paging: 30 entries in pages of 7, each page after the previous cursor.
    let mut seen = Vec::new();
    let mut query = Query {
        limit: 7,
        ..Query::default()
    };
    loop {
        let page = ledger.query(&query).unwrap();
        seen.extend(page.entries.iter().map(|e| e.seq));
        match page.next_cursor {
            Some(cursor) => {
                query = Query {
                    limit: 7,
                    ..Query::default()
                }
                .with_cursor(&cursor)
                .unwrap()
            }
            None => break,
        }
    }
    assert_eq!(seen, (0..30).collect::<Vec<_>>());
    let bad = ledger
        .query(&Query {
            limit: 0,
            ..Query::default()
        })
        .unwrap_err();
    assert!(matches!(bad, LedgerError::BadRequest(_)));
}

fn drop_markers_are_entries_without_content(backend: Backend) {
    let test = TestLedger::new(&backend);
    let ledger = test.open();
    let marker = Record::dropped(
        event("d1", "memory.read", json!({"secret": "s3cr3t"})),
        "policy".into(),
        "noisy".into(),
        Vec::new(),
    );
    let receipt = ledger.append(vec![marker]).unwrap();
    assert_eq!(receipt[0].disposition, Disposition::Dropped);
    let entry = ledger
        .query(&Query {
            limit: 1,
            ..Query::default()
        })
        .unwrap()
        .entries
        .remove(0);
    assert_eq!(entry.event.payload.as_str(), "{}");
    assert_eq!(entry.dropped_by, Some(("policy".into(), "noisy".into())));
    assert_eq!(entry.event.tenant.as_deref(), Some("acme"));
    drop(ledger);
    assert!(test.report().ok());
}

fn checkpoints_and_proofs_verify_without_the_database(backend: Backend) {
    let test = TestLedger::new(&backend);
    let ledger = test.open();
    ledger.append(records("a", 5)).unwrap();
    let note5 = ledger.checkpoint().unwrap();
    ledger.append(records("b", 8)).unwrap();
    let note13 = ledger.checkpoint().unwrap();
    let vkey = ledger.verifier_key().to_string();
    let cp5 = vellum::ledger::checkpoint::verify_checkpoint(&note5, &vkey).unwrap();
    let cp13 = vellum::ledger::checkpoint::verify_checkpoint(&note13, &vkey).unwrap();
    assert_eq!((cp5.size, cp13.size), (5, 13));
    assert!(cp13.time.is_some());

    for seq in 0..13 {
        let (proof, note) = ledger.prove_inclusion(seq, None).unwrap();
        assert_eq!(note, note13);
        proof.verify(&cp13).unwrap();
    }
    let (proof, _) = ledger.prove_inclusion(2, Some(5)).unwrap();
    proof.verify(&cp5).unwrap();
    assert!(
        proof.verify(&cp13).is_err(),
        "a proof for size 5 must not pass for 13"
    );
    let mut forged = proof.clone();
    forged.entry.as_mut().unwrap().event.actor = Some("someone-else".into());
    assert!(forged.verify(&cp5).is_err());

    let consistency = ledger.prove_consistency(5, 13).unwrap();
    consistency.verify(&cp5, &cp13).unwrap();
    assert!(consistency.verify(&cp13, &cp5).is_err());

    // A checkpoint under another key does not verify.
    let other = TestLedger::new(&backend);
    let other_key = vellum::ledger::read_vkey(&other.location).unwrap();
    assert!(vellum::ledger::checkpoint::verify_checkpoint(&note13, &other_key).is_err());
    assert!(
        ledger.prove_inclusion(13, None).is_err(),
        "no checkpoint covers 13 yet"
    );
}

fn automatic_checkpoints_follow_the_entry_count(backend: Backend) {
    let options = LedgerOptions {
        checkpoint_every_entries: 4,
        ..LedgerOptions::default()
    };
    let test = TestLedger::new(&backend);
    let ledger = test.open_with(options);
    for _ in 0..5 {
        ledger.append(records("x", 2)).unwrap();
    }
    let sizes: Vec<u64> = ledger
        .checkpoints()
        .unwrap()
        .iter()
        .map(|(cp, _)| cp.size)
        .collect();
    assert_eq!(sizes, vec![4, 8]);
}

fn opening_what_is_not_a_ledger_is_a_clear_error(backend: Backend) {
    let test = TestLedger::new(&backend);
    assert!(
        Ledger::init(&test.location, "vellum/again").is_err(),
        "init never overwrites"
    );
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let junk = dir.path().join("junk.db");
            std::fs::write(&junk, vec![0x42u8; 8192]).unwrap();
            let error = SqliteStore::open(&junk).err().unwrap().to_string();
            assert!(
                error.contains("junk.db") && error.contains("not a Vellum ledger"),
                "{error}"
            );
            let other = dir.path().join("other.db");
            rusqlite::Connection::open(&other)
                .unwrap()
                .execute_batch("CREATE TABLE t (x);")
                .unwrap();
            let error = SqliteStore::open(&other).err().unwrap().to_string();
            assert!(error.contains("not a Vellum ledger"), "{error}");
            test.insider("PRAGMA user_version = 99;");
            let error = test.location.open_reader().err().unwrap().to_string();
            assert!(error.contains("schema version 99"), "{error}");
            let missing = dir.path().join("missing.db");
            let error = SqliteStore::open(&missing).err().unwrap().to_string();
            assert!(error.contains("does not exist"), "{error}");
        }
        Backend::Postgres(ref server) => {
            let error = vellum::ledger::store::Location::parse(&format!(
                "{server}/postgres?sslmode=disable"
            ))
            .open_reader()
            .err()
            .unwrap()
            .to_string();
            assert!(error.contains("holds no Vellum ledger"), "{error}");
            test.insider("INSERT INTO vellum_meta VALUES ('schema_version_99', '99');");
            let error = test.location.open_reader().err().unwrap().to_string();
            assert!(
                error.contains("version 99, newer than this build"),
                "{error}"
            );
            let error = vellum::ledger::store::Location::parse("postgres://127.0.0.1:1/none")
                .open_reader()
                .err()
                .unwrap()
                .to_string();
            assert!(error.contains("cannot connect"), "{error}");
            let error = vellum::ledger::store::Location::parse("postgres://127.0.0.1/x")
                .open_writer()
                .err();
            assert!(error.is_some());
            let unkeyed = Ledger::init(
                vellum::ledger::store::Location::parse(&format!(
                    "{server}/unkeyed?sslmode=disable"
                )),
                "vellum/x",
            )
            .unwrap_err()
            .to_string();
            assert!(unkeyed.contains("--signing-key"), "{unkeyed}");
        }
    }
}

fn the_store_refuses_updates_and_deletes(backend: Backend) {
    let test = TestLedger::new(&backend);
    let ledger = test.open();
    ledger.append(records("a", 2)).unwrap();
    ledger.checkpoint().unwrap();
    drop(ledger);
    let mut refused = vec![
        "UPDATE entries SET payload = '{}' WHERE seq = 0",
        "DELETE FROM entries WHERE seq = 1",
        "DELETE FROM tree_hashes",
        "DELETE FROM checkpoints",
    ];
    if let Backend::Postgres(_) = backend {
        refused.extend([
            "TRUNCATE entries",
            "UPDATE head SET size = 1",
            "DELETE FROM head",
        ]);
    }
    for sql in refused {
        let error = test.try_sql(sql).unwrap_err();
        assert!(
            error.contains("append-only") || error.contains("only grows"),
            "{sql}: {error}"
        );
    }
}

fn signing_key_is_private(backend: Backend) {
    let test = TestLedger::new(&backend);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let secret = test.location.signing_key().unwrap();
        let mode = std::fs::metadata(secret).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

/// Asserts that `receipts` number `0..n` without gaps or duplicates and match the stored
/// entries.
fn assert_gapless(test: &TestLedger, mut receipts: Vec<Receipt>, n: usize) {
    receipts.sort_by_key(|r| r.seq);
    assert_eq!(receipts.len(), n);
    let store = test.reader();
    assert_eq!(store.size().unwrap(), n as u64);
    let entries = store.entries(0, n as u64).unwrap();
    for (i, (receipt, (entry, _))) in receipts.iter().zip(&entries).enumerate() {
        assert_eq!(receipt.seq, i as u64, "gap or duplicate at {i}");
        assert_eq!(entry.seq, receipt.seq);
        assert_eq!(entry.event.id, receipt.event_id);
    }
    drop(store);
    let report = test.report();
    assert!(report.ok(), "{:?}", report.findings);
}

fn two_writers_on_one_ledger_interleave_without_gaps(backend: Backend) {
    let test = TestLedger::new(&backend);
    let writers = [Arc::new(test.open()), Arc::new(test.open())];
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let ledger = writers[t % 2].clone();
            std::thread::spawn(move || {
                (0..250)
                    .flat_map(|i| ledger.append(records(&format!("w{t}-{i}"), 3)).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let receipts = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    // Both sign checkpoints of the shared tree.
    writers[0].checkpoint().unwrap();
    writers[1].checkpoint().unwrap();
    drop(writers);
    assert_gapless(&test, receipts, 3_000);
}

fn eight_threads_appending_are_gapless(backend: Backend) {
    let per_thread = match backend {
        Backend::Sqlite => 10_000,
        Backend::Postgres(_) => 2_500,
    };
    let test = TestLedger::new(&backend);
    let ledger = Arc::new(test.open());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                (0..per_thread)
                    .map(|i| {
                        let mut receipts = ledger.append(records(&format!("t{t}-{i}"), 1)).unwrap();
                        receipts.remove(0)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let receipts = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    drop(ledger);
    assert_gapless(&test, receipts, 8 * per_thread);
}
