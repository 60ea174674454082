//! `vellum run`: apply a chain to JSON-lines events.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::Serialize;
use vellum::chain::{Chain, ChainConfig, LoadOptions, Outcome};
use vellum::event::{AuditEvent, JsonLinesReader};

use super::{exit, report};

/// Arguments of `vellum run`.
#[derive(Args)]
pub struct RunArgs {
    /// The chain file (TOML).
    #[arg(long)]
    chain: PathBuf,
    /// JSON-lines events; standard input when omitted.
    #[arg(long)]
    input: Option<PathBuf>,
    /// What to do at a malformed input line (it is always reported on stderr).
    #[arg(long, value_enum, default_value_t = OnMalformed::Stop)]
    on_malformed: OnMalformed,
    /// Neither read nor write the compiled-component cache.
    #[arg(long)]
    no_cache: bool,
}

/// Policy for malformed input lines.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnMalformed {
    /// Process the events before the line, then stop (exit code 4).
    Stop,
    /// Report the line, skip it and go on (exit code 4 at the end).
    Skip,
}

/// One output line: the outcome plus the input line it came from.
#[derive(Serialize)]
struct OutputLine<'a> {
    line: u64,
    #[serde(flatten)]
    outcome: &'a Outcome,
}

/// Runs the command and returns its exit code.
pub fn run(args: RunArgs) -> u8 {
    let loaded = ChainConfig::from_file(&args.chain).and_then(|config| {
        let chain = Chain::load(
            &config,
            &LoadOptions {
                no_cache: args.no_cache,
            },
        )?;
        Ok((config, chain))
    });
    let (config, mut chain) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            report(&e);
            return exit::CONFIG;
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
    match process(
        &mut chain,
        config.batch_size,
        input,
        &source,
        args.on_malformed,
    ) {
        Ok(Summary {
            malformed,
            rejected,
        }) => {
            if malformed > 0 {
                exit::MALFORMED_INPUT
            } else if rejected > 0 {
                exit::REJECTED
            } else {
                exit::OK
            }
        }
        Err(e) => {
            report(&e);
            exit::ERROR
        }
    }
}

/// Counts that decide the exit code.
struct Summary {
    malformed: u64,
    rejected: u64,
}

fn process(
    chain: &mut Chain,
    batch_size: usize,
    input: Box<dyn BufRead>,
    source: &str,
    on_malformed: OnMalformed,
) -> anyhow::Result<Summary> {
    let mut out = BufWriter::new(io::stdout().lock());
    let mut summary = Summary {
        malformed: 0,
        rejected: 0,
    };
    let mut batch: Vec<(u64, AuditEvent)> = Vec::with_capacity(batch_size);
    let mut reader = JsonLinesReader::new(input);
    loop {
        let item = reader
            .next()
            .transpose()
            .with_context(|| format!("reading {source}"))?;
        let stop = match item {
            Some(Ok(event)) => {
                batch.push(event);
                false
            }
            Some(Err(bad)) => {
                summary.malformed += 1;
                eprintln!("vellum: {source}:{}: {}", bad.line, bad.message);
                on_malformed == OnMalformed::Stop
            }
            None => true,
        };
        if batch.len() >= batch_size || (stop && !batch.is_empty()) {
            let (lines, events): (Vec<u64>, Vec<AuditEvent>) = batch.drain(..).unzip();
            for (line, outcome) in lines.into_iter().zip(chain.apply(events)) {
                if let Outcome::Reject { reason, plugin, .. } = &outcome {
                    summary.rejected += 1;
                    eprintln!("vellum: {source}:{line}: rejected by `{plugin}`: {reason}");
                }
                serde_json::to_writer(
                    &mut out,
                    &OutputLine {
                        line,
                        outcome: &outcome,
                    },
                )?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        if stop {
            break;
        }
    }
    Ok(summary)
}
