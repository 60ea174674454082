//! Erasure, retention and legal hold on every storage backend: what is erased cannot be
//! read from the ledger or from a copy taken before, every proof made before still checks,
//! and content or keys removed behind the ledger's back are `erased-without-record`.

use std::collections::BTreeMap;

use serde_json::json;
use vellum::ledger::checkpoint::verify_checkpoint;
use vellum::ledger::content::{self, DataKey, KeyId, Salt};
use vellum::ledger::entry::{Entry, Record};
use vellum::ledger::erasure::{EraseRequest, EraseTarget, OnHold, RetentionRule};
use vellum::ledger::query::Query;
use vellum::ledger::store::Backend as StoreBackend;
use vellum::ledger::verify::{Anchor, TamperClass, verify_anchored};
use vellum::ledger::{HoldRequest, Ledger, LedgerError};

use crate::common::backend::{Backend, TestLedger};

per_backend!(
    erasing_a_subject_forgets_it_and_every_earlier_proof_still_checks,
    one_entry_and_a_whole_tenant_can_be_erased,
    legal_holds_stop_erasure_unless_overridden_and_then_the_record_says_so,
    retention_erases_what_is_due_and_keeps_what_is_held,
    content_removed_behind_the_ledgers_back_is_erased_without_record,
    a_key_deleted_from_the_key_store_is_erased_without_record,
    content_resealed_by_an_insider_with_the_keys_is_modified,
);

/// An event of `tenant` about `subject` (its `data_subject` label), with a secret payload.
fn about(id: &str, tenant: &str, subject: &str, correlation: &str) -> Record {
    let event = serde_json::from_value(json!({
        "id": id,
        "occurred_at": "2026-11-22T10:00:00Z",
        "tenant": tenant,
        "correlation_id": correlation,
        "actor": format!("user:{subject}"),
        "kind": "tool.call",
        "payload": {"secret": format!("{subject}-secret-{id}")},
        "labels": {"data_subject": subject},
    }))
    .unwrap();
    Record::unfiltered(event)
}

fn erase(ledger: &Ledger, target: EraseTarget, on_hold: OnHold) -> Result<u64, LedgerError> {
    ledger
        .erase(EraseRequest {
            target,
            reason: "test".into(),
            by: "tester".into(),
            on_hold,
        })
        .map(|r| r.record_seq)
}

fn subject(name: &str) -> EraseTarget {
    EraseTarget::Subject {
        subject: name.into(),
        tenant: None,
    }
}

/// Every entry, opened.
fn all(test: &TestLedger) -> BTreeMap<u64, Entry> {
    let page = test
        .reader()
        .query(&Query {
            limit: 10_000,
            ..Query::default()
        })
        .unwrap();
    page.entries.into_iter().map(|e| (e.seq, e)).collect()
}

/// A stored content row: sequence number, key id, sealed bytes.
type ContentRow = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// The stored content rows, read as a backup would copy them.
fn content_rows(test: &TestLedger) -> Vec<ContentRow> {
    let sql = "SELECT seq, key_id, sealed FROM contents ORDER BY seq";
    match test.location.backend() {
        StoreBackend::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            let mut stmt = conn.prepare(sql).unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        }
        StoreBackend::Postgres(url) => {
            let mut client = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
            client
                .query(sql, &[])
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect()
        }
    }
}

/// Runs `sql` on the key store as an insider would.
fn key_store_sql(test: &TestLedger, sql: &str) {
    match test.location.backend() {
        StoreBackend::Sqlite(_) => {
            let path = test.location.key_store_file().unwrap();
            rusqlite::Connection::open(path)
                .unwrap()
                .execute_batch(sql)
                .unwrap();
        }
        StoreBackend::Postgres(url) => {
            let sql = sql.replace("data_keys", "vellum_keys.data_keys");
            ::postgres::Client::connect(url, ::postgres::NoTls)
                .unwrap()
                .batch_execute(&sql)
                .unwrap();
        }
    }
}

fn first_finding(test: &TestLedger) -> Option<(TamperClass, Option<u64>)> {
    test.report().first().map(|f| (f.class, f.seq))
}

fn erasing_a_subject_forgets_it_and_every_earlier_proof_still_checks(backend: Backend) {
    let test = TestLedger::new(&backend);
    let ledger = test.open();
    let mut records = Vec::new();
    for i in 0..6 {
        let who = if i % 2 == 0 { "ada" } else { "bob" };
        records.push(about(&format!("e{i}"), "acme", who, "run-1"));
    }
    ledger.append(records).unwrap();
    // Kept outside the ledger before the erasure: a checkpoint and a proof of a bob entry.
    let note = ledger.checkpoint().unwrap();
    let bundle = ledger.inclusion_bundle(1, None).unwrap();
    let backup = content_rows(&test);
    let before = all(&test);

    let record = erase(&ledger, subject("ada"), OnHold::Refuse).unwrap();
    assert_eq!(record, 6, "the record is the next entry");

    // Nothing of ada's content reads back; bob's reads back whole.
    let after = all(&test);
    for seq in [0, 2, 4] {
        let e = &after[&seq];
        let erased = e.seal.as_ref().unwrap().erased.as_ref().unwrap();
        assert_eq!(erased.record, Some(record));
        assert_eq!(e.event.payload.as_str(), "{}");
        assert_eq!((e.event.actor.as_ref(), e.event.labels.len()), (None, 0));
        assert_eq!(e.leaf_hash(), before[&seq].leaf_hash(), "its leaf stays");
    }
    for seq in [1, 3, 5] {
        assert_eq!(after[&seq].event, before[&seq].event);
    }
    let logged = &after[&record];
    assert_eq!(logged.event.kind, "vellum.erasure");
    let text = logged.event.payload.as_str();
    // Only the subject's keyed hash is kept (hex: test for the quoted subject).
    assert!(
        text.contains("\"entries_erased\":3") && !text.contains("\"ada\""),
        "{text}"
    );

    // The copy taken before still holds ada's sealed bytes, but no key opens them now.
    let keys = test.location.open_keys(false).unwrap();
    let mut sealed_for_ada = 0;
    for (seq, key, sealed) in backup {
        let key = KeyId::from_slice(&key.unwrap()).unwrap();
        let opened = keys.key(&key).unwrap();
        match seq % 2 {
            0 => {
                assert!(opened.is_none(), "ada's key is destroyed");
                sealed_for_ada += usize::from(sealed.is_some());
            }
            _ => assert!(opened.is_some()),
        }
    }
    assert_eq!(sealed_for_ada, 3);
    // No plaintext of ada's in the ledger's files.
    if let Some(file) = test.location.file() {
        let bytes = std::fs::read(file).unwrap();
        assert!(!bytes.windows(10).any(|w| w == b"ada-secret"));
    }

    // verify against the checkpoint kept outside passes, and counts the erased entries.
    let vkey = vellum::ledger::read_vkey(&test.location).unwrap();
    let anchor = Anchor {
        key: vkey.clone(),
        trusted_key: true,
        checkpoint: Some(verify_checkpoint(&note, &vkey).unwrap()),
        witnesses: Vec::new(),
        policy: None,
        tsa: None,
    };
    let reader = test.location.open_reader_tolerant().unwrap();
    let report = verify_anchored(reader.as_ref(), &anchor, None, &mut |_, _| {}).unwrap();
    assert!(report.ok(), "{:?}", report.findings);
    assert_eq!(report.entries_erased, 3);
    // The proof made before still checks, and so does a new one of an erased entry.
    bundle.check(&vkey).unwrap();
    ledger
        .inclusion_bundle(0, None)
        .unwrap()
        .check(&vkey)
        .unwrap();

    // Erasing ada again finds nothing; bob keeps writing under his key, ada gets a new one.
    assert!(erase(&ledger, subject("ada"), OnHold::Refuse).is_err());
    ledger
        .append(vec![about("late", "acme", "ada", "run-2")])
        .unwrap();
    let late = all(&test).into_values().last().unwrap();
    assert!(late.event.payload.as_str().contains("ada-secret-late"));
    drop(ledger);
    assert!(test.report().ok());
}

fn one_entry_and_a_whole_tenant_can_be_erased(backend: Backend) {
    let test = TestLedger::new(&backend);
    let ledger = test.open();
    ledger
        .append(vec![
            about("a0", "acme", "ada", "r"),
            about("a1", "acme", "ada", "r"),
            about("g0", "globex", "gus", "r"),
            about("g1", "globex", "hal", "r"),
        ])
        .unwrap();
    let one = erase(&ledger, EraseTarget::Entries(vec![1]), OnHold::Refuse).unwrap();
    let tenant = erase(
        &ledger,
        EraseTarget::Tenant("globex".into()),
        OnHold::Refuse,
    )
    .unwrap();
    let entries = all(&test);
    let erased_by = |seq: u64| {
        entries[&seq]
            .seal
            .as_ref()
            .unwrap()
            .erased
            .as_ref()
            .and_then(|e| e.record)
    };
    assert_eq!(erased_by(0), None, "ada's other entry stays");
    assert_eq!(erased_by(1), Some(one));
    assert_eq!((erased_by(2), erased_by(3)), (Some(tenant), Some(tenant)));
    // Records are not erased, nor are entries that do not exist.
    let refused = erase(&ledger, EraseTarget::Entries(vec![one]), OnHold::Refuse);
    assert!(refused.unwrap_err().to_string().contains("never erased"));
    let refused = erase(&ledger, EraseTarget::Entries(vec![999]), OnHold::Refuse);
    assert!(refused.unwrap_err().to_string().contains("does not exist"));
    drop(ledger);
    let report = test.report();
    assert!(report.ok(), "{:?}", report.findings);
    assert_eq!(report.entries_erased, 3);
}

fn legal_holds_stop_erasure_unless_overridden_and_then_the_record_says_so(backend: Backend) {
    let test = TestLedger::new(&backend);
    let ledger = test.open();
    ledger
        .append(vec![
            about("a0", "acme", "ada", "run-1"),
            about("b0", "acme", "bob", "run-2"),
        ])
        .unwrap();
    let hold = ledger
        .add_hold(HoldRequest::Subject("ada".into()), "case 12")
        .unwrap();
    let refused = erase(&ledger, subject("ada"), OnHold::Refuse).unwrap_err();
    assert!(matches!(refused, LedgerError::Held(_)), "{refused}");
    assert!(refused.to_string().contains("case 12"), "{refused}");
    assert!(
        !serde_json::to_string(&ledger.holds().unwrap())
            .unwrap()
            .contains("\"ada\""),
        "a subject hold keeps only the keyed hash"
    );
    // A hold on bob's run stops his erasure too.
    ledger
        .add_hold(HoldRequest::Correlation("run-2".into()), "incident 9")
        .unwrap();
    assert!(matches!(
        erase(&ledger, subject("bob"), OnHold::Refuse),
        Err(LedgerError::Held(_))
    ));
    let record = erase(&ledger, subject("ada"), OnHold::Override).unwrap();
    let logged = &all(&test)[&record];
    let payload: serde_json::Value = serde_json::from_str(logged.event.payload.as_str()).unwrap();
    assert_eq!(payload["holds_overridden"], json!([hold.id]));
    assert!(ledger.remove_hold(hold.id).unwrap());
    assert!(!ledger.remove_hold(hold.id).unwrap());
}

fn retention_erases_what_is_due_and_keeps_what_is_held(backend: Backend) {
    let test = TestLedger::new(&backend);
    let ledger = test.open();
    ledger
        .append(vec![
            about("a0", "acme", "ada", "run-1"),
            about("a1", "acme", "ada", "run-held"),
            about("g0", "globex", "gus", "run-1"),
        ])
        .unwrap();
    ledger
        .add_hold(HoldRequest::Correlation("run-held".into()), "litigation")
        .unwrap();
    let rules = [
        RetentionRule {
            tenant: None,
            kind: None,
            keep_days: 30,
        },
        RetentionRule {
            tenant: Some("globex".into()),
            kind: None,
            keep_days: 365,
        },
    ];
    // A fake clock: tomorrow nothing is due; in 40 days acme's entries are (but the held
    // run's), globex's are kept a year.
    let now = jiff::Timestamp::now();
    let tomorrow = now + jiff::SignedDuration::from_hours(24);
    let report = ledger.run_retention(&rules, tomorrow, "retention").unwrap();
    assert_eq!((report.erased, report.records.len()), (0, 0));
    let later = now + jiff::SignedDuration::from_hours(40 * 24);
    let report = ledger.run_retention(&rules, later, "retention").unwrap();
    assert_eq!((report.erased, report.held), (1, 1), "{report:?}");
    let entries = all(&test);
    assert!(entries[&0].is_erased());
    assert!(!entries[&1].is_erased(), "held");
    assert!(!entries[&2].is_erased(), "globex keeps a year");
    let again = ledger.run_retention(&rules, later, "retention").unwrap();
    assert_eq!(again.erased, 0, "nothing twice");
    drop(ledger);
    assert!(test.report().ok());
}

fn content_removed_behind_the_ledgers_back_is_erased_without_record(backend: Backend) {
    let test = TestLedger::new(&backend);
    let ledger = test.open();
    ledger
        .append(
            (0..4)
                .map(|i| about(&format!("e{i}"), "acme", "ada", "r"))
                .collect(),
        )
        .unwrap();
    let record = erase(&ledger, EraseTarget::Entries(vec![0]), OnHold::Refuse).unwrap();
    drop(ledger);
    assert!(test.report().ok());
    // Deleting a content row, and clearing one in place claiming a real record that does
    // not cover it, both read as erased, and `verify` finds no record covering them.
    test.insider("DELETE FROM contents WHERE seq = 2");
    assert_eq!(
        first_finding(&test),
        Some((TamperClass::ErasedWithoutRecord, Some(2)))
    );
    test.insider(&format!(
        "UPDATE contents SET sealed = NULL, erased_by = {record} WHERE seq = 1"
    ));
    assert_eq!(
        first_finding(&test),
        Some((TamperClass::ErasedWithoutRecord, Some(1)))
    );
}

fn a_key_deleted_from_the_key_store_is_erased_without_record(backend: Backend) {
    let test = TestLedger::new(&backend);
    let ledger = test.open();
    ledger
        .append(vec![
            about("a", "acme", "ada", "r"),
            about("b", "acme", "bob", "r"),
        ])
        .unwrap();
    drop(ledger);
    // The insider shreds one key themselves, with no erasure record.
    let ada_key = content_rows(&test)[0].1.clone().unwrap();
    key_store_sql(
        &test,
        &format!("DELETE FROM data_keys WHERE id = {}", test.bytes(&ada_key)),
    );
    assert_eq!(
        first_finding(&test),
        Some((TamperClass::ErasedWithoutRecord, Some(0)))
    );
}

fn content_resealed_by_an_insider_with_the_keys_is_modified(backend: Backend) {
    let test = TestLedger::new(&backend);
    let ledger = test.open();
    ledger.append(vec![about("a", "acme", "ada", "r")]).unwrap();
    ledger.checkpoint().unwrap();
    drop(ledger);
    // The insider holds the key store: they seal other content for entry 0 correctly.
    let (_, key, _) = content_rows(&test).remove(0);
    let id = KeyId::from_slice(&key.unwrap()).unwrap();
    let key: DataKey = test
        .location
        .open_keys(false)
        .unwrap()
        .key(&id)
        .unwrap()
        .unwrap();
    let forged = content::Content {
        actor: Some("user:ada".into()),
        subject: None,
        payload: vellum::event::Payload::from_json(r#"{"secret":"nothing to see"}"#.into())
            .unwrap(),
        labels: [("data_subject".to_string(), "ada".to_string())].into(),
    };
    let sealed = content::seal(&key, &id, &Salt::random(), &forged.encode());
    test.insider(&format!(
        "UPDATE contents SET sealed = {} WHERE seq = 0",
        test.bytes(&sealed)
    ));
    let entry = all(&test).remove(&0).unwrap();
    assert!(entry.event.payload.as_str().contains("nothing to see"));
    assert_eq!(first_finding(&test), Some((TamperClass::Modified, Some(0))));
}

/// Stored tree hashes as an older build's writer computes them for its own leaves: new
/// ones from memory, earlier ones from the store.
struct OlderWriterHashes<'a> {
    store: &'a dyn vellum::ledger::store::StoreWriter,
    new: std::cell::RefCell<BTreeMap<u64, tlog_tiles::tlog::Hash>>,
}

impl tlog_tiles::tlog::HashReader for OlderWriterHashes<'_> {
    fn read_hashes(
        &self,
        indexes: &[u64],
    ) -> Result<Vec<tlog_tiles::tlog::Hash>, tlog_tiles::tlog::Error> {
        indexes
            .iter()
            .map(|i| match self.new.borrow().get(i) {
                Some(h) => Ok(*h),
                None => self
                    .store
                    .read_hashes(&[*i])
                    .map(|h| h[0].into())
                    .map_err(|_| tlog_tiles::tlog::Error::MalformedHash),
            })
            .collect()
    }
}

/// A ledger written by a build before format 2 (schema 4, content in the leaves) is
/// upgraded on open, keeps verifying, takes format-2 entries after its format-1 ones, and
/// `erase` says why its old entries cannot be erased.
#[test]
fn a_schema_4_ledger_of_format_1_entries_still_verifies_and_says_what_cannot_be_erased() {
    let (_dir, path) = crate::common::new_ledger();
    let older: crate::common::AppendHook = Box::new(|store, entries, _, keys| {
        let entries: Vec<(Entry, vellum::ledger::Hash)> = entries
            .iter()
            .map(|(e, _)| {
                let record = Record {
                    event: e.event.clone(),
                    disposition: e.disposition,
                    dropped_by: e.dropped_by.clone(),
                    attestations: e.attestations.clone(),
                };
                let v1 = Entry::new(e.seq, e.recorded_at, record);
                let leaf = v1.leaf_hash();
                (v1, leaf)
            })
            .collect();
        let mut hashes = Vec::new();
        {
            let reader = OlderWriterHashes {
                store: &*store,
                new: Default::default(),
            };
            for (entry, leaf) in &entries {
                let added = tlog_tiles::tlog::stored_hashes_for_record_hash(
                    entry.seq,
                    (*leaf).into(),
                    &reader,
                )
                .unwrap();
                let start = tlog_tiles::tlog::stored_hash_index(0, entry.seq);
                for (i, h) in added.into_iter().enumerate() {
                    reader.new.borrow_mut().insert(start + i as u64, h);
                    hashes.push((start + i as u64, h.into()));
                }
            }
        }
        store.append(&entries, &hashes, keys)
    });
    let ledger = crate::common::ledger_with_append_hook(&path, older);
    ledger
        .append(vec![
            about("old0", "acme", "ada", "r"),
            about("old1", "acme", "ada", "r"),
        ])
        .unwrap();
    drop(ledger);
    // Back to schema 4, as that build left it.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TRIGGER contents_no_DELETE; DROP TRIGGER contents_erase_only; \
             DROP TABLE contents; DROP TRIGGER erased_keys_no_UPDATE; \
             DROP TRIGGER erased_keys_no_DELETE; DROP TABLE erased_keys; \
             ALTER TABLE entries DROP COLUMN commitment; DROP TRIGGER timestamps_no_UPDATE; \
             DROP TRIGGER timestamps_no_DELETE; DROP TABLE timestamps; PRAGMA user_version = 4;",
        )
        .unwrap();
    let ledger = Ledger::open(&path, Default::default()).unwrap();
    ledger
        .append(vec![about("new0", "acme", "ada", "r")])
        .unwrap();
    let refused = erase(&ledger, EraseTarget::Entries(vec![0]), OnHold::Refuse).unwrap_err();
    assert!(refused.to_string().contains("format 1"), "{refused}");
    let report = ledger.erase(EraseRequest {
        target: subject("ada"),
        reason: "request".into(),
        by: "dpo".into(),
        on_hold: OnHold::Refuse,
    });
    assert_eq!(report.unwrap().entries_erased, 1, "only the format-2 entry");
    drop(ledger);
    let store = vellum::ledger::store::Location::from(&path)
        .open_reader()
        .unwrap();
    let entries = store.entries(0, 4).unwrap();
    assert!(
        entries[0].0.seal.is_none() && entries[0].0.event.payload.as_str().contains("ada-secret")
    );
    assert!(entries[2].0.is_erased());
    crate::common::assert_verifies(&path);
}
