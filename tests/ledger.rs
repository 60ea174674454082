//! The ledger: receipts, queries and cursors, drop markers, checkpoints and proofs, file
//! validation on open, and concurrent appends.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::sync::Arc;

use common::{assert_verifies, event, new_ledger, records};
use serde_json::json;
use vellum::ledger::entry::{Disposition, Record};
use vellum::ledger::query::Query;
use vellum::ledger::store::StoreReader;
use vellum::ledger::store::sqlite::SqliteStore;
use vellum::{Ledger, LedgerError, LedgerOptions};

fn open(path: &std::path::Path) -> Ledger {
    Ledger::open(path, LedgerOptions::default()).unwrap()
}

#[test]
fn receipts_are_gapless_and_match_their_entries() {
    let (_dir, path) = new_ledger();
    let ledger = open(&path);
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

#[test]
fn queries_filter_and_page_with_a_cursor() {
    let (_dir, path) = new_ledger();
    let ledger = open(&path);
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

#[test]
fn drop_markers_are_entries_without_content() {
    let (_dir, path) = new_ledger();
    let ledger = open(&path);
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
    assert_verifies(&path);
}

#[test]
fn checkpoints_and_proofs_verify_without_the_database() {
    let (_dir, path) = new_ledger();
    let ledger = open(&path);
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
    let (other_dir, other) = new_ledger();
    let other_key = vellum::ledger::read_vkey(&other).unwrap();
    assert!(vellum::ledger::checkpoint::verify_checkpoint(&note13, &other_key).is_err());
    drop(other_dir);
    assert!(
        ledger.prove_inclusion(13, None).is_err(),
        "no checkpoint covers 13 yet"
    );
}

#[test]
fn automatic_checkpoints_follow_the_entry_count() {
    let (_dir, path) = new_ledger();
    let options = LedgerOptions {
        checkpoint_every_entries: 4,
        ..LedgerOptions::default()
    };
    let ledger = Ledger::open(&path, options).unwrap();
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

#[test]
fn opening_what_is_not_a_ledger_is_a_clear_error() {
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

    let (_dir, path) = new_ledger();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    let error = SqliteStore::open(&path).err().unwrap().to_string();
    assert!(error.contains("schema version 99"), "{error}");

    let missing = dir.path().join("missing.db");
    let error = SqliteStore::open(&missing).err().unwrap().to_string();
    assert!(error.contains("does not exist"), "{error}");
    assert!(
        Ledger::init(&path, "vellum/again").is_err(),
        "init never overwrites"
    );
}

#[test]
fn the_store_refuses_updates_and_deletes() {
    let (_dir, path) = new_ledger();
    open(&path).append(records("a", 2)).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in [
        "UPDATE entries SET payload = '{}' WHERE seq = 0",
        "DELETE FROM entries WHERE seq = 1",
        "DELETE FROM tree_hashes",
    ] {
        let error = conn.execute(sql, []).unwrap_err().to_string();
        assert!(error.contains("append-only"), "{sql}: {error}");
    }
}

#[test]
fn signing_key_is_private() {
    let (_dir, path) = new_ledger();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let secret = vellum::ledger::store::Location::from(&path)
            .signing_key()
            .unwrap();
        let mode = std::fs::metadata(secret).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn eight_threads_by_ten_thousand_appends_are_gapless() {
    let (_dir, path) = new_ledger();
    let ledger = Arc::new(open(&path));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                (0..10_000)
                    .map(|i| {
                        let mut receipts = ledger.append(records(&format!("t{t}-{i}"), 1)).unwrap();
                        receipts.remove(0)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut receipts: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    receipts.sort_by_key(|r| r.seq);
    assert_eq!(receipts.len(), 80_000);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.size().unwrap(), 80_000);
    let entries = store.entries(0, 80_000).unwrap();
    for (i, (receipt, (entry, _))) in receipts.iter().zip(&entries).enumerate() {
        assert_eq!(receipt.seq, i as u64, "gap or duplicate at {i}");
        assert_eq!(entry.seq, receipt.seq);
        assert_eq!(entry.event.id, receipt.event_id);
    }
    drop(ledger);
    assert_verifies(&path);
}
