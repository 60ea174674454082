//! A transcript of plugin calls at the WIT boundary, in JSON: the configuration, the
//! pseudonym key, and per case the events passed to `apply` and the verdicts it returned,
//! all in the WIT shapes of `wit/audit.wit` (kebab-case field names, `occurred-at` as
//! seconds and nanoseconds, the payload as JSON text, labels as a list, a verdict as
//! `{"tag": …, "val": …}`).
//!
//! `vellum test --record FILE` writes one; a host in another language (wasmtime-py, jco)
//! replays the events through the same component and must return the same verdicts, byte
//! for byte (see `examples/`).

use serde::{Deserialize, Serialize};

use crate::event::{AuditEvent, split_timestamp};
use crate::plugin::Verdict;

/// Everything another host needs to replay a `vellum test` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Transcript {
    /// The text passed to `configure`.
    pub config: String,
    /// The `pseudonymize` key, hex.
    pub pseudonym_key: String,
    /// One call of `apply` per case, in file order.
    pub calls: Vec<Call>,
}

/// One `apply` call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Call {
    /// The case's name.
    pub case: String,
    /// The events passed.
    pub events: Vec<WitEvent>,
    /// The verdicts returned, one per event.
    pub verdicts: Vec<WitVerdict>,
}

/// The WIT `audit-event` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct WitEvent {
    /// `id`.
    pub id: String,
    /// `occurred-at`.
    pub occurred_at: WitTimestamp,
    /// `tenant`.
    pub tenant: Option<String>,
    /// `correlation-id`.
    pub correlation_id: Option<String>,
    /// `chain-id`.
    pub chain_id: Option<String>,
    /// `actor`.
    pub actor: Option<String>,
    /// `kind`.
    pub kind: String,
    /// `subject`.
    pub subject: Option<String>,
    /// `payload`: JSON text.
    pub payload: String,
    /// `labels`, by key.
    pub labels: Vec<WitLabel>,
}

/// The WIT `timestamp` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitTimestamp {
    /// Seconds since the epoch.
    pub seconds: i64,
    /// Nanoseconds past them.
    pub nanoseconds: u32,
}

/// The WIT `label` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitLabel {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// The WIT `verdict` variant, or the host's report of a failed call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "tag", content = "val", rename_all = "kebab-case")]
pub enum WitVerdict {
    /// `keep(audit-event)`.
    Keep(Box<WitEvent>),
    /// `pass`.
    Pass,
    /// `drop(string)`.
    Drop(String),
    /// `reject(string)`.
    Reject(String),
    /// The call failed (trap, limit, invalid output): not a verdict of the plugin.
    Failed(String),
}

impl From<&AuditEvent> for WitEvent {
    fn from(event: &AuditEvent) -> Self {
        let (seconds, nanoseconds) = split_timestamp(event.occurred_at);
        Self {
            id: event.id.clone(),
            occurred_at: WitTimestamp {
                seconds,
                nanoseconds,
            },
            tenant: event.tenant.clone(),
            correlation_id: event.correlation_id.clone(),
            chain_id: event.chain_id.clone(),
            actor: event.actor.clone(),
            kind: event.kind.clone(),
            subject: event.subject.clone(),
            payload: event.payload.as_str().to_string(),
            labels: event
                .labels
                .iter()
                .map(|(key, value)| WitLabel {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
        }
    }
}

impl WitVerdict {
    /// The transcript form of one call's result.
    pub fn of<E: std::fmt::Display>(result: &Result<Verdict, E>) -> Self {
        match result {
            Ok(Verdict::Keep(event)) => Self::Keep(Box::new(event.into())),
            Ok(Verdict::Pass) => Self::Pass,
            Ok(Verdict::Drop(reason)) => Self::Drop(reason.clone()),
            Ok(Verdict::Reject(reason)) => Self::Reject(reason.clone()),
            Err(error) => Self::Failed(error.to_string()),
        }
    }
}
