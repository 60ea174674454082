//! Checkpoint side effects run off the writer: a witness that never answers and a
//! `publish-command` that does not return while the test holds it leave every append
//! answered, and the checkpoints signed meanwhile are handed over once they let go.
//! (The rates with and without them are measured in `benches/ledger.rs`.)

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::backend::{Backend, TestLedger};
use crate::common::records;
use vellum::LedgerOptions;
use vellum::ledger::cosignature::Cosigner;
use vellum::ledger::publish::Publisher;
use vellum::ledger::witness::Witness;

/// A witness that accepts connections and never answers; counts them.
fn silent_witness() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    (url, accepted)
}

#[test]
fn a_silent_witness_and_a_stuck_publisher_never_hold_up_an_append() {
    let test = TestLedger::new(&Backend::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let (started, release, published) = (
        dir.path().join("started"),
        dir.path().join("release"),
        dir.path().join("published"),
    );
    // Stuck until the test creates `release`; then it appends the size it got.
    let command = format!(
        "touch '{}'; while [ ! -e '{}' ]; do sleep 0.02; done; \
         echo \"$VELLUM_CHECKPOINT_SIZE\" >> '{}'",
        started.display(),
        release.display(),
        published.display()
    );
    let (url, accepted) = silent_witness();
    let (_, key) = Cosigner::generate("witness.test/silent").unwrap();
    let options = LedgerOptions {
        checkpoint_every_entries: 10,
        publishers: vec![Publisher::Command(command)],
        witnesses: vec![Witness::new(&url, &key).unwrap()],
        ..LedgerOptions::default()
    };
    let ledger = test.open_with(options);
    for round in 0..30 {
        ledger.append(records(&format!("s{round}"), 10)).unwrap();
    }
    // Every append was answered and a checkpoint signed every 10 entries while the
    // publisher had not been let go: the writer waited on neither.
    assert!(!release.exists() && !published.exists());
    let sizes: Vec<u64> = ledger
        .checkpoints()
        .unwrap()
        .iter()
        .map(|(cp, _)| cp.size)
        .collect();
    assert!(sizes.len() >= 29 && sizes.contains(&290), "{sizes:?}");
    // The witness was asked (and is still silent) or the ask timed out; either way the
    // side-effect thread is busy with a checkpoint now.
    let waited = (0..500).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        accepted.load(Ordering::SeqCst) > 0
    });
    assert!(waited, "the witness was never asked");
    std::fs::write(&release, "").unwrap();
    let counts = {
        drop(ledger);
        // Closing waited for what was handed over: the newest checkpoint was published.
        std::fs::read_to_string(&published).unwrap()
    };
    let last: u64 = counts.lines().last().unwrap().parse().unwrap();
    assert_eq!(last, 300, "published sizes: {counts}");
    assert!(started.exists());
}
