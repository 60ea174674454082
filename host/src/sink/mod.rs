//! The sink: the `sink` interface of `wit/audit.wit` in Rust, and the only path from a
//! producer to the ledger. Every front door (the CLI, a server, a language binding) calls it.
//!
//! Guarantees:
//! - a [`Receipt`] is returned only after its entry is durable in the ledger;
//! - on an [`EmitError`] nothing of the emit was acknowledged or recorded; an
//!   [`Sink::emit_batch`] is atomic (every event recorded, or none);
//! - nothing is dropped silently: when the queue is full an emit waits, or fails with
//!   [`EmitError::Unavailable`] after the timeout its caller chose;
//! - each producer's events keep their order, and receipts carry gapless sequence numbers;
//! - no plugin instance sees the events of two tenants.
//!
//! How: emits enter a bounded queue, are gathered into batches, run through the chain by N
//! worker threads (each with its own plugin instances, per tenant), and committed in order
//! by one committer while the next batches are in the plugins (see `pipeline.rs`).

mod batcher;
mod committer;
mod config;
mod error;
mod pipeline;
mod stats;
mod status;
mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, SendTimeoutError, Sender};

pub use config::{LedgerConfig, MAX_EMIT_EVENTS, SinkConfig, SinkOptions, WitnessConfig};
pub use error::{EmitError, OpenError};
pub use stats::{COMMIT_BUCKETS, CommitLatency, SinkStats};
pub use status::{STATUS_CHANGED_KIND, StatusChange};

use crate::chain::{ChainTemplate, LoadOptions};
use crate::event::AuditEvent;
pub use crate::ledger::entry::{Disposition, Receipt};
use crate::ledger::idempotency::IdempotencyKey;
use crate::ledger::{Hash, Ledger, LedgerError};
use pipeline::{Message, PipelineSettings, Reply, Request};
use sha2::{Digest, Sha256};

/// A running sink. `Send + Sync` and cheap to clone: every clone feeds the same pipeline.
/// Dropping the last clone closes it (see [`Sink::close`]).
#[derive(Clone)]
pub struct Sink {
    shared: Arc<Shared>,
    emit_timeout: Option<Duration>,
}

/// What every clone of a sink shares.
struct Shared {
    queue: Sender<Message>,
    closed: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    ledger: Arc<Ledger>,
    chain: Arc<ChainTemplate>,
    max_emit_events: usize,
    commit_times: Arc<stats::CommitTimes>,
}

/// An emit in flight: its events are queued; [`Ticket::wait`] returns their receipts once
/// they are durable, or why none was recorded.
#[must_use = "an emit is only known to be recorded once its ticket says so"]
pub struct Ticket(TicketState);

enum TicketState {
    Queued(Receiver<Reply>),
    Done(Reply),
}

impl Ticket {
    /// Waits for the outcome: one receipt per event, in order, or the error.
    pub fn wait(self) -> Result<Vec<Receipt>, EmitError> {
        match self.0 {
            TicketState::Done(reply) => reply,
            TicketState::Queued(reply) => reply.recv().unwrap_or_else(|_| Err(pipeline::stopped())),
        }
    }
}

impl Sink {
    /// Opens the sink a configuration describes: loads the chain, opens the ledger and
    /// starts the pipeline.
    pub fn open(config: &SinkConfig, load: &LoadOptions) -> Result<Self, OpenError> {
        config.sink.validate()?;
        let chain = ChainTemplate::load(&config.chain, load)?;
        let ledger = Ledger::open(config.ledger.location(), config.ledger.options()?)?;
        Self::start(chain, ledger, &config.sink)
    }

    /// Starts a sink over an already loaded chain and an open ledger (for embedding, or a
    /// ledger on another store).
    pub fn start(
        chain: Arc<ChainTemplate>,
        ledger: Ledger,
        options: &SinkOptions,
    ) -> Result<Self, OpenError> {
        options.validate()?;
        let ledger = Arc::new(ledger);
        let settings = PipelineSettings {
            workers: options.worker_count(),
            batch_events: options.batch_events,
            batch_wait: Duration::from_micros(options.batch_wait_us),
            queue_capacity: options.queue_capacity,
            tenant_instances: options.tenant_instances,
        };
        let commit_times = Arc::new(stats::CommitTimes::default());
        let (queue, threads) = pipeline::start(
            chain.clone(),
            ledger.clone(),
            commit_times.clone(),
            &settings,
        )?;
        Ok(Self {
            shared: Arc::new(Shared {
                queue,
                closed: AtomicBool::new(false),
                threads: Mutex::new(threads),
                ledger,
                chain,
                max_emit_events: options.max_emit_events,
                commit_times,
            }),
            emit_timeout: options.emit_timeout_ms.map(Duration::from_millis),
        })
    }

    /// A handle to the same sink whose emits wait at most `timeout` for room in a full
    /// queue (`None`: as long as it takes), then fail with [`EmitError::Unavailable`].
    pub fn with_emit_timeout(&self, timeout: Option<Duration>) -> Self {
        Self {
            shared: self.shared.clone(),
            emit_timeout: timeout,
        }
    }

    /// Records one event; returns once it is durable.
    pub fn emit(&self, event: AuditEvent) -> Result<Receipt, EmitError> {
        let mut receipts = self.emit_batch(vec![event])?;
        receipts.pop().ok_or_else(pipeline::stopped)
    }

    /// Records a batch atomically: one receipt per event, in order, or none recorded and
    /// the error (a rejection names the plugin and the refused event).
    pub fn emit_batch(&self, events: Vec<AuditEvent>) -> Result<Vec<Receipt>, EmitError> {
        self.submit(events)?.wait()
    }

    /// Records an intent status change as an `intent.status-changed` event: `envelope`
    /// with its kind, subject (the intent id) and payload (the change) replaced.
    pub fn emit_status_change(
        &self,
        envelope: AuditEvent,
        change: StatusChange,
    ) -> Result<Receipt, EmitError> {
        self.emit(change.into_event(envelope)?)
    }

    /// Records a batch atomically (as [`Sink::emit_batch`]) under an idempotency key: the
    /// first emit with `key` in `scope` records the events; a retry of the same events with
    /// the same key — after a lost answer, a timeout, or a restart of either side — gets
    /// the first emit's receipts and records nothing. The same key with other events is
    /// an [`EmitError::InvalidEvent`]. Keys are durable, written with the entries.
    pub fn emit_batch_idempotent(
        &self,
        scope: &str,
        key: &str,
        events: Vec<AuditEvent>,
    ) -> Result<Vec<Receipt>, EmitError> {
        self.submit_idempotent(scope, key, events)?.wait()
    }

    /// Queues a batch (atomic, as in [`Sink::emit_batch`]) without waiting for it to be
    /// recorded, so one thread can keep many emits in flight. Fails at once on an invalid
    /// event, a closed sink, or a queue that stayed full past the timeout.
    pub fn submit(&self, events: Vec<AuditEvent>) -> Result<Ticket, EmitError> {
        self.enqueue(events, None)
    }

    /// [`Sink::submit`] under an idempotency key (see [`Sink::emit_batch_idempotent`]).
    pub fn submit_idempotent(
        &self,
        scope: &str,
        key: &str,
        events: Vec<AuditEvent>,
    ) -> Result<Ticket, EmitError> {
        let digest = serde_json::to_vec(&events)
            .map(|bytes| Hash(Sha256::digest(&bytes).into()))
            .map_err(|e| EmitError::InvalidEvent(format!("cannot encode the events: {e}")))?;
        let key = IdempotencyKey {
            scope: scope.to_string(),
            key: key.to_string(),
            digest,
        };
        key.validate().map_err(EmitError::InvalidEvent)?;
        self.enqueue(events, Some(key))
    }

    fn enqueue(
        &self,
        events: Vec<AuditEvent>,
        key: Option<IdempotencyKey>,
    ) -> Result<Ticket, EmitError> {
        self.check(&events)?;
        if events.is_empty() {
            return Ok(Ticket(TicketState::Done(Ok(Vec::new()))));
        }
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let (reply, answer) = crossbeam_channel::bounded(1);
        let message = Message::Emit(Request { events, key, reply });
        let sent = match self.emit_timeout {
            None => self.shared.queue.send(message).map_err(|_| closed()),
            Some(timeout) => self.shared.queue.send_timeout(message, timeout).map_err(|e| match e {
                SendTimeoutError::Timeout(_) => EmitError::Unavailable(format!(
                    "the sink's queue stayed full for {timeout:?}; nothing was recorded, retry later"
                )),
                SendTimeoutError::Disconnected(_) => closed(),
            }),
        };
        sent.map(|()| Ticket(TicketState::Queued(answer)))
    }

    /// Checks every event of an emit before anything is queued.
    fn check(&self, events: &[AuditEvent]) -> Result<(), EmitError> {
        if events.len() > self.shared.max_emit_events {
            return Err(EmitError::InvalidEvent(format!(
                "a batch of {} events is larger than the sink's max-emit-events ({})",
                events.len(),
                self.shared.max_emit_events
            )));
        }
        for (i, event) in events.iter().enumerate() {
            event.validate().map_err(|e| match events.len() {
                1 => EmitError::from(e),
                _ => EmitError::InvalidEvent(format!("event #{} (`{}`): {e}", i + 1, event.id)),
            })?;
        }
        Ok(())
    }

    /// Whether the sink has been closed (every emit now fails with `Unavailable`).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// The ledger, for reading: query, prove, checkpoints.
    pub fn ledger(&self) -> &Ledger {
        &self.shared.ledger
    }

    /// The sink's queue depth and commit latencies, for metrics.
    pub fn stats(&self) -> SinkStats {
        SinkStats {
            queue_depth: self.shared.queue.len(),
            commit_latency: self.shared.commit_times.snapshot(),
        }
    }

    /// The chain every event goes through.
    pub fn chain(&self) -> &Arc<ChainTemplate> {
        &self.shared.chain
    }

    /// Stops accepting emits, finishes every emit already queued, then signs a checkpoint
    /// of the final tree and returns it. Emits on any clone fail with `Unavailable`
    /// afterwards. Calling it again only signs another checkpoint.
    pub fn close(&self) -> Result<String, LedgerError> {
        self.shared.shut_down();
        self.shared.ledger.checkpoint()
    }
}

impl Shared {
    /// Closes the queue and waits for every stage to finish its work.
    fn shut_down(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let _ = self.queue.send(Message::Close);
        }
        let threads = match self.threads.lock() {
            Ok(mut threads) => std::mem::take(&mut *threads),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.shut_down();
        if let Err(e) = self.ledger.checkpoint() {
            tracing::error!("the final checkpoint of the closing sink failed: {e}");
        }
    }
}

fn closed() -> EmitError {
    EmitError::Unavailable("the sink is closed; nothing was recorded".into())
}
