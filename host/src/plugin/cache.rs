//! On-disk cache of precompiled components, keyed by the component's digest and the
//! engine's compatibility hash (wasmtime version, target and every setting that changes
//! generated code).
//!
//! Trust: a cached file is native code that wasmtime loads without re-verifying it, so the
//! cache directory must be writable only by the user running Vellum. Files are written to a
//! temporary name and renamed, so a crash never leaves a half-written entry under a real
//! name; an entry that fails to load is recompiled and replaced.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The compiled-component cache; disabled when it has no directory.
pub struct ComponentCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl ComponentCache {
    /// A cache in `dir` (created on first store) for components compiled by `engine`.
    pub fn new(dir: Option<PathBuf>, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    /// The default location: `$XDG_CACHE_HOME/vellum/components`, else
    /// `$HOME/.cache/vellum/components`.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("vellum").join("components"))
    }

    /// Returns the compiled component, from the cache when possible.
    pub(crate) fn load(&self, engine: &Engine, bytes: &[u8], digest: &str) -> Result<Component> {
        let Some(dir) = &self.dir else {
            return Ok(Component::new(engine, bytes)?);
        };
        let path = dir.join(format!(
            "{}-{}.cwasm",
            digest.trim_start_matches("sha256:"),
            self.engine_key
        ));
        if path.exists() {
            // SAFETY: the file was written by `store` below from `precompile_component` of
            // an engine with the same compatibility hash (it is in the name), and the cache
            // directory is trusted (see the module docs). wasmtime checks the header.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "recompiling unusable cache entry: {e:#}")
                }
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        if let Err(e) = store(dir, &path, &compiled) {
            tracing::warn!(dir = %dir.display(), "cannot write component cache: {e:#}");
        }
        // SAFETY: `compiled` was produced just now by this engine.
        Ok(unsafe { Component::deserialize(engine, &compiled) }?)
    }
}

/// Writes `data` to `path` atomically (temporary file in the same directory, then rename).
fn store(dir: &Path, path: &Path, data: &[u8]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)?;
    Ok(())
}
