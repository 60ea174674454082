//! `vellum run` without a ledger: applies the chain to every input event and prints each
//! outcome as a JSON line, in input order, recording nothing.
//!
//! The work is a pipeline of threads joined by bounded channels:
//!
//! ```text
//! reader ──parts──▶ chain workers ──outcomes──▶ printer (this thread)
//!    └──────────────────── routes ───────────────────▲
//! ```
//!
//! The reader parses the input [`READ`] events at a time and splits each read by tenant:
//! all the events of a tenant go to the same worker (picked by a hash of the tenant), so a
//! tenant's plugin instances are made and configured by one worker only, and its events stay
//! in order. For each read the reader also sends the printer its route, the worker of each
//! event in input order, and the printer takes the outcomes from the workers in that order.
//! Every channel holds at most [`DEPTH`] messages, so memory stays bounded whatever the
//! input's size, and a slow stage holds the others back instead of queueing without end.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, BufWriter, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use anyhow::Context;
use serde::Serialize;
use vellum::chain::{Chain, ChainConfig, ChainTemplate, DEFAULT_TENANT_CAPACITY, Outcome};
use vellum::event::AuditEvent;

use super::{Lines, RunArgs};
use crate::{exit, report};

/// Messages a channel between two stages may hold: enough to keep every stage busy, few
/// enough to keep memory bounded.
const DEPTH: usize = 4;

/// Events the reader parses before handing them on. The chain calls its plugins with
/// `batch-size` events of one tenant at a time; a large read fills those calls even when
/// many tenants' events are interleaved, and the stages seldom wait on each other. (The
/// output of a read is printed when the read is done: a live stream on standard input is
/// answered every `READ` events, or at its end.)
const READ: usize = 1024;

/// Most chain workers a dry run accepts.
const MAX_WORKERS: usize = 1024;

/// Events with their input line numbers, for one worker.
type Part = Vec<(u64, AuditEvent)>;

/// A worker's outcomes for one part, in the part's order.
type Decided = Vec<(u64, Outcome)>;

/// For each event of one read, in input order, the worker it went to.
type Route = Vec<u16>;

/// One output line of a dry run: the outcome and the input line it came from.
#[derive(Serialize)]
struct OutcomeLine<'a> {
    line: u64,
    #[serde(flatten)]
    outcome: &'a Outcome,
}

/// Applies the chain to every line without recording anything; returns the exit code.
pub(super) fn dry_run(args: &RunArgs, mut lines: Lines) -> u8 {
    let loaded = worker_count(args.workers).and_then(|workers| {
        let path = args.chain.as_deref().context("a dry run needs --chain")?;
        let config = ChainConfig::from_file(path)?;
        let load = crate::builtins::load_options(args.no_cache);
        let template = ChainTemplate::load(&config, &load)?;
        Ok((
            config.batch_size,
            template.runners(workers, DEFAULT_TENANT_CAPACITY),
        ))
    });
    let (batch_size, runners) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            report(&e);
            return exit::CONFIG;
        }
    };
    let source = lines.source.clone();
    let (to_printer, routes) = sync_channel::<Route>(DEPTH);
    let (read, printed) = std::thread::scope(|scope| {
        let mut to_workers = Vec::with_capacity(runners.len());
        let mut from_workers = Vec::with_capacity(runners.len());
        let mut workers = Vec::with_capacity(runners.len());
        for chain in runners {
            let (parts_tx, parts) = sync_channel::<Part>(DEPTH);
            let (decided_tx, decided) = sync_channel::<Decided>(DEPTH);
            to_workers.push(parts_tx);
            from_workers.push(decided);
            workers.push(scope.spawn(move || apply(chain, parts, decided_tx)));
        }
        let reader = scope.spawn(|| read(&mut lines, batch_size.max(READ), to_workers, to_printer));
        // Printing returns early on an error; dropping its receivers then stops the others.
        let printed = print(routes, from_workers, &source);
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the input thread failed")));
        let workers_failed = workers.into_iter().any(|w| w.join().is_err());
        match printed {
            Err(_) if workers_failed => (read, Err(anyhow::anyhow!("a chain worker failed"))),
            printed => (read, printed),
        }
    });
    let rejected = match (read, printed) {
        (Ok(()), Ok(rejected)) => rejected,
        (Err(e), _) | (_, Err(e)) => {
            report(&e);
            return exit::ERROR;
        }
    };
    if lines.malformed > 0 {
        exit::MALFORMED_INPUT
    } else if rejected > 0 {
        exit::REJECTED
    } else {
        exit::OK
    }
}

/// The number of chain workers: `--workers`, or one per core when it is absent or 0.
fn worker_count(workers: Option<usize>) -> anyhow::Result<usize> {
    match workers {
        None | Some(0) => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        Some(n) if n > MAX_WORKERS => {
            anyhow::bail!("--workers must be at most {MAX_WORKERS}, not {n}")
        }
        Some(n) => Ok(n),
    }
}

/// The worker that serves `tenant` among `workers`.
fn worker_of(tenant: Option<&str>, workers: usize) -> usize {
    if workers == 1 {
        return 0;
    }
    let mut hasher = DefaultHasher::new();
    tenant.hash(&mut hasher);
    // The remainder is below `workers`, at most MAX_WORKERS.
    (hasher.finish() % workers as u64) as usize
}

/// The input stage: reads `size` events at a time, sends each worker its part and the
/// printer the route, until the input ends, a malformed line stops it, or a later stage
/// hangs up. The events read before a read error are still sent.
fn read(
    lines: &mut Lines,
    size: usize,
    workers: Vec<SyncSender<Part>>,
    printer: SyncSender<Route>,
) -> anyhow::Result<()> {
    loop {
        let mut parts: Vec<Part> = workers.iter().map(|_| Vec::new()).collect();
        let mut route = Route::with_capacity(size);
        let mut error = None;
        while route.len() < size {
            match lines.next() {
                Ok(Some((line, event))) => {
                    let worker = worker_of(event.tenant.as_deref(), workers.len());
                    // `worker` < MAX_WORKERS, which fits.
                    route.push(worker as u16);
                    parts[worker].push((line, event));
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let last = route.len() < size;
        // Parts go out before their route: the printer only waits for events already sent.
        for (part, worker) in parts.into_iter().zip(&workers) {
            if !part.is_empty() && worker.send(part).is_err() {
                return Ok(());
            }
        }
        if !route.is_empty() && printer.send(route).is_err() {
            return Ok(());
        }
        match error {
            Some(e) => return Err(e),
            None if last => return Ok(()),
            None => {}
        }
    }
}

/// A chain worker: applies the chain to each part it is given, in order.
fn apply(mut chain: Chain, parts: Receiver<Part>, decided: SyncSender<Decided>) {
    for part in parts {
        let (numbers, events): (Vec<u64>, Vec<AuditEvent>) = part.into_iter().unzip();
        let outcomes = numbers.into_iter().zip(chain.apply(events)).collect();
        if decided.send(outcomes).is_err() {
            return;
        }
    }
}

/// The output stage: follows each route, printing every outcome as a JSON line and
/// reporting each rejection on stderr; returns how many events were rejected.
fn print(
    routes: Receiver<Route>,
    workers: Vec<Receiver<Decided>>,
    source: &str,
) -> anyhow::Result<u64> {
    let mut out = BufWriter::new(io::stdout().lock());
    let mut pending: Vec<std::vec::IntoIter<(u64, Outcome)>> =
        workers.iter().map(|_| Vec::new().into_iter()).collect();
    let mut rejected = 0u64;
    for route in routes {
        for worker in route.into_iter().map(usize::from) {
            let next = match pending[worker].next() {
                Some(next) => Some(next),
                None => workers[worker].recv().ok().and_then(|decided| {
                    pending[worker] = decided.into_iter();
                    pending[worker].next()
                }),
            };
            let (line, outcome) =
                next.context("a chain worker stopped before deciding every event")?;
            if let Outcome::Reject { reason, plugin, .. } = &outcome {
                rejected += 1;
                eprintln!("vellum: {source}:{line}: rejected by `{plugin}`: {reason}");
            }
            let line = OutcomeLine {
                line,
                outcome: &outcome,
            };
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    Ok(rejected)
}
