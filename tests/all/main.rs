//! Vellum's integration tests, in one binary (as wasmtime does): one module per area,
//! sharing `common`. A new file here is compiled once it is named below, and there is one
//! link of the host instead of one per area.
//!
//! Run one area with `cargo test -p vellum-cli --test all ledger::` (a module path).

#[macro_use]
mod common;

mod chain;
mod cli;
mod durability;
mod front_doors;
mod hostile;
mod hosts;
mod idempotency;
mod ledger;
mod limits;
mod plugin_kit;
mod proofs;
mod python;
mod redact;
mod runtimes;
mod serve;
mod sink;
mod tamper;
mod witness;
mod writers;
