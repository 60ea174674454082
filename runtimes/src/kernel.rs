//! The kernel event bus (Oxios): its events, their audit mapping exactly as the runtime's
//! `kernel_event_to_audit_action`, and two subscribers that never skip silently:
//!
//! - [`AuditedBus`]: a bounded bus whose publisher waits when the audit falls behind
//!   (backpressure), so every published event is recorded, in order;
//! - [`attach_to_broadcast`]: for an existing `tokio::sync::broadcast` bus, whose
//!   subscribers lag when their buffer overflows: each loss is itself recorded as a
//!   `kernel.events-lost` gap marker naming how many events were lost and after which
//!   ledger entry, so the audit trail accounts for every event.
//!
//! ```no_run
//! # fn demo(sink: vellum::Sink, event: vellum_runtimes::kernel::KernelEvent) {
//! use vellum_runtimes::kernel::{AuditedBus, KernelAudit};
//! let bus = AuditedBus::start(KernelAudit::new(sink).with_tenant("acme"), 256);
//! bus.publish(event).expect("the audit is running");   // waits when the audit is behind
//! let report = bus.close();                              // recorded, rejected
//! # }
//! ```
//!
//! Each event is recorded with the action's kind (`agent.spawned`, `agent.exited`,
//! `memory.write`, `memory.read`, `kernel.other`) and labels `oxios.event` (the variant),
//! `oxios.action` and the action's field (`oxios.task_type`, `oxios.reason`,
//! `oxios.entry_id` or `oxios.detail`); the actor as the runtime derives it, the subject
//! per variant, the session id as correlation id, and the event itself (raw tool arguments
//! included, so the redact plugin sees them) as the payload.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::broadcast::{self, error::RecvError};
use vellum::{AuditEvent, EmitError, Sink};

/// An agent's id (a UUID in the runtime).
pub type AgentId = String;

/// The kernel's events, in the runtime's JSON shape (externally tagged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)] // the runtime's names say it
pub enum KernelEvent {
    AgentCreated {
        id: AgentId,
        name: String,
    },
    AgentStarted {
        id: AgentId,
    },
    AgentStopped {
        id: AgentId,
        #[serde(default)]
        success: bool,
    },
    AgentFailed {
        id: AgentId,
        error: String,
    },
    MessageReceived {
        from: AgentId,
        content: String,
    },
    SeedCreated {
        seed_id: String,
    },
    EvaluationComplete {
        seed_id: String,
        passed: bool,
    },
    PhaseStarted {
        session_id: String,
        phase: String,
    },
    PhaseCompleted {
        session_id: String,
        phase: String,
        result_summary: String,
    },
    AgentOutput {
        session_id: String,
        agent_id: AgentId,
        output: String,
    },
    ApprovalRequested {
        id: String,
        tool_name: String,
        action: String,
        resource: String,
        reason: String,
        session_id: Option<String>,
    },
    ApprovalResolved {
        id: String,
        approved: bool,
    },
    MemoryStored {
        id: String,
        memory_type: String,
        source: String,
    },
    MemoryRecalled {
        query: String,
        count: usize,
    },
    AgentGroupCreated {
        group_id: String,
        agent_count: usize,
    },
    AgentGroupMemberCompleted {
        group_id: String,
        agent_id: String,
        success: bool,
    },
    ProjectCreated {
        project_id: String,
        name: String,
        source: String,
    },
    ProjectActivated {
        project_id: String,
        name: String,
    },
    EvolutionStarted {
        seed_id: String,
        new_seed_id: String,
        iteration: u32,
    },
    EvolutionMaxReached {
        seed_id: String,
        final_score: f64,
        iterations: u32,
    },
    ToolExecutionStarted {
        session_id: String,
        tool_name: String,
        tool_call_id: String,
        tool_args: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<Value>,
    },
    ToolExecutionFinished {
        session_id: String,
        tool_call_id: String,
        tool_name: String,
        duration_ms: u64,
        is_error: bool,
        output_summary: String,
    },
    ToolExecutionProgress {
        session_id: String,
        tool_call_id: String,
        tool_name: String,
        progress: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tab_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<Value>,
    },
    MemoryRecallUsed {
        session_id: String,
        query: String,
        count: usize,
        source: String,
    },
    TokenUsageUpdate {
        session_id: String,
        input_tokens: u64,
        output_tokens: u64,
    },
    ReasoningFragment {
        session_id: String,
        content: String,
        source: String,
    },
    CalendarEventCreated {
        uid: String,
        title: String,
        start: String,
        end: String,
    },
    CalendarEventUpdated {
        uid: String,
        title: String,
    },
    CalendarEventDeleted {
        uid: String,
        title: String,
    },
    EmailSent {
        subject: String,
        message_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        template_name: Option<String>,
    },
    KnowledgePersisted {
        session_id: String,
        message_index: usize,
        path: String,
        source: String,
    },
    KnowledgeRemoved {
        session_id: String,
        message_index: usize,
    },
    AskUserRequest {
        id: String,
        question: String,
        options: Vec<String>,
    },
}

/// The runtime's audit actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum AuditAction {
    AgentSpawn { task_type: String },
    AgentExit { reason: String },
    MemoryWrite { entry_id: String },
    MemoryRead { entry_id: String },
    Other { detail: String },
}

impl AuditAction {
    /// The audit event kind the action is recorded as.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AgentSpawn { .. } => "agent.spawned",
            Self::AgentExit { .. } => "agent.exited",
            Self::MemoryWrite { .. } => "memory.write",
            Self::MemoryRead { .. } => "memory.read",
            Self::Other { .. } => "kernel.other",
        }
    }

    /// The labels that keep the whole action: its name and its one field.
    fn labels(&self) -> [(String, String); 2] {
        let (name, field, value) = match self {
            Self::AgentSpawn { task_type } => ("AgentSpawn", "task_type", task_type),
            Self::AgentExit { reason } => ("AgentExit", "reason", reason),
            Self::MemoryWrite { entry_id } => ("MemoryWrite", "entry_id", entry_id),
            Self::MemoryRead { entry_id } => ("MemoryRead", "entry_id", entry_id),
            Self::Other { detail } => ("Other", "detail", detail),
        };
        [
            ("oxios.action".to_string(), name.to_string()),
            (format!("oxios.{field}"), value.clone()),
        ]
    }
}

/// The audit action of an event, exactly as the runtime maps it.
pub fn kernel_event_to_audit_action(event: &KernelEvent) -> AuditAction {
    use KernelEvent as E;
    let other = |detail: String| AuditAction::Other { detail };
    match event {
        E::AgentCreated { name, .. } => AuditAction::AgentSpawn {
            task_type: name.clone(),
        },
        E::AgentStarted { .. } => AuditAction::AgentSpawn {
            task_type: "started".to_string(),
        },
        E::AgentStopped { success, .. } => AuditAction::AgentExit {
            reason: if *success { "completed" } else { "stopped" }.to_string(),
        },
        E::AgentFailed { error, .. } => AuditAction::AgentExit {
            reason: error.clone(),
        },
        E::MessageReceived { content, .. } => other(format!("message: {content}")),
        E::SeedCreated { seed_id } => other(format!("seed_created:{seed_id}")),
        E::EvaluationComplete { seed_id, passed } => {
            other(format!("evaluation:{seed_id}:{passed}"))
        }
        E::PhaseStarted { session_id, phase } => {
            other(format!("phase_started:{session_id}:{phase}"))
        }
        E::PhaseCompleted {
            session_id,
            phase,
            result_summary,
        } => other(format!(
            "phase_completed:{session_id}:{phase}:{result_summary}"
        )),
        E::AgentOutput { output, .. } => other(format!("agent_output:{output}")),
        E::ApprovalRequested {
            id,
            action,
            resource,
            ..
        } => other(format!("approval_requested:{id}:{action}:{resource}")),
        E::ApprovalResolved { id, approved } => other(format!("approval_resolved:{id}:{approved}")),
        E::MemoryStored {
            id, memory_type, ..
        } => AuditAction::MemoryWrite {
            entry_id: format!("{id}:{memory_type}"),
        },
        E::MemoryRecalled { query, count } => AuditAction::MemoryRead {
            entry_id: format!("query:{query}:{count}results"),
        },
        E::AgentGroupCreated {
            group_id,
            agent_count,
        } => other(format!("group_created:{group_id}:{agent_count}agents")),
        E::AgentGroupMemberCompleted {
            group_id,
            agent_id,
            success,
        } => other(format!(
            "group_member_completed:{group_id}:{agent_id}:{success}"
        )),
        E::EvolutionStarted {
            seed_id,
            new_seed_id,
            iteration,
        } => other(format!(
            "evolution:{seed_id}->{new_seed_id}:iter{iteration}"
        )),
        E::EvolutionMaxReached {
            seed_id,
            final_score,
            iterations,
        } => other(format!(
            "evolution_max:{seed_id}:score={final_score}:iters={iterations}"
        )),
        E::ProjectCreated { name, source, .. } => other(format!("project_created:{name}:{source}")),
        E::ProjectActivated { name, .. } => other(format!("project_activated:{name}")),
        E::ToolExecutionStarted { tool_name, .. } => other(format!("tool_started:{tool_name}")),
        E::ToolExecutionFinished {
            tool_name,
            is_error,
            ..
        } => other(format!(
            "tool_finished:{tool_name}:{}",
            if *is_error { "error" } else { "ok" }
        )),
        E::ToolExecutionProgress {
            tool_name,
            tab_id,
            context,
            ..
        } => {
            let mut detail = format!("tool_progress:{tool_name}");
            if let Some(id) = tab_id {
                detail.push_str(&format!(":tab={id}"));
            }
            if let Some(kind) = context
                .as_ref()
                .and_then(|c| c.get("kind"))
                .and_then(Value::as_str)
            {
                detail.push_str(&format!(":{kind}"));
            }
            other(detail)
        }
        E::MemoryRecallUsed { query, count, .. } => AuditAction::MemoryRead {
            entry_id: format!("recall:{query}:{count}results"),
        },
        E::TokenUsageUpdate {
            input_tokens,
            output_tokens,
            ..
        } => other(format!("tokens:in={input_tokens}:out={output_tokens}")),
        E::ReasoningFragment { source, .. } => other(format!("reasoning:{source}")),
        E::CalendarEventCreated { uid, title, .. } => {
            other(format!("calendar:created:{uid}:{title}"))
        }
        E::CalendarEventUpdated { uid, title } => other(format!("calendar:updated:{uid}:{title}")),
        E::CalendarEventDeleted { uid, title } => other(format!("calendar:deleted:{uid}:{title}")),
        E::EmailSent {
            subject,
            message_id,
            template_name,
        } => other(format!(
            "email:sent:{subject} (msg={message_id}, tpl={template_name:?})"
        )),
        E::KnowledgePersisted {
            session_id,
            message_index,
            path,
            source,
        } => other(format!(
            "knowledge:persisted:{session_id}:{message_index}:{path}:{source}"
        )),
        E::KnowledgeRemoved {
            session_id,
            message_index,
        } => other(format!("knowledge:removed:{session_id}:{message_index}")),
        E::AskUserRequest { id, question, .. } => other(format!("ask_user:{id}:{question}")),
    }
}

impl KernelEvent {
    /// Who acted, exactly as the runtime attributes it.
    pub fn actor(&self) -> String {
        use KernelEvent as E;
        match self {
            E::AgentCreated { id, .. }
            | E::AgentStarted { id }
            | E::AgentStopped { id, .. }
            | E::AgentFailed { id, .. } => id.clone(),
            E::MessageReceived { from, .. } => from.clone(),
            E::AgentOutput { agent_id, .. } | E::AgentGroupMemberCompleted { agent_id, .. } => {
                agent_id.clone()
            }
            E::ProjectActivated { project_id, .. } => format!("project:{project_id}"),
            E::ToolExecutionStarted { session_id, .. }
            | E::ToolExecutionFinished { session_id, .. }
            | E::ToolExecutionProgress { session_id, .. }
            | E::MemoryRecallUsed { session_id, .. }
            | E::TokenUsageUpdate { session_id, .. }
            | E::ReasoningFragment { session_id, .. }
            | E::KnowledgePersisted { session_id, .. }
            | E::KnowledgeRemoved { session_id, .. } => format!("session:{session_id}"),
            _ => "system".to_string(),
        }
    }

    /// What the event is about.
    pub fn subject(&self) -> Option<String> {
        use KernelEvent as E;
        let s = match self {
            E::AgentCreated { id, .. }
            | E::AgentStarted { id }
            | E::AgentStopped { id, .. }
            | E::AgentFailed { id, .. } => id,
            E::MessageReceived { from, .. } => from,
            E::SeedCreated { seed_id }
            | E::EvaluationComplete { seed_id, .. }
            | E::EvolutionStarted { seed_id, .. }
            | E::EvolutionMaxReached { seed_id, .. } => seed_id,
            E::PhaseStarted { phase, .. } | E::PhaseCompleted { phase, .. } => phase,
            E::AgentOutput { agent_id, .. } => agent_id,
            E::ApprovalRequested { tool_name, .. }
            | E::ToolExecutionStarted { tool_name, .. }
            | E::ToolExecutionFinished { tool_name, .. }
            | E::ToolExecutionProgress { tool_name, .. } => tool_name,
            E::ApprovalResolved { id, .. } | E::MemoryStored { id, .. } => id,
            E::MemoryRecalled { query, .. } | E::MemoryRecallUsed { query, .. } => query,
            E::AgentGroupCreated { group_id, .. }
            | E::AgentGroupMemberCompleted { group_id, .. } => group_id,
            E::ProjectCreated { project_id, .. } | E::ProjectActivated { project_id, .. } => {
                project_id
            }
            E::TokenUsageUpdate { .. } | E::ReasoningFragment { .. } => return None,
            E::CalendarEventCreated { uid, .. }
            | E::CalendarEventUpdated { uid, .. }
            | E::CalendarEventDeleted { uid, .. } => uid,
            E::EmailSent { message_id, .. } => message_id,
            E::KnowledgePersisted { path, .. } => path,
            E::KnowledgeRemoved { session_id, .. } => session_id,
            E::AskUserRequest { id, .. } => id,
        };
        Some(s.clone())
    }

    /// The session the event belongs to, if it names one.
    pub fn session(&self) -> Option<&str> {
        use KernelEvent as E;
        match self {
            E::PhaseStarted { session_id, .. }
            | E::PhaseCompleted { session_id, .. }
            | E::AgentOutput { session_id, .. }
            | E::ToolExecutionStarted { session_id, .. }
            | E::ToolExecutionFinished { session_id, .. }
            | E::ToolExecutionProgress { session_id, .. }
            | E::MemoryRecallUsed { session_id, .. }
            | E::TokenUsageUpdate { session_id, .. }
            | E::ReasoningFragment { session_id, .. }
            | E::KnowledgePersisted { session_id, .. }
            | E::KnowledgeRemoved { session_id, .. } => Some(session_id),
            E::ApprovalRequested { session_id, .. } => session_id.as_deref(),
            _ => None,
        }
    }

    /// The variant's name (`ToolExecutionStarted`, …).
    pub fn name(&self) -> String {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map.keys().next().cloned().unwrap_or_default(),
            _ => String::new(),
        }
    }
}

/// Turns kernel events into audit events and records them.
#[derive(Clone)]
pub struct KernelAudit {
    sink: Sink,
    tenant: Option<String>,
}

/// The kind of a gap marker.
pub const EVENTS_LOST_KIND: &str = "kernel.events-lost";

impl KernelAudit {
    /// Records through `sink`.
    pub fn new(sink: Sink) -> Self {
        Self { sink, tenant: None }
    }

    /// Records every event for `tenant`.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// The audit event of a kernel event (a fresh id, stamped now).
    pub fn audit_event(&self, event: &KernelEvent) -> AuditEvent {
        let action = kernel_event_to_audit_action(event);
        let mut labels: BTreeMap<String, String> = action.labels().into_iter().collect();
        labels.insert("oxios.event".to_string(), event.name());
        AuditEvent {
            id: crate::new_event_id("oxios"),
            occurred_at: Timestamp::now(),
            tenant: self.tenant.clone(),
            correlation_id: event.session().map(str::to_string),
            chain_id: None,
            actor: Some(event.actor()),
            kind: action.kind().to_string(),
            subject: event.subject(),
            payload: vellum::event::Payload::from_value(
                &serde_json::to_value(event).unwrap_or(Value::Null),
            ),
            labels,
        }
    }

    /// Records `events` in order. Retries while the sink is unavailable (the same events
    /// under the same idempotency key, so a retry never records twice): the bus stalls
    /// rather than lose an event. A batch a plugin rejects is retried one event at a time
    /// so that only the refused events are left out (counted and logged). Returns the
    /// sequence number of the last entry recorded; an error only once the sink is closed.
    fn record(
        &self,
        events: Vec<AuditEvent>,
        report: &mut BusReport,
    ) -> Result<Option<u64>, EmitError> {
        let key = format!(
            "oxios-batch:{}:{}",
            events.first().map_or("", |e| e.id.as_str()),
            events.len()
        );
        let scope = self.tenant.clone().unwrap_or_default();
        loop {
            match self
                .sink
                .emit_batch_idempotent(&scope, &key, events.clone())
            {
                Ok(receipts) => {
                    report.recorded += receipts.len() as u64;
                    return Ok(receipts.last().map(|r| r.seq));
                }
                Err(error @ EmitError::Unavailable(_)) if self.sink.is_closed() => {
                    return Err(error);
                }
                Err(EmitError::Unavailable(m)) => {
                    tracing::warn!("kernel audit waits for the ledger: {m}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(_) if events.len() > 1 => {
                    let mut last = None;
                    for event in events {
                        last = self.record(vec![event], report)?.or(last);
                    }
                    return Ok(last);
                }
                Err(error) => {
                    let id = events.first().map_or("", |e| e.id.as_str());
                    tracing::error!("kernel event `{id}` not recorded: {error}");
                    report.rejected += 1;
                    return Ok(None);
                }
            }
        }
    }

    /// Records a gap marker: `lost` events of the bus were never delivered, after the
    /// entry `after_seq`.
    fn record_gap(
        &self,
        lost: u64,
        after_seq: Option<u64>,
        report: &mut BusReport,
    ) -> Result<Option<u64>, EmitError> {
        let marker = AuditEvent {
            id: crate::new_event_id("oxios-gap"),
            occurred_at: Timestamp::now(),
            tenant: self.tenant.clone(),
            correlation_id: None,
            chain_id: None,
            actor: Some("vellum".to_string()),
            kind: EVENTS_LOST_KIND.to_string(),
            subject: None,
            payload: vellum::event::Payload::from_value(&json!({
                "lost": lost,
                "after_seq": after_seq,
                "reason": "the broadcast subscriber lagged behind the bus",
            })),
            labels: BTreeMap::new(),
        };
        report.lost += lost;
        self.record(vec![marker], report)
    }
}

/// What a subscriber did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusReport {
    /// Entries recorded (events and gap markers).
    pub recorded: u64,
    /// Events a plugin rejected (logged, not recorded).
    pub rejected: u64,
    /// Events the bus lost before the subscriber saw them (each loss has a gap marker).
    pub lost: u64,
}

/// A bounded kernel bus that never drops: `publish` waits while the audit is behind.
pub struct AuditedBus {
    sender: Option<SyncSender<KernelEvent>>,
    thread: Option<JoinHandle<BusReport>>,
}

/// The bus's audit has stopped (its sink closed); the event was not recorded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the kernel audit has stopped; the event was not recorded")]
pub struct AuditStopped(pub Box<KernelEvent>);

/// Events recorded in one emit, at most.
const BATCH: usize = 256;

impl AuditedBus {
    /// Starts the audit thread; at most `capacity` events wait for it.
    pub fn start(audit: KernelAudit, capacity: usize) -> Self {
        let (sender, receiver) = sync_channel(capacity.max(1));
        let thread = std::thread::Builder::new()
            .name("vellum-kernel-audit".into())
            .spawn(move || run_audited(audit, receiver))
            .ok();
        Self {
            sender: Some(sender),
            thread,
        }
    }

    /// Publishes an event; waits while `capacity` events are waiting for the audit.
    pub fn publish(&self, event: KernelEvent) -> Result<(), AuditStopped> {
        match &self.sender {
            Some(sender) if self.thread.is_some() => {
                sender.send(event).map_err(|e| AuditStopped(Box::new(e.0)))
            }
            _ => Err(AuditStopped(Box::new(event))),
        }
    }

    /// Stops the bus after every published event is recorded; says what happened.
    pub fn close(mut self) -> BusReport {
        self.sender.take();
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

fn run_audited(audit: KernelAudit, receiver: Receiver<KernelEvent>) -> BusReport {
    let mut report = BusReport::default();
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![audit.audit_event(&first)];
        batch.extend(
            receiver
                .try_iter()
                .take(BATCH - 1)
                .map(|e| audit.audit_event(&e)),
        );
        if audit.record(batch, &mut report).is_err() {
            break;
        }
    }
    report
}

/// Subscribes the audit to a `tokio::sync::broadcast` bus (the runtime's own) on a thread
/// of its own. Lagging is recorded, not skipped: a `kernel.events-lost` gap marker names
/// how many events were lost and after which entry. Ends when the bus closes.
pub fn attach_to_broadcast(
    mut receiver: broadcast::Receiver<KernelEvent>,
    audit: KernelAudit,
) -> std::io::Result<JoinHandle<BusReport>> {
    std::thread::Builder::new()
        .name("vellum-kernel-broadcast-audit".into())
        .spawn(move || {
            let mut report = BusReport::default();
            let mut last_seq = None;
            loop {
                let recorded = match receiver.blocking_recv() {
                    Ok(event) => audit.record(vec![audit.audit_event(&event)], &mut report),
                    Err(RecvError::Lagged(lost)) => audit.record_gap(lost, last_seq, &mut report),
                    Err(RecvError::Closed) => break,
                };
                match recorded {
                    Ok(seq) => last_seq = seq.or(last_seq),
                    Err(_) => break,
                }
            }
            report
        })
}
