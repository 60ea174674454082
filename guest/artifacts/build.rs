//! Builds every guest crate under `guest/` for `wasm32-unknown-unknown` with the workspace's
//! `guest` profile, wraps each core module into a component, and writes `guests.rs` with one
//! path constant per guest plus the `foreach_guest!` macro.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The guests to build: (crate directory under `guest/`, constant name).
const GUESTS: &[(&str, &str)] = &[
    ("template", "TEMPLATE"),
    ("noop", "NOOP"),
    ("hostile", "HOSTILE"),
    ("redact", "REDACT"),
    ("policy", "POLICY"),
];

/// The guests the `vellum` binary carries as `builtin:NAME` (the shipped plugins).
const BUILTINS: &[&str] = &["redact", "policy", "template", "noop"];

/// Python guests under `guest/` (a directory holding `app.py`), built with componentize-py:
/// (directory, constant name).
const PYTHON_GUESTS: &[(&str, &str)] = &[("python-ticket", "PYTHON_TICKET")];

/// Library crates under `guest/` that guests depend on (rebuild when they change).
const LIBRARIES: &[&str] = &["redact-core"];

const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The componentize-py release the Python guests are built with (installed on demand into
/// `target/python-venv`).
const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// Set to anything to forbid this build script to install what it lacks (the wasm target,
/// componentize-py); it then fails, or skips the Python guests, and says what to install.
const NO_AUTO_INSTALL: &str = "VELLUM_NO_AUTO_INSTALL";

fn main() -> Result<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .ancestors()
        .nth(2)
        .context("guest/artifacts must sit two levels below the workspace root")?
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // One target directory shared by debug, release and clippy builds of the host, so the
    // guests are compiled once however the host is built.
    let guest_target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm-guests");

    println!("cargo::rerun-if-changed={}", root.join("wit").display());
    // The `guest` profile lives in the workspace manifest.
    println!(
        "cargo::rerun-if-changed={}",
        root.join("Cargo.toml").display()
    );
    println!("cargo::rerun-if-env-changed=COMPONENTIZE_PY");
    println!("cargo::rerun-if-env-changed={NO_AUTO_INSTALL}");
    for dir in GUESTS
        .iter()
        .chain(PYTHON_GUESTS)
        .map(|(dir, _)| *dir)
        .chain(LIBRARIES.iter().copied())
    {
        println!(
            "cargo::rerun-if-changed={}",
            root.join("guest").join(dir).display()
        );
    }

    ensure_wasm_target()?;
    build_guests(&root, &guest_target)?;

    let mut generated = String::new();
    let mut names = Vec::new();
    for (dir, constant) in GUESTS {
        let module_path = guest_target
            .join(WASM_TARGET)
            .join("guest")
            .join(format!("vellum_guest_{}.wasm", dir.replace('-', "_")));
        let component_path = out_dir.join(format!("{dir}.component.wasm"));
        componentize(&module_path, &component_path)?;
        writeln!(
            generated,
            "/// Path of the `guest/{dir}` component, built from source.\n\
             pub const {constant}: &str = {:?};",
            component_path.display().to_string()
        )?;
        names.push(*constant);
    }
    writeln!(
        generated,
        "/// The shipped plugins' components, built from source, by name (`builtin:NAME` in a \
         chain file).\npub const BUILTINS: &[(&str, &[u8])] = &[{}];",
        BUILTINS
            .iter()
            .map(|name| {
                let path = out_dir.join(format!("{name}.component.wasm"));
                format!(
                    "({name:?}, include_bytes!({:?}))",
                    path.display().to_string()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    let componentize_py = find_componentize_py(&root).or_else(|| install_componentize_py(&root));
    for (dir, constant) in PYTHON_GUESTS {
        let path = match &componentize_py {
            Some(tool) => {
                let component = out_dir.join(format!("{dir}.component.wasm"));
                build_python(tool, &root, dir, &component)?;
                format!("Some({:?})", component.display().to_string())
            }
            None => {
                println!(
                    "cargo::warning=componentize-py is not available: the Python guest `{dir}` \
                     is NOT built and the tests that need it fail (see the warnings above)"
                );
                "None".to_string()
            }
        };
        writeln!(
            generated,
            "/// Path of the `guest/{dir}` component (Python, built with componentize-py), or \
             `None` when componentize-py could not be installed.\n\
             pub const {constant}: Option<&str> = {path};"
        )?;
    }
    writeln!(
        generated,
        "/// Calls `$mac!(NAME)` once for every guest constant, so each guest gets a test.\n\
         #[macro_export]\n\
         macro_rules! foreach_guest {{\n    ($mac:ident) => {{\n{}    }};\n}}",
        names
            .iter()
            .map(|n| format!("        $mac!({n});\n"))
            .collect::<String>()
    )?;
    std::fs::write(out_dir.join("guests.rs"), generated)?;
    Ok(())
}

/// Makes sure the wasm target's standard library is installed: installs it with rustup
/// (saying so) when it is missing, unless [`NO_AUTO_INSTALL`] is set; otherwise fails with
/// the command to run.
fn ensure_wasm_target() -> Result<()> {
    if wasm_target_installed()? {
        return Ok(());
    }
    let manual = format!(
        "the Rust target `{WASM_TARGET}` is not installed, so Vellum's guest plugins cannot be \
         built.\n    Run: rustup target add {WASM_TARGET}"
    );
    if env::var_os(NO_AUTO_INSTALL).is_some() {
        bail!("{manual}\n({NO_AUTO_INSTALL} is set, so the build does not install it)");
    }
    println!(
        "cargo::warning=installing the Rust target {WASM_TARGET} with `rustup target add` (set {NO_AUTO_INSTALL}=1 to forbid)"
    );
    // RUSTUP_TOOLCHAIN, set by rustup for this build, makes rustup add it to this toolchain.
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status();
    match status {
        Ok(status) if status.success() && wasm_target_installed()? => Ok(()),
        Ok(status) => bail!("{manual}\n(`rustup target add` failed: {status})"),
        Err(e) => bail!("{manual}\n(rustup cannot be run: {e})"),
    }
}

/// Whether rustc finds the wasm target's standard library.
fn wasm_target_installed() -> Result<bool> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let output = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .with_context(|| format!("running `{rustc} --print target-libdir`"))?;
    let libdir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Ok(output.status.success() && Path::new(&libdir).is_dir())
}

/// Builds every guest for the wasm target as a cdylib (on the host they are rlibs, so a
/// native `cargo build --workspace` never links their wasm exports), one nested
/// `cargo rustc` per guest.
fn build_guests(root: &Path, target_dir: &Path) -> Result<()> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    for (dir, _) in GUESTS {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(root)
            .args(["rustc", "--profile", "guest", "--target", WASM_TARGET])
            .args([
                "-p",
                &format!("vellum-guest-{dir}"),
                "--crate-type",
                "cdylib",
            ])
            .arg("--target-dir")
            .arg(target_dir);
        // The outer build's flags and wrappers (for example clippy's) must not leak into the
        // guest build: they would change its fingerprint or target the wrong architecture.
        for var in [
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTFLAGS",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "CARGO_BUILD_TARGET",
            "CARGO_TARGET_DIR",
            "CARGO_PROFILE_RELEASE_DEBUG",
            "CARGO_PRIMARY_PACKAGE",
        ] {
            cmd.env_remove(var);
        }
        let status = cmd.status().context("running cargo to build the guests")?;
        if !status.success() {
            bail!(
                "building the guest plugin guest/{dir} failed ({status}); see the cargo output above"
            );
        }
    }
    Ok(())
}

/// componentize-py: `$COMPONENTIZE_PY`, else the one this script installs in
/// `target/python-venv`, else one on `PATH`.
fn find_componentize_py(root: &Path) -> Option<PathBuf> {
    let candidates = [
        env::var_os("COMPONENTIZE_PY").map(PathBuf::from),
        Some(root.join("target/python-venv/bin/componentize-py")),
        Some(PathBuf::from("componentize-py")),
    ];
    candidates.into_iter().flatten().find(|tool| runs(tool))
}

/// Installs the pinned componentize-py into `target/python-venv` with python3's venv and
/// pip, saying so, unless [`NO_AUTO_INSTALL`] is set. Returns the tool, or `None` (with a
/// warning naming the cause) when it cannot.
fn install_componentize_py(root: &Path) -> Option<PathBuf> {
    if env::var_os(NO_AUTO_INSTALL).is_some() {
        println!(
            "cargo::warning=componentize-py not found and {NO_AUTO_INSTALL} is set: not installing it"
        );
        return None;
    }
    let venv = root.join("target/python-venv");
    println!(
        "cargo::warning=installing componentize-py {COMPONENTIZE_PY_VERSION} into {} (set {NO_AUTO_INSTALL}=1 to forbid)",
        venv.display()
    );
    let run = |cmd: &mut Command, what: &str| match cmd.status() {
        Ok(status) if status.success() => true,
        Ok(status) => {
            println!("cargo::warning={what} failed: {status}");
            false
        }
        Err(e) => {
            println!("cargo::warning={what} cannot run: {e}");
            false
        }
    };
    let pip = venv.join("bin/pip");
    let installed = run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    ) && run(
        Command::new(&pip)
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("componentize-py=={COMPONENTIZE_PY_VERSION}")),
        "pip install componentize-py",
    );
    let tool = venv.join("bin/componentize-py");
    (installed && runs(&tool)).then_some(tool)
}

/// Whether a tool answers `--version`.
fn runs(tool: &Path) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Builds a Python guest against the plugin world.
fn build_python(tool: &Path, root: &Path, dir: &str, component: &Path) -> Result<()> {
    let status = Command::new(tool)
        .arg("-d")
        .arg(root.join("wit"))
        .args(["-w", "plugin", "componentize", "-p"])
        .arg(root.join("guest").join(dir))
        .arg("app")
        .arg("-o")
        .arg(component)
        .status()
        .with_context(|| format!("running {}", tool.display()))?;
    if !status.success() {
        bail!("componentize-py failed to build guest/{dir} ({status})");
    }
    Ok(())
}

/// Wraps a core wasm module (with its embedded WIT metadata) into a component.
fn componentize(module_path: &Path, component_path: &Path) -> Result<()> {
    let module = std::fs::read(module_path)
        .with_context(|| format!("reading guest module {}", module_path.display()))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .with_context(|| format!("reading WIT metadata of {}", module_path.display()))?
        .validate(true)
        .encode()
        .with_context(|| format!("encoding {} as a component", module_path.display()))?;
    std::fs::write(component_path, component)
        .with_context(|| format!("writing {}", component_path.display()))?;
    Ok(())
}
