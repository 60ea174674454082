//! The plugin chain: order, verdicts, attestations, fail-closed handling, batching,
//! pseudonymisation, import checks and the compiled-component cache.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use crate::common;
use std::path::Path;

use common::{event, ordinary};
use serde_json::json;
use vellum::chain::{Chain, ChainConfig, LoadOptions, Outcome};
use vellum::plugin::{PluginFailure, sha256_digest};
use vellum_guest_artifacts::{HOSTILE, NOOP, TEMPLATE};

fn chain(toml: &str) -> anyhow::Result<Chain> {
    let config = ChainConfig::parse(toml, Path::new("."))?;
    Ok(Chain::load(
        &config,
        &LoadOptions {
            no_cache: true,
            ..Default::default()
        },
    )?)
}

fn template_then_hostile(on_error: &str) -> String {
    format!(
        r#"
batch-size = 4
[[plugin]]
name = "upper"
component = "{TEMPLATE}"
config = '{{"label": "env"}}'

[[plugin]]
name = "hostile"
component = "{HOSTILE}"
on-error = "{on_error}"
[plugin.limits]
deadline-ms = 200
"#
    )
}

#[test]
fn template_rewrites_and_every_plugin_attests() {
    let mut chain = chain(&template_then_hostile("reject")).unwrap();
    let outcomes = chain.apply(ordinary(3));
    assert_eq!(outcomes.len(), 3);
    for (i, outcome) in outcomes.iter().enumerate() {
        let Outcome::Keep {
            event,
            attestations,
        } = outcome
        else {
            panic!("expected keep, got {outcome:?}");
        };
        assert_eq!(event.id, format!("ok-{i}"));
        assert_eq!(event.labels["env"], "PROD");
        assert_eq!(event.payload.as_str(), json!({"i": i}).to_string());
        assert_eq!(attestations.len(), 2);
        assert_eq!(&*attestations[0].plugin, "upper");
        assert_eq!(attestations[0].verdict.as_str(), "keep");
        let template = std::fs::read(TEMPLATE).unwrap();
        assert_eq!(*attestations[0].component_digest, sha256_digest(&template));
        assert_eq!(
            *attestations[0].config_digest,
            sha256_digest(br#"{"label": "env"}"#)
        );
    }
}

#[test]
fn drop_leaves_a_marker_without_content() {
    let mut chain = chain(&template_then_hostile("reject")).unwrap();
    let outcomes = chain.apply(vec![event(
        "d",
        "hostile.drop",
        json!({"reason": "noise", "secret": "s3cr3t"}),
    )]);
    match &outcomes[0] {
        Outcome::Drop {
            marker,
            plugin,
            reason,
            attestations,
        } => {
            assert_eq!((plugin.as_str(), reason.as_str()), ("hostile", "noise"));
            assert_eq!(marker.id, "d");
            assert_eq!(marker.tenant.as_deref(), Some("acme"));
            assert_eq!(marker.payload.as_str(), "{}");
            assert!(marker.labels.is_empty() && marker.actor.is_none() && marker.subject.is_none());
            assert_eq!(attestations.len(), 2);
        }
        other => panic!("expected drop, got {other:?}"),
    }
}

#[test]
fn failing_plugin_rejects_by_default_and_later_plugins_never_see_the_event() {
    let toml = format!(
        r#"
[[plugin]]
name = "hostile"
component = "{HOSTILE}"
[[plugin]]
name = "upper"
component = "{TEMPLATE}"
config = '{{"label": "env"}}'
"#
    );
    let mut chain = chain(&toml).unwrap();
    let mut batch = ordinary(2);
    batch.push(event(
        "boom",
        "hostile.panic",
        json!({"card": "4111 1111 1111 1111"}),
    ));
    let outcomes = chain.apply(batch);
    assert!(matches!(outcomes[0], Outcome::Keep { .. }));
    assert!(matches!(outcomes[1], Outcome::Keep { .. }));
    match &outcomes[2] {
        Outcome::Reject {
            event_id,
            plugin,
            error: Some(error),
            attestations,
            ..
        } => {
            assert_eq!((event_id.as_str(), plugin.as_str()), ("boom", "hostile"));
            assert!(matches!(error.failure, PluginFailure::Trap(_)));
            assert_eq!(attestations.len(), 1, "the second plugin must not see it");
            assert_eq!(attestations[0].verdict.as_str(), "error");
        }
        other => panic!("expected a fail-closed reject, got {other:?}"),
    }
    // The rejection carries no content of the event.
    let text = serde_json::to_string(&outcomes[2]).unwrap();
    assert!(!text.contains("4111"), "{text}");
    assert!(text.contains("\"class\":\"trap\""), "{text}");
}

#[test]
fn on_error_drop_keeps_only_a_marker() {
    let mut chain = chain(&template_then_hostile("drop")).unwrap();
    let outcomes = chain.apply(vec![event("slow", "hostile.loop", json!({"token": "abc"}))]);
    match &outcomes[0] {
        Outcome::Drop { marker, reason, .. } => {
            assert_eq!(marker.payload.as_str(), "{}");
            assert!(reason.contains("deadline"), "{reason}");
        }
        other => panic!("expected drop, got {other:?}"),
    }
}

#[test]
fn batch_size_does_not_change_outcomes() {
    let mixed = || {
        let mut events = ordinary(7);
        events.insert(2, event("x1", "hostile.reject", json!({"reason": "no"})));
        events.insert(5, event("x2", "hostile.rewrite-id", json!({})));
        events.insert(8, event("x3", "hostile.drop", json!({"reason": "meh"})));
        events
    };
    let summary = |outcomes: Vec<Outcome>| -> Vec<String> {
        outcomes
            .iter()
            .map(|o| serde_json::to_string(o).unwrap())
            .collect()
    };
    let one = summary(
        chain(&template_then_hostile("reject").replace("batch-size = 4", "batch-size = 1"))
            .unwrap()
            .apply(mixed()),
    );
    let many = summary(
        chain(&template_then_hostile("reject").replace("batch-size = 4", "batch-size = 64"))
            .unwrap()
            .apply(mixed()),
    );
    assert_eq!(one, many);
    assert_eq!(one.len(), 10);
}

#[test]
fn pseudonyms_are_stable_across_chains_with_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("pseudonym.key");
    std::fs::write(&key, format!("{}\n", "5a".repeat(32))).unwrap();
    let toml = format!(
        "pseudonym-key-file = {:?}\n[[plugin]]\nname = \"p\"\ncomponent = \"{HOSTILE}\"\n",
        key.display().to_string()
    );
    let subject =
        |chain: &mut Chain| match &chain.apply(vec![event("p", "hostile.pseudonymize", json!({}))])
            [0]
        {
            Outcome::Keep { event, .. } => event.subject.clone().unwrap(),
            other => panic!("{other:?}"),
        };
    let first = subject(&mut chain(&toml).unwrap());
    let second = subject(&mut chain(&toml).unwrap());
    assert_eq!(first, second);
    assert!(
        first.starts_with("pseu:") && !first.contains("intent-7"),
        "{first}"
    );

    std::fs::write(&key, "abcd").unwrap();
    let error = chain(&toml).err().expect("short key refused");
    assert!(format!("{error:#}").contains("at least 32"), "{error:#}");
}

#[test]
fn components_importing_what_the_host_lacks_are_refused_with_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("needs-more.wasm");
    let bytes = wat::parse_str(
        r#"(component
             (import "wasi:cli/environment@0.2.0" (instance))
             (import "wasi:http/outgoing-handler@0.2.0" (instance))
             (import "acme:secrets/vault@1.0.0" (instance)))"#,
    )
    .unwrap();
    std::fs::write(&path, bytes).unwrap();
    let toml = format!(
        "[[plugin]]\nname = \"w\"\ncomponent = {:?}\n",
        path.display().to_string()
    );
    let error = chain(&toml).err().expect("refused");
    let text = format!("{error:#}");
    let missing = text.split("(the host provides").next().unwrap();
    assert!(
        missing.contains("wasi:http/outgoing-handler@0.2.0"),
        "{text}"
    );
    assert!(missing.contains("acme:secrets/vault@1.0.0"), "{text}");
    assert!(
        !missing.contains("wasi:cli/environment"),
        "WASI 0.2 CLI is provided: {text}"
    );
}

#[test]
fn not_a_component_is_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.wasm");
    std::fs::write(&path, b"definitely not wasm").unwrap();
    let toml = format!(
        "[[plugin]]\nname = \"junk\"\ncomponent = {:?}\n",
        path.display().to_string()
    );
    let text = format!("{:#}", chain(&toml).err().expect("refused"));
    assert!(
        text.contains("junk") && text.contains("cannot load component"),
        "{text}"
    );
}

#[test]
fn missing_component_file_names_the_plugin_and_path() {
    let toml = "[[plugin]]\nname = \"ghost\"\ncomponent = \"/nonexistent/ghost.wasm\"\n";
    let text = format!("{:#}", chain(toml).err().expect("refused"));
    assert!(
        text.contains("ghost") && text.contains("/nonexistent/ghost.wasm"),
        "{text}"
    );
}

#[test]
fn compiled_components_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "cache-dir = {:?}\n[[plugin]]\nname = \"n\"\ncomponent = \"{NOOP}\"\n",
        dir.path().display().to_string()
    );
    let config = ChainConfig::parse(&toml, Path::new(".")).unwrap();
    Chain::load(&config, &LoadOptions::default()).unwrap();
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1);
    let name = entries[0]
        .as_ref()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    let digest = sha256_digest(&std::fs::read(NOOP).unwrap());
    assert!(name.starts_with(digest.trim_start_matches("sha256:")) && name.ends_with(".cwasm"));

    // A corrupted entry is recompiled, not trusted.
    std::fs::write(entries[0].as_ref().unwrap().path(), b"garbage").unwrap();
    let mut chain = Chain::load(&config, &LoadOptions::default()).unwrap();
    assert!(matches!(chain.apply(ordinary(1))[0], Outcome::Keep { .. }));
}

#[test]
fn every_guest_fits_the_plugin_world_and_imports_no_wasi() {
    let engine = common::engine(false);
    macro_rules! check {
        ($guest:ident) => {
            let bytes = std::fs::read(vellum_guest_artifacts::$guest).unwrap();
            let report = vellum::plugin::inspect(&engine, &bytes).unwrap();
            assert_eq!(
                report.world.as_deref(),
                Some("vellum:audit/plugin@0.1.0"),
                "{}: {:?}",
                stringify!($guest),
                report.problems
            );
            for import in &report.imports {
                assert!(
                    import.name.starts_with("vellum:audit/"),
                    "{} imports {}",
                    stringify!($guest),
                    import.name
                );
            }
        };
    }
    vellum_guest_artifacts::foreach_guest!(check);
}

#[test]
fn policy_redact_and_the_python_plugin_run_in_one_chain() {
    let python = vellum_guest_artifacts::PYTHON_TICKET
        .expect("the build could not install componentize-py (see its warnings: it needs python3 with venv and pip, and PyPI), so the Python plugin was not built");
    // The compiled Python component (large) is cached where the CLI tests cache it too.
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache/vellum/components");
    let toml = format!(
        r#"
cache-dir = {cache:?}

[[plugin]]
name = "policy"
component = "{policy}"
config = """
[[rule]]
name = "drop-heartbeats"
when = {{ field = "kind", matches = '^heartbeat' }}
action = "drop"
"""

[[plugin]]
name = "redact"
component = "{redact}"

[[plugin]]
name = "tickets"
component = "{python}"
"#,
        policy = vellum_guest_artifacts::POLICY,
        redact = vellum_guest_artifacts::REDACT,
        cache = cache.display().to_string(),
    );
    let config = ChainConfig::parse(&toml, Path::new(".")).unwrap();
    let mut chain = Chain::load(&config, &LoadOptions::default()).unwrap();
    let outcomes = chain.apply(vec![
        event(
            "a",
            "tool.call",
            json!({"msg": "mail ada@example.com about INC-123456"}),
        ),
        event("b", "heartbeat.agent", json!({})),
    ]);
    match &outcomes[0] {
        Outcome::Keep {
            event,
            attestations,
        } => {
            assert_eq!(
                event.payload.as_str(),
                r#"{"msg":"mail [EMAIL] about [TICKET]"}"#
            );
            let names: Vec<&str> = attestations.iter().map(|a| &*a.plugin).collect();
            assert_eq!(names, ["policy", "redact", "tickets"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(outcomes[1], Outcome::Drop { .. }));
    // The Python component imports WASI, which the host satisfies with a context that grants
    // nothing; `inspect` shows every import.
    let report =
        vellum::plugin::inspect(chain.template().engine(), &std::fs::read(python).unwrap())
            .unwrap();
    assert!(
        report
            .imports
            .iter()
            .any(|i| i.name.starts_with("wasi:filesystem/preopens@0.2"))
    );
    assert_eq!(report.world.as_deref(), Some("vellum:audit/plugin@0.1.0"));
}

#[test]
fn a_passed_event_goes_on_exactly_as_it_was_given() {
    let toml = format!(
        "[[plugin]]\nname = \"noop\"\ncomponent = \"{NOOP}\"\n[[plugin]]\nname = \"upper\"\ncomponent = \"{TEMPLATE}\"\nconfig = '{{\"label\": \"env\"}}'\n"
    );
    let mut chain = chain(&toml).unwrap();
    let mut input = ordinary(2);
    input[1].payload =
        vellum::event::Payload::from_json(r#"{ "spaced" :  [1, 2] }"#.into()).unwrap();
    let outcomes = chain.apply(input.clone());
    for (outcome, given) in outcomes.iter().zip(&input) {
        let Outcome::Keep {
            event,
            attestations,
        } = outcome
        else {
            panic!("{outcome:?}");
        };
        // The noop plugin passed it unchanged (byte for byte), then the template rewrote it.
        assert_eq!(event.payload, given.payload);
        assert_eq!(event.labels["env"], "PROD");
        let verdicts: Vec<&str> = attestations.iter().map(|a| a.verdict.as_str()).collect();
        assert_eq!(verdicts, ["keep", "keep"]);
    }
}
