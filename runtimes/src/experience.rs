//! The experience store (Converge): an append-only ledger of typed event envelopes, here
//! with appends that are atomic (not best-effort), durable, redacted by the plugin chain
//! and tamper-evident.
//!
//! ```no_run
//! # fn demo(sink: vellum::Sink) -> Result<(), Box<dyn std::error::Error>> {
//! use vellum_runtimes::experience::*;
//! let store = ExperienceAppender::new(sink.clone());
//! let event = ExperienceEvent::BudgetExceeded { chain_id: "chain-1".into(),
//!     resource: "tokens".into(), limit: "1024".into(), observed: Some("2048".into()) };
//! store.append_event(ExperienceEventEnvelope::new("evt-1", "2026-01-21T12:00:00Z", event)
//!     .with_tenant("tenant-a"))?;
//! let replayer = ExperienceReplayer::new(sink.ledger());
//! let found = replayer.query_events(&EventQuery { chain_id: Some("chain-1".into()),
//!     ..EventQuery::default() })?;
//! # Ok(()) }
//! ```
//!
//! Each envelope is one entry: its id, time, tenant and correlation id are the entry's;
//! the chain id comes from the variants that carry one; the kind is the variant's
//! well-known kind ([`ExperienceEventKind::audit_kind`]); the payload is the whole
//! envelope in the runtime's JSON shape, so it reads back losslessly. Types that the
//! runtime defines elsewhere (proposals, decision steps, trace links, lifecycle events,
//! recall provenance, policies) are kept as JSON values.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vellum::ledger::Ledger;
use vellum::ledger::entry::{Disposition, Entry, Receipt};
use vellum::ledger::query::{MAX_LIMIT, Query};
use vellum::{AuditEvent, EmitError, LedgerError, Sink};

/// The append-only event envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperienceEventEnvelope {
    /// Unique event id (ULID/UUID).
    pub event_id: String,
    /// ISO 8601 time of occurrence.
    pub occurred_at: String,
    /// Tenant scope.
    pub tenant_id: Option<String>,
    /// Correlation id grouping a chain or run.
    pub correlation_id: Option<String>,
    /// The typed event.
    pub event: ExperienceEvent,
}

impl ExperienceEventEnvelope {
    /// An envelope for `event` with its id and ISO 8601 time.
    pub fn new(
        event_id: impl Into<String>,
        occurred_at: impl Into<String>,
        event: ExperienceEvent,
    ) -> Self {
        Self {
            event_id: event_id.into(),
            occurred_at: occurred_at.into(),
            tenant_id: None,
            correlation_id: None,
            event,
        }
    }

    /// Sets the tenant.
    pub fn with_tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }

    /// Sets the correlation id.
    pub fn with_correlation(mut self, correlation_id: impl Into<String>) -> Self {
        self.correlation_id = Some(correlation_id.into());
        self
    }

    /// The audit event recording this envelope.
    pub fn to_audit_event(&self) -> Result<AuditEvent, EmitError> {
        let occurred_at: Timestamp = self.occurred_at.parse().map_err(|e| {
            EmitError::InvalidEvent(format!(
                "experience event `{}`: occurred_at `{}` is not an ISO 8601 time: {e}",
                self.event_id, self.occurred_at
            ))
        })?;
        let payload = serde_json::to_value(self).map_err(|e| {
            EmitError::InvalidEvent(format!("experience event `{}`: {e}", self.event_id))
        })?;
        let (actor, subject) = self.event.actor_and_subject();
        Ok(AuditEvent {
            id: self.event_id.clone(),
            occurred_at,
            tenant: self.tenant_id.clone(),
            correlation_id: self.correlation_id.clone(),
            chain_id: self.event.chain_id().map(str::to_string),
            actor,
            kind: self.event.kind().audit_kind().to_string(),
            subject,
            payload: vellum::event::Payload::from_value(&payload),
            labels: Default::default(),
        })
    }
}

/// Event kinds, for filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)] // the runtime's names say it
pub enum ExperienceEventKind {
    ProposalCreated,
    ProposalValidated,
    FactPromoted,
    RecallExecuted,
    TraceLinkRecorded,
    ReplayabilityDowngraded,
    ArtifactStateTransitioned,
    ArtifactRollbackRecorded,
    BackendInvoked,
    OutcomeRecorded,
    BudgetExceeded,
    PolicySnapshotCaptured,
}

impl ExperienceEventKind {
    /// Every kind.
    pub const ALL: [Self; 12] = [
        Self::ProposalCreated,
        Self::ProposalValidated,
        Self::FactPromoted,
        Self::RecallExecuted,
        Self::TraceLinkRecorded,
        Self::ReplayabilityDowngraded,
        Self::ArtifactStateTransitioned,
        Self::ArtifactRollbackRecorded,
        Self::BackendInvoked,
        Self::OutcomeRecorded,
        Self::BudgetExceeded,
        Self::PolicySnapshotCaptured,
    ];

    /// The audit event kind it is recorded as (the WIT's well-known kinds where they
    /// exist).
    pub fn audit_kind(self) -> &'static str {
        match self {
            Self::ProposalCreated => "proposal.created",
            Self::ProposalValidated => "proposal.validated",
            Self::FactPromoted => "fact.promoted",
            Self::RecallExecuted => "recall.executed",
            Self::TraceLinkRecorded => "trace-link.recorded",
            Self::ReplayabilityDowngraded => "replayability.downgraded",
            Self::ArtifactStateTransitioned => "artifact.state-transitioned",
            Self::ArtifactRollbackRecorded => "artifact.rollback-recorded",
            Self::BackendInvoked => "backend.invoked",
            Self::OutcomeRecorded => "outcome.recorded",
            Self::BudgetExceeded => "budget.exceeded",
            Self::PolicySnapshotCaptured => "policy.snapshot-captured",
        }
    }
}

/// The experience events, in the runtime's JSON shape (`{"type": …, "data": …}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
#[allow(missing_docs)] // the runtime's names say it
pub enum ExperienceEvent {
    ProposalCreated {
        proposal: Value,
        chain_id: String,
        step: Value,
        policy_snapshot_hash: Option<String>,
    },
    ProposalValidated {
        proposal_id: String,
        chain_id: String,
        step: Value,
        contract_results: Vec<ContractResultSnapshot>,
        all_passed: bool,
        validator: String,
    },
    FactPromoted {
        proposal_id: String,
        fact_id: String,
        promoted_by: String,
        reason: String,
        requires_human: bool,
    },
    RecallExecuted {
        query: Value,
        provenance: Value,
        trace_link_id: Option<String>,
    },
    TraceLinkRecorded {
        trace_link_id: String,
        trace_link: Value,
    },
    ReplayabilityDowngraded {
        trace_link_id: String,
        from: Value,
        to: Value,
        reason: Value,
    },
    ArtifactStateTransitioned {
        artifact_id: String,
        artifact_kind: ArtifactKind,
        event: Value,
    },
    ArtifactRollbackRecorded {
        rollback: Value,
    },
    BackendInvoked {
        backend_name: String,
        adapter_id: Option<String>,
        trace_link_id: String,
        step: Value,
        policy_snapshot_hash: Option<String>,
    },
    OutcomeRecorded {
        chain_id: String,
        step: Value,
        passed: bool,
        stop_reason: Option<String>,
        latency_ms: Option<u64>,
        tokens: Option<u64>,
        cost_microdollars: Option<u64>,
        backend: Option<String>,
    },
    BudgetExceeded {
        chain_id: String,
        resource: String,
        limit: String,
        observed: Option<String>,
    },
    PolicySnapshotCaptured {
        policy_id: String,
        policy: PolicySnapshot,
        snapshot_hash: String,
        captured_by: String,
    },
}

impl ExperienceEvent {
    /// The event's kind.
    pub fn kind(&self) -> ExperienceEventKind {
        use ExperienceEventKind as K;
        match self {
            Self::ProposalCreated { .. } => K::ProposalCreated,
            Self::ProposalValidated { .. } => K::ProposalValidated,
            Self::FactPromoted { .. } => K::FactPromoted,
            Self::RecallExecuted { .. } => K::RecallExecuted,
            Self::TraceLinkRecorded { .. } => K::TraceLinkRecorded,
            Self::ReplayabilityDowngraded { .. } => K::ReplayabilityDowngraded,
            Self::ArtifactStateTransitioned { .. } => K::ArtifactStateTransitioned,
            Self::ArtifactRollbackRecorded { .. } => K::ArtifactRollbackRecorded,
            Self::BackendInvoked { .. } => K::BackendInvoked,
            Self::OutcomeRecorded { .. } => K::OutcomeRecorded,
            Self::BudgetExceeded { .. } => K::BudgetExceeded,
            Self::PolicySnapshotCaptured { .. } => K::PolicySnapshotCaptured,
        }
    }

    /// The chain id, for the variants that carry one.
    pub fn chain_id(&self) -> Option<&str> {
        match self {
            Self::ProposalCreated { chain_id, .. }
            | Self::ProposalValidated { chain_id, .. }
            | Self::OutcomeRecorded { chain_id, .. }
            | Self::BudgetExceeded { chain_id, .. } => Some(chain_id),
            _ => None,
        }
    }

    /// Who acted and on what, where the variant says.
    fn actor_and_subject(&self) -> (Option<String>, Option<String>) {
        let some = |s: &String| Some(s.clone());
        match self {
            Self::ProposalCreated { proposal, .. } => (
                None,
                proposal
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            ),
            Self::ProposalValidated {
                proposal_id,
                validator,
                ..
            } => (some(validator), some(proposal_id)),
            Self::FactPromoted {
                fact_id,
                promoted_by,
                ..
            } => (some(promoted_by), some(fact_id)),
            Self::RecallExecuted { trace_link_id, .. } => (None, trace_link_id.clone()),
            Self::TraceLinkRecorded { trace_link_id, .. }
            | Self::ReplayabilityDowngraded { trace_link_id, .. } => (None, some(trace_link_id)),
            Self::ArtifactStateTransitioned { artifact_id, .. } => (None, some(artifact_id)),
            Self::ArtifactRollbackRecorded { rollback } => (
                None,
                rollback
                    .get("artifact_id")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            ),
            Self::BackendInvoked {
                backend_name,
                trace_link_id,
                ..
            } => (some(backend_name), some(trace_link_id)),
            Self::OutcomeRecorded { backend, .. } => (backend.clone(), None),
            Self::BudgetExceeded { resource, .. } => (None, some(resource)),
            Self::PolicySnapshotCaptured {
                policy_id,
                captured_by,
                ..
            } => (some(captured_by), some(policy_id)),
        }
    }
}

/// A contract's result in a validation event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ContractResultSnapshot {
    pub name: String,
    pub passed: bool,
    pub failure_reason: Option<String>,
}

/// The kind of a governed artifact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum ArtifactKind {
    Adapter,
    Pack,
    Policy,
    TruthFile,
    EvalSuite,
    Other(String),
}

/// A policy snapshot (`{"type": …, "policy": …}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "policy")]
#[allow(missing_docs)]
pub enum PolicySnapshot {
    Kernel(Value),
    Routing(Value),
    Recall(Value),
}

/// An inclusive time range (ISO 8601).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TimeRange {
    /// From this time on (inclusive).
    pub start: Option<String>,
    /// Up to this time (inclusive).
    pub end: Option<String>,
}

/// A query over experience events; all given filters must match.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EventQuery {
    /// Only this tenant.
    pub tenant_id: Option<String>,
    /// Only events in this inclusive range.
    pub time_range: Option<TimeRange>,
    /// Only these kinds (any); empty means all.
    pub kinds: Vec<ExperienceEventKind>,
    /// Only this correlation id.
    pub correlation_id: Option<String>,
    /// Only this chain id.
    pub chain_id: Option<String>,
    /// At most this many (default 100).
    pub limit: Option<usize>,
}

/// A query over governed-artifact transitions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ArtifactQuery {
    /// Only this tenant.
    pub tenant_id: Option<String>,
    /// Only this artifact.
    pub artifact_id: Option<String>,
    /// Only this kind of artifact.
    pub kind: Option<ArtifactKind>,
    /// Only transitions into this state (the lifecycle event's `to_state`, or `to`).
    pub state: Option<Value>,
    /// At most this many (default 100).
    pub limit: Option<usize>,
}

/// Why an experience-store call failed; nothing was recorded on a failed append.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExperienceError {
    /// The append failed (invalid, rejected by a plugin, or unavailable).
    #[error(transparent)]
    Emit(#[from] EmitError),
    /// The ledger could not be read.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The query is malformed.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
}

/// The write side: appends envelopes through the sink.
#[derive(Clone)]
pub struct ExperienceAppender {
    sink: Sink,
}

impl ExperienceAppender {
    /// An appender over `sink`.
    pub fn new(sink: Sink) -> Self {
        Self { sink }
    }

    /// Appends one envelope; returns once durable.
    pub fn append_event(&self, envelope: ExperienceEventEnvelope) -> Result<Receipt, EmitError> {
        self.sink.emit(envelope.to_audit_event()?)
    }

    /// Appends envelopes atomically: all durable, or none recorded.
    pub fn append_events(
        &self,
        envelopes: &[ExperienceEventEnvelope],
    ) -> Result<Vec<Receipt>, EmitError> {
        let events = envelopes
            .iter()
            .map(ExperienceEventEnvelope::to_audit_event)
            .collect::<Result<Vec<_>, _>>()?;
        self.sink.emit_batch(events)
    }

    /// Records a governed artifact's lifecycle transition (an `ArtifactStateTransitioned`
    /// event, stamped now).
    pub fn write_artifact_state_transition(
        &self,
        artifact_id: &str,
        artifact_kind: ArtifactKind,
        event: Value,
    ) -> Result<Receipt, EmitError> {
        let envelope = ExperienceEventEnvelope::new(
            crate::new_event_id(&format!("artifact:{artifact_id}")),
            Timestamp::now().to_string(),
            ExperienceEvent::ArtifactStateTransitioned {
                artifact_id: artifact_id.to_string(),
                artifact_kind,
                event,
            },
        );
        self.append_event(envelope)
    }
}

/// Where a replay starts.
#[derive(Debug, Clone)]
pub enum ReplayFrom {
    /// The first entry.
    Start,
    /// After this sequence number (the last one a previous replay delivered).
    After(u64),
}

/// The read side: queries and streaming replay, over a sink's ledger or a read-only one.
pub struct ExperienceReplayer<'a> {
    ledger: &'a Ledger,
}

impl<'a> ExperienceReplayer<'a> {
    /// A replayer over `ledger` (for example `sink.ledger()`, or
    /// `Ledger::open_read_only`).
    pub fn new(ledger: &'a Ledger) -> Self {
        Self { ledger }
    }

    /// The envelopes matching `query`, in recording order, answered by the ledger's
    /// indexes (tenant, correlation, chain, time).
    pub fn query_events(
        &self,
        query: &EventQuery,
    ) -> Result<Vec<ExperienceEventEnvelope>, ExperienceError> {
        let kinds = match query.kinds.is_empty() {
            true => ExperienceEventKind::ALL.to_vec(),
            false => query.kinds.clone(),
        };
        let (since, until) = match &query.time_range {
            None => (None, None),
            Some(range) => (time(range.start.as_deref())?, time(range.end.as_deref())?),
        };
        let ledger_query = Query {
            tenant: query.tenant_id.clone(),
            since,
            // The range is inclusive; the ledger's `until` is not.
            until: until.map(|t| t + jiff::SignedDuration::from_nanos(1)),
            kinds: kinds.iter().map(|k| k.audit_kind().to_string()).collect(),
            correlation_id: query.correlation_id.clone(),
            chain_id: query.chain_id.clone(),
            ..Query::default()
        };
        let limit = query.limit.unwrap_or(100).clamp(1, MAX_LIMIT);
        let entries = crate::query_all(self.ledger, ledger_query, Some(limit), is_recorded)?;
        entries.iter().map(envelope).collect()
    }

    /// The trace link recorded under `trace_link_id` (the latest, if recorded twice).
    pub fn get_trace_link(&self, trace_link_id: &str) -> Result<Option<Value>, ExperienceError> {
        let query = Query {
            kinds: vec![
                ExperienceEventKind::TraceLinkRecorded
                    .audit_kind()
                    .to_string(),
            ],
            ..Query::default()
        };
        let entries = crate::query_all(self.ledger, query, None, |e| {
            is_recorded(e) && e.event.subject.as_deref() == Some(trace_link_id)
        })?;
        match entries.last().map(envelope).transpose()? {
            Some(ExperienceEventEnvelope {
                event: ExperienceEvent::TraceLinkRecorded { trace_link, .. },
                ..
            }) => Ok(Some(trace_link)),
            _ => Ok(None),
        }
    }

    /// The artifact transitions matching `query`, in recording order.
    pub fn query_artifacts(
        &self,
        query: &ArtifactQuery,
    ) -> Result<Vec<ExperienceEventEnvelope>, ExperienceError> {
        let ledger_query = Query {
            tenant: query.tenant_id.clone(),
            kinds: vec![
                ExperienceEventKind::ArtifactStateTransitioned
                    .audit_kind()
                    .to_string(),
            ],
            ..Query::default()
        };
        let limit = query.limit.unwrap_or(100).clamp(1, MAX_LIMIT);
        let mut found = Vec::new();
        for entry in crate::query_all(self.ledger, ledger_query, None, is_recorded)? {
            let envelope = envelope(&entry)?;
            let ExperienceEvent::ArtifactStateTransitioned {
                artifact_id,
                artifact_kind,
                event,
            } = &envelope.event
            else {
                continue;
            };
            let state = event.get("to_state").or_else(|| event.get("to"));
            let matches = query
                .artifact_id
                .as_ref()
                .is_none_or(|id| id == artifact_id)
                && query.kind.as_ref().is_none_or(|k| k == artifact_kind)
                && query.state.as_ref().is_none_or(|s| Some(s) == state);
            if matches {
                found.push(envelope);
                if found.len() >= limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// The next entries after `from` (at most `max` scanned), with their sequence
    /// numbers. Continue with [`ReplayFrom::After`] the page's `resume_after` — also after
    /// a restart, since it is a ledger position — until `caught_up`.
    pub fn replay(&self, from: ReplayFrom, max: usize) -> Result<ReplayPage, ExperienceError> {
        let after_seq = match from {
            ReplayFrom::Start => None,
            ReplayFrom::After(seq) => Some(seq),
        };
        let query = Query {
            kinds: ExperienceEventKind::ALL
                .iter()
                .map(|k| k.audit_kind().to_string())
                .collect(),
            after_seq,
            limit: max.clamp(1, MAX_LIMIT),
            ..Query::default()
        };
        let page = self.ledger.query(&query)?;
        let events = page
            .entries
            .iter()
            .filter(|e| is_recorded(e))
            .map(|e| Ok((e.seq, envelope(e)?)))
            .collect::<Result<_, ExperienceError>>()?;
        let erased = page
            .entries
            .iter()
            .filter_map(|e| crate::erased_by(e).map(|record| (e.seq, record)))
            .collect();
        Ok(ReplayPage {
            events,
            erased,
            resume_after: page.entries.last().map(|e| e.seq).or(after_seq),
            caught_up: page.next_cursor.is_none(),
        })
    }
}

/// One page of a replay.
#[derive(Debug, Clone)]
pub struct ReplayPage {
    /// The envelopes, with their sequence numbers (drop markers and erased entries are
    /// skipped).
    pub events: Vec<(u64, ExperienceEventEnvelope)>,
    /// The erased entries of the page, `(seq, erasure record)`: their content is gone, so
    /// they have no envelope, but a replay still learns where they were.
    pub erased: Vec<(u64, Option<u64>)>,
    /// Where the next page starts ([`ReplayFrom::After`]).
    pub resume_after: Option<u64>,
    /// Whether this page reached the end of the ledger.
    pub caught_up: bool,
}

/// Whether an entry holds an envelope: recorded, and not erased (the queries leave erased
/// entries out; [`ExperienceReplayer::replay`] lists them).
fn is_recorded(entry: &Entry) -> bool {
    entry.disposition == Disposition::Recorded && !entry.is_erased()
}

fn envelope(entry: &Entry) -> Result<ExperienceEventEnvelope, ExperienceError> {
    serde_json::from_str(entry.event.payload.as_str()).map_err(|e| {
        ExperienceError::Ledger(LedgerError::Invalid(format!(
            "entry {} is not an experience event envelope: {e}",
            entry.seq
        )))
    })
}

fn time(text: Option<&str>) -> Result<Option<Timestamp>, ExperienceError> {
    text.map(|t| {
        t.parse().map_err(|e| {
            ExperienceError::InvalidQuery(format!("`{t}` is not an ISO 8601 time: {e}"))
        })
    })
    .transpose()
}
