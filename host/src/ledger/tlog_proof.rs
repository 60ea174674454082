//! One file that proves an entry is in the log: the C2SP tlog-proof text format
//! (<https://c2sp.org/tlog-proof>), as `vellum prove --format tlog-proof` writes it.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64 of the bytes the entry's leaf hashes>
//! index <seq>
//! <base64 inclusion path hash>...
//!
//! <the signed checkpoint, with its cosignatures>
//! ```
//!
//! The `extra` line carries the entry's canonical encoding (see [`super::tiles`]), so the
//! leaf hash is recomputed rather than taken on trust; it is checked by the path to the
//! signed root like any leaf.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use tlog_tiles::tlog::record_hash;

use super::checkpoint::{VerifiedCheckpoint, verify_checkpoint};
use super::cosignature::split_cosignatures;
use super::hash::Hash;
use super::merkle::{InclusionProof, MAX_PROOF_HASHES};
use super::witness_policy::WitnessPolicy;

/// The first line of every proof.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A parsed `.tlog-proof`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    /// The entry's leaf bytes (the `extra` line), when present.
    pub extra: Option<Vec<u8>>,
    /// The entry's index (its sequence number).
    pub index: u64,
    /// The inclusion path, from the leaf's sibling up.
    pub path: Vec<Hash>,
    /// The signed checkpoint, with any cosignature lines.
    pub checkpoint: String,
}

/// Why a proof is refused; each names what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlogProofError {
    /// The text is not a tlog-proof.
    #[error("not a c2sp.org/tlog-proof@v1 file: {0}")]
    Malformed(String),
    /// The checkpoint is not signed by the key given (a flipped byte, or another log).
    #[error("the checkpoint does not verify with the log's key: {0}")]
    BadCheckpoint(String),
    /// The proof has no `extra` line, so there are no entry bytes to hash.
    #[error("the proof carries no entry bytes (no `extra` line)")]
    NoEntry,
    /// The path does not lead from the entry to the signed root.
    #[error("entry {index} is not proven in the tree of {size}: {reason}")]
    NotIncluded {
        /// The entry's index.
        index: u64,
        /// The checkpoint's size.
        size: u64,
        /// What the check found.
        reason: String,
    },
    /// The checkpoint's cosignatures miss the witness policy's quorum.
    #[error("the checkpoint misses the witness quorum {quorum}: no valid cosignature by {missing}")]
    Quorum {
        /// The quorum in words.
        quorum: String,
        /// The witnesses without a valid cosignature.
        missing: String,
    },
}

impl TlogProof {
    /// The proof of entry `index` with leaf bytes `entry`, by `path`, in `checkpoint`.
    pub fn new(entry: Vec<u8>, index: u64, path: Vec<Hash>, checkpoint: String) -> Self {
        Self {
            extra: Some(entry),
            index,
            path,
            checkpoint,
        }
    }

    /// The text form.
    pub fn format(&self) -> String {
        let mut out = format!("{HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", BASE64.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for hash in &self.path {
            out.push_str(&hash.to_base64());
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Self, TlogProofError> {
        let bad = |why: String| TlogProofError::Malformed(why);
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no empty line before the checkpoint".into()))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(bad(format!("the first line is not `{HEADER}`")));
        }
        let mut line = lines.next();
        let extra = match line.and_then(|l| l.strip_prefix("extra ")) {
            Some(data) => {
                line = lines.next();
                Some(
                    BASE64
                        .decode(data)
                        .map_err(|e| bad(format!("`extra` is not base64: {e}")))?,
                )
            }
            None => None,
        };
        let index = line
            .and_then(|l| l.strip_prefix("index "))
            .ok_or_else(|| bad("no `index` line".into()))?;
        if index.len() > 1 && index.starts_with('0') {
            return Err(bad(format!("index `{index}` has a leading zero")));
        }
        let index: u64 = index
            .parse()
            .map_err(|_| bad(format!("index `{index}` is not a number")))?;
        let mut path = Vec::new();
        for (i, line) in lines.enumerate() {
            if path.len() >= MAX_PROOF_HASHES {
                return Err(bad(format!("more than {MAX_PROOF_HASHES} path hashes")));
            }
            let hash = Hash::from_base64(line)
                .ok_or_else(|| bad(format!("path line {} is not a base64 hash", i + 1)))?;
            path.push(hash);
        }
        Ok(Self {
            extra,
            index,
            path,
            checkpoint: checkpoint.to_string(),
        })
    }

    /// Checks the proof with the log's verifier key and, when given, a witness policy;
    /// returns the verified checkpoint.
    pub fn check(
        &self,
        vkey: &str,
        policy: Option<&WitnessPolicy>,
    ) -> Result<VerifiedCheckpoint, TlogProofError> {
        let checkpoint = verify_checkpoint(&self.checkpoint, vkey)
            .map_err(|e| TlogProofError::BadCheckpoint(e.to_string()))?;
        let entry = self.extra.as_ref().ok_or(TlogProofError::NoEntry)?;
        let proof = InclusionProof {
            seq: self.index,
            tree_size: checkpoint.size,
            leaf_hash: Hash::from(record_hash(entry)),
            path: self.path.clone(),
            entry: None,
        };
        proof
            .verify(&checkpoint)
            .map_err(|e| TlogProofError::NotIncluded {
                index: self.index,
                size: checkpoint.size,
                reason: e.to_string(),
            })?;
        if let Some(policy) = policy {
            let (note, lines) = split_cosignatures(&self.checkpoint, &checkpoint.origin);
            let check = policy.check(&note, &lines);
            if !check.met {
                return Err(TlogProofError::Quorum {
                    quorum: policy.describe(),
                    missing: check.missing.join(", "),
                });
            }
        }
        Ok(checkpoint)
    }
}
