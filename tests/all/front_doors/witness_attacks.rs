//! `vellum witness serve` under attack: evidence is kept only of checkpoints the log signed,
//! once each, without what an attacker appends, within a cap; a real fork and a rollback
//! signed by the log are kept; a stalled client cannot hold the witness's stop; its state
//! file, like a ledger, is private to its owner.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use vellum::ledger::Hash;
use vellum::ledger::checkpoint::{CheckpointSigner, generate_keys};
use vellum::ledger::cosignature::Cosigner;
use vellum::ledger::witness::request_body;
use vellum_server::witness::state::WitnessState;
use vellum_server::witness::{Outcome, Witness};

use super::{Live, connect_and_send, read_until_closed, short_limits};

/// A log's signing key (in `dir`) and verifier key.
fn log_keys(dir: &std::path::Path) -> (CheckpointSigner, String) {
    let (skey, vkey) = generate_keys("example.test/log").unwrap();
    let path = dir.join("log.key");
    std::fs::write(&path, skey).unwrap();
    (CheckpointSigner::load(&path).unwrap(), vkey)
}

fn witness(dir: &std::path::Path, log_vkey: &str) -> Witness {
    let (skey, _) = Cosigner::generate("witness.test/w").unwrap();
    let state = dir.join("w.db");
    WitnessState::create(&state).unwrap();
    Witness::open(
        Cosigner::parse(&skey).unwrap(),
        &[log_vkey.to_string()],
        &state,
    )
    .unwrap()
}

fn signed(log: &CheckpointSigner, size: u64, root: u8) -> String {
    log.sign(
        size,
        Hash([root; 32]),
        "2026-12-07T00:00:00Z".parse().unwrap(),
    )
    .unwrap()
}

fn add(witness: &Witness, old: u64, proof: &[Hash], note: &str) -> Outcome {
    witness.add_checkpoint(request_body(old, proof, note).as_bytes())
}

#[test]
fn only_the_logs_misbehaviour_is_kept_once_without_an_attackers_additions() {
    let dir = tempfile::tempdir().unwrap();
    let (log, vkey) = log_keys(dir.path());
    let witness = witness(dir.path(), &vkey);
    assert!(matches!(
        add(&witness, 0, &[], &signed(&log, 5, 1)),
        Outcome::Cosigned(_)
    ));

    // An attacker replays a larger checkpoint the log really signed (checkpoints are
    // public) 200 times, with junk proofs and a 40 kB signature line of its own.
    let larger = signed(&log, 9, 2);
    let junk_line = format!(
        "— attacker.test {}\n",
        base64::engine::general_purpose::STANDARD.encode(vec![7u8; 30_000])
    );
    for i in 0..200u32 {
        let proof = [Hash([(i % 251) as u8; 32]), Hash([3; 32])];
        let outcome = add(&witness, 5, &proof, &format!("{larger}{junk_line}"));
        assert!(matches!(outcome, Outcome::BadProof(_)), "{outcome:?}");
    }
    let evidence = witness.evidence().unwrap();
    assert_eq!(evidence.len(), 1, "{evidence:?}");
    assert_eq!(evidence[0].kind, "bad-proof");
    assert!(!evidence[0].request.contains("attacker.test"));
    assert!(
        evidence[0].request.len() < 2_000,
        "{}",
        evidence[0].request.len()
    );

    // The log's own fork (the held size, another root) and rollback are kept.
    assert_eq!(
        add(&witness, 5, &[], &signed(&log, 5, 9)),
        Outcome::Conflict(5)
    );
    assert!(matches!(
        add(&witness, 5, &[], &signed(&log, 3, 4)),
        Outcome::BadRequest(_)
    ));
    let kinds: Vec<String> = witness
        .evidence()
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["bad-proof", "fork", "rollback"]);
    // A client's wrong `old` size alone is not the log's doing.
    assert_eq!(
        add(&witness, 2, &[], &signed(&log, 7, 5)),
        Outcome::Conflict(5)
    );
    assert_eq!(witness.evidence().unwrap().len(), 3);
}

#[test]
fn checkpoints_the_log_did_not_sign_add_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (log, vkey) = log_keys(dir.path());
    let other_dir = tempfile::tempdir().unwrap();
    let (forger, _) = log_keys(other_dir.path());
    let witness = witness(dir.path(), &vkey);
    assert!(matches!(
        add(&witness, 0, &[], &signed(&log, 5, 1)),
        Outcome::Cosigned(_)
    ));
    for size in [3, 5, 9] {
        let outcome = add(&witness, 5, &[Hash([1; 32])], &signed(&forger, size, 8));
        assert!(matches!(outcome, Outcome::Forbidden(_)), "{outcome:?}");
    }
    assert!(witness.evidence().unwrap().is_empty());
}

#[test]
fn evidence_is_capped_and_the_oldest_is_pruned_first() {
    let dir = tempfile::tempdir().unwrap();
    let (log, vkey) = log_keys(dir.path());
    let witness = witness(dir.path(), &vkey).with_max_evidence(2);
    assert!(matches!(
        add(&witness, 0, &[], &signed(&log, 5, 1)),
        Outcome::Cosigned(_)
    ));
    for root in [10, 11, 12] {
        assert_eq!(
            add(&witness, 5, &[], &signed(&log, 5, root)),
            Outcome::Conflict(5)
        );
    }
    let evidence = witness.evidence().unwrap();
    assert_eq!(evidence.len(), 2);
    let kept_roots: Vec<bool> = [11u8, 12]
        .iter()
        .map(|r| {
            evidence
                .iter()
                .any(|e| e.reason.contains(&hex::encode([*r; 32])))
        })
        .collect();
    assert_eq!(kept_roots, [true, true], "{evidence:?}");
}

#[test]
fn a_version_1_state_file_is_migrated_and_private_files_stay_private() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("w.db");
    WitnessState::create(&state).unwrap();
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "witness state mode {mode:o}");
    // An older witness's file: no kind or digest columns.
    let conn = rusqlite::Connection::open(&state).unwrap();
    conn.execute_batch(
        "DROP INDEX evidence_digest; ALTER TABLE evidence DROP COLUMN digest; \
         ALTER TABLE evidence DROP COLUMN kind; PRAGMA user_version = 1; \
         INSERT INTO evidence (origin, received, request, reason) VALUES ('o', 't', x'00', 'r');",
    )
    .unwrap();
    drop(conn);
    let reopened = WitnessState::open(&state).unwrap();
    let evidence = reopened.evidence().unwrap();
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0].kind, "bad-proof");
    // A ledger, too, is created private.
    let ledger = dir.path().join("audit.db");
    vellum::Ledger::init(&ledger, "test/mode").unwrap();
    for file in [ledger.clone(), ledger.with_extension("db.key")] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} mode {mode:o}", file.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_cannot_hold_the_witness_or_its_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (_, vkey) = log_keys(dir.path());
    let router = vellum_server::witness::http::router(Arc::new(witness(dir.path(), &vkey)), "");
    // Headers that never end are cut at their deadline.
    let live = Live::start(router.clone(), short_limits(1, 2)).await;
    let addr = live.addr;
    tokio::task::spawn_blocking(move || {
        let mut stream = connect_and_send(addr, b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\n");
        read_until_closed(&mut stream)
    })
    .await
    .unwrap();
    live.stop_within(Duration::from_secs(20)).await.unwrap();
    // A body that never ends does not hold the stop past the drain deadline.
    let live = Live::start(router, short_limits(600, 2)).await;
    let addr = live.addr;
    let stalled = tokio::task::spawn_blocking(move || {
        connect_and_send(
            addr,
            b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\nold 0\n",
        )
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    live.stop_within(Duration::from_secs(20)).await.unwrap();
    drop(stalled);
}
