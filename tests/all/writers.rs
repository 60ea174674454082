//! Many writer processes, one gapless log, on every storage backend: `vellum ingest`
//! processes appending at once, writers killed mid-batch, and (PostgreSQL) a server crash
//! while writers append. Every acknowledged event is in the ledger at its receipt's
//! sequence number, no number is given twice, and `vellum verify` passes.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use crate::common;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use common::backend::{Backend, TestLedger};
use common::records;
use vellum::LedgerError;

per_backend!(
    four_processes_append_one_gapless_log,
    writers_killed_mid_batch_lose_no_acknowledged_event,
);

/// Held for reading by every test that uses the PostgreSQL server, and for writing by the
/// one that crashes it.
static SERVER: RwLock<()> = RwLock::new(());

/// `vellum ARGS --ledger … [--signing-key …]` for the test ledger.
fn vellum(test: &TestLedger, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vellum"));
    command
        .args(args)
        .args(["--ledger", &test.location.to_string()]);
    if let Backend::Postgres(_) = test.backend {
        let key = test.location.signing_key().unwrap();
        command.arg("--signing-key").arg(key);
    }
    command
}

/// An event line of writer `w`.
fn line(w: usize, i: usize) -> String {
    format!(
        "{{\"id\":\"w{w}-{i}\",\"occurred_at\":\"2026-12-03T10:00:00Z\",\"tenant\":\"acme\",\
         \"kind\":\"tool.call\",\"payload\":{{\"i\":{i}}}}}\n"
    )
}

/// Starts `vellum ingest` reading events from its standard input.
fn ingest(test: &TestLedger, batch_size: usize) -> Child {
    vellum(test, &["ingest", "--batch-size", &batch_size.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The `(seq, event id)` of every receipt a writer printed.
fn receipts(out: impl std::io::Read) -> Vec<(u64, String)> {
    let mut seen = Vec::new();
    for line in BufReader::new(out).lines() {
        let Ok(line) = line else { break };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
            break;
        };
        if let Some(receipt) = value.get("receipt") {
            seen.push((
                receipt["seq"].as_u64().unwrap(),
                receipt["event_id"].as_str().unwrap().to_string(),
            ));
        }
    }
    seen
}

/// Every acknowledged event is stored at its sequence number, each number once; the ledger
/// verifies with `vellum verify`. Returns the ledger's size.
fn assert_all_present(test: &TestLedger, acked: &[(u64, String)]) -> u64 {
    let store = test.reader();
    let size = store.size().unwrap();
    let stored: HashMap<u64, String> = store
        .entries(0, size)
        .unwrap()
        .into_iter()
        .map(|(e, _)| (e.seq, e.event.id))
        .collect();
    let mut seqs: Vec<u64> = acked.iter().map(|(s, _)| *s).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), acked.len(), "a sequence number was given twice");
    for (seq, id) in acked {
        assert_eq!(stored.get(seq), Some(id), "acknowledged entry {seq} lost");
    }
    let verify = vellum(test, &["verify"]).output().unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    size
}

fn four_processes_append_one_gapless_log(backend: Backend) {
    let _server = SERVER.read().unwrap();
    let test = TestLedger::new(&backend);
    let inputs: Vec<_> = (0..4)
        .map(|w| {
            let path = test.dir.path().join(format!("in{w}.jsonl"));
            let text: String = (0..2_000).map(|i| line(w, i)).collect();
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect();
    let children: Vec<Child> = inputs
        .iter()
        .map(|input| {
            vellum(&test, &["ingest", "--input", input.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut acked = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        acked.extend(receipts(&out.stdout[..]));
    }
    assert_eq!(acked.len(), 8_000);
    assert_eq!(assert_all_present(&test, &acked), 8_000, "gapless: 0..8000");
}

fn writers_killed_mid_batch_lose_no_acknowledged_event(backend: Backend) {
    let _server = SERVER.read().unwrap();
    let test = TestLedger::new(&backend);
    let mut acked = Vec::new();
    for round in 0..6 {
        let running: Vec<_> = (0..4)
            .map(|w| {
                let mut child = ingest(&test, 1 + (round * 4 + w) % 16);
                let mut stdin = child.stdin.take().unwrap();
                let feeder = std::thread::spawn(move || {
                    for i in 0.. {
                        if stdin.write_all(line(round * 4 + w, i).as_bytes()).is_err() {
                            break;
                        }
                    }
                });
                let stdout = child.stdout.take().unwrap();
                let reader = std::thread::spawn(move || receipts(stdout));
                (child, feeder, reader)
            })
            .collect();
        for (w, (mut child, feeder, reader)) in running.into_iter().enumerate() {
            std::thread::sleep(Duration::from_millis(40 + 37 * ((round + w) as u64 % 5)));
            child.kill().unwrap(); // SIGKILL, mid-batch more often than not
            child.wait().unwrap();
            acked.extend(reader.join().unwrap());
            feeder.join().unwrap();
        }
        assert_all_present(&test, &acked);
    }
    assert!(
        acked.len() > 100,
        "too little was acknowledged: {}",
        acked.len()
    );
    // The ledger accepts appends after all that.
    test.open().append(records("final", 1)).unwrap();
}

/// A PostgreSQL crash (`pg_ctl stop -m immediate`) while writers append reaches them as
/// `Unavailable` errors; after the restart the same open ledgers append again, and every
/// acknowledged event survived.
#[test]
fn a_postgres_crash_while_writers_append_loses_no_acknowledged_event() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    if std::env::var("VELLUM_TEST_POSTGRES_URL").is_ok() {
        eprintln!("skipped: the server is not the tests' own (VELLUM_TEST_POSTGRES_URL)");
        return;
    }
    let _server = SERVER.write().unwrap();
    let test = TestLedger::new(&backend);
    let ledger = Arc::new(test.open());
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (ledger, stop) = (ledger.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut acked, mut unavailable, mut after_error) = (Vec::new(), 0, 0);
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match ledger.append(records(&format!("w{w}-{i}"), 5)) {
                        Ok(receipts) => {
                            after_error += usize::from(unavailable > 0);
                            acked.extend(receipts.into_iter().map(|r| (r.seq, r.event_id)));
                        }
                        Err(LedgerError::Unavailable(_)) => {
                            unavailable += 1;
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Err(other) => panic!("unexpected error: {other}"),
                    }
                }
                (acked, unavailable, after_error)
            })
        })
        .collect();
    let server = |action: &str| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/postgres/server.sh");
        let status = Command::new("bash")
            .args([script, action])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "server.sh {action}");
    };
    std::thread::sleep(Duration::from_millis(500));
    server("crash");
    std::thread::sleep(Duration::from_millis(500));
    server("ensure");
    std::thread::sleep(Duration::from_millis(1_500));
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    let (mut unavailable, mut after_error) = (0, 0);
    for writer in writers {
        let (a, u, e) = writer.join().unwrap();
        acked.extend(a);
        unavailable += u;
        after_error += e;
    }
    assert!(unavailable > 0, "the crash was never noticed");
    assert!(after_error > 0, "no append succeeded after the restart");
    ledger.checkpoint().unwrap();
    drop(ledger);
    eprintln!(
        "{} events acknowledged, {unavailable} appends refused as unavailable",
        acked.len()
    );
    assert_all_present(&test, &acked);
}

/// Over TLS (`sslmode=require`) the server's certificate is verified: trusted through
/// `PGSSLROOTCERT` it connects, with only the system's roots it is refused.
#[test]
fn postgres_over_tls_verifies_the_server_certificate() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let cert = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/postgres/ca.crt");
    if std::env::var("VELLUM_TEST_POSTGRES_URL").is_ok() || !std::path::Path::new(cert).exists() {
        eprintln!("skipped: not the tests' own server, or it offers no TLS (no openssl)");
        return;
    }
    let _server = SERVER.read().unwrap();
    let test = TestLedger::new(&backend);
    let url = test
        .location
        .to_string()
        .replace("sslmode=disable", "sslmode=require");
    let key = test.location.signing_key().unwrap();
    let ingest = |root: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vellum"));
        command
            .args(["ingest", "--ledger", &url, "--signing-key"])
            .arg(&key)
            .env_remove("PGSSLROOTCERT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(root) = root {
            command.env("PGSSLROOTCERT", root);
        }
        let mut child = command.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(line(0, 1).as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let trusted = ingest(Some(cert));
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert_eq!(receipts(&trusted.stdout[..]).len(), 1);
    let untrusted = ingest(None);
    assert_eq!(untrusted.status.code(), Some(6));
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert!(
        stderr.contains("TLS handshake") && stderr.contains("PGSSLROOTCERT"),
        "{stderr}"
    );
}
