//! `vellum run` and `vellum ingest`: apply a chain to JSON-lines events and, with a ledger,
//! commit what it lets through.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::Serialize;
use vellum::chain::{Chain, ChainConfig, LoadOptions, Outcome};
use vellum::event::{AuditEvent, JsonLinesReader};
use vellum::ledger::entry::{Receipt, Record};
use vellum::{Ledger, LedgerOptions};

use super::{exit, report};

/// Arguments shared by `run` and `ingest`.
#[derive(Args)]
pub struct RunArgs {
    /// The chain file (TOML). Required by `run`; without it `ingest` records events as they
    /// are.
    #[arg(long)]
    chain: Option<PathBuf>,
    /// Commit kept and dropped events to this ledger (created by `vellum init`).
    #[arg(long)]
    ledger: Option<PathBuf>,
    /// JSON-lines events; standard input when omitted.
    #[arg(long)]
    input: Option<PathBuf>,
    /// What to do at a malformed input line (it is always reported on stderr).
    #[arg(long, value_enum, default_value_t = OnMalformed::Stop)]
    on_malformed: OnMalformed,
    /// Neither read nor write the compiled-component cache.
    #[arg(long)]
    no_cache: bool,
    /// Events per batch when there is no chain file (with one, its `batch-size`).
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
}

impl RunArgs {
    /// The ledger to commit to, if any.
    pub fn ledger(&self) -> Option<&std::path::Path> {
        self.ledger.as_deref()
    }
}

/// Policy for malformed input lines.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnMalformed {
    /// Process the events before the line, then stop (exit code 4).
    Stop,
    /// Report the line, skip it and go on (exit code 4 at the end).
    Skip,
}

/// One output line: the outcome, the input line it came from, and the ledger receipt.
#[derive(Serialize)]
struct OutputLine<'a> {
    line: u64,
    #[serde(flatten)]
    outcome: &'a Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt: Option<&'a Receipt>,
}

/// Runs `run` (`require_chain`) or `ingest` and returns the exit code.
pub fn run(args: RunArgs, require_chain: bool) -> u8 {
    if require_chain && args.chain.is_none() {
        report(&anyhow::anyhow!("`vellum run` needs --chain"));
        return exit::CONFIG;
    }
    let mut chain = None;
    let mut batch_size = args.batch_size.clamp(1, vellum::chain::MAX_BATCH_SIZE);
    if let Some(path) = &args.chain {
        let loaded = ChainConfig::from_file(path).and_then(|config| {
            let chain = Chain::load(
                &config,
                &LoadOptions {
                    no_cache: args.no_cache,
                },
            )?;
            Ok((config.batch_size, chain))
        });
        match loaded {
            Ok((size, loaded)) => {
                batch_size = size;
                chain = Some(loaded);
            }
            Err(e) => {
                report(&e);
                return exit::CONFIG;
            }
        }
    }
    let ledger = match args
        .ledger
        .as_deref()
        .map(|p| Ledger::open(p, LedgerOptions::default()))
    {
        None => None,
        Some(Ok(ledger)) => Some(ledger),
        Some(Err(e)) => {
            report(&anyhow::Error::new(e).context("cannot open the ledger"));
            return exit::LEDGER;
        }
    };
    let input: Box<dyn BufRead> = match &args.input {
        None => Box::new(io::stdin().lock()),
        Some(path) => match File::open(path) {
            Ok(file) => Box::new(BufReader::new(file)),
            Err(e) => {
                report(&anyhow::Error::new(e).context(format!("cannot open {}", path.display())));
                return exit::ERROR;
            }
        },
    };
    let source = args
        .input
        .as_ref()
        .map_or_else(|| "<stdin>".to_string(), |p| p.display().to_string());
    let mut pipeline = Pipeline {
        chain,
        ledger,
        source,
        summary: Summary::default(),
        out: BufWriter::new(io::stdout().lock()),
    };
    match pipeline.process(batch_size, input, args.on_malformed) {
        Ok(()) => pipeline.summary.exit_code(),
        Err(e) => {
            report(&e);
            if e.downcast_ref::<vellum::LedgerError>().is_some() {
                exit::LEDGER
            } else {
                exit::ERROR
            }
        }
    }
}

/// Counts that decide the exit code.
#[derive(Default)]
struct Summary {
    malformed: u64,
    rejected: u64,
}

impl Summary {
    fn exit_code(&self) -> u8 {
        if self.malformed > 0 {
            exit::MALFORMED_INPUT
        } else if self.rejected > 0 {
            exit::REJECTED
        } else {
            exit::OK
        }
    }
}

/// Input → chain → ledger → output.
struct Pipeline<W: Write> {
    chain: Option<Chain>,
    ledger: Option<Ledger>,
    source: String,
    summary: Summary,
    out: W,
}

impl<W: Write> Pipeline<W> {
    fn process(
        &mut self,
        batch_size: usize,
        input: Box<dyn BufRead>,
        on_malformed: OnMalformed,
    ) -> anyhow::Result<()> {
        let mut batch: Vec<(u64, AuditEvent)> = Vec::with_capacity(batch_size);
        let mut reader = JsonLinesReader::new(input);
        loop {
            let item = reader
                .next()
                .transpose()
                .with_context(|| format!("reading {}", self.source))?;
            let stop = match item {
                Some(Ok(event)) => {
                    batch.push(event);
                    false
                }
                Some(Err(bad)) => {
                    self.summary.malformed += 1;
                    eprintln!("vellum: {}:{}: {}", self.source, bad.line, bad.message);
                    on_malformed == OnMalformed::Stop
                }
                None => true,
            };
            if batch.len() >= batch_size || (stop && !batch.is_empty()) {
                let (lines, events): (Vec<u64>, Vec<AuditEvent>) = batch.drain(..).unzip();
                self.batch(lines, events)?;
            }
            if stop {
                return Ok(());
            }
        }
    }

    /// Applies the chain to one batch, commits it, then prints it.
    fn batch(&mut self, lines: Vec<u64>, events: Vec<AuditEvent>) -> anyhow::Result<()> {
        let outcomes = match &mut self.chain {
            Some(chain) => chain.apply(events),
            None => events
                .into_iter()
                .map(|event| Outcome::Keep {
                    event,
                    attestations: Vec::new(),
                })
                .collect(),
        };
        let receipts = match &self.ledger {
            None => Vec::new(),
            Some(ledger) => {
                let records: Vec<Record> = outcomes
                    .iter()
                    .cloned()
                    .filter_map(Record::from_outcome)
                    .collect();
                ledger.append(records)?
            }
        };
        let mut receipts = receipts.iter();
        for (line, outcome) in lines.into_iter().zip(&outcomes) {
            let receipt = match outcome {
                Outcome::Reject { reason, plugin, .. } => {
                    self.summary.rejected += 1;
                    eprintln!(
                        "vellum: {}:{line}: rejected by `{plugin}`: {reason}",
                        self.source
                    );
                    None
                }
                _ => receipts.next(),
            };
            serde_json::to_writer(
                &mut self.out,
                &OutputLine {
                    line,
                    outcome,
                    receipt,
                },
            )?;
            self.out.write_all(b"\n")?;
        }
        self.out.flush()?;
        Ok(())
    }
}
