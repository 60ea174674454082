//! The `redact` plugin: removes PII and secrets from every string of an event's payload
//! (recursively) and from the envelope fields its configuration names, using the detectors
//! of `vellum-redact-core`. Keys and structure stay intact; `hash` uses the host's keyed
//! pseudonymisation, so the plugin never sees the key.
//!
//! Configuration: TOML or JSON, see `vellum_redact_core::Config` and `docs/plugins.md`.

use vellum_plugin::{AuditEvent, Plugin, Verdict, pseudonymize};
use vellum_redact_core::{Config, Outcome, Redactor};

/// The plugin: the configured redactor.
struct Redact(Redactor);

impl Plugin for Redact {
    fn configure(config: &str) -> Result<Self, String> {
        Config::parse(config)
            .and_then(|c| Redactor::new(&c))
            .map(Redact)
            .map_err(|e| e.to_string())
    }

    fn apply(&self, event: AuditEvent) -> Verdict {
        redact_event(&self.0, event)
    }
}

vellum_plugin::export_plugin!(Redact);

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
