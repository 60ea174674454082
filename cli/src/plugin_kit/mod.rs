//! `vellum plugin new` and `vellum plugin build`: a plugin project of its own, outside this
//! repository, in Rust, Python or JavaScript — scaffolded, built into a component and
//! checked with one command each.

pub mod build;
pub mod scaffold;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

/// The plugin contract this binary speaks: written into every scaffold, and compared with a
/// project's copy when it is built.
const WIT: &str = include_str!("../../../wit/audit.wit");

/// The languages a plugin project can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Language {
    /// Rust, on the `vellum-plugin` SDK crate; built with cargo and wit-component.
    Rust,
    /// Python; built with componentize-py.
    Python,
    /// JavaScript (an ES module); built with componentize-js.
    Js,
}

impl Language {
    /// Every language, in the order manifests are looked for.
    const ALL: [Language; 3] = [Language::Rust, Language::Python, Language::Js];

    /// The name people know it by.
    pub fn title(self) -> &'static str {
        match self {
            Language::Rust => "Rust",
            Language::Python => "Python",
            Language::Js => "JavaScript",
        }
    }

    /// The project manifest that marks a directory as a plugin of this language.
    pub fn manifest(self) -> &'static str {
        match self {
            Language::Rust => "Cargo.toml",
            Language::Python => "pyproject.toml",
            Language::Js => "package.json",
        }
    }
}

/// A plugin project found in a directory: its language and name (the component is written
/// to `NAME.wasm` in the directory).
#[derive(Debug)]
pub struct Project {
    /// The project directory.
    pub dir: PathBuf,
    /// The language, from the manifest found.
    pub language: Language,
    /// The plugin's name, from the manifest.
    pub name: String,
    /// Python: the module componentize-py builds (`[tool.vellum] module`, default `app`);
    /// JavaScript: the ES module file (`main`, default `plugin.js`); Rust: unused.
    pub entry: String,
}

impl Project {
    /// Reads the project in `dir`: exactly one of `Cargo.toml`, `pyproject.toml` and
    /// `package.json` must be there.
    pub fn open(dir: &Path) -> Result<Project> {
        let found: Vec<Language> = Language::ALL
            .into_iter()
            .filter(|l| dir.join(l.manifest()).is_file())
            .collect();
        let language = match found.as_slice() {
            [one] => *one,
            [] => bail!(
                "{} is not a plugin project: it has none of Cargo.toml (Rust), pyproject.toml \
                 (Python) or package.json (JavaScript); create one with `vellum plugin new`",
                dir.display()
            ),
            several => bail!(
                "{} holds the manifests of several languages ({}); a plugin project has one",
                dir.display(),
                several
                    .iter()
                    .map(|l| l.manifest())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let manifest = dir.join(language.manifest());
        let text = std::fs::read_to_string(&manifest)
            .with_context(|| format!("cannot read {}", manifest.display()))?;
        let at = |what: &str| format!("{}: {what}", manifest.display());
        // `[table] name` of a TOML manifest.
        let toml_name = |table: &str| -> anyhow::Result<(toml::Table, String)> {
            let doc: toml::Table = toml::from_str(&text).with_context(|| at("not TOML"))?;
            let name = doc
                .get(table)
                .and_then(|p| p.get("name"))
                .and_then(|n| n.as_str())
                .with_context(|| at(&format!("no [{table}] name")))?
                .to_string();
            Ok((doc, name))
        };
        let (name, entry) = match language {
            Language::Rust => (toml_name("package")?.1, String::new()),
            Language::Python => {
                let (doc, name) = toml_name("project")?;
                let module = doc
                    .get("tool")
                    .and_then(|t| t.get("vellum"))
                    .and_then(|v| v.get("module"))
                    .map(|m| {
                        m.as_str()
                            .with_context(|| at("[tool.vellum] module: not a string"))
                    })
                    .transpose()?
                    .unwrap_or("app");
                (name, module.to_string())
            }
            Language::Js => {
                let doc: serde_json::Value =
                    serde_json::from_str(&text).with_context(|| at("not JSON"))?;
                let name = doc["name"].as_str().with_context(|| at("no \"name\""))?;
                let main = doc["main"].as_str().unwrap_or("plugin.js");
                (name.to_string(), main.to_string())
            }
        };
        check_name(&name).with_context(|| at("the name"))?;
        Ok(Project {
            dir: dir.to_path_buf(),
            language,
            name,
            entry,
        })
    }

    /// Where the built component goes.
    pub fn component(&self) -> PathBuf {
        self.dir.join(format!("{}.wasm", self.name))
    }
}

/// A plugin name: lower-case ASCII letters, digits and single dashes, starting with a letter
/// (it names a crate, a package and the `.wasm` file, so it must suit all of them).
pub fn check_name(name: &str) -> Result<()> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        bail!(
            "`{name}` is not a usable plugin name: use lower-case letters, digits and single \
             dashes, starting with a letter (at most 64 characters), for example `ticket-redactor`"
        );
    }
    Ok(())
}

/// Where build tools (componentize-py, componentize-js) are installed on demand:
/// `$VELLUM_TOOLS_DIR`, else `$XDG_CACHE_HOME/vellum/tools`, else `~/.cache/vellum/tools`.
pub fn tools_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("VELLUM_TOOLS_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .context("neither VELLUM_TOOLS_DIR, XDG_CACHE_HOME nor HOME is set: set VELLUM_TOOLS_DIR to a directory for build tools")?;
    Ok(base.join("vellum").join("tools"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_suit_a_crate_a_package_and_a_file() {
        for good in ["a", "ticket-redactor", "pii2", "x-1-y"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "", "Ticket", "1st", "-a", "a-", "a--b", "a_b", "a b", "../x", "ä",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
