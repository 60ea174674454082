//! An entry's personal content apart from the tree (ledger format 2).
//!
//! The content of an entry is its `actor`, `subject`, `payload` and `labels`. The leaf
//! does not hash it: it hashes a salted commitment to it, and the content itself is stored
//! sealed (XChaCha20-Poly1305) under the data key of its (tenant, data subject). Destroying
//! that key erases the content everywhere a copy of the ledger went, while every leaf, tree
//! hash, checkpoint and proof stays valid: they only ever covered the commitment, and the
//! salt that would let anyone test a guess against the commitment is sealed with the
//! content. See `docs/ledger-format.md`.

use std::collections::BTreeMap;
use std::fmt;

use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, OsRng, Payload as AeadPayload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::entry::Encoder;
use super::hash::Hash;
use crate::event::{AuditEvent, Payload};

/// Bytes of a commitment's salt.
pub const SALT_BYTES: usize = 32;
/// Bytes of a data key.
pub const KEY_BYTES: usize = 32;
/// Bytes of a key id.
pub const KEY_ID_BYTES: usize = 16;
/// Domain separation of the commitment hash.
const COMMITMENT_DOMAIN: &[u8] = b"vellum/content/v2\n";
/// Domain separation of the AEAD's associated data.
const AAD_DOMAIN: &[u8] = b"vellum/sealed/v2\n";
/// Bytes of an XChaCha20-Poly1305 nonce.
const NONCE_BYTES: usize = 24;

/// The random salt of a content commitment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Salt(pub [u8; SALT_BYTES]);

impl Salt {
    /// A fresh random salt (from the thread's CSPRNG: one per entry, no system call).
    pub fn random() -> Self {
        let mut bytes = [0; SALT_BYTES];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        Self(bytes)
    }
}

/// The id of a data key: random, so it says nothing about whose key it is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; KEY_ID_BYTES]);

impl KeyId {
    /// A fresh random id.
    pub fn random() -> Self {
        let mut bytes = [0; KEY_ID_BYTES];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Parses 32 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        Some(Self(hex::decode(text).ok()?.try_into().ok()?))
    }

    /// From stored bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        Some(Self(bytes.try_into().ok()?))
    }
}

/// A data key. Its bytes are wiped from memory when it is dropped and never shown.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; KEY_BYTES]>);

impl DataKey {
    /// A fresh random key.
    pub fn random() -> Self {
        let mut bytes = Zeroizing::new([0; KEY_BYTES]);
        OsRng.fill_bytes(bytes.as_mut());
        Self(bytes)
    }

    /// A key from stored bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let bytes: [u8; KEY_BYTES] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(bytes)))
    }

    /// The key's bytes, to store it.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<secret>)")
    }
}

/// An entry's content: the event fields that may be personal data.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    /// Who acted.
    pub actor: Option<String>,
    /// What was acted on.
    pub subject: Option<String>,
    /// The JSON payload, as stored.
    pub payload: Payload,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

impl Content {
    /// The content fields of `event`.
    pub fn of(event: &AuditEvent) -> Self {
        Self {
            actor: event.actor.clone(),
            subject: event.subject.clone(),
            payload: event.payload.clone(),
            labels: event.labels.clone(),
        }
    }

    /// Puts the content back into `event`.
    pub fn restore(self, event: &mut AuditEvent) {
        event.actor = self.actor;
        event.subject = self.subject;
        event.payload = self.payload;
        event.labels = self.labels;
    }

    /// The canonical encoding: `opt(actor) opt(subject) bytes(payload)` then the labels as
    /// in the entry encoding (see `docs/ledger-format.md`).
    pub fn encode(&self) -> Vec<u8> {
        encode(
            self.actor.as_deref(),
            self.subject.as_deref(),
            &self.payload,
            &self.labels,
        )
    }

    /// [`Content::encode`] of `event`'s content, without copying it out first.
    pub fn encode_event(event: &AuditEvent) -> Vec<u8> {
        encode(
            event.actor.as_deref(),
            event.subject.as_deref(),
            &event.payload,
            &event.labels,
        )
    }

    /// Parses [`Content::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut d = Decoder(bytes);
        let actor = d.opt()?;
        let subject = d.opt()?;
        let payload = Payload::from_json(d.string()?).map_err(|e| format!("payload: {e}"))?;
        let mut labels = BTreeMap::new();
        for _ in 0..d.u32()? {
            let key = d.string()?;
            labels.insert(key, d.string()?);
        }
        if !d.0.is_empty() {
            return Err(format!("{} bytes after the content", d.0.len()));
        }
        Ok(Self {
            actor,
            subject,
            payload,
            labels,
        })
    }

    /// The commitment the leaf covers: SHA-256("vellum/content/v2\n" ‖ salt ‖ encoding).
    pub fn commitment(&self, salt: &Salt) -> Hash {
        commitment(salt, &self.encode())
    }
}

/// The content encoding of these fields.
fn encode(
    actor: Option<&str>,
    subject: Option<&str>,
    payload: &Payload,
    labels: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut out = Encoder::with_capacity(64 + payload.as_str().len());
    out.opt(actor);
    out.opt(subject);
    out.bytes(payload.as_str().as_bytes());
    out.u32(labels.len() as u32);
    for (key, value) in labels {
        out.bytes(key.as_bytes());
        out.bytes(value.as_bytes());
    }
    out.into_inner()
}

/// SHA-256("vellum/content/v2\n" ‖ salt ‖ encoded content).
pub fn commitment(salt: &Salt, encoded: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(COMMITMENT_DOMAIN);
    h.update(salt.0);
    h.update(encoded);
    Hash(h.finalize().into())
}

/// What binds a sealed content to its key: the key id. (Its place in the log needs no
/// binding here: the sealed salt and content must match the commitment in the entry's
/// leaf, so content moved to another entry is `modified`. Leaving the sequence number out
/// lets producers seal before the writer assigns it.)
fn associated_data(key: &KeyId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + KEY_ID_BYTES);
    aad.extend_from_slice(AAD_DOMAIN);
    aad.extend_from_slice(&key.0);
    aad
}

/// Seals `salt ‖ encoded` under `key`: a random 24-byte nonce followed by the
/// XChaCha20-Poly1305 ciphertext and tag. A content sealed under one key does not open
/// under another, nor under another id.
pub fn seal(key: &DataKey, id: &KeyId, salt: &Salt, encoded: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.0.as_ref().into());
    // nonce ‖ salt ‖ content, then salt ‖ content encrypted in place and the tag appended:
    // one buffer, no plaintext copy left behind.
    let mut out = Vec::with_capacity(NONCE_BYTES + SALT_BYTES + encoded.len() + 16);
    out.resize(NONCE_BYTES, 0);
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut out);
    out.extend_from_slice(&salt.0);
    out.extend_from_slice(encoded);
    let aad = associated_data(id);
    let (nonce, plain) = out.split_at_mut(NONCE_BYTES);
    let tag = cipher
        .encrypt_in_place_detached(XNonce::from_slice(nonce), &aad, plain)
        .expect("XChaCha20-Poly1305 encrypts any message under 256 GiB");
    out.extend_from_slice(&tag);
    out
}

/// Opens what [`seal`] made; `Err` when the bytes were altered, or belong to another key.
pub fn open(key: &DataKey, id: &KeyId, sealed: &[u8]) -> Result<(Salt, Content), String> {
    if sealed.len() < NONCE_BYTES {
        return Err("sealed content is shorter than its nonce".into());
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
    let cipher = XChaCha20Poly1305::new(key.0.as_ref().into());
    let aad = associated_data(id);
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                AeadPayload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| "sealed content does not open with its key (altered, or another key's)")?,
    );
    unsealed(&plain)
}

/// Content stored in the clear (`salt ‖ encoding`): the ledger's own records, such as
/// erasure records, which hold no personal data and must outlive every key.
pub fn public(salt: &Salt, encoded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SALT_BYTES + encoded.len());
    out.extend_from_slice(&salt.0);
    out.extend_from_slice(encoded);
    out
}

/// Splits `salt ‖ encoding` and parses the content.
pub fn unsealed(plain: &[u8]) -> Result<(Salt, Content), String> {
    if plain.len() < SALT_BYTES {
        return Err("stored content is shorter than its salt".into());
    }
    let (salt, encoded) = plain.split_at(SALT_BYTES);
    let salt = Salt(salt.try_into().expect("split at SALT_BYTES"));
    Ok((salt, Content::decode(encoded)?))
}

/// Reads the fields [`Encoder`] writes.
struct Decoder<'a>(&'a [u8]);

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err("content encoding ends early".into());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "content is not UTF-8".into())
    }
    fn opt(&mut self) -> Result<Option<String>, String> {
        match self.take(1)?[0] {
            0 => Ok(None),
            1 => Ok(Some(self.string()?)),
            other => Err(format!("bad option tag {other}")),
        }
    }
}

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Salt({})", hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", hex::encode(self.0))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl Serialize for Salt {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Salt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
        let bytes = bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("a salt has 32 bytes (64 hex digits)"))?;
        Ok(Self(bytes))
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("a key id has 16 bytes (32 hex digits)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content() -> Content {
        Content {
            actor: Some("user:ada".into()),
            subject: None,
            payload: Payload::from_json(r#"{"email":"ada@example.com"}"#.into()).unwrap(),
            labels: [("data_subject".to_string(), "ada".to_string())].into(),
        }
    }

    #[test]
    fn content_round_trips_through_its_encoding_and_a_seal() {
        let c = content();
        assert_eq!(Content::decode(&c.encode()).unwrap(), c);
        let (key, id, salt) = (DataKey::random(), KeyId::random(), Salt::random());
        let sealed = seal(&key, &id, &salt, &c.encode());
        let (s, opened) = open(&key, &id, &sealed).unwrap();
        assert_eq!((s, &opened), (salt, &c));
        assert!(
            !sealed
                .windows(b"ada@example.com".len())
                .any(|w| w == b"ada@example.com"),
            "sealed content holds no plaintext"
        );
    }

    #[test]
    fn a_seal_opens_only_with_its_key_and_bytes() {
        let c = content().encode();
        let (key, id, salt) = (DataKey::random(), KeyId::random(), Salt::random());
        let sealed = seal(&key, &id, &salt, &c);
        assert!(open(&DataKey::random(), &id, &sealed).is_err(), "other key");
        assert!(open(&key, &KeyId::random(), &sealed).is_err(), "other id");
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(open(&key, &id, &flipped).is_err(), "altered");
        assert!(open(&key, &id, &sealed[..10]).is_err(), "truncated");
        assert_ne!(
            seal(&key, &id, &salt, &c),
            sealed,
            "a fresh nonce each time"
        );
    }

    #[test]
    fn commitments_are_salted_and_bind_every_field() {
        let c = content();
        let salt = Salt([7; SALT_BYTES]);
        assert_ne!(c.commitment(&salt), c.commitment(&Salt([8; SALT_BYTES])));
        let mut other = c.clone();
        other.labels.clear();
        assert_ne!(c.commitment(&salt), other.commitment(&salt));
        let bad = [0u8, 0, 0, 0, 0, 9];
        assert!(Content::decode(&bad).is_err());
    }
}
