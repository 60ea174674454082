//! {{name}}: a Vellum plugin that replaces every match of one pattern (by default employee
//! ids such as `EMP-123456`) in an event's payload strings and subject.
//!
//! Configuration (JSON, optional): `{"pattern": "<regex>", "replacement": "[EMPLOYEE-ID]"}`.

use std::borrow::Cow;

use regex::{NoExpand, Regex};
use serde::Deserialize;
use vellum_plugin::{AuditEvent, LogLevel, Plugin, Verdict, json_config, log, strings_mut};

/// The configuration, as the chain file gives it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// What to replace (Rust `regex` syntax).
    #[serde(default = "default_pattern")]
    pattern: String,
    /// What to put in its place (taken literally).
    #[serde(default = "default_replacement")]
    replacement: String,
}

fn default_pattern() -> String {
    r"\bEMP-\d{6}\b".to_string()
}

fn default_replacement() -> String {
    "[EMPLOYEE-ID]".to_string()
}

/// The configured plugin.
struct Redactor {
    pattern: Regex,
    replacement: String,
}

impl Redactor {
    /// Replaces every match in `text`; returns whether anything changed.
    fn scrub(&self, text: &mut String) -> bool {
        match self.pattern.replace_all(text, NoExpand(&self.replacement)) {
            Cow::Borrowed(_) => false,
            Cow::Owned(scrubbed) => {
                *text = scrubbed;
                true
            }
        }
    }
}

impl Plugin for Redactor {
    fn configure(config: &str) -> Result<Self, String> {
        let config: Config = json_config(config)?;
        let pattern = Regex::new(&config.pattern)
            .map_err(|e| format!("invalid configuration: `pattern`: {e}"))?;
        log(LogLevel::Debug, &format!("replacing {}", pattern.as_str()));
        Ok(Redactor {
            pattern,
            replacement: config.replacement,
        })
    }

    fn apply(&self, mut event: AuditEvent) -> Verdict {
        // A payload that cannot be inspected must not pass unexamined.
        let mut payload = match vellum_plugin::payload(&event) {
            Ok(payload) => payload,
            Err(e) => return Verdict::Reject(e),
        };
        let mut changed = strings_mut(&mut payload, |s| self.scrub(s));
        if let Some(subject) = event.subject.as_mut() {
            changed |= self.scrub(subject);
        }
        if !changed {
            // Unchanged: nothing is serialised or copied back to the host.
            return Verdict::Pass;
        }
        event.payload = payload.to_string();
        Verdict::Keep(event)
    }
}

vellum_plugin::export_plugin!(Redactor);
