//! Witness cosignatures in the C2SP format (<https://c2sp.org/tlog-cosignature>, the Ed25519
//! `cosignature/v1` type): a witness states that, at a given time, the checkpoint is the
//! largest consistent tree it has seen of that log. A cosignature is a signed-note signature
//! line whose bytes are an 8-byte big-endian POSIX time followed by an Ed25519 signature over
//!
//! ```text
//! cosignature/v1
//! time <seconds>
//! <the checkpoint body>
//! ```
//!
//! Keys: the verifier key is a signed-note vkey of type `0x04` (`<name>+<key id>+base64(0x04
//! ‖ public key)`), the key id being the first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x04 ‖
//! public key). The signing key is written like a signed-note signing key with the same
//! type byte (`PRIVATE+KEY+<name>+<key id>+base64(0x04 ‖ seed)`). [`CosignatureVerifier`]
//! implements the `signed_note` crate's [`signed_note::Verifier`], so notes carrying
//! cosignatures parse and verify with that crate (its 0.2 has no cosignature type itself).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use signed_note::{Note, Signature, VerifierList};

use super::checkpoint::{CheckpointError, MAX_NOTE_BYTES};

/// The key type byte of an Ed25519 `cosignature/v1` key.
pub const COSIGNATURE_V1: u8 = 0x04;
/// Length of a cosignature: the time, then the Ed25519 signature.
const SIGNATURE_BYTES: usize = 8 + ed25519_dalek::SIGNATURE_LENGTH;

/// A witness's signing key.
pub struct Cosigner {
    name: String,
    id: u32,
    key: SigningKey,
}

impl Cosigner {
    /// A new key pair for the witness `name`: `(signing key, verifier key)`.
    pub fn generate(name: &str) -> Result<(String, String), String> {
        check_name(name)?;
        let key = SigningKey::generate(&mut rand_core::OsRng);
        let public = key_material(&key.verifying_key());
        let id = signed_note::key_id(name, &public);
        let mut secret = vec![COSIGNATURE_V1];
        secret.extend_from_slice(key.as_bytes());
        Ok((
            format!("PRIVATE+KEY+{name}+{id:08x}+{}", BASE64.encode(secret)),
            format!("{name}+{id:08x}+{}", BASE64.encode(public)),
        ))
    }

    /// Parses a signing key written by [`Cosigner::generate`].
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("not a cosigner signing key: {why}");
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("it must start with PRIVATE+KEY+"))?;
        let (name, id, seed) = split_key(rest).map_err(bad)?;
        let key = SigningKey::from_bytes(&seed);
        check_id(name, id, &key.verifying_key()).map_err(bad)?;
        Ok(Self {
            name: name.to_string(),
            id,
            key,
        })
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key others use to check this witness's cosignatures.
    pub fn verifier_key(&self) -> String {
        let public = key_material(&self.key.verifying_key());
        format!("{}+{:08x}+{}", self.name, self.id, BASE64.encode(public))
    }

    /// Cosigns a checkpoint body (the note's text, without its signature lines) at `time`
    /// (POSIX seconds); returns the signature line, ending in a newline.
    pub fn cosign(&self, body: &[u8], time: u64) -> String {
        let signature = self.key.sign(&signed_message(body, time));
        let mut bytes = time.to_be_bytes().to_vec();
        bytes.extend_from_slice(&signature.to_bytes());
        format!(
            "— {} {}\n",
            self.name,
            BASE64.encode(key_id_prefixed(self.id, &bytes))
        )
    }
}

/// A witness's verifier key: checks its cosignatures.
#[derive(Debug, Clone)]
pub struct CosignatureVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl CosignatureVerifier {
    /// Parses a `cosignature/v1` verifier key (`<name>+<key id>+base64(0x04 ‖ key)`).
    pub fn new(vkey: &str) -> Result<Self, CheckpointError> {
        let bad = |why: &str| CheckpointError::BadKey(format!("witness key: {why}"));
        let (name, id, public) = split_key(vkey.trim()).map_err(bad)?;
        let key = VerifyingKey::from_bytes(&public).map_err(|e| bad(&e.to_string()))?;
        check_id(name, id, &key).map_err(bad)?;
        Ok(Self {
            name: name.to_string(),
            id,
            key,
        })
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name and key id, as `name+id` (how cosignatures are stored).
    pub fn id(&self) -> String {
        format!("{}+{:08x}", self.name, self.id)
    }

    /// Checks that `note` (a checkpoint with its signature lines, cosignatures included)
    /// carries a valid cosignature by this witness; returns the time it states.
    pub fn verify(&self, note: &str) -> Result<u64, CheckpointError> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(CheckpointError::Malformed(format!(
                "longer than {MAX_NOTE_BYTES} bytes"
            )));
        }
        let parsed = Note::from_bytes(note.as_bytes())
            .map_err(|e| CheckpointError::Malformed(e.to_string()))?;
        let (verified, _) = parsed
            .verify(&VerifierList::new(vec![Box::new(self.clone())]))
            .map_err(|e| {
                CheckpointError::BadSignature(format!("no valid cosignature by {}: {e}", self.id()))
            })?;
        verified
            .first()
            .and_then(|signature| timestamp(signature.signature()))
            .ok_or_else(|| CheckpointError::BadSignature("cosignature without a time".into()))
    }

    /// Parses one signature line and checks it is a valid cosignature by this witness of
    /// `checkpoint` (a signed note); returns the time it states.
    pub fn verify_line(&self, checkpoint: &str, line: &str) -> Result<u64, CheckpointError> {
        let signature = Signature::from_bytes(line.trim_end_matches('\n').as_bytes())
            .map_err(|e| CheckpointError::Malformed(format!("cosignature line: {e}")))?;
        if signature.name() != self.name || signature.id() != self.id {
            return Err(CheckpointError::BadSignature(format!(
                "the line is not by witness {}",
                self.id()
            )));
        }
        self.verify(&format!("{checkpoint}{line}"))
    }
}

impl signed_note::Verifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Some(time) = timestamp(sig) else {
            return false;
        };
        let Ok(signature) = ed25519_dalek::Signature::from_slice(&sig[8..]) else {
            return false;
        };
        self.key
            .verify_strict(&signed_message(msg, time), &signature)
            .is_ok()
    }
}

/// The time of a cosignature's bytes, when they have the right length and the time fits
/// the spec's bound (at most 2^63 - 1).
fn timestamp(sig: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = sig.get(..8)?.try_into().ok()?;
    let time = u64::from_be_bytes(bytes);
    (sig.len() == SIGNATURE_BYTES && time <= i64::MAX as u64).then_some(time)
}

/// The message an Ed25519 cosignature signs.
fn signed_message(body: &[u8], time: u64) -> Vec<u8> {
    let mut message = format!("cosignature/v1\ntime {time}\n").into_bytes();
    message.extend_from_slice(body);
    message
}

/// `0x04 ‖ public key`, the material the key id hashes.
fn key_material(key: &VerifyingKey) -> Vec<u8> {
    let mut material = vec![COSIGNATURE_V1];
    material.extend_from_slice(key.as_bytes());
    material
}

fn key_id_prefixed(id: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// Splits `name+hexid+base64(0x04 ‖ 32 bytes)` into the name, the id and the 32 key bytes,
/// checking the name, the id's form, the type byte and the length.
fn split_key(text: &str) -> Result<(&str, u32, [u8; 32]), &'static str> {
    let (name, rest) = text.split_once('+').ok_or("malformed")?;
    let (id, material) = rest.split_once('+').ok_or("malformed")?;
    if id.len() != 8 || check_name(name).is_err() {
        return Err("malformed");
    }
    let id = u32::from_str_radix(id, 16).map_err(|_| "malformed")?;
    let material = BASE64.decode(material).map_err(|_| "malformed")?;
    match material.split_first() {
        Some((&COSIGNATURE_V1, key)) => {
            Ok((name, id, key.try_into().map_err(|_| "bad key length")?))
        }
        _ => Err("not a cosignature/v1 (type 0x04) key"),
    }
}

/// Checks that `id` is the key id of `name` and `key`.
fn check_id(name: &str, id: u32, key: &VerifyingKey) -> Result<(), &'static str> {
    match signed_note::key_id(name, &key_material(key)) == id {
        true => Ok(()),
        false => Err("the key id does not match the key"),
    }
}

fn check_name(name: &str) -> Result<(), String> {
    match signed_note::is_key_name_valid(name) {
        true => Ok(()),
        false => Err(format!(
            "invalid witness name `{name}`: it must be non-empty, without spaces or `+`"
        )),
    }
}

/// Splits a cosigned note (as served or kept) into the log's note (its text and the
/// signature lines by `origin`, the log's key name) and the other signature lines, each
/// ending in a newline.
pub fn split_cosignatures(note: &str, origin: &str) -> (String, Vec<String>) {
    let Some((text, signatures)) = note.split_once("\n\n") else {
        return (note.to_string(), Vec::new());
    };
    let own = format!("— {origin} ");
    let mut log = format!("{text}\n\n");
    let mut others = Vec::new();
    for line in signatures.lines() {
        match line.starts_with(&own) {
            true => log.push_str(&format!("{line}\n")),
            false => others.push(format!("{line}\n")),
        }
    }
    (log, others)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "example.com/log\n3\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    fn witness() -> (Cosigner, CosignatureVerifier) {
        let (skey, vkey) = Cosigner::generate("witness.example/w1").unwrap();
        (
            Cosigner::parse(&skey).unwrap(),
            CosignatureVerifier::new(&vkey).unwrap(),
        )
    }

    #[test]
    fn a_cosignature_verifies_and_carries_its_time() {
        let (cosigner, verifier) = witness();
        assert!(cosigner.verifier_key().starts_with(&verifier.id()));
        let line = cosigner.cosign(BODY.as_bytes(), 1_679_315_147);
        assert!(line.starts_with("— witness.example/w1 "), "{line}");
        let note = format!("{BODY}\n— example.com/log AAAAAAAA\n");
        assert_eq!(verifier.verify_line(&note, &line).unwrap(), 1_679_315_147);
    }

    #[test]
    fn the_signed_message_is_the_spec_layout() {
        let message = signed_message(BODY.as_bytes(), 1_679_315_147);
        assert_eq!(
            String::from_utf8(message).unwrap(),
            format!("cosignature/v1\ntime 1679315147\n{BODY}")
        );
        // The key id is SHA-256(name ‖ "\n" ‖ 0x04 ‖ key)[:4], and the vkey says so.
        let (cosigner, verifier) = witness();
        let material = key_material(&cosigner.key.verifying_key());
        assert_eq!(material[0], 0x04);
        assert_eq!(
            verifier.id,
            signed_note::key_id("witness.example/w1", &material)
        );
    }

    #[test]
    fn another_body_time_or_witness_fails() {
        let (cosigner, verifier) = witness();
        let (_, other) = witness();
        let line = cosigner.cosign(BODY.as_bytes(), 10);
        let note = format!("{BODY}\n");
        let changed = note.replace("\n3\n", "\n4\n");
        assert!(verifier.verify_line(&changed, &line).is_err());
        assert!(other.verify_line(&note, &line).is_err());
        // The same signature under another time.
        let mut bytes = BASE64
            .decode(line.trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        bytes[4..12].copy_from_slice(&11u64.to_be_bytes());
        let retimed = format!("— witness.example/w1 {}\n", BASE64.encode(bytes));
        assert!(verifier.verify_line(&note, &retimed).is_err());
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        let (skey, vkey) = Cosigner::generate("w").unwrap();
        assert!(Cosigner::parse(&vkey).is_err());
        assert!(CosignatureVerifier::new(&skey).is_err());
        // A log's (type 0x01) key is not a witness key.
        let (_, log_vkey) = signed_note::generate_key(&mut rand_core::OsRng, "log");
        let err = CosignatureVerifier::new(&log_vkey).unwrap_err().to_string();
        assert!(err.contains("0x04"), "{err}");
        assert!(Cosigner::generate("has space").is_err());
        let mut parts: Vec<&str> = vkey.split('+').collect();
        let flipped = format!("{:08x}", u32::from_str_radix(parts[1], 16).unwrap() ^ 1);
        parts[1] = &flipped;
        assert!(CosignatureVerifier::new(&parts.join("+")).is_err());
    }
}
