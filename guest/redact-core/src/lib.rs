//! PII and secrets redaction: the detection and rewriting logic of Vellum's `redact` plugin,
//! as a plain library so the same code runs inside the sandboxed guest and natively (the
//! host's `vellum test --leak-check` and the benchmarks use it).
//!
//! A [`Redactor`] is built from a [`Config`] (TOML or JSON text). It scans every string of a
//! JSON value, recursively, plus any envelope strings the caller passes, and rewrites what
//! its detectors find with the operator chosen per detector: `mask`, `partial`, `hash` (a
//! keyed pseudonym computed by the caller-supplied function) or `remove`.

#![deny(missing_docs)]

mod candidates;
mod config;
mod credentials;
mod detectors;
mod keys;
mod names;
mod redact;
mod scan;
mod validate;

pub use config::{Config, ConfigError, Operator, ProtectedFields};
pub use credentials::CREDENTIALS;
pub use detectors::{DetectorSpec, Finding, builtins};
pub use redact::{Change, Outcome, Redactor, SENSITIVE_KEY};
