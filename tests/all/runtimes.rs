//! Conformance of the three runtime boundaries with their seeds' documented behaviour
//! (`../shared/seeds/`), checked against Vellum:
//! - CCOS: the intent transition fails when its audit fails; completing a failed execution
//!   is recorded as `Failed`;
//! - Converge: every variant round-trips losslessly, queries answer the documented
//!   semantics, a batch is all-or-nothing, replay resumes after a restart;
//! - Oxios: the audit mapping is the seed's, and a burst 10× the bus capacity leaves no
//!   event unaccounted for.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use crate::common;
use std::path::Path;

use common::{AppendHook, assert_verifies, chain_template, ledger_with_append_hook, new_ledger};
use serde_json::{Value, json};
use vellum::ledger::query::Query;
use vellum::ledger::store::StoreError;
use vellum::sink::SinkOptions;
use vellum::{EmitError, Ledger, LedgerOptions, Sink};
use vellum_runtimes::experience::*;
use vellum_runtimes::intent::IntentAuditSink;
use vellum_runtimes::kernel::*;

fn sink_over(ledger: Ledger, chain_toml: &str) -> Sink {
    Sink::start(chain_template(chain_toml), ledger, &SinkOptions::default()).unwrap()
}

fn open_sink(path: &Path, chain_toml: &str) -> Sink {
    sink_over(
        Ledger::open(path, LedgerOptions::default()).unwrap(),
        chain_toml,
    )
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A small intent state machine that applies a transition only after its audit receipt.
struct Intent {
    id: String,
    status: String,
}

impl Intent {
    fn transition(
        &mut self,
        audit: &IntentAuditSink,
        to: &str,
        reason: &str,
    ) -> Result<(), EmitError> {
        audit.log_intent_status_change(
            "plan-7",
            &self.id,
            &self.status,
            to,
            reason,
            Some("action-1"),
        )?;
        self.status = to.to_string();
        Ok(())
    }

    /// The seed: completing an intent whose execution failed records `Failed`.
    fn complete(&mut self, audit: &IntentAuditSink, success: bool) -> Result<(), EmitError> {
        match success {
            true => self.transition(audit, "Completed", "execution succeeded"),
            false => self.transition(audit, "Failed", "execution failed"),
        }
    }
}

#[test]
fn ccos_a_transition_is_applied_only_after_its_audit_receipt() {
    let (_dir, path) = new_ledger();
    let audit = IntentAuditSink::new(open_sink(&path, "")).with_tenant("acme");
    let mut intent = Intent {
        id: "intent-42".into(),
        status: "Active".into(),
    };
    intent
        .transition(&audit, "Executing", "plan started")
        .unwrap();
    let refused = intent.transition(&audit, "Paused", " ").unwrap_err();
    assert!(matches!(refused, EmitError::InvalidEvent(_)), "{refused:?}");
    assert_eq!(
        intent.status, "Executing",
        "a refused audit leaves the state"
    );
    intent.complete(&audit, false).unwrap();
    assert_eq!(intent.status, "Failed");
    let history = audit.actions_for_intent("intent-42").unwrap();
    let statuses: Vec<_> = history
        .iter()
        .map(|h| {
            let change = h.change.as_ref().unwrap();
            (change.old_status.as_str(), change.new_status.as_str())
        })
        .collect();
    assert_eq!(statuses, [("Active", "Executing"), ("Executing", "Failed")]);
    assert!(history[0].seq < history[1].seq);
    assert_eq!(
        history[1].change.as_ref().unwrap().plan_id.as_deref(),
        Some("plan-7")
    );
    assert!(audit.actions_for_intent("intent-other").unwrap().is_empty());
    // An erased change is listed as erased, not left out.
    let ledger = vellum::Ledger::open(&path, Default::default()).unwrap();
    let erasure = ledger
        .erase(vellum::ledger::erasure::EraseRequest {
            target: vellum::ledger::erasure::EraseTarget::Entries(vec![history[0].seq]),
            reason: "test".into(),
            by: "tester".into(),
            on_hold: vellum::ledger::erasure::OnHold::Refuse,
        })
        .unwrap();
    drop(ledger);
    let history = audit.actions_for_intent("intent-42").unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        (history[0].change.as_ref(), history[0].erased),
        (None, Some(Some(erasure.record_seq)))
    );
    assert!(history[1].change.is_some() && history[1].erased.is_none());
}

#[test]
fn ccos_with_the_ledger_failing_the_transition_fails_and_the_state_is_unchanged() {
    let (_dir, path) = new_ledger();
    let hook: AppendHook =
        Box::new(|_, _, _, _| Err(StoreError::Full("no space left on device".into())));
    let audit = IntentAuditSink::new(sink_over(ledger_with_append_hook(&path, hook), ""));
    let mut intent = Intent {
        id: "intent-1".into(),
        status: "Active".into(),
    };
    let error = intent.complete(&audit, true).unwrap_err();
    assert!(matches!(error, EmitError::Unavailable(_)), "{error:?}");
    assert_eq!(intent.status, "Active");
}

#[test]
fn converge_every_variant_round_trips_losslessly() {
    let fixture = fixture("experience-events.json");
    let envelopes: Vec<ExperienceEventEnvelope> = serde_json::from_value(fixture.clone()).unwrap();
    assert_eq!(envelopes.len(), 12);
    let kinds: std::collections::HashSet<_> = envelopes.iter().map(|e| e.event.kind()).collect();
    assert_eq!(
        kinds.len(),
        ExperienceEventKind::ALL.len(),
        "every variant has a fixture"
    );
    assert_eq!(serde_json::to_value(&envelopes).unwrap(), fixture);

    let (_dir, path) = new_ledger();
    let sink = open_sink(&path, "");
    let receipts = ExperienceAppender::new(sink.clone())
        .append_events(&envelopes)
        .unwrap();
    assert_eq!(receipts.len(), 12);
    let replayer = ExperienceReplayer::new(sink.ledger());
    let back = replayer
        .query_events(&EventQuery {
            limit: Some(100),
            ..EventQuery::default()
        })
        .unwrap();
    assert_eq!(
        serde_json::to_value(&back).unwrap(),
        fixture,
        "read back as written"
    );
}

#[test]
fn converge_queries_answer_the_documented_semantics() {
    let envelopes: Vec<ExperienceEventEnvelope> =
        serde_json::from_value(fixture("experience-events.json")).unwrap();
    let (_dir, path) = new_ledger();
    let sink = open_sink(&path, "");
    let store = ExperienceAppender::new(sink.clone());
    store.append_events(&envelopes).unwrap();
    let replayer = ExperienceReplayer::new(sink.ledger());
    let ids = |query: EventQuery| -> Vec<String> {
        replayer
            .query_events(&query)
            .unwrap()
            .into_iter()
            .map(|e| e.event_id)
            .collect()
    };
    // Tenant, and an inclusive time range: both ends are in.
    let range = TimeRange {
        start: Some("2026-01-21T12:00:01Z".into()),
        end: Some("2026-01-21T12:00:03Z".into()),
    };
    assert_eq!(
        ids(EventQuery {
            tenant_id: Some("tenant-a".into()),
            time_range: Some(range),
            ..EventQuery::default()
        }),
        ["evt-02", "evt-03", "evt-04"]
    );
    assert_eq!(
        ids(EventQuery {
            tenant_id: Some("tenant-b".into()),
            ..EventQuery::default()
        }),
        ["evt-07", "evt-08"]
    );
    assert_eq!(
        ids(EventQuery {
            kinds: vec![
                ExperienceEventKind::BudgetExceeded,
                ExperienceEventKind::FactPromoted
            ],
            ..EventQuery::default()
        }),
        ["evt-03", "evt-11"]
    );
    assert_eq!(
        ids(EventQuery {
            correlation_id: Some("run-2".into()),
            ..EventQuery::default()
        }),
        ["evt-09", "evt-10", "evt-11"]
    );
    assert_eq!(
        ids(EventQuery {
            chain_id: Some("chain-1".into()),
            ..EventQuery::default()
        }),
        ["evt-01", "evt-02"]
    );
    assert_eq!(
        ids(EventQuery {
            limit: Some(2),
            ..EventQuery::default()
        }),
        ["evt-01", "evt-02"]
    );
    let bad = replayer.query_events(&EventQuery {
        time_range: Some(TimeRange {
            start: Some("yesterday".into()),
            end: None,
        }),
        ..EventQuery::default()
    });
    assert!(
        matches!(bad, Err(ExperienceError::InvalidQuery(_))),
        "{bad:?}"
    );

    assert_eq!(
        replayer.get_trace_link("tl-1").unwrap(),
        Some(json!({"Local": {"run": "r1", "hash": "abc"}}))
    );
    assert_eq!(replayer.get_trace_link("tl-9").unwrap(), None);
    store
        .write_artifact_state_transition(
            "adapter-7",
            ArtifactKind::Adapter,
            json!({"from_state": "Approved", "to_state": "Retired"}),
        )
        .unwrap();
    let retired = replayer
        .query_artifacts(&ArtifactQuery {
            artifact_id: Some("adapter-7".into()),
            state: Some(json!("Retired")),
            ..ArtifactQuery::default()
        })
        .unwrap();
    assert_eq!(retired.len(), 1);
    let all = replayer
        .query_artifacts(&ArtifactQuery {
            kind: Some(ArtifactKind::Adapter),
            ..ArtifactQuery::default()
        })
        .unwrap();
    assert_eq!(all.len(), 2);
}

#[test]
fn converge_a_batch_is_all_or_nothing_and_replay_resumes_after_a_restart() {
    let envelopes: Vec<ExperienceEventEnvelope> =
        serde_json::from_value(fixture("experience-events.json")).unwrap();
    let (dir, path) = new_ledger();
    // A policy that refuses budget events: the whole batch holding one is refused.
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "default = \"keep\"\n[[rule]]\nname = \"no-budget\"\nwhen = { field = \"kind\", equals = \"budget.exceeded\" }\naction = \"reject\"\nreason = \"budget events go elsewhere\"\n",
    )
    .unwrap();
    let chain_toml = format!(
        "[[plugin]]\nname = \"policy\"\ncomponent = \"{}\"\nconfig-file = \"{}\"\n",
        vellum_guest_artifacts::POLICY,
        policy.display()
    );
    let sink = open_sink(&path, &chain_toml);
    let store = ExperienceAppender::new(sink.clone());
    let refused = store.append_events(&envelopes).unwrap_err();
    assert!(
        matches!(&refused, EmitError::Rejected { plugin, .. } if plugin == "policy"),
        "{refused:?}"
    );
    assert_eq!(
        sink.ledger().size().unwrap(),
        0,
        "nothing of the batch was recorded"
    );
    let kept: Vec<_> = envelopes
        .iter()
        .filter(|e| e.event.kind() != ExperienceEventKind::BudgetExceeded)
        .cloned()
        .collect();
    store.append_events(&kept).unwrap();
    sink.close().unwrap();
    drop(sink);

    // Replay 5 at a time, "restart" (a read-only reopen) half way, resume from the position.
    let read = |from| {
        let ledger = Ledger::open_read_only(&path).unwrap();
        ExperienceReplayer::new(&ledger).replay(from, 5).unwrap()
    };
    let first = read(ReplayFrom::Start);
    assert_eq!(first.events.len(), 5);
    assert!(!first.caught_up);
    let mut seen: Vec<String> = first
        .events
        .iter()
        .map(|(_, e)| e.event_id.clone())
        .collect();
    let mut from = ReplayFrom::After(first.resume_after.unwrap());
    loop {
        let page = read(from);
        seen.extend(page.events.iter().map(|(_, e)| e.event_id.clone()));
        if page.caught_up {
            break;
        }
        from = ReplayFrom::After(page.resume_after.unwrap());
    }
    let expected: Vec<_> = kept.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(seen, expected);
    assert_verifies(&path);
}

#[test]
fn oxios_the_audit_mapping_is_the_seeds() {
    let fixture = fixture("kernel-events.json");
    let cases = fixture.as_array().unwrap();
    assert_eq!(cases.len(), 33, "every KernelEvent variant");
    for case in cases {
        let event: KernelEvent = serde_json::from_value(case["event"].clone()).unwrap();
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            case["event"],
            "round trip"
        );
        let action: AuditAction = serde_json::from_value(case["action"].clone()).unwrap();
        assert_eq!(
            kernel_event_to_audit_action(&event),
            action,
            "{}",
            case["event"]
        );
        assert_eq!(
            event.actor(),
            case["actor"].as_str().unwrap(),
            "{}",
            case["event"]
        );
    }
}

fn kernel_entries(path: &Path) -> Vec<vellum::ledger::entry::Entry> {
    let ledger = Ledger::open_read_only(path).unwrap();
    ledger
        .query(&Query {
            limit: 10_000,
            ..Query::default()
        })
        .unwrap()
        .entries
}

#[test]
fn oxios_events_are_recorded_in_order_with_raw_tool_arguments_redacted() {
    let (_dir, path) = new_ledger();
    let chain_toml = format!(
        "[[plugin]]\nname = \"redact\"\ncomponent = \"{}\"\n",
        vellum_guest_artifacts::REDACT
    );
    let sink = open_sink(&path, &chain_toml);
    let bus = AuditedBus::start(KernelAudit::new(sink.clone()).with_tenant("acme"), 4);
    let cases = fixture("kernel-events.json");
    for case in cases.as_array().unwrap() {
        bus.publish(serde_json::from_value(case["event"].clone()).unwrap())
            .unwrap();
    }
    let report = bus.close();
    assert_eq!((report.recorded, report.rejected, report.lost), (33, 0, 0));
    sink.close().unwrap();
    drop(sink);
    let entries = kernel_entries(&path);
    let names: Vec<_> = entries
        .iter()
        .map(|e| e.event.labels["oxios.event"].clone())
        .collect();
    let expected: Vec<_> = cases
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["event"]
                .as_object()
                .unwrap()
                .keys()
                .next()
                .unwrap()
                .clone()
        })
        .collect();
    assert_eq!(names, expected, "recorded in publish order");
    let tool = entries
        .iter()
        .find(|e| e.event.labels["oxios.event"] == "ToolExecutionStarted")
        .unwrap();
    assert_eq!(tool.event.kind, "kernel.other");
    assert_eq!(tool.event.labels["oxios.detail"], "tool_started:read_file");
    assert_eq!(tool.event.correlation_id.as_deref(), Some("s1"));
    let payload = tool.event.payload.as_str();
    assert!(
        !payload.contains("ghp_"),
        "the raw token reached the ledger: {payload}"
    );
    assert!(payload.contains("/src/main.rs"), "{payload}");
    let memory = entries
        .iter()
        .find(|e| e.event.labels["oxios.event"] == "MemoryStored")
        .unwrap();
    assert_eq!(
        (
            memory.event.kind.as_str(),
            memory.event.labels["oxios.entry_id"].as_str()
        ),
        ("memory.write", "m1:episodic")
    );
}

fn tokens(i: u64) -> KernelEvent {
    KernelEvent::TokenUsageUpdate {
        session_id: "burst".into(),
        input_tokens: i,
        output_tokens: 0,
    }
}

#[test]
fn oxios_a_burst_ten_times_the_capacity_loses_nothing_unaccounted() {
    // The audited bus: backpressure, so all 160 are recorded, in order.
    let (_dir, path) = new_ledger();
    let sink = open_sink(&path, "");
    let bus = AuditedBus::start(KernelAudit::new(sink.clone()), 16);
    for i in 0..160 {
        bus.publish(tokens(i)).unwrap();
    }
    assert_eq!(bus.close().recorded, 160);
    sink.close().unwrap();
    drop(sink);
    let recorded: Vec<u64> = kernel_entries(&path)
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(e.event.payload.as_str()).unwrap()["TokenUsageUpdate"]
                    ["input_tokens"]
                    .as_u64()
                    .unwrap()
        })
        .collect();
    assert_eq!(recorded, (0..160).collect::<Vec<_>>());

    // The runtime's own broadcast bus of 16 overflows; the loss is recorded as a gap.
    let (_dir, path) = new_ledger();
    let sink = open_sink(&path, "");
    let (tx, rx) = tokio::sync::broadcast::channel(16);
    for i in 0..160 {
        tx.send(tokens(i)).unwrap();
    }
    let subscriber = attach_to_broadcast(rx, KernelAudit::new(sink.clone())).unwrap();
    drop(tx);
    let report = subscriber.join().unwrap();
    assert_eq!(report.lost, 144);
    sink.close().unwrap();
    drop(sink);
    let entries = kernel_entries(&path);
    let lost: u64 = entries
        .iter()
        .filter(|e| e.event.kind == EVENTS_LOST_KIND)
        .map(|e| {
            serde_json::from_str::<Value>(e.event.payload.as_str()).unwrap()["lost"]
                .as_u64()
                .unwrap()
        })
        .sum();
    let delivered = entries
        .iter()
        .filter(|e| e.event.kind != EVENTS_LOST_KIND)
        .count() as u64;
    assert_eq!(
        lost + delivered,
        160,
        "every event is either recorded or inside a gap marker"
    );
    assert_verifies(&path);
}
