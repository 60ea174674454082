//! Idempotent emits: a retry under the same key gets the first receipts — also after a
//! restart, also when many producers retry at once — and records nothing new; a key used
//! for other events is refused; a key row edited by an insider makes the retry fail, never
//! hands out a receipt for an entry that does not exist.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use crate::common;
use std::collections::HashSet;

use common::backend::{Backend, TestLedger};
use common::{chain_template, event};
use rusqlite::Connection;
use serde_json::json;
use vellum::sink::{EmitError, SinkOptions};
use vellum::{AuditEvent, Sink};

per_backend!(
    a_retry_gets_the_first_receipts_even_after_a_restart,
    concurrent_retries_of_one_key_record_it_once,
    an_edited_key_row_fails_the_retry_instead_of_inventing_receipts,
    a_retry_in_the_same_commit_fails_with_it,
);

fn sink(test: &TestLedger) -> Sink {
    let chain = chain_template("");
    Sink::start(chain, test.open(), &SinkOptions::default()).unwrap()
}

fn batch(prefix: &str, n: usize) -> Vec<AuditEvent> {
    (0..n)
        .map(|i| event(&format!("{prefix}-{i}"), "tool.call", json!({"i": i})))
        .collect()
}

fn a_retry_gets_the_first_receipts_even_after_a_restart(backend: Backend) {
    let test = TestLedger::new(&backend);
    let sink = sink(&test);
    let first = sink
        .emit_batch_idempotent("acme", "k1", batch("a", 3))
        .unwrap();
    let again = sink
        .emit_batch_idempotent("acme", "k1", batch("a", 3))
        .unwrap();
    assert_eq!(first, again);
    // Another scope is another key.
    let other = sink
        .emit_batch_idempotent("beta", "k1", batch("a", 3))
        .unwrap();
    assert_eq!(other[0].seq, 3);
    // The same key with other events: refused, nothing recorded.
    let reused = sink
        .emit_batch_idempotent("acme", "k1", batch("b", 3))
        .unwrap_err();
    assert!(
        matches!(&reused, EmitError::InvalidEvent(m) if m.contains("k1")),
        "{reused:?}"
    );
    sink.close().unwrap();
    drop(sink);

    let sink = self::sink(&test);
    let after_restart = sink
        .emit_batch_idempotent("acme", "k1", batch("a", 3))
        .unwrap();
    assert_eq!(first, after_restart);
    assert_eq!(sink.ledger().size().unwrap(), 6);
    sink.close().unwrap();
    drop(sink);
    assert!(test.report().ok());
}

fn concurrent_retries_of_one_key_record_it_once(backend: Backend) {
    let test = TestLedger::new(&backend);
    let sink = sink(&test);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|k| {
                        let key = format!("key-{k}");
                        sink.emit_batch_idempotent("acme", &key, batch(&key, 2))
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<Vec<_>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for answer in &answers[1..] {
        assert_eq!(answer, &answers[0], "every producer got the same receipts");
    }
    assert_eq!(
        sink.ledger().size().unwrap(),
        100,
        "50 keys × 2 events, once each"
    );
    let seqs: HashSet<u64> = answers[0].iter().flatten().map(|r| r.seq).collect();
    assert_eq!(seqs.len(), 100);
    sink.close().unwrap();
}

fn an_edited_key_row_fails_the_retry_instead_of_inventing_receipts(backend: Backend) {
    let test = TestLedger::new(&backend);
    let sink = sink(&test);
    sink.emit_batch_idempotent("acme", "past-end", batch("p", 2))
        .unwrap();
    sink.emit_batch_idempotent("acme", "elsewhere", batch("q", 2))
        .unwrap();
    sink.close().unwrap();
    drop(sink);
    // An insider edits the key table (with its append-only trigger out of the way).
    test.insider(
        "UPDATE idempotency_keys SET first_seq = 1000000 WHERE key = 'past-end'; \
         UPDATE idempotency_keys SET first_seq = 0 WHERE key = 'elsewhere';",
    );
    let sink = self::sink(&test);
    for (key, prefix, says) in [
        ("past-end", "p", "points past the end"),
        ("elsewhere", "q", "entries of other events"),
    ] {
        let error = sink
            .emit_batch_idempotent("acme", key, batch(prefix, 2))
            .unwrap_err();
        assert!(
            matches!(&error, EmitError::Unavailable(m) if m.contains(key) && m.contains(says)),
            "{error:?}"
        );
    }
    assert_eq!(sink.ledger().size().unwrap(), 4, "nothing recorded twice");
    sink.close().unwrap();
}

#[test]
fn a_schema_2_ledger_is_upgraded_on_open_to_the_current_version() {
    let test = TestLedger::new(&Backend::Sqlite);
    let path = test.location.file().unwrap();
    {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "DROP TRIGGER idempotency_keys_no_UPDATE; DROP TRIGGER idempotency_keys_no_DELETE; \
             DROP TABLE idempotency_keys; DROP TRIGGER cosignatures_no_UPDATE; \
             DROP TRIGGER cosignatures_no_DELETE; DROP TABLE cosignatures; \
             DROP TRIGGER contents_no_DELETE; DROP TRIGGER contents_erase_only; \
             DROP TABLE contents; DROP TRIGGER erased_keys_no_UPDATE; \
             DROP TRIGGER erased_keys_no_DELETE; DROP TABLE erased_keys; \
             ALTER TABLE entries DROP COLUMN commitment; DROP TRIGGER timestamps_no_UPDATE; \
             DROP TRIGGER timestamps_no_DELETE; DROP TABLE timestamps; PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let sink = sink(&test);
    let first = sink
        .emit_batch_idempotent("acme", "k", batch("u", 1))
        .unwrap();
    assert_eq!(
        first,
        sink.emit_batch_idempotent("acme", "k", batch("u", 1))
            .unwrap()
    );
    sink.close().unwrap();
    drop(sink);
    let version: i32 = Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, vellum::ledger::store::sqlite::SCHEMA_VERSION);
}

fn a_retry_in_the_same_commit_fails_with_it(backend: Backend) {
    use vellum::ledger::idempotency::IdempotencyKey;
    use vellum::ledger::store::StoreError;
    let test = TestLedger::new(&backend);
    let hook: common::AppendHook = Box::new(|_, _, _, _| Err(StoreError::Io("disk error".into())));
    let ledger = common::ledger_with_append_hook(&test.location, hook);
    let key = IdempotencyKey {
        scope: "acme".into(),
        key: "k".into(),
        digest: vellum::ledger::Hash([7; 32]),
    };
    // The same request twice, most likely gathered into one commit: neither may be
    // answered with receipts when that commit fails.
    let answers = ledger.append_each(vec![
        (common::records("r", 2), Some(key.clone())),
        (common::records("r", 2), Some(key)),
    ]);
    assert_eq!(answers.len(), 2);
    for answer in answers {
        assert!(answer.is_err(), "{answer:?}");
    }
}
