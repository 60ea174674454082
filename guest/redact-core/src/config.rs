//! The redactor's configuration: TOML or JSON text, validated with errors that name the rule.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::detectors::builtins;

/// How a detected value is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operator {
    /// Replace with a type tag such as `[EMAIL]`.
    Mask,
    /// Keep the last `keep` characters: `[CARD …1111]`.
    Partial,
    /// A keyed pseudonym from the host: `[EMAIL:pseu:…]`; equal inputs give equal tokens.
    Hash,
    /// Remove the whole field (object member or array element) that contains the value.
    Remove,
}

/// Settings of one built-in detector.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DetectorConfig {
    /// Turn the detector on or off (all but `entropy` are on by default).
    pub enabled: Option<bool>,
    /// The operator (default `mask`).
    pub operator: Option<Operator>,
    /// Characters kept by `partial` (default 4).
    pub keep: Option<usize>,
}

/// A custom rule: a named regular expression with an operator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CustomRule {
    /// Name, used as the tag (upper-cased) and in errors.
    pub name: String,
    /// A regular expression (Rust `regex` syntax).
    pub pattern: String,
    /// The operator (default `mask`).
    #[serde(default)]
    pub operator: Option<Operator>,
    /// Characters kept by `partial` (default 4).
    #[serde(default)]
    pub keep: Option<usize>,
}

/// The redactor's configuration. Every field is optional; the empty configuration turns on
/// every detector except `entropy`, with `mask`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Per-detector settings, by detector name (see [`crate::builtins`]).
    #[serde(default)]
    pub detectors: BTreeMap<String, DetectorConfig>,
    /// Custom rules, applied before the built-in detectors.
    #[serde(default)]
    pub rules: Vec<CustomRule>,
    /// Values never redacted (exact match).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Patterns of values never redacted (the whole match must match the pattern).
    #[serde(default)]
    pub allow_patterns: Vec<String>,
    /// Object keys whose values are secrets whatever they look like, matched as words
    /// (snake, kebab and camel case; see `keys.rs`). Replaces the default list.
    #[serde(default)]
    pub sensitive_keys: Option<Vec<String>>,
    /// Operator for values of sensitive keys (default `mask`).
    #[serde(default)]
    pub sensitive_keys_operator: Option<Operator>,
    /// Envelope fields to scan besides the payload: `actor`, `subject`, `labels` (default:
    /// all three; `[]` scans the payload only).
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// What to do when a credential or an e-mail address sits in a protected field (`id`,
    /// `kind`, `correlation_id`, `chain_id`), which no plugin may rewrite: `reject` the
    /// event, naming the field (the default: fail closed), or `ignore` it and record the
    /// field as sent.
    #[serde(default)]
    pub protected_fields: Option<ProtectedFields>,
}

/// See [`Config::protected_fields`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProtectedFields {
    /// Refuse the event, naming the field.
    Reject,
    /// Record the field as sent.
    Ignore,
}

/// The default sensitive key names.
pub const DEFAULT_SENSITIVE_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "secrets",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "cookies",
    "private_key",
    "credential",
    "credentials",
    "access_key",
    "secret_key",
    "app_key",
    "account_key",
    "master_key",
    "signing_key",
    "encryption_key",
    "passphrase",
    "connection_string",
    "conn_str",
];

/// Envelope fields the redactor may scan.
pub const ENVELOPE_FIELDS: &[&str] = &["actor", "subject", "labels"];

/// An invalid configuration, with a message naming the setting or rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parses configuration text: JSON when it starts with `{`, TOML otherwise; empty text
    /// is the default configuration.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let trimmed = text.trim();
        let config: Config = if trimmed.is_empty() {
            Config::default()
        } else if trimmed.starts_with('{') {
            serde_json::from_str(trimmed)
                .map_err(|e| ConfigError(format!("invalid JSON configuration: {e}")))?
        } else {
            toml::from_str(trimmed)
                .map_err(|e| ConfigError(format!("invalid TOML configuration: {e}")))?
        };
        config.check_names()?;
        Ok(config)
    }

    /// Whether some value may be redacted with `hash`, which needs the host's pseudonym
    /// key: a custom rule, an enabled detector or the sensitive keys use it.
    pub fn uses_hash(&self) -> bool {
        let hash = |operator: Option<Operator>| operator == Some(Operator::Hash);
        let detector = |d: &crate::detectors::DetectorSpec| {
            let settings = self.detectors.get(d.name);
            settings.and_then(|s| s.enabled).unwrap_or(d.default_on)
                && hash(settings.and_then(|s| s.operator))
        };
        self.rules.iter().any(|r| hash(r.operator))
            || builtins().any(detector)
            || hash(self.sensitive_keys_operator)
    }

    fn check_names(&self) -> Result<(), ConfigError> {
        for name in self.detectors.keys() {
            if !builtins().any(|d| d.name == name) {
                let mut known: Vec<&str> = builtins().map(|d| d.name).collect();
                known.dedup();
                return Err(ConfigError(format!(
                    "unknown detector `{name}` in [detectors] (known: {})",
                    known.join(", ")
                )));
            }
        }
        for field in self.fields.iter().flatten() {
            if !ENVELOPE_FIELDS.contains(&field.as_str()) {
                return Err(ConfigError(format!(
                    "unknown envelope field `{field}` in fields (known: {})",
                    ENVELOPE_FIELDS.join(", ")
                )));
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.name.trim().is_empty() {
                return Err(ConfigError(format!("rules[{i}]: `name` must not be empty")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_hash_only_when_something_enabled_hashes() {
        let uses = |text: &str| Config::parse(text).expect(text).uses_hash();
        assert!(!uses(""));
        assert!(uses("[detectors.email]\noperator = \"hash\""));
        // A detector that is off hashes nothing.
        assert!(!uses(
            "[detectors.email]\nenabled = false\noperator = \"hash\""
        ));
        assert!(uses(
            "[detectors.entropy]\nenabled = true\noperator = \"hash\""
        ));
        assert!(!uses("[detectors.entropy]\noperator = \"hash\""));
        assert!(uses("sensitive-keys-operator = \"hash\""));
        assert!(uses(
            "[[rules]]\nname = \"emp\"\npattern = 'EMP-\\d+'\noperator = \"hash\""
        ));
        assert!(!uses("[[rules]]\nname = \"emp\"\npattern = 'EMP-\\d+'"));
    }
}
