//! Witness quorums (`--witness-policy`) and C2SP `.tlog-proof` files: three witnesses, one
//! of them down. 2-of-3 holds for `checkpoint`, `verify` and `check-proof`; 3-of-3 fails
//! naming the missing one. A proof with a flipped byte, checked with another log's key, or
//! short of the quorum is refused with a named reason.

use std::path::{Path, PathBuf};
use std::process::Output;

use super::{WitnessProcess, vellum, verifier_key_file};
use crate::common::backend::{Backend, TestLedger};
use crate::common::records;
use vellum::ledger::cosignature::Cosigner;

/// A URL where nothing listens: a port bound, then let go.
fn down_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn run(args: &[&str], extra: &[&Path]) -> (Option<i32>, String, String) {
    let out: Output = vellum().args(args).args(extra).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn two_of_three_holds_with_one_witness_down_and_three_of_three_names_it() {
    let test = TestLedger::new(&Backend::Sqlite);
    let log_key = verifier_key_file(&test);
    let w1 = WitnessProcess::start_named(&log_key, "witness.test/w1");
    let w2 = WitnessProcess::start_named(&log_key, "witness.test/w2");
    let (_, w3_key) = Cosigner::generate("witness.test/w3").unwrap();
    let ledger = test.open();
    ledger.append(records("q", 10)).unwrap();
    drop(ledger);

    let dir = tempfile::tempdir().unwrap();
    let policy = |name: &str, threshold: &str| -> PathBuf {
        let file = dir.path().join(name);
        let text = format!(
            "# three witnesses, one of them down\n\
             witness w1 {} {}\nwitness w2 {} {}\nwitness w3 {} {}\n\
             group witnesses {threshold} w1 w2 w3\nquorum witnesses\n",
            w1.vkey().trim(),
            w1.url,
            w2.vkey().trim(),
            w2.url,
            w3_key,
            down_url()
        );
        std::fs::write(&file, text).unwrap();
        file
    };
    let two = policy("two.policy", "2");
    let all = policy("all.policy", "all");
    let ledger_path = test.location.to_string();
    let l = ledger_path.as_str();

    // 2-of-3: the checkpoint counts, though w3 could not be reached.
    let (code, stdout, stderr) = run(&["checkpoint", "--ledger", l, "--witness-policy"], &[&two]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.matches("— witness.test/").count(), 2, "{stdout}");
    assert!(
        stderr.contains("not cosigned") && stderr.contains("127.0.0.1"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["verify", "--ledger", l, "--witness-policy"], &[&two]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("the witness quorum 2 of {w1, w2, w3} cosigned the first 10 entries"),
        "{stderr}"
    );

    // 3-of-3: refused, naming w3.
    let (code, _, stderr) = run(&["checkpoint", "--ledger", l, "--witness-policy"], &[&all]);
    assert_eq!(code, Some(6), "{stderr}");
    assert!(stderr.contains("no valid cosignature by w3"), "{stderr}");
    let (code, _, stderr) = run(&["verify", "--ledger", l, "--witness-policy"], &[&all]);
    assert_eq!(code, Some(7), "{stderr}");
    assert!(
        stderr.contains("unwitnessed") && stderr.contains("lacks [w3]"),
        "{stderr}"
    );

    // One file proves entry 3 to an auditor, with the cosignatures in it.
    let (code, proof, stderr) = run(
        &["prove", "--ledger", l, "3", "--format", "tlog-proof"],
        &[],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        proof.starts_with("c2sp.org/tlog-proof@v1\nextra "),
        "{proof}"
    );
    assert!(proof.contains("\nindex 3\n"), "{proof}");
    let file = dir.path().join("entry-3.tlog-proof");
    std::fs::write(&file, &proof).unwrap();
    let key = log_key.to_string_lossy().to_string();
    let check = |file: &Path, key: &str, policy: Option<&Path>| {
        let mut args = vec!["check-proof", "--key-file", key];
        let policy = policy.map(|p| p.to_string_lossy().to_string());
        if let Some(policy) = &policy {
            args.extend(["--witness-policy", policy.as_str()]);
        }
        run(&args, &[file])
    };
    let (code, stdout, stderr) = check(&file, &key, Some(&two));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("entry 3 is in the signed checkpoint of 10 entries"),
        "{stdout}"
    );
    let (code, _, stderr) = check(&file, &key, Some(&all));
    assert_eq!(code, Some(7), "{stderr}");
    assert!(
        stderr.contains("misses the witness quorum") && stderr.contains("w3"),
        "{stderr}"
    );

    // A flipped byte in the entry, in the path, or in the checkpoint.
    let lines: Vec<&str> = proof.lines().collect();
    let flip = |line: usize| {
        let mut changed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        let text = &changed[line];
        // Swap one base64 character for another: the line still decodes.
        let at = text.len() - 6;
        let c = text.as_bytes()[at];
        let other = if c == b'A' { 'B' } else { 'A' };
        changed[line] = format!("{}{other}{}", &text[..at], &text[at + 1..]);
        let tampered = dir.path().join(format!("flipped-{line}.tlog-proof"));
        std::fs::write(&tampered, changed.join("\n") + "\n").unwrap();
        tampered
    };
    let path_line = lines.iter().position(|l| l.starts_with("index ")).unwrap() + 1;
    let root_line = lines.iter().position(|l| l.is_empty()).unwrap() + 3;
    for (line, reason) in [
        (1, "entry 3 is not proven in the tree of 10"),
        (path_line, "entry 3 is not proven in the tree of 10"),
        (
            root_line,
            "the checkpoint does not verify with the log's key",
        ),
    ] {
        let (code, _, stderr) = check(&flip(line), &key, None);
        assert_eq!(code, Some(7), "line {line}: {stderr}");
        assert!(stderr.contains(reason), "line {line}: {stderr}");
    }
    // Another log's key.
    let other = TestLedger::new(&Backend::Sqlite);
    let other_key = verifier_key_file(&other).to_string_lossy().to_string();
    let (code, _, stderr) = check(&file, &other_key, None);
    assert_eq!(code, Some(7), "{stderr}");
    assert!(
        stderr.contains("the checkpoint does not verify with the log's key"),
        "{stderr}"
    );
}
