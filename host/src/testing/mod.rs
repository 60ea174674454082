//! `vellum test`: sandboxed policy testing in the spirit of `opa test`. Runs a plugin on the
//! events of each case and compares its verdicts (and rewritten events) with the expected
//! ones; optionally checks every kept output for residual PII and secrets with the built-in
//! redactor's detectors.

mod cases;
pub mod transcript;

use serde_json::Value;
use similar::TextDiff;
use vellum_redact_core::Redactor;

pub use cases::{Case, CaseFile, Expectation, ExpectedVerdict};

use crate::event::AuditEvent;
use crate::plugin::{Plugin, Verdict};
use transcript::{Call, WitEvent, WitVerdict};

/// The result of one case.
#[derive(Debug)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Why it failed, one readable entry per problem; empty when it passed.
    pub failures: Vec<String>,
    /// The call as made: the events and what the plugin returned (for a transcript).
    pub call: Call,
}

/// Runs every case; with `leak_check`, every kept event is also scanned for residual PII
/// and secrets with that redactor's detectors.
pub fn run(plugin: &mut Plugin, file: &CaseFile, leak_check: Option<&Redactor>) -> Vec<CaseResult> {
    file.cases
        .iter()
        .map(|case| {
            let results = plugin.apply(&case.events);
            let call = Call {
                case: case.name.clone(),
                events: case.events.iter().map(WitEvent::from).collect(),
                verdicts: results.iter().map(WitVerdict::of).collect(),
            };
            let mut failures = Vec::new();
            for ((event, expected), result) in case.events.iter().zip(&case.expect).zip(results) {
                match result {
                    Err(error) => {
                        failures.push(format!("event `{}`: the plugin failed: {error}", event.id))
                    }
                    Ok(verdict) => {
                        compare(event, expected, &verdict, &mut failures);
                        let kept = match &verdict {
                            Verdict::Keep(kept) => Some(kept),
                            Verdict::Pass => Some(event),
                            Verdict::Drop(_) | Verdict::Reject(_) => None,
                        };
                        if let (Some(detector), Some(kept)) = (leak_check, kept) {
                            leaks(detector, kept, &mut failures);
                        }
                    }
                }
            }
            CaseResult {
                name: case.name.clone(),
                failures,
                call,
            }
        })
        .collect()
}

fn compare(
    event: &AuditEvent,
    expected: &Expectation,
    verdict: &Verdict,
    failures: &mut Vec<String>,
) {
    let id = &event.id;
    let (name, reason, kept) = match verdict {
        Verdict::Keep(e) => ("keep", None, Some(e)),
        Verdict::Pass => ("keep", None, Some(event)),
        Verdict::Drop(r) => ("drop", Some(r), None),
        Verdict::Reject(r) => ("reject", Some(r), None),
    };
    let want = match expected.verdict {
        ExpectedVerdict::Keep => "keep",
        ExpectedVerdict::Drop => "drop",
        ExpectedVerdict::Reject => "reject",
    };
    if name != want {
        let why = reason.map(|r| format!(" ({r})")).unwrap_or_default();
        failures.push(format!(
            "event `{id}`: expected verdict {want}, got {name}{why}"
        ));
        return;
    }
    if let Some(reason) = reason {
        if let Some(exact) = &expected.reason
            && exact != reason
        {
            failures.push(format!(
                "event `{id}`: expected reason {exact:?}, got {reason:?}"
            ));
        }
        if let Some(part) = &expected.reason_contains
            && !reason.contains(part.as_str())
        {
            failures.push(format!(
                "event `{id}`: reason {reason:?} does not contain {part:?}"
            ));
        }
    }
    let Some(kept) = kept else { return };
    let payload: Value = serde_json::from_str(kept.payload.as_str()).unwrap_or(Value::Null);
    if let Some(want) = &expected.payload
        && *want != payload
    {
        failures.push(format!(
            "event `{id}`: payload differs (- expected, + actual):\n{}",
            diff(want, &payload)
        ));
    }
    for (pointer, want) in &expected.assert {
        match payload.pointer(pointer) {
            Some(got) if got == want => {}
            Some(got) => failures.push(format!(
                "event `{id}`: payload{pointer}: expected {want}, got {got}"
            )),
            None => failures.push(format!(
                "event `{id}`: payload{pointer}: expected {want}, but it is absent"
            )),
        }
    }
    if let Some(want) = &expected.labels
        && *want != kept.labels
    {
        failures.push(format!(
            "event `{id}`: labels: expected {want:?}, got {:?}",
            kept.labels
        ));
    }
    for (field, want, got) in [
        ("actor", &expected.actor, &kept.actor),
        ("subject", &expected.subject, &kept.subject),
    ] {
        if let Some(want) = want
            && got.as_ref() != Some(want)
        {
            failures.push(format!(
                "event `{id}`: {field}: expected {want:?}, got {got:?}"
            ));
        }
    }
}

/// A line diff of two JSON values, pretty-printed.
fn diff(expected: &Value, actual: &Value) -> String {
    let a = serde_json::to_string_pretty(expected).unwrap_or_default();
    let b = serde_json::to_string_pretty(actual).unwrap_or_default();
    TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .to_string()
        .lines()
        .filter(|l| !l.starts_with("@@"))
        .map(|l| format!("      {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reports residual PII or secrets in a kept event.
fn leaks(detector: &Redactor, event: &AuditEvent, failures: &mut Vec<String>) {
    let mut texts: Vec<(String, String)> = Vec::new();
    if let Ok(payload) = serde_json::from_str::<Value>(event.payload.as_str()) {
        strings(&payload, String::new(), &mut texts);
    }
    for (name, value) in [("actor", &event.actor), ("subject", &event.subject)] {
        if let Some(v) = value {
            texts.push((name.to_string(), v.clone()));
        }
    }
    for (key, value) in &event.labels {
        texts.push((format!("labels.{key}"), value.clone()));
    }
    for (place, text) in texts {
        for finding in detector.find(&text) {
            failures.push(format!(
                "event `{}`: leak: {} found in {place}: {:?}",
                event.id,
                finding.detector,
                &text[finding.start..finding.end]
            ));
        }
    }
}

/// Every string in a JSON value with its JSON pointer.
fn strings(value: &Value, pointer: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) => out.push((format!("payload{pointer}"), s.clone())),
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                strings(v, format!("{pointer}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                strings(
                    v,
                    format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        _ => {}
    }
}
