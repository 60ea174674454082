//! The `vellum` binary: `run` over JSON lines with the template plugin, malformed-input
//! handling, exit codes, and `plugin inspect`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vellum_guest_artifacts::{HOSTILE, TEMPLATE};

const SAMPLE_EVENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../host/examples/events.jsonl");

fn vellum(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vellum"));
    cmd.args(args).env("XDG_CACHE_HOME", cache_home());
    match stdin {
        None => cmd.output().expect("vellum runs"),
        Some(input) => {
            use std::io::Write;
            let mut child = cmd
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("vellum runs");
            // Written from another thread while the output is read: a large input and
            // output would otherwise fill both pipes and wait on each other. A write error
            // means vellum stopped reading (it exited early), which the caller checks.
            let mut stdin = child.stdin.take().unwrap();
            let input = input.to_string();
            let writer = std::thread::spawn(move || {
                let _ = stdin.write_all(input.as_bytes());
            });
            let output = child.wait_with_output().unwrap();
            writer.join().unwrap();
            output
        }
    }
}

/// A cache directory inside the build's target directory, never the user's.
fn cache_home() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache")
}

fn write_chain(dir: &Path, plugins: &str) -> String {
    let path = dir.join("chain.toml");
    std::fs::write(&path, plugins).unwrap();
    path.display().to_string()
}

fn template_chain(dir: &Path) -> String {
    write_chain(
        dir,
        &format!(
            "[[plugin]]\nname = \"upper\"\ncomponent = \"{TEMPLATE}\"\nconfig = '{{\"label\": \"env\"}}'\n"
        ),
    )
}

fn stdout_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stdout line is JSON"))
        .collect()
}

#[test]
fn run_applies_the_template_to_the_sample_events() {
    let dir = tempfile::tempdir().unwrap();
    let chain = template_chain(dir.path());
    let output = vellum(&["run", "--chain", &chain, "--input", SAMPLE_EVENTS], None);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["verdict"], "keep");
    assert_eq!(lines[0]["line"], 1);
    assert_eq!(lines[0]["event"]["labels"]["env"], "PROD");
    assert_eq!(lines[2]["event"]["labels"]["env"], "STAGING");
    assert_eq!(lines[0]["attestations"][0]["plugin"], "upper");
    assert_eq!(lines[0]["event"]["payload"]["new_status"], "completed");
}

#[test]
fn malformed_line_stops_by_default_and_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let chain = template_chain(dir.path());
    let input = "{\"id\":\"a\",\"occurred_at\":\"2026-01-01T00:00:00Z\",\"kind\":\"k\"}\n{\"id\": oops}\n{\"id\":\"c\",\"occurred_at\":\"2026-01-01T00:00:00Z\",\"kind\":\"k\"}\n";
    let output = vellum(&["run", "--chain", &chain], Some(input));
    assert_eq!(output.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("<stdin>:2:"), "{stderr}");
    let lines = stdout_lines(&output);
    assert_eq!(
        lines.len(),
        1,
        "events before the bad line are processed, none after"
    );

    let output = vellum(
        &["run", "--chain", &chain, "--on-malformed", "skip"],
        Some(input),
    );
    assert_eq!(output.status.code(), Some(4));
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["line"], 3);
}

#[test]
fn a_dry_run_over_many_tenants_and_workers_answers_every_line_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let chain = template_chain(dir.path());
    // More events than one read of the pipeline, interleaving 7 tenants and events without
    // one, spread over 3 workers: every line is answered once, in input order.
    let input: String = (0..2_500)
        .map(|i| {
            let tenant = match i % 8 {
                7 => String::new(),
                t => format!(",\"tenant\":\"t{t}\""),
            };
            format!(
                "{{\"id\":\"e{i}\",\"occurred_at\":\"2026-01-01T00:00:00Z\",\"kind\":\"k\"{tenant},\"labels\":{{\"env\":\"n{i}\"}}}}\n"
            )
        })
        .collect();
    let output = vellum(&["run", "--chain", &chain, "--workers", "3"], Some(&input));
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), 2_500);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["line"], i + 1);
        assert_eq!(line["event"]["id"], format!("e{i}"));
        assert_eq!(line["event"]["labels"]["env"], format!("N{i}"));
    }

    let output = vellum(&["run", "--chain", &chain, "--workers", "5000"], Some(""));
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--workers must be at most 1024"),
        "{stderr}"
    );
}

#[test]
fn rejected_events_give_exit_code_5() {
    let dir = tempfile::tempdir().unwrap();
    let chain = write_chain(
        dir.path(),
        &format!("[[plugin]]\nname = \"h\"\ncomponent = \"{HOSTILE}\"\n"),
    );
    let input = "{\"id\":\"r\",\"occurred_at\":\"2026-01-01T00:00:00Z\",\"kind\":\"hostile.reject\",\"payload\":{\"reason\":\"policy says no\"}}\n";
    let output = vellum(&["run", "--chain", &chain], Some(input));
    assert_eq!(output.status.code(), Some(5));
    let lines = stdout_lines(&output);
    assert_eq!(lines[0]["verdict"], "reject");
    assert_eq!(lines[0]["reason"], "policy says no");
}

#[test]
fn invalid_chain_file_gives_exit_code_3_and_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let chain = write_chain(
        dir.path(),
        "batch-size = 8\n[[plugin]]\nname = \"x\"\ncompnent = \"x.wasm\"\n",
    );
    let output = vellum(&["run", "--chain", &chain], Some(""));
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("chain.toml") && stderr.contains("compnent") && stderr.contains("line 4"),
        "{stderr}"
    );
}

#[test]
fn inspect_shows_world_imports_exports_and_digest() {
    let output = vellum(&["plugin", "inspect", TEMPLATE], None);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "world:     vellum:audit/plugin@0.1.0",
        "instance vellum:audit/host@0.1.0",
        "func log",
        "func apply",
        "sha256:",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let output = vellum(&["plugin", "inspect", "--json", TEMPLATE], None);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["world"], "vellum:audit/plugin@0.1.0");
    assert_eq!(report["size"], std::fs::metadata(TEMPLATE).unwrap().len());
}

#[test]
fn inspect_of_a_non_component_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.wasm");
    std::fs::write(&path, b"\0asm junk").unwrap();
    let output = vellum(&["plugin", "inspect", path.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("junk.wasm"));
}

/// Runs `vellum test` and asserts every case passed, with the expected summary line.
fn assert_cases_pass(args: &[&str], summary: &str) {
    let output = vellum(args, None);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(summary), "{stdout}");
}

/// The case files shipped with the redact, policy and Python plugins pass through
/// `vellum test`.
#[test]
fn shipped_plugin_cases_pass() {
    let guest = |p: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../guest")
            .join(p)
            .display()
            .to_string()
    };
    let redact_config = guest("redact/cases/config.toml");
    assert_cases_pass(
        &[
            "test",
            vellum_guest_artifacts::REDACT,
            "--config",
            &redact_config,
            "--cases",
            &guest("redact/cases/cases.toml"),
            "--leak-config",
            &redact_config,
        ],
        "11 passed, 0 failed",
    );
    assert_cases_pass(
        &[
            "test",
            vellum_guest_artifacts::POLICY,
            "--config",
            &guest("policy/cases/policy.toml"),
            "--cases",
            &guest("policy/cases/cases.toml"),
        ],
        "5 passed, 0 failed",
    );
    let python = vellum_guest_artifacts::PYTHON_TICKET.expect(
        "the build could not install componentize-py (see its warnings: it needs python3 with venv and pip, and PyPI), so the Python plugin was not built",
    );
    assert_cases_pass(
        &[
            "test",
            python,
            "--config",
            &guest("python-ticket/cases/config.json"),
            "--cases",
            &guest("python-ticket/cases/cases.toml"),
        ],
        "2 passed, 0 failed",
    );
    let js = vellum_guest_artifacts::JS_DOMAINS.expect(
        "the build could not install componentize-js (see its warnings: it needs node and npm, and the npm registry), so the JavaScript plugin was not built",
    );
    assert_cases_pass(
        &[
            "test",
            js,
            "--config",
            &guest("js-domains/cases/config.json"),
            "--cases",
            &guest("js-domains/cases/cases.toml"),
        ],
        "4 passed, 0 failed",
    );
}

#[test]
fn failing_cases_print_a_diff_and_exit_8() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases.toml");
    std::fs::write(
        &cases,
        r#"
[[case]]
name = "wrong expectation"
events = [{ kind = "tool.call", labels = { env = "prod" }, payload = { a = 1, b = "x" } }]
expect = [{ verdict = "keep", payload = { a = 1, b = "y" } }]

[[case]]
name = "right expectation"
events = [{ kind = "tool.call", labels = { env = "prod" } }]
expect = [{ verdict = "keep", labels = { env = "PROD" } }]
"#,
    )
    .unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"label": "env"}"#).unwrap();
    let output = vellum(
        &[
            "test",
            TEMPLATE,
            "--config",
            config.to_str().unwrap(),
            "--cases",
            cases.to_str().unwrap(),
            "--leak-check",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(8));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("FAIL wrong expectation"), "{stdout}");
    assert!(
        stdout.contains("-  \"b\": \"y\"") && stdout.contains("+  \"b\": \"x\""),
        "{stdout}"
    );
    assert!(stdout.contains("1 passed, 1 failed"), "{stdout}");
}

#[test]
fn malformed_cases_file_names_the_case_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases.toml");
    std::fs::write(
        &cases,
        "[[case]]\nname = \"ok\"\nevents = [{ kind = \"k\" }]\nexpect = [{ verdict = \"keep\" }]\n\n[[case]]\nname = \"typo\"\nevents = [{ kind = \"k\" }]\nexpect = [{ verdict = \"kept\" }]\n",
    )
    .unwrap();
    let output = vellum(
        &["test", TEMPLATE, "--cases", cases.to_str().unwrap()],
        None,
    );
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("case 2 (`typo`): expect[0]") && stderr.contains("kept"),
        "{stderr}"
    );
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vellum"))
        .args(["plugin", "inspect", HOSTILE])
        .env("XDG_CACHE_HOME", cache_home())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away, as with `| head -0`
    let output = child.wait_with_output().unwrap();
    assert_ne!(
        output.status.code(),
        Some(101),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
}

#[test]
fn verify_reports_the_first_bad_sequence_number_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("audit.db");
    let ledger = ledger.to_str().unwrap();
    assert_eq!(
        vellum(&["init", "--ledger", ledger], None).status.code(),
        Some(0)
    );
    let ingest = vellum(
        &["ingest", "--ledger", ledger, "--input", SAMPLE_EVENTS],
        None,
    );
    assert_eq!(
        ingest.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ingest.stderr)
    );
    assert_eq!(
        vellum(&["verify", "--ledger", ledger], None).status.code(),
        Some(0)
    );
    // An insider with a SQL shell drops the append-only triggers and edits an entry.
    let conn = rusqlite::Connection::open(ledger).unwrap();
    conn.execute_batch(
        "DROP TRIGGER contents_erase_only; \
         UPDATE contents SET sealed = (SELECT sealed FROM contents WHERE seq = 2) WHERE seq = 3;",
    )
    .unwrap();
    drop(conn);
    let out = vellum(&["verify", "--ledger", ledger], None);
    assert_eq!(out.status.code(), Some(7));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("first bad sequence number 3") && stderr.contains("modified"),
        "{stderr}"
    );
}

#[test]
fn ingest_goes_through_the_sink_and_answers_every_line_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("audit.db");
    let ledger = ledger.to_str().unwrap();
    assert_eq!(
        vellum(&["init", "--ledger", ledger], None).status.code(),
        Some(0)
    );
    let sink = dir.path().join("sink.toml");
    std::fs::write(
        &sink,
        format!(
            "[sink]\nworkers = 2\n[ledger]\npath = \"audit.db\"\n[chain]\n[[chain.plugin]]\nname = \"h\"\ncomponent = \"{HOSTILE}\"\n"
        ),
    )
    .unwrap();
    let line = |id: &str, kind: &str| {
        format!(
            "{{\"id\":\"{id}\",\"occurred_at\":\"2026-01-01T00:00:00Z\",\"kind\":\"{kind}\",\"payload\":{{\"reason\":\"no\"}}}}\n"
        )
    };
    let input = [
        line("a", "tool.call"),
        line("b", "hostile.reject"),
        line("c", "hostile.drop"),
        line("d", "tool.call"),
    ]
    .concat();
    let output = vellum(&["ingest", "--sink", sink.to_str().unwrap()], Some(&input));
    assert_eq!(
        output.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = stdout_lines(&output);
    let numbers: Vec<u64> = lines.iter().map(|l| l["line"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    assert_eq!(lines[0]["receipt"]["seq"], 0);
    assert_eq!(lines[1]["error"]["class"], "rejected");
    assert_eq!(lines[1]["error"]["plugin"], "h");
    assert_eq!(lines[2]["receipt"]["disposition"], "dropped");
    assert_eq!(
        lines[3]["receipt"]["seq"], 2,
        "a rejected line takes no sequence number"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("<stdin>:2:") && stderr.contains("rejected"),
        "{stderr}"
    );
    assert_eq!(
        vellum(&["verify", "--ledger", ledger], None).status.code(),
        Some(0)
    );
    // A ledger that was never created is a ledger error (exit 6) that says how to make one.
    let missing = dir.path().join("nope.db");
    let output = vellum(
        &["ingest", "--ledger", missing.to_str().unwrap()],
        Some(&line("e", "k")),
    );
    assert_eq!(output.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&output.stderr).contains("vellum init"));
}

#[test]
fn a_payload_nested_100000_deep_is_refused_and_nothing_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("audit.db");
    let ledger = ledger.to_str().unwrap();
    assert_eq!(
        vellum(&["init", "--ledger", ledger], None).status.code(),
        Some(0)
    );
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let input = format!(
        "{{\"id\":\"deep\",\"occurred_at\":\"2026-01-01T00:00:00Z\",\"kind\":\"k\",\"payload\":{deep}}}\n"
    );
    let output = vellum(
        &["ingest", "--ledger", ledger, "--on-malformed", "skip"],
        Some(&input),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("<stdin>:1") && stderr.contains("payload") && stderr.contains("128"),
        "{stderr}"
    );
    let export = vellum(&["export", "--ledger", ledger], None);
    assert!(export.stdout.is_empty(), "nothing is recorded");
}

#[test]
fn query_and_export_print_the_stored_payload_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("audit.db");
    let ledger = ledger.to_str().unwrap();
    assert_eq!(
        vellum(&["init", "--ledger", ledger], None).status.code(),
        Some(0)
    );
    let payload =
        r#"{"b":1, "a":2,"a":3, "n":1e-999999, "f":0.12345678901234567890123, "s":"\u00e9"}"#;
    let input = format!(
        "{{\"id\":\"x\",\"occurred_at\":\"2026-01-01T00:00:00Z\",\"kind\":\"k\",\"payload\":{payload}}}\n"
    );
    assert_eq!(
        vellum(&["ingest", "--ledger", ledger], Some(&input))
            .status
            .code(),
        Some(0)
    );
    for command in ["query", "export"] {
        let out = vellum(&[command, "--ledger", ledger], None);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!(r#""payload":{payload}"#)),
            "{command}: {stdout}"
        );
    }
}

/// A ledger replaced by a forged one passes `verify` with the key beside it, but not with a
/// trusted key and checkpoint kept elsewhere: wrong key, rolled back, forked.
#[test]
fn verify_against_a_trusted_key_and_checkpoint_finds_a_forged_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let events = |n: usize| -> String {
        (0..n)
            .map(|i| {
                format!(
                    "{{\"id\":\"e{i}\",\"occurred_at\":\"2026-01-01T00:00:00Z\",\"kind\":\"k\"}}\n"
                )
            })
            .collect()
    };
    let ledger = path("audit.db");
    let ok = |args: &[&str], stdin: Option<&str>| {
        let output = vellum(args, stdin);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    };
    ok(&["init", "--ledger", &ledger], None);
    ok(&["ingest", "--ledger", &ledger], Some(&events(300)));
    ok(
        &[
            "checkpoint",
            "--ledger",
            &ledger,
            "--out",
            &path("saved.note"),
        ],
        None,
    );
    // The auditor keeps the public key and the checkpoint elsewhere.
    std::fs::copy(path("audit.db.pub"), path("trusted.pub")).unwrap();
    std::fs::copy(path("audit.db.key"), path("stolen.key")).unwrap();
    let trusted = [
        "--trusted-key",
        &path("trusted.pub"),
        "--trusted-checkpoint",
        &path("saved.note"),
    ];
    let verify_trusted = |json: bool| {
        let mut args = vec!["verify", "--ledger", ledger.as_str()];
        args.extend(trusted);
        if json {
            args.push("--json");
        }
        vellum(&args, None)
    };
    assert_eq!(verify_trusted(false).status.code(), Some(0));
    ok(
        &["ingest", "--ledger", &ledger],
        Some(&events(350)[events(300).len()..]),
    );
    assert_eq!(
        verify_trusted(false).status.code(),
        Some(0),
        "honest growth extends the checkpoint"
    );
    // A consistency proof from the saved checkpoint checks with only the trusted inputs.
    let bundle = ok(
        &[
            "prove",
            "--ledger",
            &ledger,
            "--consistency-from",
            "300",
            "--tree-size",
            "350",
        ],
        None,
    );
    let (consistency, inclusion) = (path("consistency.json"), path("inclusion.json"));
    std::fs::write(&consistency, &bundle.stdout).unwrap();
    let mut check = vec!["check-proof", consistency.as_str()];
    check.extend(trusted);
    let checked = ok(&check, None);
    assert!(String::from_utf8_lossy(&checked.stdout).contains("trusted checkpoint"));
    let bundle = ok(&["prove", "--ledger", &ledger, "3"], None);
    std::fs::write(&inclusion, &bundle.stdout).unwrap();
    check[1] = &inclusion;
    let output = vellum(&check, None);
    assert_eq!(
        output.status.code(),
        Some(7),
        "not anchored at the saved checkpoint"
    );

    let classes = |output: &Output| -> Vec<String> {
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["class"].as_str().unwrap().to_string())
            .collect()
    };
    let replace = |key: Option<&str>| {
        for suffix in ["", ".key", ".pub", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{ledger}{suffix}"));
        }
        match key {
            None => {
                ok(&["init", "--ledger", &ledger], None);
            }
            Some(stolen) => {
                std::fs::copy(stolen, format!("{ledger}.key")).unwrap();
                std::fs::copy(path("trusted.pub"), format!("{ledger}.pub")).unwrap();
                let origin = vellum(&["key", "--ledger", &ledger], None);
                let origin = String::from_utf8_lossy(&origin.stdout);
                let origin = origin.split('+').next().unwrap().to_string();
                std::fs::remove_file(format!("{ledger}.key")).unwrap();
                std::fs::remove_file(format!("{ledger}.pub")).unwrap();
                ok(&["init", "--ledger", &ledger, "--origin", &origin], None);
                std::fs::copy(stolen, format!("{ledger}.key")).unwrap();
                std::fs::copy(path("trusted.pub"), format!("{ledger}.pub")).unwrap();
            }
        }
    };

    // Forged with a new key: the first 200 events re-ingested into a fresh ledger.
    replace(None);
    ok(&["ingest", "--ledger", &ledger], Some(&events(200)));
    ok(&["verify", "--ledger", &ledger], None); // the key beside it is no anchor
    let output = verify_trusted(true);
    assert_eq!(output.status.code(), Some(7));
    let found = classes(&output);
    assert!(
        found.contains(&"wrong-key".to_string()) && found.contains(&"rolled-back".to_string()),
        "{found:?}"
    );

    // Forged with the stolen signing key: all 300 again, recorded at other times.
    replace(Some(&path("stolen.key")));
    ok(&["ingest", "--ledger", &ledger], Some(&events(300)));
    ok(&["verify", "--ledger", &ledger], None);
    let output = verify_trusted(true);
    assert_eq!(output.status.code(), Some(7));
    assert_eq!(classes(&output), ["forked"]);
    let stderr = String::from_utf8_lossy(&verify_trusted(false).stderr).to_string();
    assert!(stderr.contains("forked"), "{stderr}");
}

#[test]
fn demo_shows_redaction_drop_reject_verify_and_proof() {
    let dir = tempfile::tempdir().unwrap();
    let out = vellum(
        &["demo", "--json", "--dir", dir.path().to_str().unwrap()],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = doc["events"].as_array().unwrap();
    let runtimes: std::collections::HashSet<_> = events
        .iter()
        .map(|e| e["runtime"].as_str().unwrap())
        .collect();
    assert_eq!(runtimes.len(), 3, "samples of the three runtimes");
    let disposition = |d: &str| {
        events
            .iter()
            .filter(|e| e["outcome"]["disposition"] == d)
            .count()
    };
    assert!(disposition("rejected") >= 1 && disposition("dropped") >= 1);
    // Every recorded sample that carried a secret no longer does.
    let text =
        serde_json::to_string(&events.iter().map(|e| &e["after"]).collect::<Vec<_>>()).unwrap();
    for secret in [
        "ada@example.com",
        "4111 1111 1111 1111",
        "sk_live_",
        "hunter2",
        "AKIAIOSFODNN7EXAMPLE",
    ] {
        assert!(!text.contains(secret), "{secret} reached the ledger");
    }
    assert_eq!(doc["verify"]["ok"], true);
    assert_eq!(doc["proof"]["verified"], true);
    // Plain text when piped: no colour codes.
    let plain = vellum(&["demo"], None);
    assert!(plain.status.success());
    let text = String::from_utf8(plain.stdout).unwrap();
    assert!(
        text.contains("rejected by policy") && !text.contains('\u{1b}'),
        "{text}"
    );
}

#[test]
fn builtin_plugins_work_in_chain_files_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("policy.wasm");
    let out = vellum(
        &[
            "plugin",
            "export",
            "builtin:policy",
            "-o",
            exported.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read(&exported).unwrap(),
        std::fs::read(vellum_guest_artifacts::POLICY).unwrap()
    );
    let list = vellum(&["plugin", "list", "--json"], None);
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "builtin:redact")
    );
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "default = \"keep\"\n[[rule]]\nname = \"no\"\nwhen = { field = \"kind\", equals = \"tool.call\" }\naction = \"reject\"\nreason = \"no tools\"\n",
    )
    .unwrap();
    let chain = write_chain(
        dir.path(),
        "[[plugin]]\nname = \"policy\"\ncomponent = \"builtin:policy\"\nconfig-file = \"policy.toml\"\n",
    );
    let out = vellum(&["run", "--chain", &chain, "--input", SAMPLE_EVENTS], None);
    assert_eq!(
        out.status.code(),
        Some(5),
        "the built-in policy rejected tool calls: {out:?}"
    );
    let unknown = vellum(
        &["plugin", "export", "builtin:nope", "-o", "/dev/null"],
        None,
    );
    assert_eq!(unknown.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("built in: redact"));
}
