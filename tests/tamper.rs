//! Tampering with a real ledger file — edit, delete, insert, swap, truncate, flip bits — is
//! detected by `verify` and classified, with the first bad sequence number.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::path::Path;

use common::{new_ledger, records, verify_report as report};
use rusqlite::Connection;
use vellum::ledger::store::sqlite::SqliteStore;
use vellum::ledger::verify::{TamperClass, verify};
use vellum::{Ledger, LedgerOptions};

/// A closed ledger of 20 entries with checkpoints at 10 and 20.
fn ledger() -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, path) = new_ledger();
    let ledger = Ledger::open(&path, LedgerOptions::default()).unwrap();
    ledger.append(records("a", 10)).unwrap();
    ledger.checkpoint().unwrap();
    ledger.append(records("b", 10)).unwrap();
    ledger.checkpoint().unwrap();
    drop(ledger);
    (dir, path)
}

/// Runs SQL as an attacker with a SQL shell would: first dropping the append-only triggers.
fn tamper(path: &Path, sql: &str) {
    let conn = Connection::open(path).unwrap();
    let triggers: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for t in triggers {
        conn.execute_batch(&format!("DROP TRIGGER {t}")).unwrap();
    }
    conn.execute_batch(sql).unwrap();
}

fn first(path: &Path) -> (TamperClass, Option<u64>) {
    let report = report(path);
    let first = report
        .first()
        .unwrap_or_else(|| panic!("tampering not detected"));
    (first.class, first.seq)
}

#[test]
fn intact_ledger_verifies() {
    let (_dir, path) = ledger();
    let report = report(&path);
    assert!(report.ok(), "{:?}", report.findings);
    assert_eq!(
        (report.entries_checked, report.checkpoints_checked),
        (20, 2)
    );
}

#[test]
fn edited_payload_is_modified() {
    let (_dir, path) = ledger();
    tamper(
        &path,
        "UPDATE entries SET payload = '{\"i\":99}' WHERE seq = 7",
    );
    assert_eq!(first(&path), (TamperClass::Modified, Some(7)));
}

#[test]
fn edit_with_recomputed_hashes_is_still_caught_by_the_checkpoints() {
    let (_dir, path) = ledger();
    // The attacker edits the row and rewrites both its leaf hash and the tree's leaf.
    let store = SqliteStore::open(&path).unwrap();
    let (mut entry, _) = vellum::ledger::store::StoreReader::entries(&store, 4, 5)
        .unwrap()
        .remove(0);
    drop(store);
    entry.event.actor = Some("agent:innocent".into());
    let leaf = hex_literal(&entry.leaf_hash().0);
    let idx = tlog_tiles::tlog::stored_hash_index(0, 4);
    tamper(
        &path,
        &format!(
            "UPDATE entries SET actor = 'agent:innocent', leaf_hash = {leaf} WHERE seq = 4;
         UPDATE tree_hashes SET hash = {leaf} WHERE idx = {idx};"
        ),
    );
    let report = report(&path);
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

#[test]
fn deleted_row_is_deleted() {
    let (_dir, path) = ledger();
    tamper(&path, "DELETE FROM entries WHERE seq = 12");
    assert_eq!(first(&path), (TamperClass::Deleted, Some(12)));
}

#[test]
fn deleted_and_renumbered_row_is_deleted() {
    let (_dir, path) = ledger();
    tamper(
        &path,
        "DELETE FROM entries WHERE seq = 5; UPDATE entries SET seq = seq - 1 WHERE seq > 5;",
    );
    assert_eq!(first(&path), (TamperClass::Deleted, Some(5)));
}

#[test]
fn inserted_row_is_inserted() {
    let (_dir, path) = ledger();
    tamper(
        &path,
        "INSERT INTO entries SELECT 20, leaf_hash, recorded_s, recorded_ns, occurred_s, occurred_ns, 'forged', tenant, correlation_id, chain_id, actor, kind, subject, payload, labels, disposition, dropped_plugin, dropped_reason, attestation_set FROM entries WHERE seq = 3",
    );
    assert_eq!(first(&path), (TamperClass::Inserted, Some(20)));
}

#[test]
fn row_inserted_in_the_middle_is_inserted() {
    let (_dir, path) = ledger();
    tamper(&path, "UPDATE entries SET seq = seq + 1000 WHERE seq >= 8;
                   UPDATE entries SET seq = seq - 999 WHERE seq >= 1000;
                   INSERT INTO entries SELECT 8, leaf_hash, recorded_s, recorded_ns, occurred_s, occurred_ns, 'forged', tenant, correlation_id, chain_id, actor, kind, subject, payload, labels, disposition, dropped_plugin, dropped_reason, attestation_set FROM entries WHERE seq = 2");
    assert_eq!(first(&path), (TamperClass::Inserted, Some(8)));
}

#[test]
fn swapped_rows_are_reordered() {
    let (_dir, path) = ledger();
    tamper(
        &path,
        "UPDATE entries SET seq = -1 WHERE seq = 5;
                   UPDATE entries SET seq = 5 WHERE seq = 6;
                   UPDATE entries SET seq = 6 WHERE seq = -1;",
    );
    assert_eq!(first(&path), (TamperClass::Reordered, Some(5)));
}

#[test]
fn truncated_tail_is_truncated_after_checkpoint() {
    let (_dir, path) = ledger();
    tamper(&path, "DELETE FROM entries WHERE seq >= 15");
    assert_eq!(
        first(&path),
        (TamperClass::TruncatedAfterCheckpoint, Some(15))
    );
    // Reopening for appends refuses a truncated ledger too.
    let error = Ledger::open(&path, LedgerOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("truncated") || error.contains("tree"),
        "{error}"
    );
}

#[test]
fn forged_checkpoint_is_a_bad_checkpoint() {
    let (_dir, path) = ledger();
    tamper(
        &path,
        "UPDATE checkpoints SET note = replace(note, '\n20\n', '\n21\n') WHERE size = 20",
    );
    assert_eq!(first(&path).0, TamperClass::BadCheckpoint);
}

#[test]
fn flipped_bit_in_a_payload_is_detected() {
    let (_dir, path) = ledger();
    let mut bytes = std::fs::read(&path).unwrap();
    // Event ids are stored once (no index holds them): "b-3" is entry 13's row.
    let needle = b"b-3";
    let positions: Vec<usize> = (0..bytes.len() - 2)
        .filter(|&i| &bytes[i..i + 3] == needle)
        .collect();
    assert_eq!(positions.len(), 1, "the id is stored exactly once");
    bytes[positions[0] + 2] ^= 0x01; // "b-3" -> "b-2"
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(first(&path), (TamperClass::Modified, Some(13)));
}

#[test]
fn flipped_bits_in_the_header_make_the_file_unreadable_not_a_panic() {
    let (_dir, path) = ledger();
    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[0..16] {
        *b ^= 0xFF;
    }
    std::fs::write(&path, &bytes).unwrap();
    let error = SqliteStore::open(&path).err().unwrap().to_string();
    assert!(
        error.contains("not a Vellum ledger") || error.contains("corrupt"),
        "{error}"
    );
}

#[test]
fn a_range_check_finds_a_modified_entry_by_inclusion_proofs() {
    let (_dir, path) = ledger();
    tamper(&path, "UPDATE entries SET payload = '{}' WHERE seq = 3");
    let store = SqliteStore::open(&path).unwrap();
    let vkey = vellum::ledger::read_vkey(&path).unwrap();
    let ranged = verify(&store, &vkey, Some((2, 6)), &mut |_, _| {}).unwrap();
    assert_eq!(ranged.first().map(|f| f.seq), Some(Some(3)));
    let clean = verify(&store, &vkey, Some((10, 20)), &mut |_, _| {}).unwrap();
    assert!(clean.ok(), "{:?}", clean.findings);
}

fn hex_literal(bytes: &[u8]) -> String {
    format!("X'{}'", hex::encode(bytes))
}

#[test]
fn a_forged_attestation_set_is_found_at_the_first_entry_that_uses_it() {
    let (_dir, path) = ledger();
    tamper(
        &path,
        r#"UPDATE attestation_sets SET attestations =
           '[{"plugin":"redact","component_digest":"sha256:0","config_digest":"sha256:0","verdict":"keep"}]'"#,
    );
    assert_eq!(first(&path), (TamperClass::Modified, Some(0)));
}
