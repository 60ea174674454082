//! The attestation a plugin leaves on every event it saw: which component, with which
//! configuration, decided what. Produced by the chain, stored by the ledger (and covered by
//! the entry's leaf hash), so an auditor can tell exactly which rules an entry passed.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A record that a plugin (this exact component and configuration) was applied to an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attestation {
    /// The plugin's name in the chain.
    pub plugin: Arc<str>,
    /// `sha256:` of the component.
    pub component_digest: Arc<str>,
    /// `sha256:` of the configuration text.
    pub config_digest: Arc<str>,
    /// What the plugin decided.
    pub verdict: AttestedVerdict,
}

/// The plugin's decision, as attested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttestedVerdict {
    /// Kept (possibly rewritten).
    Keep,
    /// Dropped: only a marker is stored.
    Drop,
    /// Rejected: nothing is stored, the producer got the error.
    Reject,
    /// The plugin failed on the event; its `on-error` policy decided.
    Error,
}

impl AttestedVerdict {
    /// `keep`, `drop`, `reject` or `error`: the form in the ledger's entry encoding.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Drop => "drop",
            Self::Reject => "reject",
            Self::Error => "error",
        }
    }
}
