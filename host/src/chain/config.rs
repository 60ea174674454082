//! The chain configuration file (TOML). See the README's "Configure a chain" section.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::plugin::Limits;

/// A configuration file or text that cannot be used: the message names the file, the line
/// or the setting, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    /// What is wrong, and where.
    pub message: String,
}

impl ConfigError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The same error, prefixed with where it was found.
    pub fn context(self, at: impl std::fmt::Display) -> Self {
        Self::new(format!("{at}: {}", self.message))
    }
}

type Result<T, E = ConfigError> = std::result::Result<T, E>;

macro_rules! bail {
    ($($arg:tt)*) => {
        return Err(ConfigError::new(format!($($arg)*)))
    };
}

/// Largest accepted `batch-size`.
pub const MAX_BATCH_SIZE: usize = 10_000;

/// A parsed and validated chain configuration. Relative paths are resolved against the
/// directory of the chain file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ChainConfig {
    /// Events per plugin call (default 64).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Where compiled components are cached; default: the user's cache directory.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Hex key file for the `pseudonymize` host function; without it, plugins that call it
    /// fail.
    #[serde(default)]
    pub pseudonym_key_file: Option<PathBuf>,
    /// Protected fields the host replaces with a keyed pseudonym (`pseu:…`, by the
    /// `pseudonym-key-file`) before the first plugin sees the event: `correlation_id`,
    /// `chain_id`. No plugin may rewrite a protected field, so a producer that puts user
    /// content there (an e-mail as a conversation id) would otherwise have it stored as
    /// sent, or the event refused by a redactor that finds it. Equal values give equal
    /// pseudonyms, so the entries of one run still join. Default: none.
    #[serde(default)]
    pub pseudonymize_protected: Vec<ProtectedField>,
    /// Limits applied to every plugin unless the plugin overrides them.
    #[serde(default)]
    pub defaults: LimitsPatch,
    /// The plugins, applied in this order.
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<PluginConfig>,
}

/// One `[[plugin]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginConfig {
    /// Unique name, used in messages and attestations.
    pub name: String,
    /// Path of the component (`.wasm`), or `builtin:NAME` for one built into the program.
    pub component: PathBuf,
    /// Configuration text passed to the plugin's `configure`.
    #[serde(default)]
    pub config: Option<String>,
    /// File whose contents are passed to `configure` (instead of `config`).
    #[serde(default)]
    pub config_file: Option<PathBuf>,
    /// What happens to an event when this plugin fails on it.
    #[serde(default)]
    pub on_error: OnError,
    /// Limits overriding `[defaults]`.
    #[serde(default)]
    pub limits: LimitsPatch,
}

/// A protected envelope field the host may pseudonymise before the chain (see
/// [`ChainConfig::pseudonymize_protected`]). The event id (the producer's receipt names it)
/// and the kind (a dotted name the runtime chooses) are not among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtectedField {
    /// `correlation_id`.
    CorrelationId,
    /// `chain_id`.
    ChainId,
}

impl ProtectedField {
    /// The field's name, also the domain of its pseudonyms.
    pub fn name(self) -> &'static str {
        match self {
            ProtectedField::CorrelationId => "correlation_id",
            ProtectedField::ChainId => "chain_id",
        }
    }
}

/// What to do with an event when a plugin fails on it (trap, deadline, bad output, ...).
/// Either way the failure is reported and the event's unredacted content goes no further.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// Fail closed: the event is rejected and its producer gets the error (default).
    #[default]
    Reject,
    /// The event is dropped: only a drop marker naming the failure is kept.
    Drop,
}

/// Limits where every field is optional, layered over the defaults.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsPatch {
    /// See [`Limits::deadline_ms`].
    pub deadline_ms: Option<u64>,
    /// See [`Limits::fuel`].
    pub fuel: Option<u64>,
    /// See [`Limits::max_memory_bytes`].
    pub max_memory_bytes: Option<usize>,
    /// See [`Limits::max_table_elements`].
    pub max_table_elements: Option<usize>,
    /// See [`Limits::max_output_bytes`].
    pub max_output_bytes: Option<usize>,
}

impl LimitsPatch {
    /// `base` with the fields this patch sets replaced.
    pub fn apply(&self, base: Limits) -> Limits {
        Limits {
            deadline_ms: self.deadline_ms.unwrap_or(base.deadline_ms),
            fuel: self.fuel.or(base.fuel),
            max_memory_bytes: self.max_memory_bytes.unwrap_or(base.max_memory_bytes),
            max_table_elements: self.max_table_elements.unwrap_or(base.max_table_elements),
            max_output_bytes: self.max_output_bytes.unwrap_or(base.max_output_bytes),
        }
    }
}

fn default_batch_size() -> usize {
    64
}

impl Default for ChainConfig {
    /// A chain of no plugins: events are recorded as the producer sent them.
    fn default() -> Self {
        Self {
            batch_size: default_batch_size(),
            cache_dir: None,
            pseudonym_key_file: None,
            pseudonymize_protected: Vec::new(),
            defaults: LimitsPatch::default(),
            plugins: Vec::new(),
        }
    }
}

impl ChainConfig {
    /// Reads, parses and validates a chain file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(format!("cannot read chain file {}: {e}", path.display()))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base)
            .map_err(|e| e.context(format_args!("invalid chain file {}", path.display())))
    }

    /// Parses and validates chain TOML; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self> {
        let mut config: ChainConfig =
            toml::from_str(text).map_err(|e| ConfigError::new(e.to_string()))?;
        config.validate()?;
        config.resolve_paths(base);
        Ok(config)
    }

    /// Makes relative paths relative to `base` (the directory of the file they came from).
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            let builtin = p
                .to_str()
                .is_some_and(|p| p.starts_with(super::Builtins::PREFIX));
            if p.is_relative() && !builtin {
                *p = base.join(&*p);
            }
        };
        self.cache_dir.as_mut().map(resolve);
        self.pseudonym_key_file.as_mut().map(resolve);
        for plugin in &mut self.plugins {
            resolve(&mut plugin.component);
            plugin.config_file.as_mut().map(resolve);
        }
    }

    /// Checks what the types cannot: the batch size, unique plugin names, usable limits.
    pub(crate) fn validate(&self) -> Result<()> {
        if !self.pseudonymize_protected.is_empty() && self.pseudonym_key_file.is_none() {
            bail!("pseudonymize-protected needs a pseudonym-key-file: the pseudonyms are keyed");
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            bail!(
                "batch-size must be between 1 and {MAX_BATCH_SIZE}, not {}",
                self.batch_size
            );
        }
        let mut names = HashSet::new();
        for (i, plugin) in self.plugins.iter().enumerate() {
            let at = format!("plugin #{} (`{}`)", i + 1, plugin.name);
            if plugin.name.trim().is_empty() {
                bail!("plugin #{}: `name` must not be empty", i + 1);
            }
            if !names.insert(plugin.name.as_str()) {
                bail!("{at}: the name is used twice; plugin names must be unique");
            }
            if plugin.config.is_some() && plugin.config_file.is_some() {
                bail!("{at}: set `config` or `config-file`, not both");
            }
            self.limits_for(plugin)
                .validate()
                .map_err(|e| ConfigError::new(format!("{at}: {e}")))?;
        }
        Ok(())
    }

    /// The effective limits of a plugin: built-in defaults, then `[defaults]`, then its own.
    pub fn limits_for(&self, plugin: &PluginConfig) -> Limits {
        plugin.limits.apply(self.defaults.apply(Limits::default()))
    }

    /// The configuration text of a plugin (inline, from its file, or empty).
    pub fn config_text(plugin: &PluginConfig) -> Result<String> {
        match (&plugin.config, &plugin.config_file) {
            (Some(text), _) => Ok(text.clone()),
            (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(format!(
                    "plugin `{}`: cannot read config-file {}: {e}",
                    plugin.name,
                    path.display()
                ))
            }),
            (None, None) => Ok(String::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_limits_and_resolves_paths() {
        let c = ChainConfig::parse(
            r#"
batch-size = 8
[defaults]
deadline-ms = 50
[[plugin]]
name = "a"
component = "a.wasm"
[plugin.limits]
max-memory-bytes = 1048576
"#,
            Path::new("/etc/vellum"),
        )
        .unwrap();
        let limits = c.limits_for(&c.plugins[0]);
        assert_eq!(limits.deadline_ms, 50);
        assert_eq!(limits.max_memory_bytes, 1 << 20);
        assert_eq!(limits.max_output_bytes, Limits::default().max_output_bytes);
        assert_eq!(c.plugins[0].component, Path::new("/etc/vellum/a.wasm"));
        assert_eq!(c.plugins[0].on_error, OnError::Reject);
    }

    #[test]
    fn errors_name_what_and_where() {
        let err = ChainConfig::parse(
            "[[plugin]]\nname = \"a\"\ncomponent = \"a.wasm\"\non-eror = \"drop\"\n",
            Path::new("."),
        )
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("on-eror") && text.contains("line 4"),
            "{text}"
        );

        let dup =
            "[[plugin]]\nname=\"a\"\ncomponent=\"x\"\n[[plugin]]\nname=\"a\"\ncomponent=\"y\"\n";
        let text = format!("{:#}", ChainConfig::parse(dup, Path::new(".")).unwrap_err());
        assert!(
            text.contains("plugin #2") && text.contains("twice"),
            "{text}"
        );

        let zero = "[defaults]\ndeadline-ms = 0\n[[plugin]]\nname=\"a\"\ncomponent=\"x\"\n";
        let text = format!(
            "{:#}",
            ChainConfig::parse(zero, Path::new(".")).unwrap_err()
        );
        assert!(text.contains("deadline-ms"), "{text}");

        let batch = "batch-size = 0\n";
        assert!(ChainConfig::parse(batch, Path::new(".")).is_err());
    }
}
