//! What the host offers plugins (the `vellum:audit/host` interface) and the per-store state
//! behind it: structured logging and keyed pseudonymisation.

use std::path::Path;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::bindings::vellum::audit::{host, types};
use super::limits::StoreLimiter;

/// Longest guest log message kept; longer ones are truncated. Bounds what a guest can make
/// the host print per call.
pub const MAX_LOG_MESSAGE_BYTES: usize = 4 << 10;
/// Log lines a guest may write per call into it; further lines are counted and dropped.
pub const MAX_LOG_LINES_PER_CALL: u32 = 100;
/// Shortest accepted pseudonymisation key.
pub const MIN_KEY_BYTES: usize = 32;

/// The secret key of the `pseudonymize` host function. Never shown by `Debug`.
#[derive(Clone)]
pub struct PseudonymKey(Arc<[u8]>);

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKey(<secret>)")
    }
}

impl PseudonymKey {
    /// A key from raw bytes; at least [`MIN_KEY_BYTES`] long.
    pub fn new(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(format!(
                "pseudonym key has {} bytes; at least {MIN_KEY_BYTES} are required",
                bytes.len()
            ));
        }
        Ok(Self(bytes.into()))
    }

    /// Reads a key file holding the key as hex text (whitespace ignored), as written by
    /// `head -c 32 /dev/urandom | xxd -p -c 64`.
    pub fn from_hex_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read pseudonym key file {}: {e}", path.display()))?;
        let compact: String = text.split_whitespace().collect();
        let bytes = hex::decode(&compact)
            .map_err(|e| format!("pseudonym key file {} is not hex: {e}", path.display()))?;
        Self::new(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The key of one tenant's pseudonyms: HKDF-SHA-256 of this key with the salt
    /// `vellum/pseudonym-key/v1` and the info `t:<tenant>`, so one tenant's pseudonyms
    /// cannot be joined with another's and neither reveals this key. Events without a
    /// tenant use this key itself (as before keys were per tenant).
    pub fn for_tenant(&self, tenant: Option<&str>) -> Self {
        let Some(tenant) = tenant else {
            return self.clone();
        };
        let hkdf = hkdf::Hkdf::<Sha256>::new(Some(b"vellum/pseudonym-key/v1"), &self.0);
        let info = [b"t:", tenant.as_bytes()].concat();
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        hkdf.expand(&info, key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA-256 output length");
        Self(key.as_ref().into())
    }

    /// The token for `value` in `domain`: `pseu:` plus 32 hex digits of
    /// HMAC-SHA-256(key, len(domain) ‖ domain ‖ value), where len is 4 bytes big-endian.
    pub fn pseudonym(&self, domain: &str, value: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key size");
        // Length-framing the domain keeps ("ab","c") and ("a","bc") apart.
        mac.update(&(domain.len() as u32).to_be_bytes());
        mac.update(domain.as_bytes());
        mac.update(value.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("pseu:{}", hex::encode(&tag[..16]))
    }
}

/// A host function refused a plugin's call; the call traps with this error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HostRefusal(pub String);

/// Everything a plugin's store holds besides the guest itself.
pub struct StoreState {
    /// The deny-everything WASI context (used only by plugins that import WASI).
    pub(crate) wasi: wasmtime_wasi::WasiCtx,
    /// Resources handed to the guest through WASI.
    pub(crate) table: wasmtime::component::ResourceTable,
    /// Name of the plugin, for log lines.
    pub(crate) plugin: Arc<str>,
    /// Enforces the memory and table caps.
    pub(crate) limiter: StoreLimiter,
    /// Key for pseudonymisation, if the chain has one.
    pub(crate) key: Option<PseudonymKey>,
    /// Log lines written during the current call.
    pub(crate) log_lines: u32,
}

impl types::Host for StoreState {}

impl wasmtime_wasi::WasiView for StoreState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl host::Host for StoreState {
    fn log(&mut self, level: host::LogLevel, message: String) {
        self.log_lines = self.log_lines.saturating_add(1);
        if self.log_lines > MAX_LOG_LINES_PER_CALL {
            if self.log_lines == MAX_LOG_LINES_PER_CALL + 1 {
                tracing::warn!(plugin = %self.plugin, "log limit reached; dropping further lines of this call");
            }
            return;
        }
        let message = truncate(&message, MAX_LOG_MESSAGE_BYTES);
        let plugin = &*self.plugin;
        match level {
            host::LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            host::LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            host::LogLevel::Info => tracing::info!(plugin, "{message}"),
            host::LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            host::LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn pseudonymize(&mut self, domain: String, value: String) -> wasmtime::Result<String> {
        match &self.key {
            Some(key) => Ok(key.pseudonym(&domain, &value)),
            None => Err(HostRefusal(
                "pseudonymize was called but the chain has no `pseudonym-key-file`".to_string(),
            )
            .into()),
        }
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_keyed_and_domain_separated() {
        let k1 = PseudonymKey::new(&[7u8; 32]).unwrap();
        let k2 = PseudonymKey::new(&[8u8; 32]).unwrap();
        let a = k1.pseudonym("email", "ada@example.com");
        assert_eq!(a, k1.pseudonym("email", "ada@example.com"));
        assert_ne!(a, k2.pseudonym("email", "ada@example.com"));
        assert_ne!(a, k1.pseudonym("user", "ada@example.com"));
        assert_ne!(k1.pseudonym("ab", "c"), k1.pseudonym("a", "bc"));
        let (acme, globex) = (k1.for_tenant(Some("acme")), k1.for_tenant(Some("globex")));
        assert_eq!(
            acme.pseudonym("email", "a"),
            k1.for_tenant(Some("acme")).pseudonym("email", "a")
        );
        assert_ne!(acme.pseudonym("email", "a"), globex.pseudonym("email", "a"));
        assert_ne!(acme.pseudonym("email", "a"), k1.pseudonym("email", "a"));
        assert_eq!(
            k1.for_tenant(None).pseudonym("email", "a"),
            k1.pseudonym("email", "a")
        );
        assert!(a.starts_with("pseu:") && a.len() == 5 + 32, "{a}");
    }

    #[test]
    fn short_keys_are_refused_and_never_printed() {
        assert!(PseudonymKey::new(&[1u8; 16]).is_err());
        let k = PseudonymKey::new(&[0xAB; 32]).unwrap();
        assert!(!format!("{k:?}").contains("ab"));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
