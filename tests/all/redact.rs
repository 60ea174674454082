//! The `redact` plugin in a chain: a corpus of generated audit events with planted PII and
//! secrets (from a fake-data generator, at known positions) and benign look-alikes, in the
//! shapes agent runtimes emit: LLM calls with usage blocks, tool calls with shell commands
//! and URLs, intent status changes, memory reads. No planted value may survive; no
//! look-alike may be damaged; LLM usage numbers keep their values and types.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use crate::common;
use std::path::Path;

use fake::Fake;
use fake::faker::creditcard::en::CreditCardNumber;
use fake::faker::internet::en::{FreeEmail, IPv4, IPv6, SafeEmail};
use fake::faker::lorem::en::Words;
use fake::faker::name::en::Name;
use fake::rand::rngs::StdRng;
use fake::rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use vellum::AuditEvent;
use vellum::chain::{Chain, ChainConfig, LoadOptions, Outcome};
use vellum_guest_artifacts::REDACT;

const EVENTS: usize = 1_200;

/// A chain with the redactor, emails pseudonymised, envelope fields scanned.
fn chain(dir: &Path) -> Chain {
    let key = dir.join("pseudonym.key");
    std::fs::write(&key, "7f".repeat(32)).unwrap();
    let key_line = format!("pseudonym-key-file = {:?}", key.display().to_string());
    load(&chain_toml(&key_line)).unwrap()
}

/// The chain file of [`chain`], with `key_line` naming its pseudonym key (or not).
fn chain_toml(key_line: &str) -> String {
    format!(
        r#"
{key_line}
[[plugin]]
name = "redact"
component = "{REDACT}"
config = '''
fields = ["actor", "subject", "labels"]
[detectors]
email = {{ operator = "hash" }}
card = {{ operator = "partial" }}
'''
"#
    )
}

fn load(toml: &str) -> Result<Chain, vellum::chain::ChainError> {
    let config = ChainConfig::parse(toml, Path::new(".")).unwrap();
    Chain::load(
        &config,
        &LoadOptions {
            no_cache: true,
            ..Default::default()
        },
    )
}

/// A configuration that hashes needs the chain's pseudonym key; without one the chain is
/// refused when it is loaded, not event by event later.
#[test]
fn hashing_without_a_pseudonym_key_is_refused_at_load() {
    let error = load(&chain_toml("")).err().expect("refused").to_string();
    assert!(error.contains("pseudonym-key-file"), "{error}");
    assert!(error.contains("redact"), "{error}");
}

fn alnum(rng: &mut StdRng, n: usize, alphabet: &[u8]) -> String {
    (0..n)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+";

/// A valid German IBAN for a random account.
fn iban(rng: &mut StdRng) -> String {
    let bban: String = (0..18)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect();
    // Check digits: 98 - (BBAN ‖ "DE00" as digits) mod 97, computed piecewise.
    let numeric = format!("{bban}131400");
    let rem = numeric
        .bytes()
        .fold(0u32, |acc, b| (acc * 10 + u32::from(b - b'0')) % 97);
    let raw = format!("DE{:02}{bban}", 98 - rem);
    raw.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}

fn phone(rng: &mut StdRng) -> String {
    let d = |rng: &mut StdRng, n: usize| alnum(rng, n, b"0123456789");
    let area = format!("{}{}", rng.random_range(2..10), d(rng, 2));
    match rng.random_range(0..4) {
        0 => format!("+1{area}{}", d(rng, 7)),
        1 => format!("({area}) {}-{}", d(rng, 3), d(rng, 4)),
        2 => format!("{area}-{}-{}", d(rng, 3), d(rng, 4)),
        _ => format!("+44 20 {} {}", d(rng, 4), d(rng, 4)),
    }
}

/// The generator's card number with its last digit set to the Luhn check digit, so it is a
/// well-formed card number (the generator does not always produce one).
fn with_luhn_check_digit(number: &str) -> String {
    let digits: Vec<u32> = number.chars().filter_map(|c| c.to_digit(10)).collect();
    let body = &digits[..digits.len() - 1];
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 0 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    let check = (10 - sum % 10) % 10;
    body.iter()
        .map(|d| char::from_digit(*d, 10).unwrap())
        .chain([char::from_digit(check, 10).unwrap()])
        .collect()
}

fn ssn(rng: &mut StdRng) -> String {
    format!(
        "{:03}-{:02}-{:04}",
        rng.random_range(1..666),
        rng.random_range(1..100),
        rng.random_range(1..10_000)
    )
}

/// One planted secret: the value and the kind, for the report.
fn secret(rng: &mut StdRng, kind: usize) -> (String, &'static str) {
    match kind {
        0 => (SafeEmail().fake_with_rng(rng), "email"),
        1 => (FreeEmail().fake_with_rng(rng), "email"),
        2 => (phone(rng), "phone"),
        3 => (
            with_luhn_check_digit(&CreditCardNumber().fake_with_rng::<String, _>(rng)),
            "card",
        ),
        4 => (iban(rng), "iban"),
        5 => (ssn(rng), "ssn"),
        6 => (IPv4().fake_with_rng(rng), "ipv4"),
        7 => (IPv6().fake_with_rng(rng), "ipv6"),
        8 => (
            format!("AKIA{}", alnum(rng, 16, UPPER_DIGITS)),
            "aws-access-key",
        ),
        9 => (format!("ghp_{}", alnum(rng, 36, ALNUM)), "github-token"),
        10 => (
            format!(
                "xoxb-{}-{}",
                alnum(rng, 12, b"0123456789"),
                alnum(rng, 24, ALNUM)
            ),
            "slack-token",
        ),
        11 => (format!("sk_live_{}", alnum(rng, 24, ALNUM)), "stripe-key"),
        12 => (format!("AIza{}", alnum(rng, 35, ALNUM)), "google-api-key"),
        13 => (
            format!(
                "eyJ{}.eyJ{}.{}",
                alnum(rng, 20, ALNUM),
                alnum(rng, 30, ALNUM),
                alnum(rng, 43, ALNUM)
            ),
            "jwt",
        ),
        14 => (format!("Bearer {}", alnum(rng, 32, ALNUM)), "authorization"),
        _ => (alnum(rng, 40, BASE64), "aws-secret-key"),
    }
}

/// The part of a planted value that must disappear (for a bearer header, the credential).
fn secret_part(value: &str) -> &str {
    value.strip_prefix("Bearer ").unwrap_or(value)
}

/// One benign look-alike that must come out unchanged.
fn benign(rng: &mut StdRng, kind: usize) -> String {
    let hex = |rng: &mut StdRng, n| alnum(rng, n, b"0123456789abcdef");
    match kind {
        0 => format!(
            "{}-{}-4{}-a{}-{}",
            hex(rng, 8),
            hex(rng, 4),
            hex(rng, 3),
            hex(rng, 3),
            hex(rng, 12)
        ),
        1 => hex(rng, 40),
        2 => format!("sha256:{}", hex(rng, 64)),
        3 => format!(
            "2026-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            rng.random_range(1..13),
            rng.random_range(1..29),
            rng.random_range(0..24),
            rng.random_range(0..60),
            rng.random_range(0..60),
            rng.random_range(0..1000)
        ),
        4 => format!(
            "v{}.{}.{}",
            rng.random_range(0..20),
            rng.random_range(0..50),
            rng.random_range(0..200)
        ),
        5 => format!("{}m{}s", rng.random_range(1..59), rng.random_range(1..59)),
        6 => format!("ORD-2026-{:06}", rng.random_range(0..1_000_000)),
        7 => format!(
            "/var/lib/agents/{}/run-{}.log",
            Words(1..2).fake_with_rng::<Vec<String>, _>(rng).join("-"),
            rng.random_range(0..1000)
        ),
        _ => Name().fake_with_rng(rng),
    }
}

/// One agent-runtime event carrying two planted values and two look-alikes, by `i % 4`: an
/// LLM call (prompt, usage block, session id), a tool call (shell command, URL, arguments),
/// an intent status change, a memory read.
fn agent_event(
    rng: &mut StdRng,
    i: usize,
    (s1, s2): (&str, &str),
    (b1, b2): (&str, &str),
) -> (&'static str, Value) {
    match i % 4 {
        0 => {
            let prompt: u64 = rng.random_range(10..4000);
            let completion: u64 = rng.random_range(1..1000);
            (
                "llm.call",
                json!({
                    "model": "gpt-x-2026-11",
                    "session_id": format!("sess-{i}"),
                    "messages": [
                        {"role": "system", "content": "You are a support agent."},
                        {"role": "user", "content": format!("agent saw {s1} while handling {b1}")},
                    ],
                    "tool_results": [b2, {"value": s2}],
                    "usage": {
                        "prompt_tokens": prompt,
                        "completion_tokens": completion,
                        "total_tokens": prompt + completion,
                    },
                    "max_tokens": 1024,
                    "tokenizer": "o200k_base",
                }),
            )
        }
        1 => (
            "tool.call",
            json!({
                "tool": "shell",
                "command": format!("grep -rn '{s1}' /srv/app --include=*.log # {b1}"),
                "url": format!("https://api.example.com/v1/search?ref={}&page=2", i),
                "args": [b2, {"value": s2}],
                "exit_code": 0,
            }),
        ),
        2 => (
            "intent.status",
            json!({
                "intent_id": format!("intent-{i}"),
                "from": "running",
                "to": "blocked",
                "reason": format!("agent saw {s1} while handling {b1}"),
                "evidence": {"args": [b2, {"value": s2}], "count": i},
            }),
        ),
        _ => (
            "memory.read",
            json!({
                "store": "long-term",
                "key": format!("user/{i}/profile"),
                "value": {"note": format!("agent saw {s1} while handling {b1}"), "refs": [b2, {"value": s2}]},
                "hits": 2,
            }),
        ),
    }
}

#[test]
fn planted_secrets_never_survive_and_look_alikes_are_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = chain(dir.path());
    let mut rng = StdRng::seed_from_u64(0x5EED_1234);
    let mut planted: Vec<(usize, String, &'static str)> = Vec::new();
    let mut benigns: Vec<(usize, String)> = Vec::new();
    let mut events = Vec::new();
    for i in 0..EVENTS {
        let (s1, k1) = secret(&mut rng, i % 16);
        let (s2, k2) = secret(&mut rng, (i * 7 + 3) % 16);
        let b1 = benign(&mut rng, i % 9);
        let b2 = benign(&mut rng, (i * 5 + 1) % 9);
        let (kind, payload) = agent_event(&mut rng, i, (&s1, &s2), (&b1, &b2));
        let mut event = common::event(&format!("ev-{i}"), kind, payload);
        event.subject = Some(format!("ticket for {b1}"));
        planted.push((i, s1, k1));
        planted.push((i, s2, k2));
        benigns.push((i, b1));
        benigns.push((i, b2));
        events.push(event);
    }
    let outcomes = chain.apply(events);
    let texts: Vec<String> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Keep { event, .. } => format!(
                "{} {}",
                event.payload.as_str(),
                event.subject.clone().unwrap_or_default()
            ),
            other => panic!("event not kept: {other:?}"),
        })
        .collect();
    // LLM usage blocks come out as they went in: numbers stay numbers.
    for (i, outcome) in outcomes.iter().enumerate().filter(|(i, _)| i % 4 == 0) {
        let Outcome::Keep { event, .. } = outcome else {
            unreachable!()
        };
        let payload: Value = serde_json::from_str(event.payload.as_str()).unwrap();
        let usage = &payload["usage"];
        assert_eq!(
            usage["total_tokens"].as_u64(),
            Some(
                usage["prompt_tokens"].as_u64().unwrap()
                    + usage["completion_tokens"].as_u64().unwrap()
            ),
            "event {i}: {usage}"
        );
        assert_eq!(payload["max_tokens"], json!(1024), "event {i}");
        assert_eq!(
            payload["session_id"],
            json!(format!("sess-{i}")),
            "event {i}"
        );
    }
    // JSON escaping would hide some characters; compare against the parsed payload too.
    let survived: Vec<_> = planted
        .iter()
        .filter(|(i, s, _)| {
            texts[*i].contains(secret_part(s)) || unescaped(&texts[*i]).contains(secret_part(s))
        })
        .collect();
    let damaged: Vec<_> = benigns
        .iter()
        .filter(|(i, b)| !unescaped(&texts[*i]).contains(b.as_str()))
        .collect();
    let detection = 1.0 - survived.len() as f64 / planted.len() as f64;
    let damage = damaged.len() as f64 / benigns.len() as f64;
    eprintln!(
        "corpus: {EVENTS} events, {} planted secrets, {} look-alikes; detection rate {:.4}, damage rate {:.4}",
        planted.len(),
        benigns.len(),
        detection,
        damage
    );
    // Every format with a fixed shape or a checksum is found every time. A bare AWS secret
    // key is recognised by how random it looks, which misses about 1 in 400 (see
    // `validate::aws_secret`): it gets a floor instead, as does the whole corpus.
    let heuristic = |kind: &str| kind == "aws-secret-key";
    let exact_survivors: Vec<_> = survived.iter().filter(|(_, _, k)| !heuristic(k)).collect();
    assert!(
        exact_survivors.is_empty(),
        "{} planted values survived, e.g. {:?}",
        exact_survivors.len(),
        &exact_survivors[..exact_survivors.len().min(5)]
    );
    let bare_keys = planted.iter().filter(|(_, _, k)| heuristic(k)).count();
    let bare_recall = 1.0 - (survived.len() as f64 / bare_keys as f64);
    eprintln!("bare AWS secret keys: recall {bare_recall:.4} of {bare_keys}");
    assert!(
        bare_recall >= 0.98,
        "bare AWS keys: recall {bare_recall:.4}"
    );
    assert!(detection >= 0.99 && damage <= 0.01, "below the 0.99 floors");
    assert!(
        damaged.is_empty(),
        "{} look-alikes damaged, e.g. {:?}",
        damaged.len(),
        &damaged[..damaged.len().min(5)]
    );
}

/// The text of every JSON string in `text` (payload then subject), joined.
fn unescaped(text: &str) -> String {
    let (json, rest) = text.split_at(text.find("} ").map_or(text.len(), |i| i + 1));
    let mut out = String::new();
    if let Ok(value) = serde_json::from_str::<Value>(json) {
        collect(&value, &mut out);
    }
    out.push_str(rest);
    out
}

fn collect(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect(v, out)),
        _ => {}
    }
}

/// A secret in a protected field, which no plugin may rewrite, rejects the event, naming
/// the field; the host can pseudonymise that field before the chain instead.
#[test]
fn a_secret_in_a_protected_field_rejects_unless_the_host_pseudonymises_it() {
    let event = |correlation: &str| -> AuditEvent {
        serde_json::from_value(json!({
            "id": "e1", "occurred_at": "2026-12-07T00:00:00Z", "kind": "tool.call",
            "correlation_id": correlation, "payload": {"q": "x"}
        }))
        .unwrap()
    };
    let plain = format!("[[plugin]]\nname = \"redact\"\ncomponent = \"{REDACT}\"\n");
    let mut chain = load(&plain).unwrap();
    match &chain.apply(vec![event("conv-for-alice@example.com")])[..] {
        [Outcome::Reject { reason, plugin, .. }] => {
            assert_eq!(plugin, "redact");
            assert!(
                reason.contains("`correlation_id`") && reason.contains("email"),
                "{reason}"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    // An ordinary correlation id passes.
    assert!(matches!(
        &chain.apply(vec![event("run-42")])[..],
        [Outcome::Keep { .. }]
    ));

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("pseudonym.key");
    std::fs::write(&key, "5a".repeat(32)).unwrap();
    let pseudonymizing = format!(
        "pseudonym-key-file = {:?}\npseudonymize-protected = [\"correlation_id\"]\n{plain}",
        key.display().to_string()
    );
    let mut chain = load(&pseudonymizing).unwrap();
    let outcomes = chain.apply(vec![
        event("conv-for-alice@example.com"),
        event("conv-for-alice@example.com"),
    ]);
    let ids: Vec<String> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Keep { event, .. } => event.correlation_id.clone().unwrap(),
            other => panic!("expected kept, got {other:?}"),
        })
        .collect();
    assert!(
        ids[0].starts_with("pseu:") && !ids[0].contains("alice"),
        "{ids:?}"
    );
    assert_eq!(
        ids[0], ids[1],
        "equal values, equal pseudonyms: a run still joins"
    );
    // Without a key the option is refused, naming what is missing.
    let error = ChainConfig::parse(
        &format!("pseudonymize-protected = [\"chain_id\"]\n{plain}"),
        Path::new("."),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("pseudonym-key-file"), "{error}");
}
