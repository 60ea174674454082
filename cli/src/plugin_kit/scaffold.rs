//! `vellum plugin new NAME --lang rust|python|js [--dir D]`: writes a standalone plugin
//! project — manifest, the WIT, an example that redacts one pattern, a cases file, a chain
//! file and a README — that `vellum plugin build` turns into a component.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use super::{Language, WIT, check_name};

/// Arguments of `vellum plugin new`.
#[derive(Args)]
pub struct NewArgs {
    /// The plugin's name: lower-case letters, digits and dashes (it names the package and
    /// the `.wasm` file).
    name: String,
    /// The language to write it in.
    #[arg(long, value_enum)]
    lang: Language,
    /// Where to create the project (must not exist, or be empty); default `./NAME`.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Rust: the path of the `vellum-plugin` SDK crate (`guest/sdk` in a Vellum checkout).
    /// Default: the checkout this binary was built from, when it is still there; otherwise
    /// a git dependency on the Vellum repository.
    #[arg(long)]
    sdk: Option<PathBuf>,
}

/// The files of one language's scaffold: (path in the project, template).
fn files(lang: Language) -> &'static [(&'static str, &'static str)] {
    macro_rules! template {
        ($path:literal) => {
            include_str!(concat!("../../templates/plugin/", $path))
        };
    }
    match lang {
        Language::Rust => &[
            ("Cargo.toml", template!("rust/Cargo.toml")),
            ("src/lib.rs", template!("rust/src/lib.rs")),
            (".gitignore", template!("rust/gitignore")),
        ],
        Language::Python => &[
            ("pyproject.toml", template!("python/pyproject.toml")),
            ("app.py", template!("python/app.py")),
            (".gitignore", template!("python/gitignore")),
        ],
        Language::Js => &[
            ("package.json", template!("js/package.json")),
            ("plugin.js", template!("js/plugin.js")),
            (".gitignore", template!("js/gitignore")),
        ],
    }
}

/// Files every scaffold has, whatever the language.
const COMMON: &[(&str, &str)] = &[
    (
        "cases.toml",
        include_str!("../../templates/plugin/common/cases.toml"),
    ),
    (
        "chain.toml",
        include_str!("../../templates/plugin/common/chain.toml"),
    ),
    (
        "README.md",
        include_str!("../../templates/plugin/common/README.md"),
    ),
    ("wit/audit.wit", WIT),
];

/// Creates the project; prints what it wrote and what to run next.
pub fn new(args: NewArgs) -> Result<u8> {
    check_name(&args.name)?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() {
        let empty = dir.is_dir()
            && std::fs::read_dir(&dir)
                .with_context(|| format!("cannot read {}", dir.display()))?
                .next()
                .is_none();
        if !empty {
            bail!(
                "{} already exists and is not an empty directory: choose another --dir",
                dir.display()
            );
        }
    }
    let values = Values::for_project(&args)?;
    for (path, template) in files(args.lang).iter().chain(COMMON) {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let text = if *path == "wit/audit.wit" {
            (*template).to_string()
        } else {
            values.fill(template)
        };
        std::fs::write(&target, text)
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    say!(
        "created the {} plugin `{}` in {}",
        args.lang.title(),
        args.name,
        dir.display()
    );
    say!("next:");
    say!("  cd {}", dir.display());
    say!("  vellum plugin build .");
    say!("  vellum test {}.wasm --cases cases.toml", args.name);
    Ok(crate::exit::OK)
}

/// The values the templates' `{{…}}` placeholders take.
struct Values {
    pairs: Vec<(&'static str, String)>,
}

impl Values {
    fn for_project(args: &NewArgs) -> Result<Values> {
        let (sdk_dependency, sdk_note) = sdk_dependency(args.sdk.as_deref())?;
        let (source, requirements, sdk) = match args.lang {
            Language::Rust => (
                "src/lib.rs",
                "Needs Rust (rustup); `vellum plugin build` adds the `wasm32-unknown-unknown` \
                 target when it is missing.",
                "\n## The SDK\n\nThe `vellum-plugin` crate carries the WIT and the bindings: \
                 implement `Plugin` (`configure`, `apply`, optionally `apply_batch`) and \
                 export it with `vellum_plugin::export_plugin!`. Helpers: `payload`, \
                 `edit_payload` (returns `pass` when nothing changed), `strings_mut`, \
                 `label`, `set_label`, `json_config`, `log`, `pseudonymize`. Run `cargo doc \
                 --open` for its documentation. How it is found is in `Cargo.toml`.\n",
            ),
            Language::Python => (
                "app.py",
                "Needs python3 with venv and pip; `vellum plugin build` installs the pinned \
                 componentize-py into a cache directory (`VELLUM_TOOLS_DIR`, default \
                 `~/.cache/vellum/tools`) when it is missing, unless `VELLUM_NO_AUTO_INSTALL` \
                 is set. Python plugins are large (the interpreter is inside) and slower \
                 than Rust ones.",
                "",
            ),
            Language::Js => (
                "plugin.js",
                "Needs Node.js 20 or newer with npm; `vellum plugin build` installs the \
                 pinned componentize-js into a cache directory (`VELLUM_TOOLS_DIR`, default \
                 `~/.cache/vellum/tools`) when it is missing, unless \
                 `VELLUM_NO_AUTO_INSTALL` is set. The component carries a JavaScript engine \
                 (about 12 MB) and imports nothing but the host's services.",
                "",
            ),
        };
        Ok(Values {
            pairs: vec![
                ("name", args.name.clone()),
                ("language", args.lang.title().to_string()),
                ("source", source.to_string()),
                ("requirements", requirements.to_string()),
                ("sdk", sdk.to_string()),
                ("sdk_dependency", sdk_dependency),
                ("sdk_note", sdk_note),
            ],
        })
    }

    fn fill(&self, template: &str) -> String {
        self.pairs
            .iter()
            .fold(template.to_string(), |text, (key, value)| {
                text.replace(&format!("{{{{{key}}}}}"), value)
            })
    }
}

/// The `vellum-plugin` dependency line and a comment saying how to switch it.
fn sdk_dependency(given: Option<&Path>) -> Result<(String, String)> {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest/sdk");
    let path = match given {
        Some(path) => {
            if !path.join("Cargo.toml").is_file() {
                bail!(
                    "--sdk {}: no Cargo.toml there; point it at guest/sdk of a Vellum checkout",
                    path.display()
                );
            }
            Some(path.to_path_buf())
        }
        None => checkout.join("Cargo.toml").is_file().then_some(checkout),
    };
    let repository = env!("CARGO_PKG_REPOSITORY");
    let published = format!(
        "# Until the SDK is on crates.io it comes from a Vellum checkout or its git repository:\n\
         #   vellum-plugin = {{ path = \"/path/to/vellum/guest/sdk\" }}\n\
         #   vellum-plugin = {{ git = \"{repository}\" }}\n\
         # Once published: vellum-plugin = \"{}\"",
        env!("CARGO_PKG_VERSION")
    );
    match path {
        Some(path) => {
            let path = std::path::absolute(&path)
                .with_context(|| format!("resolving {}", path.display()))?;
            let path = path.canonicalize().unwrap_or(path);
            Ok((
                format!("{{ path = {:?} }}", path.display().to_string()),
                published,
            ))
        }
        None => Ok((format!("{{ git = {repository:?} }}"), published)),
    }
}
