//! Vellum: an audit sink for AI-agent runtimes.
//!
//! Every audit event passes a chain of sandboxed WebAssembly component plugins (redaction,
//! policy) before it is recorded. The crate follows the data flow:
//!
//! - [`event`]: the audit event envelope and its JSON-lines form;
//! - [`plugin`]: the sandboxed plugin runtime (one component, its limits, its failures);
//! - [`chain`]: an ordered chain of plugins configured from TOML, applied to batches;
//! - [`ledger`]: the durable, append-only, tamper-evident ledger the outcomes go to;
//! - [`testing`]: `vellum test`, running a plugin against expected verdicts.
//!
//! The WIT contract lives in the repository's `wit/` directory
//! (`vellum:audit@0.1.0`).

#![deny(missing_docs)]

pub mod chain;
pub mod event;
pub mod ledger;
pub mod plugin;
pub mod testing;

pub use chain::{Chain, ChainConfig, Outcome};
pub use event::AuditEvent;
pub use ledger::{Ledger, LedgerError, LedgerOptions};
pub use plugin::{PluginEngine, PluginError, PluginFailure};
