//! The audit event envelope as the host holds it, its JSON-lines input form, and the
//! attestation every plugin leaves on the events it saw.

mod attestation;
mod jsonl;
mod payload;

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use attestation::{Attestation, AttestedVerdict};
pub use jsonl::{JsonLinesReader, MalformedLine};
pub use payload::{MAX_NESTING, MAX_PAYLOAD_BYTES, Payload};

/// One audit event: a typed envelope around a JSON payload (see `wit/audit.wit`).
///
/// In JSON, `occurred_at` is an RFC 3339 timestamp, `payload` any JSON value (by convention
/// an object) and `labels` an object of string values. Unknown fields are an error, so a
/// misspelt field is never silently dropped.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    /// Producer-assigned unique id.
    pub id: String,
    /// When the action happened, by the producer's clock.
    pub occurred_at: Timestamp,
    /// Tenant the event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Correlation id grouping the events of one request or run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Chain (plan, workflow) the action is a step of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<String>,
    /// Who acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Dotted action kind, for example `tool.call`.
    pub kind: String,
    /// The resource acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The action's details: validated JSON text, kept byte for byte.
    #[serde(default)]
    pub payload: Payload,
    /// Free-form labels, unique by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Splits a timestamp into seconds since the epoch and non-negative nanoseconds, the form
/// used by the WIT `timestamp` record and the ledger encoding.
pub fn split_timestamp(t: Timestamp) -> (i64, u32) {
    let mut seconds = t.as_second();
    let mut nanos = t.subsec_nanosecond();
    if nanos < 0 {
        seconds -= 1;
        nanos += 1_000_000_000;
    }
    (seconds, nanos.unsigned_abs())
}

/// Joins seconds and nanoseconds (`0..1_000_000_000`) back into a timestamp, refusing
/// out-of-range values.
pub fn join_timestamp(seconds: i64, nanoseconds: u32) -> Result<Timestamp, String> {
    if nanoseconds >= 1_000_000_000 {
        return Err(format!("timestamp nanoseconds {nanoseconds} out of range"));
    }
    Timestamp::from_second(seconds)
        .and_then(|t| t.checked_add(jiff::SignedDuration::new(0, nanoseconds as i32)))
        .map_err(|e| format!("timestamp out of range: {e}"))
}

impl PartialEq for AuditEvent {
    /// Field-wise equality; payloads compare as text, byte for byte.
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.occurred_at == other.occurred_at
            && self.tenant == other.tenant
            && self.correlation_id == other.correlation_id
            && self.chain_id == other.chain_id
            && self.actor == other.actor
            && self.kind == other.kind
            && self.subject == other.subject
            && self.payload == other.payload
            && self.labels == other.labels
    }
}

/// Why an event is not acceptable, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event: field `{field}` {problem}")]
pub struct InvalidEvent {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl AuditEvent {
    /// Checks the envelope's invariants that JSON parsing cannot express.
    pub fn validate(&self) -> Result<(), InvalidEvent> {
        let invalid = |field, problem: &str| InvalidEvent {
            field,
            problem: problem.to_string(),
        };
        if self.id.trim().is_empty() {
            return Err(invalid("id", "must not be empty"));
        }
        if self.kind.trim().is_empty() {
            return Err(invalid("kind", "must not be empty"));
        }
        if let Some(field) = self.field_with_nul() {
            return Err(invalid(field, "must not contain U+0000 (NUL)"));
        }
        self.payload.check_limits()
    }

    /// The first envelope text field holding U+0000, which no store keeps as text
    /// (PostgreSQL's `TEXT` refuses it); labels and payload are stored as JSON, where it is
    /// escaped.
    pub(crate) fn field_with_nul(&self) -> Option<&'static str> {
        let fields = [
            ("id", Some(&self.id)),
            ("kind", Some(&self.kind)),
            ("tenant", self.tenant.as_ref()),
            ("correlation_id", self.correlation_id.as_ref()),
            ("chain_id", self.chain_id.as_ref()),
            ("actor", self.actor.as_ref()),
            ("subject", self.subject.as_ref()),
        ];
        fields
            .into_iter()
            .find(|(_, value)| value.is_some_and(|v| v.contains('\0')))
            .map(|(name, _)| name)
    }

    /// The event's protected envelope with its content (payload, labels, actor, subject)
    /// removed: what a drop marker keeps.
    pub fn without_content(self) -> AuditEvent {
        AuditEvent {
            actor: None,
            subject: None,
            payload: Payload::default(),
            labels: BTreeMap::new(),
            ..self
        }
    }

    /// The fields a plugin must not change, by name, for comparison with a rewritten event.
    pub(crate) fn protected_fields_differ(&self, rewritten: &AuditEvent) -> Option<&'static str> {
        if self.id != rewritten.id {
            Some("id")
        } else if self.occurred_at != rewritten.occurred_at {
            Some("occurred_at")
        } else if self.tenant != rewritten.tenant {
            Some("tenant")
        } else if self.correlation_id != rewritten.correlation_id {
            Some("correlation_id")
        } else if self.chain_id != rewritten.chain_id {
            Some("chain_id")
        } else if self.kind != rewritten.kind {
            Some("kind")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<AuditEvent, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn minimal_event_gets_an_empty_object_payload() {
        let e = parse(r#"{"id":"e1","occurred_at":"2026-11-22T10:00:00Z","kind":"tool.call"}"#)
            .unwrap();
        assert_eq!(e.payload.as_str(), "{}");
        assert!(e.labels.is_empty());
        e.validate().unwrap();
    }

    #[test]
    fn unknown_fields_and_bad_timestamps_are_errors() {
        let err =
            parse(r#"{"id":"e1","occurred_at":"2026-11-22T10:00:00Z","kind":"k","tenat":"x"}"#)
                .unwrap_err();
        assert!(err.to_string().contains("tenat"), "{err}");
        let err = parse(r#"{"id":"e1","occurred_at":"yesterday","kind":"k"}"#).unwrap_err();
        assert!(err.is_data(), "{err}");
        assert!(err.to_string().contains("column"), "{err}");
    }

    #[test]
    fn empty_id_is_invalid() {
        let e = parse(r#"{"id":" ","occurred_at":"2026-11-22T10:00:00Z","kind":"k"}"#).unwrap();
        assert_eq!(e.validate().unwrap_err().field, "id");
        let nul = parse(
            r#"{"id":"e1","occurred_at":"2026-11-22T10:00:00Z","kind":"k","actor":"a\u0000b"}"#,
        )
        .unwrap();
        let err = nul.validate().unwrap_err();
        assert_eq!(err.field, "actor");
        assert!(err.problem.contains("NUL"), "{err}");
    }

    #[test]
    fn payload_is_kept_byte_for_byte() {
        let e = parse(
            r#"{"id":"e","occurred_at":"2026-11-22T10:00:00Z","kind":"k","payload":{"b":1, "a":[2]}}"#,
        )
        .unwrap();
        assert_eq!(e.payload.as_str(), r#"{"b":1, "a":[2]}"#);
    }
}
