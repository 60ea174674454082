//! The `policy` plugin: keeps, drops or rejects events by rules over their envelope,
//! labels and payload (first match wins, with a default), requires fields per action kind,
//! and scopes rules to tenants. The rule language is documented in `docs/plugins.md`.

pub mod rules;

use std::cell::RefCell;
use std::collections::BTreeMap;

use rules::{Action, EventView, Policy};

/// Bindings generated from `wit/` by wit-bindgen (generated items carry the WIT docs).
#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../../wit",
    });

    use super::PolicyFilter;
    export!(PolicyFilter);
}

use bindings::exports::vellum::audit::filter::Guest;
use bindings::vellum::audit::types::{AuditEvent, Verdict};

thread_local! {
    /// Set by `configure`.
    static POLICY: RefCell<Option<Policy>> = const { RefCell::new(None) };
}

/// The plugin type that `export!` binds to the `filter` interface.
struct PolicyFilter;

impl Guest for PolicyFilter {
    fn configure(config: String) -> Result<(), String> {
        let policy = Policy::parse(&config)?;
        POLICY.with(|p| *p.borrow_mut() = Some(policy));
        Ok(())
    }

    fn apply(events: Vec<AuditEvent>) -> Vec<Verdict> {
        POLICY.with(|p| {
            let policy = p.borrow();
            let Some(policy) = policy.as_ref() else {
                return events
                    .iter()
                    .map(|_| Verdict::Reject("plugin used before configure".to_string()))
                    .collect();
            };
            events.into_iter().map(|e| decide(policy, e)).collect()
        })
    }
}

/// Applies the policy to one event.
fn decide(policy: &Policy, event: AuditEvent) -> Verdict {
    let payload: serde_json::Value = match serde_json::from_str(&event.payload) {
        Ok(v) => v,
        Err(e) => return Verdict::Reject(format!("payload is not JSON: {e}")),
    };
    let envelope = BTreeMap::from([
        ("id", Some(event.id.as_str())),
        ("tenant", event.tenant.as_deref()),
        ("correlation_id", event.correlation_id.as_deref()),
        ("chain_id", event.chain_id.as_deref()),
        ("actor", event.actor.as_deref()),
        ("kind", Some(event.kind.as_str())),
        ("subject", event.subject.as_deref()),
    ]);
    let labels = event
        .labels
        .iter()
        .map(|l| (l.key.as_str(), l.value.as_str()))
        .collect();
    let view = EventView {
        envelope,
        labels,
        payload: &payload,
    };
    let (action, reason) = policy.decide(&event.kind, &view);
    match action {
        Action::Keep => Verdict::Pass,
        Action::Drop => Verdict::Drop(reason),
        Action::Reject => Verdict::Reject(reason),
    }
}
