//! The sandboxed plugin runtime: one engine, components compiled once (and cached on disk),
//! instances with per-plugin limits, typed failures, and validated verdicts.

mod bindings;
mod cache;
mod engine;
mod error;
mod host_api;
mod inspect;
mod instance;
mod limits;
mod verdict;
mod wasi;

pub use cache::ComponentCache;
pub use engine::{EPOCH_TICK, EngineError, EngineOptions, PluginEngine};
pub use error::{PluginError, PluginFailure};
pub use host_api::{MAX_LOG_LINES_PER_CALL, MAX_LOG_MESSAGE_BYTES, MIN_KEY_BYTES, PseudonymKey};
pub use inspect::{ComponentReport, inspect};
pub use instance::{PROVIDED_IMPORTS, Plugin, PluginSpec, PluginTemplate, sha256_digest};
pub use limits::{LimitExceeded, Limits};
pub use verdict::Verdict;
pub use wasi::PROVIDED_WASI;
