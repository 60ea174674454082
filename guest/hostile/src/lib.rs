//! A deliberately misbehaving Vellum plugin, used by the host's tests to prove that hostile
//! or broken guests are contained.
//!
//! Behaviour is chosen per event by its `kind`, so one instance can misbehave on one batch
//! and the same host can then serve the next batch normally:
//!
//! | kind                    | behaviour                                                     |
//! |-------------------------|---------------------------------------------------------------|
//! | `hostile.loop`          | spins forever                                                 |
//! | `hostile.burn`          | spins `payload.iterations` times, then keeps the event        |
//! | `hostile.grow`          | allocates `payload.bytes` bytes (forever if absent), keeps it |
//! | `hostile.panic`         | panics (a trap, since guests abort on panic)                  |
//! | `hostile.wrong-count`   | returns one verdict more than it was given events             |
//! | `hostile.rewrite-id`    | changes the event id                                          |
//! | `hostile.rewrite-tenant`| changes the tenant                                            |
//! | `hostile.huge-output`   | replaces the payload by a JSON string of `payload.bytes` bytes |
//! | `hostile.drop`          | drops the event with reason `payload.reason`                  |
//! | `hostile.reject`        | rejects the event with reason `payload.reason`                |
//! | `hostile.pseudonymize`  | replaces the subject by the host's pseudonym for it           |
//! | `hostile.stash`         | adds label `stash`: the payloads of the last 16 events this   |
//! |                         | instance saw, kept in a static across calls (to leak them)    |
//! | anything else           | keeps the event unchanged                                     |
//!
//! Every event's payload is remembered in the stash, whatever its kind: the plugin models
//! one that keeps data between calls to smuggle it into a later event.
//!
//! Configuration: empty, or a JSON object with no fields. Anything else is rejected by
//! `configure`, which is how the tests exercise a refused configuration.

use std::cell::RefCell;

use serde::Deserialize;

/// How many payloads the stash keeps (the latest ones).
const STASH_DEPTH: usize = 16;

thread_local! {
    /// Payloads of every event this instance has seen, across calls.
    static STASH: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

use vellum_plugin::{AuditEvent, Label, Plugin, Verdict, pseudonymize};

/// The (empty) configuration this plugin accepts.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {}

/// Parameters read from a hostile event's payload.
#[derive(Deserialize, Default)]
struct Params {
    bytes: Option<u64>,
    iterations: Option<u64>,
    reason: Option<String>,
}

/// The plugin: no state of its own besides the stash.
struct Hostile;

impl Plugin for Hostile {
    fn configure(config: &str) -> Result<Self, String> {
        if config.trim().is_empty() {
            return Ok(Hostile);
        }
        serde_json::from_str::<Config>(config)
            .map(|_| Hostile)
            .map_err(|e| format!("invalid configuration: {e}"))
    }

    fn apply(&self, event: AuditEvent) -> Verdict {
        misbehave(event)
    }

    fn apply_batch(&self, events: Vec<AuditEvent>) -> Vec<Verdict> {
        let wrong_count = events.iter().any(|e| e.kind == "hostile.wrong-count");
        let mut verdicts: Vec<Verdict> = events.into_iter().map(misbehave).collect();
        if wrong_count {
            verdicts.push(Verdict::Drop("an extra verdict".to_string()));
        }
        verdicts
    }
}

vellum_plugin::export_plugin!(Hostile);

/// Applies the behaviour the event's kind asks for.
fn misbehave(mut event: AuditEvent) -> Verdict {
    let params: Params = serde_json::from_str(&event.payload).unwrap_or_default();
    let stashed = STASH.with(|stash| {
        let mut stash = stash.borrow_mut();
        let before = stash.join(" | ");
        if stash.len() == STASH_DEPTH {
            stash.remove(0);
        }
        stash.push(event.payload.clone());
        before
    });
    match event.kind.as_str() {
        "hostile.loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "hostile.burn" => {
            let mut n: u64 = 0;
            for i in 0..params.iterations.unwrap_or(0) {
                n = std::hint::black_box(n.wrapping_add(i));
            }
        }
        "hostile.grow" => match params.bytes {
            Some(bytes) => {
                let block = vec![1u8; bytes as usize];
                std::hint::black_box(&block);
            }
            None => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
        },
        "hostile.panic" => panic!("hostile plugin panicked on purpose"),
        "hostile.rewrite-id" => event.id.push_str("-forged"),
        "hostile.rewrite-tenant" => event.tenant = Some("someone-else".to_string()),
        "hostile.huge-output" => {
            let bytes = params.bytes.unwrap_or(16 << 20) as usize;
            event.payload = format!("\"{}\"", "x".repeat(bytes.saturating_sub(2)));
        }
        "hostile.drop" => return Verdict::Drop(params.reason.unwrap_or_default()),
        "hostile.reject" => return Verdict::Reject(params.reason.unwrap_or_default()),
        "hostile.stash" => event.labels.push(Label {
            key: "stash".to_string(),
            value: stashed,
        }),
        "hostile.pseudonymize" => {
            event.subject = event.subject.map(|s| pseudonymize("subject", &s));
        }
        _ => {}
    }
    Verdict::Keep(event)
}
