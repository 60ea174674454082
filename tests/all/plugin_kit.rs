//! The plugin authoring kit, as a user outside this repository meets it: for Rust, Python
//! and JavaScript, `vellum plugin new` in a temporary directory, `vellum plugin build`, the
//! scaffold's own cases through `vellum test`, and the component in a chain through
//! `vellum run` — plus the errors of a bad configuration, a missing build tool, a bad name
//! and a directory that is not a plugin project.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace's target directory (tools and the Rust scaffold's build are cached there,
/// so a second run does not download or compile them again).
fn target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// `vellum` with the caches inside the target directory, never the user's.
fn vellum(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vellum"));
    cmd.args(args)
        .current_dir(dir)
        .env(
            "XDG_CACHE_HOME",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("kit-cache"),
        )
        // The same tools the guest build installed (target/wasm-guests/tools).
        .env("VELLUM_TOOLS_DIR", target().join("wasm-guests/tools"))
        .env("CARGO_TARGET_DIR", target().join("plugin-kit"));
    cmd
}

fn run(mut cmd: Command) -> Output {
    cmd.output().expect("vellum runs")
}

fn text(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn succeeds(cmd: Command) -> String {
    let what = format!("{cmd:?}");
    let output = run(cmd);
    assert!(output.status.success(), "{what} failed:\n{}", text(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// From an empty directory to a redacting chain, in one language.
fn new_build_test_chain(lang: &str) {
    let root = tempfile::tempdir().unwrap();
    let name = format!("emp-{lang}");
    succeeds(vellum(
        root.path(),
        &["plugin", "new", &name, "--lang", lang],
    ));
    let project = root.path().join(&name);
    for file in ["cases.toml", "chain.toml", "README.md", "wit/audit.wit"] {
        assert!(
            project.join(file).is_file(),
            "{lang}: the scaffold lacks {file}"
        );
    }

    let built = succeeds(vellum(&project, &["plugin", "build"]));
    let component = project.join(format!("{name}.wasm"));
    assert!(component.is_file(), "{lang}: no {name}.wasm:\n{built}");
    for line in [
        "world:   vellum:audit/plugin@0.1.0",
        "digest:  sha256:",
        "size:",
        "vellum:audit/host@0.1.0",
    ] {
        assert!(
            built.contains(line),
            "{lang}: the build report lacks {line:?}:\n{built}"
        );
    }

    let tested = succeeds(vellum(
        &project,
        &["test", &format!("{name}.wasm"), "--cases", "cases.toml"],
    ));
    assert!(tested.contains("2 passed, 0 failed"), "{lang}: {tested}");

    std::fs::write(
        project.join("events.jsonl"),
        concat!(
            r#"{"id":"e1","occurred_at":"2026-12-04T10:00:00Z","kind":"tool.call","subject":"hr lookup EMP-314159","payload":{"q":"salary of EMP-271828","n":3}}"#,
            "\n",
            r#"{"id":"e2","occurred_at":"2026-12-04T10:00:01Z","kind":"memory.read","payload":{"note":"nothing to hide"}}"#,
            "\n"
        ),
    )
    .unwrap();
    let verdicts = succeeds(vellum(
        &project,
        &["run", "--chain", "chain.toml", "--input", "events.jsonl"],
    ));
    let lines: Vec<serde_json::Value> = verdicts
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lang}: {verdicts}");
    assert_eq!(lines[0]["verdict"], "keep");
    assert_eq!(lines[0]["event"]["subject"], "hr lookup [EMPLOYEE-ID]");
    assert_eq!(
        lines[0]["event"]["payload"],
        serde_json::json!({"q": "salary of [EMPLOYEE-ID]", "n": 3})
    );
    assert_eq!(lines[0]["attestations"][0]["plugin"], name.as_str());
    assert_eq!(lines[1]["event"]["payload"]["note"], "nothing to hide");

    // A typo in the chain's configuration stops the chain from loading, naming the key.
    let chain = std::fs::read_to_string(project.join("chain.toml")).unwrap();
    let typo = chain.replace("config = '{}'", r#"config = '{"patern": "x"}'"#);
    assert_ne!(
        typo, chain,
        "{lang}: the scaffold's chain.toml changed shape"
    );
    std::fs::write(project.join("bad-chain.toml"), typo).unwrap();
    let refused = run(vellum(
        &project,
        &[
            "run",
            "--chain",
            "bad-chain.toml",
            "--input",
            "events.jsonl",
        ],
    ));
    assert_eq!(refused.status.code(), Some(3), "{lang}: {}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("patern") && stderr.contains(&name),
        "{lang}: the error names neither the key nor the plugin: {stderr}"
    );
}

#[test]
fn a_rust_plugin_from_an_empty_directory() {
    new_build_test_chain("rust");
}

#[test]
fn a_python_plugin_from_an_empty_directory() {
    new_build_test_chain("python");
}

#[test]
fn a_javascript_plugin_from_an_empty_directory() {
    new_build_test_chain("js");
}

#[test]
fn a_missing_build_tool_is_named_with_the_command_that_installs_it() {
    let root = tempfile::tempdir().unwrap();
    let empty_tools = root.path().join("no-tools");
    for (lang, install) in [
        ("python", "pip install componentize-py=="),
        ("js", "npm install --prefix"),
    ] {
        let name = format!("tool-{lang}");
        succeeds(vellum(
            root.path(),
            &["plugin", "new", &name, "--lang", lang],
        ));
        let mut cmd = vellum(&root.path().join(&name), &["plugin", "build"]);
        cmd.env("VELLUM_TOOLS_DIR", &empty_tools)
            .env("VELLUM_NO_AUTO_INSTALL", "1")
            .env_remove("COMPONENTIZE_PY")
            // Only system directories: no componentize-py from a venv on PATH.
            .env("PATH", "/usr/local/bin:/usr/bin:/bin");
        let output = run(cmd);
        assert!(!output.status.success(), "{lang}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(install) && stderr.contains("VELLUM_NO_AUTO_INSTALL"),
            "{lang}: {stderr}"
        );
        assert!(
            !empty_tools.exists(),
            "{lang}: installed although forbidden"
        );
    }
}

#[test]
fn names_and_directories_are_checked_before_anything_is_written() {
    let root = tempfile::tempdir().unwrap();
    for bad in ["Bad_Name", "../escape", "x--y"] {
        let output = run(vellum(
            root.path(),
            &["plugin", "new", bad, "--lang", "rust"],
        ));
        assert!(!output.status.success(), "{bad}: {}", text(&output));
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("not a usable plugin name"),
            "{bad}: {}",
            text(&output)
        );
    }
    std::fs::write(root.path().join("keep.txt"), "mine").unwrap();
    let output = run(vellum(
        root.path(),
        &["plugin", "new", "p", "--lang", "js", "--dir", "."],
    ));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not an empty directory"));
    assert_eq!(
        std::fs::read_dir(root.path()).unwrap().count(),
        1,
        "wrote into a used directory"
    );

    let output = run(vellum(root.path(), &["plugin", "build", "."]));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a plugin project"), "{stderr}");
}
