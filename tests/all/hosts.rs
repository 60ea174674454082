//! The shipped plugins in other component hosts: `vellum test --record` runs each plugin's
//! cases in the Rust host and writes the calls (events in, verdicts out); Python's
//! `wasmtime` package and Node (the component transpiled by jco) replay them with
//! `vellum:audit/host` written in their own language and must return the same verdicts,
//! byte for byte. The hosts are installed into `target/` (pinned) on first use; a failed
//! install fails the test, saying why.

use std::path::{Path, PathBuf};
use std::process::Command;

use vellum_guest_artifacts::{POLICY, REDACT};

const VELLUM: &str = env!("CARGO_BIN_EXE_vellum");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(what: &str, command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Python's `wasmtime` in `target/hosts-venv`; jco in `target/hosts-node`.
fn hosts() -> (PathBuf, PathBuf) {
    let target = repo().join("target");
    let venv = target.join("hosts-venv");
    if !venv.join("bin/python").exists() {
        run(
            "python3 -m venv",
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
        );
    }
    let python = venv.join("bin/python");
    run(
        "pip install wasmtime",
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "-r"])
            .arg(repo().join("examples/python-host/requirements.txt")),
    );
    let node = target.join("hosts-node");
    let jco = node.join("node_modules/.bin/jco");
    if !jco.exists() {
        std::fs::create_dir_all(&node).expect("create target/hosts-node");
        std::fs::copy(
            repo().join("examples/node-host/package.json"),
            node.join("package.json"),
        )
        .expect("copy package.json");
        run(
            "npm install (jco)",
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&node),
        );
    }
    (python, jco)
}

fn same_verdicts_everywhere(name: &str, component: &str, config: &str, cases: &str) {
    let (python, jco) = hosts();
    let dir = tempfile::tempdir().expect("temp dir");
    let transcript = dir.path().join(format!("{name}.json"));
    let guest = repo().join("guest").join(name).join("cases");
    run(
        "vellum test --record",
        Command::new(VELLUM)
            .arg("test")
            .arg(component)
            .arg("--config")
            .arg(guest.join(config))
            .arg("--cases")
            .arg(guest.join(cases))
            .arg("--record")
            .arg(&transcript),
    );
    let replayed = run(
        "the Python host",
        Command::new(&python)
            .arg(repo().join("examples/python-host/replay.py"))
            .arg(component)
            .arg(&transcript),
    );
    assert!(replayed.contains(" passed, 0 failed"), "{replayed}");
    let out = dir.path().join(name);
    run(
        "jco transpile",
        Command::new(&jco)
            .args(["transpile", component, "-o"])
            .arg(&out)
            .args([
                "--name",
                name,
                "--instantiation",
                "async",
                "--no-typescript",
                "-q",
            ]),
    );
    let replayed = run(
        "the Node host",
        Command::new("node")
            .arg(repo().join("examples/node-host/replay.mjs"))
            .arg(out.join(format!("{name}.js")))
            .arg(&transcript),
    );
    assert!(replayed.contains(" passed, 0 failed"), "{replayed}");
}

/// One test for both plugins: the installs into `target/` must not race.
#[test]
fn the_shipped_plugins_give_the_same_verdicts_in_python_and_node() {
    same_verdicts_everywhere("redact", REDACT, "config.toml", "cases.toml");
    same_verdicts_everywhere("policy", POLICY, "policy.toml", "cases.toml");
}
