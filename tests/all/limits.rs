//! Each per-plugin limit, tested as a pair: a guest that stays inside it is served, a guest
//! that crosses it fails with the limit's typed failure.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use crate::common;
use common::{engine, event, load, try_load};
use serde_json::json;
use vellum::plugin::{LimitExceeded, Limits, PluginFailure, Verdict};
use vellum_guest_artifacts::HOSTILE;

/// Applies one event of `kind` and returns the plugin's verdict or failure.
fn run(
    limits: Limits,
    fuel_engine: bool,
    kind: &str,
    payload: serde_json::Value,
) -> Result<Verdict, PluginFailure> {
    let engine = engine(fuel_engine);
    let mut plugin = load(&engine, HOSTILE, limits);
    let mut results = plugin.apply(&[event("e", kind, payload)]);
    results.remove(0).map_err(|e| e.failure)
}

fn kept(result: Result<Verdict, PluginFailure>) {
    assert!(
        matches!(result, Ok(Verdict::Keep(_) | Verdict::Pass)),
        "{result:?}"
    );
}

#[test]
fn deadline_obeyed() {
    let limits = Limits {
        deadline_ms: 5_000,
        ..Limits::default()
    };
    kept(run(
        limits,
        false,
        "hostile.burn",
        json!({"iterations": 100_000}),
    ));
}

#[test]
fn deadline_violated() {
    let limits = Limits {
        deadline_ms: 50,
        ..Limits::default()
    };
    let result = run(
        limits,
        false,
        "hostile.burn",
        json!({"iterations": u64::MAX}),
    );
    assert_eq!(
        result.unwrap_err(),
        PluginFailure::Deadline { deadline_ms: 50 }
    );
}

#[test]
fn fuel_obeyed() {
    let limits = Limits {
        fuel: Some(10_000_000),
        ..Limits::default()
    };
    kept(run(
        limits,
        true,
        "hostile.burn",
        json!({"iterations": 1_000}),
    ));
}

#[test]
fn fuel_violated() {
    let limits = Limits {
        fuel: Some(10_000_000),
        deadline_ms: 60_000,
        ..Limits::default()
    };
    let result = run(
        limits,
        true,
        "hostile.burn",
        json!({"iterations": 100_000_000}),
    );
    assert_eq!(
        result.unwrap_err(),
        PluginFailure::FuelExhausted { fuel: 10_000_000 }
    );
}

#[test]
fn fuel_limit_needs_a_fuel_engine() {
    let engine = engine(false);
    let limits = Limits {
        fuel: Some(1_000),
        ..Limits::default()
    };
    let error = try_load(&engine, HOSTILE, "", limits, None)
        .err()
        .expect("refused");
    assert!(matches!(error.failure, PluginFailure::Load(_)), "{error}");
}

#[test]
fn memory_obeyed() {
    let limits = Limits {
        max_memory_bytes: 16 << 20,
        ..Limits::default()
    };
    kept(run(
        limits,
        false,
        "hostile.grow",
        json!({"bytes": 4 << 20}),
    ));
}

#[test]
fn memory_violated() {
    let limits = Limits {
        max_memory_bytes: 16 << 20,
        ..Limits::default()
    };
    let result = run(limits, false, "hostile.grow", json!({"bytes": 32 << 20}));
    assert!(
        matches!(
            result,
            Err(PluginFailure::ResourceLimit(LimitExceeded::Memory { limit, .. })) if limit == 16 << 20
        ),
        "{result:?}"
    );
}

#[test]
fn table_obeyed_at_the_exact_cap() {
    let engine = engine(false);
    let load_capped = |cap| {
        let limits = Limits {
            max_table_elements: cap,
            ..Limits::default()
        };
        try_load(&engine, HOSTILE, "", limits, None)
    };
    // The smallest cap the guest's tables fit in, by bisection between a cap that is refused
    // and the default, which is not.
    let (mut refused, mut fits) = (1usize, Limits::default().max_table_elements);
    assert!(load_capped(refused).is_err() && load_capped(fits).is_ok());
    while fits - refused > 1 {
        let mid = (refused + fits) / 2;
        match load_capped(mid) {
            Ok(_) => fits = mid,
            Err(_) => refused = mid,
        }
    }
    // Capped at exactly what it needs, the guest is served...
    let mut plugin = load_capped(fits).unwrap();
    let result = plugin
        .apply(&[event("e", "tool.call", json!({}))])
        .remove(0);
    kept(result.map_err(|e| e.failure));
    // ...and one element less is refused with the table limit, naming the cap.
    let error = load_capped(fits - 1).err().unwrap();
    assert!(
        matches!(
            error.failure,
            PluginFailure::ResourceLimit(LimitExceeded::Table { limit, .. }) if limit == fits - 1
        ),
        "{error}"
    );
}

#[test]
fn table_violated_at_instantiation() {
    let engine = engine(false);
    let limits = Limits {
        max_table_elements: 1,
        ..Limits::default()
    };
    let error = try_load(&engine, HOSTILE, "", limits, None)
        .err()
        .expect("refused");
    assert!(
        matches!(
            error.failure,
            PluginFailure::ResourceLimit(LimitExceeded::Table { limit: 1, .. })
        ),
        "{error}"
    );
}

#[test]
fn output_obeyed() {
    let limits = Limits {
        max_output_bytes: 1 << 20,
        ..Limits::default()
    };
    kept(run(
        limits,
        false,
        "hostile.huge-output",
        json!({"bytes": 512 << 10}),
    ));
}

#[test]
fn output_violated() {
    let limits = Limits {
        max_output_bytes: 1 << 20,
        ..Limits::default()
    };
    let result = run(
        limits,
        false,
        "hostile.huge-output",
        json!({"bytes": 2 << 20}),
    );
    assert!(
        matches!(result, Err(PluginFailure::OutputTooLarge { limit, .. }) if limit == 1 << 20),
        "{result:?}"
    );
}

#[test]
fn invalid_limits_are_refused_at_load() {
    let engine = engine(false);
    let limits = Limits {
        deadline_ms: 0,
        ..Limits::default()
    };
    let error = try_load(&engine, HOSTILE, "", limits, None)
        .err()
        .expect("refused");
    assert!(error.to_string().contains("deadline-ms"), "{error}");
}
