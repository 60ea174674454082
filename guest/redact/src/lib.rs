//! The `redact` plugin: removes PII and secrets from every string of an event's payload
//! (recursively) and from the envelope fields its configuration names, using the detectors
//! of `vellum-redact-core`. Keys and structure stay intact; `hash` uses the host's keyed
//! pseudonymisation, so the plugin never sees the key.
//!
//! Configuration: TOML or JSON, see `vellum_redact_core::Config` and `docs/plugins.md`.

use std::cell::RefCell;

use vellum_redact_core::{Config, Outcome, Redactor};

/// Bindings generated from `wit/` by wit-bindgen (generated items carry the WIT docs).
#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../../wit",
    });

    use super::Redact;
    export!(Redact);
}

use bindings::exports::vellum::audit::filter::Guest;
use bindings::vellum::audit::host::pseudonymize;
use bindings::vellum::audit::types::{AuditEvent, Verdict};

thread_local! {
    /// Set by `configure`.
    static REDACTOR: RefCell<Option<Redactor>> = const { RefCell::new(None) };
}

/// The plugin type that `export!` binds to the `filter` interface.
struct Redact;

impl Guest for Redact {
    fn configure(config: String) -> Result<(), String> {
        let redactor = Config::parse(&config)
            .and_then(|c| Redactor::new(&c))
            .map_err(|e| e.to_string())?;
        REDACTOR.with(|r| *r.borrow_mut() = Some(redactor));
        Ok(())
    }

    fn apply(events: Vec<AuditEvent>) -> Vec<Verdict> {
        REDACTOR.with(|r| {
            let redactor = r.borrow();
            let Some(redactor) = redactor.as_ref() else {
                return events
                    .iter()
                    .map(|_| Verdict::Reject("plugin used before configure".to_string()))
                    .collect();
            };
            events
                .into_iter()
                .map(|e| redact_event(redactor, e))
                .collect()
        })
    }
}

/// The host's pseudonymisation, in the shape the redactor wants.
fn host_pseudonym(domain: &str, value: &str) -> String {
    pseudonymize(domain, value)
}

/// Redacts one event. A payload that is not JSON cannot be inspected, so the event is
/// rejected rather than passed on unredacted.
fn redact_event(redactor: &Redactor, mut event: AuditEvent) -> Verdict {
    let mut hash = host_pseudonym;
    let mut payload: serde_json::Value = match serde_json::from_str(&event.payload) {
        Ok(value) => value,
        Err(e) => return Verdict::Reject(format!("payload is not JSON, cannot redact it: {e}")),
    };
    if !redactor.redact_json(&mut payload, &mut hash) {
        payload = serde_json::Value::Object(Default::default());
    }
    event.payload = payload.to_string();
    for field in redactor.fields() {
        match field.as_str() {
            "actor" => {
                event.actor = event
                    .actor
                    .take()
                    .and_then(|a| keep(redactor.redact_str(&a, &mut hash)))
            }
            "subject" => {
                event.subject = event
                    .subject
                    .take()
                    .and_then(|s| keep(redactor.redact_str(&s, &mut hash)))
            }
            "labels" => {
                event.labels.retain_mut(|label| {
                    let sensitive = redactor.is_sensitive_key(&label.key);
                    match redactor.redact_str(&label.value, &mut hash) {
                        Outcome::Keep(value) if !sensitive => {
                            label.value = value;
                            true
                        }
                        Outcome::Keep(_) => {
                            label.value = "[SECRET]".to_string();
                            true
                        }
                        Outcome::Remove => false,
                    }
                });
            }
            _ => {}
        }
    }
    Verdict::Keep(event)
}

fn keep(outcome: Outcome) -> Option<String> {
    match outcome {
        Outcome::Keep(s) => Some(s),
        Outcome::Remove => None,
    }
}
