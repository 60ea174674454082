//! Checkpoint side effects, off the writer thread: asking witnesses to cosign a signed
//! checkpoint, then publishing it (to `publish-dir` and `publish-command`, see
//! [`super::publish`]) once its cosignatures meet the witness policy (see
//! [`super::witness_policy`]).
//!
//! The writer signs and stores a checkpoint and hands it here without waiting, so appends
//! never wait on a witness or a publisher. Every call has a deadline: a witness request
//! [`witness::REQUEST_TIMEOUT`], a publisher [`PUBLISH_TIMEOUT`] (a command still running
//! then is killed). Witnesses are asked in parallel, and so are publishers. A failure is
//! logged and counted ([`EffectCounts`]); nothing is retried in a loop, the next
//! checkpoint asks and publishes again. When checkpoints come faster than their side
//! effects finish, only the newest waiting one is handled: a cosignature or a published
//! note of a larger tree vouches for every smaller one. Closing the ledger waits for what
//! was handed over, so the newest checkpoint is always handled.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::merkle::ConsistencyProof;
use super::publish::Publisher;
use super::store::{Location, StoreWriter};
use super::timestamp::{self, TimestampAuthority};
use super::witness::{self, Added, Witness, WitnessError};
use super::witness_policy::WitnessPolicy;
use super::{LedgerError, LedgerOptions};

/// How long one publisher may take before it counts as failed (and a command is killed).
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// Counts of side effects since the ledger opened, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EffectCounts {
    /// Checkpoints handed to every publisher (each publisher's failures apart).
    pub published: u64,
    /// Publisher calls that failed or passed their deadline.
    pub publish_failures: u64,
    /// Cosignatures collected and stored.
    pub cosignatures: u64,
    /// Witness requests that failed, were refused or passed their deadline.
    pub cosign_failures: u64,
    /// Checkpoints not published because their cosignatures missed the quorum.
    pub quorum_missed: u64,
    /// Checkpoints skipped because a newer one was waiting too.
    pub superseded: u64,
    /// RFC 3161 tokens collected and stored.
    pub timestamps: u64,
    /// Timestamp requests that failed or passed their deadline.
    pub timestamp_failures: u64,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    publish_failures: AtomicU64,
    cosignatures: AtomicU64,
    cosign_failures: AtomicU64,
    quorum_missed: AtomicU64,
    superseded: AtomicU64,
    timestamps: AtomicU64,
    timestamp_failures: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> EffectCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EffectCounts {
            published: get(&self.published),
            publish_failures: get(&self.publish_failures),
            cosignatures: get(&self.cosignatures),
            cosign_failures: get(&self.cosign_failures),
            quorum_missed: get(&self.quorum_missed),
            superseded: get(&self.superseded),
            timestamps: get(&self.timestamps),
            timestamp_failures: get(&self.timestamp_failures),
        }
    }
}

/// A signed checkpoint whose side effects are due; `reply`, when set, gets the witnesses
/// that did not cosign it.
struct Job {
    size: u64,
    note: String,
    reply: Option<SyncSender<Vec<WitnessError>>>,
}

/// What waits for the side-effect thread: checkpoints someone waits for, in order, and
/// the newest automatic one (a newer one replaces it).
#[derive(Default)]
struct Pending {
    waited: VecDeque<Job>,
    newest: Option<Job>,
    closed: bool,
}

/// The hand-over between the writer (and callers) and the side-effect thread.
#[derive(Default)]
struct Queue {
    pending: Mutex<Pending>,
    ready: Condvar,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic on the side-effect thread poisons nothing that matters here.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next job, waiting for one; `None` once closed and empty.
    fn next(&self) -> Option<Job> {
        let mut pending = self.lock();
        loop {
            if let Some(job) = pending.waited.pop_front() {
                return Some(job);
            }
            if let Some(job) = pending.newest.take() {
                return Some(job);
            }
            if pending.closed {
                return None;
            }
            pending = self.ready.wait(pending).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// The side-effect thread, owned by the ledger. Dropping it waits for the checkpoints
/// handed to it (each call bounded by its deadline).
pub(crate) struct SideEffects {
    submitter: Submitter,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

/// Hands checkpoints to the side-effect thread; the writer holds one. `None`: there are
/// no side effects to run.
#[derive(Clone)]
pub(crate) struct Submitter(Option<(Arc<Queue>, Arc<Counters>)>);

impl SideEffects {
    /// Starts the thread, unless there is nothing to do (no publisher and no witness).
    pub(crate) fn start(location: &Location, options: &LedgerOptions) -> Result<Self, LedgerError> {
        let counters = Arc::new(Counters::default());
        if options.publishers.is_empty()
            && options.witnesses.is_empty()
            && options.timestamp.is_none()
        {
            return Ok(Self {
                submitter: Submitter(None),
                thread: None,
                counters,
            });
        }
        let queue = Arc::new(Queue::default());
        let worker = Worker {
            location: location.clone(),
            store: None,
            publishers: options.publishers.clone(),
            witnesses: options.witnesses.iter().map(|w| (w.clone(), 0)).collect(),
            policy: options.witness_policy.clone(),
            timestamp: options.timestamp.clone(),
            counters: counters.clone(),
            published: None,
        };
        let jobs = queue.clone();
        let thread = std::thread::Builder::new()
            .name("vellum-checkpoint-effects".into())
            .spawn(move || worker.run(&jobs))
            .map_err(|e| {
                LedgerError::Unavailable(format!("cannot start the side-effect thread: {e}"))
            })?;
        Ok(Self {
            submitter: Submitter(Some((queue, counters.clone()))),
            thread: Some(thread),
            counters,
        })
    }

    /// A handle that hands checkpoints to the thread.
    pub(crate) fn submitter(&self) -> Submitter {
        self.submitter.clone()
    }

    /// The counts so far.
    pub(crate) fn counts(&self) -> EffectCounts {
        self.counters.snapshot()
    }

    /// Handles the checkpoint of `size` now and waits for it: returns the witnesses that
    /// did not cosign it. The writer goes on meanwhile.
    pub(crate) fn run(&self, size: u64, note: &str) -> Vec<WitnessError> {
        let Some((queue, _)) = &self.submitter.0 else {
            return Vec::new();
        };
        let (reply, answer) = mpsc::sync_channel(1);
        {
            let mut pending = queue.lock();
            pending.waited.push_back(Job {
                size,
                note: note.to_string(),
                reply: Some(reply),
            });
        }
        queue.ready.notify_one();
        answer.recv().unwrap_or_else(|_| {
            tracing::error!("checkpoint {size}: the side-effect thread has stopped");
            Vec::new()
        })
    }

    /// Stops taking checkpoints and waits for those handed over already.
    pub(crate) fn close(&mut self) {
        if let Some((queue, _)) = &self.submitter.0 {
            queue.lock().closed = true;
            queue.ready.notify_one();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SideEffects {
    fn drop(&mut self) {
        self.close();
    }
}

impl Submitter {
    /// Hands the checkpoint of `size` over without waiting. One that was waiting still is
    /// replaced: the newer checkpoint vouches for it.
    pub(crate) fn submit(&self, size: u64, note: &str) {
        let Some((queue, counters)) = &self.0 else {
            return;
        };
        let replaced = queue.lock().newest.replace(Job {
            size,
            note: note.to_string(),
            reply: None,
        });
        if replaced.is_some() {
            Counters::add(&counters.superseded, 1);
        }
        queue.ready.notify_one();
    }
}

/// State of the side-effect thread.
struct Worker {
    location: Location,
    /// Its own connection, opened when first needed (for proofs and cosignatures).
    store: Option<Box<dyn StoreWriter>>,
    publishers: Vec<Publisher>,
    /// Each witness with the size it is believed to hold (0: unknown).
    witnesses: Vec<(Witness, u64)>,
    policy: Option<WitnessPolicy>,
    timestamp: Option<TimestampAuthority>,
    counters: Arc<Counters>,
    /// The largest tree size published.
    published: Option<u64>,
}

impl Worker {
    fn run(mut self, queue: &Queue) {
        while let Some(job) = queue.next() {
            let failed = self.handle(job.size, &job.note);
            if let Some(reply) = job.reply {
                let _ = reply.send(failed);
            }
        }
    }

    /// Collects cosignatures and a timestamp (at the same time), then publishes when the
    /// quorum is met.
    fn handle(&mut self, size: u64, note: &str) -> Vec<WitnessError> {
        let stamping = self.timestamp.clone().map(|tsa| {
            let note = note.to_string();
            spawn_call("vellum-timestamp", move || tsa.stamp(&note))
        });
        let (failed, lines) = match self.witnesses.is_empty() {
            true => (Vec::new(), Vec::new()),
            false => self.cosign(size, note),
        };
        let token = stamping.and_then(|call| self.store_timestamp(size, call));
        if let Some(policy) = &self.policy {
            let check = policy.check(note, &lines);
            if !check.met {
                Counters::add(&self.counters.quorum_missed, 1);
                tracing::warn!(
                    "checkpoint {size} not published: its cosignatures miss the witness \
                     quorum {} (missing: {})",
                    policy.describe(),
                    check.missing.join(", ")
                );
                return failed;
            }
        }
        if self.published.is_none_or(|published| size > published) {
            self.publish(size, &format!("{note}{}", lines.concat()), token.as_deref());
        }
        failed
    }

    /// Waits for the timestamp request (within its deadline) and stores the token.
    fn store_timestamp(
        &mut self,
        size: u64,
        call: Result<Receiver<Result<Vec<u8>, String>>, String>,
    ) -> Option<Vec<u8>> {
        let wait = timestamp::REQUEST_TIMEOUT + Duration::from_secs(1);
        let token = call.and_then(|answer| {
            answer
                .recv_timeout(wait)
                .unwrap_or_else(|_| Err(format!("no timestamp within {wait:?}")))
        });
        let stored = token.and_then(|token| {
            let put = self
                .store()
                .and_then(|s| s.put_timestamp(size, &token).map_err(|e| e.to_string()));
            if put.is_err() {
                // Reopened on the next use.
                self.store = None;
            }
            put.map(|()| token)
        });
        match stored {
            Ok(token) => {
                Counters::add(&self.counters.timestamps, 1);
                Some(token)
            }
            Err(e) => {
                Counters::add(&self.counters.timestamp_failures, 1);
                tracing::error!("checkpoint {size} not timestamped: {e}");
                None
            }
        }
    }

    /// The connection for proofs and cosignatures, opened when first needed.
    fn store(&mut self) -> Result<&mut Box<dyn StoreWriter>, String> {
        if self.store.is_none() {
            let store = self
                .location
                .open_writer()
                .map_err(|e| format!("opening {}: {e}", self.location))?;
            self.store = Some(store);
        }
        self.store.as_mut().ok_or_else(|| "no store".to_string())
    }

    /// Asks every witness in parallel (a second round for those that hold another size
    /// than believed); stores each cosignature. Returns the failures and every stored
    /// cosignature line of `size`.
    fn cosign(&mut self, size: u64, note: &str) -> (Vec<WitnessError>, Vec<String>) {
        let mut failed = Vec::new();
        let mut pending: Vec<(usize, u64)> = self
            .witnesses
            .iter()
            .enumerate()
            .map(|(i, (_, seen))| (i, (*seen).min(size)))
            .collect();
        for _round in 0..2 {
            let calls = self.start_calls(size, note, &pending, &mut failed);
            pending = self.collect(size, calls, &mut failed);
            if pending.is_empty() {
                break;
            }
        }
        for (i, held) in pending {
            failed.push(WitnessError::Refused {
                witness: self.witnesses[i].0.url().to_string(),
                reason: format!("it holds another tree of {held} entries than this ledger"),
            });
        }
        Counters::add(&self.counters.cosign_failures, failed.len() as u64);
        let lines = match self
            .store()
            .and_then(|s| s.cosignatures(Some(size)).map_err(|e| e.to_string()))
        {
            Ok(lines) => lines.into_iter().map(|(_, line)| line).collect(),
            Err(e) => {
                tracing::error!("checkpoint {size}: reading its cosignatures: {e}");
                self.store = None;
                Vec::new()
            }
        };
        (failed, lines)
    }

    /// Starts one request per pending witness, each from the size it holds, on a thread of
    /// its own.
    fn start_calls(
        &mut self,
        size: u64,
        note: &str,
        pending: &[(usize, u64)],
        failed: &mut Vec<WitnessError>,
    ) -> Vec<(usize, Receiver<Result<Added, WitnessError>>)> {
        let mut calls = Vec::new();
        for &(i, old) in pending {
            let witness = self.witnesses[i].0.clone();
            let proof = match old {
                0 => Ok(Vec::new()),
                old => self.store().and_then(|store| {
                    ConsistencyProof::build(store.as_ref(), old, size)
                        .map(|p| p.path)
                        .map_err(|e| e.to_string())
                }),
            };
            let proof = match proof {
                Ok(proof) => proof,
                Err(e) => {
                    self.store = None;
                    failed.push(witness.failed(format!("building the proof from {old}: {e}")));
                    continue;
                }
            };
            let note = note.to_string();
            let call = move || witness.add_checkpoint(&note, size, old, &proof);
            match spawn_call("vellum-witness", call) {
                Ok(answer) => calls.push((i, answer)),
                Err(e) => failed.push(self.witnesses[i].0.failed(e)),
            }
        }
        calls
    }

    /// Waits for the requests until their deadline; stores cosignatures. Returns the
    /// witnesses to ask again, with the size each holds.
    fn collect(
        &mut self,
        size: u64,
        calls: Vec<(usize, Receiver<Result<Added, WitnessError>>)>,
        failed: &mut Vec<WitnessError>,
    ) -> Vec<(usize, u64)> {
        // The agent's own timeout ends each request; this bound only guards against a
        // call that never returns.
        let deadline = Instant::now() + witness::REQUEST_TIMEOUT + Duration::from_secs(1);
        let mut again = Vec::new();
        for (i, answer) in calls {
            let wait = deadline.saturating_duration_since(Instant::now());
            let witness = &self.witnesses[i].0;
            match answer.recv_timeout(wait) {
                Ok(Ok(Added::Cosigned(line))) => {
                    self.witnesses[i].1 = size;
                    let id = self.witnesses[i].0.key().id();
                    match self.store().and_then(|s| {
                        s.put_cosignature(size, &id, &line)
                            .map_err(|e| e.to_string())
                    }) {
                        Ok(()) => Counters::add(&self.counters.cosignatures, 1),
                        Err(e) => {
                            tracing::error!(
                                "checkpoint {size}: storing the cosignature of {id}: {e}"
                            );
                            self.store = None;
                        }
                    }
                }
                Ok(Ok(Added::Holds(held))) => again.push((i, held)),
                Ok(Err(e)) => {
                    tracing::error!("checkpoint {size} not cosigned: {e}");
                    failed.push(e);
                }
                Err(_) => {
                    let e = witness.failed(format!("no answer within {wait:?}"));
                    tracing::error!("checkpoint {size} not cosigned: {e}");
                    failed.push(e);
                }
            }
        }
        again
    }

    /// Hands the cosigned note (and its timestamp token) to every publisher in parallel,
    /// each within its deadline.
    fn publish(&mut self, size: u64, note: &str, token: Option<&[u8]>) {
        let mut calls = Vec::new();
        for publisher in &self.publishers {
            let (p, n) = (publisher.clone(), note.to_string());
            let token = token.map(<[u8]>::to_vec);
            let call = move || {
                p.publish(size, &n, PUBLISH_TIMEOUT)?;
                match token {
                    Some(token) => p.publish_timestamp(size, &token),
                    None => Ok(()),
                }
            };
            match spawn_call("vellum-publish", call) {
                Ok(answer) => calls.push((publisher, answer)),
                Err(e) => calls.push((publisher, failed_call(e))),
            }
        }
        let deadline = Instant::now() + PUBLISH_TIMEOUT + Duration::from_secs(1);
        let mut ok = true;
        for (publisher, answer) in calls {
            let wait = deadline.saturating_duration_since(Instant::now());
            let result = answer
                .recv_timeout(wait)
                .unwrap_or_else(|_| Err(format!("no answer within {wait:?}")));
            if let Err(e) = result {
                ok = false;
                Counters::add(&self.counters.publish_failures, 1);
                tracing::error!(
                    "checkpoint {size} stored but not published to {}: {e}",
                    publisher.describe()
                );
            }
        }
        if ok {
            Counters::add(&self.counters.published, 1);
        }
        self.published = self.published.max(Some(size));
    }
}

/// Runs `call` on a thread of its own; its answer arrives on the returned channel. A call
/// that outlives its caller's deadline is left to finish on its own.
fn spawn_call<T: Send + 'static>(
    name: &str,
    call: impl FnOnce() -> T + Send + 'static,
) -> Result<Receiver<T>, String> {
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = tx.send(call());
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    Ok(rx)
}

/// A channel already holding the failure `e`.
fn failed_call(e: String) -> Receiver<Result<(), String>> {
    let (tx, rx) = mpsc::sync_channel(1);
    let _ = tx.send(Err(e));
    rx
}
