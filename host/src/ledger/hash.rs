//! The ledger's hash type: a SHA-256 value in its Merkle tree (a leaf hash or a node hash),
//! written as 64 hex digits in JSON (proof bundles, exports).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tlog_tiles::tlog;

/// A SHA-256 hash of the ledger's Merkle tree.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// Lower-case hex, 64 digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Standard base64, as in checkpoints and witness requests.
    pub fn to_base64(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Parses standard base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Option<Self> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        Some(Self(bytes.try_into().ok()?))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl From<tlog::Hash> for Hash {
    fn from(h: tlog::Hash) -> Self {
        Self(h.0)
    }
}

impl From<Hash> for tlog::Hash {
    fn from(h: Hash) -> Self {
        tlog::Hash(h.0)
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("a hash has 32 bytes (64 hex digits)"))?;
        Ok(Self(bytes))
    }
}
