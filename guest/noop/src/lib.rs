//! A Vellum plugin that keeps every event unchanged: the baseline for measuring the cost of
//! the plugin runtime itself (lowering the batch, the call, lifting the verdicts, checks).

use vellum_plugin::{AuditEvent, Plugin, Verdict};

/// The plugin: no configuration, no work.
struct Noop;

impl Plugin for Noop {
    fn configure(_config: &str) -> Result<Self, String> {
        Ok(Noop)
    }

    fn apply(&self, _event: AuditEvent) -> Verdict {
        Verdict::Pass
    }
}

vellum_plugin::export_plugin!(Noop);
