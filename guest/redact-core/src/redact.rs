//! Finding and rewriting secrets in strings and JSON values.

use regex::{Regex, RegexSet};
use serde_json::Value;

use crate::config::{Config, ConfigError, DEFAULT_SENSITIVE_KEYS, Operator};
use crate::detectors::{Compiled, DETECTORS, Finding, LOOKALIKES, LazyRegex};
use crate::keys::SensitiveKeys;

/// Characters kept by `partial` unless configured.
const DEFAULT_KEEP: usize = 4;

/// What became of a scanned string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The (possibly rewritten) string.
    Keep(String),
    /// A detector with the `remove` operator fired: drop the field holding the string.
    Remove,
}

/// What redacting a string or a JSON value in place did to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing was found: the value is as it was (a caller can pass the event on as is).
    Unchanged,
    /// Something was rewritten in place.
    Changed,
    /// A detector with the `remove` operator fired: drop the field holding the value.
    Remove,
}

impl Change {
    /// Whether the value differs from what it was (rewritten or to be removed).
    pub fn changed(self) -> bool {
        self != Change::Unchanged
    }

    /// Combines the changes of two parts of one value.
    fn and(self, other: Change) -> Change {
        if self.changed() || other.changed() {
            Change::Changed
        } else {
            Change::Unchanged
        }
    }
}

/// A compiled redaction configuration.
pub struct Redactor {
    detectors: Vec<Compiled>,
    /// Every detector's pattern in one set: one pass over a string tells which detectors
    /// can match it, so the others (usually all of them) are not run at all.
    candidates: RegexSet,
    /// Compiled only when a detector that respects look-alikes has a candidate.
    lookalikes: LazyRegex,
    allow: Vec<String>,
    allow_patterns: Vec<Regex>,
    sensitive_keys: SensitiveKeys,
    sensitive_operator: Operator,
    fields: Vec<String>,
}

impl Redactor {
    /// Compiles a configuration; a bad pattern is an error naming its rule.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        let mut detectors = Vec::new();
        for (i, rule) in config.rules.iter().enumerate() {
            let regex = Regex::new(&rule.pattern).map_err(|e| {
                ConfigError(format!(
                    "rules[{i}] (`{}`): invalid pattern: {e}",
                    rule.name
                ))
            })?;
            detectors.push(Compiled {
                name: rule.name.clone(),
                tag: rule.name.to_ascii_uppercase().replace([' ', '-'], "_"),
                regex: LazyRegex::compiled(regex),
                group: 0,
                validate: None,
                respects_lookalikes: false,
                operator: rule.operator.unwrap_or(Operator::Mask),
                keep: rule.keep.unwrap_or(DEFAULT_KEEP),
            });
        }
        for spec in DETECTORS {
            let settings = config.detectors.get(spec.name).cloned().unwrap_or_default();
            if !settings.enabled.unwrap_or(spec.default_on) {
                continue;
            }
            detectors.push(Compiled {
                name: spec.name.to_string(),
                tag: spec.tag.to_string(),
                regex: LazyRegex::builtin(spec.pattern),
                group: spec.group,
                validate: spec.validate,
                respects_lookalikes: spec.respects_lookalikes,
                operator: settings.operator.unwrap_or(Operator::Mask),
                keep: settings.keep.unwrap_or(DEFAULT_KEEP),
            });
        }
        let allow_patterns = config
            .allow_patterns
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| ConfigError(format!("allow-patterns[{i}]: invalid pattern: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let sensitive_keys = match &config.sensitive_keys {
            Some(keys) => SensitiveKeys::new(keys),
            None => SensitiveKeys::new(DEFAULT_SENSITIVE_KEYS),
        };
        let candidates = RegexSet::new(detectors.iter().map(|d| d.regex.as_str()))
            .map_err(|e| ConfigError(format!("combining the detectors' patterns: {e}")))?;
        Ok(Self {
            detectors,
            candidates,
            lookalikes: LazyRegex::builtin(LOOKALIKES),
            allow: config.allow.clone(),
            allow_patterns,
            sensitive_keys,
            sensitive_operator: config.sensitive_keys_operator.unwrap_or(Operator::Mask),
            fields: config.fields.clone(),
        })
    }

    /// The envelope fields this redactor scans besides the payload.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    fn allowed(&self, value: &str) -> bool {
        self.allow.iter().any(|a| a == value)
            || self.allow_patterns.iter().any(|p| p.is_match(value))
    }

    /// Every detection in `text`, without overlaps (earlier detectors win), in order.
    pub fn find(&self, text: &str) -> Vec<Finding> {
        self.find_with_index(text)
            .into_iter()
            .map(|(_, f)| f)
            .collect()
    }

    /// Whether `text` has at least one detection.
    pub(crate) fn has_finding(&self, text: &str) -> bool {
        !self.find_with_index(text).is_empty()
    }

    fn find_with_index(&self, text: &str) -> Vec<(usize, Finding)> {
        let candidates = self.candidates.matches(text);
        if !candidates.matched_any() {
            return Vec::new();
        }
        // Look-alikes only matter to detectors that respect them; find them once, if needed.
        let mut lookalikes: Option<Vec<(usize, usize)>> = None;
        let mut inside_lookalike = |s: usize, e: usize| {
            lookalikes
                .get_or_insert_with(|| {
                    self.lookalikes
                        .get()
                        .find_iter(text)
                        .map(|m| (m.start(), m.end()))
                        .collect()
                })
                .iter()
                .any(|&(ls, le)| s < le && ls < e)
        };
        let mut found: Vec<(usize, Finding)> = Vec::new();
        for (index, d) in self.detectors.iter().enumerate() {
            if !candidates.matched(index) {
                continue;
            }
            for caps in d.regex.get().captures_iter(text) {
                let Some(m) = caps.get(d.group).or_else(|| caps.get(0)) else {
                    continue;
                };
                let (s, e) = (m.start(), m.end());
                if m.as_str().is_empty()
                    || d.validate.is_some_and(|check| !check(m.as_str()))
                    || (d.respects_lookalikes && inside_lookalike(s, e))
                    || self.allowed(m.as_str())
                    || found.iter().any(|(_, f)| s < f.end && f.start < e)
                {
                    continue;
                }
                found.push((
                    index,
                    Finding {
                        detector: d.name.clone(),
                        start: s,
                        end: e,
                    },
                ));
            }
        }
        found.sort_by_key(|(_, f)| f.start);
        found
    }

    /// Rewrites the detections in `text`. `pseudonymize(domain, value)` serves `hash`.
    pub fn redact_str(
        &self,
        text: &str,
        pseudonymize: &mut dyn FnMut(&str, &str) -> String,
    ) -> Outcome {
        let mut text = text.to_string();
        match self.redact_string(&mut text, pseudonymize) {
            Change::Remove => Outcome::Remove,
            Change::Unchanged | Change::Changed => Outcome::Keep(text),
        }
    }

    /// Rewrites the detections in `text` in place; a string with no detection is neither
    /// copied nor touched.
    pub fn redact_string(
        &self,
        text: &mut String,
        pseudonymize: &mut dyn FnMut(&str, &str) -> String,
    ) -> Change {
        let found = self.find_with_index(text);
        if found.is_empty() {
            return Change::Unchanged;
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (index, finding) in found {
            let d = &self.detectors[index];
            let secret = &text[finding.start..finding.end];
            let replacement = match d.operator {
                Operator::Remove => return Change::Remove,
                op => apply(op, &d.tag, d.keep, secret, pseudonymize),
            };
            out.push_str(&text[last..finding.start]);
            out.push_str(&replacement);
            last = finding.end;
        }
        out.push_str(&text[last..]);
        *text = out;
        Change::Changed
    }

    /// Redacts a JSON value in place: every string at any depth, and the values under
    /// sensitive keys. [`Change::Remove`] means the value itself must go (a `remove`
    /// detector fired on a bare string); fields and items inside it are removed in place.
    pub fn redact_json(
        &self,
        value: &mut Value,
        pseudonymize: &mut dyn FnMut(&str, &str) -> String,
    ) -> Change {
        match value {
            Value::String(s) => self.redact_string(s, pseudonymize),
            Value::Array(items) => {
                let mut change = Change::Unchanged;
                items.retain_mut(|item| {
                    let c = self.redact_json(item, pseudonymize);
                    change = change.and(c);
                    c != Change::Remove
                });
                change
            }
            Value::Object(map) => {
                let mut change = Change::Unchanged;
                map.retain(|key, v| {
                    let c = if self.is_sensitive_key(key) {
                        self.redact_sensitive(v, pseudonymize)
                    } else {
                        self.redact_json(v, pseudonymize)
                    };
                    change = change.and(c);
                    c != Change::Remove
                });
                change
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => Change::Unchanged,
        }
    }

    /// Whether an object key names a secret.
    pub fn is_sensitive_key(&self, key: &str) -> bool {
        self.sensitive_keys.matches(key)
    }

    fn redact_sensitive(
        &self,
        value: &mut Value,
        pseudonymize: &mut dyn FnMut(&str, &str) -> String,
    ) -> Change {
        if value.is_null() {
            return Change::Unchanged;
        }
        // A number or boolean under a secret's name keeps its place but not its value: it
        // becomes null (a schema that types the field as nullable still holds), except
        // under `hash`, whose point is a joinable token (a string).
        let scalar = matches!(value, Value::Number(_) | Value::Bool(_));
        let text = match &*value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let replacement = match self.sensitive_operator {
            Operator::Remove => return Change::Remove,
            Operator::Mask | Operator::Partial if scalar => Value::Null,
            op => Value::String(apply(op, "SECRET", DEFAULT_KEEP, &text, pseudonymize)),
        };
        if *value == replacement {
            return Change::Unchanged;
        }
        *value = replacement;
        Change::Changed
    }
}

/// The replacement text of one secret.
fn apply(
    op: Operator,
    tag: &str,
    keep: usize,
    secret: &str,
    pseudonymize: &mut dyn FnMut(&str, &str) -> String,
) -> String {
    match op {
        Operator::Mask | Operator::Remove => format!("[{tag}]"),
        Operator::Partial => {
            let chars: Vec<char> = secret.chars().filter(|c| c.is_alphanumeric()).collect();
            let keep = keep.min(chars.len() / 2);
            let tail: String = chars[chars.len() - keep..].iter().collect();
            format!("[{tag} …{tail}]")
        }
        Operator::Hash => format!(
            "[{tag}:{}]",
            pseudonymize(&tag.to_ascii_lowercase(), secret)
        ),
    }
}
