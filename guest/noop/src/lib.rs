//! A Vellum plugin that keeps every event unchanged: the baseline for measuring the cost of
//! the plugin runtime itself (lowering the batch, the call, lifting the verdicts, checks).

/// Bindings generated from `wit/` by wit-bindgen (generated items carry the WIT docs).
#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../../wit",
    });

    use super::Noop;
    export!(Noop);
}

use bindings::exports::vellum::audit::filter::Guest;
use bindings::vellum::audit::types::{AuditEvent, Verdict};

/// The plugin type that `export!` binds to the `filter` interface.
struct Noop;

impl Guest for Noop {
    fn configure(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn apply(events: Vec<AuditEvent>) -> Vec<Verdict> {
        events.iter().map(|_| Verdict::Pass).collect()
    }
}
