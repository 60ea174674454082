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

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use jiff::Timestamp;
use tlog_tiles::tlog;

use super::hash::Hash;

use super::checkpoint::CheckpointSigner;
use super::content::KeyId;
use super::entry::{Entry, PreSealed, Receipt, Record};
use super::erasure::{
    ERASURE_KIND, EraseReport, EraseRequest, EraseTarget, ErasureRecord, OnHold, hold_covers,
    ranges,
};
use super::idempotency::{IdempotencyKey, Replay, StoredKey};
use super::keys::ring::KeyRing;
use super::keys::{Hold, KeyScope, KeyStore};
use super::merkle::{self, StoreHashes};
use super::query::Query;
use super::side_effects::Submitter;
use super::store::{StoreError, StoreWriter};
use super::{LedgerError, LedgerOptions, check_on_open};

/// A message to the writer thread.
pub(crate) enum Message {
    /// Append records atomically; the reply carries one receipt per record.
    Append(Append, SyncSender<Result<Vec<Receipt>, LedgerError>>),
    /// Sign a checkpoint of the current tree now; the reply carries its size and note, for
    /// the caller to run its side effects (the writer does not wait for them).
    Checkpoint(CheckpointReply),
    /// Erase content, append the erasure record, destroy the keys and sign a checkpoint.
    Erase(
        Box<EraseRequest>,
        SyncSender<Result<EraseReport, LedgerError>>,
    ),
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
    /// Hands automatic checkpoints to the side-effect thread (witnesses, publishers).
    pub(crate) effects: Submitter,
    /// The data keys, shared with the callers that seal content before sending it.
    pub(crate) ring: Arc<Mutex<KeyRing>>,
}

/// A group's planned rows and how each request is answered.
struct Plan {
    entries: Vec<(Entry, Hash)>,
    hashes: Vec<(u64, Hash)>,
    keys: Vec<StoredKey>,
    answers: Vec<Answer>,
}

/// One atomic append: its records, their content sealed by the caller (one per record),
/// and, optionally, the idempotency key it claims.
pub(crate) struct Append {
    pub(crate) records: Vec<Record>,
    pub(crate) sealed: Vec<PreSealed>,
    pub(crate) key: Option<IdempotencyKey>,
}

/// Where the answer to [`Message::Checkpoint`] goes.
pub(crate) type CheckpointReply = SyncSender<Result<(u64, String), LedgerError>>;

type AppendRequest = (Append, SyncSender<Result<Vec<Receipt>, LedgerError>>);

/// How one request of a group is answered.
enum Answer {
    /// Its records are in this commit, at `start..start + count` of the group's entries.
    New { start: usize, count: usize },
    /// Already decided (a replayed key, a conflict, a failed key look-up).
    Now(Result<Vec<Receipt>, LedgerError>),
}

/// Locks the key ring.
pub(crate) fn lock(ring: &Mutex<KeyRing>) -> Result<MutexGuard<'_, KeyRing>, StoreError> {
    ring.lock()
        .map_err(|_| StoreError::Io("the key ring's lock is poisoned".into()))
}

/// What an erasure removes: data keys to destroy (with every entry sealed under them) and
/// single entries.
struct Targets {
    keys: Vec<KeyId>,
    seqs: BTreeSet<u64>,
}

/// The targets left after the legal holds, how many entries or keys were left alone, and
/// which holds were overridden.
struct Held {
    targets: Targets,
    held: usize,
    overridden: Vec<u64>,
}

/// Whether entry `entry` may be erased on its own: format 2, not an erasure record.
fn erasable(entry: &Entry) -> Result<(), LedgerError> {
    match &entry.stored {
        None => Err(LedgerError::BadRequest(format!(
            "entry {} was written in ledger format 1 (before schema 5): its content is \
             hashed into its leaf, so erasing it would break every proof that covers it. \
             Only entries written since the upgrade can be erased",
            entry.seq
        ))),
        Some(stored) if stored.key.is_none() => Err(LedgerError::BadRequest(format!(
            "entry {} is one of the ledger's own records (kind {}), which are never erased",
            entry.seq, entry.event.kind
        ))),
        Some(_) => Ok(()),
    }
}

impl Writer {
    /// Serves messages until every sender is gone, then signs a checkpoint of what it
    /// appended since the last one.
    pub(crate) fn run(mut self, rx: Receiver<Message>) {
        loop {
            // With unsigned entries, wake up when the interval checkpoint is due even if
            // nothing else arrives.
            let unsigned = self.size > self.checkpointed_size && self.recheck.is_none();
            let message = match unsigned {
                true => {
                    let due = self
                        .options
                        .checkpoint_interval
                        .saturating_sub(self.checkpointed_at.elapsed());
                    match rx.recv_timeout(due) {
                        Ok(message) => Some(message),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                false => match rx.recv() {
                    Ok(message) => Some(message),
                    Err(_) => break,
                },
            };
            if let Some(message) = message {
                self.handle(message, &rx);
            }
            self.maybe_checkpoint();
        }
        // Closed cleanly: no unsigned tail is left behind.
        if self.size > self.checkpointed_size
            && self.recheck.is_none()
            && let Err(e) = self.checkpoint_and_hand_over()
        {
            tracing::error!("the closing checkpoint failed: {e}");
        }
    }

    /// Serves one message: an append with those queued behind it (one group commit), a
    /// checkpoint or an erasure. A checkpoint or erasure that ends a group runs right after
    /// its commit, so everything is served in arrival order.
    fn handle(&mut self, message: Message, rx: &Receiver<Message>) {
        match message {
            Message::Append(append, reply) => {
                let (group, next) = self.gather((append, reply), rx);
                self.commit(group);
                if let Some(next) = next {
                    self.handle(next, rx);
                }
            }
            Message::Checkpoint(reply) => {
                let _ = reply.send(self.checkpoint());
            }
            Message::Erase(request, reply) => {
                let _ = reply.send(self.erase(*request));
            }
        }
    }

    /// Collects queued appends into one group, up to the size and wait limits; a
    /// checkpoint or erasure request ends the group and is returned, to run after it.
    fn gather(
        &self,
        first: AppendRequest,
        rx: &Receiver<Message>,
    ) -> (Vec<AppendRequest>, Option<Message>) {
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
                Ok(other) => return (group, Some(other)),
                Err(_) => break,
            }
        }
        (group, None)
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
    fn plan(&mut self, requests: Vec<Append>) -> Result<Plan, StoreError> {
        let size = self.store.size()?;
        let recorded_at = Timestamp::now();
        let ring = self.ring.clone();
        let mut ring = lock(&ring)?;
        self.refresh_erased(&mut ring)?;
        let mut plan = Plan {
            entries: Vec::new(),
            hashes: Vec::new(),
            keys: Vec::new(),
            answers: Vec::with_capacity(requests.len()),
        };
        for Append {
            records,
            sealed,
            key,
        } in requests
        {
            if let Some(key) = &key
                && let Some(answer) = self.replay(size, key, &records, &plan.keys)
            {
                plan.answers.push(answer);
                continue;
            }
            let start = plan.entries.len();
            for (record, mut sealed) in records.into_iter().zip(sealed) {
                if sealed.key.is_some_and(|k| ring.is_erased(&k)) {
                    // Sealed under a key an erasure destroyed since: seal it again.
                    let scope = ring.scope_of(&record.event);
                    let (id, key) = ring.keys_for(&[scope])?.remove(0);
                    sealed = PreSealed::new(&record.event, Some((id, &key)));
                }
                let seq = size + plan.entries.len() as u64;
                plan.entries
                    .push(Entry::from_sealed(seq, recorded_at, record, sealed));
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

    /// Reads the keys erasure destroyed since the last look (another process may have
    /// erased): the ring stops using them.
    fn refresh_erased(&self, ring: &mut KeyRing) -> Result<(), StoreError> {
        let new = self.store.erased_keys(ring.erased_seen)?;
        if let Some((position, ..)) = new.last() {
            ring.erased_seen = *position;
            ring.forget(new.iter().map(|(_, key, _)| *key));
        }
        Ok(())
    }

    /// Completes erasures whose record was committed but whose keys were not yet destroyed
    /// (a crash between the two): run when the writer starts.
    pub(crate) fn finish_erasures(&mut self) -> Result<(), LedgerError> {
        let ring = self.ring.clone();
        let mut ring = lock(&ring)?;
        self.refresh_erased(&mut ring)?;
        let left = ring.store.existing(&ring.erased())?;
        if !left.is_empty() {
            tracing::warn!(
                "destroying {} data key(s) whose erasure record was committed before a crash",
                left.len()
            );
            ring.store.destroy(&left)?;
        }
        Ok(())
    }

    /// Performs one erasure: under the append lock, removes the content and appends the
    /// `vellum.erasure` record in one transaction; then destroys the keys and signs a
    /// checkpoint covering the record.
    fn erase(&mut self, request: EraseRequest) -> Result<EraseReport, LedgerError> {
        if self.recheck.is_some() {
            self.recheck_store()?;
        }
        let ring = self.ring.clone();
        let mut ring = lock(&ring)?;
        let keystore = ring.store.as_ref();
        let holds = keystore.holds()?;
        let (targets, mut record) = self.erase_targets(keystore, &request)?;
        let Held {
            targets: Targets { keys, seqs },
            held,
            overridden,
        } = self.apply_holds(keystore, &request, &holds, targets)?;
        if keys.is_empty() && seqs.is_empty() {
            return Err(LedgerError::BadRequest(match held {
                0 => format!("nothing to erase for {:?}", request.target),
                n => format!("all {n} entries to erase are under a legal hold"),
            }));
        }
        record.keys = keys.clone();
        record.seqs = ranges(&seqs);
        record.holds_overridden = overridden.clone();
        // Each key's tenant: the store finds a key's entries through the tenant index.
        let keyed = keys
            .iter()
            .map(|k| Ok((*k, keystore.find_by_id(k)?.and_then(|i| i.scope.tenant))))
            .collect::<Result<Vec<_>, StoreError>>()?;
        if let Err(e) = self.store.begin_append() {
            return Err(self.fail(e));
        }
        let seqs: Vec<u64> = seqs.into_iter().collect();
        let committed = self.commit_erasure(&keyed, &seqs, record);
        let (record_seq, erased) = match committed {
            Ok(done) => done,
            Err(e) => {
                self.store.abort_append();
                return Err(self.fail(e));
            }
        };
        self.size = record_seq + 1;
        if std::env::var_os("VELLUM_TEST_CRASH_AFTER_ERASURE_RECORD").is_some() {
            // Test hook: dies as a kill -9 would, between the record and the key shredding.
            std::process::abort();
        }
        ring.forget(keys.iter().copied());
        ring.store.destroy(&keys)?;
        if let Err(e) = self.checkpoint_and_hand_over() {
            tracing::error!("erasure record {record_seq} committed, its checkpoint failed: {e}");
        }
        Ok(EraseReport {
            record_seq,
            entries_erased: erased,
            keys_destroyed: keys.len(),
            held,
            holds_overridden: overridden,
        })
    }

    /// The keys and entries `request` names, and its record without them.
    fn erase_targets(
        &self,
        keystore: &dyn KeyStore,
        request: &EraseRequest,
    ) -> Result<(Targets, ErasureRecord), LedgerError> {
        let mut record = ErasureRecord {
            scope: String::new(),
            tenant: None,
            subject_hash: None,
            reason: request.reason.clone(),
            by: request.by.clone(),
            keys: Vec::new(),
            seqs: Vec::new(),
            entries_erased: 0,
            holds_overridden: Vec::new(),
        };
        let (keys, seqs) = match &request.target {
            EraseTarget::Subject { subject, tenant } => {
                let hash = keystore.subject_hash(subject);
                record.scope = "subject".into();
                record.tenant = tenant.clone();
                record.subject_hash = Some(hash.to_string());
                let found = keystore.find(tenant.as_deref(), Some(&hash))?;
                (found.into_iter().map(|k| k.id).collect(), BTreeSet::new())
            }
            EraseTarget::Tenant(tenant) => {
                record.scope = "tenant".into();
                record.tenant = Some(tenant.clone());
                let found = keystore.find(Some(tenant), None)?;
                (found.into_iter().map(|k| k.id).collect(), BTreeSet::new())
            }
            EraseTarget::Entries(seqs) => {
                record.scope = "entries".into();
                let size = self.store.size()?;
                for &seq in seqs {
                    let entry = match seq < size {
                        true => self.store.entries(seq, seq + 1)?.pop().map(|(e, _)| e),
                        false => None,
                    };
                    let entry = entry.ok_or_else(|| {
                        LedgerError::BadRequest(format!(
                            "entry {seq} does not exist (the ledger has {size})"
                        ))
                    })?;
                    erasable(&entry)?;
                }
                (Vec::new(), seqs.iter().copied().collect())
            }
        };
        Ok((Targets { keys, seqs }, record))
    }

    /// Applies the legal holds: refuses, skips or overrides (per the request) the keys and
    /// entries they cover. Returns what stays to erase, how many entries were left alone
    /// and which holds were overridden.
    fn apply_holds(
        &self,
        keystore: &dyn KeyStore,
        request: &EraseRequest,
        holds: &[Hold],
        targets: Targets,
    ) -> Result<Held, LedgerError> {
        let untouched = |targets| Held {
            targets,
            held: 0,
            overridden: Vec::new(),
        };
        if holds.is_empty() {
            return Ok(untouched(targets));
        }
        let Targets { mut keys, mut seqs } = targets;
        // Each affected entry's tenant, correlation and subject hash, as a hold sees them.
        let scopes: HashMap<KeyId, KeyScope> = self.key_scopes(keystore, &keys, &seqs)?;
        let subject_of = |key: Option<&KeyId>| {
            key.and_then(|k| scopes.get(k))
                .and_then(|s| s.subject.map(|h| h.to_string()))
        };
        let mut hit: BTreeSet<u64> = BTreeSet::new();
        let mut held_keys: HashSet<KeyId> = HashSet::new();
        let mut held_seqs: BTreeSet<u64> = BTreeSet::new();
        for hold in holds {
            let mut covers = false;
            for key in &keys {
                let Some(scope) = scopes.get(key) else {
                    continue;
                };
                let subject = scope.subject.map(|h| h.to_string());
                if hold_covers(
                    &hold.target,
                    scope.tenant.as_deref(),
                    None,
                    subject.as_deref(),
                ) {
                    covers = true;
                    held_keys.insert(*key);
                }
            }
            for &seq in &seqs {
                let entry = self.store.entries(seq, seq + 1)?.pop().map(|(e, _)| e);
                let Some(entry) = entry else { continue };
                let key = entry.stored.as_ref().and_then(|s| s.key);
                let subject = subject_of(key.as_ref());
                let e = &entry.event;
                if hold_covers(
                    &hold.target,
                    e.tenant.as_deref(),
                    e.correlation_id.as_deref(),
                    subject.as_deref(),
                ) {
                    covers = true;
                    held_seqs.insert(seq);
                }
            }
            if let super::keys::HoldTarget::Correlation(correlation) = &hold.target {
                // A run under hold keeps its entries even when their subject is erased.
                for seq in self.entries_of(correlation, &keys)? {
                    covers = true;
                    if request.on_hold == OnHold::Skip {
                        // Skipping a key's held entries would still destroy their key.
                        held_keys.extend(self.key_of(seq)?);
                    }
                }
            }
            if covers {
                hit.insert(hold.id);
            }
        }
        if hit.is_empty() {
            return Ok(untouched(Targets { keys, seqs }));
        }
        match request.on_hold {
            OnHold::Refuse => {
                let names: Vec<String> = holds
                    .iter()
                    .filter(|h| hit.contains(&h.id))
                    .map(|h| format!("hold {} ({}: {})", h.id, h.target, h.reason))
                    .collect();
                Err(LedgerError::Held(format!(
                    "refusing to erase: covered by legal {}; lift it (`vellum hold remove`)                      or erase with --override-hold, which the erasure record names",
                    names.join(", ")
                )))
            }
            OnHold::Override => Ok(Held {
                targets: Targets { keys, seqs },
                held: 0,
                overridden: hit.into_iter().collect(),
            }),
            OnHold::Skip => {
                let held = held_seqs.len() + held_keys.len();
                keys.retain(|k| !held_keys.contains(k));
                seqs.retain(|s| !held_seqs.contains(s));
                Ok(Held {
                    targets: Targets { keys, seqs },
                    held,
                    overridden: Vec::new(),
                })
            }
        }
    }

    /// The scope of each key among `keys` and the keys of `seqs`.
    fn key_scopes(
        &self,
        keystore: &dyn KeyStore,
        keys: &[KeyId],
        seqs: &BTreeSet<u64>,
    ) -> Result<HashMap<KeyId, KeyScope>, LedgerError> {
        let mut wanted: HashSet<KeyId> = keys.iter().copied().collect();
        for &seq in seqs {
            wanted.extend(self.key_of(seq)?);
        }
        let mut scopes = HashMap::new();
        for key in wanted {
            if let Some(info) = keystore.find_by_id(&key)? {
                scopes.insert(key, info.scope);
            }
        }
        Ok(scopes)
    }

    /// Entries of `correlation` sealed under one of `keys`.
    fn entries_of(&self, correlation: &str, keys: &[KeyId]) -> Result<Vec<u64>, LedgerError> {
        let mut found = Vec::new();
        let mut query = Query {
            correlation_id: Some(correlation.to_string()),
            limit: super::query::MAX_LIMIT,
            ..Query::default()
        };
        loop {
            let page = self.store.query(&query)?;
            for entry in &page.entries {
                if entry
                    .stored
                    .as_ref()
                    .and_then(|s| s.key)
                    .is_some_and(|k| keys.contains(&k))
                {
                    found.push(entry.seq);
                }
            }
            match page.entries.last() {
                Some(last) if page.next_cursor.is_some() => query.after_seq = Some(last.seq),
                _ => return Ok(found),
            }
        }
    }

    /// The data key entry `seq` is sealed under.
    fn key_of(&self, seq: u64) -> Result<Option<KeyId>, LedgerError> {
        Ok(self
            .store
            .entries(seq, seq + 1)?
            .pop()
            .and_then(|(e, _)| e.stored.and_then(|s| s.key)))
    }

    /// Within an open append: removes the content and appends the record; commits.
    fn commit_erasure(
        &mut self,
        keys: &[(KeyId, Option<String>)],
        seqs: &[u64],
        mut record: ErasureRecord,
    ) -> Result<(u64, u64), StoreError> {
        let seq = self.store.size()?;
        let erased = self.store.erase(seq, keys, seqs)?;
        record.entries_erased = erased;
        let payload = serde_json::to_string(&record)
            .map_err(|e| StoreError::Io(format!("erasure record: {e}")))?;
        let event = crate::event::AuditEvent {
            id: format!("vellum-erasure-{seq}"),
            occurred_at: Timestamp::now(),
            tenant: None,
            correlation_id: None,
            chain_id: None,
            actor: Some(record.by.clone()),
            kind: ERASURE_KIND.to_string(),
            subject: None,
            payload: crate::event::Payload::from_json(payload)
                .map_err(|e| StoreError::Io(format!("erasure record: {e}")))?,
            labels: Default::default(),
        };
        let sealed = PreSealed::new(&event, None);
        let entries = vec![Entry::from_sealed(
            seq,
            Timestamp::now(),
            Record::unfiltered(event),
            sealed,
        )];
        let hashes = self.tree_hashes(&entries)?;
        self.store.append(&entries, &hashes, &[])?;
        Ok((seq, erased))
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
    /// Its side effects (witnesses, publishers) are the caller's to start.
    fn checkpoint(&mut self) -> Result<(u64, String), LedgerError> {
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
                Ok((size, note))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Signs a checkpoint and hands it to the side-effect thread without waiting.
    fn checkpoint_and_hand_over(&mut self) -> Result<(), LedgerError> {
        let (size, note) = self.checkpoint()?;
        self.effects.submit(size, &note);
        Ok(())
    }

    /// Checkpoints when enough entries or time have passed since the last one.
    fn maybe_checkpoint(&mut self) {
        let new_entries = self.size - self.checkpointed_size;
        let due = new_entries >= self.options.checkpoint_every_entries
            || (new_entries > 0
                && self.checkpointed_at.elapsed() >= self.options.checkpoint_interval);
        if due
            && self.recheck.is_none()
            && let Err(e) = self.checkpoint_and_hand_over()
        {
            tracing::error!("automatic checkpoint failed: {e}");
            // Tried again after another interval, not in a loop.
            self.checkpointed_at = Instant::now();
        }
    }
}
