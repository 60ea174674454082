//! How a plugin component is built in each language: the pinned tools, finding or installing
//! them, and the build steps. One place, used twice: by this crate's build script for the
//! shipped guests, and by `vellum plugin build` for plugins written outside this repository.
//!
//! - Rust: `cargo` for [`WASM_TARGET`], then [`componentize_module`] (wit-component), so no
//!   wasm-tools install is needed.
//! - Python: componentize-py [`COMPONENTIZE_PY_VERSION`] in a venv.
//! - JavaScript: componentize-js [`COMPONENTIZE_JS_VERSION`] from npm, driven by a small Node
//!   script, with every WASI feature it can disable disabled.
//!
//! Tools are installed into a directory the caller names (the build uses `target/`, the CLI
//! a per-user cache), never globally, and only when the caller allows it.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The Rust target plugins are compiled for (a core module, wrapped into a component after).
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The componentize-py release Python plugins are built with.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The componentize-js (npm `@bytecodealliance/componentize-js`) release JavaScript plugins
/// are built with.
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";

/// Set to anything to forbid installing missing tools (the wasm target, componentize-py,
/// componentize-js): the build then fails naming what to install.
pub const NO_AUTO_INSTALL: &str = "VELLUM_NO_AUTO_INSTALL";

/// The Node script that drives componentize-js (written next to its `node_modules`).
const COMPONENTIZE_JS_SCRIPT: &str = include_str!("componentize.mjs");

/// Whether installing missing tools is allowed: not when [`NO_AUTO_INSTALL`] is set.
pub fn may_install() -> bool {
    env::var_os(NO_AUTO_INSTALL).is_none()
}

/// Makes sure rustc has the wasm target's standard library, installing it with rustup
/// (telling `say`) when it is missing and `install` allows; otherwise fails with the command
/// to run.
pub fn ensure_wasm_target(rustc: &str, install: bool, say: &dyn Fn(&str)) -> Result<()> {
    if wasm_target_installed(rustc)? {
        return Ok(());
    }
    let manual = format!(
        "the Rust target `{WASM_TARGET}` is not installed, so Rust plugins cannot be built.\n    \
         Run: rustup target add {WASM_TARGET}"
    );
    if !install {
        bail!("{manual}\n({NO_AUTO_INSTALL} is set, so it is not installed for you)");
    }
    say(&format!(
        "installing the Rust target {WASM_TARGET} with `rustup target add` (set \
         {NO_AUTO_INSTALL}=1 to forbid)"
    ));
    // RUSTUP_TOOLCHAIN, when set (as in a cargo build), makes rustup add it to that toolchain.
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status();
    match status {
        Ok(status) if status.success() && wasm_target_installed(rustc)? => Ok(()),
        Ok(status) => bail!("{manual}\n(`rustup target add` failed: {status})"),
        Err(e) => bail!("{manual}\n(rustup cannot be run: {e})"),
    }
}

/// Whether rustc finds the wasm target's standard library.
fn wasm_target_installed(rustc: &str) -> Result<bool> {
    let output = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .with_context(|| format!("running `{rustc} --print target-libdir`"))?;
    let libdir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Ok(output.status.success() && Path::new(&libdir).is_dir())
}

/// Wraps a core wasm module (with the WIT metadata wit-bindgen embeds) into a component.
pub fn componentize_module(module: &[u8]) -> Result<Vec<u8>> {
    wit_component::ComponentEncoder::default()
        .module(module)
        .context("reading the module's WIT metadata (was it built with wit-bindgen?)")?
        .validate(true)
        .encode()
        .context("encoding the module as a component")
}

/// componentize-py: `$COMPONENTIZE_PY`, else the pinned one in `tools`, else one on `PATH`;
/// installed into `tools` (a venv) when none runs and `install` allows.
pub fn componentize_py(tools: &Path, install: bool, say: &dyn Fn(&str)) -> Result<PathBuf> {
    let venv = tools.join(format!("componentize-py-{COMPONENTIZE_PY_VERSION}"));
    let pinned = venv.join("bin/componentize-py");
    let candidates = [
        env::var_os("COMPONENTIZE_PY").map(PathBuf::from),
        Some(pinned.clone()),
        Some(PathBuf::from("componentize-py")),
    ];
    if let Some(tool) = candidates.into_iter().flatten().find(|t| answers(t)) {
        return Ok(tool);
    }
    let manual = format!(
        "componentize-py is needed to build Python plugins.\n    Run: pip install \
         componentize-py=={COMPONENTIZE_PY_VERSION}  (or set COMPONENTIZE_PY to its path)"
    );
    if !install {
        bail!("{manual}\n({NO_AUTO_INSTALL} is set, so it is not installed for you)");
    }
    say(&format!(
        "installing componentize-py {COMPONENTIZE_PY_VERSION} into {} (set {NO_AUTO_INSTALL}=1 \
         to forbid)",
        venv.display()
    ));
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    )
    .with_context(|| manual.clone())?;
    run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("componentize-py=={COMPONENTIZE_PY_VERSION}")),
        "pip install componentize-py",
    )
    .with_context(|| manual.clone())?;
    if !answers(&pinned) {
        bail!(
            "{manual}\n(installed, but {} does not run)",
            pinned.display()
        );
    }
    Ok(pinned)
}

/// Builds a Python plugin: module `module` (a `.py` file's stem) in `source_dir`, against the
/// `plugin` world of `wit`, into the component `out`.
pub fn build_python(
    tool: &Path,
    wit: &Path,
    source_dir: &Path,
    module: &str,
    out: &Path,
) -> Result<()> {
    run(
        Command::new(tool)
            .arg("-d")
            .arg(wit)
            .args(["-w", "plugin", "componentize", "-p"])
            .arg(source_dir)
            .arg(module)
            .arg("-o")
            .arg(out),
        "componentize-py",
    )
}

/// The Node script driving the pinned componentize-js in `tools`, installed there with npm
/// when missing and `install` allows.
pub fn componentize_js(tools: &Path, install: bool, say: &dyn Fn(&str)) -> Result<PathBuf> {
    let dir = tools.join(format!("componentize-js-{COMPONENTIZE_JS_VERSION}"));
    let script = dir.join("componentize.mjs");
    let package = dir.join("node_modules/@bytecodealliance/componentize-js/package.json");
    if !answers(Path::new("node")) {
        bail!(
            "Node.js is needed to build JavaScript plugins (componentize-js runs on it); install \
             node (20 or newer) and npm"
        );
    }
    if !package.is_file() {
        let manual = format!(
            "componentize-js is needed to build JavaScript plugins.\n    Run: npm install \
             --prefix {} @bytecodealliance/componentize-js@{COMPONENTIZE_JS_VERSION}",
            dir.display()
        );
        if !install {
            bail!("{manual}\n({NO_AUTO_INSTALL} is set, so it is not installed for you)");
        }
        say(&format!(
            "installing componentize-js {COMPONENTIZE_JS_VERSION} into {} (set \
             {NO_AUTO_INSTALL}=1 to forbid)",
            dir.display()
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        run(
            Command::new("npm")
                .args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                    "--prefix",
                ])
                .arg(&dir)
                .arg(format!(
                    "@bytecodealliance/componentize-js@{COMPONENTIZE_JS_VERSION}"
                )),
            "npm install componentize-js",
        )
        .with_context(|| manual.clone())?;
    }
    // Rewritten every time, so a changed script reaches an existing install.
    std::fs::write(&script, COMPONENTIZE_JS_SCRIPT)
        .with_context(|| format!("writing {}", script.display()))?;
    Ok(script)
}

/// Builds a JavaScript plugin: the ES module `source`, against the `plugin` world of `wit`,
/// into the component `out`.
pub fn build_js(script: &Path, wit: &Path, source: &Path, out: &Path) -> Result<()> {
    run(
        Command::new("node")
            .arg(script)
            .arg(absolute(source)?)
            .arg(absolute(wit)?)
            .arg(absolute(out)?),
        "componentize-js",
    )
}

/// `path` made absolute (componentize-js resolves relative paths against its own files).
fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

/// Runs a command, failing with its name and exit status (its output goes to the caller's
/// terminal).
fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("{what} cannot be run"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Whether a tool answers `--version`.
fn answers(tool: &Path) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
