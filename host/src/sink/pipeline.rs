//! The sink's pipeline, as data flow: producers → (bounded queue) → batcher → (bounded)
//! → N chain workers → committer → ledger writer → receipts back to the producers.
//!
//! Each stage is one or more threads owning their state; the stages share only channels.
//! The batcher numbers the batches; the committer commits them in that order, so the
//! ledger's order is the order in which emits entered the queue, and every producer's
//! events keep their order. A window of in-flight batches bounds the work between the
//! batcher and the committer, so every queue in the pipeline is bounded.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Sender, bounded};

use super::error::{EmitError, OpenError};
use super::stats::CommitTimes;
use super::{batcher, committer, worker};
use crate::chain::ChainTemplate;
use crate::event::AuditEvent;
use crate::ledger::Ledger;
use crate::ledger::entry::{PreSealed, Receipt, Record};
use crate::ledger::idempotency::IdempotencyKey;

/// What a producer hears back: one receipt per event of its emit, or why none was recorded.
pub(crate) type Reply = Result<Vec<Receipt>, EmitError>;

/// A message to the batcher.
pub(crate) enum Message {
    /// Record these events atomically and answer on `reply`.
    Emit(Request),
    /// Finish what is queued before this message, then stop.
    Close,
}

/// One emit: its events (recorded all or none), the idempotency key it claims, and where
/// to answer.
pub(crate) struct Request {
    pub(crate) events: Vec<AuditEvent>,
    pub(crate) key: Option<IdempotencyKey>,
    pub(crate) reply: Sender<Reply>,
}

/// Emits gathered for one worker, numbered in queue order.
pub(crate) struct Batch {
    pub(crate) seq: u64,
    pub(crate) requests: Vec<Request>,
}

/// A batch after the chain: per emit, its ledger records with their content sealed (in
/// event order), or why it has none.
pub(crate) struct Processed {
    pub(crate) seq: u64,
    pub(crate) requests: Vec<ProcessedEmit>,
}

/// One emit after the chain.
pub(crate) struct ProcessedEmit {
    /// Where to answer.
    pub(crate) reply: Sender<Reply>,
    /// The idempotency key the emit claims.
    pub(crate) key: Option<IdempotencyKey>,
    /// The records the chain's outcomes make, each with its content sealed, in event
    /// order; or why there are none (a rejection, a failure).
    pub(crate) records: Result<(Vec<Record>, Vec<PreSealed>), EmitError>,
}

/// Settings of a running pipeline.
pub(crate) struct PipelineSettings {
    pub(crate) workers: usize,
    pub(crate) batch_events: usize,
    pub(crate) batch_wait: Duration,
    pub(crate) queue_capacity: usize,
    pub(crate) tenant_instances: usize,
}

/// Starts every stage; returns the producers' queue and the threads to join on close.
pub(crate) fn start(
    chain: Arc<ChainTemplate>,
    ledger: Arc<Ledger>,
    commit_times: Arc<CommitTimes>,
    settings: &PipelineSettings,
) -> Result<(Sender<Message>, Vec<JoinHandle<()>>), OpenError> {
    let workers = settings.workers.max(1);
    let (queue, requests) = bounded::<Message>(settings.queue_capacity);
    let (to_workers, batches) = bounded::<Batch>(workers);
    let (to_committer, processed) = bounded::<Processed>(workers * 2);
    // Batches between the batcher and the end of their commit: enough to keep every worker
    // busy while the committer writes the previous group.
    let (window, window_free) = bounded::<()>(workers * 2);
    let mut threads = Vec::with_capacity(workers + 2);
    let spawn = |name: String, body: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name)
            .spawn(body)
            .map_err(|e| OpenError::Thread(e.to_string()))
    };
    let limits = batcher::Limits {
        events: settings.batch_events,
        wait: settings.batch_wait,
    };
    threads.push(spawn(
        "vellum-batcher".into(),
        Box::new(move || batcher::run(requests, to_workers, window, limits)),
    )?);
    for (i, runner) in chain
        .runners(workers, settings.tenant_instances)
        .into_iter()
        .enumerate()
    {
        let (batches, to_committer) = (batches.clone(), to_committer.clone());
        let ledger = ledger.clone();
        threads.push(spawn(
            format!("vellum-worker-{i}"),
            Box::new(move || worker::run(runner, &ledger, batches, to_committer)),
        )?);
    }
    drop((batches, to_committer));
    threads.push(spawn(
        "vellum-committer".into(),
        Box::new(move || committer::run(ledger, commit_times, processed, window_free)),
    )?);
    Ok((queue, threads))
}

/// The error for emits that the sink stopped before answering.
pub(crate) fn stopped() -> EmitError {
    EmitError::Unavailable(
        "the sink closed before recording the events; nothing was acknowledged".into(),
    )
}
