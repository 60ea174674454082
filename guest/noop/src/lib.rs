//! A Vellum plugin that keeps every event unchanged: the baseline for measuring the cost of
//! the plugin runtime itself (lowering the batch, the call, lifting the verdicts, checks).

wit_bindgen::generate!({
    world: "plugin",
    path: "../../wit",
});

use exports::vellum::audit::filter::Guest;
use vellum::audit::types::{AuditEvent, Verdict};

/// The plugin type that `export!` binds to the `filter` interface.
struct Noop;

impl Guest for Noop {
    fn configure(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn apply(events: Vec<AuditEvent>) -> Vec<Verdict> {
        events.into_iter().map(Verdict::Keep).collect()
    }
}

export!(Noop);
