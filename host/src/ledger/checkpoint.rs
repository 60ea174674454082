//! Signed checkpoints in the C2SP formats: the checkpoint body
//! (<https://c2sp.org/tlog-checkpoint>: origin, tree size, base64 root hash, then Vellum's
//! `time <RFC 3339>` extension line) wrapped in an Ed25519 signed note
//! (<https://c2sp.org/signed-note>).
//!
//! The signing key is created by `vellum init` (by default next to a ledger file,
//! `<ledger>.key`, mode 0600; anywhere configured for a PostgreSQL ledger); the verifier key
//! (`<ledger>.pub`, or the signing key's path with `.pub`) is all a third party needs.

use std::io::Write;
use std::path::Path;

use super::hash::Hash;
use jiff::Timestamp;
use signed_note::{Note, StandardSigner, StandardVerifier, VerifierList};
use tlog_tiles::checkpoint::Checkpoint;

use super::LedgerError;

/// Largest signed note accepted by the parser (a checkpoint is a few hundred bytes).
pub const MAX_NOTE_BYTES: usize = 64 << 10;
/// Prefix of Vellum's checkpoint extension line.
const TIME_EXTENSION: &str = "time ";

/// A checkpoint whose signature has been verified.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedCheckpoint {
    /// The log's identity (the key name).
    pub origin: String,
    /// Number of entries covered.
    pub size: u64,
    /// Root hash of the tree of `size` entries.
    pub root: Hash,
    /// When it was signed, by the host's clock.
    pub time: Option<Timestamp>,
}

/// Why a checkpoint is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// Not a signed note, or the body is not a checkpoint.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// The signature does not verify under the given key, or no signature is by that key.
    #[error("bad checkpoint signature: {0}")]
    BadSignature(String),
    /// The key is not a valid verifier key.
    #[error("invalid verifier key: {0}")]
    BadKey(String),
}

/// A new Ed25519 key pair named `origin`: `(signing key, verifier key)`.
pub fn generate_keys(origin: &str) -> Result<(String, String), LedgerError> {
    if !signed_note::is_key_name_valid(origin) {
        return Err(LedgerError::BadRequest(format!(
            "invalid origin `{origin}`: it must be non-empty, without spaces or `+`"
        )));
    }
    Ok(signed_note::generate_key(&mut rand_core::OsRng, origin))
}

/// Writes a key pair: the signing key with mode 0600, never overwriting an existing file,
/// then the verifier key.
pub fn write_keys(
    secret: &Path,
    public: &Path,
    (skey, vkey): (&str, &str),
) -> Result<(), LedgerError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(secret).map_err(|e| {
        unavailable(format!(
            "cannot create signing key {}: {e}",
            secret.display()
        ))
    })?;
    file.write_all(skey.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| {
            unavailable(format!(
                "cannot write signing key {}: {e}",
                secret.display()
            ))
        })?;
    std::fs::write(public, format!("{vkey}\n")).map_err(|e| {
        unavailable(format!(
            "cannot write verifier key {}: {e}",
            public.display()
        ))
    })
}

fn unavailable(message: String) -> LedgerError {
    LedgerError::Unavailable(message)
}

/// A loaded signing key.
pub struct CheckpointSigner {
    signer: StandardSigner,
    origin: String,
}

impl CheckpointSigner {
    /// Loads a signing key file.
    pub fn load(secret: &Path) -> Result<Self, LedgerError> {
        let text = std::fs::read_to_string(secret).map_err(|e| {
            LedgerError::Invalid(format!("cannot read signing key {}: {e}", secret.display()))
        })?;
        Self::parse(&text, &secret.display().to_string())
    }

    /// Runs `command` with `sh -c` and reads the signing key from its standard output.
    pub fn from_command(command: &str) -> Result<Self, LedgerError> {
        let what = format!("the signing-key command `{command}`");
        let output = std::process::Command::new("sh")
            .args(["-c", command])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| LedgerError::Invalid(format!("cannot run {what}: {e}")))?;
        if !output.status.success() {
            return Err(LedgerError::Invalid(format!(
                "{what} failed ({})",
                output.status
            )));
        }
        let text = String::from_utf8(output.stdout)
            .map_err(|_| LedgerError::Invalid(format!("{what} printed no text")))?;
        Self::parse(&text, &what)
    }

    fn parse(text: &str, source: &str) -> Result<Self, LedgerError> {
        let signer = StandardSigner::new(text.trim())
            .map_err(|e| LedgerError::Invalid(format!("{source} is not a signing key: {e}")))?;
        let origin = signed_note::Signer::name(&signer).to_string();
        Ok(Self { signer, origin })
    }

    /// The log's origin (the key's name).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Signs a checkpoint for a tree of `size` entries with root `root`.
    pub fn sign(&self, size: u64, root: Hash, time: Timestamp) -> Result<String, String> {
        let extension = format!("{TIME_EXTENSION}{time}\n");
        let checkpoint = Checkpoint::new(&self.origin, size, root.into(), &extension)
            .map_err(|e| format!("building checkpoint: {e}"))?;
        let mut note =
            Note::new(&checkpoint.to_bytes(), &[]).map_err(|e| format!("building note: {e}"))?;
        note.add_sigs(&[&self.signer])
            .map_err(|e| format!("signing checkpoint: {e}"))?;
        String::from_utf8(note.to_bytes()).map_err(|e| format!("note is not UTF-8: {e}"))
    }
}

/// Parses a signed checkpoint and verifies it under `vkey` (a C2SP verifier key).
pub fn verify_checkpoint(note: &str, vkey: &str) -> Result<VerifiedCheckpoint, CheckpointError> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(CheckpointError::Malformed(format!(
            "longer than {MAX_NOTE_BYTES} bytes"
        )));
    }
    let verifier =
        StandardVerifier::new(vkey.trim()).map_err(|e| CheckpointError::BadKey(e.to_string()))?;
    let origin = signed_note::Verifier::name(&verifier).to_string();
    let note =
        Note::from_bytes(note.as_bytes()).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
    note.verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|e| CheckpointError::BadSignature(e.to_string()))?;
    let checkpoint = Checkpoint::from_bytes(note.text())
        .map_err(|e| CheckpointError::Malformed(e.to_string()))?;
    if checkpoint.origin() != origin {
        return Err(CheckpointError::BadSignature(format!(
            "checkpoint origin `{}` is not the key's `{origin}`",
            checkpoint.origin()
        )));
    }
    let time = checkpoint
        .extension()
        .lines()
        .find_map(|line| line.strip_prefix(TIME_EXTENSION))
        .map(|t| {
            t.parse::<Timestamp>()
                .map_err(|e| CheckpointError::Malformed(format!("time: {e}")))
        })
        .transpose()?;
    Ok(VerifiedCheckpoint {
        origin,
        size: checkpoint.size(),
        root: (*checkpoint.hash()).into(),
        time,
    })
}
