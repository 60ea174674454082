//! Builds every guest crate under `guest/` for `wasm32-unknown-unknown` with the workspace's
//! `guest` profile, wraps each core module into a component, and writes `guests.rs` with one
//! path constant per guest plus the `foreach_guest!` macro.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

#[path = "src/toolchain.rs"]
#[allow(dead_code)] // the library uses what the build script does not
mod toolchain;

use toolchain::{NO_AUTO_INSTALL, WASM_TARGET};

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

/// JavaScript guests under `guest/` (a directory holding `plugin.js`), built with
/// componentize-js: (directory, constant name).
const JS_GUESTS: &[(&str, &str)] = &[("js-domains", "JS_DOMAINS")];

/// Library crates under `guest/` that guests depend on (rebuild when they change).
const LIBRARIES: &[&str] = &["redact-core", "sdk"];

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
    println!(
        "cargo::rerun-if-changed={}",
        manifest_dir.join("src/toolchain.rs").display()
    );
    for dir in GUESTS
        .iter()
        .chain(PYTHON_GUESTS)
        .chain(JS_GUESTS)
        .map(|(dir, _)| *dir)
        .chain(LIBRARIES.iter().copied())
    {
        println!(
            "cargo::rerun-if-changed={}",
            root.join("guest").join(dir).display()
        );
    }

    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    toolchain::ensure_wasm_target(&rustc, toolchain::may_install(), &warn)?;
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
    // Tools for the Python and JavaScript guests, installed on demand beside the guests.
    let tools = guest_target.join("tools");
    let componentize_py = toolchain::componentize_py(&tools, toolchain::may_install(), &warn)
        .map_err(|e| {
            warn(&format!("{e:#}"));
        });
    for (dir, constant) in PYTHON_GUESTS {
        let component = componentize_py.as_ref().ok().map(|tool| {
            let out = out_dir.join(format!("{dir}.component.wasm"));
            let source = root.join("guest").join(dir);
            toolchain::build_python(tool, &root.join("wit"), &source, "app", &out)
                .with_context(|| format!("building the Python guest guest/{dir}"))
                .map(|()| out)
        });
        optional_guest(
            &mut generated,
            dir,
            constant,
            "Python, componentize-py",
            component,
        )?;
    }
    let componentize_js = toolchain::componentize_js(&tools, toolchain::may_install(), &warn)
        .map_err(|e| {
            warn(&format!("{e:#}"));
        });
    for (dir, constant) in JS_GUESTS {
        let component = componentize_js.as_ref().ok().map(|script| {
            let out = out_dir.join(format!("{dir}.component.wasm"));
            let source = root.join("guest").join(dir).join("plugin.js");
            toolchain::build_js(script, &root.join("wit"), &source, &out)
                .with_context(|| format!("building the JavaScript guest guest/{dir}"))
                .map(|()| out)
        });
        optional_guest(
            &mut generated,
            dir,
            constant,
            "JavaScript, componentize-js",
            component,
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

/// Writes the constant of a guest that needs a tool this machine may lack: `Some(path)` when
/// it was built, `None` (with a warning) when its tool could not be had. A guest whose tool
/// exists but whose build fails fails the build.
fn optional_guest(
    generated: &mut String,
    dir: &str,
    constant: &str,
    how: &str,
    component: Option<Result<PathBuf>>,
) -> Result<()> {
    let path = match component.transpose()? {
        Some(path) => format!("Some({:?})", path.display().to_string()),
        None => {
            warn(&format!(
                "the guest `{dir}` ({how}) is NOT built, so the tests that need it fail (see \
                 the warnings above)"
            ));
            "None".to_string()
        }
    };
    writeln!(
        generated,
        "/// Path of the `guest/{dir}` component ({how}), or `None` when its tool could not be \
         installed.\npub const {constant}: Option<&str> = {path};"
    )?;
    Ok(())
}

/// Wraps a core wasm module into a component file.
fn componentize(module_path: &Path, component_path: &Path) -> Result<()> {
    let module = std::fs::read(module_path)
        .with_context(|| format!("reading guest module {}", module_path.display()))?;
    let component = toolchain::componentize_module(&module)
        .with_context(|| format!("componentizing {}", module_path.display()))?;
    std::fs::write(component_path, component)
        .with_context(|| format!("writing {}", component_path.display()))
}

/// Shows a message as a cargo warning (one line per line: cargo reads directives per line).
fn warn(message: &str) {
    for line in message.lines() {
        println!("cargo::warning={line}");
    }
}
