//! `vellum run` and `vellum ingest`. With a ledger, every input line is emitted through the
//! sink (concurrently: many lines in flight, answered in input order) and its receipt or
//! error printed; without one, `run` is a dry run that prints the chain's verdicts.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, sync_channel};

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use serde::Serialize;
use vellum::chain::ChainConfig;
use vellum::event::{AuditEvent, JsonLinesReader};
use vellum::sink::{EmitError, LedgerConfig, Receipt, Sink, SinkConfig, SinkOptions, Ticket};

use crate::{exit, report};

mod dry_run;

/// Arguments shared by `run` and `ingest`.
#[derive(Args)]
pub struct RunArgs {
    /// The chain file (TOML). Required by `run` without --sink; without it `ingest` records
    /// events as they are.
    #[arg(long, conflicts_with = "sink")]
    chain: Option<PathBuf>,
    /// Commit through the sink to this ledger (created by `vellum init`): a SQLite file or
    /// a `postgres://` URL.
    #[arg(long, conflicts_with = "sink")]
    ledger: Option<PathBuf>,
    /// The ledger's signing key file (default: `<ledger>.key` beside a SQLite file).
    #[arg(long, conflicts_with = "sink", requires = "ledger")]
    signing_key: Option<PathBuf>,
    /// A sink file (`[sink]`, `[ledger]` and `[chain]` tables) instead of --chain and --ledger.
    #[arg(long)]
    sink: Option<PathBuf>,
    /// JSON-lines events; standard input when omitted.
    #[arg(long)]
    input: Option<PathBuf>,
    /// What to do at a malformed input line (it is always reported on stderr).
    #[arg(long, value_enum, default_value_t = OnMalformed::Stop)]
    on_malformed: OnMalformed,
    /// Neither read nor write the compiled-component cache.
    #[arg(long)]
    no_cache: bool,
    /// Events per plugin call when there is no chain file (with one, its `batch-size`);
    /// with a ledger, also the most events per pipeline batch.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Chain worker threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
}

impl RunArgs {
    /// Whether events are committed (to --ledger or the sink file's ledger).
    pub fn records(&self) -> bool {
        self.ledger.is_some() || self.sink.is_some()
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

/// Runs `run` (`require_chain`) or `ingest` and returns the exit code.
pub fn run(args: RunArgs, require_chain: bool) -> u8 {
    if require_chain && args.chain.is_none() && args.sink.is_none() {
        report(&anyhow::anyhow!("`vellum run` needs --chain (or --sink)"));
        return exit::CONFIG;
    }
    let mut progress = ProgressBar::hidden();
    let input: Box<dyn BufRead + Send> = match &args.input {
        None => Box::new(BufReader::new(io::stdin())),
        Some(path) => match File::open(path) {
            Ok(file) => {
                progress = crate::progress::input(file.metadata().map_or(0, |m| m.len()));
                Box::new(BufReader::new(progress.wrap_read(file)))
            }
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
    let lines = Lines {
        reader: JsonLinesReader::new(input),
        source,
        on_malformed: args.on_malformed,
        malformed: 0,
        stopped: false,
        events: 0,
        progress: progress.clone(),
    };
    let code = if args.records() {
        record(&args, lines)
    } else {
        dry_run::dry_run(&args, lines)
    };
    progress.finish_and_clear();
    code
}

/// The input events, reporting malformed lines as they are met.
struct Lines {
    reader: JsonLinesReader<Box<dyn BufRead + Send>>,
    source: String,
    on_malformed: OnMalformed,
    malformed: u64,
    stopped: bool,
    /// Events read so far.
    events: u64,
    /// The input's progress bar (hidden unless it is worth showing).
    progress: ProgressBar,
}

impl Lines {
    /// The next event and its line number; `Ok(None)` at the end or at a malformed line
    /// under `--on-malformed stop`.
    fn next(&mut self) -> anyhow::Result<Option<(u64, AuditEvent)>> {
        while !self.stopped {
            let item = self
                .reader
                .next()
                .transpose()
                .with_context(|| format!("reading {}", self.source))?;
            match item {
                None => return Ok(None),
                Some(Ok(event)) => {
                    self.events += 1;
                    if self.events.is_multiple_of(1024) {
                        self.progress.set_message(format!("{} events", self.events));
                    }
                    return Ok(Some(event));
                }
                Some(Err(bad)) => {
                    self.malformed += 1;
                    self.progress.suspend(|| {
                        eprintln!("vellum: {}:{}: {}", self.source, bad.line, bad.message)
                    });
                    self.stopped = self.on_malformed == OnMalformed::Stop;
                }
            }
        }
        Ok(None)
    }
}

/// The sink configuration from the arguments.
fn sink_config(args: &RunArgs) -> anyhow::Result<SinkConfig> {
    let mut config = match (&args.sink, &args.ledger) {
        (Some(path), _) => SinkConfig::from_file(path)?,
        (None, Some(ledger)) => SinkConfig {
            server: None,
            retention: Default::default(),
            sink: SinkOptions::default(),
            ledger: LedgerConfig {
                signing_key: args.signing_key.clone(),
                ..LedgerConfig::at(ledger)
            },
            chain: match &args.chain {
                Some(path) => ChainConfig::from_file(path)?,
                None => ChainConfig::default(),
            },
        },
        (None, None) => anyhow::bail!("give --ledger or --sink"),
    };
    if let Some(size) = args.batch_size {
        config.sink.batch_events = size.max(1);
        if args.chain.is_none() && args.sink.is_none() {
            config.chain.batch_size = size.clamp(1, vellum::chain::MAX_BATCH_SIZE);
        }
    }
    if let Some(workers) = args.workers {
        config.sink.workers = workers;
    }
    Ok(config)
}

/// Emits every line through the sink; prints each line's receipt or error in input order.
fn record(args: &RunArgs, mut lines: Lines) -> u8 {
    let sink = match sink_config(args).and_then(|config| {
        let load = crate::builtins::load_options(args.no_cache);
        Ok(Sink::open(&config, &load)?)
    }) {
        Ok(sink) => sink,
        Err(e) => {
            report(&e);
            let ledger = matches!(
                e.downcast_ref::<vellum::sink::OpenError>(),
                Some(vellum::sink::OpenError::Ledger(_))
            );
            return if ledger { exit::LEDGER } else { exit::CONFIG };
        }
    };
    // Tickets go to a printer thread that waits on them in order, so that many lines are in
    // flight while the reader goes on; the channel's bound keeps memory bounded.
    let (tickets, in_order) = sync_channel::<(u64, Ticket)>(4096);
    let source = lines.source.clone();
    let printer = std::thread::spawn(move || print_receipts(in_order, &source));
    let mut failure = None;
    loop {
        match lines.next() {
            Ok(Some((line, event))) => match sink.submit(vec![event]) {
                Ok(ticket) => {
                    if tickets.send((line, ticket)).is_err() {
                        break;
                    }
                }
                Err(error) => {
                    failure =
                        Some(anyhow::Error::new(error).context(format!("{}:{line}", lines.source)));
                    break;
                }
            },
            Ok(None) => break,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(tickets);
    let printed = printer
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the output thread failed")));
    let closed = sink.close();
    let summary = match printed {
        Ok(summary) => summary,
        Err(e) => {
            report(&e);
            return exit::ERROR;
        }
    };
    if let Err(e) = closed {
        report(&anyhow::Error::new(e).context("signing the final checkpoint"));
        return exit::LEDGER;
    }
    if let Some(e) = failure {
        report(&e);
        return exit::ERROR;
    }
    if summary.unavailable > 0 {
        exit::LEDGER
    } else if lines.malformed > 0 {
        exit::MALFORMED_INPUT
    } else if summary.refused > 0 {
        exit::REJECTED
    } else {
        exit::OK
    }
}

/// Counts that decide the exit code of a recording run.
#[derive(Default)]
struct Summary {
    refused: u64,
    unavailable: u64,
}

/// One output line of a recording run.
#[derive(Serialize)]
struct ReceiptLine<'a> {
    line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt: Option<&'a Receipt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorJson<'a>>,
}

/// An emit error as JSON: its class and the WIT fields.
#[derive(Serialize)]
struct ErrorJson<'a> {
    class: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    plugin: Option<&'a str>,
    message: &'a str,
}

impl<'a> From<&'a EmitError> for ErrorJson<'a> {
    fn from(error: &'a EmitError) -> Self {
        match error {
            EmitError::InvalidEvent(message) => Self {
                class: "invalid-event",
                plugin: None,
                message,
            },
            EmitError::Rejected { plugin, reason } => Self {
                class: "rejected",
                plugin: Some(plugin),
                message: reason,
            },
            EmitError::Unavailable(message) => Self {
                class: "unavailable",
                plugin: None,
                message,
            },
        }
    }
}

fn print_receipts(tickets: Receiver<(u64, Ticket)>, source: &str) -> anyhow::Result<Summary> {
    let mut out = BufWriter::new(io::stdout().lock());
    let mut summary = Summary::default();
    for (line, ticket) in tickets {
        let result = ticket.wait();
        let (receipt, error) = match &result {
            Ok(receipts) => (receipts.first(), None),
            Err(error) => {
                match error {
                    EmitError::Unavailable(_) => summary.unavailable += 1,
                    _ => summary.refused += 1,
                }
                eprintln!("vellum: {source}:{line}: {error}");
                (None, Some(ErrorJson::from(error)))
            }
        };
        serde_json::to_writer(
            &mut out,
            &ReceiptLine {
                line,
                receipt,
                error,
            },
        )?;
        out.write_all(b"\n")?;
        // A receipt is printed as soon as it is known (a crashed run loses none).
        if receipt.is_some() {
            out.flush()?;
        }
    }
    out.flush()?;
    Ok(summary)
}
