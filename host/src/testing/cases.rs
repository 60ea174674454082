//! The cases file of `vellum test`: events in, expected verdicts out.
//!
//! ```toml
//! [[case]]
//! name = "masks an email"
//! events = [{ kind = "tool.call", payload = { msg = "mail ada@example.com" } }]
//! expect = [{ verdict = "keep", assert = { "/msg" = "mail [EMAIL]" } }]
//! ```
//!
//! Events take the JSON-lines event fields; `id` defaults to `<case>-<n>` and
//! `occurred_at` to the epoch. An expectation has a `verdict` (`keep`, `drop`, `reject`)
//! and optionally `reason` (exact) or `reason-contains`, and for `keep`: `payload` (exact
//! JSON), `assert` (JSON pointer → value), `labels`, `actor`, `subject`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::event::AuditEvent;

/// A parsed cases file.
#[derive(Debug)]
pub struct CaseFile {
    /// The cases, in file order.
    pub cases: Vec<Case>,
}

/// One test case.
#[derive(Debug)]
pub struct Case {
    /// Its name.
    pub name: String,
    /// The events passed to the plugin in one batch.
    pub events: Vec<AuditEvent>,
    /// One expectation per event.
    pub expect: Vec<Expectation>,
}

/// What one event's verdict must be.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Expectation {
    /// `keep`, `drop` or `reject`.
    pub verdict: ExpectedVerdict,
    /// The exact reason (drop or reject).
    #[serde(default)]
    pub reason: Option<String>,
    /// A substring of the reason.
    #[serde(default)]
    pub reason_contains: Option<String>,
    /// The exact rewritten payload.
    #[serde(default)]
    pub payload: Option<Value>,
    /// JSON pointers into the rewritten payload and their expected values.
    #[serde(default)]
    pub assert: BTreeMap<String, Value>,
    /// The exact rewritten labels.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    /// The rewritten actor.
    #[serde(default)]
    pub actor: Option<String>,
    /// The rewritten subject.
    #[serde(default)]
    pub subject: Option<String>,
}

/// An expected verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExpectedVerdict {
    /// Kept (possibly rewritten).
    Keep,
    /// Dropped.
    Drop,
    /// Rejected.
    Reject,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(rename = "case", default)]
    cases: Vec<RawCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    events: Vec<Value>,
    expect: Vec<Value>,
}

impl CaseFile {
    /// Parses a cases file (TOML); errors name the case and the field.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| format!("invalid cases file: {e}"))?;
        if raw.cases.is_empty() {
            return Err("the cases file has no [[case]]".to_string());
        }
        let mut cases = Vec::with_capacity(raw.cases.len());
        for (i, case) in raw.cases.into_iter().enumerate() {
            let at = format!("case {} (`{}`)", i + 1, case.name);
            if case.events.len() != case.expect.len() {
                return Err(format!(
                    "{at}: {} events but {} expectations; give one expectation per event",
                    case.events.len(),
                    case.expect.len()
                ));
            }
            let events = case
                .events
                .into_iter()
                .enumerate()
                .map(|(n, event)| {
                    parse_event(event, &case.name, n).map_err(|e| format!("{at}: events[{n}]: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let expect = case
                .expect
                .into_iter()
                .enumerate()
                .map(|(n, e)| {
                    let e: Expectation = serde_json::from_value(e).map_err(|e| format!("{at}: expect[{n}]: {e}"))?;
                    for pointer in e.assert.keys() {
                        if !pointer.is_empty() && !pointer.starts_with('/') {
                            return Err(format!("{at}: expect[{n}].assert: `{pointer}` is not a JSON pointer (start it with /)"));
                        }
                    }
                    Ok(e)
                })
                .collect::<Result<Vec<_>, String>>()?;
            cases.push(Case {
                name: case.name,
                events,
                expect,
            });
        }
        Ok(Self { cases })
    }
}

/// An event of a case, with defaults for `id` and `occurred_at`.
fn parse_event(mut value: Value, case: &str, n: usize) -> Result<AuditEvent, String> {
    let object = value.as_object_mut().ok_or("expected a table")?;
    object
        .entry("id")
        .or_insert_with(|| Value::String(format!("{case}-{n}")));
    object
        .entry("occurred_at")
        .or_insert_with(|| Value::String("1970-01-01T00:00:00Z".into()));
    let event: AuditEvent = serde_json::from_value(value).map_err(|e| e.to_string())?;
    event.validate().map_err(|e| e.to_string())?;
    Ok(event)
}
