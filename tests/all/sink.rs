//! The sink: receipts only for durable entries, atomic batches, status changes, invalid
//! events, backpressure without loss under many producers and a slow disk, ledger failures,
//! close, and tenant isolation of plugin state against a plugin that stashes data.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use crate::common;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{
    AppendHook, assert_verifies, chain_template, event, ledger_with_append_hook, new_ledger,
    ordinary,
};
use serde_json::json;
use vellum::chain::{ChainTemplate, LoadOptions};
use vellum::ledger::entry::Entry;
use vellum::ledger::store::StoreError;
use vellum::sink::{Disposition, EmitError, LedgerConfig, SinkOptions};
use vellum::{AuditEvent, Ledger, LedgerOptions, Sink, SinkConfig, StatusChange};
use vellum_guest_artifacts::{HOSTILE, NOOP};

/// A chain of one plugin with an empty configuration.
fn chain_of(component: &str) -> Arc<ChainTemplate> {
    chain_template(&format!(
        "[[plugin]]\nname = \"p\"\ncomponent = \"{component}\"\n"
    ))
}

fn options(workers: usize) -> SinkOptions {
    SinkOptions {
        workers,
        ..SinkOptions::default()
    }
}

/// A sink over the hostile plugin and a fresh ledger.
fn hostile_sink(workers: usize) -> (tempfile::TempDir, std::path::PathBuf, Sink) {
    let (dir, path) = new_ledger();
    let ledger = Ledger::open(&path, LedgerOptions::default()).unwrap();
    let sink = Sink::start(chain_of(HOSTILE), ledger, &options(workers)).unwrap();
    (dir, path, sink)
}

fn entries(path: &Path) -> Vec<Entry> {
    let store = vellum::ledger::store::Location::from(path)
        .open_reader()
        .unwrap();
    let size = store.size().unwrap();
    store
        .entries(0, size)
        .unwrap()
        .into_iter()
        .map(|(e, _)| e)
        .collect()
}

fn tenant_event(id: &str, tenant: &str, kind: &str, payload: serde_json::Value) -> AuditEvent {
    AuditEvent {
        tenant: Some(tenant.to_string()),
        ..event(id, kind, payload)
    }
}

#[test]
fn a_receipt_names_the_durable_entry() {
    let (_dir, path, sink) = hostile_sink(2);
    let receipt = sink
        .emit(event("e1", "tool.call", json!({"q": "x"})))
        .unwrap();
    assert_eq!((receipt.seq, receipt.event_id.as_str()), (0, "e1"));
    assert_eq!(receipt.disposition, Disposition::Recorded);
    let dropped = sink
        .emit(event("e2", "hostile.drop", json!({"reason": "noise"})))
        .unwrap();
    assert_eq!(
        (dropped.seq, dropped.disposition),
        (1, Disposition::Dropped)
    );
    let note = sink.close().unwrap();
    assert!(
        note.contains("\n2\n"),
        "the final checkpoint covers both: {note}"
    );
    drop(sink);
    let stored = entries(&path);
    assert_eq!(stored[0].recorded_at, receipt.recorded_at);
    assert_eq!(stored[0].attestations[0].verdict.as_str(), "keep");
    assert_eq!(stored[1].dropped_by, Some(("p".into(), "noise".into())));
    assert_eq!(stored[1].event.payload.as_str(), "{}");
    assert_verifies(&path);
}

#[test]
fn a_batch_is_recorded_whole_or_not_at_all() {
    let (_dir, path, sink) = hostile_sink(2);
    let mut batch = ordinary(3);
    batch[1] = event("bad", "hostile.reject", json!({"reason": "not allowed"}));
    let error = sink.emit_batch(batch).unwrap_err();
    assert_eq!(
        error,
        EmitError::Rejected {
            plugin: "p".into(),
            reason: "event `bad`: not allowed".into()
        }
    );
    // A plugin failure under the fail-closed default refuses the batch too.
    let mut batch = ordinary(3);
    batch[2] = event("boom", "hostile.panic", json!({}));
    match sink.emit_batch(batch).unwrap_err() {
        EmitError::Rejected { plugin, reason } => {
            assert_eq!(plugin, "p");
            assert!(
                reason.starts_with("event `boom`") && reason.contains("trapped"),
                "{reason}"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(sink.ledger().size().unwrap(), 0, "nothing of either batch");
    let receipts = sink.emit_batch(ordinary(4)).unwrap();
    let seqs: Vec<u64> = receipts.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
    sink.close().unwrap();
    drop(sink);
    assert_verifies(&path);
}

#[test]
fn invalid_events_are_refused_before_anything_is_queued() {
    let (_dir, _path, sink) = hostile_sink(1);
    let mut blank = event("x", "tool.call", json!({}));
    blank.id = " ".into();
    assert!(
        matches!(sink.emit(blank.clone()), Err(EmitError::InvalidEvent(m)) if m.contains("`id`"))
    );
    let batch = vec![event("a", "tool.call", json!({})), blank];
    match sink.emit_batch(batch).unwrap_err() {
        EmitError::InvalidEvent(message) => assert!(message.contains("event #2"), "{message}"),
        other => panic!("{other:?}"),
    }
    let too_many = (0..SinkOptions::default().max_emit_events + 1)
        .map(|i| event(&format!("m{i}"), "k", json!({})))
        .collect();
    assert!(matches!(
        sink.emit_batch(too_many),
        Err(EmitError::InvalidEvent(_))
    ));
    assert_eq!(sink.emit_batch(Vec::new()).unwrap(), Vec::new());
    assert_eq!(sink.ledger().size().unwrap(), 0);
}

#[test]
fn a_status_change_is_an_intent_event_and_needs_a_reason() {
    let (_dir, path, sink) = hostile_sink(1);
    let change = StatusChange {
        intent_id: "intent-7".into(),
        plan_id: Some("plan-7".into()),
        old_status: "active".into(),
        new_status: "completed".into(),
        reason: "all steps succeeded".into(),
        triggering_action_id: None,
    };
    let envelope = event("s1", "whatever", json!({"ignored": true}));
    let receipt = sink
        .emit_status_change(envelope.clone(), change.clone())
        .unwrap();
    let empty = StatusChange {
        reason: "  ".into(),
        ..change
    };
    match sink.emit_status_change(envelope, empty).unwrap_err() {
        EmitError::InvalidEvent(message) => assert!(message.contains("`reason`"), "{message}"),
        other => panic!("{other:?}"),
    }
    sink.close().unwrap();
    drop(sink);
    let stored = entries(&path);
    assert_eq!(stored.len(), 1);
    let entry = &stored[receipt.seq as usize];
    assert_eq!(entry.event.kind, "intent.status-changed");
    assert_eq!(entry.event.subject.as_deref(), Some("intent-7"));
    let payload: serde_json::Value = serde_json::from_str(entry.event.payload.as_str()).unwrap();
    assert_eq!(
        payload,
        json!({"intent_id": "intent-7", "plan_id": "plan-7", "old_status": "active",
               "new_status": "completed", "reason": "all steps succeeded"})
    );
}

#[test]
fn no_instance_carries_one_tenants_data_into_anothers_entry() {
    // One worker, so that a single shared instance would serve both tenants.
    let (_dir, path, sink) = hostile_sink(1);
    let secret = json!({"password": "hunter2"});
    sink.emit(tenant_event("t0-login", "t0", "auth.login", secret.clone()))
        .unwrap();
    sink.emit(tenant_event("t1-probe", "t1", "hostile.stash", json!({})))
        .unwrap();
    // In one atomic batch that mixes tenants, too.
    sink.emit_batch(vec![
        tenant_event("t0-again", "t0", "auth.login", secret.clone()),
        tenant_event("t1-probe-2", "t1", "hostile.stash", json!({})),
        tenant_event("none-probe", "t0", "x", json!({})),
    ])
    .unwrap();
    let mut untenanted = event("anon-probe", "hostile.stash", json!({}));
    untenanted.tenant = None;
    sink.emit(untenanted).unwrap();
    // What a plugin can remember: earlier events of the same tenant, while its instance
    // lives (documented in the README).
    sink.emit(tenant_event("t0-probe", "t0", "hostile.stash", json!({})))
        .unwrap();
    sink.close().unwrap();
    drop(sink);
    let by_id: HashMap<String, Entry> = entries(&path)
        .into_iter()
        .map(|e| (e.event.id.clone(), e))
        .collect();
    for probe in ["t1-probe", "t1-probe-2", "anon-probe"] {
        let stash = &by_id[probe].event.labels["stash"];
        assert!(
            !stash.contains("hunter2"),
            "{probe} got another tenant's data: {stash}"
        );
    }
    assert!(by_id["t0-probe"].event.labels["stash"].contains("hunter2"));
}

/// A ledger whose appends take `delay` (a slow disk) and fail while `failing` is set;
/// `appends` counts them.
struct Slow {
    ledger: Ledger,
    failing: Arc<AtomicBool>,
    appends: Arc<AtomicU64>,
}

fn slow_ledger(path: &Path, delay: Duration) -> Slow {
    let failing = Arc::new(AtomicBool::new(false));
    let appends = Arc::new(AtomicU64::new(0));
    let (fail, count) = (failing.clone(), appends.clone());
    let hook: AppendHook = Box::new(move |store, entries, hashes, keys| {
        std::thread::sleep(delay);
        count.fetch_add(1, Ordering::Relaxed);
        if fail.load(Ordering::Relaxed) {
            return Err(StoreError::Full("injected ENOSPC".into()));
        }
        store.append(entries, hashes, keys)
    });
    Slow {
        ledger: ledger_with_append_hook(path, hook),
        failing,
        appends,
    }
}

#[test]
fn sixteen_producers_against_a_slow_ledger_lose_nothing() {
    const PRODUCERS: usize = 16;
    const EVENTS: usize = 10_000;
    let (_dir, path) = new_ledger();
    let slow = slow_ledger(&path, Duration::from_millis(3));
    let sink = Sink::start(
        chain_of(NOOP),
        slow.ledger,
        &SinkOptions {
            workers: 2,
            batch_events: 128,
            queue_capacity: 64,
            ..SinkOptions::default()
        },
    )
    .unwrap();
    // Each producer keeps up to 32 emits in flight (so the queue of 64 fills up). Half of
    // them wait for room as long as it takes; the others give up after 1 ms of a full
    // queue, so some of their emits come back as errors.
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let timeout = (p % 2 == 1).then(|| Duration::from_millis(1));
            let sink = sink.with_emit_timeout(timeout);
            std::thread::spawn(move || {
                let mut answers = Vec::with_capacity(EVENTS);
                let mut in_flight = std::collections::VecDeque::new();
                for i in 0..EVENTS {
                    let id = format!("p{p}-{i}");
                    let event = event(&id, "tool.call", json!({"p": p, "i": i}));
                    match sink.submit(vec![event]) {
                        Ok(ticket) => in_flight.push_back((id, ticket)),
                        Err(error) => answers.push((id, Err(error))),
                    }
                    if in_flight.len() >= 32 || i + 1 == EVENTS {
                        for (id, ticket) in in_flight.drain(..) {
                            let answer = ticket.wait().map(|mut r| r.remove(0));
                            answers.push((id, answer));
                        }
                    }
                }
                answers
            })
        })
        .collect();
    let answers: Vec<Vec<_>> = producers.into_iter().map(|t| t.join().unwrap()).collect();
    sink.close().unwrap();
    drop(sink);
    let stored = entries(&path);
    let stored_ids: HashMap<&str, u64> = stored
        .iter()
        .map(|e| (e.event.id.as_str(), e.seq))
        .collect();
    let (mut acknowledged, mut refused) = (0, 0);
    for producer in &answers {
        let mut last_seq = None;
        let mut producer = producer.iter().collect::<Vec<_>>();
        // In the order the producer emitted them.
        producer.sort_by_key(|(id, _)| id.rsplit('-').next().unwrap().parse::<usize>().unwrap());
        for (id, answer) in producer {
            match answer {
                Ok(receipt) => {
                    acknowledged += 1;
                    assert_eq!(&receipt.event_id, id);
                    assert_eq!(stored_ids.get(id.as_str()), Some(&receipt.seq), "{id}");
                    assert!(last_seq < Some(receipt.seq), "{id} out of order");
                    last_seq = Some(receipt.seq);
                }
                Err(EmitError::Unavailable(_)) => {
                    refused += 1;
                    assert!(
                        !stored_ids.contains_key(id.as_str()),
                        "{id} refused but stored"
                    );
                }
                Err(other) => panic!("{id}: unexpected {other:?}"),
            }
        }
    }
    assert_eq!(acknowledged + refused, PRODUCERS * EVENTS);
    assert_eq!(stored.len(), acknowledged, "an entry nobody was told about");
    for (i, entry) in stored.iter().enumerate() {
        assert_eq!(entry.seq, i as u64, "gap in the sequence");
    }
    assert!(
        refused > 0,
        "the slow disk never filled the queue; the test proved nothing"
    );
    assert!(
        acknowledged >= PRODUCERS / 2 * EVENTS,
        "the waiting producers all got through"
    );
    eprintln!(
        "{acknowledged} acknowledged, {refused} refused after a timeout, {} commits",
        slow.appends.load(Ordering::Relaxed)
    );
    assert_verifies(&path);
}

#[test]
fn a_failing_ledger_makes_emits_unavailable_and_records_nothing() {
    let (_dir, path) = new_ledger();
    let slow = slow_ledger(&path, Duration::ZERO);
    let failing = slow.failing.clone();
    let sink = Sink::start(chain_of(NOOP), slow.ledger, &options(2)).unwrap();
    sink.emit_batch(ordinary(2)).unwrap();
    failing.store(true, Ordering::Relaxed);
    match sink
        .emit(event("lost?", "tool.call", json!({})))
        .unwrap_err()
    {
        EmitError::Unavailable(message) => assert!(message.contains("ENOSPC"), "{message}"),
        other => panic!("{other:?}"),
    }
    failing.store(false, Ordering::Relaxed);
    let receipt = sink.emit(event("after", "tool.call", json!({}))).unwrap();
    assert_eq!(
        receipt.seq, 2,
        "a full disk fails the append cleanly; the next one goes on"
    );
    sink.close().unwrap();
    drop(sink);
    let ids: Vec<String> = entries(&path).into_iter().map(|e| e.event.id).collect();
    assert_eq!(ids, ["ok-0", "ok-1", "after"]);
}

#[test]
fn close_finishes_queued_emits_then_refuses_new_ones() {
    let (_dir, path) = new_ledger();
    let slow = slow_ledger(&path, Duration::from_millis(2));
    let sink = Sink::start(chain_of(NOOP), slow.ledger, &options(2)).unwrap();
    let tickets: Vec<_> = (0..200)
        .map(|i| {
            sink.submit(vec![event(&format!("q{i}"), "tool.call", json!({}))])
                .unwrap()
        })
        .collect();
    let other = sink.clone();
    let note = sink.close().unwrap();
    let seqs: Vec<u64> = tickets
        .into_iter()
        .map(|t| t.wait().unwrap()[0].seq)
        .collect();
    assert_eq!(seqs, (0..200).collect::<Vec<_>>());
    assert!(note.contains("\n200\n"), "{note}");
    assert!(matches!(
        other.emit(event("late", "tool.call", json!({}))),
        Err(EmitError::Unavailable(m)) if m.contains("closed")
    ));
}

#[test]
fn open_from_a_sink_file_and_report_a_missing_ledger() {
    let (dir, path) = new_ledger();
    let text = format!(
        "[sink]\nworkers = 1\n[ledger]\npath = \"{}\"\n[chain]\n[[chain.plugin]]\nname = \"noop\"\ncomponent = \"{NOOP}\"\n",
        path.display()
    );
    let config = SinkConfig::parse(&text, dir.path()).unwrap();
    let sink = Sink::open(
        &config,
        &LoadOptions {
            no_cache: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        sink.emit(event("f1", "tool.call", json!({}))).unwrap().seq,
        0
    );
    sink.close().unwrap();
    let missing = SinkConfig {
        server: None,
        retention: Default::default(),
        ledger: LedgerConfig::at(dir.path().join("nope.db")),
        ..config
    };
    let error = Sink::open(
        &missing,
        &LoadOptions {
            no_cache: true,
            ..Default::default()
        },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        error.contains("nope.db") && error.contains("vellum init"),
        "{error}"
    );
}
