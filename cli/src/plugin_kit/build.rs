//! `vellum plugin build [DIR]`: builds a plugin project into `NAME.wasm`, a component of the
//! `vellum:audit/plugin` world, then checks it as `vellum plugin inspect` does.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use clap::Args;
use vellum_guest_artifacts::toolchain;

use super::{Language, Project, WIT, tools_dir};
use crate::exit;

/// Arguments of `vellum plugin build`.
#[derive(Args)]
pub struct BuildArgs {
    /// The plugin project (made by `vellum plugin new`); default: the current directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
}

/// Builds and checks the component; exit `CONFIG` when it does not fit the plugin world.
pub fn build(args: BuildArgs) -> Result<u8> {
    let project = Project::open(&args.dir)?;
    let out = project.component();
    say!(
        "building the {} plugin `{}` in {}",
        project.language.title(),
        project.name,
        project.dir.display()
    );
    match project.language {
        Language::Rust => build_rust(&project, &out)?,
        Language::Python => {
            let wit = project_wit(&project)?;
            let tool = toolchain::componentize_py(&tools_dir()?, toolchain::may_install(), &note)?;
            toolchain::build_python(&tool, &wit, &project.dir, &project.entry, &out)
                .with_context(|| format!("building {}", project.dir.display()))?;
        }
        Language::Js => {
            let wit = project_wit(&project)?;
            let source = project.dir.join(&project.entry);
            if !source.is_file() {
                bail!(
                    "{}: no such file (package.json's \"main\" names the plugin module)",
                    source.display()
                );
            }
            let script =
                toolchain::componentize_js(&tools_dir()?, toolchain::may_install(), &note)?;
            toolchain::build_js(&script, &wit, &source, &out)
                .with_context(|| format!("building {}", source.display()))?;
        }
    }
    check(&out)
}

/// Progress from the toolchain (installs), on stderr so stdout stays the build's report.
fn note(message: &str) {
    eprintln!("vellum: {message}");
}

/// The project's `wit/` directory (Python and JavaScript builds read the contract from it);
/// warns when it is not the contract this binary speaks.
fn project_wit(project: &Project) -> Result<PathBuf> {
    let dir = project.dir.join("wit");
    let file = dir.join("audit.wit");
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "cannot read {}: the plugin's contract must be there (`vellum plugin new` writes it)",
            file.display()
        )
    })?;
    if text != WIT {
        note(&format!(
            "warning: {} differs from the contract this vellum speaks (vellum:audit@0.1.0); \
             building against the project's copy",
            file.display()
        ));
    }
    Ok(dir)
}

/// cargo for the wasm target (release profile), then the core module wrapped into a
/// component with wit-component.
fn build_rust(project: &Project, out: &Path) -> Result<()> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    toolchain::ensure_wasm_target(&rustc, toolchain::may_install(), &note)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut child = Command::new(&cargo)
        .args(["build", "--release", "--target", toolchain::WASM_TARGET])
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(project.dir.join("Cargo.toml"))
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!("cannot run {cargo} (is Rust installed? see https://rustup.rs)")
        })?;
    let stdout = child.stdout.take().context("cargo's output")?;
    let mut module = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's output")?;
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let is_cdylib = message["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"));
        if message["reason"] == "compiler-artifact" && is_cdylib {
            module = message["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))
                .map(PathBuf::from);
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!("cargo build failed ({status}); see its messages above");
    }
    let module = module.with_context(|| {
        format!(
            "cargo built no wasm library: {} needs `[lib] crate-type = [\"cdylib\"]`",
            project.dir.join("Cargo.toml").display()
        )
    })?;
    let bytes = std::fs::read(&module).with_context(|| format!("reading {}", module.display()))?;
    let component = toolchain::componentize_module(&bytes)
        .with_context(|| format!("componentizing {}", module.display()))?;
    std::fs::write(out, component).with_context(|| format!("writing {}", out.display()))
}

/// Checks the component as `vellum plugin inspect` would and prints its size, digest and
/// imports.
fn check(path: &Path) -> Result<u8> {
    let report = crate::inspect::component_report(path)?;
    say!("built {}", path.display());
    say!("  size:    {} bytes", report.size);
    say!("  digest:  {}", report.digest);
    let imports: Vec<&str> = report.imports.iter().map(|i| i.name.as_str()).collect();
    say!(
        "  imports: {}",
        if imports.is_empty() {
            "none".to_string()
        } else {
            imports.join(", ")
        }
    );
    if imports.iter().any(|i| i.starts_with("wasi:")) {
        say!(
            "  note:    its language runtime imports WASI; the host answers with a context \
             that grants nothing (no files, network, environment; frozen clocks)"
        );
    }
    for problem in &report.problems {
        say!("  problem: {problem}");
    }
    match &report.world {
        Some(world) => {
            say!("  world:   {world}");
            Ok(exit::OK)
        }
        None => {
            say!("  world:   does not fit vellum:audit/plugin@0.1.0 (see the problems above)");
            Ok(exit::CONFIG)
        }
    }
}
