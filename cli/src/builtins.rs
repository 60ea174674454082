//! The shipped plugins built into the binary (`builtin:NAME`): `vellum plugin list` and
//! `vellum plugin export`, and reading a component given as a path or a built-in name.

use std::path::{Path, PathBuf};

use anyhow::Result;
use sha2::{Digest, Sha256};
use vellum::chain::{Builtins, LoadOptions};

use super::exit;

/// The components this binary carries.
pub const BUILTINS: Builtins = Builtins(vellum_guest_artifacts::BUILTINS);

/// How the CLI loads chains: with the built-in plugins.
pub fn load_options(no_cache: bool) -> LoadOptions {
    LoadOptions {
        no_cache,
        builtins: BUILTINS,
    }
}

/// The bytes of a component named by path or as `builtin:NAME`.
pub fn read_component(component: &Path) -> Result<Vec<u8>> {
    BUILTINS.read(component).map_err(anyhow::Error::msg)
}

/// `vellum plugin list`: name, size and SHA-256 of every built-in plugin.
pub fn list(json: bool) -> Result<u8> {
    let rows: Vec<_> = BUILTINS
        .0
        .iter()
        .map(|(name, bytes)| {
            let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
            (format!("{}{name}", Builtins::PREFIX), bytes.len(), digest)
        })
        .collect();
    if json {
        let value: Vec<_> = rows
            .iter()
            .map(|(name, size, digest)| serde_json::json!({"name": name, "size": size, "digest": digest}))
            .collect();
        say!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        for (name, size, digest) in rows {
            say!("{name:<18} {size:>9} bytes  {digest}");
        }
    }
    Ok(exit::OK)
}

/// `vellum plugin export builtin:NAME -o FILE`: writes the component, for other hosts or
/// `vellum test`.
pub fn export(name: &Path, output: &PathBuf) -> Result<u8> {
    let bytes = match read_component(name) {
        Ok(bytes) => bytes,
        Err(e) => {
            super::report(&e);
            return Ok(exit::CONFIG);
        }
    };
    std::fs::write(output, &bytes)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", output.display()))?;
    eprintln!("wrote {} ({} bytes)", output.display(), bytes.len());
    Ok(exit::OK)
}
