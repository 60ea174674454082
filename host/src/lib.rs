//! Vellum: an audit sink for AI-agent runtimes.
//!
//! Every audit event passes a chain of sandboxed WebAssembly component plugins (redaction,
//! policy) before it is recorded. The crate follows the data flow:
//!
//! - [`event`]: the audit event envelope, its JSON-lines form, plugin attestations;
//! - [`sink`]: the one path from producers to the ledger — concurrent, batched, atomic per
//!   emit, with backpressure and receipts only for durable entries;
//! - [`chain`]: an ordered chain of plugins configured from TOML, compiled once and run by
//!   any number of threads, with plugin instances kept apart per tenant;
//! - [`plugin`]: the sandboxed plugin runtime (one component, its limits, its failures);
//! - [`ledger`]: the durable, append-only, tamper-evident ledger the sink commits to;
//! - [`testing`]: `vellum test`, running a plugin against expected verdicts.
//!
//! ```no_run
//! use vellum::{AuditEvent, Sink, SinkConfig};
//!
//! let config = SinkConfig::from_file("sink.toml".as_ref())?;
//! let sink = Sink::open(&config, &Default::default())?;
//! let event: AuditEvent = serde_json::from_str(
//!     r#"{"id":"e1","occurred_at":"2026-11-22T09:00:00Z","kind":"tool.call"}"#,
//! )?;
//! let receipt = sink.emit(event)?; // returns once the entry is durable
//! println!("recorded as entry {}", receipt.seq);
//! sink.close()?; // finishes in-flight emits, signs a final checkpoint
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The WIT contract lives in the repository's `wit/` directory
//! (`vellum:audit@0.1.0`).

#![deny(missing_docs)]

pub mod chain;
pub mod event;
pub mod ledger;
pub mod plugin;
pub mod sink;
pub mod testing;

pub use chain::{Chain, ChainConfig, ChainTemplate, Outcome};
pub use event::AuditEvent;
pub use ledger::{Ledger, LedgerError, LedgerOptions};
pub use plugin::{PluginEngine, PluginError, PluginFailure};
pub use sink::{EmitError, Receipt, Sink, SinkConfig, StatusChange};
