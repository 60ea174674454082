//! A fixed, generated corpus of audit events shaped like the three runtimes' (CCOS intent
//! status changes, Converge experience events, Oxios kernel and tool events), ~450 bytes of
//! JSON each, some carrying e-mails, card numbers, API keys and passwords for the redactor.
//! Deterministic: the same seed gives the same events, byte for byte.

use serde_json::json;
use vellum::AuditEvent;

/// A small deterministic generator (SplitMix64), so the corpus needs no `rand`.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` events spread over `tenants` tenants, and the total size of their JSON lines in
/// bytes.
pub fn corpus(n: usize, tenants: u64) -> (Vec<AuditEvent>, usize) {
    let mut rng = SplitMix(0x5645_4C4C);
    let mut bytes = 0;
    let events = (0..n)
        .map(|i| {
            let value = event(i, tenants.max(1), &mut rng);
            bytes += value.to_string().len() + 1;
            serde_json::from_value(value).expect("the corpus is valid")
        })
        .collect();
    (events, bytes)
}

fn event(i: usize, tenants: u64, rng: &mut SplitMix) -> serde_json::Value {
    let tenant = format!("tenant-{:02}", rng.below(tenants));
    let run = i / 40;
    let second = 1_795_000_000 + (i / 100) as u64;
    let common = json!({
        "id": format!("01JD6Z6Y7A{i:016X}"),
        "occurred_at": jiff::Timestamp::from_second(second as i64).expect("in range").to_string(),
        "tenant": tenant,
        "correlation_id": format!("run-{run:08}"),
        "chain_id": format!("plan-{:06}", run / 4),
    });
    let secret = rng.below(10) == 0;
    let (actor, kind, subject, payload, source) = match rng.below(10) {
        0 | 1 => (
            "agent:planner",
            "intent.status-changed",
            format!("intent-{:06}", i / 3),
            json!({"intent_id": format!("intent-{:06}", i / 3), "plan_id": format!("plan-{:06}", run / 4),
                   "old_status": "active", "new_status": "completed",
                   "reason": "all steps of the plan succeeded within budget",
                   "triggering_action_id": format!("act-{i:08}")}),
            "ccos",
        ),
        2 | 3 => (
            "agent:analyst",
            "fact.promoted",
            format!("fact-{:06}", i / 7),
            json!({"proposal_id": format!("prop-{i:08}"), "confidence": 0.87,
                   "content": "quarterly revenue grew 12% in the EMEA segment",
                   "provenance": {"sources": ["crm", "ledger"], "model": "gpt-x"}}),
            "converge",
        ),
        4 => (
            "agent:ops",
            "budget.exceeded",
            "tokens".to_string(),
            json!({"budget": "tokens", "limit": 100_000, "used": 100_000 + rng.below(5_000),
                   "window": "1h", "action": "throttle"}),
            "oxios",
        ),
        _ => (
            "agent:researcher",
            "tool.call",
            "web.search".to_string(),
            json!({"tool": "web.search", "arguments": {"query": "supplier contracts renewal terms 2027",
                   "max_results": 10}, "duration_ms": rng.below(2_000), "ok": true,
                   "contact": if secret { "ada.lovelace@example.com" } else { "n/a" },
                   "auth": if secret { "Bearer sk_live_4eC39HqLyjWDarjtT1zdp7dc" } else { "none" }}),
            "oxios",
        ),
    };
    let mut value = common;
    value["actor"] = actor.into();
    value["kind"] = kind.into();
    value["subject"] = subject.into();
    value["payload"] = payload;
    value["labels"] = json!({"env": "prod", "source": source});
    value
}
