//! The intent lifecycle sink (CCOS `IntentEventSink`), better than the original: every
//! status change is recorded durably — through the plugin chain, into the tamper-evident
//! ledger — before the caller may apply it, or an error comes back and the transition must
//! fail. There is no best-effort path and no no-op sink.
//!
//! ```no_run
//! # fn demo(sink: vellum::Sink) -> Result<(), Box<dyn std::error::Error>> {
//! use vellum_runtimes::intent::IntentAuditSink;
//! let audit = IntentAuditSink::new(sink).with_tenant("acme");
//! audit.log_intent_status_change("plan-7", "intent-42", "Active", "Completed",
//!                                "all steps succeeded", Some("action-9"))?;
//! let history = audit.actions_for_intent("intent-42")?;   // in order
//! # Ok(()) }
//! ```
//!
//! Each change is an `intent.status-changed` event whose subject and correlation id are
//! the intent id (so `actions_for_intent` is an indexed query) and whose chain id is the
//! plan id.

use jiff::Timestamp;
use vellum::ledger::entry::Receipt;
use vellum::ledger::query::Query;
use vellum::sink::STATUS_CHANGED_KIND;
use vellum::{AuditEvent, EmitError, LedgerError, Sink, StatusChange};

/// The intent lifecycle's audit sink.
#[derive(Clone)]
pub struct IntentAuditSink {
    sink: Sink,
    tenant: Option<String>,
    actor: Option<String>,
}

/// One recorded status change, as [`IntentAuditSink::actions_for_intent`] returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentStatusChanged {
    /// The ledger entry's sequence number.
    pub seq: u64,
    /// When the ledger recorded it.
    pub recorded_at: Timestamp,
    /// When the transition happened.
    pub occurred_at: Timestamp,
    /// The change, as the plugin chain left it; `None` once erased.
    pub change: Option<StatusChange>,
    /// When the change's content was erased: the erasure record's sequence number (`None`
    /// inside: no record covers it, which `vellum verify` reports).
    pub erased: Option<Option<u64>>,
}

impl IntentAuditSink {
    /// An intent audit sink over `sink`.
    pub fn new(sink: Sink) -> Self {
        Self {
            sink,
            tenant: None,
            actor: None,
        }
    }

    /// Records every change for `tenant`.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Names who makes the changes (for example `ccos:orchestrator`).
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Records a status change; returns its receipt once durable. On an error nothing was
    /// recorded and the caller must not apply the transition. An empty reason is
    /// [`EmitError::InvalidEvent`]; an empty plan id means "no plan".
    pub fn log_intent_status_change(
        &self,
        plan_id: &str,
        intent_id: &str,
        old_status: &str,
        new_status: &str,
        reason: &str,
        triggering_action_id: Option<&str>,
    ) -> Result<Receipt, EmitError> {
        let plan = (!plan_id.is_empty()).then(|| plan_id.to_string());
        let envelope = AuditEvent {
            id: crate::new_event_id(&format!("intent:{intent_id}")),
            occurred_at: Timestamp::now(),
            tenant: self.tenant.clone(),
            correlation_id: Some(intent_id.to_string()),
            chain_id: plan.clone(),
            actor: self.actor.clone(),
            kind: STATUS_CHANGED_KIND.to_string(),
            subject: None,
            payload: Default::default(),
            labels: Default::default(),
        };
        let change = StatusChange {
            intent_id: intent_id.to_string(),
            plan_id: plan,
            old_status: old_status.to_string(),
            new_status: new_status.to_string(),
            reason: reason.to_string(),
            triggering_action_id: triggering_action_id.map(str::to_string),
        };
        self.sink.emit_status_change(envelope, change)
    }

    /// The recorded status changes of an intent, in the order they were recorded.
    pub fn actions_for_intent(
        &self,
        intent_id: &str,
    ) -> Result<Vec<IntentStatusChanged>, LedgerError> {
        let query = Query {
            tenant: self.tenant.clone(),
            correlation_id: Some(intent_id.to_string()),
            kinds: vec![STATUS_CHANGED_KIND.to_string()],
            ..Query::default()
        };
        // An erased change keeps its envelope (the correlation id is the intent's) but not
        // its subject: it is listed as erased, never left out.
        let entries = crate::query_all(self.sink.ledger(), query, None, |e| {
            e.is_erased() || e.event.subject.as_deref() == Some(intent_id)
        })?;
        entries
            .into_iter()
            .map(|entry| {
                let erased = crate::erased_by(&entry);
                let change = match erased {
                    Some(_) => None,
                    None => Some(serde_json::from_str(entry.event.payload.as_str()).map_err(
                        |e| {
                            LedgerError::Invalid(format!(
                                "entry {} is not a status change: {e}",
                                entry.seq
                            ))
                        },
                    )?),
                };
                Ok(IntentStatusChanged {
                    seq: entry.seq,
                    recorded_at: entry.recorded_at,
                    occurred_at: entry.event.occurred_at,
                    change,
                    erased,
                })
            })
            .collect()
    }
}
