//! What [`export_plugin!`](crate::export_plugin) expands to relies on: the slot holding the
//! configured plugin, and the bindings' runtime. Not part of the API.

use std::cell::RefCell;

use crate::{AuditEvent, Plugin, Verdict};

pub use wit_bindgen;

/// The reason given for every event of a batch that arrives before `configure` succeeded.
pub const NOT_CONFIGURED: &str = "plugin used before configure";

/// The configured plugin of this instance (`None` until `configure` succeeds).
pub struct Slot<P>(RefCell<Option<P>>);

impl<P: Plugin> Slot<P> {
    /// An empty slot.
    pub const fn new() -> Self {
        Slot(RefCell::new(None))
    }

    /// Configures the plugin; a failed configuration leaves the slot empty, so the instance
    /// refuses events instead of running with a stale or half-read configuration.
    pub fn configure(&self, config: &str) -> Result<(), String> {
        let configured = P::configure(config);
        let mut slot = self.0.borrow_mut();
        match configured {
            Ok(plugin) => {
                *slot = Some(plugin);
                Ok(())
            }
            Err(e) => {
                *slot = None;
                Err(e)
            }
        }
    }

    /// Applies the plugin to a batch, or rejects every event when it is not configured (the
    /// host always configures first; refusing is the safe answer if not).
    pub fn apply(&self, events: Vec<AuditEvent>) -> Vec<Verdict> {
        match self.0.borrow().as_ref() {
            Some(plugin) => plugin.apply_batch(events),
            None => events
                .iter()
                .map(|_| Verdict::Reject(NOT_CONFIGURED.to_string()))
                .collect(),
        }
    }
}

impl<P: Plugin> Default for Slot<P> {
    fn default() -> Self {
        Self::new()
    }
}
