//! Plugin instances kept per tenant, so that no instance ever sees the events of two
//! tenants: whatever a plugin remembers between calls (a static, a cache in its heap) stays
//! within one tenant. Past the capacity, the least recently used tenant's instances are
//! discarded and a returning tenant gets fresh ones.

use crate::plugin::{Plugin, PluginTemplate};
use std::sync::Arc;

/// Tenants whose instances one [`super::Chain`] keeps by default.
pub const DEFAULT_TENANT_CAPACITY: usize = 16;

/// The instances of every plugin of a chain, per tenant (`None` is the events without a
/// tenant, kept apart like any other tenant).
pub(crate) struct TenantInstances {
    slots: Vec<Slot>,
    capacity: usize,
    clock: u64,
}

struct Slot {
    tenant: Option<String>,
    plugins: Vec<Plugin>,
    used: u64,
}

impl TenantInstances {
    /// An empty set keeping at most `capacity` (at least 1) tenants' instances.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            slots: Vec::new(),
            capacity: capacity.max(1),
            clock: 0,
        }
    }

    /// The instances serving `tenant`, made from `templates` if it has none yet.
    pub(crate) fn get(
        &mut self,
        tenant: Option<&str>,
        templates: &[Arc<PluginTemplate>],
    ) -> &mut [Plugin] {
        self.clock += 1;
        let index = match self
            .slots
            .iter()
            .position(|s| s.tenant.as_deref() == tenant)
        {
            Some(index) => index,
            None => {
                if self.slots.len() >= self.capacity
                    && let Some(lru) = (0..self.slots.len()).min_by_key(|&i| self.slots[i].used)
                {
                    self.slots.swap_remove(lru);
                }
                self.slots.push(Slot {
                    tenant: tenant.map(str::to_string),
                    plugins: templates.iter().map(|t| t.instance()).collect(),
                    used: 0,
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        slot.used = self.clock;
        &mut slot.plugins
    }
}
