//! Proof bundles: a proof with the signed checkpoint(s) it is checked against — everything
//! a verifier needs besides the ledger's public key. `vellum prove` and `vellum serve`
//! write them, `vellum check-proof` (or any RFC 9162 + C2SP implementation) checks them.

use serde::{Deserialize, Serialize};

use super::checkpoint::{VerifiedCheckpoint, verify_checkpoint};
use super::merkle::{ConsistencyProof, InclusionProof};
use super::{Ledger, LedgerError};

/// A proof and its checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBundle {
    /// That an entry is in a checkpoint's tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion: Option<InclusionProof>,
    /// That one checkpoint's tree is a prefix of another's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ConsistencyProof>,
    /// The signed checkpoint(s): one for inclusion, old then new for consistency.
    pub checkpoints: Vec<String>,
}

impl ProofBundle {
    /// Checks the bundle with only the verifier key; says what it proved.
    pub fn check(&self, vkey: &str) -> Result<String, String> {
        let checkpoints = self
            .checkpoints
            .iter()
            .map(|note| verify_checkpoint(note, vkey))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        match (&self.inclusion, &self.consistency, checkpoints.as_slice()) {
            (Some(p), None, [cp]) => p
                .verify(cp)
                .map(|()| format!("entry {} is in the checkpoint of size {}", p.seq, cp.size)),
            (None, Some(p), [old, new]) => p.verify(old, new).map(|()| {
                format!(
                    "checkpoint {} is a prefix of checkpoint {}",
                    old.size, new.size
                )
            }),
            _ => return Err("the bundle needs one proof and its checkpoint(s)".to_string()),
        }
        .map_err(|e| e.to_string())
    }

    /// Like [`ProofBundle::check`], and the proof must start from `trusted`, a checkpoint
    /// kept outside the ledger: a consistency proof's old checkpoint, or an inclusion
    /// proof's checkpoint, must have its size and root.
    pub fn check_anchored(
        &self,
        vkey: &str,
        trusted: &VerifiedCheckpoint,
    ) -> Result<String, String> {
        let proved = self.check(vkey)?;
        let anchor = self
            .checkpoints
            .first()
            .map(|note| verify_checkpoint(note, vkey))
            .transpose()
            .map_err(|e| e.to_string())?;
        match anchor {
            Some(cp) if cp.size == trusted.size && cp.root == trusted.root => {
                Ok(format!("{proved}, starting from the trusted checkpoint"))
            }
            Some(cp) if cp.size == trusted.size => Err(format!(
                "forked: the proof's checkpoint of size {} has another root than the trusted one",
                cp.size
            )),
            _ => Err(format!(
                "the proof does not start from the trusted checkpoint of size {}",
                trusted.size
            )),
        }
    }
}

impl Ledger {
    /// A bundle proving that entry `seq` is in the checkpoint of `tree_size` (default: the
    /// latest checkpoint covering it).
    pub fn inclusion_bundle(
        &self,
        seq: u64,
        tree_size: Option<u64>,
    ) -> Result<ProofBundle, LedgerError> {
        let (proof, note) = self.prove_inclusion(seq, tree_size)?;
        Ok(ProofBundle {
            inclusion: Some(proof),
            consistency: None,
            checkpoints: vec![note],
        })
    }

    /// A bundle proving that the checkpoint of `old_size` is a prefix of the one of
    /// `new_size`.
    pub fn consistency_bundle(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ProofBundle, LedgerError> {
        let proof = self.prove_consistency(old_size, new_size)?;
        let notes = self.checkpoints()?;
        let note = |size| {
            notes
                .iter()
                .find(|(cp, _)| cp.size == size)
                .map(|(_, n)| n.clone())
                .ok_or_else(|| {
                    LedgerError::BadRequest(format!("there is no checkpoint of size {size}"))
                })
        };
        Ok(ProofBundle {
            inclusion: None,
            consistency: Some(proof),
            checkpoints: vec![note(old_size)?, note(new_size)?],
        })
    }
}
