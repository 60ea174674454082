//! The writer thread and its group commit: requests queued while a commit runs form the next
//! group, which is committed in one durable transaction; each caller is answered only after
//! the commit holding its records.
//!
//! Each group is planned under the store's append lock ([`StoreWriter::begin_append`]): the
//! size, the tree's right edge and the idempotency keys are read inside the transaction, so
//! other processes appending to the same ledger (SQLite) or from other hosts (PostgreSQL)
//! interleave without gaps. Nothing is carried from one group to the next but the key and
//! the counters for automatic checkpoints, so an I/O error fails only its group: the next
//! one re-checks the stored tree (as opening does) and carries on.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::time::Instant;

use jiff::Timestamp;
use tlog_tiles::tlog;

use super::hash::Hash;

use super::checkpoint::CheckpointSigner;
use super::entry::{Entry, Receipt, Record};
use super::idempotency::{IdempotencyKey, Replay, StoredKey};
use super::merkle::{self, ConsistencyProof, StoreHashes};
use super::store::{StoreError, StoreWriter};
use super::witness::WitnessError;
use super::{LedgerError, LedgerOptions, check_on_open};

/// A message to the writer thread.
pub(crate) enum Message {
    /// Append records atomically; the reply carries one receipt per record.
    Append(Append, SyncSender<Result<Vec<Receipt>, LedgerError>>),
    /// Sign a checkpoint of the current tree now; the reply names the witnesses that did
    /// not cosign it.
    Checkpoint(CheckpointReply),
}

/// State owned by the writer thread.
pub(crate) struct Writer {
    pub(crate) store: Box<dyn StoreWriter>,
    pub(crate) signer: CheckpointSigner,
    /// The verifier key, for re-checks after an error.
    pub(crate) vkey: String,
    pub(crate) options: LedgerOptions,
    /// The tree size after this writer's latest commit (other writers may have added more).
    pub(crate) size: u64,
    pub(crate) checkpointed_size: u64,
    pub(crate) checkpointed_at: Instant,
    /// The last I/O error, until a re-check of the store has passed.
    pub(crate) recheck: Option<String>,
    /// The size each of `options.witnesses` holds, as far as this writer knows (0: unknown).
    pub(crate) witnessed: Vec<u64>,
}

/// A group's planned rows and how each request is answered.
struct Plan {
    entries: Vec<(Entry, Hash)>,
    hashes: Vec<(u64, Hash)>,
    keys: Vec<StoredKey>,
    answers: Vec<Answer>,
}

/// One atomic append: its records and, optionally, the idempotency key it claims.
pub(crate) struct Append {
    pub(crate) records: Vec<Record>,
    pub(crate) key: Option<IdempotencyKey>,
}

/// Where the answer to [`Message::Checkpoint`] goes.
pub(crate) type CheckpointReply = SyncSender<Result<(String, Vec<WitnessError>), LedgerError>>;

type AppendRequest = (Append, SyncSender<Result<Vec<Receipt>, LedgerError>>);

/// How one request of a group is answered.
enum Answer {
    /// Its records are in this commit, at `start..start + count` of the group's entries.
    New { start: usize, count: usize },
    /// Already decided (a replayed key, a conflict, a failed key look-up).
    Now(Result<Vec<Receipt>, LedgerError>),
}

impl Writer {
    /// Serves messages until every sender is gone, then signs a checkpoint of what it
    /// appended since the last one.
    pub(crate) fn run(mut self, rx: Receiver<Message>) {
        while let Ok(message) = rx.recv() {
            let mut deferred = Vec::new();
            match message {
                Message::Checkpoint(reply) => deferred.push(reply),
                Message::Append(append, reply) => {
                    let group = self.gather((append, reply), &rx, &mut deferred);
                    self.commit(group);
                }
            }
            for reply in deferred {
                let _ = reply.send(self.checkpoint());
            }
            self.maybe_checkpoint();
        }
        // Closed cleanly: no unsigned tail is left behind.
        if self.size > self.checkpointed_size
            && self.recheck.is_none()
            && let Err(e) = self.checkpoint()
        {
            tracing::error!("the closing checkpoint failed: {e}");
        }
    }

    /// Collects queued appends into one group, up to the size and wait limits.
    fn gather(
        &self,
        first: AppendRequest,
        rx: &Receiver<Message>,
        deferred: &mut Vec<CheckpointReply>,
    ) -> Vec<AppendRequest> {
        let mut events = first.0.records.len();
        let mut group = vec![first];
        let deadline = Instant::now() + self.options.group_wait;
        while events < self.options.max_group_events {
            let next = match self.options.group_wait.is_zero() {
                true => rx.try_recv().map_err(|e| matches!(e, TryRecvError::Empty)),
                false => rx
                    .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    .map_err(|e| matches!(e, RecvTimeoutError::Timeout)),
            };
            match next {
                Ok(Message::Append(append, reply)) => {
                    events += append.records.len();
                    group.push((append, reply));
                }
                Ok(Message::Checkpoint(reply)) => deferred.push(reply),
                Err(_) => break,
            }
        }
        group
    }

    /// Commits one group and answers its callers. A request whose key was used before is
    /// answered from the stored key (the same request) or refused (another request); the
    /// keys of the new requests are stored in the same transaction as their entries.
    fn commit(&mut self, group: Vec<AppendRequest>) {
        let (requests, replies): (Vec<Append>, Vec<_>) = group.into_iter().unzip();
        match self.append_group(requests) {
            Ok(Plan {
                entries, answers, ..
            }) => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let answer = match answer {
                        Answer::Now(answer) => answer,
                        Answer::New { start, count } => Ok(entries[start..start + count]
                            .iter()
                            .map(|(e, _)| e.receipt())
                            .collect()),
                    };
                    let _ = reply.send(answer);
                }
            }
            Err(error) => {
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }

    /// Plans and commits one group under the store's append lock.
    fn append_group(&mut self, requests: Vec<Append>) -> Result<Plan, LedgerError> {
        if self.recheck.is_some() {
            self.recheck_store()?;
        }
        if let Err(e) = self.store.begin_append() {
            return Err(self.fail(e));
        }
        let result = self.plan(requests).and_then(|plan| {
            if plan.entries.is_empty() {
                self.store.abort_append();
            } else {
                self.store.append(&plan.entries, &plan.hashes, &plan.keys)?;
            }
            Ok(plan)
        });
        match result {
            Ok(plan) => {
                if let Some((last, _)) = plan.entries.last() {
                    self.size = last.seq + 1;
                }
                Ok(plan)
            }
            Err(e) => {
                self.store.abort_append();
                Err(self.fail(e))
            }
        }
    }

    /// Assigns sequence numbers from the locked store's size, answers replayed keys, and
    /// computes the tree hashes the new entries add.
    fn plan(&self, requests: Vec<Append>) -> Result<Plan, StoreError> {
        let size = self.store.size()?;
        let recorded_at = Timestamp::now();
        let mut plan = Plan {
            entries: Vec::new(),
            hashes: Vec::new(),
            keys: Vec::new(),
            answers: Vec::with_capacity(requests.len()),
        };
        for Append { records, key } in requests {
            if let Some(key) = &key
                && let Some(answer) = self.replay(size, key, &records, &plan.keys)
            {
                plan.answers.push(answer);
                continue;
            }
            let start = plan.entries.len();
            for record in records {
                let seq = size + plan.entries.len() as u64;
                let entry = Entry::new(seq, recorded_at, record);
                let leaf = entry.leaf_hash();
                plan.entries.push((entry, leaf));
            }
            let count = plan.entries.len() - start;
            if let Some(key) = key {
                plan.keys
                    .push(key.stored(size + start as u64, count as u64));
            }
            plan.answers.push(Answer::New { start, count });
        }
        plan.hashes = self.tree_hashes(&plan.entries)?;
        Ok(plan)
    }

    /// After an I/O error: checks the stored tree as opening does before appending again.
    fn recheck_store(&mut self) -> Result<(), LedgerError> {
        let size = self.store.size()?;
        check_on_open(self.store.as_ref(), &self.vkey, size).map_err(|e| {
            let reason = format!(
                "{e} (re-checked after an earlier error: {})",
                self.recheck.as_deref().unwrap_or_default()
            );
            LedgerError::Unavailable(reason)
        })?;
        tracing::info!("the ledger re-check passed after an I/O error; appending again");
        self.recheck = None;
        self.size = size;
        Ok(())
    }

    /// The answer to a request whose key was already used, in the store or earlier in this
    /// group; `None` when the key is new.
    fn replay(
        &self,
        size: u64,
        key: &IdempotencyKey,
        records: &[Record],
        pending_keys: &[StoredKey],
    ) -> Option<Answer> {
        let same_key = |k: &&StoredKey| k.scope == key.scope && k.key == key.key;
        if let Some(pending) = pending_keys.iter().find(same_key) {
            // Claimed earlier in this group: the same request shares the first one's fate
            // (its receipts if this commit succeeds, its error if it fails).
            return Some(match pending.digest == key.digest {
                true => Answer::New {
                    start: (pending.first_seq - size) as usize,
                    count: pending.count as usize,
                },
                false => Answer::Now(Err(LedgerError::KeyReused(pending.conflict()))),
            });
        }
        let ids: Vec<&str> = records.iter().map(|r| r.event.id.as_str()).collect();
        let result = match self.store.idempotency_key(&key.scope, &key.key) {
            Ok(None) => return None,
            Ok(Some(stored)) => stored.replay(
                key,
                |from, to| {
                    let found = self.store.entries(from, to.min(size))?;
                    Ok(found.into_iter().map(|(e, _)| e).collect())
                },
                &ids,
            ),
            Err(e) => Err(e),
        };
        Some(Answer::Now(match result {
            Ok(Replay::Same(receipts)) => Ok(receipts),
            Ok(Replay::Conflict(message)) => Err(LedgerError::KeyReused(message)),
            Err(e) => Err(LedgerError::from(e)),
        }))
    }

    /// The stored tree hashes the new entries add.
    fn tree_hashes(&self, entries: &[(Entry, Hash)]) -> Result<Vec<(u64, Hash)>, StoreError> {
        let reader = StoreHashes::caching(self.store.as_ref());
        let mut added = Vec::new();
        for (entry, leaf) in entries {
            let hashes = tlog::stored_hashes_for_record_hash(entry.seq, (*leaf).into(), &reader)
                .map_err(|e| reader.error(e))?;
            let start = tlog::stored_hash_index(0, entry.seq);
            for (i, hash) in hashes.into_iter().enumerate() {
                let hash = Hash::from(hash);
                reader.remember(start + i as u64, hash);
                added.push((start + i as u64, hash));
            }
        }
        Ok(added)
    }

    /// Classifies a store error. Anything but a clean "full" may have left the store in
    /// an unknown state (a lost connection, a failed sync): the next append re-checks it.
    fn fail(&mut self, error: StoreError) -> LedgerError {
        match error {
            StoreError::Full(message) => LedgerError::Full(message),
            other => {
                let reason = format!(
                    "{other}; nothing of this append was acknowledged (the next append \
                     re-checks the stored tree first)"
                );
                tracing::error!("{reason}");
                self.recheck = Some(other.to_string());
                LedgerError::Unavailable(reason)
            }
        }
    }

    /// Signs and stores a checkpoint of the tree as stored now (which may include other
    /// writers' entries; the tree of a size never changes, so any writer may sign it).
    fn checkpoint(&mut self) -> Result<(String, Vec<WitnessError>), LedgerError> {
        if self.recheck.is_some() {
            self.recheck_store()?;
        }
        let result = self.store.size().and_then(|size| {
            // A tree of this size signed before (by this or another writer) keeps its note.
            if let Some(note) = self.store.checkpoint(size)? {
                return Ok((size, note));
            }
            let root = merkle::root(self.store.as_ref(), size)?;
            let note = self
                .signer
                .sign(size, root, Timestamp::now())
                .map_err(StoreError::Io)?;
            self.store.put_checkpoint(size, &note)?;
            // Another writer may have stored its note of this size first; that one counts.
            let note = self.store.checkpoint(size)?.unwrap_or(note);
            Ok((size, note))
        });
        match result {
            Ok((size, note)) => {
                self.size = self.size.max(size);
                self.checkpointed_size = size;
                self.checkpointed_at = Instant::now();
                for publisher in &self.options.publishers {
                    if let Err(e) = publisher.publish(size, &note) {
                        tracing::error!("checkpoint {size} stored but not published: {e}");
                    }
                }
                let failed = self.cosign(size, &note);
                Ok((note, failed))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Asks each witness to cosign the checkpoint of `size` and stores the cosignatures.
    /// A failure is logged, returned, and leaves the checkpoint as it is.
    fn cosign(&mut self, size: u64, note: &str) -> Vec<WitnessError> {
        let mut failed = Vec::new();
        for (witness, seen) in self.options.witnesses.iter().zip(&mut self.witnessed) {
            let store = self.store.as_ref();
            let mut prove = |old| {
                ConsistencyProof::build(store, old, size)
                    .map(|proof| proof.path)
                    .map_err(LedgerError::from)
            };
            match witness.cosign(note, size, *seen, &mut prove) {
                Ok((line, held)) => {
                    *seen = held;
                    if let Err(e) = self.store.put_cosignature(size, &witness.key().id(), &line) {
                        tracing::error!("checkpoint {size}: storing its cosignature: {e}");
                    }
                }
                Err(e) => {
                    tracing::error!("checkpoint {size} not cosigned: {e}");
                    failed.push(e);
                }
            }
        }
        failed
    }

    /// Checkpoints when enough entries or time have passed since the last one.
    fn maybe_checkpoint(&mut self) {
        let new_entries = self.size - self.checkpointed_size;
        let due = new_entries >= self.options.checkpoint_every_entries
            || (new_entries > 0
                && self.checkpointed_at.elapsed() >= self.options.checkpoint_interval);
        if due
            && self.recheck.is_none()
            && let Err(e) = self.checkpoint()
        {
            tracing::error!("automatic checkpoint failed: {e}");
        }
    }
}
