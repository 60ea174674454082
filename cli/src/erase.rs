//! Forgetting: `vellum erase`, `vellum hold` and `vellum retention`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use jiff::Timestamp;
use vellum::ledger::erasure::{EraseRequest, EraseTarget, OnHold};
use vellum::ledger::{HoldRequest, Ledger};
use vellum::sink::SinkConfig;

use super::exit;
use super::ledger::LedgerArg;

/// Arguments of `vellum erase`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["subject", "tenant", "seq"])))]
pub struct EraseArgs {
    #[command(flatten)]
    ledger: LedgerArg,
    /// Erase every entry of this data subject (as the ledger's `subject-field` names it),
    /// in every tenant or, with --tenant, in one; destroys the subject's data keys.
    #[arg(long)]
    subject: Option<String>,
    /// Erase every entry of this tenant (destroys all its keys); with --subject, only that
    /// subject's entries in it.
    #[arg(long)]
    tenant: Option<String>,
    /// Erase this entry's content only (repeatable), for one leaked secret.
    #[arg(long, conflicts_with_all = ["subject", "tenant"])]
    seq: Vec<u64>,
    /// Why (kept in the erasure record).
    #[arg(long)]
    reason: String,
    /// Who asks (kept in the erasure record; default: $USER).
    #[arg(long)]
    by: Option<String>,
    /// Erase even what a legal hold covers; the erasure record names the holds.
    #[arg(long)]
    override_hold: bool,
}

/// `vellum erase`: prints the erasure's report as JSON.
pub fn erase(args: EraseArgs) -> Result<u8> {
    anyhow::ensure!(!args.reason.trim().is_empty(), "--reason must say why");
    let target = match (args.subject, args.tenant, args.seq) {
        (Some(subject), tenant, _) => EraseTarget::Subject { subject, tenant },
        (None, Some(tenant), _) => EraseTarget::Tenant(tenant),
        (None, None, seqs) => EraseTarget::Entries(seqs),
    };
    let request = EraseRequest {
        target,
        reason: args.reason,
        by: operator(args.by),
        on_hold: match args.override_hold {
            true => OnHold::Override,
            false => OnHold::Refuse,
        },
    };
    let ledger = Ledger::open(args.ledger.location(), Default::default())?;
    let report = ledger.erase(request)?;
    eprintln!(
        "erased {} entries, destroyed {} data key(s); erasure record: entry {}",
        report.entries_erased, report.keys_destroyed, report.record_seq
    );
    say!("{}", serde_json::to_string(&report)?);
    Ok(exit::OK)
}

/// The operator's name for records: `--by`, else `$USER`, else `unknown`.
fn operator(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// `vellum hold …`.
#[derive(Subcommand)]
pub enum HoldCommand {
    /// Place a legal hold on a tenant, a data subject or a correlation id (one run).
    Add {
        #[command(flatten)]
        ledger: LedgerArg,
        /// Hold every entry of this tenant.
        #[arg(long, group = "target", required_unless_present_any = ["subject", "correlation"])]
        tenant: Option<String>,
        /// Hold every entry of this data subject (stored only as its keyed hash).
        #[arg(long, group = "target")]
        subject: Option<String>,
        /// Hold every entry of this correlation id.
        #[arg(long, group = "target")]
        correlation: Option<String>,
        /// Why (a case or request number).
        #[arg(long)]
        reason: String,
    },
    /// Lift a legal hold by its number.
    Remove {
        #[command(flatten)]
        ledger: LedgerArg,
        /// The hold's number (`vellum hold list`).
        id: u64,
    },
    /// List the legal holds as JSON lines.
    List {
        #[command(flatten)]
        ledger: LedgerArg,
    },
}

/// `vellum hold`.
pub fn hold(command: HoldCommand) -> Result<u8> {
    match command {
        HoldCommand::Add {
            ledger,
            tenant,
            subject,
            correlation,
            reason,
        } => {
            let target = match (tenant, subject, correlation) {
                (Some(t), ..) => HoldRequest::Tenant(t),
                (_, Some(s), _) => HoldRequest::Subject(s),
                (.., Some(c)) => HoldRequest::Correlation(c),
                _ => anyhow::bail!("give --tenant, --subject or --correlation"),
            };
            let hold = Ledger::open_read_only(ledger.location())?.add_hold(target, &reason)?;
            say!("{}", serde_json::to_string(&hold)?);
        }
        HoldCommand::Remove { ledger, id } => {
            if !Ledger::open_read_only(ledger.location())?.remove_hold(id)? {
                eprintln!("vellum: there is no hold {id}");
                return Ok(exit::ERROR);
            }
            eprintln!("hold {id} lifted");
        }
        HoldCommand::List { ledger } => {
            for hold in Ledger::open_read_only(ledger.location())?.holds()? {
                say!("{}", serde_json::to_string(&hold)?);
            }
        }
    }
    Ok(exit::OK)
}

/// `vellum retention …`.
#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Erase what the sink file's `[retention]` rules make due now, except what a legal
    /// hold covers; prints the report as JSON.
    Run {
        /// The sink file: its `[ledger]` and `[retention]` tables.
        #[arg(long)]
        sink: PathBuf,
        /// Take this time (RFC 3339) as now, to see or test what a later run erases.
        #[arg(long)]
        now: Option<Timestamp>,
        /// Who runs it (kept in the erasure records; default: `retention`).
        #[arg(long, default_value = "retention")]
        by: String,
    },
}

/// `vellum retention`.
pub fn retention(command: RetentionCommand) -> Result<u8> {
    let RetentionCommand::Run { sink, now, by } = command;
    let config = SinkConfig::from_file(&sink).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        !config.retention.rule.is_empty(),
        "{} has no [[retention.rule]]",
        sink.display()
    );
    let ledger = Ledger::open(config.ledger.location(), config.ledger.options()?)
        .with_context(|| format!("opening the ledger of {}", sink.display()))?;
    let report = ledger.run_retention(
        &config.retention.rule,
        now.unwrap_or_else(Timestamp::now),
        &by,
    )?;
    eprintln!(
        "retention: erased {} entries, {} held, {} of format 1 left (cannot be erased)",
        report.erased, report.held, report.format_1
    );
    say!("{}", serde_json::to_string(&report)?);
    Ok(exit::OK)
}
