//! What the chain decided about an event, with the attestation of every plugin applied.

use serde::Serialize;

use crate::event::{Attestation, AuditEvent};
use crate::plugin::PluginError;

/// The chain's decision about one event.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Outcome {
    /// The event passed every plugin; `event` is what the last plugin returned.
    Keep {
        /// The (possibly rewritten) event.
        event: AuditEvent,
        /// One attestation per plugin, in chain order.
        attestations: Vec<Attestation>,
    },
    /// A plugin dropped the event (or failed on it with `on-error = "drop"`).
    Drop {
        /// The event's protected envelope without any content (payload, labels, actor,
        /// subject removed): what a drop marker records.
        marker: AuditEvent,
        /// The plugin that dropped it.
        plugin: String,
        /// Its reason.
        reason: String,
        /// Attestations of the plugins applied, the dropping one last.
        attestations: Vec<Attestation>,
    },
    /// A plugin rejected the event, or failed on it under the default fail-closed policy.
    Reject {
        /// The rejected event's id.
        event_id: String,
        /// The plugin that rejected it.
        plugin: String,
        /// Its reason, or the description of its failure.
        reason: String,
        /// The typed failure, when the plugin failed rather than decided.
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "error_json")]
        error: Option<PluginError>,
        /// Attestations of the plugins applied, the rejecting one last.
        attestations: Vec<Attestation>,
    },
}

fn error_json<S: serde::Serializer>(
    error: &Option<PluginError>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct ErrorJson<'a> {
        class: &'static str,
        plugin: &'a str,
        digest: &'a str,
        event_id: Option<&'a str>,
        message: String,
    }
    error
        .as_ref()
        .map(|e| ErrorJson {
            class: e.failure.class(),
            plugin: &e.plugin,
            digest: &e.digest,
            event_id: e.event_id.as_deref(),
            message: e.failure.to_string(),
        })
        .serialize(serializer)
}
