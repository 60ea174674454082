//! The `redact` plugin: removes PII and secrets from every string of an event's payload
//! (recursively) and from the envelope fields its configuration names, using the detectors
//! of `vellum-redact-core`. Keys and structure stay intact; `hash` uses the host's keyed
//! pseudonymisation, so the plugin never sees the key.
//!
//! Configuration: TOML or JSON, see `vellum_redact_core::Config` and `docs/plugins.md`.

use vellum_plugin::{AuditEvent, Plugin, Verdict, pseudonymize};
use vellum_redact_core::{Change, Config, Redactor};

/// The plugin: the configured redactor.
struct Redact(Redactor);

impl Plugin for Redact {
    fn configure(config: &str) -> Result<Self, String> {
        let config = Config::parse(config).map_err(|e| e.to_string())?;
        let redactor = Redactor::new(&config).map_err(|e| e.to_string())?;
        if config.uses_hash() {
            // The host refuses (traps) when the chain has no pseudonym key: the chain is then
            // refused at load, naming the missing key, instead of failing every event that
            // holds something to hash.
            pseudonymize("vellum:key-check", "");
        }
        Ok(Redact(redactor))
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
/// rejected rather than passed on unredacted. An event in which nothing was found passes
/// as it came (`pass`: its payload is neither parsed into a tree, serialised again nor
/// copied back to the host).
fn redact_event(redactor: &Redactor, mut event: AuditEvent) -> Verdict {
    let mut hash = host_pseudonym;
    // Most events carry nothing to redact: a read-only scan of the payload text tells, and
    // only a payload that may change is parsed into a tree and redacted.
    let payload = match redactor.needs_redaction(&event.payload) {
        Err(e) => return Verdict::Reject(format!("payload is not JSON: {e}; cannot redact it")),
        Ok(false) => None,
        Ok(true) => {
            let mut payload = match vellum_plugin::payload(&event) {
                Ok(value) => value,
                Err(e) => return Verdict::Reject(format!("{e}; cannot redact it")),
            };
            match redactor.redact_json(&mut payload, &mut hash) {
                Change::Unchanged => None,
                Change::Changed => Some(payload),
                Change::Remove => Some(serde_json::Value::Object(Default::default())),
            }
        }
    };
    let mut changed = payload.is_some();
    for field in redactor.fields() {
        match field.as_str() {
            "actor" => changed |= redact_optional(redactor, &mut event.actor, &mut hash),
            "subject" => changed |= redact_optional(redactor, &mut event.subject, &mut hash),
            "labels" => {
                event.labels.retain_mut(|label| {
                    let change = redactor.redact_string(&mut label.value, &mut hash);
                    changed |= change.changed();
                    if change == Change::Remove {
                        return false;
                    }
                    if redactor.is_sensitive_key(&label.key) && label.value != "[SECRET]" {
                        label.value = "[SECRET]".to_string();
                        changed = true;
                    }
                    true
                });
            }
            _ => {}
        }
    }
    let protected = [
        ("id", Some(event.id.as_str())),
        ("kind", Some(event.kind.as_str())),
        ("correlation_id", event.correlation_id.as_deref()),
        ("chain_id", event.chain_id.as_deref()),
    ];
    if let Some(reason) = redactor.protected_refusal(&protected) {
        return Verdict::Reject(reason);
    }
    if !changed {
        return Verdict::Pass;
    }
    if let Some(payload) = payload {
        event.payload = payload.to_string();
    }
    Verdict::Keep(event)
}

/// Redacts an optional envelope field in place (`None` when a `remove` detector fired);
/// returns whether it changed.
fn redact_optional(
    redactor: &Redactor,
    field: &mut Option<String>,
    hash: &mut dyn FnMut(&str, &str) -> String,
) -> bool {
    let Some(value) = field.as_mut() else {
        return false;
    };
    match redactor.redact_string(value, hash) {
        Change::Unchanged => false,
        Change::Changed => true,
        Change::Remove => {
            *field = None;
            true
        }
    }
}
