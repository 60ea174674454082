//! The failure policy: nothing acknowledged is ever lost. An injected write or fsync error
//! fails its append only (the next one re-checks the stored tree; a damaged one stops
//! appends), and a full store is a clean error — on every storage backend; a full disk and
//! SIGKILL at random moments on SQLite files. Forgetting from the CLI, and a kill between
//! an erasure's record and its key shredding, on every backend.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

per_backend!(
    write_error_fails_only_its_append,
    fsync_error_is_never_acknowledged,
    a_torn_write_found_by_the_recheck_stops_appends,
    full_device_is_a_clean_error_that_does_not_poison,
    forgetting_a_subject_from_the_cli_keeps_proofs_and_copies_unreadable,
    a_kill_between_the_erasure_record_and_the_key_shredding_is_finished_on_open,
);

use crate::common;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::backend::{Backend, TestLedger};
use common::{AppendHook, assert_verifies, ledger_with_append_hook, new_ledger, records};
use vellum::ledger::store::sqlite::SqliteStore;
use vellum::ledger::store::{StoreError, StoreReader};
use vellum::{Ledger, LedgerError, LedgerOptions};

/// Which failure the next append meets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The write fails before anything reaches the file.
    Write,
    /// The data is written, then the sync reports an error (the data may or may not be
    /// durable — the caller must not be told it is).
    Fsync,
    /// The device is full.
    Full,
}

/// A ledger whose next append meets the armed fault, if any.
fn faulty(test: &TestLedger) -> (Ledger, Arc<Mutex<Option<Fault>>>) {
    let armed = Arc::new(Mutex::new(None));
    let fault = armed.clone();
    let hook: AppendHook =
        Box::new(
            move |store, entries, hashes, keys| match fault.lock().unwrap().take() {
                None => store.append(entries, hashes, keys),
                Some(Fault::Write) => Err(StoreError::Io("injected write error (EIO)".into())),
                Some(Fault::Fsync) => {
                    store.append(entries, hashes, keys)?;
                    Err(StoreError::Io("injected fsync error (EIO)".into()))
                }
                Some(Fault::Full) => Err(StoreError::Full("injected ENOSPC".into())),
            },
        );
    (ledger_with_append_hook(&test.location, hook), armed)
}

fn assert_present(store: &dyn StoreReader, acked: &[(u64, String)]) {
    let size = store.size().unwrap();
    let entries = store.entries(0, size).unwrap();
    for (seq, id) in acked {
        let (entry, _) = entries
            .get(*seq as usize)
            .unwrap_or_else(|| panic!("acknowledged entry {seq} lost"));
        assert_eq!(
            (&entry.seq, &entry.event.id),
            (seq, id),
            "acknowledged entry {seq} changed"
        );
    }
}

fn write_error_fails_only_its_append(backend: Backend) {
    let test = TestLedger::new(&backend);
    let (ledger, armed) = faulty(&test);
    let acked = ledger.append(records("ok", 3)).unwrap();
    *armed.lock().unwrap() = Some(Fault::Write);
    let error = ledger.append(records("lost", 2)).unwrap_err();
    assert!(
        matches!(error, LedgerError::Unavailable(ref m) if m.contains("EIO") && m.contains("nothing of this append was acknowledged")),
        "{error}"
    );
    // The next append re-checks the stored tree and carries on where the log really ends.
    let next = ledger.append(records("again", 1)).unwrap();
    assert_eq!(next[0].seq, 3, "the failed append left nothing behind");
    ledger.checkpoint().unwrap();
    drop(ledger);
    assert_present(
        test.reader().as_ref(),
        &acked
            .iter()
            .chain(&next)
            .map(|r| (r.seq, r.event_id.clone()))
            .collect::<Vec<_>>(),
    );
    assert!(test.report().ok());
}

fn fsync_error_is_never_acknowledged(backend: Backend) {
    let test = TestLedger::new(&backend);
    let (ledger, armed) = faulty(&test);
    ledger.append(records("ok", 2)).unwrap();
    *armed.lock().unwrap() = Some(Fault::Fsync);
    assert!(matches!(
        ledger.append(records("maybe", 2)),
        Err(LedgerError::Unavailable(_))
    ));
    // The unacknowledged entries did reach the store here; the next append follows them
    // (its sequence number comes from the store, not from what this writer believed).
    let next = ledger.append(records("after", 1)).unwrap();
    assert_eq!(next[0].seq, 4);
    drop(ledger);
    let ledger = test.open();
    ledger.append(records("again", 1)).unwrap();
    drop(ledger);
    assert!(test.report().ok());
}

fn a_torn_write_found_by_the_recheck_stops_appends(backend: Backend) {
    let test = TestLedger::new(&backend);
    let torn = Arc::new(Mutex::new(false));
    let armed = torn.clone();
    let hook: AppendHook = Box::new(move |store, entries, hashes, keys| {
        match std::mem::take(&mut *armed.lock().unwrap()) {
            false => store.append(entries, hashes, keys),
            // A store that lost part of a transaction: entries without their tree hashes.
            true => {
                store.append(entries, &[], keys)?;
                Err(StoreError::Io("injected torn write (EIO)".into()))
            }
        }
    });
    let ledger = ledger_with_append_hook(&test.location, hook);
    ledger.append(records("ok", 2)).unwrap();
    *torn.lock().unwrap() = true;
    assert!(ledger.append(records("torn", 2)).is_err());
    for _ in 0..2 {
        let error = ledger.append(records("refused", 1)).unwrap_err();
        assert!(
            matches!(error, LedgerError::Unavailable(ref m) if m.contains("re-checked") && m.contains("Merkle tree")),
            "{error}"
        );
    }
    assert!(matches!(
        ledger.checkpoint(),
        Err(LedgerError::Unavailable(_))
    ));
}

fn full_device_is_a_clean_error_that_does_not_poison(backend: Backend) {
    let test = TestLedger::new(&backend);
    let (ledger, armed) = faulty(&test);
    ledger.append(records("ok", 2)).unwrap();
    *armed.lock().unwrap() = Some(Fault::Full);
    assert!(matches!(
        ledger.append(records("nospace", 2)),
        Err(LedgerError::Full(_))
    ));
    let next = ledger.append(records("later", 1)).unwrap();
    assert_eq!(next[0].seq, 2);
    drop(ledger);
    assert!(test.report().ok());
}

/// Appends 8 KiB events until the ledger reports `Full`; returns what was acknowledged.
fn fill(ledger: &Ledger) -> Vec<(u64, String)> {
    let big = "x".repeat(8 << 10);
    let mut acked = Vec::new();
    for i in 0..10_000 {
        let mut record = records(&format!("fill-{i}"), 1);
        record[0].event.payload = vellum::event::Payload::from_json(format!("\"{big}\"")).unwrap();
        match ledger.append(record) {
            Ok(receipts) => acked.extend(receipts.into_iter().map(|r| (r.seq, r.event_id))),
            Err(LedgerError::Full(_)) => return acked,
            Err(other) => panic!("expected a full-disk error, got {other}"),
        }
    }
    panic!("the size limit was never reached");
}

#[test]
fn size_limited_database_fills_up_cleanly() {
    let (_dir, path) = new_ledger();
    let writer = SqliteStore::open(&path).unwrap();
    writer.set_max_pages(200).unwrap();
    let reader = SqliteStore::open(&path).unwrap();
    let ledger = Ledger::open_with(
        &path.as_path().into(),
        Box::new(writer),
        Box::new(reader),
        LedgerOptions::default(),
    )
    .unwrap();
    let acked = fill(&ledger);
    assert!(!acked.is_empty());
    drop(ledger);
    assert_present(&SqliteStore::open(&path).unwrap(), &acked);
    assert_verifies(&path);
}

#[test]
fn full_tmpfs_fills_up_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(dir.path())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!(
            "NOTE: cannot mount a tmpfs here (needs root); the size-limited database test covers a full device"
        );
        return;
    }
    let path = dir.path().join("audit.db");
    let result = std::panic::catch_unwind(|| {
        Ledger::init(&path, "vellum/tmpfs").unwrap();
        let ledger = Ledger::open(&path, LedgerOptions::default()).unwrap();
        let acked = fill(&ledger);
        assert!(!acked.is_empty());
        drop(ledger);
        assert_present(&SqliteStore::open(&path).unwrap(), &acked);
        assert_verifies(&path);
    });
    let _ = Command::new("umount").arg(dir.path()).status();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// A tiny xorshift generator: the trials' randomness, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_entry() {
    let seed = std::env::var("VELLUM_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash trials seed: {seed} (set VELLUM_CRASH_SEED to replay)");
    let mut rng = Rng(seed);
    let (_dir, path) = new_ledger();
    let mut acked: Vec<(u64, String)> = Vec::new();
    for trial in 0..50 {
        let batch_size = 1 + rng.next(16);
        let mut child = Command::new(env!("CARGO_BIN_EXE_vellum"))
            .args([
                "ingest",
                "--ledger",
                path.to_str().unwrap(),
                "--batch-size",
                &batch_size.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || {
            for i in 0.. {
                let line = format!(
                    "{{\"id\":\"t{trial}-{i}\",\"occurred_at\":\"2026-11-22T10:00:00Z\",\"kind\":\"tool.call\",\"payload\":{{\"i\":{i}}}}}\n"
                );
                if stdin.write_all(line.as_bytes()).is_err() {
                    break;
                }
            }
        });
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
                    break;
                };
                let receipt = &value["receipt"];
                seen.push((
                    receipt["seq"].as_u64().unwrap(),
                    receipt["event_id"].as_str().unwrap().to_string(),
                ));
            }
            seen
        });
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(20 + rng.next(200)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let seen = reader.join().unwrap();
        feeder.join().unwrap();
        acked.extend(seen);
        assert!(started.elapsed() < Duration::from_secs(30));
        // Every acknowledged entry so far survives, and the ledger reopens cleanly.
        assert_present(&SqliteStore::open(&path).unwrap(), &acked);
    }
    assert!(
        acked.len() > 50,
        "the trials acknowledged too little to mean anything: {}",
        acked.len()
    );
    let store = SqliteStore::open(&path).unwrap();
    let size = store.size().unwrap();
    let mut seqs: Vec<u64> = acked.iter().map(|(s, _)| *s).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(
        seqs.len(),
        acked.len(),
        "a sequence number was acknowledged twice"
    );
    drop(store);
    assert_verifies(&path);
    eprintln!(
        "{} acknowledged entries across 50 kills; ledger has {size}",
        acked.len()
    );
    // The ledger still accepts appends after all that.
    Ledger::open(&path, LedgerOptions::default())
        .unwrap()
        .append(records("final", 1))
        .unwrap();
}

/// `--ledger …` (and, on PostgreSQL, the signing key) for the CLI.
fn cli_ledger(test: &TestLedger) -> Vec<String> {
    match test.location.backend() {
        vellum::ledger::store::Backend::Sqlite(path) => {
            vec!["--ledger".into(), path.display().to_string()]
        }
        vellum::ledger::store::Backend::Postgres(url) => vec![
            "--ledger".into(),
            url.clone(),
            "--signing-key".into(),
            test.location.signing_key().unwrap().display().to_string(),
        ],
    }
}

/// Runs `vellum` with `args`, `stdin` and extra environment; returns (exit code, stdout,
/// stderr).
fn vellum_cli(args: &[String], stdin: &str, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vellum"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `vellum <command> --ledger … <rest>`, which must exit 0; returns stdout.
fn ok(test: &TestLedger, command: &str, rest: &[&str], stdin: &str) -> String {
    let mut args = vec![command.to_string()];
    args.extend(cli_ledger(test));
    args.extend(rest.iter().map(|s| s.to_string()));
    let (code, out, err) = vellum_cli(&args, stdin, &[]);
    assert_eq!(code, Some(0), "vellum {args:?}: {err}");
    out
}

/// Six events for subjects ada (even) and bob (odd) of tenant acme.
fn ada_and_bob() -> String {
    (0..6)
        .map(|i| {
            let who = if i % 2 == 0 { "ada" } else { "bob" };
            format!(
                "{{\"id\":\"e{i}\",\"occurred_at\":\"2026-11-22T10:00:00Z\",\"tenant\":\"acme\",\
                 \"kind\":\"tool.call\",\"payload\":{{\"note\":\"{who}-private-{i}\"}},\
                 \"labels\":{{\"data_subject\":\"{who}\"}}}}\n"
            )
        })
        .collect()
}

fn forgetting_a_subject_from_the_cli_keeps_proofs_and_copies_unreadable(backend: Backend) {
    let test = TestLedger::new(&backend);
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name).display().to_string();
    ok(&test, "ingest", &[], &ada_and_bob());
    ok(&test, "checkpoint", &["--out", &file("kept.note")], "");
    std::fs::write(file("bob.json"), ok(&test, "prove", &["1"], "")).unwrap();
    // A copy of the ledger file taken before the erasure (a backup).
    let copy = test.location.file().map(|path| {
        let copy = dir.path().join("backup.db");
        std::fs::copy(path, &copy).unwrap();
        copy
    });

    let report = ok(
        &test,
        "erase",
        &["--subject", "ada", "--reason", "GDPR art. 17"],
        "",
    );
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["entries_erased"], 3, "{report}");

    let vkey = test.location.verifier_key().unwrap().display().to_string();
    ok(
        &test,
        "verify",
        &[
            "--trusted-key",
            &vkey,
            "--trusted-checkpoint",
            &file("kept.note"),
        ],
        "",
    );
    let (code, _, err) = vellum_cli(
        &[
            "check-proof".into(),
            "--key-file".into(),
            vkey.clone(),
            file("bob.json"),
        ],
        "",
        &[],
    );
    assert_eq!(code, Some(0), "{err}");
    let entries = ok(&test, "query", &[], "");
    assert!(!entries.contains("ada-private"), "{entries}");
    for i in [1, 3, 5] {
        assert!(entries.contains(&format!("bob-private-{i}")), "{entries}");
    }
    assert!(entries.contains("\"kind\":\"vellum.erasure\""));
    if let (Some(copy), Some(keys)) = (copy, test.location.key_store_file()) {
        // The copy read with the key store as it is now: ada's entries do not open.
        let args = [
            "query".to_string(),
            "--ledger".into(),
            copy.display().to_string(),
            "--key-store".into(),
            keys.display().to_string(),
            "--verifier-key".into(),
            vkey.clone(),
        ];
        let (code, out, err) = vellum_cli(&args, "", &[]);
        assert_eq!(code, Some(0), "{err}");
        assert!(
            !out.contains("ada-private") && out.contains("bob-private-1"),
            "{out}"
        );
        let bytes = std::fs::read(&copy).unwrap();
        assert!(!bytes.windows(11).any(|w| w == b"ada-private"));
    }
    // An insider removes one of bob's contents with a SQL shell: a new tamper class.
    test.insider("DELETE FROM contents WHERE seq = 3");
    let mut args = vec!["verify".to_string()];
    args.extend(cli_ledger(&test));
    let (code, _, err) = vellum_cli(&args, "", &[]);
    assert_eq!(code, Some(7), "{err}");
    assert!(
        err.contains("first bad sequence number 3") && err.contains("erased-without-record"),
        "{err}"
    );
}

fn a_kill_between_the_erasure_record_and_the_key_shredding_is_finished_on_open(backend: Backend) {
    let test = TestLedger::new(&backend);
    ok(&test, "ingest", &[], &ada_and_bob());
    let mut args = vec!["erase".to_string()];
    args.extend(cli_ledger(&test));
    args.extend(["--subject", "ada", "--reason", "r"].map(String::from));
    let (code, _, _) = vellum_cli(
        &args,
        "",
        &[("VELLUM_TEST_CRASH_AFTER_ERASURE_RECORD", "1")],
    );
    assert_eq!(code, None, "killed by a signal");
    // The record is committed; ada's key is still in the key store.
    let keys = test.location.open_keys(false).unwrap();
    let ada = keys.subject_hash("ada");
    assert_eq!(keys.find(None, Some(&ada)).unwrap().len(), 1);
    drop(keys);
    // Opening the ledger for writing finishes the erasure: record and shredded key.
    ok(&test, "checkpoint", &[], "");
    let keys = test.location.open_keys(false).unwrap();
    assert!(keys.find(None, Some(&ada)).unwrap().is_empty());
    let entries = ok(&test, "query", &[], "");
    assert!(!entries.contains("ada-private") && entries.contains("vellum.erasure"));
    let report = test.report();
    assert!(report.ok(), "{:?}", report.findings);
    assert_eq!(report.entries_erased, 3);
}
