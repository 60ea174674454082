//! `vellum witness`: a transparency-log witness (<https://c2sp.org/tlog-witness>) for
//! Vellum ledgers and any other log that signs C2SP checkpoints with Ed25519.
//!
//! For each log it is told to trust (an origin and its verifier keys) the witness keeps the
//! latest checkpoint it cosigned, in its own state file. It cosigns a new checkpoint only
//! when the log's signature verifies and a consistency proof shows the new tree extends the
//! one it holds; the check and the update are one transaction, made durable before the
//! answer. So it never cosigns two inconsistent trees of one log, nor a smaller tree after
//! a larger one, also across restarts, for as long as its state file lives. A refused
//! checkpoint that the log signed and that shows misbehaviour (a fork, a rollback, a larger
//! tree without a valid proof) is kept as evidence, once, within a cap (see [`state`]).
//!
//! [`request`] parses the `add-checkpoint` body, [`state`] keeps the per-log state, and
//! [`http`] serves the protocol.

pub mod http;
pub mod request;
pub mod state;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use vellum::ledger::checkpoint::{CheckpointError, VerifiedCheckpoint, verify_checkpoint};
use vellum::ledger::cosignature::Cosigner;
use vellum::ledger::merkle::ConsistencyProof;
use vellum::ledger::witness::request_body;

use request::AddCheckpoint;
use state::{EvidenceKind, Held, WitnessState};

/// The answer to an `add-checkpoint` request, by the protocol's status codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 200: the cosignature line.
    Cosigned(String),
    /// 400: the request is malformed, or its old size is larger than the checkpoint's.
    BadRequest(String),
    /// 403: no signature by a trusted key of the origin.
    Forbidden(String),
    /// 404: the origin is not one this witness serves.
    UnknownOrigin(String),
    /// 409: the old size is not the size the witness holds (given), or a tree of the same
    /// size with another root.
    Conflict(u64),
    /// 422: the consistency proof does not verify.
    BadProof(String),
    /// 500: the witness's own state failed; nothing was cosigned.
    Failed(String),
}

/// A witness: its signing key, the logs it serves and their state.
pub struct Witness {
    cosigner: Cosigner,
    /// Trusted verifier keys by origin.
    logs: HashMap<String, Vec<String>>,
    state: Mutex<WitnessState>,
}

impl Witness {
    /// A witness signing with `cosigner`, serving the logs whose verifier keys are
    /// `log_keys` (each key's name is its log's origin), with its state at `state` (made by
    /// [`WitnessState::create`]).
    pub fn open(cosigner: Cosigner, log_keys: &[String], state: &Path) -> anyhow::Result<Self> {
        let mut logs: HashMap<String, Vec<String>> = HashMap::new();
        for key in log_keys {
            let key = key.trim();
            let origin = key
                .split_once('+')
                .map(|(origin, _)| origin)
                .filter(|_| signed_note::StandardVerifier::new(key).is_ok())
                .ok_or_else(|| anyhow::anyhow!("`{key}` is not a log verifier key"))?;
            logs.entry(origin.to_string())
                .or_default()
                .push(key.to_string());
        }
        anyhow::ensure!(!logs.is_empty(), "a witness needs at least one log key");
        Ok(Self {
            cosigner,
            logs,
            state: Mutex::new(WitnessState::open(state)?),
        })
    }

    /// Keeps at most `rows` pieces of evidence (default
    /// [`state::DEFAULT_MAX_EVIDENCE`]); beyond, the oldest are pruned first.
    pub fn with_max_evidence(mut self, rows: u64) -> Self {
        if let Ok(state) = self.state.get_mut() {
            state.set_max_evidence(rows);
        }
        self
    }

    /// The evidence kept, oldest first.
    pub fn evidence(&self) -> anyhow::Result<Vec<state::Evidence>> {
        self.state
            .lock()
            .map_err(|_| anyhow::anyhow!("the witness state lock is poisoned"))?
            .evidence()
    }

    /// The witness's verifier key.
    pub fn verifier_key(&self) -> String {
        self.cosigner.verifier_key()
    }

    /// Handles one `add-checkpoint` request body.
    pub fn add_checkpoint(&self, body: &[u8]) -> Outcome {
        let request = match AddCheckpoint::parse(body) {
            Ok(request) => request,
            Err(e) => return Outcome::BadRequest(e),
        };
        let checkpoint = match self.verify_signature(&request.checkpoint) {
            Ok(checkpoint) => checkpoint,
            Err(outcome) => return outcome,
        };
        let Ok(mut state) = self.state.lock() else {
            return Outcome::Failed("the witness state lock is poisoned".into());
        };
        // Checking and updating under one lock and one transaction: no rollback race.
        let held = match state.held(&checkpoint.origin) {
            Ok(held) => held,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        if let Err(outcome) = check_extends(&request, &checkpoint, held.as_ref()) {
            if let Some((kind, reason)) = misbehaviour(&checkpoint, held.as_ref(), &outcome) {
                let keys = self
                    .logs
                    .get(&checkpoint.origin)
                    .map_or(&[][..], Vec::as_slice);
                let (kept, digested) = evidence_of(&request, keys);
                if let Err(e) =
                    state.keep_evidence(&checkpoint.origin, kind, &kept, &digested, &reason)
                {
                    tracing::error!("keeping the refused checkpoint as evidence: {e}");
                }
            }
            return outcome;
        }
        let body_text = match signed_note::Note::from_bytes(request.checkpoint.as_bytes()) {
            Ok(note) => note.text().to_vec(),
            Err(e) => return Outcome::BadRequest(format!("checkpoint: {e}")),
        };
        if let Err(e) = state.hold(&checkpoint, &request.checkpoint) {
            return Outcome::Failed(e.to_string());
        }
        let now = jiff::Timestamp::now().as_second().max(0) as u64;
        Outcome::Cosigned(self.cosigner.cosign(&body_text, now))
    }

    /// Verifies the checkpoint under its origin's trusted keys.
    fn verify_signature(&self, note: &str) -> Result<VerifiedCheckpoint, Outcome> {
        let origin = note.lines().next().unwrap_or_default();
        let keys = self
            .logs
            .get(origin)
            .ok_or_else(|| Outcome::UnknownOrigin(format!("unknown log origin `{origin}`")))?;
        let mut last = None;
        for key in keys {
            match verify_checkpoint(note, key) {
                Ok(checkpoint) => return Ok(checkpoint),
                Err(CheckpointError::Malformed(e)) => {
                    return Err(Outcome::BadRequest(format!("checkpoint: {e}")));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(Outcome::Forbidden(format!(
            "no signature by a trusted key of `{origin}`: {}",
            last.map(|e| e.to_string()).unwrap_or_default()
        )))
    }
}

/// What a refused checkpoint, signed by the log, shows the log did, if anything: a fork (the
/// held size with another root), a rollback (smaller than held), or a larger tree no
/// consistency proof was given for. A mismatched `old` size alone is the client's mistake.
fn misbehaviour(
    checkpoint: &VerifiedCheckpoint,
    held: Option<&Held>,
    outcome: &Outcome,
) -> Option<(EvidenceKind, String)> {
    let held = held?;
    let root = |hash: &vellum::ledger::Hash| hex::encode(hash.0);
    if checkpoint.size == held.size && checkpoint.root != held.root {
        return Some((
            EvidenceKind::Fork,
            format!(
                "fork: a checkpoint of size {} with root {}, while the witness holds root {}",
                held.size,
                root(&checkpoint.root),
                root(&held.root)
            ),
        ));
    }
    if checkpoint.size < held.size {
        return Some((
            EvidenceKind::Rollback,
            format!(
                "rollback: a checkpoint of size {} after the witness cosigned size {}",
                checkpoint.size, held.size
            ),
        ));
    }
    match outcome {
        Outcome::BadProof(reason) => Some((EvidenceKind::BadProof, reason.clone())),
        _ => None,
    }
}

/// What is kept of a refused request: its `old` line and proof, then the checkpoint with
/// only the signature lines of the log's trusted `keys` (anything else is unsigned and
/// anyone's); and the part that identifies it, the checkpoint alone, so the same signed
/// checkpoint is kept once whatever proof lines come with it.
fn evidence_of(request: &AddCheckpoint, keys: &[String]) -> (String, String) {
    let note = &request.checkpoint;
    let signed = match note.split_once("\n\n") {
        Some((text, signatures)) => {
            let mut kept = format!("{text}\n\n");
            for line in signatures.lines() {
                let alone = format!("{text}\n\n{line}\n");
                if keys
                    .iter()
                    .any(|key| verify_checkpoint(&alone, key).is_ok())
                {
                    kept.push_str(line);
                    kept.push('\n');
                }
            }
            kept
        }
        None => note.clone(),
    };
    let kept = request_body(request.old_size, &request.proof, &signed);
    (kept, signed)
}

/// The protocol's checks of a verified checkpoint against the tree the witness holds.
fn check_extends(
    request: &AddCheckpoint,
    checkpoint: &VerifiedCheckpoint,
    held: Option<&Held>,
) -> Result<(), Outcome> {
    if request.old_size > checkpoint.size {
        return Err(Outcome::BadRequest(format!(
            "old size {} is larger than the checkpoint's {}",
            request.old_size, checkpoint.size
        )));
    }
    let held_size = held.map_or(0, |h| h.size);
    if request.old_size != held_size {
        return Err(Outcome::Conflict(held_size));
    }
    let Some(held) = held.filter(|h| h.size > 0) else {
        return match request.proof.is_empty() {
            true => Ok(()),
            false => Err(Outcome::BadRequest(
                "a request from old size 0 carries no proof".into(),
            )),
        };
    };
    if held.size == checkpoint.size {
        return match held.root == checkpoint.root {
            true => Ok(()),
            false => Err(Outcome::Conflict(held.size)),
        };
    }
    let proof = ConsistencyProof {
        old_size: held.size,
        new_size: checkpoint.size,
        path: request.proof.clone(),
    };
    let held = VerifiedCheckpoint {
        origin: checkpoint.origin.clone(),
        size: held.size,
        root: held.root,
        time: None,
    };
    proof.verify(&held, checkpoint).map_err(|e| {
        Outcome::BadProof(format!(
            "the consistency proof from {} to {} entries does not verify: {e}",
            held.size, checkpoint.size
        ))
    })
}
