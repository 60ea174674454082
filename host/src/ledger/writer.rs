//! The single writer thread and its group commit: requests queued while a commit runs form
//! the next group, which is committed in one durable transaction; each caller is answered
//! only after the commit holding its records. Any I/O error poisons the writer: every later
//! append fails until the ledger is reopened (which re-checks the tree).

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::time::Instant;

use jiff::Timestamp;
use tlog_tiles::tlog;

use super::hash::Hash;

use super::checkpoint::CheckpointSigner;
use super::entry::{Entry, Receipt, Record};
use super::idempotency::{IdempotencyKey, Replay, StoredKey};
use super::merkle::{self, StoreHashes};
use super::store::{StoreError, StoreWriter};
use super::{LedgerError, LedgerOptions};

/// A message to the writer thread.
pub(crate) enum Message {
    /// Append records atomically; the reply carries one receipt per record.
    Append(Append, SyncSender<Result<Vec<Receipt>, LedgerError>>),
    /// Sign a checkpoint of the current tree now.
    Checkpoint(SyncSender<Result<String, LedgerError>>),
}

/// State owned by the writer thread.
pub(crate) struct Writer {
    pub(crate) store: Box<dyn StoreWriter>,
    pub(crate) signer: CheckpointSigner,
    pub(crate) options: LedgerOptions,
    pub(crate) size: u64,
    pub(crate) checkpointed_size: u64,
    pub(crate) checkpointed_at: Instant,
    /// Why the writer refuses appends, once an I/O error has happened.
    pub(crate) poisoned: Option<String>,
}

/// One atomic append: its records and, optionally, the idempotency key it claims.
pub(crate) struct Append {
    pub(crate) records: Vec<Record>,
    pub(crate) key: Option<IdempotencyKey>,
}

type AppendRequest = (Append, SyncSender<Result<Vec<Receipt>, LedgerError>>);

/// How one request of a group is answered.
enum Answer {
    /// Its records are in this commit, at `start..start + count` of the group's entries.
    New { start: usize, count: usize },
    /// Already decided (a replayed key, a conflict, a failed key look-up).
    Now(Result<Vec<Receipt>, LedgerError>),
}

impl Writer {
    /// Serves messages until every sender is gone.
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
    }

    /// Collects queued appends into one group, up to the size and wait limits.
    fn gather(
        &self,
        first: AppendRequest,
        rx: &Receiver<Message>,
        deferred: &mut Vec<SyncSender<Result<String, LedgerError>>>,
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
        if let Some(reason) = &self.poisoned {
            for (_, reply) in group {
                let _ = reply.send(Err(LedgerError::Unavailable(reason.clone())));
            }
            return;
        }
        let recorded_at = Timestamp::now();
        let mut entries: Vec<(Entry, Hash)> = Vec::new();
        let mut keys: Vec<StoredKey> = Vec::new();
        let mut answers = Vec::with_capacity(group.len());
        for (Append { records, key }, reply) in group {
            if let Some(key) = &key
                && let Some(answer) = self.replay(key, &records, &keys)
            {
                answers.push((reply, answer));
                continue;
            }
            let start = entries.len();
            for record in records {
                let seq = self.size + entries.len() as u64;
                let entry = Entry::new(seq, recorded_at, record);
                let leaf = entry.leaf_hash();
                entries.push((entry, leaf));
            }
            let count = entries.len() - start;
            if let Some(key) = key {
                keys.push(key.stored(self.size + start as u64, count as u64));
            }
            answers.push((reply, Answer::New { start, count }));
        }
        let result = match entries.is_empty() {
            true => Ok(()),
            false => self
                .tree_hashes(&entries)
                .and_then(|hashes| self.store.append(&entries, &hashes, &keys)),
        };
        let failure = match result {
            Ok(()) => {
                self.size += entries.len() as u64;
                None
            }
            Err(error) => Some(self.fail(error)),
        };
        for (reply, answer) in answers {
            let answer = match (answer, &failure) {
                (Answer::Now(answer), _) => answer,
                (Answer::New { .. }, Some(error)) => Err(error.clone()),
                (Answer::New { start, count }, None) => Ok(entries[start..start + count]
                    .iter()
                    .map(|(e, _)| e.receipt())
                    .collect()),
            };
            let _ = reply.send(answer);
        }
    }

    /// The answer to a request whose key was already used, in the store or earlier in this
    /// group; `None` when the key is new.
    fn replay(
        &self,
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
                    start: (pending.first_seq - self.size) as usize,
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
                    let found = self.store.entries(from, to.min(self.size))?;
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
        let mut pending: HashMap<u64, Hash> = HashMap::new();
        let mut added = Vec::new();
        for (entry, leaf) in entries {
            let reader = StoreHashes::new(self.store.as_ref(), Some(&pending));
            let hashes = tlog::stored_hashes_for_record_hash(entry.seq, (*leaf).into(), &reader)
                .map_err(|e| reader.error(e))?;
            let start = tlog::stored_hash_index(0, entry.seq);
            for (i, hash) in hashes.into_iter().enumerate() {
                let hash = Hash::from(hash);
                pending.insert(start + i as u64, hash);
                added.push((start + i as u64, hash));
            }
        }
        Ok(added)
    }

    /// Classifies a store error; anything but a clean "full" poisons the writer.
    fn fail(&mut self, error: StoreError) -> LedgerError {
        match error {
            StoreError::Full(message) => LedgerError::Full(message),
            other => {
                let reason = format!(
                    "{other}; the ledger refuses appends until it is reopened (reopening \
                     re-checks the tree; run `vellum verify` for a full check)"
                );
                tracing::error!("{reason}");
                self.poisoned = Some(reason.clone());
                LedgerError::Unavailable(reason)
            }
        }
    }

    /// Signs and stores a checkpoint of the current tree.
    fn checkpoint(&mut self) -> Result<String, LedgerError> {
        if let Some(reason) = &self.poisoned {
            return Err(LedgerError::Unavailable(reason.clone()));
        }
        let result = merkle::root(self.store.as_ref(), self.size).and_then(|root| {
            let note = self
                .signer
                .sign(self.size, root, Timestamp::now())
                .map_err(StoreError::Io)?;
            self.store.put_checkpoint(self.size, &note)?;
            Ok(note)
        });
        match result {
            Ok(note) => {
                self.checkpointed_size = self.size;
                self.checkpointed_at = Instant::now();
                Ok(note)
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Checkpoints when enough entries or time have passed since the last one.
    fn maybe_checkpoint(&mut self) {
        let new_entries = self.size - self.checkpointed_size;
        let due = new_entries >= self.options.checkpoint_every_entries
            || (new_entries > 0
                && self.checkpointed_at.elapsed() >= self.options.checkpoint_interval);
        if due
            && self.poisoned.is_none()
            && let Err(e) = self.checkpoint()
        {
            tracing::error!("automatic checkpoint failed: {e}");
        }
    }
}
