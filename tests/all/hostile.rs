//! Every hostile behaviour of `guest/hostile` is contained with the right typed failure,
//! names the plugin, its digest and the event, spares the batch's other events, and the same
//! host process then serves the next batch normally.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use crate::common;
use common::{engine, event, load, ordinary, try_load};
use serde_json::json;
use vellum::plugin::{LimitExceeded, Limits, Plugin, PluginFailure, Verdict};
use vellum_guest_artifacts::HOSTILE;

/// Limits small enough to make the tests quick.
fn tight() -> Limits {
    Limits {
        deadline_ms: 200,
        max_memory_bytes: 16 << 20,
        max_output_bytes: 1 << 20,
        ..Limits::default()
    }
}

/// Sends `[ordinary, hostile, ordinary]`, checks the hostile event failed with a failure
/// accepted by `expected`, the others were kept, and the next batch is served normally.
fn contained(plugin: &mut Plugin, hostile_kind: &str, payload: serde_json::Value) -> PluginFailure {
    let mut batch = ordinary(2);
    batch.insert(1, event("bad-1", hostile_kind, payload));
    let results = plugin.apply(&batch);
    assert_eq!(results.len(), 3);
    for i in [0, 2] {
        match &results[i] {
            Ok(Verdict::Keep(e)) => assert_eq!(e.id, batch[i].id),
            other => panic!("innocent event {i} was not kept: {other:?}"),
        }
    }
    let error = results[1].clone().expect_err("hostile event must fail");
    assert_eq!(error.plugin, "under-test");
    assert!(error.digest.starts_with("sha256:") && error.digest.len() == 71);
    assert_eq!(error.event_id.as_deref(), Some("bad-1"));
    let message = error.to_string();
    assert!(
        message.contains("under-test") && message.contains("bad-1"),
        "{message}"
    );

    let next = plugin.apply(&ordinary(5));
    assert!(
        next.iter()
            .all(|r| matches!(r, Ok(Verdict::Keep(_) | Verdict::Pass))),
        "{next:?}"
    );
    error.failure
}

#[test]
fn infinite_loop_hits_the_deadline() {
    let engine = engine(false);
    let mut plugin = load(&engine, HOSTILE, tight());
    let failure = contained(&mut plugin, "hostile.loop", json!({}));
    assert_eq!(failure, PluginFailure::Deadline { deadline_ms: 200 });
}

#[test]
fn infinite_loop_runs_out_of_fuel_when_fuel_is_set() {
    let engine = engine(true);
    let limits = Limits {
        fuel: Some(50_000_000),
        deadline_ms: 30_000,
        ..tight()
    };
    let mut plugin = load(&engine, HOSTILE, limits);
    let failure = contained(&mut plugin, "hostile.loop", json!({}));
    assert_eq!(failure, PluginFailure::FuelExhausted { fuel: 50_000_000 });
}

#[test]
fn memory_bomb_hits_the_memory_cap() {
    let engine = engine(false);
    let mut plugin = load(&engine, HOSTILE, tight());
    let failure = contained(&mut plugin, "hostile.grow", json!({}));
    match failure {
        PluginFailure::ResourceLimit(LimitExceeded::Memory { desired, limit }) => {
            assert_eq!(limit, 16 << 20);
            assert!(desired > limit);
        }
        other => panic!("expected a memory limit failure, got {other:?}"),
    }
}

#[test]
fn panic_is_a_trap() {
    let engine = engine(false);
    let mut plugin = load(&engine, HOSTILE, tight());
    let failure = contained(&mut plugin, "hostile.panic", json!({}));
    assert!(matches!(failure, PluginFailure::Trap(_)), "{failure:?}");
    assert_eq!(failure.class(), "trap");
}

#[test]
fn wrong_number_of_verdicts_is_refused() {
    let engine = engine(false);
    let mut plugin = load(&engine, HOSTILE, tight());
    let failure = contained(&mut plugin, "hostile.wrong-count", json!({}));
    assert_eq!(
        failure,
        PluginFailure::WrongVerdictCount {
            expected: 1,
            got: 2
        }
    );
}

#[test]
fn rewriting_the_event_id_is_refused() {
    let engine = engine(false);
    let mut plugin = load(&engine, HOSTILE, tight());
    let failure = contained(&mut plugin, "hostile.rewrite-id", json!({}));
    assert_eq!(
        failure,
        PluginFailure::ProtectedFieldChanged { field: "id" }
    );
}

#[test]
fn rewriting_the_tenant_is_refused() {
    let engine = engine(false);
    let mut plugin = load(&engine, HOSTILE, tight());
    let failure = contained(&mut plugin, "hostile.rewrite-tenant", json!({}));
    assert_eq!(
        failure,
        PluginFailure::ProtectedFieldChanged { field: "tenant" }
    );
}

#[test]
fn a_nul_in_a_drop_reason_is_malformed_output() {
    // No store keeps U+0000 in text (PostgreSQL refuses it): one plugin's output must not be
    // able to fail the commit of every other event in its group.
    let engine = engine(false);
    let mut plugin = load(&engine, HOSTILE, tight());
    let failure = contained(&mut plugin, "hostile.drop", json!({"reason": "a\u{0}b"}));
    assert!(
        matches!(failure, PluginFailure::MalformedOutput(ref m) if m.contains("NUL")),
        "{failure:?}"
    );
}

#[test]
fn huge_output_is_refused() {
    let engine = engine(false);
    let mut plugin = load(&engine, HOSTILE, tight());
    let failure = contained(
        &mut plugin,
        "hostile.huge-output",
        json!({"bytes": 2 << 20}),
    );
    match failure {
        PluginFailure::OutputTooLarge { bytes, limit } => {
            assert_eq!(limit, 1 << 20);
            assert!(bytes > 2 << 20);
        }
        other => panic!("expected output-too-large, got {other:?}"),
    }
}

#[test]
fn pseudonymize_without_a_key_is_refused_by_the_host() {
    let engine = engine(false);
    let mut plugin = load(&engine, HOSTILE, tight());
    let failure = contained(&mut plugin, "hostile.pseudonymize", json!({}));
    match failure {
        PluginFailure::HostRefusal(message) => assert!(message.contains("pseudonym-key-file")),
        other => panic!("expected a host refusal, got {other:?}"),
    }
}

#[test]
fn rejected_configuration_fails_the_load_with_the_plugins_message() {
    let engine = engine(false);
    let error = try_load(&engine, HOSTILE, r#"{"bogus": 1}"#, tight(), None)
        .err()
        .expect("configure must reject");
    match &error.failure {
        PluginFailure::ConfigRejected(message) => assert!(message.contains("bogus"), "{message}"),
        other => panic!("expected a rejected configuration, got {other:?}"),
    }
    assert!(error.to_string().contains("under-test"));
}

#[test]
fn plain_drop_and_reject_verdicts_pass_through() {
    let engine = engine(false);
    let mut plugin = load(&engine, HOSTILE, tight());
    let batch = vec![
        event("d", "hostile.drop", json!({"reason": "noise"})),
        event("r", "hostile.reject", json!({"reason": "forbidden"})),
    ];
    let results = plugin.apply(&batch);
    assert!(matches!(&results[0], Ok(Verdict::Drop(r)) if r == "noise"));
    assert!(matches!(&results[1], Ok(Verdict::Reject(r)) if r == "forbidden"));
}

#[test]
fn deadlines_hold_even_after_the_engine_handle_is_dropped() {
    let engine = engine(false);
    let mut plugin = load(&engine, HOSTILE, tight());
    drop(engine);
    let failure = contained(&mut plugin, "hostile.loop", json!({}));
    assert_eq!(failure, PluginFailure::Deadline { deadline_ms: 200 });
}
