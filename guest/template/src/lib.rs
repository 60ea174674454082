//! The template Vellum plugin: upper-cases the value of one configured label.
//!
//! It shows the two things every plugin does, on the `vellum-plugin` SDK: parse and validate
//! its configuration in `configure` (returning an error that names the bad setting), and
//! decide one verdict per event in `apply`, using the host's services (`log`,
//! `pseudonymize`) — the only things a plugin can reach. To start a plugin of your own
//! outside this repository, run `vellum plugin new NAME --lang rust`.
//!
//! Configuration (JSON): `{"label": "environment"}`. Events without that label pass
//! unchanged.

use serde::Deserialize;
use vellum_plugin::{AuditEvent, LogLevel, Plugin, Verdict, json_config, log};

/// The plugin: its validated configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelUpper {
    /// Key of the label whose value is upper-cased.
    label: String,
}

impl Plugin for LabelUpper {
    fn configure(config: &str) -> Result<Self, String> {
        let plugin: LabelUpper = json_config(config)?;
        if plugin.label.is_empty() {
            return Err("invalid configuration: `label` must not be empty".to_string());
        }
        log(
            LogLevel::Debug,
            &format!("upper-casing label `{}`", plugin.label),
        );
        Ok(plugin)
    }

    fn apply(&self, mut event: AuditEvent) -> Verdict {
        let Some(label) = event.labels.iter_mut().find(|l| l.key == self.label) else {
            return Verdict::Pass;
        };
        label.value = label.value.to_uppercase();
        Verdict::Keep(event)
    }
}

vellum_plugin::export_plugin!(LabelUpper);
