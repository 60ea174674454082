//! Tampering with a real ledger — edit, delete, insert, swap, truncate, forge — by an
//! insider with a SQL shell is detected by `verify` and classified, with the first bad
//! sequence number, on every storage backend (`sqlite::…`, `postgres::…`); and flipped bits
//! in a SQLite file.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use crate::common;
use common::backend::{Backend, TestLedger};
use common::records;
use vellum::ledger::Hash;
use vellum::ledger::entry::Entry;
use vellum::ledger::idempotency::StoredKey;
use vellum::ledger::query::{Page, Query};
use vellum::ledger::store::sqlite::SqliteStore;
use vellum::ledger::store::{StoreError, StoreReader};
use vellum::ledger::verify::{TamperClass, verify};
use vellum::{Ledger, LedgerError, LedgerOptions};

per_backend!(
    intact_ledger_verifies,
    edited_content_is_modified,
    edit_with_recomputed_hashes_is_still_caught_by_the_checkpoints,
    deleted_row_is_deleted,
    deleted_and_renumbered_row_is_deleted,
    inserted_row_is_inserted,
    row_inserted_in_the_middle_is_inserted,
    swapped_rows_are_reordered,
    truncated_tail_is_truncated_after_checkpoint,
    forged_checkpoint_is_a_bad_checkpoint,
    a_range_check_finds_a_modified_entry_by_inclusion_proofs,
    a_forged_attestation_set_is_found_at_the_first_entry_that_uses_it,
    a_storage_error_during_verify_is_an_error_not_a_finding,
);

/// A store whose tree-hash reads fail with an I/O error after `ok_reads` of them.
struct FlakyHashes {
    inner: Box<dyn StoreReader>,
    ok_reads: std::cell::Cell<u32>,
}

impl StoreReader for FlakyHashes {
    fn size(&self) -> Result<u64, StoreError> {
        self.inner.size()
    }
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
        match self.ok_reads.get() {
            0 => Err(StoreError::Io("injected read error (EIO)".into())),
            n => {
                self.ok_reads.set(n - 1);
                self.inner.read_hashes(indexes)
            }
        }
    }
    fn entries(&self, from: u64, to: u64) -> Result<Vec<(Entry, Hash)>, StoreError> {
        self.inner.entries(from, to)
    }
    fn query(&self, query: &Query) -> Result<Page, StoreError> {
        self.inner.query(query)
    }
    fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        self.inner.checkpoints()
    }
    fn checkpoint(&self, size: u64) -> Result<Option<String>, StoreError> {
        self.inner.checkpoint(size)
    }
    fn cosignatures(&self, size: Option<u64>) -> Result<Vec<(u64, String)>, StoreError> {
        self.inner.cosignatures(size)
    }
    fn timestamps(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.inner.timestamps()
    }
    fn idempotency_key(&self, scope: &str, key: &str) -> Result<Option<StoredKey>, StoreError> {
        self.inner.idempotency_key(scope, key)
    }
    fn erased_keys(
        &self,
        after: u64,
    ) -> Result<Vec<(u64, vellum::ledger::content::KeyId, u64)>, StoreError> {
        self.inner.erased_keys(after)
    }
}

fn a_storage_error_during_verify_is_an_error_not_a_finding(backend: Backend) {
    let test = ledger(&backend);
    let vkey = vellum::ledger::read_vkey(&test.location).unwrap();
    // Fail each tree-hash read in turn: every outcome is the error, never a tamper class.
    for ok_reads in 0..6 {
        let store = FlakyHashes {
            inner: test.reader(),
            ok_reads: std::cell::Cell::new(ok_reads),
        };
        match verify(&store, &vkey, None, &mut |_, _| {}) {
            Err(LedgerError::Unavailable(m)) => assert!(m.contains("EIO"), "{m}"),
            Ok(report) => panic!("after {ok_reads} reads: {:?}", report.findings),
            Err(other) => panic!("after {ok_reads} reads: {other}"),
        }
    }
}

/// A closed ledger of 20 entries with checkpoints at 10 and 20.
fn ledger(backend: &Backend) -> TestLedger {
    let test = TestLedger::new(backend);
    let ledger = test.open();
    ledger.append(records("a", 10)).unwrap();
    ledger.checkpoint().unwrap();
    ledger.append(records("b", 10)).unwrap();
    ledger.checkpoint().unwrap();
    drop(ledger);
    test
}

fn first(test: &TestLedger) -> (TamperClass, Option<u64>) {
    let report = test.report();
    let first = report
        .first()
        .unwrap_or_else(|| panic!("tampering not detected"));
    (first.class, first.seq)
}

fn intact_ledger_verifies(backend: Backend) {
    let test = ledger(&backend);
    let report = test.report();
    assert!(report.ok(), "{:?}", report.findings);
    assert_eq!(
        (report.entries_checked, report.checkpoints_checked),
        (20, 2)
    );
}

fn edited_content_is_modified(backend: Backend) {
    let test = ledger(&backend);
    // Another entry's sealed content, moved here: it does not open for this entry.
    test.insider(
        "UPDATE contents SET sealed = (SELECT sealed FROM contents WHERE seq = 3) WHERE seq = 7",
    );
    assert_eq!(first(&test), (TamperClass::Modified, Some(7)));
}

fn edit_with_recomputed_hashes_is_still_caught_by_the_checkpoints(backend: Backend) {
    let test = ledger(&backend);
    // The attacker edits the row and rewrites both its leaf hash and the tree's leaf.
    let (mut entry, _) = test.reader().entries(4, 5).unwrap().remove(0);
    entry.event.actor = Some("agent:innocent".into());
    let leaf = test.bytes(&entry.leaf_hash().0);
    let idx = tlog_tiles::tlog::stored_hash_index(0, 4);
    test.insider(&format!(
        "UPDATE entries SET actor = 'agent:innocent', leaf_hash = {leaf} WHERE seq = 4;
         UPDATE tree_hashes SET hash = {leaf} WHERE idx = {idx};"
    ));
    let report = test.report();
    assert!(!report.ok());
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.class == TamperClass::Modified),
        "{:?}",
        report.findings
    );
}

fn deleted_row_is_deleted(backend: Backend) {
    let test = ledger(&backend);
    test.insider("DELETE FROM entries WHERE seq = 12");
    assert_eq!(first(&test), (TamperClass::Deleted, Some(12)));
}

fn deleted_and_renumbered_row_is_deleted(backend: Backend) {
    let test = ledger(&backend);
    test.insider(
        "DELETE FROM entries WHERE seq = 5; UPDATE entries SET seq = seq - 1 WHERE seq > 5;",
    );
    assert_eq!(first(&test), (TamperClass::Deleted, Some(5)));
}

fn inserted_row_is_inserted(backend: Backend) {
    let test = ledger(&backend);
    // On PostgreSQL the insider also moves the head, as an appended row would.
    test.insider(&format!(
        "INSERT INTO entries SELECT 20, leaf_hash, recorded_s, recorded_ns, occurred_s, occurred_ns, 'forged', tenant, correlation_id, chain_id, actor, kind, subject, payload, labels, disposition, dropped_plugin, dropped_reason, attestation_set, commitment FROM entries WHERE seq = 3; {}",
        head(&backend, 21)
    ));
    assert_eq!(first(&test), (TamperClass::Inserted, Some(20)));
}

fn row_inserted_in_the_middle_is_inserted(backend: Backend) {
    let test = ledger(&backend);
    test.insider(&format!("UPDATE entries SET seq = seq + 1000 WHERE seq >= 8;
                   UPDATE entries SET seq = seq - 999 WHERE seq >= 1000;
                   INSERT INTO entries SELECT 8, leaf_hash, recorded_s, recorded_ns, occurred_s, occurred_ns, 'forged', tenant, correlation_id, chain_id, actor, kind, subject, payload, labels, disposition, dropped_plugin, dropped_reason, attestation_set, commitment FROM entries WHERE seq = 2; {}", head(&backend, 21)));
    assert_eq!(first(&test), (TamperClass::Inserted, Some(8)));
}

fn swapped_rows_are_reordered(backend: Backend) {
    let test = ledger(&backend);
    test.insider(
        "UPDATE entries SET seq = -1 WHERE seq = 5;
                   UPDATE entries SET seq = 5 WHERE seq = 6;
                   UPDATE entries SET seq = 6 WHERE seq = -1;",
    );
    assert_eq!(first(&test), (TamperClass::Reordered, Some(5)));
}

fn truncated_tail_is_truncated_after_checkpoint(backend: Backend) {
    let test = ledger(&backend);
    test.insider(&format!(
        "DELETE FROM entries WHERE seq >= 15; {}",
        head(&backend, 15)
    ));
    assert_eq!(
        first(&test),
        (TamperClass::TruncatedAfterCheckpoint, Some(15))
    );
    // Reopening for appends refuses a truncated ledger too.
    let error = Ledger::open(&test.location, LedgerOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("truncated") || error.contains("tree"),
        "{error}"
    );
}

fn forged_checkpoint_is_a_bad_checkpoint(backend: Backend) {
    let test = ledger(&backend);
    test.insider("UPDATE checkpoints SET note = replace(note, '\n20\n', '\n21\n') WHERE size = 20");
    assert_eq!(first(&test).0, TamperClass::BadCheckpoint);
}

#[test]
fn flipped_bit_in_a_payload_is_detected() {
    let test = ledger(&Backend::Sqlite);
    let path = test.location.file().unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    // Event ids are stored once (no index holds them): "b-3" is entry 13's row.
    let needle = b"b-3";
    let positions: Vec<usize> = (0..bytes.len() - 2)
        .filter(|&i| &bytes[i..i + 3] == needle)
        .collect();
    assert_eq!(positions.len(), 1, "the id is stored exactly once");
    bytes[positions[0] + 2] ^= 0x01; // "b-3" -> "b-2"
    std::fs::write(path, &bytes).unwrap();
    assert_eq!(first(&test), (TamperClass::Modified, Some(13)));
}

#[test]
fn flipped_bits_in_the_header_make_the_file_unreadable_not_a_panic() {
    let test = ledger(&Backend::Sqlite);
    let path = test.location.file().unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    for b in &mut bytes[0..16] {
        *b ^= 0xFF;
    }
    std::fs::write(path, &bytes).unwrap();
    let error = SqliteStore::open(path).err().unwrap().to_string();
    assert!(
        error.contains("not a Vellum ledger") || error.contains("corrupt"),
        "{error}"
    );
}

fn a_range_check_finds_a_modified_entry_by_inclusion_proofs(backend: Backend) {
    let test = ledger(&backend);
    test.insider(
        "UPDATE contents SET sealed = (SELECT sealed FROM contents WHERE seq = 4) WHERE seq = 3",
    );
    let store = test.location.open_reader_tolerant().unwrap();
    let vkey = vellum::ledger::read_vkey(&test.location).unwrap();
    let ranged = verify(store.as_ref(), &vkey, Some((2, 6)), &mut |_, _| {}).unwrap();
    assert_eq!(ranged.first().map(|f| f.seq), Some(Some(3)));
    let clean = verify(store.as_ref(), &vkey, Some((10, 20)), &mut |_, _| {}).unwrap();
    assert!(clean.ok(), "{:?}", clean.findings);
}

/// The insider's SQL that sets the stored size: PostgreSQL keeps it in `head`; SQLite
/// derives it from the entries.
fn head(backend: &Backend, size: u64) -> String {
    match backend {
        Backend::Sqlite => String::new(),
        Backend::Postgres(_) => format!("UPDATE head SET size = {size};"),
    }
}

fn a_forged_attestation_set_is_found_at_the_first_entry_that_uses_it(backend: Backend) {
    let test = ledger(&backend);
    test.insider(
        r#"UPDATE attestation_sets SET attestations =
           '[{"plugin":"redact","component_digest":"sha256:0","config_digest":"sha256:0","verdict":"keep"}]'"#,
    );
    assert_eq!(first(&test), (TamperClass::Modified, Some(0)));
}
