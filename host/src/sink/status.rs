//! The intent lifecycle shape (CCOS): a status change recorded as an
//! `intent.status-changed` event.

use serde::{Deserialize, Serialize};

use crate::event::{AuditEvent, InvalidEvent, Payload};

/// The kind of the events [`StatusChange::into_event`] makes.
pub const STATUS_CHANGED_KIND: &str = "intent.status-changed";

/// The details of an intent lifecycle transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// The intent whose status changed.
    pub intent_id: String,
    /// The plan the intent belongs to, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    /// The status before the transition.
    pub old_status: String,
    /// The status after the transition.
    pub new_status: String,
    /// Why the transition happened. Required: an empty reason is an invalid event.
    pub reason: String,
    /// The action that triggered the transition, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggering_action_id: Option<String>,
}

impl StatusChange {
    /// The event recording this change: `envelope` with its kind set to
    /// `intent.status-changed`, its subject to the intent id and its payload to the change
    /// as JSON.
    pub fn into_event(self, envelope: AuditEvent) -> Result<AuditEvent, InvalidEvent> {
        let invalid = |field, problem: &str| InvalidEvent {
            field,
            problem: problem.to_string(),
        };
        if self.reason.trim().is_empty() {
            return Err(invalid(
                "reason",
                "must not be empty: say why the status changed",
            ));
        }
        if self.intent_id.trim().is_empty() {
            return Err(invalid("intent_id", "must not be empty"));
        }
        let payload =
            serde_json::to_value(&self).map_err(|e| invalid("payload", &e.to_string()))?;
        Ok(AuditEvent {
            kind: STATUS_CHANGED_KIND.to_string(),
            subject: Some(self.intent_id),
            payload: Payload::from_value(&payload),
            ..envelope
        })
    }
}
