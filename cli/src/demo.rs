//! `vellum demo`: the main job in one command. It creates a ledger, loads the shipped
//! redact + policy chain (built into the binary), emits sample events of the three agent
//! runtimes' vocabularies (intent status changes, experience events, kernel tool events)
//! carrying e-mails, cards, keys, passwords and tokens, and shows per event what was
//! redacted, dropped or rejected; then the receipts, a query, a verification and an
//! inclusion proof. Colour on a terminal, plain when piped, JSON with `--json`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anstyle::{AnsiColor, Style};
use anyhow::{Context, Result};
use clap::Args;
use serde_json::{Value, json};
use vellum::chain::ChainConfig;
use vellum::ledger::entry::Entry;
use vellum::ledger::query::Query;
use vellum::sink::{LedgerConfig, SinkOptions};
use vellum::{AuditEvent, EmitError, Ledger, Sink, SinkConfig, StatusChange};
use vellum_runtimes::experience::{ExperienceEvent, ExperienceEventEnvelope};
use vellum_runtimes::kernel::{KernelAudit, KernelEvent};

use super::exit;

/// The redactor's configuration: the shipped example.
const REDACT_CONFIG: &str = include_str!("../../guest/redact/cases/config.toml");

/// The demo's policy, over the runtimes' vocabularies.
const POLICY_CONFIG: &str = r#"default = "keep"

[[rule]]
name = "no-file-deletion"
when = { field = "payload.ToolExecutionStarted.tool_name", equals = "fs.delete" }
action = "reject"
reason = "deleting files needs a human approval"

[[rule]]
name = "drop-token-telemetry"
when = { field = "payload.TokenUsageUpdate", exists = true }
action = "drop"
reason = "token counters are metrics, not audit"
"#;

/// Arguments of `vellum demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Keep the ledger and its keys in this directory (default: a temporary one, removed
    /// afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// One sample: which runtime it comes from, what it is, and the event.
struct Sample {
    runtime: &'static str,
    what: &'static str,
    event: AuditEvent,
}

/// The sample events, built with the runtimes' own types.
fn samples(tenant: &str, sink: &Sink) -> Result<Vec<Sample>> {
    let kernel = KernelAudit::new(sink.clone()).with_tenant(tenant);
    let intent = StatusChange {
        intent_id: "intent-42".into(),
        plan_id: Some("plan-7".into()),
        old_status: "Active".into(),
        new_status: "Completed".into(),
        reason: "refund sent to ada@example.com, card 4111 1111 1111 1111".into(),
        triggering_action_id: Some("action-9".into()),
    };
    let envelope = AuditEvent {
        id: "ccos-1".into(),
        occurred_at: "2026-11-22T09:00:00Z".parse()?,
        tenant: Some(tenant.into()),
        correlation_id: Some("intent-42".into()),
        chain_id: Some("plan-7".into()),
        actor: Some("agent:planner".into()),
        kind: String::new(),
        subject: None,
        payload: Default::default(),
        labels: Default::default(),
    };
    let experience = |id: &str, event: ExperienceEvent| -> Result<AuditEvent> {
        Ok(
            ExperienceEventEnvelope::new(id, "2026-11-22T09:00:01Z", event)
                .with_tenant(tenant)
                .with_correlation("run-7")
                .to_audit_event()?,
        )
    };
    let tool = |name: &str, args: Value| KernelEvent::ToolExecutionStarted {
        session_id: "s-1".into(),
        tool_name: name.into(),
        tool_call_id: format!("call-{name}"),
        tool_args: args,
        context: None,
    };
    Ok(vec![
        Sample {
            runtime: "CCOS",
            what: "intent status change",
            event: intent.into_event(envelope)?,
        },
        Sample {
            runtime: "Converge",
            what: "fact promoted",
            event: experience(
                "converge-1",
                ExperienceEvent::FactPromoted {
                    proposal_id: "prop-3".into(),
                    fact_id: "fact-3".into(),
                    promoted_by: "ops@example.com".into(),
                    reason: "confirmed with the customer at +14155552671".into(),
                    requires_human: true,
                },
            )?,
        },
        Sample {
            runtime: "Converge",
            what: "budget exceeded",
            event: experience(
                "converge-2",
                ExperienceEvent::BudgetExceeded {
                    chain_id: "chain-7".into(),
                    resource: "tokens".into(),
                    limit: "100000".into(),
                    observed: Some("131072".into()),
                },
            )?,
        },
        Sample {
            runtime: "Oxios",
            what: "tool call with credentials",
            event: kernel.audit_event(&tool(
                "http.get",
                json!({"url": "https://admin:hunter2@api.example.com/v1/orders",
                       "headers": {"Authorization": "Bearer sk_live_4eC39HqLyjWDarjtT1zdp7dc"},
                       "note": "deploy key AKIAIOSFODNN7EXAMPLE"}),
            )),
        },
        Sample {
            runtime: "Oxios",
            what: "destructive tool call",
            event: kernel.audit_event(&tool("fs.delete", json!({"path": "/var/lib/customers"}))),
        },
        Sample {
            runtime: "Oxios",
            what: "token counter",
            event: kernel.audit_event(&KernelEvent::TokenUsageUpdate {
                session_id: "s-1".into(),
                input_tokens: 1234,
                output_tokens: 567,
            }),
        },
        Sample {
            runtime: "Oxios",
            what: "memory stored",
            event: kernel.audit_event(&KernelEvent::MemoryStored {
                id: "mem-TICKET-4821".into(),
                memory_type: "episodic".into(),
                source: "chat with bob@example.org".into(),
            }),
        },
    ])
}

/// Writes the demo's files and opens the sink on them.
fn open_sink(dir: &Path) -> Result<Sink> {
    let ledger = dir.join("demo.db");
    Ledger::init(&ledger, "vellum/demo")?;
    let key = dir.join("pseudonym.key");
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .context("cannot read random bytes for the pseudonym key")?;
    std::fs::write(&key, hex::encode(bytes))?;
    std::fs::write(dir.join("redact.toml"), REDACT_CONFIG)?;
    std::fs::write(dir.join("policy.toml"), POLICY_CONFIG)?;
    let chain = ChainConfig::parse(
        "pseudonym-key-file = \"pseudonym.key\"\n\
         [[plugin]]\nname = \"redact\"\ncomponent = \"builtin:redact\"\nconfig-file = \"redact.toml\"\n\
         [[plugin]]\nname = \"policy\"\ncomponent = \"builtin:policy\"\nconfig-file = \"policy.toml\"\n",
        dir,
    )?;
    let config = SinkConfig {
        server: None,
        retention: Default::default(),
        sink: SinkOptions::default(),
        ledger: LedgerConfig::at(ledger),
        chain,
    };
    Ok(Sink::open(&config, &crate::builtins::load_options(false))?)
}

/// Colours for a terminal; none when piped or `NO_COLOR` is set.
struct Paint(bool);

impl Paint {
    fn paint(&self, style: Style, text: &str) -> String {
        match self.0 {
            true => format!("{style}{text}{style:#}"),
            false => text.to_string(),
        }
    }
    fn head(&self, text: &str) -> String {
        self.paint(Style::new().bold(), text)
    }
    fn good(&self, text: &str) -> String {
        self.paint(AnsiColor::Green.on_default(), text)
    }
    fn warn(&self, text: &str) -> String {
        self.paint(AnsiColor::Yellow.on_default(), text)
    }
    fn bad(&self, text: &str) -> String {
        self.paint(AnsiColor::Red.on_default().bold(), text)
    }
    fn dim(&self, text: &str) -> String {
        self.paint(Style::new().dimmed(), text)
    }
}

/// `vellum demo`.
pub fn demo(args: DemoArgs) -> Result<u8> {
    let temp;
    let dir = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::tempdir().context("cannot create a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    let p = Paint(
        !args.json && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    );
    let sink = open_sink(&dir)?;
    let mut shown = Vec::new();
    if !args.json {
        say!(
            "{}",
            p.head(&format!(
                "Vellum demo — ledger {}",
                dir.join("demo.db").display()
            ))
        );
        say!(
            "chain: builtin:redact → builtin:policy; nothing reaches the ledger before both ran\n"
        );
    }
    let mut first_recorded = None;
    for sample in samples("acme", &sink)? {
        let before = sample.event.clone();
        let result = sink.emit(sample.event);
        let entry = match &result {
            Ok(receipt) => Some(entry_at(sink.ledger(), receipt.seq)?),
            Err(_) => None,
        };
        if let (Ok(receipt), None) = (&result, first_recorded)
            && entry.as_ref().is_some_and(|e| e.dropped_by.is_none())
        {
            first_recorded = Some(receipt.seq);
        }
        let outcome = outcome_json(&result, entry.as_ref());
        if !args.json {
            show(
                &p,
                sample.runtime,
                sample.what,
                &before,
                &result,
                entry.as_ref(),
            );
        }
        shown.push(json!({
            "runtime": sample.runtime,
            "what": sample.what,
            "before": before,
            "outcome": outcome,
            "after": entry.map(|e| e.event),
        }));
    }
    let ledger = sink.ledger();
    ledger.checkpoint()?;
    let query = Query {
        tenant: Some("acme".into()),
        kinds: vec!["kernel.other".into()],
        limit: 100,
        ..Query::default()
    };
    let found = ledger.query(&query)?.entries;
    let report = ledger.verify(None)?;
    let seq = first_recorded.context("no sample was recorded")?;
    let bundle = ledger.inclusion_bundle(seq, None)?;
    let proof = bundle
        .check(ledger.verifier_key())
        .map_err(anyhow::Error::msg);
    if args.json {
        let document = json!({
            "ledger": dir.join("demo.db"),
            "events": shown,
            "query": {"tenant": "acme", "kind": "kernel.other", "entries": found.iter().map(|e| e.seq).collect::<Vec<_>>()},
            "verify": {"ok": report.ok(), "entries_checked": report.entries_checked, "findings": report.findings},
            "proof": {"seq": seq, "bundle": bundle, "verified": proof.as_ref().is_ok()},
            "verifier_key": ledger.verifier_key(),
        });
        say!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        say!("{}", p.head("Query: tenant acme, kind kernel.other"));
        for entry in &found {
            say!(
                "  #{} {} {}",
                entry.seq,
                entry.event.subject.as_deref().unwrap_or("-"),
                p.dim(&entry.event.id)
            );
        }
        say!("\n{}", p.head("Verify"));
        match report.ok() {
            true => say!(
                "  {} {} entries, {} checkpoints: every leaf, the tree and every signature check out",
                p.good("ok"),
                report.entries_checked,
                report.checkpoints_checked
            ),
            false => say!("  {} {:?}", p.bad("FAILED"), report.first()),
        }
        say!("\n{}", p.head(&format!("Inclusion proof of entry {seq}")));
        match &proof {
            Ok(message) => say!(
                "  {} {message} (checked with only the public key)",
                p.good("ok")
            ),
            Err(e) => say!("  {} {e}", p.bad("FAILED")),
        }
        say!("  verifier key: {}", ledger.verifier_key());
        if args.dir.is_none() {
            say!("\n{}", p.dim("(the ledger was in a temporary directory; keep one with --dir DIR, then try `vellum query --ledger DIR/demo.db`)"));
        }
    }
    sink.close()?;
    Ok(match report.ok() && proof.is_ok() {
        true => exit::OK,
        false => exit::TAMPERED,
    })
}

fn entry_at(ledger: &Ledger, seq: u64) -> Result<Entry> {
    let query = Query {
        after_seq: seq.checked_sub(1),
        limit: 1,
        ..Query::default()
    };
    ledger
        .query(&query)?
        .entries
        .pop()
        .filter(|e| e.seq == seq)
        .with_context(|| format!("entry {seq} is not in the ledger"))
}

fn outcome_json(result: &Result<vellum::sink::Receipt, EmitError>, entry: Option<&Entry>) -> Value {
    match (result, entry) {
        (
            Ok(receipt),
            Some(Entry {
                dropped_by: Some((plugin, reason)),
                ..
            }),
        ) => {
            json!({"disposition": "dropped", "seq": receipt.seq, "plugin": plugin, "reason": reason})
        }
        (Ok(receipt), _) => json!({"disposition": "recorded", "seq": receipt.seq}),
        (Err(EmitError::Rejected { plugin, reason }), _) => {
            json!({"disposition": "rejected", "plugin": plugin, "reason": reason})
        }
        (Err(error), _) => json!({"disposition": "error", "message": error.to_string()}),
    }
}

/// Prints one event: its payload before, and what the chain made of it.
fn show(
    p: &Paint,
    runtime: &str,
    what: &str,
    before: &AuditEvent,
    result: &Result<vellum::sink::Receipt, EmitError>,
    entry: Option<&Entry>,
) {
    say!(
        "{} {} {}",
        p.head(&format!("[{runtime}]")),
        what,
        p.dim(&format!("({}, {})", before.kind, before.id))
    );
    say!("  before: {}", before.payload.as_str());
    match (result, entry) {
        (
            Ok(receipt),
            Some(Entry {
                dropped_by: Some((plugin, reason)),
                ..
            }),
        ) => say!(
            "  {} by {plugin}: {reason} — entry #{} keeps only the envelope",
            p.warn("dropped"),
            receipt.seq
        ),
        (Ok(receipt), Some(entry)) => {
            let after = entry.event.payload.as_str();
            let verdict = match after == before.payload.as_str() {
                true => p.good("recorded unchanged"),
                false => p.good("recorded, redacted"),
            };
            say!("  after:  {after}");
            say!("  {verdict} as entry #{}", receipt.seq);
        }
        (Ok(receipt), None) => say!("  recorded as entry #{}", receipt.seq),
        (Err(EmitError::Rejected { plugin, reason }), _) => say!(
            "  {} by {plugin}: {reason} — nothing recorded, the producer gets the error",
            p.bad("rejected")
        ),
        (Err(error), _) => say!("  {} {error}", p.bad("error")),
    }
    say!("");
}
