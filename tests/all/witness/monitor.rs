//! `vellum monitor` over exported tiles raises each alert: a rollback, a fork by an insider
//! holding the signing key, a key change, an unwitnessed checkpoint and a stall; and it
//! follows a log that only grows without one.

use std::path::Path;

use super::{vellum, verifier_key_file};
use crate::common::backend::{Backend, TestLedger};
use crate::common::records;
use vellum::Ledger;
use vellum::ledger::cosignature::Cosigner;

fn export(ledger: &Path, tiles: &Path) {
    let out = vellum()
        .args(["export", "--ledger"])
        .arg(ledger)
        .arg("--tiles")
        .arg(tiles)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// One `monitor --once`: its exit code and standard error.
fn monitor(tiles: &Path, key: &Path, state: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = vellum()
        .args(["monitor", "--once", "--url"])
        .arg(tiles)
        .arg("--key")
        .arg(key)
        .arg("--state")
        .arg(state)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn the_monitor_raises_each_alert_and_follows_a_growing_log() {
    let real = TestLedger::new(&Backend::Sqlite);
    let path = real.location.file().unwrap().to_path_buf();
    let key = verifier_key_file(&real);
    let dir = tempfile::tempdir().unwrap();
    let (tiles, state) = (dir.path().join("tiles"), dir.path().join("state.json"));
    let alerts = dir.path().join("alerts");
    let alert_command = format!("echo \"$VELLUM_ALERT\" >> '{}'", alerts.display());
    let with_alerts = ["--alert-command", alert_command.as_str()];

    let ledger = real.open();
    ledger.append(records("a", 10)).unwrap();
    drop(ledger);
    export(&path, &tiles);
    assert_eq!(monitor(&tiles, &key, &state, &[]).0, Some(0));
    let old_checkpoint = std::fs::read(tiles.join("checkpoint")).unwrap();

    // The log grows: the tiles prove it extends what was seen.
    let ledger = real.open();
    ledger.append(records("b", 300)).unwrap();
    drop(ledger);
    export(&path, &tiles);
    let (code, stderr) = monitor(&tiles, &key, &state, &with_alerts);
    assert_eq!(code, Some(0), "{stderr}");

    // Rollback: an older checkpoint served again.
    let current = std::fs::read(tiles.join("checkpoint")).unwrap();
    std::fs::write(tiles.join("checkpoint"), &old_checkpoint).unwrap();
    let (code, stderr) = monitor(&tiles, &key, &state, &with_alerts);
    assert_eq!(code, Some(7), "{stderr}");
    assert!(stderr.contains("ALERT rollback"), "{stderr}");
    std::fs::write(tiles.join("checkpoint"), &current).unwrap();

    // Stall: nothing new for longer than allowed.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (code, stderr) = monitor(
        &tiles,
        &key,
        &state,
        &["--stall-secs", "0", "--alert-command", &alert_command],
    );
    assert_eq!(code, Some(7), "{stderr}");
    assert!(stderr.contains("ALERT stall"), "{stderr}");

    // Unwitnessed: a policy whose witness never cosigned.
    let (_, witness_key) = Cosigner::generate("witness.test/never").unwrap();
    let policy = dir.path().join("one.policy");
    std::fs::write(&policy, format!("witness w {witness_key}\nquorum w\n")).unwrap();
    let policy_arg = policy.to_string_lossy().to_string();
    let (code, stderr) = monitor(&tiles, &key, &state, &["--witness-policy", &policy_arg]);
    assert_eq!(code, Some(7), "{stderr}");
    assert!(
        stderr.contains("ALERT unwitnessed") && stderr.contains("by w"),
        "{stderr}"
    );

    // Fork: an insider with the signing key writes another history of the same log.
    let fork_dir = tempfile::tempdir().unwrap();
    let fork_path = fork_dir.path().join("audit.db");
    vellum::ledger::store::sqlite::SqliteStore::create(&fork_path, "vellum/test").unwrap();
    for ext in ["key", "pub"] {
        std::fs::copy(
            path.with_extension(format!("db.{ext}")),
            fork_path.with_extension(format!("db.{ext}")),
        )
        .unwrap();
    }
    let fork = Ledger::open(&fork_path, vellum::LedgerOptions::default()).unwrap();
    fork.append(records("other", 400)).unwrap();
    drop(fork);
    let fork_tiles = dir.path().join("fork-tiles");
    export(&fork_path, &fork_tiles);
    let (code, stderr) = monitor(&fork_tiles, &key, &state, &with_alerts);
    assert_eq!(code, Some(7), "{stderr}");
    assert!(stderr.contains("ALERT fork"), "{stderr}");

    // Key change: a log signed by another key at the same place.
    let other = TestLedger::new(&Backend::Sqlite);
    let ledger = other.open();
    ledger.append(records("c", 5)).unwrap();
    drop(ledger);
    let other_tiles = dir.path().join("other-tiles");
    export(other.location.file().unwrap(), &other_tiles);
    let (code, stderr) = monitor(&other_tiles, &key, &state, &with_alerts);
    assert_eq!(code, Some(7), "{stderr}");
    assert!(stderr.contains("ALERT key-change"), "{stderr}");

    // A fork or a key change never moves the trusted state: the real log still checks.
    let metrics = dir.path().join("monitor.prom");
    let metrics_arg = metrics.to_string_lossy().to_string();
    let (code, stderr) = monitor(&tiles, &key, &state, &["--metrics-file", &metrics_arg]);
    assert_eq!(code, Some(0), "{stderr}");
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        text.contains("vellum_monitor_checkpoint_size 310"),
        "{text}"
    );
    assert!(
        text.contains("vellum_monitor_alert{kind=\"fork\"} 0"),
        "{text}"
    );
    let raised = std::fs::read_to_string(&alerts).unwrap();
    assert_eq!(
        raised.lines().collect::<Vec<_>>(),
        ["rollback", "stall", "fork", "key-change"]
    );
}
