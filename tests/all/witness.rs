//! Witness cosigning (C2SP tlog-witness, tlog-cosignature): `vellum witness serve` on
//! loopback cosigns a ledger's checkpoints, the ledger stores the cosignatures, and `vellum
//! verify --witness-key` requires them. Attackers: a forged ledger with its own keys, an
//! insider holding the log's signing key who rewrites history, a rolled-back copy, and an
//! insider who edits or deletes the stored cosignatures. The protocol's status codes are
//! checked over HTTP.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use crate::common;
mod monitor;
mod quorum;
mod side_effects;
mod timestamp;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::backend::{Backend, TestLedger};
use common::records;
use vellum::ledger::cosignature::CosignatureVerifier;
use vellum::ledger::verify::{Anchor, TamperClass, verify_anchored};
use vellum::ledger::witness::{Witness, WitnessError};
use vellum::{Ledger, LedgerOptions};

/// A `vellum witness serve` process trusting one log key, stopped on drop.
struct WitnessProcess {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl WitnessProcess {
    /// Creates a witness (`witness init`) and serves it for the log whose verifier key is
    /// in `log_key`.
    fn start(log_key: &Path) -> Self {
        Self::start_named(log_key, "witness.test/w1")
    }

    /// [`WitnessProcess::start`] with the witness's own name.
    fn start_named(log_key: &Path, name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let init = vellum()
            .args(["witness", "init", "--name", name, "--key"])
            .arg(dir.path().join("w.key"))
            .arg("--state")
            .arg(dir.path().join("w.db"))
            .output()
            .unwrap();
        assert!(init.status.success(), "{init:?}");
        let (child, url) = serve(dir.path(), log_key);
        Self { child, url, dir }
    }

    /// Restarts the server (on a fresh port), with the same key and state.
    fn restart(&mut self, log_key: &Path) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.child, self.url) = serve(self.dir.path(), log_key);
    }

    fn key_file(&self) -> PathBuf {
        self.dir.path().join("w.pub")
    }

    fn vkey(&self) -> String {
        std::fs::read_to_string(self.key_file()).unwrap()
    }

    fn client(&self) -> Witness {
        Witness::new(&self.url, &self.vkey()).unwrap()
    }

    /// The kinds of evidence the witness kept (`vellum witness evidence`), oldest first.
    fn evidence(&self) -> Vec<String> {
        let out = vellum()
            .args(["witness", "evidence", "--state"])
            .arg(self.dir.path().join("w.db"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|line| {
                let evidence: serde_json::Value = serde_json::from_str(line).unwrap();
                evidence["kind"].as_str().unwrap().to_string()
            })
            .collect()
    }
}

/// Starts `vellum witness serve` with the key and state in `dir`; returns the process and
/// the URL it prints.
fn serve(dir: &Path, log_key: &Path) -> (Child, String) {
    let mut child = vellum()
        .args(["witness", "serve", "--listen", "127.0.0.1:0", "--key"])
        .arg(dir.join("w.key"))
        .arg("--state")
        .arg(dir.join("w.db"))
        .arg("--log-key")
        .arg(log_key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("no address from the witness: {line:?}"))
        .to_string();
    (child, url)
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn vellum() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vellum"))
}

fn verifier_key_file(test: &TestLedger) -> PathBuf {
    test.location.verifier_key().unwrap()
}

fn witnessed_options(witness: &WitnessProcess) -> LedgerOptions {
    LedgerOptions {
        witnesses: vec![witness.client()],
        ..LedgerOptions::default()
    }
}

/// The report of `verify` requiring the witness's cosignature.
fn verify_witnessed(test: &TestLedger, witness: &WitnessProcess) -> (Vec<TamperClass>, Vec<u64>) {
    let anchor = Anchor {
        key: vellum::ledger::read_vkey(&test.location).unwrap(),
        trusted_key: false,
        checkpoint: None,
        witnesses: vec![CosignatureVerifier::new(&witness.vkey()).unwrap()],
        policy: None,
        tsa: None,
    };
    let report = verify_anchored(test.reader().as_ref(), &anchor, None, &mut |_, _| {}).unwrap();
    (
        report.findings.iter().map(|f| f.class).collect(),
        report.witnessed.iter().map(|(_, size)| *size).collect(),
    )
}

fn checkpoint_size(note: &str) -> u64 {
    note.lines().nth(1).unwrap().parse().unwrap()
}

fn the_witness_cosigns_each_checkpoint_and_verify_requires_it(backend: Backend) {
    let test = TestLedger::new(&backend);
    let witness = WitnessProcess::start(&verifier_key_file(&test));
    let ledger = test.open_with(witnessed_options(&witness));
    for round in 0..3 {
        ledger.append(records(&format!("r{round}-"), 5)).unwrap();
        let note = ledger.checkpoint().unwrap();
        let size = checkpoint_size(&note);
        let lines = ledger.cosignatures(size).unwrap();
        assert_eq!(lines.len(), 1, "checkpoint {size}: {lines:?}");
        // The cosigned checkpoint verifies with the witness's key alone.
        let key = CosignatureVerifier::new(&witness.vkey()).unwrap();
        key.verify(&format!("{note}{}", lines[0])).unwrap();
    }
    drop(ledger);
    assert_eq!(verify_witnessed(&test, &witness), (vec![], vec![15]));
    // The CLI says so, and fails without the cosignatures (an insider deleted them).
    let mut verify = vellum();
    verify
        .args([
            "verify",
            "--ledger",
            &test.location.to_string(),
            "--witness-key",
        ])
        .arg(witness.key_file());
    if let Backend::Postgres(_) = backend {
        verify
            .arg("--signing-key")
            .arg(test.location.signing_key().unwrap());
    }
    let out = verify.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("cosigned the first 15 entries"), "{stderr}");
    test.insider("DELETE FROM cosignatures");
    let (classes, witnessed) = verify_witnessed(&test, &witness);
    assert_eq!(
        (classes, witnessed),
        (vec![TamperClass::Unwitnessed], vec![])
    );
    let out = verify.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("unwitnessed"), "{stderr}");
}

fn an_edited_cosignature_is_a_bad_checkpoint(backend: Backend) {
    let test = TestLedger::new(&backend);
    let witness = WitnessProcess::start(&verifier_key_file(&test));
    let ledger = test.open_with(witnessed_options(&witness));
    ledger.append(records("a", 4)).unwrap();
    ledger.checkpoint().unwrap();
    drop(ledger);
    // Changed bytes in the cosignature break it.
    test.insider(
        "UPDATE cosignatures SET line = replace(line, substr(line, length(line) - 20, 4), 'AAAA')",
    );
    let (classes, witnessed) = verify_witnessed(&test, &witness);
    assert!(
        classes.contains(&TamperClass::BadCheckpoint)
            && classes.contains(&TamperClass::Unwitnessed),
        "{classes:?}"
    );
    assert!(witnessed.is_empty());
}

per_backend!(
    the_witness_cosigns_each_checkpoint_and_verify_requires_it,
    an_edited_cosignature_is_a_bad_checkpoint,
);

#[test]
fn a_forged_ledger_has_no_cosignature_and_the_witness_refuses_its_key() {
    let real = TestLedger::new(&Backend::Sqlite);
    let witness = WitnessProcess::start(&verifier_key_file(&real));
    let ledger = real.open_with(witnessed_options(&witness));
    ledger.append(records("e", 300)).unwrap();
    ledger.checkpoint().unwrap();
    drop(ledger);
    // The forger re-creates the ledger with the first 200 events and its own new keys
    // (the same origin), and asks the same witness.
    let forged = TestLedger::new(&Backend::Sqlite);
    let ledger = forged.open_with(witnessed_options(&witness));
    ledger.append(records("e", 200)).unwrap();
    let note = ledger.checkpoint().unwrap();
    assert!(
        ledger
            .cosignatures(checkpoint_size(&note))
            .unwrap()
            .is_empty()
    );
    let refused = witness.client().cosign(&note, 200, 0, &mut |_| Ok(vec![]));
    assert!(
        matches!(&refused, Err(WitnessError::Failed { reason, .. }) if reason.contains("HTTP 403")),
        "{refused:?}"
    );
    drop(ledger);
    assert_eq!(
        verify_witnessed(&forged, &witness),
        (vec![TamperClass::Unwitnessed], vec![])
    );
}

#[test]
fn an_insider_with_the_signing_key_cannot_get_another_history_cosigned() {
    let real = TestLedger::new(&Backend::Sqlite);
    let witness = WitnessProcess::start(&verifier_key_file(&real));
    let ledger = real.open_with(witnessed_options(&witness));
    ledger.append(records("e", 6)).unwrap();
    ledger.checkpoint().unwrap();
    drop(ledger);
    // A second ledger signed with the real key: the same log to the witness, other entries.
    let fork_dir = tempfile::tempdir().unwrap();
    let fork_path = fork_dir.path().join("audit.db");
    vellum::ledger::store::sqlite::SqliteStore::create(&fork_path, "vellum/test").unwrap();
    for ext in ["key", "pub"] {
        std::fs::copy(
            real.location
                .file()
                .unwrap()
                .with_extension(format!("db.{ext}")),
            fork_path.with_extension(format!("db.{ext}")),
        )
        .unwrap();
    }
    let fork = Ledger::open(&fork_path, witnessed_options(&witness)).unwrap();
    fork.append(records("other", 6)).unwrap();
    let same_size = fork.checkpoint().unwrap();
    assert!(
        fork.cosignatures(6).unwrap().is_empty(),
        "same size, other root"
    );
    let refused = witness
        .client()
        .cosign(&same_size, 6, 6, &mut |_| Ok(vec![]));
    assert!(
        matches!(&refused, Err(WitnessError::Refused { reason, .. }) if reason.contains("another tree")),
        "{refused:?}"
    );
    fork.append(records("more", 4)).unwrap();
    let larger = fork.checkpoint().unwrap();
    assert_eq!(checkpoint_size(&larger), 10);
    assert!(
        fork.cosignatures(10).unwrap().is_empty(),
        "no proof from the witnessed tree"
    );
    let refused = witness.client().cosign(&larger, 10, 6, &mut |old| {
        fork.prove_consistency(old, 10).map(|p| p.path)
    });
    assert!(
        matches!(&refused, Err(WitnessError::Refused { reason, .. }) if reason.contains("does not match")),
        "{refused:?}"
    );
    // The fork of the held size and the larger tree without a valid proof are kept, each
    // once (the ledger asked about `larger` too when it signed it).
    assert_eq!(witness.evidence(), ["fork", "bad-proof"]);
    // The re-signed ledger verifies with the log's key, but not with the witness's.
    drop(fork);
    let verify = |witness_key: Option<&Path>| {
        let mut command = vellum();
        command.args(["verify", "--ledger"]).arg(&fork_path);
        if let Some(key) = witness_key {
            command.arg("--witness-key").arg(key);
        }
        command.output().unwrap()
    };
    assert_eq!(verify(None).status.code(), Some(0));
    let out = verify(Some(&witness.key_file()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("unwitnessed"), "{stderr}");
}

#[test]
fn a_rolled_back_copy_cannot_be_cosigned_and_the_state_survives_a_restart() {
    let test = TestLedger::new(&Backend::Sqlite);
    let path = test.location.file().unwrap().to_path_buf();
    let mut witness = WitnessProcess::start(&verifier_key_file(&test));
    let ledger = test.open_with(witnessed_options(&witness));
    ledger.append(records("a", 3)).unwrap();
    ledger.checkpoint().unwrap();
    drop(ledger);
    let copy = test.dir.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    let ledger = test.open_with(witnessed_options(&witness));
    ledger.append(records("b", 3)).unwrap();
    ledger.checkpoint().unwrap();
    drop(ledger);
    // The witness restarts (new port) and keeps what it holds.
    witness.restart(&verifier_key_file(&test));
    std::fs::copy(&copy, &path).unwrap();
    let out = vellum()
        .args(["checkpoint", "--ledger"])
        .arg(&path)
        .args(["--witness", &witness.url, "--witness-key"])
        .arg(witness.key_file())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("holds a checkpoint of 6 entries, larger than this one (3)"),
        "{stderr}"
    );
}

/// Raw `add-checkpoint` requests: each status code of the protocol.
#[test]
fn the_add_checkpoint_endpoint_answers_with_the_protocol_status_codes() {
    let test = TestLedger::new(&Backend::Sqlite);
    let witness = WitnessProcess::start(&verifier_key_file(&test));
    let ledger = test.open();
    ledger.append(records("a", 4)).unwrap();
    let four = ledger.checkpoint().unwrap();
    ledger.append(records("b", 4)).unwrap();
    let eight = ledger.checkpoint().unwrap();
    let proof: String = ledger
        .prove_consistency(4, 8)
        .unwrap()
        .path
        .iter()
        .map(|h| format!("{}\n", h.to_base64()))
        .collect();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let post = |body: String| {
        let mut response = agent
            .post(format!("{}/add-checkpoint", witness.url))
            .send(body.as_bytes())
            .unwrap();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = response.body_mut().read_to_string().unwrap();
        (response.status().as_u16(), content_type, text)
    };
    let other_log = TestLedger::new(&Backend::Sqlite);
    let stranger = other_log.open();
    stranger.append(records("x", 1)).unwrap();
    let stranger_note = stranger
        .checkpoint()
        .unwrap()
        .replace("vellum/test", "vellum/other");
    assert_eq!(
        post(format!("old 0\n\n{stranger_note}")).0,
        404,
        "unknown origin"
    );
    let forged = other_log.open().checkpoint().unwrap();
    assert_eq!(post(format!("old 0\n\n{forged}")).0, 403, "another key");
    assert_eq!(
        post(format!("old 9\n\n{four}")).0,
        400,
        "old size past the checkpoint"
    );
    assert_eq!(post("old x\n\n".into()).0, 400, "malformed");
    let (status, _, line) = post(format!("old 0\n\n{four}"));
    assert_eq!(status, 200);
    CosignatureVerifier::new(&witness.vkey())
        .unwrap()
        .verify_line(&four, &line)
        .unwrap();
    let (status, content_type, body) = post(format!("old 0\n\n{eight}"));
    assert_eq!(
        (status, content_type.as_str(), body.as_str()),
        (409, "text/x.tlog.size", "4\n")
    );
    let wrong: String = proof.replace(&proof[..4], "AAAA");
    assert_eq!(post(format!("old 4\n{wrong}\n{eight}")).0, 422, "bad proof");
    assert_eq!(post(format!("old 4\n{proof}\n{eight}")).0, 200);
    assert_eq!(
        post(format!("old 8\n\n{eight}")).0,
        200,
        "the same tree again"
    );
    assert_eq!(
        post(format!("old 4\n{proof}\n{eight}")).2,
        "8\n",
        "a rollback is a conflict"
    );
}

#[test]
fn a_witness_never_starts_without_its_state_nor_overwrites_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("w.key");
    let init = |state: &str| {
        vellum()
            .args(["witness", "init", "--name", "w", "--key"])
            .arg(&key)
            .arg("--state")
            .arg(dir.path().join(state))
            .output()
            .unwrap()
    };
    assert!(init("w.db").status.success());
    let again = init("other.db");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    let (_, log_vkey) = vellum::ledger::checkpoint::generate_keys("log").unwrap();
    std::fs::write(dir.path().join("log.pub"), log_vkey).unwrap();
    std::fs::write(dir.path().join("bad.pub"), "not a key").unwrap();
    let serve = |state: &str, log_key: &str| {
        vellum()
            .args(["witness", "serve", "--listen", "127.0.0.1:0", "--key"])
            .arg(&key)
            .arg("--state")
            .arg(dir.path().join(state))
            .arg("--log-key")
            .arg(dir.path().join(log_key))
            .output()
            .unwrap()
    };
    let missing = serve("lost.db", "log.pub");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("never starts from empty state"), "{stderr}");
    let bad_key = serve("w.db", "bad.pub");
    let stderr = String::from_utf8_lossy(&bad_key.stderr);
    assert!(stderr.contains("is not a log verifier key"), "{stderr}");
}
