//! The Python package (`python/`): built with maturin into a virtual environment under
//! `target/` (with pinned pytest, openai-agents and langchain-core from PyPI), then its
//! pytest suite runs: the sink in-process and both adapters with the real packages.
//! Nothing is skipped: a failed install fails this test, saying why.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(what: &str, command: &mut Command) {
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(status.success(), "{what} failed ({status})");
}

#[test]
fn the_python_package_passes_its_tests() {
    let repo = repo();
    let venv = repo.join("target/python-pkg-venv");
    let bin = venv.join("bin");
    if !bin.join("maturin").exists() {
        run(
            "python3 -m venv",
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
        );
        run(
            "pip install -r python/requirements-test.txt",
            Command::new(bin.join("pip"))
                .args(["install", "--quiet", "-r"])
                .arg(repo.join("python/requirements-test.txt")),
        );
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Its own target directory: this test runs inside `cargo test`, which may hold the
    // workspace's.
    run(
        "maturin develop",
        Command::new(bin.join("maturin"))
            .args(["develop", "--quiet", "--manifest-path"])
            .arg(repo.join("python/Cargo.toml"))
            .env("VIRTUAL_ENV", &venv)
            .env("PATH", &path)
            .env("CARGO_TARGET_DIR", repo.join("target/python-build")),
    );
    run(
        "pytest python/tests",
        Command::new(bin.join("python"))
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(repo.join("python/tests"))
            .env("VELLUM_POLICY_COMPONENT", vellum_guest_artifacts::POLICY)
            .env("PATH", &path),
    );
}
