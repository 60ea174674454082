//! The template Vellum plugin: upper-cases the value of one configured label.
//!
//! Copy this crate to start a plugin. It shows the three things every plugin does:
//! parse and validate its configuration in `configure` (returning an error that names the
//! bad setting), decide one verdict per event in `apply`, and use the host's services
//! (`log`, `pseudonymize`) — the only things a plugin can reach.
//!
//! Configuration (JSON): `{"label": "environment"}`. Events without that label are kept
//! unchanged.

use std::cell::RefCell;

use serde::Deserialize;

/// Bindings generated from `wit/` by wit-bindgen (generated items carry the WIT docs).
#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../../wit",
    });

    use super::LabelUpper;
    export!(LabelUpper);
}

use bindings::exports::vellum::audit::filter::Guest;
use bindings::vellum::audit::host::{LogLevel, log};
use bindings::vellum::audit::types::{AuditEvent, Verdict};

/// The plugin's validated configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Key of the label whose value is upper-cased.
    label: String,
}

thread_local! {
    /// Set by `configure`; a fresh instance is configured before its first `apply`.
    static CONFIG: RefCell<Option<Config>> = const { RefCell::new(None) };
}

/// The plugin type that `export!` binds to the `filter` interface.
struct LabelUpper;

impl Guest for LabelUpper {
    fn configure(config: String) -> Result<(), String> {
        let parsed: Config =
            serde_json::from_str(&config).map_err(|e| format!("invalid configuration: {e}"))?;
        if parsed.label.is_empty() {
            return Err("invalid configuration: `label` must not be empty".to_string());
        }
        log(
            LogLevel::Debug,
            &format!("upper-casing label `{}`", parsed.label),
        );
        CONFIG.with(|c| *c.borrow_mut() = Some(parsed));
        Ok(())
    }

    fn apply(events: Vec<AuditEvent>) -> Vec<Verdict> {
        CONFIG.with(|c| {
            let config = c.borrow();
            let Some(config) = config.as_ref() else {
                // The host always configures first; refusing is the safe answer if not.
                return events
                    .iter()
                    .map(|_| Verdict::Reject("plugin used before configure".to_string()))
                    .collect();
            };
            events
                .into_iter()
                .map(|mut event| {
                    for label in event.labels.iter_mut().filter(|l| l.key == config.label) {
                        label.value = label.value.to_uppercase();
                    }
                    Verdict::Keep(event)
                })
                .collect()
        })
    }
}
