//! The `policy` plugin: keeps, drops or rejects events by rules over their envelope,
//! labels and payload (first match wins, with a default), requires fields per action kind,
//! and scopes rules to tenants. The rule language is documented in `docs/plugins.md`.

pub mod rules;

use std::collections::BTreeMap;

use rules::{Action, EventView, Policy};
use vellum_plugin::{AuditEvent, Plugin, Verdict};

/// The plugin: the parsed policy.
struct PolicyFilter(Policy);

impl Plugin for PolicyFilter {
    fn configure(config: &str) -> Result<Self, String> {
        Policy::parse(config).map(PolicyFilter)
    }

    fn apply(&self, event: AuditEvent) -> Verdict {
        decide(&self.0, event)
    }
}

vellum_plugin::export_plugin!(PolicyFilter);

/// Applies the policy to one event.
fn decide(policy: &Policy, event: AuditEvent) -> Verdict {
    let payload = match vellum_plugin::payload(&event) {
        Ok(v) => v,
        Err(e) => return Verdict::Reject(e),
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
