//! The sink's errors: [`EmitError`] is the WIT `emit-error` variant, [`OpenError`] says why a
//! sink could not start.

use crate::chain::{ChainError, ConfigError};
use crate::event::InvalidEvent;
use crate::ledger::LedgerError;

/// Why an emit failed. In every case nothing of the emit was acknowledged, and (unless the
/// sink itself crashed, which is a bug) nothing of it was recorded: the producer must treat
/// the action as not audited, and may retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    /// The event is malformed; the message names the event and the field.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// A plugin rejected the event, or failed on it and the chain is fail-closed.
    #[error("rejected by plugin `{plugin}`: {reason}")]
    Rejected {
        /// Name of the plugin that refused it, from the chain configuration.
        plugin: String,
        /// The plugin's reason, or the host's description of the plugin's failure. For a
        /// batch, it starts with the id of the event that was refused.
        reason: String,
    },
    /// The event could not be durably recorded: the ledger failed (I/O error, full disk),
    /// the sink's queue stayed full past the caller's timeout, or the sink is closed.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<InvalidEvent> for EmitError {
    fn from(e: InvalidEvent) -> Self {
        Self::InvalidEvent(e.to_string())
    }
}

impl From<LedgerError> for EmitError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::KeyReused(message) => Self::InvalidEvent(message),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// Why a sink could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The sink configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The chain could not be loaded.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The ledger could not be opened.
    #[error("cannot open the ledger: {0}")]
    Ledger(#[from] LedgerError),
    /// A pipeline thread could not be started.
    #[error("cannot start the sink: {0}")]
    Thread(String),
}
