//! True and false positives of every detector, the operators, the configuration errors,
//! and the look-alikes that must survive.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use serde_json::json;
use vellum_redact_core::{Change, Config, Outcome, Redactor};

fn redactor(config: &str) -> Redactor {
    Redactor::new(&Config::parse(config).unwrap()).unwrap()
}

fn detectors_in(r: &Redactor, text: &str) -> Vec<String> {
    r.find(text).into_iter().map(|f| f.detector).collect()
}

/// (detector, text that must be detected, the secret part).
const POSITIVES: &[(&str, &str, &str)] = &[
    (
        "email",
        "contact ada.lovelace+audit@example.co.uk today",
        "ada.lovelace+audit@example.co.uk",
    ),
    ("phone", "call +1 415 555 2671 now", "+1 415 555 2671"),
    // Formats the first corpus missed: extensions, dots.
    ("phone", "call (892)740-9313x448 today", "(892)740-9313x448"),
    ("phone", "cell 329-923-8428x4809.", "329-923-8428x4809"),
    ("phone", "desk 808.630.6228x888", "808.630.6228x888"),
    ("phone", "or 920.889.9913 after five", "920.889.9913"),
    ("phone", "ext 415-555-2671 ext. 12", "415-555-2671 ext. 12"),
    // A 12-digit Maestro number (Luhn-valid).
    ("card", "maestro 501800000009 on file", "501800000009"),
    // A full 8-group IPv6 address inside prose.
    (
        "ipv6",
        "peer 873d:32d9:afe3:1df1:9b46:7d52:f69e:cd11 connected",
        "873d:32d9:afe3:1df1:9b46:7d52:f69e:cd11",
    ),
    ("phone", "call +14155552671", "+14155552671"),
    ("phone", "office (415) 555-2671", "(415) 555-2671"),
    ("phone", "mobile 415-555-2671", "415-555-2671"),
    ("phone", "ring 030 1234 5678", "030 1234 5678"),
    ("phone", "uk +44 20 7946 0958", "+44 20 7946 0958"),
    (
        "card",
        "card 4111 1111 1111 1111 on file",
        "4111 1111 1111 1111",
    ),
    ("card", "card 4111-1111-1111-1111", "4111-1111-1111-1111"),
    ("card", "amex 378282246310005", "378282246310005"),
    (
        "iban",
        "pay DE89 3704 0044 0532 0130 00 please",
        "DE89 3704 0044 0532 0130 00",
    ),
    ("iban", "GB82WEST12345698765432", "GB82WEST12345698765432"),
    ("ssn", "ssn 123-45-6789", "123-45-6789"),
    ("ipv4", "from 192.168.10.20 port", "192.168.10.20"),
    (
        "ipv6",
        "from 2001:db8::8a2e:370:7334 port",
        "2001:db8::8a2e:370:7334",
    ),
    (
        "jwt",
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    (
        "authorization",
        "Authorization: Bearer abcDEF123456ghiJKL",
        "abcDEF123456ghiJKL",
    ),
    (
        "authorization",
        "authorization: basic dXNlcjpwYXNzd29yZA==",
        "dXNlcjpwYXNzd29yZA==",
    ),
    (
        "aws-access-key",
        "key AKIAIOSFODNN7EXAMPLE used",
        "AKIAIOSFODNN7EXAMPLE",
    ),
    (
        "aws-secret-key",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    // With nothing saying "aws" or "secret" next to it (the first corpus leaked these).
    (
        "aws-secret-key",
        "exported Xk3m9Qz+Lr7Tb2Wn5Yc8Vd1Hf4Jg6Ks0Pa/Ue3Io to the runner",
        "Xk3m9Qz+Lr7Tb2Wn5Yc8Vd1Hf4Jg6Ks0Pa/Ue3Io",
    ),
    (
        "aws-secret-key",
        "\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    ("passport", "passport no. X12345678 attached", "X12345678"),
    ("passport", "My passport number is 533380006.", "533380006"),
    (
        "github-token",
        "ghp_1234567890abcdefghijklmnopqrstuvwxyz",
        "ghp_1234567890abcdefghijklmnopqrstuvwxyz",
    ),
    (
        "slack-token",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    ),
    (
        "stripe-key",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    ),
    (
        "google-api-key",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
    ),
    (
        "pem-private-key",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    ),
    (
        "url-password",
        "postgres://app:hunter2@db.internal:5432/x",
        "hunter2",
    ),
];

/// Look-alikes audit logs are full of: none may be touched by the default redactor.
const BENIGN: &[&str] = &[
    "request 123e4567-e89b-12d3-a456-426614174000 done",
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "digest sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "at 2026-11-22T09:00:01.250Z",
    "at 2026-11-22 09:00:01+02:00",
    "version 1.42.0",
    "upgrade to v2.3.4-beta.1",
    "took 1h30m5s (250ms p99)",
    "order ORD-2026-000123",
    "order number 4111111111111112",
    "invoice INV-88812345",
    "/var/log/vellum/2026/11/22/audit-0001.log",
    "C:\\Users\\ops\\reports\\q3.xlsx",
    "build 20261122.4",
    "sku 0123456789",
    "ratio 3.14159",
    "port 8080 and 443",
    "mac aa:bb:cc:dd:ee:ff",
    "time 10:30:00",
    // Look-alikes the first corpus damaged.
    "at 1999-02-25T14:58:42.019734",
    "order ORD-028605",
    "version 6.3.36",
    "object 4f2a9c0b7d1e",
    "twelve digits 123456789012",
    // 40 characters that are not a bare AWS secret key: an identifier, a path, a longer
    // base64 digest, a 40-character run inside a longer token.
    "class AbstractSingletonProxyFactoryBean2Helper",
    "method getUserAccountBalanceForCustomer2024Q3v1",
    "/usr/lib/python3/site-packages/vellum/redaction/x.py",
    "integrity sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC",
    "token_Xk3m9Qz+Lr7Tb2Wn5Yc8Vd1Hf4Jg6Ks0Pa/Ue3Io_suffix",
];

#[test]
fn every_detector_finds_its_true_positives() {
    let r = redactor("");
    for (detector, text, secret) in POSITIVES {
        let found = r.find(text);
        let hit = found.iter().find(|f| f.detector == *detector);
        let Some(hit) = hit else {
            panic!("{detector} missed in {text:?}; found {found:?}")
        };
        assert_eq!(&text[hit.start..hit.end], *secret, "{detector} in {text:?}");
    }
}

#[test]
fn names_and_addresses_in_a_prompt_are_found_when_enabled() {
    let text = "My name is John Smith, I live at 42 Baker Street, London NW1 6XE. \
                Please ask Maria Garcia; ship to CA 94103.";
    assert!(
        redactor("")
            .find(text)
            .iter()
            .all(|f| f.detector != "person-name" && f.detector != "postal-address"),
        "off by default"
    );
    let r = redactor(
        "[detectors]\nperson-name = { enabled = true }\npostal-address = { enabled = true }",
    );
    let found: Vec<(String, &str)> = r
        .find(text)
        .into_iter()
        .map(|f| (f.detector.clone(), &text[f.start..f.end]))
        .collect();
    for expected in [
        ("person-name", "John Smith"),
        ("postal-address", "42 Baker Street"),
        ("postal-address", "NW1 6XE"),
        ("person-name", "Maria Garcia"),
        ("postal-address", "CA 94103"),
    ] {
        assert!(
            found
                .iter()
                .any(|(d, t)| d == expected.0 && *t == expected.1),
            "{expected:?} not in {found:?}"
        );
    }
    for benign in [
        "Deploy to the Rose Garden cluster before the Spring Sale.",
        "Call Center hours: Monday to Friday. Contact Sales for pricing.",
        "I am Happy with the New York results.",
    ] {
        assert!(
            r.find(benign).is_empty(),
            "{benign:?}: {:?}",
            r.find(benign)
        );
    }
}

#[test]
fn look_alikes_are_not_redacted() {
    let r = redactor("");
    for text in BENIGN {
        assert!(
            r.find(text).is_empty(),
            "{text:?} wrongly detected as {:?}",
            detectors_in(&r, text)
        );
    }
}

#[test]
fn detector_specific_false_positives() {
    let r = redactor("");
    for (text, why) in [
        ("4111 1111 1111 1112", "card with a bad Luhn digit"),
        ("DE89 3704 0044 0532 0130 01", "IBAN with a bad checksum"),
        ("000-12-3456", "never-issued SSN area"),
        ("999.10.10.10", "not an IPv4 address"),
        ("not-an-email@", "no domain"),
        ("Bearer", "scheme without a credential"),
        ("AKIA123", "too short for an AWS key id"),
        ("sk_live_short", "too short for a Stripe key"),
        (
            "header eyJhbGciOiJIUzI1NiJ9 only",
            "a JWT header without payload and signature",
        ),
        ("ghp_short123", "too short for a GitHub token"),
        ("xoxb-12", "too short for a Slack token"),
        ("AIzaShortKey", "too short for a Google API key"),
        (
            "-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----",
            "a public key",
        ),
        ("call 12345", "too few digits for a phone number"),
        ("fe80", "a lone hex group"),
        (
            "aws region us-east-1 and 40 chars of nothing",
            "no AWS secret next to the word",
        ),
    ] {
        assert!(
            r.find(text).is_empty(),
            "{why}: {text:?} detected as {:?}",
            detectors_in(&r, text)
        );
    }
}

#[test]
fn a_url_without_a_password_has_no_password_finding() {
    let r = redactor("");
    let found = detectors_in(&r, "https://deploy@example.com/path");
    assert!(!found.contains(&"url-password".to_string()), "{found:?}");
}

#[test]
fn operators_mask_partial_hash_and_remove() {
    let mut hash = |domain: &str, value: &str| format!("pseu:{domain}:{}", value.len());
    let r = redactor(
        r#"
[detectors]
card = { operator = "partial" }
email = { operator = "hash" }
ssn = { operator = "remove" }
"#,
    );
    assert_eq!(
        r.redact_str("card 4111 1111 1111 1111, ip 10.0.0.1", &mut hash),
        Outcome::Keep("card [CARD …1111], ip [IPV4]".into())
    );
    assert_eq!(
        r.redact_str("mail ada@example.com", &mut hash),
        Outcome::Keep("mail [EMAIL:pseu:email:15]".into())
    );
    assert_eq!(r.redact_str("ssn 123-45-6789", &mut hash), Outcome::Remove);

    let mut payload = json!({
        "user": {"email": "ada@example.com", "ssn": "123-45-6789", "name": "Ada"},
        "items": ["ok", "ssn 123-45-6789", 3],
        "password": "hunter2",
        "api-key": {"nested": true},
        "pin_secret": 1234,
        "usage": {"prompt_tokens": 812, "token_count": 3},
    });
    assert_eq!(r.redact_json(&mut payload, &mut hash), Change::Changed);
    assert_eq!(
        payload,
        json!({
            "user": {"email": "[EMAIL:pseu:email:15]", "name": "Ada"},
            "items": ["ok", 3],
            "password": "[SECRET]",
            "api-key": "[SECRET]",
            // A secret number keeps its field but not its value or a new type.
            "pin_secret": null,
            // Counters named after tokens are not tokens: numbers stay numbers.
            "usage": {"prompt_tokens": 812, "token_count": 3},
        })
    );
}

#[test]
fn hashing_is_deterministic_through_the_callback() {
    let r = redactor(r#"{"detectors": {"email": {"operator": "hash"}}}"#);
    let mut hash = |_: &str, value: &str| format!("pseu:{}", value.to_uppercase());
    let a = r.redact_str("ada@example.com", &mut hash);
    let b = r.redact_str("ada@example.com", &mut hash);
    assert_eq!(a, b);
}

#[test]
fn custom_rules_allow_lists_and_disabling() {
    let r = redactor(
        r#"
allow = ["ops@example.com"]
allow-patterns = ['10\.0\.0\.\d+']
[[rules]]
name = "ticket"
pattern = 'TICKET-\d{4,}'
[detectors]
phone = { enabled = false }
"#,
    );
    let mut hash = |_: &str, v: &str| v.to_string();
    assert_eq!(
        r.redact_str("TICKET-12345 from ops@example.com and ada@example.com via 10.0.0.7 / 10.1.0.7, tel +14155552671", &mut hash),
        Outcome::Keep("[TICKET] from ops@example.com and [EMAIL] via 10.0.0.7 / [IPV4], tel +14155552671".into())
    );
}

#[test]
fn entropy_detector_is_opt_in() {
    let token = "token Zx8kQ2mP9vL4nR7tW1yB6cD3fG5hJ0s";
    assert!(redactor("").find(token).is_empty());
    let r = redactor("[detectors]\nentropy = { enabled = true }\n");
    assert_eq!(detectors_in(&r, token), vec!["entropy"]);
    assert!(
        r.find("digest e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
            .is_empty()
    );
}

#[test]
fn bad_configuration_names_the_rule() {
    let err = |text: &str| match Config::parse(text).and_then(|c| Redactor::new(&c)) {
        Ok(_) => panic!("{text:?} accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err("[detectors]\nemial = {}\n").contains("unknown detector `emial`"));
    assert!(err("[[rules]]\nname = \"broken\"\npattern = \"(unclosed\"\n").contains("`broken`"));
    assert!(err("allow-patterns = ['[']").contains("allow-patterns[0]"));
    assert!(err("fields = [\"payload\"]").contains("unknown envelope field `payload`"));
    assert!(err("{\"detectors\": 3}").contains("JSON"));
    assert!(err("[detectors]\ncard = { operator = \"shred\" }").contains("shred"));
}

#[test]
fn a_clean_value_is_reported_unchanged_and_left_as_it_was() {
    let r = Redactor::new(&Config::default()).unwrap();
    let mut hash = |_: &str, _: &str| unreachable!("nothing to pseudonymise");
    let clean = json!({
        "messages": [{"role": "user", "content": "summarise the quarterly report"}],
        "usage": {"prompt_tokens": 812, "total_tokens": 900},
        "session_id": "s-42",
        "password": null,
        "api_key": "[SECRET]",
    });
    let mut payload = clean.clone();
    assert_eq!(r.redact_json(&mut payload, &mut hash), Change::Unchanged);
    assert_eq!(payload, clean);
    let mut text = "nothing here".to_string();
    assert_eq!(r.redact_string(&mut text, &mut hash), Change::Unchanged);
    let mut text = "mail ada@example.com".to_string();
    let mut hash = |_: &str, _: &str| String::new();
    assert_eq!(r.redact_string(&mut text, &mut hash), Change::Changed);
    assert_eq!(text, "mail [EMAIL]");
}

#[test]
fn the_read_only_scan_never_misses_what_redaction_would_change() {
    let r = Redactor::new(&Config::default()).unwrap();
    let mut hash = |_: &str, _: &str| String::new();
    let cases: &[(&str, bool)] = &[
        (
            r#"{"msg": "summarise the report", "n": 3, "ok": true, "x": null}"#,
            false,
        ),
        (
            r#"{"usage": {"prompt_tokens": 812, "max_tokens": 1024}, "session_id": "s-42"}"#,
            false,
        ),
        (r#"{"password": null, "items": [1, 2.5, [], {}]}"#, false),
        (r#"{"msg": "mail ada@example.com"}"#, true),
        // Escapes are decoded before detection: the raw text has no `@`.
        (r#"{"msg": "mail ada\u0040example.com"}"#, true),
        (r#"{"a": [{"b": ["x", "card 4111 1111 1111 1111"]}]}"#, true),
        (r#"{"password": "hunter2"}"#, true),
        (r#"{"nested": {"api_key": {"v": 1}}}"#, true),
        (r#"{"pin_secret": 1234}"#, true),
        // Keys are scanned too, and integers long enough to be cards.
        (r#"{"ada@example.com": 1}"#, true),
        (r#"{"n": 4111111111111111}"#, true),
        // Epoch nanoseconds pass Luhn now and then; they are never cards.
        (
            // Both pass Luhn: only the length rule of their first digit keeps them.
            r#"{"t": 1700000000000000004, "u": 1712345678901238, "s": "1700000000000000004"}"#,
            false,
        ),
        (r#""ssn 123-45-6789""#, true),
        ("42", false),
    ];
    for (json, expected) in cases {
        assert_eq!(r.needs_redaction(json).unwrap(), *expected, "{json}");
        let mut value: serde_json::Value = serde_json::from_str(json).unwrap();
        let change = r.redact_json(&mut value, &mut hash);
        if !expected {
            assert_eq!(change, Change::Unchanged, "the scan said unchanged: {json}");
        }
    }
    // A trace or span id under its name is never a card, whatever its digits.
    let mut span =
        serde_json::json!({"span_id": "4111111111111111", "traceId": "4111111111111111"});
    assert_eq!(r.redact_json(&mut span, &mut hash), Change::Unchanged);
    let mut keyed =
        serde_json::json!({"ada@example.com": 1, "bob@example.com": 2, "n": 4111111111111111u64});
    assert_eq!(r.redact_json(&mut keyed, &mut hash), Change::Changed);
    assert_eq!(
        keyed,
        serde_json::json!({"[EMAIL]": 1, "[EMAIL]#2": 2, "n": "[CARD]"})
    );
    for bad in [
        "",
        "{",
        r#"{"a": 1} trailing"#,
        "{'a': 1}",
        r#"{"a": "\x"}"#,
    ] {
        assert!(r.needs_redaction(bad).is_err(), "{bad:?} is not JSON");
    }
}

#[test]
fn protected_fields_refuse_only_precise_findings() {
    let r = redactor("");
    let refusal = r
        .protected_refusal(&[
            ("id", Some("otlp-span:0102:4111111111111111")),
            ("correlation_id", Some("chat-with-ada@example.com")),
        ])
        .expect("an e-mail in a protected field is refused");
    assert!(
        refusal.contains("`correlation_id`") && refusal.contains("email"),
        "{refusal}"
    );
    // Digits that pass a card's checks are not precise enough to refuse an event over.
    assert_eq!(
        r.protected_refusal(&[("id", Some("4111 1111 1111 1111")), ("chain_id", None)]),
        None
    );
    let key = format!("run-ghp_{}", "aB3".repeat(12));
    assert!(r.protected_refusal(&[("chain_id", Some(&key))]).is_some());
    let ignoring = redactor("protected-fields = \"ignore\"");
    assert_eq!(
        ignoring.protected_refusal(&[("correlation_id", Some("ada@example.com"))]),
        None
    );
}
