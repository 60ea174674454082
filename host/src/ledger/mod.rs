//! The ledger: durable, append-only, tamper-evident and queryable.
//!
//! - Durable: an append returns only after the transaction holding it is on stable storage
//!   (SQLite WAL, `synchronous=FULL`); appends are group-committed by one writer thread.
//! - Append-only: the storage API has no update or delete path.
//! - Tamper-evident: every entry's leaf hash covers a canonical encoding of all its fields;
//!   the leaves form an RFC 9162 Merkle tree whose roots are signed as C2SP checkpoints.
//!   Inclusion and consistency proofs verify with only the proof, the checkpoint and the
//!   public key.
//! - Queryable: by tenant, time range, kinds, correlation id, chain id and actor.

pub mod bundle;
pub mod checkpoint;
pub mod content;
pub mod cosignature;
pub mod entry;
pub mod erasure;
mod hash;
pub mod idempotency;
pub mod keys;
pub mod merkle;
pub mod publish;
pub mod query;
pub mod side_effects;
pub mod store;
pub mod tiles;
pub mod timestamp;
pub mod tlog_proof;
pub mod verify;
pub mod witness;
pub mod witness_policy;
mod writer;

use std::path::Path;
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use hash::Hash;

use checkpoint::{CheckpointSigner, VerifiedCheckpoint, verify_checkpoint};
use entry::{Receipt, Record};
use idempotency::IdempotencyKey;
use keys::ring::KeyRing;
use merkle::{ConsistencyProof, InclusionProof};
use query::{Page, Query};
use store::postgres::Migration;
use store::{Location, StoreError, StoreReader, StoreWriter};
use writer::{Append, Message, Writer};

/// Why a ledger operation failed. Nothing was acknowledged in any case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The storage is full; nothing of this append was recorded and earlier entries are
    /// intact. Appends may succeed again once space is freed.
    #[error("ledger full: {0}")]
    Full(String),
    /// The ledger could not record this (an I/O error, a lost database connection, another
    /// process holding the write lock too long); nothing of it was acknowledged. Later
    /// appends re-check the stored tree and may succeed.
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    /// The file is not a usable ledger, or a check failed while opening it.
    #[error("{0}")]
    Invalid(String),
    /// A request was malformed (for example a query limit out of range).
    #[error("invalid request: {0}")]
    BadRequest(String),
    /// An idempotency key was already used for a different request; nothing was recorded.
    #[error("{0}")]
    KeyReused(String),
    /// An erasure was refused because a legal hold covers what it would erase.
    #[error("{0}")]
    Held(String),
}

impl From<StoreError> for LedgerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Full(m) => Self::Full(m),
            StoreError::Io(m) => Self::Unavailable(m),
            StoreError::Invalid(m) => Self::Invalid(m),
        }
    }
}

/// One append of records whose content is sealed, with the idempotency key it claims.
pub(crate) type SealedRequest = (Vec<Record>, Vec<entry::PreSealed>, Option<IdempotencyKey>);

/// Entries erased per retention record.
const RETENTION_BATCH: usize = 10_000;

/// What a legal hold protects, as an operator names it (a subject in plain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldRequest {
    /// A tenant.
    Tenant(String),
    /// A data subject.
    Subject(String),
    /// A correlation id (one run).
    Correlation(String),
}

/// Tuning of group commit and automatic checkpoints, and where checkpoints are published.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    /// Most events committed in one transaction.
    pub max_group_events: usize,
    /// How long the writer waits for more requests before committing a group. Zero (the
    /// default) commits what is queued at once; requests that arrive during a commit form
    /// the next group, so groups grow with load without adding latency.
    pub group_wait: Duration,
    /// Sign a checkpoint after this many new entries.
    pub checkpoint_every_entries: u64,
    /// Sign a checkpoint when there are new entries and this much time has passed.
    pub checkpoint_interval: Duration,
    /// Where each signed checkpoint also goes (see [`publish`]).
    pub publishers: Vec<publish::Publisher>,
    /// Witnesses asked to cosign each checkpoint (see [`witness`]); their cosignatures are
    /// stored beside it. A witness that fails is logged; the checkpoint stands.
    pub witnesses: Vec<witness::Witness>,
    /// The cosignatures a checkpoint needs before it is published (see
    /// [`witness_policy`]); `None` publishes each checkpoint once its witnesses answered.
    pub witness_policy: Option<witness_policy::WitnessPolicy>,
    /// An RFC 3161 timestamp authority asked to timestamp each checkpoint (see
    /// [`timestamp`]); its tokens are stored beside the checkpoints.
    pub timestamp: Option<timestamp::TimestampAuthority>,
    /// Which field names an event's data subject, whose data key seals its content (see
    /// [`erasure::SubjectField`]).
    pub subject_field: erasure::SubjectField,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        Self {
            max_group_events: 1_000,
            group_wait: Duration::ZERO,
            checkpoint_every_entries: 10_000,
            checkpoint_interval: Duration::from_secs(60),
            publishers: Vec::new(),
            witnesses: Vec::new(),
            witness_policy: None,
            timestamp: None,
            subject_field: erasure::SubjectField::default(),
        }
    }
}

/// An open ledger: appends go through the writer thread, reads through their own
/// connection.
pub struct Ledger {
    location: Location,
    reader: Mutex<Box<dyn StoreReader>>,
    /// The data keys content is sealed with (`None`: open for reading only).
    ring: Option<Arc<Mutex<KeyRing>>>,
    sender: Option<SyncSender<Message>>,
    thread: Option<JoinHandle<()>>,
    /// Witnesses and publishers, on a thread of their own (`None`: read-only).
    effects: Option<side_effects::SideEffects>,
    /// The quorum a checkpoint needs to count as published.
    policy: Option<witness_policy::WitnessPolicy>,
    vkey: String,
}

impl Ledger {
    /// Creates a new ledger and its key pair (the signing key with mode 0600); returns the
    /// verifier (public) key. The store is created before the key files are written, and a
    /// failed key write removes a new ledger file again, so a failed `init` can be retried.
    /// On PostgreSQL, a ledger of an older schema is migrated instead (its keys must exist).
    pub fn init(location: impl Into<Location>, origin: &str) -> Result<String, LedgerError> {
        let location = location.into();
        if location.signing_key_command().is_some() {
            return Err(LedgerError::BadRequest(
                "`init` writes a new key pair to files: give a signing key file, then keep the \
                 key where the signing-key command reads it"
                    .into(),
            ));
        }
        let secret = location.signing_key()?;
        let public = location.verifier_key()?;
        if location.file().is_some_and(Path::exists) || secret.exists() {
            return Err(LedgerError::BadRequest(format!(
                "{location} or its signing key {} already exists; refusing to overwrite",
                secret.display()
            )));
        }
        let keys = checkpoint::generate_keys(origin)?;
        match location.create(origin)? {
            Migration::Created => {}
            Migration::Upgraded { from, to } => {
                tracing::info!("{location}: schema upgraded from version {from} to {to}");
                return read_vkey(&location);
            }
        }
        if let Err(e) = checkpoint::write_keys(&secret, &public, (&keys.0, &keys.1)) {
            let _ = std::fs::remove_file(&secret);
            if let Some(file) = location.file() {
                let _ = std::fs::remove_file(file);
            }
            return Err(e);
        }
        Ok(keys.1)
    }

    /// Opens a ledger for appending and reading, after checking that its tree is whole and
    /// consistent with its latest checkpoint.
    pub fn open(
        location: impl Into<Location>,
        options: LedgerOptions,
    ) -> Result<Self, LedgerError> {
        let location = location.into();
        let writer = location.open_writer()?;
        let reader = location.open_reader()?;
        Self::open_with(&location, writer, reader, options)
    }

    /// Opens a ledger for reading only (query, export, prove): needs the verifier key but
    /// not the signing key; appends fail.
    pub fn open_read_only(location: impl Into<Location>) -> Result<Self, LedgerError> {
        let location = location.into();
        let reader = location.open_reader()?;
        let vkey = read_vkey(&location)?;
        Ok(Self {
            location,
            reader: Mutex::new(reader),
            ring: None,
            sender: None,
            thread: None,
            effects: None,
            policy: None,
            vkey,
        })
    }

    /// Like [`Ledger::open`] with caller-provided stores (another backend, or a wrapper that
    /// injects faults in tests). `location` names the key files.
    pub fn open_with(
        location: &Location,
        writer: Box<dyn StoreWriter>,
        reader: Box<dyn StoreReader>,
        options: LedgerOptions,
    ) -> Result<Self, LedgerError> {
        let signer = match location.signing_key_command() {
            Some(command) => CheckpointSigner::from_command(command)?,
            None => CheckpointSigner::load(&location.signing_key()?)?,
        };
        let vkey = read_vkey(location)?;
        let size = writer.size()?;
        let checkpointed_size = check_on_open(writer.as_ref(), &vkey, size)?;
        let (sender, rx) = mpsc::sync_channel(1024);
        let effects = side_effects::SideEffects::start(location, &options)?;
        let policy = options.witness_policy.clone();
        let ring = Arc::new(Mutex::new(KeyRing::new(
            location.open_keys(true)?,
            options.subject_field.clone(),
        )));
        let mut state = Writer {
            effects: effects.submitter(),
            store: writer,
            signer,
            vkey: vkey.clone(),
            options,
            size,
            checkpointed_size,
            checkpointed_at: Instant::now(),
            recheck: None,
            ring: ring.clone(),
        };
        state.finish_erasures()?;
        let thread = std::thread::Builder::new()
            .name("vellum-ledger-writer".to_string())
            .spawn(move || state.run(rx))
            .map_err(|e| {
                LedgerError::Unavailable(format!("cannot start the writer thread: {e}"))
            })?;
        Ok(Self {
            location: location.clone(),
            reader: Mutex::new(reader),
            ring: Some(ring),
            sender: Some(sender),
            thread: Some(thread),
            effects: Some(effects),
            policy,
            vkey,
        })
    }

    /// Sets the quorum a checkpoint needs to count as published (for a ledger opened
    /// read-only; [`LedgerOptions::witness_policy`] sets it for one that appends).
    pub fn with_witness_policy(mut self, policy: Option<witness_policy::WitnessPolicy>) -> Self {
        self.policy = policy;
        self
    }

    /// Where the ledger is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The verifier key that checks this ledger's checkpoints.
    pub fn verifier_key(&self) -> &str {
        &self.vkey
    }

    /// Appends records atomically and durably: returns one receipt per record, in order,
    /// only after they are on stable storage; on error nothing was recorded.
    pub fn append(&self, records: Vec<Record>) -> Result<Vec<Receipt>, LedgerError> {
        self.append_each(vec![(records, None)])
            .pop()
            .unwrap_or_else(|| Err(closed()))
    }

    /// Appends several requests, each atomically and in order, most often in one
    /// transaction; each may claim an idempotency key. A request whose key was used before
    /// gets the receipts of its first append (the same events) or
    /// [`LedgerError::KeyReused`] (other events), and records nothing new. Returns one
    /// answer per request.
    pub fn append_each(
        &self,
        requests: Vec<(Vec<Record>, Option<IdempotencyKey>)>,
    ) -> Vec<Result<Vec<Receipt>, LedgerError>> {
        let mut sealed = Vec::with_capacity(requests.len());
        let mut failed = Vec::new();
        for (i, (records, key)) in requests.into_iter().enumerate() {
            match self.seal(&records) {
                Ok(seals) => sealed.push((records, seals, key)),
                Err(e) => {
                    failed.push((i, e));
                    sealed.push((Vec::new(), Vec::new(), None));
                }
            }
        }
        let mut answers = self.append_sealed(sealed);
        for (i, e) in failed {
            answers[i] = Err(e);
        }
        answers
    }

    /// [`Ledger::append_each`] of records whose content [`Ledger::seal`] sealed (on the
    /// sink's worker threads, so that the single writer only stores bytes).
    pub(crate) fn append_sealed(
        &self,
        requests: Vec<SealedRequest>,
    ) -> Vec<Result<Vec<Receipt>, LedgerError>> {
        let mut answers = Vec::with_capacity(requests.len());
        for (records, sealed, key) in requests {
            if records.is_empty() {
                answers.push(Ok(None));
                continue;
            }
            let (reply, answer) = mpsc::sync_channel(1);
            let append = Append {
                records,
                sealed,
                key,
            };
            answers.push(
                self.send(Message::Append(append, reply))
                    .map(|()| Some(answer)),
            );
        }
        answers
            .into_iter()
            .map(|answer| match answer? {
                None => Ok(Vec::new()),
                Some(answer) => answer.recv().map_err(|_| closed())?,
            })
            .collect()
    }

    /// Signs and stores a checkpoint of the current tree (or finds the one of this size
    /// signed before); returns the signed note.
    pub fn checkpoint(&self) -> Result<String, LedgerError> {
        self.checkpoint_witnessed().map(|(note, _)| note)
    }

    /// Like [`Ledger::checkpoint`], and waits for its side effects: returns why each
    /// witness that did not cosign it (of [`LedgerOptions::witnesses`]) refused or failed.
    /// Appends go on meanwhile.
    pub fn checkpoint_witnessed(
        &self,
    ) -> Result<(String, Vec<witness::WitnessError>), LedgerError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Message::Checkpoint(reply))?;
        let (size, note) = answer.recv().map_err(|_| closed())??;
        let failed = match &self.effects {
            Some(effects) => effects.run(size, &note),
            None => Vec::new(),
        };
        Ok((note, failed))
    }

    /// Counts of witness and publisher calls since the ledger opened.
    pub fn effect_counts(&self) -> side_effects::EffectCounts {
        self.effects
            .as_ref()
            .map(side_effects::SideEffects::counts)
            .unwrap_or_default()
    }

    /// The newest checkpoint that counts as published, with its cosignatures appended:
    /// the newest one whose cosignatures meet the witness policy, or the newest one when
    /// there is no policy. `None` before any qualifies.
    pub fn published_checkpoint(&self) -> Result<Option<(u64, String)>, LedgerError> {
        let notes = self.with_reader(|r| r.checkpoints())?;
        for (size, note) in notes.into_iter().rev() {
            let lines = self.cosignatures(size)?;
            let counts = match &self.policy {
                Some(policy) => policy.check(&note, &lines).met,
                None => true,
            };
            if counts {
                return Ok(Some((size, format!("{note}{}", lines.concat()))));
            }
        }
        Ok(None)
    }

    /// Erases what `request` names (see [`erasure`]): removes the content, appends the
    /// signed `vellum.erasure` record, destroys the data keys, and signs a checkpoint
    /// covering the record. Runs on the writer, in order with appends.
    pub fn erase(
        &self,
        request: erasure::EraseRequest,
    ) -> Result<erasure::EraseReport, LedgerError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Message::Erase(Box::new(request), reply))?;
        answer.recv().map_err(|_| closed())?
    }

    /// Erases the content of every entry a retention rule makes due at `now`, except what
    /// a legal hold covers; one erasure record per batch of entries. Entries of format 1
    /// cannot be erased and are counted apart.
    pub fn run_retention(
        &self,
        rules: &[erasure::RetentionRule],
        now: jiff::Timestamp,
        by: &str,
    ) -> Result<erasure::RetentionReport, LedgerError> {
        let mut report = erasure::RetentionReport::default();
        let Some(shortest) = rules.iter().map(|r| r.keep_days).min() else {
            return Ok(report);
        };
        // Nothing that occurred after the shortest rule's cutoff can be due.
        let until = now
            .checked_sub(jiff::SignedDuration::from_hours(i64::from(shortest) * 24))
            .map_err(|e| LedgerError::BadRequest(format!("retention cutoff: {e}")))?;
        let mut query = Query {
            until: Some(until),
            limit: query::MAX_LIMIT,
            ..Query::default()
        };
        let mut due = Vec::new();
        loop {
            let page = self.with_reader(|r| r.query(&query))?;
            for entry in &page.entries {
                let e = &entry.event;
                let rule = erasure::governing_rule(rules, e.tenant.as_deref(), &e.kind);
                let is_due = rule
                    .is_some_and(|r| erasure::due_at(r, entry.recorded_at, e.occurred_at) <= now);
                match (is_due, &entry.seal) {
                    (false, _) => {}
                    (true, None) => report.format_1 += 1,
                    (true, Some(seal)) if seal.erased.is_some() => {}
                    (true, Some(_)) => due.push(entry.seq),
                }
            }
            match (page.entries.last(), page.next_cursor) {
                (Some(last), Some(_)) => query.after_seq = Some(last.seq),
                _ => break,
            }
        }
        for batch in due.chunks(RETENTION_BATCH) {
            let request = erasure::EraseRequest {
                target: erasure::EraseTarget::Entries(batch.to_vec()),
                reason: "retention".to_string(),
                by: by.to_string(),
                on_hold: erasure::OnHold::Skip,
            };
            match self.erase(request) {
                Ok(done) => {
                    report.erased += done.entries_erased;
                    report.held += done.held;
                    report.records.push(done.record_seq);
                }
                Err(LedgerError::BadRequest(m)) if m.contains("legal hold") => {
                    report.held += batch.len();
                }
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// The legal holds.
    pub fn holds(&self) -> Result<Vec<keys::Hold>, LedgerError> {
        Ok(self.location.open_keys(false)?.holds()?)
    }

    /// Places a legal hold. A subject is given in plain and stored as its keyed hash.
    pub fn add_hold(&self, target: HoldRequest, reason: &str) -> Result<keys::Hold, LedgerError> {
        let mut store = self.location.open_keys(true)?;
        let target = match target {
            HoldRequest::Tenant(t) => keys::HoldTarget::Tenant(t),
            HoldRequest::Correlation(c) => keys::HoldTarget::Correlation(c),
            HoldRequest::Subject(s) => {
                keys::HoldTarget::Subject(store.subject_hash(&s).to_string())
            }
        };
        Ok(store.add_hold(&target, reason)?)
    }

    /// Lifts legal hold `id`; `false` when there is none.
    pub fn remove_hold(&self, id: u64) -> Result<bool, LedgerError> {
        Ok(self.location.open_keys(false)?.remove_hold(id)?)
    }

    /// Seals the records' content under their keys, on the caller's thread, so that the
    /// single writer only stores bytes.
    pub(crate) fn seal(&self, records: &[Record]) -> Result<Vec<entry::PreSealed>, LedgerError> {
        let ring = self.ring.as_ref().ok_or_else(closed)?;
        let keys = {
            let mut ring = writer::lock(ring)?;
            let scopes: Vec<_> = records.iter().map(|r| ring.scope_of(&r.event)).collect();
            ring.keys_for(&scopes)?
        };
        Ok(records
            .iter()
            .zip(keys)
            .map(|(r, (id, key))| entry::PreSealed::new(&r.event, Some((id, &key))))
            .collect())
    }

    fn send(&self, message: Message) -> Result<(), LedgerError> {
        self.sender
            .as_ref()
            .ok_or_else(closed)?
            .send(message)
            .map_err(|_| closed())
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&dyn StoreReader) -> Result<T, StoreError>,
    ) -> Result<T, LedgerError> {
        let reader = self
            .reader
            .lock()
            .map_err(|_| LedgerError::Unavailable("reader lock poisoned".into()))?;
        Ok(f(reader.as_ref())?)
    }

    /// Number of entries.
    pub fn size(&self) -> Result<u64, LedgerError> {
        self.with_reader(|r| r.size())
    }

    /// Runs a query; pass the returned cursor back for the next page.
    pub fn query(&self, query: &Query) -> Result<Page, LedgerError> {
        query.validate().map_err(LedgerError::BadRequest)?;
        self.with_reader(|r| r.query(query))
    }

    /// Verifies the whole ledger, or the entries `from..to` by inclusion proofs (see
    /// [`verify::verify`]).
    pub fn verify(&self, range: Option<(u64, u64)>) -> Result<verify::VerifyReport, LedgerError> {
        self.verify_apart(range)
    }

    /// [`Ledger::verify`] on a read connection opened for the pass (content that does not
    /// open is reported, not an error), so that queries and proofs through the shared one
    /// go on meanwhile (a server verifying a large ledger).
    pub fn verify_apart(
        &self,
        range: Option<(u64, u64)>,
    ) -> Result<verify::VerifyReport, LedgerError> {
        let reader = self.location.open_reader_tolerant()?;
        verify::verify(reader.as_ref(), &self.vkey, range, &mut |_, _| {})
    }

    /// The stored checkpoints, verified, oldest first, with their signed notes.
    pub fn checkpoints(&self) -> Result<Vec<(VerifiedCheckpoint, String)>, LedgerError> {
        let notes = self.with_reader(|r| r.checkpoints())?;
        notes
            .into_iter()
            .map(|(size, note)| {
                let cp = verify_checkpoint(&note, &self.vkey)
                    .map_err(|e| LedgerError::Invalid(format!("stored checkpoint {size}: {e}")))?;
                Ok((cp, note))
            })
            .collect()
    }

    /// The witnesses' cosignature lines of the checkpoint of `size` (unchecked; `verify
    /// --witness-key` checks them). Appended to the checkpoint's note, they make the
    /// cosigned checkpoint.
    pub fn cosignatures(&self, size: u64) -> Result<Vec<String>, LedgerError> {
        let lines = self.with_reader(|r| r.cosignatures(Some(size)))?;
        Ok(lines.into_iter().map(|(_, line)| line).collect())
    }

    /// Proof that entry `seq` is in the checkpoint of `tree_size` (default: the latest
    /// checkpoint covering it).
    pub fn prove_inclusion(
        &self,
        seq: u64,
        tree_size: Option<u64>,
    ) -> Result<(InclusionProof, String), LedgerError> {
        let (checkpoint, note) = self.checkpoint_for(tree_size, seq + 1)?;
        let proof = self.with_reader(|r| {
            let (entry, leaf) = r
                .entries(seq, seq + 1)?
                .pop()
                .ok_or_else(|| StoreError::Invalid(format!("entry {seq} does not exist")))?;
            InclusionProof::build(r, seq, checkpoint.size, entry, leaf)
        })?;
        Ok((proof, note))
    }

    /// The RFC 3161 timestamp tokens stored beside the checkpoints: `(tree size, token
    /// DER)`, by size.
    pub fn timestamps(&self) -> Result<Vec<(u64, Vec<u8>)>, LedgerError> {
        self.with_reader(|r| r.timestamps())
    }

    /// Proof that entry `seq` is in the checkpoint of `tree_size` (default: the newest one
    /// covering it), as one C2SP `.tlog-proof` file: the entry's leaf bytes, the path and
    /// the checkpoint with its cosignatures.
    pub fn tlog_proof(
        &self,
        seq: u64,
        tree_size: Option<u64>,
    ) -> Result<tlog_proof::TlogProof, LedgerError> {
        let (proof, note) = self.prove_inclusion(seq, tree_size)?;
        let entry = proof.entry.as_ref().ok_or_else(|| {
            LedgerError::Invalid(format!("the inclusion proof of {seq} lacks its entry"))
        })?;
        let lines = self.cosignatures(proof.tree_size)?;
        Ok(tlog_proof::TlogProof::new(
            entry.leaf_bytes(),
            seq,
            proof.path.clone(),
            format!("{note}{}", lines.concat()),
        ))
    }

    /// Reads one file of the tiled log (see [`tiles`]) from the tree as stored now.
    pub fn tile(&self, resource: &tiles::Resource) -> Result<Vec<u8>, tiles::TileError> {
        let reader = self
            .reader
            .lock()
            .map_err(|_| StoreError::Io("reader lock poisoned".into()))?;
        let size = reader.size()?;
        resource.read(reader.as_ref(), size)
    }

    /// Writes the tiled log of the newest published checkpoint into `dir` (see
    /// [`tiles::export`]).
    pub fn export_tiles(&self, dir: &Path) -> Result<tiles::ExportReport, LedgerError> {
        let (size, note) = self.published_checkpoint()?.ok_or_else(|| {
            LedgerError::BadRequest(
                "no checkpoint counts as published yet (none signed, or none meets the                  witness quorum); run `vellum checkpoint`"
                    .into(),
            )
        })?;
        self.with_reader(|r| tiles::export(r, size, &note, dir).map_err(StoreError::Io))
    }

    /// Proof that the checkpoint of `old_size` is a prefix of the one of `new_size`.
    pub fn prove_consistency(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof, LedgerError> {
        if old_size == 0 || old_size > new_size {
            return Err(LedgerError::BadRequest(format!(
                "need 0 < old size <= new size, got {old_size} and {new_size}"
            )));
        }
        self.checkpoint_for(Some(old_size), 0)?;
        self.checkpoint_for(Some(new_size), 0)?;
        self.with_reader(|r| ConsistencyProof::build(r, old_size, new_size))
    }

    /// The checkpoint of exactly `size`, or the latest one of at least `min_size`,
    /// verified.
    fn checkpoint_for(
        &self,
        size: Option<u64>,
        min_size: u64,
    ) -> Result<(VerifiedCheckpoint, String), LedgerError> {
        let all = self.with_reader(|r| r.checkpoints())?;
        let found = match size {
            Some(size) => all.into_iter().find(|(s, _)| *s == size),
            None => all.into_iter().rev().find(|(s, _)| *s >= min_size),
        };
        let (stored_size, note) = found.ok_or_else(|| {
            LedgerError::BadRequest(match size {
                Some(size) => format!("there is no checkpoint of size {size}"),
                None => format!(
                    "no checkpoint covers entry {} yet; run `vellum checkpoint`",
                    min_size.saturating_sub(1)
                ),
            })
        })?;
        let checkpoint = verify_checkpoint(&note, &self.vkey)
            .map_err(|e| LedgerError::Invalid(format!("stored checkpoint {stored_size}: {e}")))?;
        Ok((checkpoint, note))
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // After the writer: its closing checkpoint's side effects run before this returns.
        if let Some(mut effects) = self.effects.take() {
            effects.close();
        }
    }
}

fn closed() -> LedgerError {
    LedgerError::Unavailable("the ledger is read-only here, or its writer has stopped".to_string())
}

/// Reads a ledger's verifier key file.
pub fn read_vkey(location: impl Into<Location>) -> Result<String, LedgerError> {
    let public = location.into().verifier_key()?;
    std::fs::read_to_string(&public)
        .map(|k| k.trim().to_string())
        .map_err(|e| {
            LedgerError::Invalid(format!(
                "cannot read verifier key {}: {e}",
                public.display()
            ))
        })
}

/// The checks made on every open, in O(log n): the tree hashes exist up to `size`, the
/// last entry's leaf matches its row, and the latest checkpoint verifies and is consistent
/// with the stored tree. Returns the latest checkpoint's size.
pub(crate) fn check_on_open(
    store: &dyn StoreReader,
    vkey: &str,
    size: u64,
) -> Result<u64, LedgerError> {
    let damaged =
        |what: String| LedgerError::Invalid(format!("{what}; run `vellum verify` for details"));
    merkle::root(store, size).map_err(|e| {
        damaged(format!(
            "the Merkle tree of {size} entries is incomplete: {e}"
        ))
    })?;
    if size > 0 {
        let (entry, leaf) = store
            .entries(size - 1, size)?
            .pop()
            .ok_or_else(|| damaged(format!("entry {} is missing", size - 1)))?;
        if entry.leaf_hash() != leaf {
            return Err(damaged(format!(
                "entry {} does not match its leaf hash",
                size - 1
            )));
        }
        let tree_leaf = store.read_hashes(&[tlog_tiles::tlog::stored_hash_index(0, size - 1)])?;
        if tree_leaf.first() != Some(&leaf) {
            return Err(damaged(format!(
                "entry {} is not the tree's last leaf",
                size - 1
            )));
        }
    }
    let Some((cp_size, note)) = store.checkpoints()?.pop() else {
        return Ok(0);
    };
    let checkpoint =
        verify_checkpoint(&note, vkey).map_err(|e| damaged(format!("latest checkpoint: {e}")))?;
    if checkpoint.size != cp_size {
        return Err(damaged(format!(
            "checkpoint stored under size {cp_size} says {}",
            checkpoint.size
        )));
    }
    if checkpoint.size > size {
        return Err(damaged(format!(
            "the ledger has {size} entries but a checkpoint covers {}: truncated",
            checkpoint.size
        )));
    }
    if merkle::root(store, checkpoint.size)? != checkpoint.root {
        return Err(damaged(format!(
            "the tree does not match the checkpoint of size {}",
            checkpoint.size
        )));
    }
    Ok(checkpoint.size)
}
